package grpc

import (
	"maps"
	"strconv"
	"strings"
	"time"

	"github.com/h2scope/h2scope/dissect/event"
	"github.com/h2scope/h2scope/dissect/http2"
	"github.com/h2scope/h2scope/internal/pack"
)

// DefaultMaxMessage is the largest message length a Conn accepts when
// Options.MaxMessage is zero: grpc-go's default receive limit.
const DefaultMaxMessage = 4 << 20

// Options configure a Conn. The zero value recognises gRPC streams by
// content-type or DATA shape, accepts messages up to DefaultMaxMessage
// bytes, tracks up to 4096 open streams and keeps up to 65536 Call records.
type Options struct {
	// MaxMessage bounds a message's length. A longer one in a stream known
	// to be gRPC is the anomaly message_too_large and that direction of
	// the stream is no longer parsed; in an unrecognised stream it means
	// the stream is not gRPC. Zero means DefaultMaxMessage.
	MaxMessage int
	// AssumeGRPC treats every stream as gRPC, whatever its content-type
	// and DATA shape. Where a stream's messages start is still found by
	// the chaining check (see the package documentation).
	AssumeGRPC bool
	// MaxStreams bounds the streams tracked at once; streams opened past it
	// are ignored (anomaly too_many_streams). Zero means 4096.
	MaxStreams int
	// MaxCalls bounds the Call records kept; calls past it still produce
	// events but no record (anomaly calls_not_recorded). Zero means 65536.
	MaxCalls int
}

// Conn follows the gRPC calls of one HTTP/2 connection. It implements the
// HTTP/2 dissector's stream observer. A Conn is not safe for concurrent use.
type Conn struct {
	id      event.ConnID
	sink    event.Sink
	opts    Options
	streams map[uint32]*stream
	// removed holds the streams forgotten during the current call, for
	// reuse (spare) from the next one on: one call touches one stream.
	removed, spare []*stream
	closed         [64]uint32 // recently closed stream ids, a ring
	nclosed        int
	calls          callList
	// interned holds the copies of the short strings calls repeat
	// (method, authority, content type, encodings), at most maxInterned.
	interned  map[string]string
	anomalies map[string]int
	ev        event.Event
	det       event.GRPC
}

// NewConn returns a Conn for connection id that sends its events to sink
// (which may be nil).
func NewConn(id event.ConnID, sink event.Sink, opts Options) *Conn {
	if opts.MaxMessage <= 0 {
		opts.MaxMessage = DefaultMaxMessage
	}
	if opts.MaxStreams <= 0 {
		opts.MaxStreams = 4096
	}
	if opts.MaxCalls <= 0 {
		opts.MaxCalls = 65536
	}
	return &Conn{id: id, sink: sink, opts: opts, streams: make(map[uint32]*stream)}
}

// kind is what a stream is known to carry.
type kind uint8

const (
	kindUnknown kind = iota // undecided: its DATA shape is being tested
	kindGRPC
	kindOther
)

// mode is how a direction of a stream reads its DATA.
type mode uint8

const (
	// modeSync: at a known message boundary; messages get events.
	modeSync mode = iota
	// modeProbe: where messages start is unknown; the chain of prefixes
	// from the first byte of a delivery is being tested.
	modeProbe
	// modeWait: the probe failed; the next delivery starts a new one.
	modeWait
	// modeOff: no longer parsed.
	modeOff
)

// maxHeld bounds the messages of one delivery remembered while probing, so
// that their events can be sent if the delivery confirms the probe.
const maxHeld = 64

// half is one direction of a stream: the length-prefix state machine.
type half struct {
	mode    mode
	strict  bool // a failed probe means the stream is not gRPC
	started bool // DATA seen
	ended   bool // END_STREAM seen
	nhdr    uint8
	hdr     [5]byte
	comp    bool // compressed flag of the message in progress
	msgLen  int  // its length
	need    int  // its payload bytes still to come
	// Probe bookkeeping: messages completed since the probe began, and
	// those of the current delivery (length | compressed<<31).
	pmsgs, pcomp int
	pbytes       int64
	ncur         int
	cur          [maxHeld]uint32
}

func (h *half) resetProbe() {
	h.nhdr, h.need, h.msgLen = 0, 0, 0
	h.pmsgs, h.pcomp, h.pbytes, h.ncur = 0, 0, 0, 0
}

// stream is one HTTP/2 stream's state.
type stream struct {
	id       uint32
	kind     kind
	rec      int   // index in Conn.calls, -1 when none
	r        *Call // the record in Conn.calls, nil when none
	pre      Call  // the record until the stream is known to be gRPC
	method   string
	reqSeen  bool // request HEADERS seen
	respSeen bool // response HEADERS (with :status) seen
	ended    bool // the call ended: status or RST_STREAM
	half     [2]half
}

// call returns the record of s: in Conn.calls once it has one.
func (c *Conn) call(s *stream) *Call {
	if s.rec >= 0 {
		return s.r
	}
	return &s.pre
}

// Anomalies the analysis reads from Anomalies, by name: those that make
// the calls' framing doubtful. The others are named where they are
// counted.
const (
	AnomalyMessageTooLarge  = "message_too_large"  // a message length past the limit
	AnomalyBadMessageFlag   = "bad_message_flag"   // a message's compressed flag neither 0 nor 1
	AnomalyBadGRPCStatus    = "bad_grpc_status"    // a grpc-status that is not a number
	AnomalyCallsNotRecorded = "calls_not_recorded" // calls past the record bound
	AnomalyTooManyStreams   = "too_many_streams"   // streams past the tracking bound
)

func (c *Conn) anomaly(name string) {
	if c.anomalies == nil {
		c.anomalies = make(map[string]int)
	}
	c.anomalies[name]++
}

// Anomalies returns the anomaly counts by name (a copy).
func (c *Conn) Anomalies() map[string]int { return maps.Clone(c.anomalies) }

// Calls returns the records of the calls seen so far, in the order they
// were recognised as gRPC (a copy).
func (c *Conn) Calls() []Call {
	if c.calls.Len() == 0 {
		return nil
	}
	out := make([]Call, 0, c.calls.Len())
	c.calls.Each(func(r *callRec) { out = append(out, Call(*r)) })
	return out
}

// stream returns the state of stream id, creating it when asked. It
// returns nil for stream 0, a stream closed recently, or when
// Options.MaxStreams are tracked.
func (c *Conn) stream(id uint32, at event.Ref, create bool) *stream {
	if s := c.streams[id]; s != nil {
		return s
	}
	if id == 0 || !create {
		return nil
	}
	for _, x := range c.closed[:min(c.nclosed, len(c.closed))] {
		if x == id {
			return nil
		}
	}
	if len(c.streams) >= c.opts.MaxStreams {
		c.anomaly(AnomalyTooManyStreams)
		return nil
	}
	for _, r := range c.removed {
		*r = stream{}
		c.spare = append(c.spare, r)
	}
	c.removed = c.removed[:0]
	var s *stream
	if n := len(c.spare); n > 0 {
		s, c.spare = c.spare[n-1], c.spare[:n-1]
	} else {
		s = new(stream)
	}
	s.id, s.rec = id, -1
	s.pre = Call{Stream: id, Status: -1, Start: at, MidStream: true}
	for d := range s.half {
		s.half[d] = half{mode: modeProbe, strict: !c.opts.AssumeGRPC}
	}
	if c.opts.AssumeGRPC {
		c.accept(s, true)
	}
	c.streams[id] = s
	return s
}

// accept makes s a gRPC stream and gives it a record.
func (c *Conn) accept(s *stream, heuristic bool) {
	s.kind = kindGRPC
	s.pre.Heuristic = heuristic
	s.half[0].strict, s.half[1].strict = false, false
	if s.rec < 0 {
		if c.calls.Len() < c.opts.MaxCalls {
			i, r := c.calls.Add(callRec(s.pre))
			s.rec, s.r = i, (*Call)(r)
		} else {
			c.anomaly(AnomalyCallsNotRecorded)
		}
	}
}

// remove forgets s; late frames for its id are then ignored, so its
// record is final and is frozen (callers use neither after).
func (c *Conn) remove(s *stream) {
	if c.streams[s.id] != s {
		return // removed already
	}
	delete(c.streams, s.id)
	c.closed[c.nclosed%len(c.closed)] = s.id
	c.nclosed++
	if s.rec >= 0 {
		c.calls.Freeze(s.rec)
		c.calls.Settle()
		s.r = nil
	}
	c.removed = append(c.removed, s)
}

// fields are the header fields gRPC reads, not yet copied.
type fields struct {
	method, path, authority, status, ctype, enc, timeout, gstatus, gmsg string
	hasCT, hasTimeout, hasGStatus, hasGMsg                              bool
	unknown                                                             bool // some field could not be decoded
}

func (f *fields) parse(h []event.Header) {
	if h == nil {
		f.unknown = true // the whole block was undecodable
	}
	for i := range h {
		x := &h[i]
		if x.Unknown {
			f.unknown = true
			continue
		}
		switch x.Name {
		case ":method":
			f.method = x.Value
		case ":path":
			f.path = x.Value
		case ":authority":
			f.authority = x.Value
		case ":status":
			f.status = x.Value
		case "content-type":
			f.ctype, f.hasCT = x.Value, true
		case "grpc-encoding":
			f.enc = x.Value
		case "grpc-timeout":
			f.timeout, f.hasTimeout = x.Value, true
		case "grpc-status":
			f.gstatus, f.hasGStatus = x.Value, true
		case "grpc-message":
			f.gmsg, f.hasGMsg = x.Value, true
		}
	}
}

// Bounds on the strings copied into a Call.
const (
	maxPath  = 512
	maxShort = 128
)

// Headers observes a HEADERS block (with its CONTINUATIONs) of stream sent
// by dir; h is valid only during the call. endStream is the END_STREAM
// flag.
func (c *Conn) Headers(dir event.Dir, id uint32, h []event.Header, endStream bool, at event.Ref) {
	var f fields
	f.parse(h)
	s := c.stream(id, at, true)
	if s == nil {
		return
	}
	if dir == event.C2S {
		c.request(s, &f, at)
	} else {
		c.response(s, &f, endStream, at)
	}
	if endStream {
		c.endHalf(s, dir, at)
	}
}

// request reads the request HEADERS of s (later client HEADERS, which gRPC
// does not use, are ignored).
func (c *Conn) request(s *stream, f *fields, at event.Ref) {
	if s.reqSeen || s.respSeen || s.half[0].started || s.half[1].started {
		return
	}
	if f.method == "" && f.path == "" {
		return // not decodable: leave the stream to its DATA
	}
	s.reqSeen = true
	p := c.call(s)
	p.MidStream = false
	p.Start = at
	p.setMethod(c.intern(f.path, maxPath))
	s.method = p.Method
	p.Authority = c.intern(f.authority, maxShort)
	if f.enc != "" {
		p.RequestEncoding = c.intern(f.enc, maxShort)
	}
	if f.hasTimeout {
		if d, ok := parseTimeout(f.timeout); ok {
			p.Timeout, p.HasTimeout = d, true
		} else {
			c.anomaly("bad_grpc_timeout")
		}
	}
	switch {
	case f.hasCT && isGRPCContentType(f.ctype):
		p.ContentType = c.intern(f.ctype, maxShort)
		p.Heuristic = false
		if s.kind != kindGRPC {
			c.accept(s, false)
		}
		c.call(s).Heuristic = false
	case s.kind == kindUnknown && (f.hasCT || !f.unknown):
		s.kind = kindOther // another content-type, or none and nothing hidden
		return
	case s.kind == kindUnknown:
		return // content-type may be among the undecodable fields
	}
	// The stream's start was seen: both directions start at a boundary.
	for d := range s.half {
		s.half[d].mode, s.half[d].strict = modeSync, false
	}
}

// response reads response HEADERS and trailers of s.
func (c *Conn) response(s *stream, f *fields, end bool, at event.Ref) {
	first := !s.respSeen && f.status != ""
	if first {
		s.respSeen = true
		p := c.call(s)
		p.HTTPStatus, _ = strconv.Atoi(f.status)
		if f.enc != "" {
			p.ResponseEncoding = c.intern(f.enc, maxShort)
		}
		if f.hasCT && isGRPCContentType(f.ctype) && s.kind != kindGRPC {
			if p.ContentType == "" {
				p.ContentType = c.intern(f.ctype, maxShort)
			}
			c.grpcLate(s)
		}
	}
	if f.hasGStatus && s.kind != kindGRPC {
		c.grpcLate(s)
	}
	if s.kind != kindGRPC {
		return
	}
	switch {
	case end:
		c.status(s, f, first && f.hasGStatus, at)
	case !first && f.hasGStatus:
		c.status(s, f, false, at) // trailers without END_STREAM
	}
}

// grpcLate makes s gRPC on the strength of its response HEADERS or
// trailers. Client DATA already skipped is lost: that direction resumes
// with a probe. Response DATA follows the response HEADERS, so that
// direction starts at a boundary when none was seen yet.
func (c *Conn) grpcLate(s *stream) {
	c.call(s).Heuristic = false
	c.accept(s, false)
	if s.half[0].started || !s.reqSeen {
		s.half[0].mode = modeProbe
		s.half[0].resetProbe()
	}
	if !s.half[1].started && s.respSeen {
		s.half[1].mode = modeSync
	}
}

// status ends the call of s with the status in f (trailers, or a
// trailers-only response) and sends the status event.
func (c *Conn) status(s *stream, f *fields, trailersOnly bool, at event.Ref) {
	if s.ended {
		return
	}
	s.ended = true
	p := c.call(s)
	p.TrailersOnly = trailersOnly
	st := -1
	if f.hasGStatus {
		if n, err := strconv.Atoi(f.gstatus); err == nil && n >= 0 && n <= 1<<31-1 {
			st = n
		} else {
			c.anomaly(AnomalyBadGRPCStatus)
		}
	} else if !f.unknown {
		c.anomaly("missing_grpc_status")
	}
	p.Status = st
	switch {
	case st >= 0:
		p.StatusName = Code(st).String()
		p.ClientStatus = p.StatusName
	case !f.hasGStatus && f.unknown:
		// Undecodable trailers: the status is unknown, not missing.
	case !f.hasGStatus && p.HTTPStatus != 0 && p.HTTPStatus != 200:
		p.ClientStatus = httpStatus(p.HTTPStatus).String()
	default:
		p.ClientStatus = Internal.String()
	}
	if f.hasGMsg {
		p.StatusMessage = decodeMessage(f.gmsg)
	}
	p.end(at, true)
	if c.sink == nil {
		return
	}
	c.ev = event.Event{Ref: at, Conn: c.id, Dir: event.S2C, Proto: event.ProtoGRPC,
		Type: "status", Stream: s.id, Error: p.StatusName, GRPC: &c.det}
	c.det = event.GRPC{Status: st, Message: p.StatusMessage, Method: s.method}
	c.sink.Event(&c.ev)
}

// endHalf marks dir of s ended (END_STREAM) and forgets s once both are.
func (c *Conn) endHalf(s *stream, dir event.Dir, at event.Ref) {
	h := &s.half[dir]
	if h.ended {
		return
	}
	h.ended = true
	if h.nhdr > 0 {
		switch {
		case s.kind == kindGRPC && h.mode == modeSync:
			c.anomaly("truncated_message")
			c.call(s).LostMessages++
		case s.kind == kindUnknown && h.strict:
			s.kind = kindOther // END_STREAM inside the first message
		}
	}
	if dir == event.S2C && s.kind == kindGRPC && !s.ended {
		c.status(s, &fields{}, false, at) // response ended without trailers
	}
	if s.half[0].ended && s.half[1].ended {
		c.remove(s)
	}
}

// Data observes DATA payload bytes of stream sent by dir (padding
// removed); b is valid only during the call. A frame may come in several
// calls, endStream set only on the last.
func (c *Conn) Data(dir event.Dir, id uint32, b []byte, endStream bool, at event.Ref) {
	s := c.stream(id, at, true)
	if s == nil {
		return
	}
	if s.kind != kindOther {
		c.data(s, dir, b, at)
	}
	if endStream {
		c.endHalf(s, dir, at)
	}
}

// data runs the length-prefix state machine of dir over b.
func (c *Conn) data(s *stream, dir event.Dir, b []byte, at event.Ref) {
	h := &s.half[dir]
	if len(b) == 0 || h.ended {
		return
	}
	h.started = true
	switch h.mode {
	case modeOff:
		return
	case modeWait:
		h.mode = modeProbe
		h.resetProbe()
	}
	h.ncur = 0
	maxLen := c.opts.MaxMessage
	for len(b) > 0 {
		if h.nhdr < 5 {
			k := copy(h.hdr[h.nhdr:], b)
			h.nhdr += uint8(k)
			b = b[k:]
			if h.nhdr < 5 {
				break
			}
			flag := h.hdr[0]
			n := uint32(h.hdr[1])<<24 | uint32(h.hdr[2])<<16 | uint32(h.hdr[3])<<8 | uint32(h.hdr[4])
			if flag > 1 || uint64(n) > uint64(maxLen) {
				c.badPrefix(s, dir, flag, at)
				return
			}
			h.comp = flag == 1
			h.msgLen = int(n)
			h.need = int(n)
		}
		k := min(h.need, len(b))
		h.need -= k
		b = b[k:]
		if h.need == 0 {
			h.nhdr = 0
			c.message(s, dir, at)
		}
	}
	if h.mode == modeProbe && h.nhdr == 0 && h.pmsgs > 0 {
		c.confirm(s, dir, at)
	}
}

// badPrefix handles a prefix with a reserved flag or an excessive length.
func (c *Conn) badPrefix(s *stream, dir event.Dir, flag byte, at event.Ref) {
	h := &s.half[dir]
	switch {
	case h.mode == modeSync:
		if flag > 1 {
			c.anomaly(AnomalyBadMessageFlag)
		} else {
			c.anomaly(AnomalyMessageTooLarge)
		}
		h.mode = modeOff
	case h.strict && s.kind == kindUnknown:
		s.kind = kindOther
	default:
		h.mode = modeWait
		h.resetProbe()
	}
}

// message completes the message in progress in dir of s.
func (c *Conn) message(s *stream, dir event.Dir, at event.Ref) {
	h := &s.half[dir]
	if h.mode == modeSync {
		c.count(s, dir, 1, int64(h.msgLen), h.comp)
		c.emit(s, dir, h.msgLen, h.comp, at)
		return
	}
	h.pmsgs++
	h.pbytes += int64(h.msgLen)
	if h.comp {
		h.pcomp++
	}
	if h.ncur < maxHeld {
		v := uint32(h.msgLen)
		if h.comp {
			v |= 1 << 31
		}
		h.cur[h.ncur] = v
		h.ncur++
	}
}

// confirm ends a successful probe of dir: the stream is gRPC, messages
// completed during the probe are counted, and those of this delivery get
// their events.
func (c *Conn) confirm(s *stream, dir event.Dir, at event.Ref) {
	h := &s.half[dir]
	if s.kind == kindUnknown {
		c.accept(s, true)
	}
	h.mode = modeSync
	c.count(s, dir, h.pmsgs, h.pbytes, false)
	c.call(s).Compressed += h.pcomp
	for _, v := range h.cur[:h.ncur] {
		c.emit(s, dir, int(v&^(1<<31)), v&(1<<31) != 0, at)
	}
	h.resetProbe()
}

// count adds n messages of total bytes to dir's counts.
func (c *Conn) count(s *stream, dir event.Dir, n int, bytes int64, comp bool) {
	if s.rec < 0 {
		return
	}
	p := s.r
	if dir == event.C2S {
		p.RequestMessages += n
		p.RequestBytes += bytes
	} else {
		p.ResponseMessages += n
		p.ResponseBytes += bytes
	}
	if comp {
		p.Compressed++
	}
}

// emit sends a message event.
func (c *Conn) emit(s *stream, dir event.Dir, n int, comp bool, at event.Ref) {
	if c.sink == nil {
		return
	}
	c.ev = event.Event{Ref: at, Conn: c.id, Dir: dir, Proto: event.ProtoGRPC,
		Type: "message", Stream: s.id, Len: n, GRPC: &c.det}
	c.det = event.GRPC{Compressed: comp, Status: -1, Method: s.method}
	c.sink.Event(&c.ev)
}

// Reset observes an RST_STREAM sent by dir with error code code. The
// stream is then forgotten.
func (c *Conn) Reset(dir event.Dir, id uint32, code http2.ErrCode, at event.Ref) {
	s := c.stream(id, at, false)
	if s == nil {
		return
	}
	if s.kind == kindGRPC {
		p := c.call(s)
		if !p.Reset {
			p.Reset = true
			p.ResetBy = "client"
			if dir == event.S2C {
				p.ResetBy = "server"
			}
			p.ResetCode = code.String()
		}
		if !s.ended {
			s.ended = true
			if st, ok := ResetStatus(code); ok {
				p.ResetStatus = st.String()
				p.ClientStatus = p.ResetStatus
				// Clients reset with CANCEL when a call's deadline fires
				// (grpc-go does): a call that carried grpc-timeout and is
				// cancelled by the client once most of it has passed on
				// the wire ended in DEADLINE_EXCEEDED for the client.
				if dir == event.C2S && code == http2.ErrCodeCancel && p.HasTimeout && at.TS.Sub(p.Start.TS) >= p.Timeout*8/10 {
					p.ClientStatus = DeadlineExceeded.String()
				}
			}
			for d := range s.half {
				if h := &s.half[d]; h.mode == modeSync && h.nhdr > 0 && !h.ended {
					p.LostMessages++
				}
			}
			p.end(at, true)
		}
	}
	c.remove(s)
}

// Gap observes n bytes of dir lost by the capture: every partial message
// in flight in dir is lost, and each stream's direction resynchronises on
// its next DATA delivery.
func (c *Conn) Gap(dir event.Dir, n int, at event.Ref) {
	for _, s := range c.streams {
		h := &s.half[dir]
		if s.kind == kindOther || h.ended || h.mode == modeOff {
			continue
		}
		if s.kind == kindGRPC {
			p := c.call(s)
			p.Gaps++
			if h.mode == modeSync && h.nhdr > 0 {
				c.anomaly("message_lost")
				p.LostMessages++
			}
		}
		h.mode = modeProbe
		h.strict = false
		h.resetProbe()
	}
}

// Finish ends the calls still open at at (the end of the connection or of
// the capture): their End is at and Ended stays false. Streams are
// forgotten.
func (c *Conn) Finish(at event.Ref) {
	for _, s := range c.streams {
		if s.kind != kindGRPC || s.ended {
			continue
		}
		p := c.call(s)
		for d := range s.half {
			if h := &s.half[d]; h.mode == modeSync && h.nhdr > 0 && !h.ended {
				c.anomaly("truncated_message")
				p.LostMessages++
			}
		}
		p.end(at, false)
	}
	clear(c.streams)
}

// callList holds a connection's call records: in Go form while their
// stream is open, encoded once it was forgotten (see pack.List).
type callList = pack.List[callRec, *callRec]

// callRec is a Call as a callList stores it.
type callRec Call

// Encode writes r into e (for pack.List); Decode reads it back exactly.
func (r *callRec) Encode(e *pack.Encoder) {
	e.Bools(r.Heuristic, r.MidStream, r.TrailersOnly, r.Reset, r.HasTimeout, r.OverTimeout, r.Ended)
	e.Uint(uint64(r.Stream))
	for _, v := range [...]string{r.Method, r.Service, r.Name, r.Authority, r.ContentType, r.RequestEncoding,
		r.ResponseEncoding, r.StatusName, r.StatusMessage, r.ResetBy, r.ResetCode, r.ResetStatus, r.ClientStatus} {
		e.String(v)
	}
	for _, v := range [...]int64{int64(r.RequestMessages), int64(r.ResponseMessages), r.RequestBytes, r.ResponseBytes,
		int64(r.Compressed), int64(r.LostMessages), int64(r.Gaps), int64(r.HTTPStatus), int64(r.Status),
		int64(r.Timeout), int64(r.Duration)} {
		e.Int(v)
	}
	e.Ref(r.Start)
	e.Ref(r.End)
}

// Decode reads what Encode wrote.
func (r *callRec) Decode(d *pack.Decoder) {
	d.Bools(&r.Heuristic, &r.MidStream, &r.TrailersOnly, &r.Reset, &r.HasTimeout, &r.OverTimeout, &r.Ended)
	r.Stream = uint32(d.Uint())
	for _, p := range [...]*string{&r.Method, &r.Service, &r.Name, &r.Authority, &r.ContentType, &r.RequestEncoding,
		&r.ResponseEncoding, &r.StatusName, &r.StatusMessage, &r.ResetBy, &r.ResetCode, &r.ResetStatus, &r.ClientStatus} {
		*p = d.String()
	}
	var n [11]int64
	for i := range n {
		n[i] = d.Int()
	}
	r.RequestMessages, r.ResponseMessages, r.RequestBytes, r.ResponseBytes = int(n[0]), int(n[1]), n[2], n[3]
	r.Compressed, r.LostMessages, r.Gaps, r.HTTPStatus, r.Status = int(n[4]), int(n[5]), int(n[6]), int(n[7]), int(n[8])
	r.Timeout, r.Duration = time.Duration(n[9]), time.Duration(n[10])
	r.Start = d.Ref()
	r.End = d.Ref()
}

// maxInterned bounds Conn.interned.
const maxInterned = 64

// intern returns clip(s, n), sharing one copy among the calls of the
// connection while there are at most maxInterned distinct strings.
func (c *Conn) intern(s string, n int) string {
	if len(s) > n {
		s = s[:n]
	}
	if v, ok := c.interned[s]; ok {
		return v
	}
	v := strings.Clone(s)
	if len(c.interned) < maxInterned {
		if c.interned == nil {
			c.interned = make(map[string]string)
		}
		c.interned[v] = v
	}
	return v
}
