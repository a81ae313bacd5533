package main

import (
	"encoding/json"
	"fmt"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/h2scope/h2scope/tools/capgen/truth"
)

// frameOut is the part of a `frames --json` line the truth files check.
type frameOut struct {
	Frame              uint64 `json:"frame"`
	Conn               int    `json:"conn"`
	Dir                string `json:"dir"`
	Proto              string `json:"proto"`
	Type               string `json:"type"`
	Stream             uint32 `json:"stream"`
	Error              string `json:"error"`
	HeadersUndecodable bool   `json:"headers_undecodable"`
	Headers            []struct {
		Unknown bool `json:"unknown"`
	} `json:"headers"`
}

// undecodable reports whether a header block could not be decoded in
// full: HPACK state lost, or fields naming dynamic-table entries the
// capture never showed.
func (f frameOut) undecodable() bool {
	if f.HeadersUndecodable {
		return true
	}
	for _, h := range f.Headers {
		if h.Unknown {
			return true
		}
	}
	return false
}

// TestFramesMatchTruth checks `frames --json` on every committed HTTP/2
// capture against what the generator's programs saw on their own wire:
// HTTP/2 frames by type, RST_STREAM and GOAWAY codes, gRPC messages each
// way and gRPC statuses.
func TestFramesMatchTruth(t *testing.T) {
	files, _ := filepath.Glob("../../testdata/pcaps/*.truth.json")
	checked := 0
	for _, tf := range files {
		tr, err := truth.Load(tf)
		if err != nil {
			t.Fatal(err)
		}
		if tr.Expect.HTTP2Frames == nil {
			continue
		}
		checked++
		t.Run(tr.Scenario, func(t *testing.T) {
			out, errOut, code := runCLI(t, append([]string{"frames", "--json"}, captureArgs(tf, tr)...)...)
			if code != 0 {
				t.Fatalf("exit %d: %s", code, errOut)
			}
			types := map[string]int{}
			rst := map[string]int{}
			goaway := map[string]int{}
			status := map[string]int{}
			msgs := map[string]int{}
			undecodable := 0
			streams := map[string]bool{}
			dec := json.NewDecoder(strings.NewReader(out))
			for dec.More() {
				var f frameOut
				if err := dec.Decode(&f); err != nil {
					t.Fatal(err)
				}
				switch {
				case f.Proto == "http2" && f.Type != "PREFACE":
					types[f.Type]++
					if f.Stream != 0 {
						streams[fmt.Sprint(f.Conn, "/", f.Stream)] = true
					}
					switch f.Type {
					case "RST_STREAM":
						rst[f.Error]++
					case "GOAWAY":
						goaway[f.Error]++
					}
					if f.undecodable() {
						undecodable++
					}
				case f.Proto == "grpc" && f.Type == "message":
					msgs[f.Dir]++
				case f.Proto == "grpc" && f.Type == "status":
					status[f.Error]++
				}
			}
			e := tr.Expect
			check := func(what string, got, want any) {
				if !reflect.DeepEqual(got, want) {
					t.Errorf("%s: h2scope %v, truth %v", what, got, want)
				}
			}
			check("HTTP/2 frames by type", types, e.HTTP2Frames)
			check("RST_STREAM codes", rst, orEmpty(e.RSTStreamCodes))
			check("GOAWAY codes", goaway, orEmpty(e.GoAwayCodes))
			check("undecodable header blocks", undecodable, e.UndecodableHeaderBlocks)
			if e.HTTP2Streams > 0 {
				check("streams", len(streams), e.HTTP2Streams)
			}
			if e.GRPCMessages != nil {
				check("gRPC messages c2s", msgs["c2s"], int(e.GRPCMessages.C2S))
				check("gRPC messages s2c", msgs["s2c"], int(e.GRPCMessages.S2C))
				if tr.DerivedFrom == nil {
					check("gRPC statuses", status, orEmpty(e.GRPCStatus))
				} else {
					// A capture cut mid-connection may hide a status in a
					// header field h2scope cannot decode (reported with an
					// empty name): compare the count, and the names it could.
					var got, want int
					for name, n := range status {
						got += n
						if name != "" && n > e.GRPCStatus[name] {
							t.Errorf("gRPC status %s: h2scope %d, truth %d", name, n, e.GRPCStatus[name])
						}
					}
					for _, n := range e.GRPCStatus {
						want += n
					}
					check("gRPC statuses (count)", got, want)
				}
			}
		})
	}
	if checked == 0 {
		t.Fatal("no HTTP/2 truth files in testdata/pcaps")
	}
}

func orEmpty(m map[string]int) map[string]int {
	if m == nil {
		return map[string]int{}
	}
	return m
}
