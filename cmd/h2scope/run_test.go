package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"path/filepath"
	"strings"
	"testing"

	"github.com/h2scope/h2scope/tools/capgen/truth"
)

// connOut is the part of `conns --json` the truth files can check.
type connOut struct {
	ID          int                      `json:"id"`
	Client      string                   `json:"client"`
	Server      string                   `json:"server"`
	StreamBytes struct{ C2S, S2C int64 } `json:"stream_bytes"`
	MissedBytes int64                    `json:"missed_bytes"`
	Close       string                   `json:"close"`
	ConnState   string                   `json:"conn_state"`
	OutOfOrder  int                      `json:"out_of_order"`
	Retrans     int                      `json:"retransmissions"`
	GRPC        *struct {
		Status map[string]int `json:"status"`
	} `json:"grpc"`
	TLS *struct {
		Version    string `json:"version"`
		SNI        string `json:"sni"`
		ALPN       string `json:"alpn"`
		Cipher     string `json:"cipher"`
		Decrypted  bool   `json:"decrypted"`
		Resumption struct {
			Offered  []string `json:"offered"`
			Known    bool     `json:"known"`
			Accepted bool     `json:"accepted"`
		} `json:"resumption"`
		Alerts []struct {
			Dir         string `json:"dir"`
			Description string `json:"description"`
		} `json:"alerts"`
	} `json:"tls"`
}

// captureArgs returns the command-line arguments that read a truth
// file's capture: the capture, after --keylog and its key log when it
// has one beside it.
func captureArgs(truthFile string, tr *truth.Truth) []string {
	pcap := strings.TrimSuffix(truthFile, ".truth.json") + ".pcapng"
	if k := tr.Capture.KeyLog; k != "" && k != "embedded" {
		return []string{"--keylog", filepath.Join(filepath.Dir(truthFile), k), pcap}
	}
	return []string{pcap}
}

// checkTLS compares a connection's TLS record with what the client and
// server programs saw: version, cipher suite, SNI, ALPN, the resumption
// verdict against the client's DidResume, the alert, and decryption.
func checkTLS(t *testing.T, i int, c connOut, want *truth.TLS) {
	t.Helper()
	if want == nil {
		if c.TLS != nil {
			t.Errorf("connection %d: TLS seen, truth has none", i)
		}
		return
	}
	got := c.TLS
	if got == nil {
		t.Errorf("connection %d: no TLS seen", i)
		return
	}
	if got.SNI != want.SNI || got.Version != want.Version || got.Cipher != want.CipherSuite || got.ALPN != want.ALPN {
		t.Errorf("connection %d: TLS %q %q sni %q alpn %q, truth %q %q sni %q alpn %q", i,
			got.Version, got.Cipher, got.SNI, got.ALPN, want.Version, want.CipherSuite, want.SNI, want.ALPN)
	}
	offered := !(len(got.Resumption.Offered) == 1 && got.Resumption.Offered[0] == "none")
	if offered != want.OfferedResumption {
		t.Errorf("connection %d: resumption offered %v, truth %v", i, got.Resumption.Offered, want.OfferedResumption)
	}
	if want.HandshakeComplete && (!got.Resumption.Known || got.Resumption.Accepted != want.DidResume) {
		t.Errorf("connection %d: resumption accepted %v (known %v), the client's DidResume %v", i,
			got.Resumption.Accepted, got.Resumption.Known, want.DidResume)
	}
	if want.HandshakeComplete && !got.Decrypted {
		t.Errorf("connection %d: not decrypted", i)
	}
	if a := want.Alert; a != nil {
		dir := map[string]string{"client": "c2s", "server": "s2c"}[a.From]
		found := false
		for _, g := range got.Alerts {
			found = found || g.Dir == dir && g.Description == a.Description
		}
		if !found {
			t.Errorf("connection %d: alerts %+v, truth %s sent %s", i, got.Alerts, a.From, a.Description)
		}
	}
}

func runCLI(t *testing.T, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	var o, e bytes.Buffer
	code = run(context.Background(), args, &o, &e)
	return o.String(), e.String(), code
}

// TestConnsMatchTruth checks `conns --json` on every committed capture
// against what the generator's programs observed.
func TestConnsMatchTruth(t *testing.T) {
	files, _ := filepath.Glob("../../testdata/pcaps/*.truth.json")
	if len(files) == 0 {
		t.Fatal("no truth files in testdata/pcaps")
	}
	for _, tf := range files {
		tr, err := truth.Load(tf)
		if err != nil {
			t.Fatal(err)
		}
		t.Run(tr.Scenario, func(t *testing.T) {
			out, errOut, code := runCLI(t, append([]string{"conns", "--json"}, captureArgs(tf, tr)...)...)
			if code != 0 {
				t.Fatalf("exit %d: %s", code, errOut)
			}
			var got []connOut
			dec := json.NewDecoder(strings.NewReader(out))
			for dec.More() {
				var c connOut
				if err := dec.Decode(&c); err != nil {
					t.Fatal(err)
				}
				got = append(got, c)
			}
			if len(got) != tr.Expect.TCPConnections || len(got) != len(tr.Connections) {
				t.Fatalf("%d connections, truth %d", len(got), tr.Expect.TCPConnections)
			}
			// Truth numbers connections as they were dialled; a client port
			// may be reused, so match the n-th connection from each port.
			byClient := map[string][]connOut{}
			for _, c := range got {
				byClient[c.Client] = append(byClient[c.Client], c)
			}
			var missed, ooo, retrans int64
			for i, want := range tr.Connections {
				if len(byClient[want.Client]) == 0 {
					t.Errorf("truth connection %d from %s: not found", want.ID, want.Client)
					continue
				}
				c := byClient[want.Client][0]
				byClient[want.Client] = byClient[want.Client][1:]
				if c.Server != want.Server {
					t.Errorf("connection %d: server %s, truth %s", i, c.Server, want.Server)
				}
				if c.StreamBytes.C2S != want.C2SBytes || c.StreamBytes.S2C != want.S2CBytes {
					t.Errorf("connection %d: stream bytes %d/%d, the programs wrote %d/%d", i, c.StreamBytes.C2S, c.StreamBytes.S2C, want.C2SBytes, want.S2CBytes)
				}
				if want.ClosedBy != "" && c.Close != "fin_"+want.ClosedBy {
					t.Errorf("connection %d: close %s, truth closed by %s", i, c.Close, want.ClosedBy)
				}
				checkTLS(t, i, c, want.TLS)
				missed += c.MissedBytes
				ooo += int64(c.OutOfOrder)
				retrans += int64(c.Retrans)
			}
			// The status each gRPC call ended with, as its client saw it.
			if len(tr.GRPCCalls) > 0 && tr.DerivedFrom == nil {
				saw, status := map[string]int{}, map[string]int{}
				for _, call := range tr.GRPCCalls {
					saw[call.Code]++
				}
				for _, c := range got {
					if c.GRPC != nil {
						for k, v := range c.GRPC.Status {
							status[k] += v
						}
					}
				}
				if !maps.Equal(status, saw) {
					t.Errorf("gRPC client statuses %v, the clients saw %v", status, saw)
				}
			}
			if missed != int64(tr.Expect.LostBytes) {
				t.Errorf("missed_bytes %d, truth dropped %d", missed, tr.Expect.LostBytes)
			}
			if ooo != int64(tr.Expect.OutOfOrder) || retrans != int64(tr.Expect.Retransmissions) {
				t.Errorf("out-of-order %d retransmissions %d, truth %d and %d", ooo, retrans, tr.Expect.OutOfOrder, tr.Expect.Retransmissions)
			}
		})
	}
}

func TestUsageErrors(t *testing.T) {
	tests := []struct {
		args []string
		code int
		want string
	}{
		{nil, 2, "usage: h2scope"},
		{[]string{"nope"}, 2, `unknown command "nope"`},
		{[]string{"conns"}, 2, "no capture files given"},
		{[]string{"conns", "--bogus", "x.pcap"}, 2, "h2scope conns: flag provided but not defined: --bogus\nusage: h2scope conns"},
		{[]string{"conns", "/does/not/exist.pcap"}, 2, "/does/not/exist.pcap"},
		{[]string{"conns", "run.go"}, 2, "run.go: offset 0: capture: unrecognised capture format"},
		{[]string{"help"}, 0, ""},
	}
	for _, tt := range tests {
		_, errOut, code := runCLI(t, tt.args...)
		if code != tt.code || !strings.Contains(errOut, tt.want) {
			t.Errorf("h2scope %v: exit %d, stderr %q; want exit %d containing %q", tt.args, code, errOut, tt.code, tt.want)
		}
	}
}

// TestTruncatedCaptureGivesPartialResult cuts a capture mid-record: the
// connections before the cut are printed and the fault is named with file,
// frame and offset.
func TestTruncatedCaptureGivesPartialResult(t *testing.T) {
	data := readFile(t, "../../testdata/pcaps/http1-nokeepalive.pcapng")
	cut := filepath.Join(t.TempDir(), "cut.pcapng")
	writeFile(t, cut, data[:len(data)/2])
	out, errOut, code := runCLI(t, "conns", "--json", cut)
	if code != 2 {
		t.Errorf("exit %d, want 2", code)
	}
	if n := strings.Count(out, "\n"); n < 5 || n >= 15 {
		t.Errorf("%d connections printed from half the capture, want some but not all 15", n)
	}
	if !strings.Contains(errOut, cut+": frame ") || !strings.Contains(errOut, "(offset ") || !strings.Contains(errOut, "truncated") {
		t.Errorf("stderr %q does not name the file, frame, offset and cause", errOut)
	}
}

// TestTimelineIsInFrameOrder: on a capture that starts mid-connection,
// units are completed out of frame order (bytes held while the protocol is
// recognised); the timeline still prints them by frame, from time 0.
func TestTimelineIsInFrameOrder(t *testing.T) {
	out, errOut, code := runCLI(t, "timeline", "--conn", "0", "../../testdata/pcaps/grpc-unary-h2c-midstream.pcapng")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")[1:]
	var prev uint64
	for i, l := range lines {
		f := strings.Fields(l)
		var frame uint64
		var secs float64
		if _, err := fmt.Sscan(f[0], &frame); err != nil {
			t.Fatalf("line %d: %q: %v", i, l, err)
		}
		fmt.Sscan(f[1], &secs)
		if frame < prev || secs < 0 {
			t.Fatalf("line %d out of order or before the start: %q (previous frame %d)", i, l, prev)
		}
		prev = frame
	}
	if len(lines) < 100 {
		t.Errorf("only %d lines", len(lines))
	}
}

// TestTimelineMax checks that timeline --max prints the first units by
// frame and counts the rest exactly.
func TestTimelineMax(t *testing.T) {
	full, _, code := runCLI(t, "timeline", "--conn", "0", "../../testdata/pcaps/grpc-unary-h2c.pcapng")
	if code != 0 {
		t.Fatalf("exit %d", code)
	}
	all := strings.Split(strings.TrimSpace(full), "\n")
	out, _, code := runCLI(t, "timeline", "--conn", "0", "--max", "5", "../../testdata/pcaps/grpc-unary-h2c.pcapng")
	if code != 0 {
		t.Fatalf("exit %d", code)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	want := fmt.Sprintf("... %d more units after frame", len(all)-1-5)
	if len(lines) != 7 || strings.Join(lines[:6], "\n") != strings.Join(all[:6], "\n") || !strings.HasPrefix(lines[6], want) {
		t.Errorf("--max 5:\n%s\nwant the first 6 lines of the full output and %q", out, want)
	}
}
