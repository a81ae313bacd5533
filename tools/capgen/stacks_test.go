package main

import (
	"bytes"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/h2scope/h2scope/tools/capgen/truth"
)

// stacksPcapsDir holds the committed stack captures.
var stacksPcapsDir = filepath.Join(pcapsDir, stacksDir)

// maxStackCapture bounds one committed stack capture: a few hundred KB.
const maxStackCapture = 400_000

// TestCommittedStacks checks every testdata/pcaps/stacks/NAME.truth.json
// against NAME.pcapng, decoding with gopacket: it is a committed stack
// scenario of capgen; every connection the programs reported is in the
// capture with one SYN and the payload the truth gives, and no other;
// the frame, connection and request counts; the requests per
// connection; the key log; and that the verdicts and expect.findings
// agree. It needs no privileges and none of the programs.
func TestCommittedStacks(t *testing.T) {
	files, err := filepath.Glob(filepath.Join(stacksPcapsDir, "*.truth.json"))
	if err != nil {
		t.Fatal(err)
	}
	if len(files) == 0 {
		t.Skipf("no truth files in %s: run go run ./tools/capgen -out testdata/pcaps as root (%s)", stacksPcapsDir, stackInstall)
	}
	var names []string
	for _, file := range files {
		name := strings.TrimSuffix(filepath.Base(file), ".truth.json")
		names = append(names, name)
		t.Run(name, func(t *testing.T) {
			tr, err := truth.Load(file)
			if err != nil {
				t.Fatal(err)
			}
			if tr.Scenario != name {
				t.Errorf("scenario %q in %s", tr.Scenario, file)
			}
			if sc := findScenario(name); sc == nil || !sc.commit || sc.stack == nil {
				t.Errorf("no committed stack scenario %q in capgen", name)
			} else if !slices.Equal(sc.findings, tr.Expect.Findings) {
				t.Errorf("expect.findings %v, the scenario says %v", tr.Expect.Findings, sc.findings)
			}
			st := tr.Stack
			if st == nil {
				t.Fatal("no stack record")
			}
			if st.BytesFrom != "capture" || len(st.Programs) == 0 || len(st.Reports) == 0 {
				t.Errorf("stack: bytes_from %q, %d programs, %d reports", st.BytesFrom, len(st.Programs), len(st.Reports))
			}
			for _, p := range st.Programs {
				if p.Version == "" || p.Package == "" {
					t.Errorf("program %s: version %q, package %q", p.Name, p.Version, p.Package)
				}
			}
			var warned []string
			for _, v := range st.Verdicts {
				if !slices.Contains([]string{"info", "warning", "critical"}, v.Severity) || v.Kind == "" || v.Cause == "" || v.Why == "" {
					t.Errorf("verdict %+v", v)
				}
				if v.Severity != "info" && !slices.Contains(warned, v.Kind) {
					warned = append(warned, v.Kind)
				}
			}
			if slices.Sort(warned); !slices.Equal(warned, slices.Sorted(slices.Values(tr.Expect.Findings))) {
				t.Errorf("verdicts at warning or above are %v, expect.findings %v", warned, tr.Expect.Findings)
			}

			pcap := filepath.Join(stacksPcapsDir, name+".pcapng")
			if fi, err := os.Stat(pcap); err != nil {
				t.Fatal(err)
			} else if fi.Size() > maxStackCapture {
				t.Errorf("%s is %d bytes, keep stack captures under %d", pcap, fi.Size(), maxStackCapture)
			}
			server, err := netip.ParseAddrPort(tr.Server)
			if err != nil {
				t.Fatal(err)
			}
			conns, seqs := readCapture(t, pcap, server.Port())
			if len(seqs) != tr.Expect.Frames {
				t.Errorf("%d frames, truth expects %d", len(seqs), tr.Expect.Frames)
			}
			if len(tr.Connections) != tr.Expect.TCPConnections || len(tr.Requests) != tr.Expect.HTTPRequests {
				t.Errorf("%d connections, %d requests listed; expect %d, %d", len(tr.Connections), len(tr.Requests),
					tr.Expect.TCPConnections, tr.Expect.HTTPRequests)
			}
			keys, err := truthKeys(tr.Connections)
			if err != nil {
				t.Fatal(err)
			}
			perConn := map[int]int{}
			for _, q := range tr.Requests {
				perConn[q.Conn]++
				if q.Conn < 1 || q.Conn > len(tr.Connections) || tr.Connections[q.Conn-1].Client != q.ConnClient {
					t.Errorf("request %s on connection %d (%s): not listed", q.Path, q.Conn, q.ConnClient)
				}
			}
			var sum [2]int64
			for i, c := range tr.Connections {
				got := conns[keys[i]]
				if got == nil {
					t.Errorf("connection %d (%s): not in the capture", c.ID, c.Client)
					continue
				}
				delete(conns, keys[i])
				if got.syns != 1+c.SYNRetransmits {
					t.Errorf("connection %d: %d SYNs, truth says 1 + %d retransmitted", c.ID, got.syns, c.SYNRetransmits)
				}
				if got.payload != [2]int64{c.C2SBytes, c.S2CBytes} {
					t.Errorf("connection %d: payload %v in the capture, truth %d/%d", c.ID, got.payload, c.C2SBytes, c.S2CBytes)
				}
				if perConn[c.ID] != c.Requests {
					t.Errorf("connection %d: %d requests listed, connection says %d", c.ID, perConn[c.ID], c.Requests)
				}
				sum[0] += c.C2SBytes
				sum[1] += c.S2CBytes
			}
			for k := range conns {
				t.Errorf("client port %d: a connection in the capture no program reported", k.port)
			}
			if sum != [2]int64{tr.Expect.C2SBytes, tr.Expect.S2CBytes} {
				t.Errorf("payload %v, expect %d/%d", sum, tr.Expect.C2SBytes, tr.Expect.S2CBytes)
			}
			if tr.Capture.KeyLog != "" {
				b, err := os.ReadFile(filepath.Join(stacksPcapsDir, tr.Capture.KeyLog))
				if err != nil {
					t.Fatal(err)
				}
				if !bytes.Contains(b, []byte("CLIENT_")) {
					t.Errorf("%s holds no TLS secrets", tr.Capture.KeyLog)
				}
			}
		})
	}
	for _, sc := range stackScenarios {
		if sc.commit && !slices.Contains(names, sc.name) {
			t.Errorf("stack scenario %s is not committed in %s", sc.name, stacksPcapsDir)
		}
	}
}

// TestNeedTools checks that a missing program is named with its Debian
// package and the command that installs it.
func TestNeedTools(t *testing.T) {
	t.Setenv("PATH", t.TempDir())
	err := needTools([]string{"nginx", "h2load"})
	if err == nil {
		t.Fatal("no error with an empty PATH")
	}
	for _, want := range []string{"nginx (Debian package nginx)", "h2load (Debian package nghttp2-client)", "apt-get install -y nginx nghttp2-client"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("%v: want %q", err, want)
		}
	}
	if err := needTools([]string{"lynx"}); err == nil {
		t.Error("an unknown tool passes")
	}
}

// TestCurlRequests checks that curl's transfers go to the connections of
// their ports whatever the order curl reports them in: a reuse may end
// before the transfer that connected, and a port may be reused later.
func TestCurlRequests(t *testing.T) {
	r := &stackRun{}
	r.curlRequests("a", []curlLine{
		{port: 5000, connects: 0, status: 200, url: "https://x:1/b"},
		{port: 5000, connects: 1, status: 200, url: "https://x:1/a"},
		{port: 5001, connects: 1, status: 200, url: "https://x:1/c"},
		{port: 5000, connects: 1, status: 200, url: "https://x:1/d"}, // the port reused by a new connection
		{port: 5000, connects: 0, status: 200, url: "https://x:1/e"},
	})
	var got []string
	for _, q := range r.reqs {
		got = append(got, fmt.Sprintf("%d%s", q.Conn, q.Path))
	}
	if want := "1/b 1/a 2/c 3/d 3/e"; strings.Join(got, " ") != want {
		t.Errorf("got %v, want %s", got, want)
	}
}

// TestNghttpdFrames checks the counts read from nghttpd -v.
func TestNghttpdFrames(t *testing.T) {
	log := `[id=1] [  0.314] send RST_STREAM frame <length=4, flags=0x00, stream_id=5>
          (error_code=REFUSED_STREAM(0x07))
[id=1] [  0.315] recv HEADERS frame <length=10, flags=0x05, stream_id=7>
          ; END_STREAM | END_HEADERS
[id=1] [  0.316] recv GOAWAY frame <length=8, flags=0x00, stream_id=0>
          (last_stream_id=0, error_code=NO_ERROR(0x00), opaque_data(0)=[])
`
	r := &stackRun{}
	got := r.nghttpdFrames([]byte(log))
	want := map[string]int{"send RST_STREAM": 1, "send RST_STREAM REFUSED_STREAM": 1, "recv HEADERS": 1, "recv GOAWAY": 1, "recv GOAWAY NO_ERROR": 1}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("got %v, want %v", got, want)
	}
}
