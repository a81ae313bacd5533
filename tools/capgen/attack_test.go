package main

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/h2scope/h2scope/tools/capgen/truth"
)

// attacksDir holds the committed attack captures.
var attacksDir = filepath.Join(pcapsDir, "attacks")

// TestAttackCommitted regenerates every attack capture with its
// committed count and checks that capture and truth equal the committed
// files byte for byte: the generator is deterministic and the committed
// files are up to date.
func TestAttackCommitted(t *testing.T) {
	dir := t.TempDir()
	for _, k := range attackKinds {
		t.Run(k.name, func(t *testing.T) {
			if _, _, err := writeAttack(dir, k, k.n); err != nil {
				t.Fatal(err)
			}
			for _, ext := range []string{".pcapng", ".truth.json"} {
				got, err := os.ReadFile(filepath.Join(dir, k.name+ext))
				if err != nil {
					t.Fatal(err)
				}
				want, err := os.ReadFile(filepath.Join(attacksDir, k.name+ext))
				if err != nil {
					t.Fatalf("%v (go run ./tools/capgen -attack all -out testdata/pcaps/attacks)", err)
				}
				if !bytes.Equal(got, want) {
					t.Errorf("%s%s differs from the committed file: regenerate with go run ./tools/capgen -attack all -out testdata/pcaps/attacks", k.name, ext)
				}
			}
		})
	}
}

// TestAttackWire rereads each committed attack capture with code of its
// own: TCP (every segment in sequence, every ACK acknowledging all the
// peer sent), then the HTTP/2 frames of both directions with x/net's
// Framer and HPACK decoder, and checks them against the truth.
func TestAttackWire(t *testing.T) {
	files, err := filepath.Glob(filepath.Join(attacksDir, "*.truth.json"))
	if err != nil {
		t.Fatal(err)
	}
	if len(files) != len(attackKinds) {
		t.Fatalf("%d truth files in %s, want %d", len(files), attacksDir, len(attackKinds))
	}
	for _, tf := range files {
		r, err := readScenario(tf[:len(tf)-len(".truth.json")] + ".pcapng")
		if err != nil {
			t.Fatal(err)
		}
		t.Run(r.truth.Scenario, func(t *testing.T) {
			if err := checkAttackWire(r); err != nil {
				t.Error(err)
			}
		})
	}
}

// checkAttackWire checks one attack capture against its truth.
func checkAttackWire(r *result) error {
	tr := r.truth
	e := tr.Expect
	if len(r.pkts) != e.Frames {
		return fmt.Errorf("%d frames, truth %d", len(r.pkts), e.Frames)
	}
	if e.HTTP2Frames == nil { // the SYN floods
		// Each SYN alone, or (half-open) followed by the server's SYN-ACK
		// acknowledging it, and nothing else.
		sources := map[[4]byte]bool{}
		syns, synacks := 0, 0
		var last tcpInfo
		for i, p := range r.pkts {
			ti, ok := parseTCP(p.data)
			switch {
			case ok && ti.flags == flagSYN && ti.dst == attackServerPort && ti.payloadLen == 0:
				syns++
				sources[[4]byte(p.data[14+12:14+16])] = true
			case ok && ti.flags == flagSYN|flagACK && ti.src == attackServerPort && ti.dst == last.src && ti.ack == last.seq+1 &&
				last.flags == flagSYN && tr.Stack.Facts["half_open"] > 0:
				synacks++
			default:
				return fmt.Errorf("frame %d: neither a lone SYN to port %d nor the SYN-ACK answering it", i+1, attackServerPort)
			}
			last = ti
		}
		if syns != tr.Stack.Facts["syns"] || len(sources) != tr.Stack.Facts["sources"] || synacks != tr.Stack.Facts["half_open"] {
			return fmt.Errorf("%d SYNs from %d sources, %d SYN-ACKs; truth %v", syns, len(sources), synacks, tr.Stack.Facts)
		}
		return nil
	}
	p := newH2Parser()
	var next [2]uint32
	var started [2]bool
	var payload [2]int64
	for i, pk := range r.pkts {
		ti, ok := parseTCP(pk.data)
		if !ok {
			return fmt.Errorf("frame %d: not IPv4 TCP", i+1)
		}
		dir := 0
		if ti.src == attackServerPort {
			dir = 1
		}
		if ti.flags&flagSYN != 0 {
			next[dir], started[dir] = ti.seq+1, true
		} else if !started[dir] || ti.seq != next[dir] {
			return fmt.Errorf("frame %d: seq %d, want %d", i+1, ti.seq, next[dir])
		}
		if ti.flags&flagACK != 0 && ti.ack != next[1-dir] {
			return fmt.Errorf("frame %d: ack %d, want %d", i+1, ti.ack, next[1-dir])
		}
		if ti.payloadLen > 0 {
			next[dir] += uint32(ti.payloadLen)
			payload[dir] += int64(ti.payloadLen)
			p.feed(dir, pk.data[ti.payloadOff:ti.payloadOff+ti.payloadLen], pk.ts)
		}
		if ti.flags&flagFIN != 0 {
			next[dir]++
		}
	}
	w := p.finish()
	if w.err != nil {
		return w.err
	}
	if payload[0] != e.C2SBytes || payload[1] != e.S2CBytes {
		return fmt.Errorf("payload %v, truth %d c2s %d s2c", payload, e.C2SBytes, e.S2CBytes)
	}
	got := map[string]int{}
	var rst int
	for _, f := range w.frames {
		got[[2]string{"c2s_", "s2c_"}[f.dir]+f.typ.String()]++
		if f.typ.String() == "RST_STREAM" {
			rst++
		}
	}
	for k, n := range got {
		if tr.Stack.Facts[k] != n {
			return fmt.Errorf("%s: %d frames, truth %d", k, n, tr.Stack.Facts[k])
		}
	}
	for k, n := range tr.Stack.Facts {
		if len(k) > 4 && (k[:4] == "c2s_" || k[:4] == "s2c_") && got[k] != n {
			return fmt.Errorf("%s: %d frames, truth %d", k, got[k], n)
		}
	}
	if n, ok := tr.Stack.Facts["rst_frames"]; ok && n != rst {
		return fmt.Errorf("%d RST_STREAM frames, truth %d", rst, n)
	}
	if n, ok := tr.Stack.Facts["decoded_list_bytes"]; ok {
		return checkBombBlocks(w, tr, n)
	}
	return nil
}

// checkBombBlocks checks that every client header block of an HPACK bomb
// decodes to n bytes as SETTINGS_MAX_HEADER_LIST_SIZE counts them.
func checkBombBlocks(w *h2Wire, tr *truth.Truth, n int) error {
	blocks := 0
	for _, b := range w.blocks {
		if b.dir != 0 {
			continue
		}
		blocks++
		size := 0
		for _, f := range b.fields {
			size += int(f.Size())
		}
		if size != n {
			return fmt.Errorf("stream %d: header list of %d bytes, truth %d", b.stream, size, n)
		}
	}
	if blocks != tr.Stack.Facts["header_blocks"] {
		return fmt.Errorf("%d client header blocks, truth %d", blocks, tr.Stack.Facts["header_blocks"])
	}
	return nil
}
