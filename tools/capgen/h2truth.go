package main

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"

	"golang.org/x/net/http2"

	"github.com/h2scope/h2scope/tools/capgen/truth"
)

// grpcCodeNames are the gRPC status codes' names, by number, as the gRPC
// specification writes them.
var grpcCodeNames = [...]string{"OK", "CANCELLED", "UNKNOWN", "INVALID_ARGUMENT", "DEADLINE_EXCEEDED",
	"NOT_FOUND", "ALREADY_EXISTS", "PERMISSION_DENIED", "RESOURCE_EXHAUSTED", "FAILED_PRECONDITION",
	"ABORTED", "OUT_OF_RANGE", "UNIMPLEMENTED", "INTERNAL", "UNAVAILABLE", "DATA_LOSS", "UNAUTHENTICATED"}

// grpcCodeName names status code c.
func grpcCodeName(c uint32) string {
	if int(c) < len(grpcCodeNames) {
		return grpcCodeNames[c]
	}
	return "CODE_" + strconv.FormatUint(uint64(c), 10)
}

// grpcStatusName names a grpc-status header value; "" if v is empty.
func grpcStatusName(v string) string {
	if v == "" {
		return ""
	}
	n, err := strconv.ParseUint(v, 10, 32)
	if err != nil {
		return "INVALID(" + v + ")"
	}
	return grpcCodeName(uint32(n))
}

// wires waits for every connection's wire tee and returns the parses,
// checking that each saw exactly the bytes the server read and wrote.
func (s *session) wires() ([]*h2Wire, error) {
	s.lab.mu.Lock()
	recs := slices.Clone(s.conns)
	s.lab.mu.Unlock()
	ws := make([]*h2Wire, len(recs))
	for i, c := range recs {
		if c.tee == nil {
			return nil, fmt.Errorf("connection %d: the server never accepted it", c.id)
		}
		w := c.tee.wait()
		s.lab.mu.Lock()
		read, written := c.sides[1].read, c.sides[1].written
		if s.lab.tls {
			read, written = c.plain[0], c.plain[1]
		}
		s.lab.mu.Unlock()
		switch {
		case w.err != nil:
			return nil, fmt.Errorf("connection %d: the server's wire: %w", c.id, w.err)
		case w.total != [2]int64{read, written}:
			return nil, fmt.Errorf("connection %d: the tee saw %d/%d bytes c2s/s2c, the server read %d and wrote %d",
				c.id, w.total[0], w.total[1], read, written)
		}
		ws[i] = w
	}
	return ws, nil
}

// linkStreams sets the HTTP/2 stream of every request and gRPC call of t
// from the capgen-request and capgen-call headers the server's tee read.
func (s *session) linkStreams(t *truth.Truth, wires []*h2Wire) error {
	reqs := make(map[string]int)
	for i, tag := range s.reqTags {
		if tag != "" {
			reqs[tag] = i
		}
	}
	calls := make(map[int]int)
	for i, c := range t.GRPCCalls {
		calls[c.ID] = i
	}
	for ci, w := range wires {
		conn := ci + 1
		for id, st := range w.streams {
			if len(st.blocks) == 0 || w.blocks[st.blocks[0]].dir != 0 {
				continue
			}
			b := &w.blocks[st.blocks[0]]
			if tag := b.get("capgen-request"); tag != "" {
				i, ok := reqs[tag]
				if !ok || t.Requests[i].Conn != conn {
					return fmt.Errorf("connection %d stream %d: capgen-request %q matches no request on it", conn, id, tag)
				}
				t.Requests[i].Stream = id
			}
			if tag := b.get("capgen-call"); tag != "" {
				n, _ := strconv.Atoi(tag)
				i, ok := calls[n]
				if !ok || t.GRPCCalls[i].Conn != conn {
					return fmt.Errorf("connection %d stream %d: capgen-call %q matches no call on it", conn, id, tag)
				}
				t.GRPCCalls[i].Stream = id
			}
		}
	}
	for i, r := range t.Requests {
		if s.reqTags[i] != "" && r.Stream == 0 {
			return fmt.Errorf("request %s %s: no stream on the server's wire", r.Method, r.Path)
		}
	}
	for _, c := range t.GRPCCalls {
		if c.Stream == 0 {
			return fmt.Errorf("gRPC call %d %s: no stream on the server's wire", c.ID, c.Method)
		}
	}
	return nil
}

// wireView is a connection's wire as a capture shows it: the frames whose
// header lies at or after stream offset from[dir] (0, 0: all of them).
type wireView struct {
	w    *h2Wire
	from [2]int64
}

// in reports whether frame i is in the capture.
func (v wireView) in(i int) bool {
	f := &v.w.frames[i]
	return f.off >= v.from[f.dir]
}

// streamIn tells whether any and whether all of stream id's frames are in
// the capture.
func (v wireView) streamIn(id uint32) (anyIn, allIn bool) {
	allIn = true
	for i := range v.w.frames {
		if v.w.frames[i].stream != id {
			continue
		}
		if v.in(i) {
			anyIn = true
		} else {
			allIn = false
		}
	}
	return anyIn, allIn
}

// inCapture is truth's InCapture value for stream id.
func (v wireView) inCapture(id uint32) string {
	switch anyIn, allIn := v.streamIn(id); {
	case !anyIn:
		return truth.InCaptureNone
	case !allIn:
		return truth.InCapturePartial
	}
	return ""
}

// blockTaint tells which header blocks are undecodable from the capture
// (indexed like v.w.blocks), and per direction the dynamic-table
// insertions and streams of the blocks before it.
func (v wireView) blockTaint() (bad []bool, lost [2]int, dropped [2][]uint32) {
	bad = make([]bool, len(v.w.blocks))
	for dir := range 2 {
		var idx []int
		var refs []hpackRefs
		var kept []bool
		for i, b := range v.w.blocks {
			if b.dir != dir {
				continue
			}
			idx = append(idx, i)
			refs = append(refs, b.refs)
			in := v.in(b.first)
			kept = append(kept, in)
			if !in {
				dropped[dir] = append(dropped[dir], b.stream)
			}
		}
		b, n := undecodable(refs, kept)
		lost[dir] = n
		for j, i := range idx {
			bad[i] = b[j]
		}
	}
	return bad, lost, dropped
}

// add adds n to the direction dir of p.
func add(p *truth.PerDir, dir, n int) {
	if dir == 0 {
		p.C2S += n
	} else {
		p.S2C += n
	}
}

// summarize is the truth of the connection conn as the capture shows it,
// with the number of undecodable header blocks in it.
func (v wireView) summarize(conn int) (truth.HTTP2Conn, int) {
	w := v.w
	hc := truth.HTTP2Conn{
		Conn:     conn,
		Preface:  w.preface && v.from[0] == 0,
		Frames:   truth.FrameCounts{C2S: map[string]int{}, S2C: map[string]int{}},
		Settings: []truth.HTTP2Settings{},
		Streams:  []truth.HTTP2Stream{},
		Resets:   []truth.HTTP2Reset{},
		GoAways:  []truth.HTTP2GoAway{},
	}
	byStream := make(map[uint32][]int)
	for i := range w.frames {
		f := &w.frames[i]
		if f.stream != 0 {
			byStream[f.stream] = append(byStream[f.stream], i)
		}
		if !v.in(i) {
			continue
		}
		[2]map[string]int{hc.Frames.C2S, hc.Frames.S2C}[f.dir][f.typ.String()]++
		switch f.typ {
		case http2.FrameSettings:
			if f.flags&http2.FlagSettingsAck == 0 {
				vals := make(map[string]uint32)
				for _, st := range f.settings {
					vals[st.ID.String()] = st.Val
				}
				hc.Settings = append(hc.Settings, truth.HTTP2Settings{Dir: dirName(f.dir), Values: vals})
			}
		case http2.FrameRSTStream:
			hc.Resets = append(hc.Resets, truth.HTTP2Reset{Dir: dirName(f.dir), Stream: f.stream, Code: f.code.String()})
		case http2.FrameGoAway:
			hc.GoAways = append(hc.GoAways, truth.HTTP2GoAway{Dir: dirName(f.dir), LastStream: f.lastStream,
				Code: f.code.String(), Debug: f.debug})
		}
	}
	bad, _, _ := v.blockTaint()
	undecodableBlocks := 0
	ids := make([]uint32, 0, len(byStream))
	for id := range byStream {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	for _, id := range ids {
		anyIn, allIn := v.streamIn(id)
		if !anyIn {
			continue
		}
		st := w.streams[id]
		hs := truth.HTTP2Stream{ID: id, Partial: !allIn}
		for _, bi := range st.blocks {
			b := &w.blocks[bi]
			switch {
			case b.dir == 0 && hs.Method == "":
				hs.Method, hs.Path = b.get(":method"), b.get(":path")
			case b.dir == 1 && hs.Status == "":
				hs.Status = b.get(":status")
			}
			if !v.in(b.first) {
				continue
			}
			add(&hs.HeaderBlocks, b.dir, 1)
			if bad[bi] {
				add(&hs.UndecodableHeaderBlocks, b.dir, 1)
				undecodableBlocks++
			}
		}
		for _, i := range byStream[id] {
			if !v.in(i) {
				continue
			}
			f := &w.frames[i]
			switch f.typ {
			case http2.FrameData:
				add(&hs.DataFrames, f.dir, 1)
				add(&hs.DataBytes, f.dir, f.data)
			case http2.FrameRSTStream:
				if hs.Reset == "" {
					hs.Reset = f.code.String()
				}
			}
			if (f.typ == http2.FrameData || f.typ == http2.FrameHeaders) && f.flags&http2.FlagDataEndStream != 0 {
				if f.dir == 0 {
					hs.EndStream.C2S = 1
				} else {
					hs.EndStream.S2C = 1
				}
			}
		}
		for _, s := range w.stalls {
			if s.stream == id && v.in(s.frame) {
				add(&hs.WindowZero, s.dir, 1)
			}
		}
		hc.Streams = append(hc.Streams, hs)
	}
	for _, s := range w.stalls {
		if !v.in(s.frame) {
			continue
		}
		st := [2]*truth.Stalls{&hc.Flow.C2S, &hc.Flow.S2C}[s.dir]
		if s.stream == 0 {
			st.ConnZero++
		} else {
			st.StreamZero++
		}
		if !s.open {
			st.LongestMS = max(st.LongestMS, s.ms)
			st.TotalMS += s.ms
		}
	}
	hc.Flow.C2S.TotalMS = roundMS(hc.Flow.C2S.TotalMS)
	hc.Flow.S2C.TotalMS = roundMS(hc.Flow.S2C.TotalMS)
	return hc, undecodableBlocks
}

// roundMS rounds a sum of milliseconds to microseconds.
func roundMS(ms float64) float64 { return float64(int64(ms*1000+0.5)) / 1000 }

// callWire fills the wire fields of c, a call on v's connection.
func (v wireView) callWire(c *truth.GRPCCall) {
	w := v.w
	st := w.streams[c.Stream]
	if st == nil {
		return
	}
	c.InCapture = v.inCapture(c.Stream)
	firstS2C := true
	for _, bi := range st.blocks {
		b := &w.blocks[bi]
		if b.dir == 0 {
			if c.GRPCTimeout == "" {
				c.GRPCTimeout = b.get("grpc-timeout")
			}
			continue
		}
		if firstS2C {
			c.TrailersOnly = b.endStream
			firstS2C = false
		}
		if b.endStream {
			c.WireStatus = grpcStatusName(b.get("grpc-status"))
			c.WireMessage = b.get("grpc-message")
		}
	}
	for dir, m := range [2]*truth.GRPCMessages{&c.C2S, &c.S2C} {
		m.Wire, m.Compressed, m.MultiMessageFrames, m.Split, m.WireSizes = 0, 0, 0, 0, nil
		starts := make(map[int]int)
		var sizes []int
		for _, g := range w.msgs {
			if g.stream != c.Stream || g.dir != dir || !g.complete || !v.in(g.first) {
				continue
			}
			m.Wire++
			sizes = append(sizes, int(g.length))
			if g.compressed {
				m.Compressed++
			}
			if g.first != g.last {
				m.Split++
			}
			starts[g.first]++
		}
		for _, n := range starts {
			if n >= 2 {
				m.MultiMessageFrames++
			}
		}
		if m.Compressed > 0 {
			m.WireSizes = sizes
		}
	}
}

// applyWire (re)computes the wire-dependent parts of t from the servers'
// wires, as a capture that starts at the stream offsets cut[conn] shows
// them (nil: the whole wire): t.HTTP2, the wire fields of the gRPC calls,
// the requests' InCapture, and the HTTP/2 and gRPC fields of t.Expect.
// The requests' and calls' streams must be linked (linkStreams).
func applyWire(t *truth.Truth, wires []*h2Wire, cut map[int][2]int64) {
	type key struct {
		conn   int
		stream uint32
	}
	reqOf, callOf := make(map[key]int), make(map[key]int)
	for i, r := range t.Requests {
		if r.Stream != 0 {
			reqOf[key{r.Conn, r.Stream}] = i + 1
		}
	}
	for _, c := range t.GRPCCalls {
		callOf[key{c.Conn, c.Stream}] = c.ID
	}
	view := func(conn int) wireView { return wireView{w: wires[conn-1], from: cut[conn]} }

	e := &t.Expect
	e.HTTP2Streams, e.UndecodableHeaderBlocks, e.GRPCCalls = 0, 0, 0
	e.HTTP2Frames, e.RSTStreamCodes, e.GoAwayCodes, e.GRPCStatus = map[string]int{}, map[string]int{}, map[string]int{}, map[string]int{}
	var wz, msgs, multi, split truth.PerDir
	t.HTTP2 = nil
	for ci, w := range wires {
		conn := ci + 1
		v := view(conn)
		hc, bad := v.summarize(conn)
		for i := range hc.Streams {
			hs := &hc.Streams[i]
			hs.Request = reqOf[key{conn, hs.ID}]
			hs.Call = callOf[key{conn, hs.ID}]
		}
		t.HTTP2 = append(t.HTTP2, hc)
		e.HTTP2Streams += len(hc.Streams)
		e.UndecodableHeaderBlocks += bad
		for _, m := range []map[string]int{hc.Frames.C2S, hc.Frames.S2C} {
			for k, n := range m {
				e.HTTP2Frames[k] += n
			}
		}
		for _, r := range hc.Resets {
			e.RSTStreamCodes[r.Code]++
		}
		for _, g := range hc.GoAways {
			e.GoAwayCodes[g.Code]++
		}
		wz.C2S += hc.Flow.C2S.StreamZero + hc.Flow.C2S.ConnZero
		wz.S2C += hc.Flow.S2C.StreamZero + hc.Flow.S2C.ConnZero
		for _, b := range w.blocks {
			if b.dir == 1 && v.in(b.first) {
				if st := grpcStatusName(b.get("grpc-status")); st != "" {
					e.GRPCStatus[st]++
				}
			}
		}
		starts := make(map[int]int)
		for _, g := range w.msgs {
			if !g.complete || !v.in(g.first) {
				continue
			}
			add(&msgs, g.dir, 1)
			if g.first != g.last {
				add(&split, g.dir, 1)
			}
			starts[g.first]++
		}
		for f, n := range starts {
			if n >= 2 {
				add(&multi, w.frames[f].dir, 1)
			}
		}
	}
	e.WindowZero = &wz
	for i := range t.Requests {
		r := &t.Requests[i]
		if r.Stream == 0 {
			continue
		}
		r.InCapture = view(r.Conn).inCapture(r.Stream)
	}
	if len(t.GRPCCalls) == 0 {
		e.GRPCStatus = nil
		return
	}
	for i := range t.GRPCCalls {
		c := &t.GRPCCalls[i]
		view(c.Conn).callWire(c)
		if c.InCapture != truth.InCaptureNone {
			e.GRPCCalls++
		}
	}
	e.GRPCMessages, e.GRPCMultiMessageFrames, e.GRPCSplitMessages = &msgs, &multi, &split
}

// tcpFlow is one connection of a capture, reassembled: each direction's
// payload in sequence order, and where each data segment sits in it.
type tcpFlow struct {
	isn    [2]uint32 // initial sequence numbers (of the SYNs)
	hasISN [2]bool
	data   [2][]byte
	segs   []flowSeg
}

// flowSeg is one data segment of a tcpFlow.
type flowSeg struct {
	pkt int   // index in the capture
	dir int   // 0 c2s, 1 s2c
	off int64 // offset of its first byte in the direction's payload
	n   int
}

// tcpFlows reassembles every connection of an in-order capture of one
// server port. It fails on a gap, an overlap or a connection without
// handshake.
func tcpFlows(pkts []packet, serverPort uint16) (map[connKey]*tcpFlow, error) {
	flows := make(map[connKey]*tcpFlow)
	ct := newConnTracker(serverPort)
	for i, p := range pkts {
		t, ok := parseTCP(p.data)
		if !ok {
			return nil, fmt.Errorf("frame %d: not an IPv4 TCP segment", i+1)
		}
		k, dir, ok := ct.track(t)
		if !ok {
			return nil, fmt.Errorf("frame %d: not to or from port %d", i+1, serverPort)
		}
		f := flows[k]
		if f == nil {
			f = new(tcpFlow)
			flows[k] = f
		}
		if t.flags&flagSYN != 0 {
			f.isn[dir], f.hasISN[dir] = t.seq, true
		}
		if t.payloadLen == 0 {
			continue
		}
		if !f.hasISN[dir] {
			return nil, fmt.Errorf("frame %d: data before the %s SYN", i+1, dirName(dir))
		}
		off := int64(t.seq - f.isn[dir] - 1)
		if off != int64(len(f.data[dir])) {
			return nil, fmt.Errorf("frame %d: %s data at offset %d, expected %d", i+1, dirName(dir), off, len(f.data[dir]))
		}
		f.data[dir] = append(f.data[dir], p.data[t.payloadOff:t.payloadOff+t.payloadLen]...)
		f.segs = append(f.segs, flowSeg{pkt: i, dir: dir, off: off, n: t.payloadLen})
	}
	return flows, nil
}

// connFlows reassembles the connections of pkts as tcpFlows does and
// returns the flow of each of conns, by index: nil for a connection that
// is not in the capture.
func connFlows(pkts []packet, serverPort uint16, conns []truth.Connection) ([]*tcpFlow, error) {
	flows, err := tcpFlows(pkts, serverPort)
	if err != nil {
		return nil, err
	}
	keys, err := truthKeys(conns)
	if err != nil {
		return nil, err
	}
	fs := make([]*tcpFlow, len(conns))
	for i, k := range keys {
		fs[i] = flows[k]
	}
	return fs, nil
}

// checkFlows calls check on each of conns (i its index) with its flow in
// pkts, and returns the errors check returned joined, with one for each
// connection that is not in the capture.
func checkFlows(pkts []packet, serverPort uint16, conns []truth.Connection, check func(i int, c truth.Connection, f *tcpFlow) []error) error {
	flows, err := connFlows(pkts, serverPort, conns)
	if err != nil {
		return err
	}
	var errs []error
	for i, c := range conns {
		if flows[i] == nil {
			errs = append(errs, fmt.Errorf("connection %d: not in the capture", c.ID))
			continue
		}
		errs = append(errs, check(i, c, flows[i])...)
	}
	return errors.Join(errs...)
}

// frameKey is what verifyHTTP2 compares of each frame.
type frameKey struct {
	typ    http2.FrameType
	flags  http2.Flags
	stream uint32
	length uint32
}

// frameKeys reads the HTTP/2 frames of b with an http2.Framer.
func frameKeys(b []byte) ([]frameKey, error) {
	fr := http2.NewFramer(nil, bytes.NewReader(b))
	fr.SetMaxReadFrameSize(1<<24 - 1)
	var ks []frameKey
	for {
		f, err := fr.ReadFrame()
		if errors.Is(err, io.EOF) {
			return ks, nil
		}
		if err != nil {
			return ks, err
		}
		h := f.Header()
		ks = append(ks, frameKey{h.Type, h.Flags, h.StreamID, h.Length})
	}
}

// verifyHTTP2 checks that the HTTP/2 frames in the capture are, per
// connection and direction, those the server's tee parsed: same type,
// flags, stream and length, in the same order.
func verifyHTTP2(pkts []packet, serverPort uint16, t *truth.Truth, wires []*h2Wire) error {
	return checkFlows(pkts, serverPort, t.Connections, func(i int, c truth.Connection, f *tcpFlow) (errs []error) {
		for dir := range 2 {
			b := f.data[dir]
			if dir == 0 {
				if !bytes.HasPrefix(b, []byte(http2.ClientPreface)) {
					errs = append(errs, fmt.Errorf("connection %d: no client preface in the capture", c.ID))
					continue
				}
				b = b[len(http2.ClientPreface):]
			}
			got, err := frameKeys(b)
			if err != nil {
				errs = append(errs, fmt.Errorf("connection %d %s: frame %d in the capture: %w", c.ID, dirName(dir), len(got)+1, err))
				continue
			}
			var want []frameKey
			for _, wf := range wires[i].frames {
				if wf.dir == dir {
					want = append(want, frameKey{wf.typ, wf.flags, wf.stream, wf.length})
				}
			}
			if !slices.Equal(got, want) {
				n := 0
				for n < min(len(got), len(want)) && got[n] == want[n] {
					n++
				}
				errs = append(errs, fmt.Errorf("connection %d %s: %d HTTP/2 frames in the capture, the server's tee saw %d; first difference at frame %d",
					c.ID, dirName(dir), len(got), len(want), n+1))
			}
		}
		return errs
	})
}
