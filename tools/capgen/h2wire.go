package main

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
	"strings"
	"sync"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
)

// A wireTee is the server's view of its own HTTP/2 wire. The server's
// watchedConn hands it every byte it reads and writes; a goroutine feeds
// them, in the order the server read and wrote them, to an h2Parser.
// Written bytes are queued before the write and committed after it (with
// the count actually written), so that a frame the peer sends in answer to
// written bytes is always parsed after them.
type wireTee struct {
	mu       sync.Mutex
	cond     *sync.Cond
	queue    []*teeChunk
	closed   bool // no more chunks will be queued
	finished bool // the parsing goroutine has returned
	done     chan struct{}
	p        *h2Parser
}

// teeChunk is one read or write.
type teeChunk struct {
	dir   int // 0: the server read it (c2s), 1: the server wrote it (s2c)
	b     []byte
	n     int  // bytes of b that count (a write may be short)
	ready bool // a write has returned
	t     time.Time
}

func newWireTee() *wireTee {
	w := &wireTee{done: make(chan struct{}), p: newH2Parser()}
	w.cond = sync.NewCond(&w.mu)
	go w.run()
	return w
}

// read tees bytes the server read.
func (w *wireTee) read(b []byte) {
	if len(b) == 0 {
		return
	}
	w.push(&teeChunk{dir: 0, b: bytes.Clone(b), n: len(b), ready: true, t: time.Now()})
}

// beginWrite tees bytes the server is about to write; endWrite must follow.
func (w *wireTee) beginWrite(b []byte) *teeChunk {
	c := &teeChunk{dir: 1, b: bytes.Clone(b), t: time.Now()}
	w.push(c)
	return c
}

// endWrite commits a write of which n bytes were written.
func (w *wireTee) endWrite(c *teeChunk, n int) {
	w.mu.Lock()
	c.n, c.ready = n, true
	w.mu.Unlock()
	w.cond.Broadcast()
}

func (w *wireTee) push(c *teeChunk) {
	w.mu.Lock()
	if !w.finished {
		w.queue = append(w.queue, c)
	}
	w.mu.Unlock()
	w.cond.Broadcast()
}

// close says no more bytes will come; pending writes still commit.
func (w *wireTee) close() {
	w.mu.Lock()
	w.closed = true
	w.mu.Unlock()
	w.cond.Broadcast()
}

// wait returns the parse once close was called and every chunk parsed.
func (w *wireTee) wait() *h2Wire {
	<-w.done
	return w.p.finish()
}

func (w *wireTee) run() {
	defer close(w.done)
	for {
		w.mu.Lock()
		for len(w.queue) == 0 && !w.closed || len(w.queue) > 0 && !w.queue[0].ready {
			w.cond.Wait()
		}
		if len(w.queue) == 0 {
			w.finished = true
			w.mu.Unlock()
			return
		}
		c := w.queue[0]
		w.queue[0] = nil
		w.queue = w.queue[1:]
		w.mu.Unlock()
		w.p.feed(c.dir, c.b[:c.n], c.t)
	}
}

// h2Wire is one connection's HTTP/2 traffic as parsed from the server's
// reads and writes, in that order. Frames, blocks and messages refer to
// each other by index in these slices.
type h2Wire struct {
	preface bool
	frames  []wireFrame
	blocks  []headerBlock
	msgs    []grpcMsg
	stalls  []wireStall
	streams map[uint32]*wireStream
	total   [2]int64 // bytes seen per direction
	err     error    // the first parse error
}

// wireFrame is one HTTP/2 frame.
type wireFrame struct {
	dir        int
	off        int64 // offset of its 9-byte header in the direction's byte stream (c2s: preface included)
	typ        http2.FrameType
	flags      http2.Flags
	stream     uint32
	length     uint32
	t          time.Time
	code       http2.ErrCode   // RST_STREAM, GOAWAY
	lastStream uint32          // GOAWAY
	debug      string          // GOAWAY
	settings   []http2.Setting // SETTINGS without ACK
	data       int             // DATA: data bytes, padding excluded
}

// end is the offset just past the frame.
func (f *wireFrame) end() int64 { return f.off + 9 + int64(f.length) }

// headerBlock is one header block: a HEADERS frame and its CONTINUATIONs.
type headerBlock struct {
	dir         int
	stream      uint32
	first, last int // frame indices
	endStream   bool
	fields      []hpack.HeaderField
	refs        hpackRefs
}

// get returns the value of the first field called name.
func (b *headerBlock) get(name string) string {
	for _, f := range b.fields {
		if f.Name == name {
			return f.Value
		}
	}
	return ""
}

// grpcMsg is one gRPC length-prefixed message.
type grpcMsg struct {
	dir         int
	stream      uint32
	first, last int // indices of the DATA frames holding its first and last byte
	length      uint32
	compressed  bool
	complete    bool
}

// wireStall is a flow-control window left at 0 by a DATA frame.
type wireStall struct {
	dir    int    // the sending direction
	stream uint32 // 0 for the connection window
	frame  int    // the DATA frame's index
	ms     float64
	open   bool // never reopened
}

// wireStream is what the parser keeps per stream.
type wireStream struct {
	id     uint32
	win    [2]int64
	stall  [2]int // index of the open stall per direction, -1
	grpc   bool
	blocks []int // header block indices
	msg    [2]msgParse
}

// msgParse follows the gRPC message framing of one direction of a stream.
type msgParse struct {
	hdr       [5]byte
	have      int    // prefix bytes held
	first     int    // frame index of the prefix's first byte
	remaining uint32 // bytes of the current message still to come
	cur       int    // index of the current message in msgs
}

// h2Parser parses both directions of one connection, fed in chunks.
type h2Parser struct {
	w          h2Wire
	buf        [2][]byte
	off        [2]int64 // stream offset of buf[d][0]
	src        [2]*sliceReader
	fr         [2]*http2.Framer
	dec        [2]*hpack.Decoder
	model      [2]*hpackModel
	block      [2]*headerBlock // being assembled
	frag       [2][]byte
	connWin    [2]int64
	streamInit [2]int64
	connStall  [2]int
}

// sliceReader reads from a slice the parser sets before each frame.
type sliceReader struct{ b []byte }

func (r *sliceReader) Read(p []byte) (int, error) {
	if len(r.b) == 0 {
		return 0, io.EOF
	}
	n := copy(p, r.b)
	r.b = r.b[n:]
	return n, nil
}

func newH2Parser() *h2Parser {
	p := &h2Parser{w: h2Wire{streams: make(map[uint32]*wireStream)}}
	for d := range 2 {
		p.src[d] = new(sliceReader)
		p.fr[d] = http2.NewFramer(nil, p.src[d])
		p.fr[d].SetMaxReadFrameSize(1<<24 - 1)
		p.dec[d] = hpack.NewDecoder(4096, nil)
		p.model[d] = newHPACKModel()
		p.connWin[d] = 65535
		p.streamInit[d] = 65535
		p.connStall[d] = -1
	}
	return p
}

func (p *h2Parser) fail(err error) {
	if p.w.err == nil {
		p.w.err = err
	}
}

// feed parses the bytes b of direction dir, observed at time t.
func (p *h2Parser) feed(dir int, b []byte, t time.Time) {
	p.w.total[dir] += int64(len(b))
	if p.w.err != nil {
		return
	}
	p.buf[dir] = append(p.buf[dir], b...)
	if dir == 0 && !p.w.preface {
		if len(p.buf[0]) < len(http2.ClientPreface) {
			return
		}
		if string(p.buf[0][:len(http2.ClientPreface)]) != http2.ClientPreface {
			p.fail(fmt.Errorf("c2s: no client preface"))
			return
		}
		p.w.preface = true
		p.consume(0, len(http2.ClientPreface))
	}
	for len(p.buf[dir]) >= 9 {
		n := 9 + int(uint32(p.buf[dir][0])<<16|uint32(p.buf[dir][1])<<8|uint32(p.buf[dir][2]))
		if len(p.buf[dir]) < n {
			return
		}
		p.src[dir].b = p.buf[dir][:n]
		f, err := p.fr[dir].ReadFrame()
		if err != nil {
			p.fail(fmt.Errorf("%s frame at offset %d: %w", dirName(dir), p.off[dir], err))
			return
		}
		p.frame(dir, f, t)
		p.consume(dir, n)
		if p.w.err != nil {
			return
		}
	}
}

// consume drops n parsed bytes of direction dir, keeping the buffer small.
func (p *h2Parser) consume(dir, n int) {
	p.off[dir] += int64(n)
	rest := p.buf[dir][n:]
	p.buf[dir] = append(p.buf[dir][:0], rest...)
}

// stream returns the stream id, creating it with the current initial
// windows.
func (p *h2Parser) stream(id uint32) *wireStream {
	s := p.w.streams[id]
	if s == nil {
		s = &wireStream{id: id, win: p.streamInit, stall: [2]int{-1, -1}}
		s.msg[0].cur, s.msg[1].cur = -1, -1
		p.w.streams[id] = s
	}
	return s
}

// frame records one frame and follows its effects.
func (p *h2Parser) frame(dir int, f http2.Frame, t time.Time) {
	h := f.Header()
	wf := wireFrame{dir: dir, off: p.off[dir], typ: h.Type, flags: h.Flags, stream: h.StreamID, length: h.Length, t: t}
	idx := len(p.w.frames)
	var s *wireStream
	if h.StreamID != 0 {
		s = p.stream(h.StreamID)
	}
	switch f := f.(type) {
	case *http2.DataFrame:
		wf.data = len(f.Data())
		p.w.frames = append(p.w.frames, wf)
		p.data(dir, s, idx, f.Data(), int64(h.Length), f.StreamEnded())
		return
	case *http2.HeadersFrame:
		p.block[dir] = &headerBlock{dir: dir, stream: h.StreamID, first: idx, endStream: f.StreamEnded()}
		p.frag[dir] = append(p.frag[dir][:0], f.HeaderBlockFragment()...)
		if f.HeadersEnded() {
			defer p.endBlock(dir, idx)
		}
	case *http2.ContinuationFrame:
		if p.block[dir] == nil {
			p.fail(fmt.Errorf("%s: CONTINUATION without HEADERS", dirName(dir)))
			return
		}
		p.frag[dir] = append(p.frag[dir], f.HeaderBlockFragment()...)
		if f.HeadersEnded() {
			defer p.endBlock(dir, idx)
		}
	case *http2.RSTStreamFrame:
		wf.code = f.ErrCode
	case *http2.GoAwayFrame:
		wf.code, wf.lastStream, wf.debug = f.ErrCode, f.LastStreamID, string(f.DebugData())
	case *http2.SettingsFrame:
		if !f.IsAck() {
			f.ForeachSetting(func(st http2.Setting) error {
				wf.settings = append(wf.settings, st)
				return nil
			})
			p.settings(dir, wf.settings, t)
		}
	case *http2.WindowUpdateFrame:
		p.windowUpdate(dir, s, int64(f.Increment), t)
	case *http2.PushPromiseFrame:
		p.fail(fmt.Errorf("%s: PUSH_PROMISE not followed", dirName(dir)))
	}
	p.w.frames = append(p.w.frames, wf)
}

// settings applies SETTINGS sent in direction dir, which govern the
// sender of the other direction.
func (p *h2Parser) settings(dir int, ss []http2.Setting, t time.Time) {
	other := 1 - dir
	for _, st := range ss {
		switch st.ID {
		case http2.SettingInitialWindowSize:
			delta := int64(st.Val) - p.streamInit[other]
			p.streamInit[other] = int64(st.Val)
			for _, s := range p.w.streams {
				s.win[other] += delta
				p.reopen(&s.stall[other], s.win[other], t)
			}
		case http2.SettingHeaderTableSize:
			p.dec[other].SetAllowedMaxDynamicTableSize(st.Val)
		}
	}
}

// windowUpdate applies a WINDOW_UPDATE sent in direction dir to the
// sender of the other direction.
func (p *h2Parser) windowUpdate(dir int, s *wireStream, inc int64, t time.Time) {
	other := 1 - dir
	if s == nil {
		p.connWin[other] += inc
		p.reopen(&p.connStall[other], p.connWin[other], t)
		return
	}
	s.win[other] += inc
	p.reopen(&s.stall[other], s.win[other], t)
}

// reopen closes the stall *open when the window is positive again.
func (p *h2Parser) reopen(open *int, win int64, t time.Time) {
	if *open < 0 || win <= 0 {
		return
	}
	st := &p.w.stalls[*open]
	st.ms = float64(t.Sub(p.w.frames[st.frame].t).Microseconds()) / 1000
	st.open = false
	*open = -1
}

// data follows a DATA frame: flow control and gRPC message framing.
func (p *h2Parser) data(dir int, s *wireStream, idx int, data []byte, flowLen int64, end bool) {
	p.connWin[dir] -= flowLen
	s.win[dir] -= flowLen
	if flowLen > 0 && !end {
		if s.win[dir] <= 0 && s.stall[dir] < 0 {
			s.stall[dir] = len(p.w.stalls)
			p.w.stalls = append(p.w.stalls, wireStall{dir: dir, stream: s.id, frame: idx, open: true})
		}
		if p.connWin[dir] <= 0 && p.connStall[dir] < 0 {
			p.connStall[dir] = len(p.w.stalls)
			p.w.stalls = append(p.w.stalls, wireStall{dir: dir, frame: idx, open: true})
		}
	}
	if !s.grpc {
		return
	}
	m := &s.msg[dir]
	for len(data) > 0 {
		if m.remaining > 0 {
			n := min(int(m.remaining), len(data))
			m.remaining -= uint32(n)
			data = data[n:]
			g := &p.w.msgs[m.cur]
			g.last = idx
			g.complete = m.remaining == 0
			continue
		}
		if m.have == 0 {
			m.first = idx
		}
		n := copy(m.hdr[m.have:], data)
		m.have += n
		data = data[n:]
		if m.have < 5 {
			continue
		}
		m.have = 0
		g := grpcMsg{dir: dir, stream: s.id, first: m.first, last: idx,
			length: binary.BigEndian.Uint32(m.hdr[1:]), compressed: m.hdr[0]&1 != 0}
		g.complete = g.length == 0
		m.cur, m.remaining = len(p.w.msgs), g.length
		p.w.msgs = append(p.w.msgs, g)
	}
}

// endBlock decodes the header block ending at frame last.
func (p *h2Parser) endBlock(dir, last int) {
	b := p.block[dir]
	p.block[dir] = nil
	b.last = last
	fields, err := p.dec[dir].DecodeFull(p.frag[dir])
	if err != nil {
		p.fail(fmt.Errorf("%s: stream %d: hpack: %w", dirName(dir), b.stream, err))
		return
	}
	b.fields = fields
	if b.refs, err = p.model[dir].block(p.frag[dir], fields); err != nil {
		p.fail(fmt.Errorf("%s: stream %d: %w", dirName(dir), b.stream, err))
		return
	}
	s := p.stream(b.stream)
	if dir == 0 && len(s.blocks) == 0 && strings.HasPrefix(b.get("content-type"), "application/grpc") {
		s.grpc = true
	}
	s.blocks = append(s.blocks, len(p.w.blocks))
	p.w.blocks = append(p.w.blocks, *b)
}

// finish returns the parse; bytes left over are an error.
func (p *h2Parser) finish() *h2Wire {
	for d := range 2 {
		if len(p.buf[d]) > 0 {
			p.fail(fmt.Errorf("%s: %d bytes after the last whole frame", dirName(d), len(p.buf[d])))
		}
	}
	return &p.w
}

// dirName names direction 0 "c2s" and 1 "s2c".
func dirName(dir int) string { return [2]string{"c2s", "s2c"}[dir] }
