//go:build conformance

package conformance

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/h2scope/h2scope/dissect"
	"github.com/h2scope/h2scope/dissect/event"
	"github.com/h2scope/h2scope/dissect/tcp"
	"github.com/h2scope/h2scope/dissect/tls"
)

// corpusKeyLogs names the key log of each corpus capture that has one
// (MANIFEST.md); captures in testdata/pcaps have theirs beside them as
// NAME.keys.
var corpusKeyLogs = map[string]string{
	"wireshark-test/http2-data-reassembly.pcap": "wireshark-test/http2-data-reassembly.keys",
	"wireshark-notes/http2-16-ssl.pcapng":       "wireshark-notes/http2-16-ssl.keys.txt",
	"wireshark-notes/works/dump.pcapng":         "wireshark-notes/works/premaster.txt",
	"illustrated-tls13/capture.pcap":            "illustrated-tls13/keylog.txt",
	"illustrated-tls12/capture.pcap":            "illustrated-tls12/keylog.txt",
}

// keylogFor returns the key log of a capture, "" when it has none.
func keylogFor(path string) string {
	if dir := corpusDir(); dir != "" {
		if rel, err := filepath.Rel(dir, path); err == nil {
			if k, ok := corpusKeyLogs[filepath.ToSlash(rel)]; ok {
				return filepath.Join(dir, k)
			}
		}
	}
	for _, ext := range []string{".pcapng", ".pcap"} {
		if strings.HasSuffix(path, ext) {
			k := strings.TrimSuffix(path, ext) + ".keys"
			if _, err := os.Stat(k); err == nil {
				return k
			}
		}
	}
	return ""
}

// h2unit is one HTTP/2 frame, located by capture frame, for comparison.
type h2unit struct {
	frame  uint64
	typ    string
	stream uint32
}

func (u h2unit) String() string { return fmt.Sprintf("%d:%s/%d", u.frame, u.typ, u.stream) }

// ourHTTP2 dissects path and returns its HTTP/2 frames and the server ports
// of the connections recognised as HTTP/2.
func ourHTTP2(t *testing.T, path string) ([]h2unit, map[uint16]bool, map[string]int) {
	keys := tls.NewKeyLog()
	if k := keylogFor(path); k != "" {
		b, err := os.ReadFile(k)
		if err != nil {
			t.Fatal(err)
		}
		keys.Add(b, k)
	}
	var units []h2unit
	grpcMsgs := map[string]int{}
	ports := map[uint16]bool{}
	nonH2 := map[uint16]bool{}
	upgraded := map[event.ConnID]bool{}
	sink := event.SinkFunc(func(e *event.Event) {
		switch e.Proto {
		case event.ProtoHTTP1:
			// An h2c upgrade: tshark follows it by itself, and decoding
			// the port as HTTP/2 from the first byte would break it.
			upgraded[e.Conn] = true
		case event.ProtoHTTP2:
			if e.Type != "PREFACE" {
				units = append(units, h2unit{e.Ref.Frame, e.Type, e.Stream})
			}
		case event.ProtoGRPC:
			grpcMsgs[e.Type+"/"+e.Dir.String()]++
		}
	})
	_, err := dissect.Run(context.Background(), []string{path}, dissect.Options{
		Dissect: true, Sink: sink, Keys: keys,
		TCP: tcp.Options{OnFinish: func(c *tcp.Conn) {
			if c.Proto == "http2" && !upgraded[c.ID] {
				ports[c.Server.Port()] = true
			} else if c.Proto != "" {
				nonH2[c.Server.Port()] = true
			}
		}},
	})
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	for p := range nonH2 {
		delete(ports, p) // decoding that port as HTTP/2 would break the others
	}
	return units, ports, grpcMsgs
}

// tsharkHTTP2 returns tshark's HTTP/2 frames with the given ports decoded
// as HTTP/2, optionally with the gRPC dissector disabled.
func tsharkHTTP2(t *testing.T, path string, ports map[uint16]bool, noGRPC bool) []h2unit {
	args := []string{"-n", "-r", path, "-Y", "http2", "-T", "fields", "-E", "separator=/t",
		"-e", "frame.number", "-e", "http2.type", "-e", "http2.streamid"}
	for p := range ports {
		args = append(args, "-d", fmt.Sprintf("tcp.port==%d,http2", p))
	}
	if noGRPC {
		args = append(args, "--disable-protocol", "grpc", "--disable-protocol", "protobuf")
	}
	if k := keylogFor(path); k != "" {
		args = append(args, "-o", "tls.keylog_file:"+k)
	}
	var stderr bytes.Buffer
	cmd := exec.Command("tshark", args...)
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("tshark: %v: %s", err, stderr.String())
	}
	var units []h2unit
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		p := strings.Split(line, "\t")
		if len(p) < 3 || p[1] == "" {
			continue
		}
		n, _ := strconv.ParseUint(p[0], 10, 64)
		types, streams := strings.Split(p[1], ","), strings.Split(p[2], ",")
		for i, ty := range types {
			code, _ := strconv.Atoi(ty)
			var sid uint64
			if i < len(streams) {
				sid, _ = strconv.ParseUint(streams[i], 10, 32)
			}
			units = append(units, h2unit{n, h2TypeName(code), uint32(sid)})
		}
	}
	return units
}

// h2TypeName names an HTTP/2 frame type code as RFC 9113 does.
func h2TypeName(code int) string {
	names := map[int]string{0: "DATA", 1: "HEADERS", 2: "PRIORITY", 3: "RST_STREAM", 4: "SETTINGS", 5: "PUSH_PROMISE",
		6: "PING", 7: "GOAWAY", 8: "WINDOW_UPDATE", 9: "CONTINUATION", 0xa: "ALTSVC", 0xc: "ORIGIN", 0x10: "PRIORITY_UPDATE"}
	if n, ok := names[code]; ok {
		return n
	}
	return fmt.Sprintf("UNKNOWN_0x%x", code)
}

// byType counts units by frame type.
func byType(us []h2unit) map[string]int {
	m := map[string]int{}
	for _, u := range us {
		m[u.typ]++
	}
	return m
}

// diffUnits returns the units only in a and only in b, as multisets.
func diffUnits(a, b []h2unit) (onlyA, onlyB []h2unit) {
	count := map[h2unit]int{}
	for _, u := range a {
		count[u]++
	}
	for _, u := range b {
		count[u]--
	}
	for u, n := range count {
		for ; n > 0; n-- {
			onlyA = append(onlyA, u)
		}
		for ; n < 0; n++ {
			onlyB = append(onlyB, u)
		}
	}
	sort.Slice(onlyA, func(i, j int) bool { return onlyA[i].frame < onlyA[j].frame })
	sort.Slice(onlyB, func(i, j int) bool { return onlyB[i].frame < onlyB[j].frame })
	return
}

// TestHTTP2AgainstTshark compares every HTTP/2 frame h2scope dissects (type,
// stream and the capture frame that completed it) with tshark's, on every
// capture where h2scope finds HTTP/2. tshark runs twice: as configured by
// default, and with its gRPC and Protobuf dissectors disabled, since tshark
// 4.0 loses HTTP/2 frames when those throw on a body; h2scope must equal at
// least one of the two, or the difference must be explained in
// knownHTTP2Differences.
func TestHTTP2AgainstTshark(t *testing.T) {
	requireTshark(t)
	files := captures(t, "../testdata/pcaps")
	if dir := corpusDir(); dir != "" {
		files = append(files, captures(t, dir)...)
	}
	var b strings.Builder
	fmt.Fprintf(&b, "\n%-58s %8s %8s %8s  %s\n", "capture", "h2scope", "tshark", "-grpc", "frames by type (h2scope)")
	checked := 0
	for _, f := range files {
		ours, ports, msgs := ourHTTP2(t, f)
		if len(ours) == 0 {
			continue
		}
		checked++
		ts := tsharkHTTP2(t, f, ports, false)
		tsNoGRPC := tsharkHTTP2(t, f, ports, true)
		rel := relName(f)
		fmt.Fprintf(&b, "%-58s %8d %8d %8d  %v grpc %v\n", rel, len(ours), len(ts), len(tsNoGRPC), byType(ours), msgs)
		if n := msgs["message/c2s"] + msgs["message/s2c"]; n > 0 {
			if tn := tsharkGRPCMessages(t, f, ports); tn != n {
				if reason, ok := knownGRPCDifferences[rel]; ok {
					t.Logf("%s: gRPC messages: h2scope %d, tshark %d: known (%s)", rel, n, tn, reason)
				} else {
					t.Errorf("%s: gRPC messages: h2scope %d, tshark %d", rel, n, tn)
				}
			}
		}
		a1, b1 := diffUnits(ours, ts)
		a2, b2 := diffUnits(ours, tsNoGRPC)
		if len(a1)+len(b1) == 0 || len(a2)+len(b2) == 0 {
			continue
		}
		if reason, ok := knownHTTP2Differences[rel]; ok {
			t.Logf("%s: known difference (%s): only h2scope %v, only tshark %v", rel, reason, head(a2), head(b2))
			continue
		}
		t.Errorf("%s: HTTP/2 frames differ from tshark (gRPC dissector disabled):\n\tonly h2scope: %v\n\tonly tshark:  %v", rel, head(a2), head(b2))
	}
	t.Log(b.String())
	if checked == 0 {
		t.Fatal("no capture with HTTP/2 found")
	}
}

func head(us []h2unit) string {
	if len(us) > 8 {
		return fmt.Sprint(us[:8]) + fmt.Sprintf(" (+%d more)", len(us)-8)
	}
	return fmt.Sprint(us)
}

// tsharkGRPCMessages counts the gRPC messages tshark dissects.
func tsharkGRPCMessages(t *testing.T, path string, ports map[uint16]bool) int {
	args := []string{"-n", "-r", path, "-Y", "grpc", "-T", "fields", "-e", "grpc.message_length"}
	for p := range ports {
		args = append(args, "-d", fmt.Sprintf("tcp.port==%d,http2", p))
	}
	if k := keylogFor(path); k != "" {
		args = append(args, "-o", "tls.keylog_file:"+k)
	}
	out, err := exec.Command("tshark", args...).Output()
	if err != nil {
		t.Fatalf("tshark: %v", err)
	}
	n := 0
	for _, line := range strings.Split(string(out), "\n") {
		if line != "" {
			n += strings.Count(line, ",") + 1
		}
	}
	return n
}
