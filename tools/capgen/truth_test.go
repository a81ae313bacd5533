package main

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/gopacket/gopacket/pcapgo"

	"github.com/h2scope/h2scope/tools/capgen/truth"
)

// pcapsDir holds the committed captures, from this package's directory.
const pcapsDir = "../../testdata/pcaps"

// maxCapture and maxCaptures bound the size of one committed capture and
// of all of them together.
const (
	maxCapture  = 2_000_000
	maxCaptures = 8_000_000
)

// capturedConn is what TestCommittedTruth reads from a capture for one
// connection, decoding with gopacket rather than capgen's own parser.
type capturedConn struct {
	syns     int               // SYN without ACK
	payload  [2]int64          // c2s, s2c
	firstFIN string            // "client" or "server"
	firstRST string            // "client" or "server"
	seqs     [2]map[uint32]int // payload-carrying seq -> count, per direction
	segs     [2][]capturedSeg  // payload-carrying segments in capture order, per direction
	isn      [2]*uint32        // sequence number of the SYN, per direction
}

// capturedSeg is one segment with payload.
type capturedSeg struct {
	frame   int // 1-based
	seq     uint32
	payload []byte
}

// readCapture decodes a pcapng into per-connection summaries, and the raw
// seq of every frame (index frame-1). A connection is a client port and
// the number of SYNs from that port before it (port reuse).
func readCapture(t *testing.T, path string, server uint16) (map[connKey]*capturedConn, []uint32) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	r, err := pcapgo.NewNgReader(f, pcapgo.DefaultNgReaderOptions)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	if r.LinkType() != layers.LinkTypeEthernet {
		t.Fatalf("%s: link type %v, want Ethernet", path, r.LinkType())
	}
	var (
		eth     layers.Ethernet
		ip4     layers.IPv4
		tcp     layers.TCP
		payload gopacket.Payload
		decoded []gopacket.LayerType
	)
	parser := gopacket.NewDecodingLayerParser(layers.LayerTypeEthernet, &eth, &ip4, &tcp, &payload)
	conns := make(map[connKey]*capturedConn)
	syns := make(map[uint16]int)
	synSeq := make(map[uint16]uint32)
	var seqs []uint32
	for frame := 1; ; frame++ {
		data, ci, err := r.ZeroCopyReadPacketData()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("%s: frame %d: %v", path, frame, err)
		}
		if ci.CaptureLength != ci.Length {
			t.Errorf("%s: frame %d truncated", path, frame)
		}
		if err := parser.DecodeLayers(data, &decoded); err != nil && len(decoded) < 3 {
			t.Fatalf("%s: frame %d: %v", path, frame, err)
		}
		if int(ip4.Length) != len(data)-14 {
			t.Errorf("%s: frame %d: IPv4 total length %d, frame has %d bytes of IP", path, frame, ip4.Length, len(data)-14)
		}
		client, dir := uint16(tcp.SrcPort), 0
		switch server {
		case uint16(tcp.SrcPort):
			client, dir = uint16(tcp.DstPort), 1
		case uint16(tcp.DstPort):
		default:
			t.Fatalf("%s: frame %d: ports %d>%d, server is %d", path, frame, tcp.SrcPort, tcp.DstPort, server)
		}
		if tcp.SYN && !tcp.ACK {
			// A SYN repeating the sequence number of the port's latest
			// SYN is a retransmission, not a new connection.
			if isn, seen := synSeq[client]; !seen || isn != tcp.Seq {
				syns[client]++
			}
			synSeq[client] = tcp.Seq
		}
		k := connKey{port: client, nth: max(syns[client]-1, 0)}
		c := conns[k]
		if c == nil {
			c = &capturedConn{seqs: [2]map[uint32]int{{}, {}}}
			conns[k] = c
		}
		if tcp.SYN && !tcp.ACK {
			c.syns++
		}
		if tcp.FIN && c.firstFIN == "" {
			c.firstFIN = [2]string{"client", "server"}[dir]
		}
		if tcp.RST && c.firstRST == "" {
			c.firstRST = [2]string{"client", "server"}[dir]
		}
		n := len(tcp.Payload)
		c.payload[dir] += int64(n)
		if n > 0 {
			c.seqs[dir][tcp.Seq]++
			c.segs[dir] = append(c.segs[dir], capturedSeg{frame: frame, seq: tcp.Seq, payload: bytes.Clone(tcp.Payload)})
		}
		if tcp.SYN {
			isn := tcp.Seq
			c.isn[dir] = &isn
		}
		seqs = append(seqs, tcp.Seq)
	}
	return conns, seqs
}

// TestCommittedTruth checks every testdata/pcaps/NAME.truth.json against
// NAME.pcapng: as many SYNs from each client port as connections the
// client dialed from it, so one per connection and no other, the
// frame count, the bytes the programs wrote, who sent the first FIN, and
// for derived captures that each edit is where the truth says. It needs
// no privileges.
func TestCommittedTruth(t *testing.T) {
	files, err := filepath.Glob(filepath.Join(pcapsDir, "*.truth.json"))
	if err != nil {
		t.Fatal(err)
	}
	if len(files) == 0 {
		t.Skipf("no truth files in %s: run go run ./tools/capgen -out testdata/pcaps as root", pcapsDir)
	}
	for _, file := range files {
		name := strings.TrimSuffix(filepath.Base(file), ".truth.json")
		t.Run(name, func(t *testing.T) {
			tr, err := truth.Load(file)
			if err != nil {
				t.Fatal(err)
			}
			if tr.Scenario != name {
				t.Errorf("scenario %q in %s", tr.Scenario, file)
			}
			if sc := findScenario(name); sc == nil || !sc.commit {
				t.Errorf("no committed scenario %q in capgen", name)
			}
			pcap := filepath.Join(pcapsDir, name+".pcapng")
			if st, err := os.Stat(pcap); err != nil {
				t.Fatal(err)
			} else if st.Size() >= maxCapture {
				t.Errorf("%s is %d bytes, keep committed captures under 2 MB (1 MB where possible)", pcap, st.Size())
			}
			server, err := netip.ParseAddrPort(tr.Server)
			if err != nil {
				t.Fatal(err)
			}
			conns, seqs := readCapture(t, pcap, server.Port())
			if len(seqs) != tr.Expect.Frames {
				t.Errorf("%d frames, truth expects %d", len(seqs), tr.Expect.Frames)
			}
			if len(tr.Connections) != tr.Expect.TCPConnections {
				t.Errorf("%d connections listed, expect.tcp_connections %d", len(tr.Connections), tr.Expect.TCPConnections)
			}
			inCapture := 0
			for _, r := range tr.Requests {
				if r.InCapture != truth.InCaptureNone {
					inCapture++
				}
			}
			if inCapture != tr.Expect.HTTPRequests {
				t.Errorf("%d requests in the capture, expect.http_requests %d", inCapture, tr.Expect.HTTPRequests)
			}
			// Bytes a derived capture adds (retransmissions) or lacks (drops).
			var extra, lost [2]map[int]int64 // by connection ID
			for i := range 2 {
				extra[i], lost[i] = map[int]int64{}, map[int]int64{}
			}
			keys, err := truthKeys(tr.Connections)
			if err != nil {
				t.Fatal(err)
			}
			if d := tr.DerivedFrom; d != nil {
				checkEdits(t, tr, keys, conns, seqs)
				for _, e := range d.Edits {
					dir := dirIndex(e.Dir)
					switch e.Op {
					case truth.OpRetransmit:
						extra[dir][e.Conn] += int64(e.Len)
					case truth.OpDrop:
						lost[dir][e.Conn] += int64(e.Len)
					}
				}
			}
			requests := make(map[int]int)
			for _, c := range tr.GRPCCalls {
				requests[c.Conn]++
			}
			for _, r := range tr.Requests {
				requests[r.Conn]++
				if r.Conn < 1 || r.Conn > len(tr.Connections) || tr.Connections[r.Conn-1].Client != r.ConnClient {
					t.Errorf("request %s %s: connection %d (%s) not listed", r.Method, r.Path, r.Conn, r.ConnClient)
				}
			}
			listed := make(map[connKey]bool)
			for i, c := range tr.Connections {
				name := fmt.Sprintf("connection %d (%s)", c.ID, c.Client)
				if c.ID != i+1 {
					t.Errorf("%s listed at %d", name, i+1)
				}
				listed[keys[i]] = true
				got := conns[keys[i]]
				if got == nil {
					t.Errorf("%s: not in the capture", name)
					continue
				}
				wantSYNs := 1 + c.SYNRetransmits
				if d := tr.DerivedFrom; d != nil && d.Cut != nil && d.Cut.Conn == c.ID {
					wantSYNs = 0
				}
				if got.syns != wantSYNs {
					t.Errorf("%s: %d SYNs in the capture, want %d", name, got.syns, wantSYNs)
				}
				want := [2]int64{c.C2SBytes, c.S2CBytes}
				for dir := range 2 {
					w := want[dir] + extra[dir][c.ID] - lost[dir][c.ID]
					if got.payload[dir] != w {
						t.Errorf("%s: %s payload %d bytes, truth says %d", name, [2]string{"c2s", "s2c"}[dir], got.payload[dir], w)
					}
				}
				aborted := c.ResetBy == c.ClosedBy && got.firstFIN == "" && got.firstRST == c.ClosedBy
				if c.ClosedBy != "" && got.firstFIN != c.ClosedBy && !aborted {
					t.Errorf("%s: closed by the %s, but the first FIN is from the %s", name, c.ClosedBy, got.firstFIN)
				}
				if requests[c.ID] != c.Requests {
					t.Errorf("%s: %d requests listed, connection says %d", name, requests[c.ID], c.Requests)
				}
			}
			for k, c := range conns {
				if !listed[k] {
					t.Errorf("client port %d, connection %d from it: %d SYNs in the capture, not in the truth", k.port, k.nth+1, c.syns)
				}
			}
		})
	}
}

func dirIndex(dir string) int {
	if dir == "s2c" {
		return 1
	}
	return 0
}

// checkEdits checks that each edit of a derivation shows in the capture:
// reordered and retransmitted segments at their new frame numbers (by
// sequence number), dropped ones nowhere.
func checkEdits(t *testing.T, tr *truth.Truth, keys []connKey, conns map[connKey]*capturedConn, seqs []uint32) {
	t.Helper()
	d := tr.DerivedFrom
	at := func(frame int) uint32 {
		if frame < 1 || frame > len(seqs) {
			t.Fatalf("edit names frame %d of %d", frame, len(seqs))
		}
		return seqs[frame-1]
	}
	for _, e := range d.Edits {
		if e.Conn < 1 || e.Conn > len(keys) || tr.Connections[e.Conn-1].Client != e.Client {
			t.Fatalf("edit on connection %d (%s), not in the truth", e.Conn, e.Client)
		}
		c := conns[keys[e.Conn-1]]
		if c == nil {
			t.Fatalf("edit on connection %d (%s), not in the capture", e.Conn, e.Client)
		}
		dir := dirIndex(e.Dir)
		switch e.Op {
		case truth.OpReorder:
			// The first segment in sequence now comes second.
			if len(e.NewFrames) != 2 || at(e.NewFrames[0]) != e.Seq || e.NewFrames[0] != e.NewFrames[1]+1 {
				t.Errorf("reorder %v: new frames %v, want seq %d second", e.Frames, e.NewFrames, e.Seq)
			}
		case truth.OpRetransmit:
			if len(e.NewFrames) != 2 || at(e.NewFrames[0]) != e.Seq || at(e.NewFrames[1]) != e.Seq || c.seqs[dir][e.Seq] != 2 {
				t.Errorf("retransmit %v: new frames %v, want seq %d twice", e.Frames, e.NewFrames, e.Seq)
			}
		case truth.OpDrop:
			if len(e.NewFrames) != 0 || c.seqs[dir][e.Seq] != 0 {
				t.Errorf("drop %v: seq %d still in the capture", e.Frames, e.Seq)
			}
		default:
			t.Errorf("unknown edit %q", e.Op)
		}
	}
}
