package main

import (
	"errors"
	"fmt"
	"net/netip"
	"slices"

	"golang.org/x/net/http2"

	"github.com/h2scope/h2scope/tools/capgen/truth"
)

// A cutPicker chooses where a mid-connection capture starts: it returns
// the index of the last frame of base to drop, given the reassembled
// connection f and its wire w.
type cutPicker func(base *result, f *tcpFlow, w *h2Wire) (int, error)

// deriveMidstream returns a derive function that drops the frames of base
// up to the one pick chooses, and any server packets right after it: the
// capture then starts mid-connection, with a client packet,
// without the handshake, the client preface, the first SETTINGS and the
// first header blocks. The truth keeps what the programs observed and
// recounts what the wire shows from the cut on (applyWire); the
// derivation records the dropped frames and, per direction, where the
// first whole HTTP/2 frame starts and the HPACK insertions lost.
func deriveMidstream(pick cutPicker) func(base *result) (*result, error) {
	return func(base *result) (*result, error) {
		bt := base.truth
		if len(bt.Connections) != 1 || len(base.wires) != 1 {
			return nil, fmt.Errorf("midstream: base %s has %d connections, want 1", bt.Scenario, len(bt.Connections))
		}
		ap, err := netip.ParseAddrPort(bt.Server)
		if err != nil {
			return nil, err
		}
		flows, err := connFlows(base.pkts, ap.Port(), bt.Connections)
		if err != nil {
			return nil, err
		}
		f, w := flows[0], base.wires[0]
		last, err := pick(base, f, w)
		if err != nil {
			return nil, err
		}
		// Start with a client packet, whatever the timing of the run: a
		// reader that must guess the client of a connection without a
		// handshake then has the same capture to guess from every time.
		for last+1 < len(base.pkts) {
			t, ok := parseTCP(base.pkts[last+1].data)
			if !ok || t.dst == ap.Port() {
				break
			}
			last++
		}
		from := [2]int64{int64(len(f.data[0])), int64(len(f.data[1]))}
		for _, s := range f.segs {
			if s.pkt > last {
				from[s.dir] = min(from[s.dir], s.off)
			}
		}
		for _, s := range f.segs {
			if (s.pkt <= last) != (s.off < from[s.dir]) {
				return nil, fmt.Errorf("midstream: frame %d: %s bytes %d..%d on the wrong side of the cut at %d",
					s.pkt+1, dirName(s.dir), s.off, s.off+int64(s.n), from[s.dir])
			}
		}

		t := *bt
		t.Connections = slices.Clone(bt.Connections)
		t.Requests = slices.Clone(bt.Requests)
		t.GRPCCalls = slices.Clone(bt.GRPCCalls)
		c := &t.Connections[0]
		c.BeforeCapture = &truth.Bytes{C2S: from[0], S2C: from[1]}
		c.C2SBytes -= from[0]
		c.S2CBytes -= from[1]
		t.Expect.C2SBytes -= from[0]
		t.Expect.S2CBytes -= from[1]
		applyWire(&t, base.wires, map[int][2]int64{c.ID: from})
		t.Expect.HTTPRequests = 0
		for _, r := range t.Requests {
			if r.InCapture != truth.InCaptureNone {
				t.Expect.HTTPRequests++
			}
		}

		v := wireView{w: w, from: from}
		_, lost, dropped := v.blockTaint()
		cut := &truth.Cut{Conn: c.ID}
		for i := 0; i <= last; i++ {
			cut.DroppedFrames = append(cut.DroppedFrames, i+1)
		}
		for dir := range 2 {
			cd := truth.CutDir{
				Dir:                  dirName(dir),
				Bytes:                from[dir],
				Seq:                  f.isn[dir] + 1 + uint32(from[dir]),
				DroppedHTTP2:         map[string]int{},
				DroppedHeaderStreams: nonNil32(dropped[dir]),
				TableInserts:         lost[dir],
			}
			resync := int64(-1)
			for i, wf := range w.frames {
				if wf.dir != dir {
					continue
				}
				if v.in(i) {
					if resync < 0 {
						resync = wf.off
					}
				} else {
					cd.DroppedHTTP2[wf.typ.String()]++
				}
			}
			if resync < 0 {
				resync = int64(len(f.data[dir]))
			}
			cd.PartialBytes = resync - from[dir]
			for _, s := range f.segs {
				if s.dir == dir && s.pkt > last && s.off <= resync && resync < s.off+int64(s.n) {
					cd.ResyncFrame, cd.ResyncOffset = s.pkt-last, int(resync-s.off)
					break
				}
			}
			cut.Dirs = append(cut.Dirs, cd)
		}
		t.DerivedFrom = &truth.Derivation{
			Scenario: bt.Scenario,
			How: fmt.Sprintf("frames 1 to %d of %s dropped: the capture starts mid-connection, with a client packet, without the "+
				"handshake, the client preface, the first SETTINGS and the first header blocks (%d HPACK dynamic-table insertions c2s, "+
				"%d s2c, lost); the frames after are unchanged", last+1, bt.Scenario, lost[0], lost[1]),
			BaseFrames: len(base.pkts),
			Edits:      []truth.Edit{},
			Cut:        cut,
		}
		return &result{pkts: slices.Clone(base.pkts[last+1:]), truth: &t, wires: base.wires}, nil
	}
}

func nonNil32(s []uint32) []uint32 {
	if s == nil {
		return []uint32{}
	}
	return s
}

// segAt returns the data segment of direction dir holding byte off.
func (f *tcpFlow) segAt(dir int, off int64) (flowSeg, bool) {
	for _, s := range f.segs {
		if s.dir == dir && s.off <= off && off < s.off+int64(s.n) {
			return s, true
		}
	}
	return flowSeg{}, false
}

// cutAfterStream cuts after the frame that carries the last byte of the
// END_STREAM frame stream ends with in direction dir: a capture starting
// between two calls, on frame boundaries if the next segments start there.
func cutAfterStream(dir int, stream uint32) cutPicker {
	return func(_ *result, f *tcpFlow, w *h2Wire) (int, error) {
		for _, wf := range w.frames {
			if wf.dir == dir && wf.stream == stream && wf.flags&http2.FlagDataEndStream != 0 &&
				(wf.typ == http2.FrameHeaders || wf.typ == http2.FrameData) {
				if s, ok := f.segAt(dir, wf.end()-1); ok {
					return s.pkt, nil
				}
			}
		}
		return 0, fmt.Errorf("midstream: no %s END_STREAM on stream %d", dirName(dir), stream)
	}
}

// cutInsideBody cuts inside the request body of the request made in
// phase: after the request's HEADERS and the next client segments up to
// the first that ends inside an HTTP/2 frame, so the capture's first
// client bytes are the tail of a DATA frame.
func cutInsideBody(phase string) cutPicker {
	return func(base *result, f *tcpFlow, w *h2Wire) (int, error) {
		var stream uint32
		for _, r := range base.truth.Requests {
			if r.Phase == phase {
				stream = r.Stream
				break
			}
		}
		boundary := make(map[int64]bool)
		var headersEnd int64 = -1
		for _, wf := range w.frames {
			if wf.dir != 0 {
				continue
			}
			boundary[wf.off] = true
			if wf.stream == stream && wf.typ == http2.FrameHeaders && headersEnd < 0 {
				headersEnd = wf.end()
			}
		}
		if headersEnd < 0 {
			return 0, fmt.Errorf("midstream: no request HEADERS in phase %q", phase)
		}
		first, ok := f.segAt(0, headersEnd-1)
		if !ok {
			return 0, errors.New("midstream: the request's HEADERS are not in the capture")
		}
		for _, s := range f.segs {
			if s.dir == 0 && s.pkt >= first.pkt && !boundary[s.off+int64(s.n)] {
				return s.pkt, nil
			}
		}
		return 0, fmt.Errorf("midstream: no client segment ends inside a frame after phase %q's HEADERS", phase)
	}
}
