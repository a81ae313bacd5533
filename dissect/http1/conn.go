package http1

import (
	"bytes"
	"maps"
	"strings"

	"github.com/h2scope/h2scope/dissect/event"
)

// DefaultMaxHeader bounds a message's head (start line and header fields)
// and a chunked body's trailer section when Options.MaxHeader is zero.
const DefaultMaxHeader = 64 << 10

// Options configure a Conn. The zero value bounds heads at
// DefaultMaxHeader bytes and the requests awaiting responses at 1024.
type Options struct {
	// MaxHeader bounds a head, start line included, and a trailer
	// section. A longer one is the anomaly header_too_large and the
	// parser resynchronises on the next start line. Zero means
	// DefaultMaxHeader.
	MaxHeader int
	// MaxPending bounds the requests awaiting a response; past it the
	// oldest is forgotten (anomaly too_many_pending). Zero means 1024.
	MaxPending int
	// Exchanges keeps each request and the final response that answered
	// it, at most MaxExchanges, for Conn.Exchanges.
	Exchanges bool
}

// Summary describes a connection's HTTP/1 exchange.
type Summary struct {
	// Requests counts request heads parsed; Responses response heads,
	// interim (1xx) responses included, as tshark counts http.response.
	Requests  int `json:"requests"`
	Responses int `json:"responses"`
	// Interim counts the 1xx responses other than 101.
	Interim int `json:"interim,omitempty"`
	// Unanswered counts requests still awaiting a final response.
	Unanswered int `json:"unanswered"`
	// LostRequests and LostResponses count messages assumed lost: one per
	// capture gap that swallowed bytes past the message in progress, and
	// one per head too large to read.
	LostRequests  int `json:"lost_requests,omitempty"`
	LostResponses int `json:"lost_responses,omitempty"`
	// MaxPipelined is the most requests awaiting responses at once.
	MaxPipelined int `json:"max_pipelined"`
	// KeepAlive says whether the last final response left the connection
	// open (false before any).
	KeepAlive bool `json:"keep_alive"`
	// CloseRequestedBy says who first asked for the connection to close
	// after the current exchange ("client" or "server"), by Connection:
	// close or an HTTP/1.0 message without keep-alive; empty when neither
	// did. CloseRequestedFrame is the frame of that message's head.
	CloseRequestedBy    string `json:"close_requested_by,omitempty"`
	CloseRequestedFrame uint64 `json:"close_requested_frame,omitempty"`
	// KeepAliveTimeout and KeepAliveMax are the last Keep-Alive timeout=
	// (seconds) and max= the server sent, 0 when none.
	KeepAliveTimeout int `json:"keep_alive_timeout,omitempty"`
	KeepAliveMax     int `json:"keep_alive_max,omitempty"`
	// Upgrade names the protocol the connection switched to ("h2c",
	// "websocket", "CONNECT" for a tunnel), empty when it did not;
	// UpgradeFrame is the frame of the response that switched it.
	Upgrade      string `json:"upgrade,omitempty"`
	UpgradeFrame uint64 `json:"upgrade_frame,omitempty"`
	// Anomalies counts irregularities by name (see the package
	// documentation).
	Anomalies map[string]int `json:"anomalies,omitempty"`
}

// state is where a direction's parser stands.
type state uint8

const (
	stIdle       state = iota // between messages: empty lines skipped
	stStart                   // in a start line
	stHeaders                 // in header fields
	stBody                    // in a Content-Length body
	stChunkSize               // in a chunk-size line
	stChunkData               // in a chunk's data
	stChunkEnd                // in the CRLF after a chunk's data
	stTrailers                // in a trailer section
	stUntilClose              // in a body delimited by the close
	stResync                  // skipping to the next line
	stSwitched                // the bytes belong to another protocol
)

// message is the message a direction is parsing.
type message struct {
	active           bool
	seq              int
	head             event.Ref
	method, target   string
	version, reason  string
	status           int
	headers          []event.Header
	trailers         []event.Header
	bodyLen, missed  int64
	chunked          bool
	keepAlive        bool
	kaTimeout, kaMax int
	req              int    // responses: Seq of the request answered
	upgrade          string // Upgrade field's first protocol
}

// half is one direction's parser.
type half struct {
	dir         event.Dir
	st          state
	resync      bool // the start line being read is a resync candidate
	buf         []byte
	lineStart   int // start of the current line in buf
	lc          lineCheck
	remain      int64 // bytes left in the body or chunk
	crSeen      bool  // stChunkEnd: its CR was seen
	msg         message
	seq         int  // messages started
	lastDone    int  // Seq of the last message completed
	sinceDone   bool // a message began since then
	switchAfter bool // switch protocols once the message in progress ends
	closed      bool
	loose       bool // the head in progress has a loose request line
	// Resync scanning: bytes of "HTTP/" matched (responses), or of an
	// upper-case method token (requests), held in tok.
	nscan int
	tok   [maxScanMethod]byte
}

// maxScanMethod bounds the method token a resync recognises inside a line.
const maxScanMethod = 20

// pending is a request awaiting its response.
type pending struct {
	seq       int
	isHead    bool
	connect   bool
	keepAlive bool
	upgrade   string
	up        *upgradeRequest // when upgrade is set
}

// upgradeRequest is what a request asking to switch protocols said, for
// the protocol it switches to: an h2c upgrade's request is the HTTP/2
// connection's stream 1, with the settings of its HTTP2-Settings field.
type upgradeRequest struct {
	fields   []event.Header // :method, :scheme, :authority, :path
	settings string
	at       event.Ref // the frame that completed the request's head
}

// fifo is a queue of pending requests that reuses its array.
type fifo struct {
	a    []pending
	head int
}

func (q *fifo) len() int       { return len(q.a) - q.head }
func (q *fifo) front() pending { return q.a[q.head] }
func (q *fifo) push(p pending) { q.a = append(q.a, p) }
func (q *fifo) pop() {
	q.head++
	switch {
	case q.head == len(q.a):
		q.a, q.head = q.a[:0], 0
	case q.head >= 64 && q.head*2 >= len(q.a):
		n := copy(q.a, q.a[q.head:])
		q.a, q.head = q.a[:n], 0
	}
}

// Conn dissects the HTTP/1 messages of one TCP connection. It is not safe
// for concurrent use.
type Conn struct {
	id    event.ConnID
	sink  event.Sink
	opts  Options
	half  [2]half
	queue fifo
	sum   Summary
	// upgraded is set once a response switched protocols; upReq is the
	// request that asked for it.
	upgraded bool
	upReq    *upgradeRequest
	ev       event.Event
	det      event.HTTP1
	// heads and fields back the two directions' head buffers and header
	// fields (headCap bytes and fieldsCap fields each) until a larger
	// head outgrows them; Reset gives them to the next connection.
	heads  []byte
	fields []event.Header
	// exch holds the exchanges kept (Options.Exchanges), exchDropped
	// counts the requests past MaxExchanges.
	exch        []Exchange
	exchDropped int
}

// NewConn returns a Conn for connection id that sends its events to sink
// (which may be nil).
func NewConn(id event.ConnID, sink event.Sink, opts Options) *Conn {
	c := new(Conn)
	c.Reset(id, sink, opts)
	return c
}

// maxKeptPending bounds the request queue a Conn keeps through Reset.
const maxKeptPending = 64

// Reset makes c what NewConn(id, sink, opts) returns, reusing the buffers
// it started with (one allocation each for a typical head and its fields,
// where growing from nothing took a dozen on every connection) and its
// request queue when that stayed small, so that a Conn can be reused for
// another connection once nothing reads it any more: its Summary was
// taken and its events are over (they are valid only during the Sink's
// call in any case). Nothing of the previous connection is reachable from
// c afterwards.
func (c *Conn) Reset(id event.ConnID, sink event.Sink, opts Options) {
	if opts.MaxHeader <= 0 {
		opts.MaxHeader = DefaultMaxHeader
	}
	if opts.MaxPending <= 0 {
		opts.MaxPending = 1024
	}
	heads, fields, q := c.heads, c.fields, c.queue.a
	if heads == nil {
		heads = make([]byte, 2*headCap)
		fields = make([]event.Header, 2*fieldsCap)
	} else {
		clear(fields) // the previous head's strings
	}
	if cap(q) > maxKeptPending {
		q = nil
	} else {
		q = q[:0]
		clear(q[:cap(q)])
	}
	*c = Conn{id: id, sink: sink, opts: opts, heads: heads, fields: fields, queue: fifo{a: q}}
	for d := range c.half {
		h := &c.half[d]
		h.dir = event.Dir(d)
		h.buf = heads[d*headCap : d*headCap : (d+1)*headCap]
		h.msg.headers = fields[d*fieldsCap : d*fieldsCap : (d+1)*fieldsCap]
	}
}

// headCap and fieldsCap are the head bytes and header fields each
// direction of a Conn starts with room for.
const (
	headCap   = 512
	fieldsCap = 16
)

func (c *Conn) anomaly(name string) {
	if c.sum.Anomalies == nil {
		c.sum.Anomalies = make(map[string]int)
	}
	c.sum.Anomalies[name]++
}

// Summary returns the connection's summary so far.
func (c *Conn) Summary() Summary {
	s := c.sum
	s.Unanswered = c.queue.len()
	s.Anomalies = maps.Clone(c.sum.Anomalies)
	return s
}

// upgradeOf returns the upgrade request m as HTTP/2 would carry it.
func upgradeOf(m *message) *upgradeRequest {
	u := &upgradeRequest{fields: []event.Header{{Name: ":method", Value: m.method}, {Name: ":scheme", Value: "http"}}, at: m.head}
	for _, h := range m.headers {
		switch {
		case strings.EqualFold(h.Name, "Host"):
			u.fields = append(u.fields, event.Header{Name: ":authority", Value: h.Value})
		case strings.EqualFold(h.Name, "HTTP2-Settings"):
			u.settings = h.Value
		}
	}
	u.fields = append(u.fields, event.Header{Name: ":path", Value: m.target})
	return u
}

// UpgradeRequest returns, once the connection switched protocols (see
// Upgraded), the request that asked for it as HTTP/2 pseudo-header
// fields (:method, :scheme, :authority, :path) and its HTTP2-Settings
// field, and the frame that completed its head: after an h2c upgrade
// they are stream 1 and the client's first SETTINGS (RFC 7540 §3.2; see
// http2.Options.UpgradeRequest).
func (c *Conn) UpgradeRequest() (fields []event.Header, settings string, at event.Ref) {
	if c.upReq == nil {
		return nil, "", event.Ref{}
	}
	return c.upReq.fields, c.upReq.settings, c.upReq.at
}

// Upgraded reports the protocol the connection switched to, once a 101
// response or a 2xx response to CONNECT was seen.
func (c *Conn) Upgraded() (proto string, ok bool) {
	return c.sum.Upgrade, c.upgraded
}

// Data is Feed without its result: the tcp.StreamHandler method. Bytes of
// a direction that switched protocols are dropped.
func (c *Conn) Data(dir event.Dir, b []byte, at event.Ref) { c.Feed(dir, b, at) }

// Feed parses the next in-order bytes of dir, carried by frame at; b is
// valid only during the call. It returns how many bytes belong to HTTP/1:
// less than len(b) only once dir switched protocols (see Upgraded), the
// rest being the new protocol's.
func (c *Conn) Feed(dir event.Dir, b []byte, at event.Ref) (n int) {
	h := &c.half[dir&1]
	if h.closed {
		return len(b)
	}
	for n < len(b) && h.st != stSwitched {
		n += c.step(h, b[n:], at)
	}
	return n
}

// step parses a prefix of b (non-empty) and returns its length. It
// returns 0 only after changing state.
func (c *Conn) step(h *half, b []byte, at event.Ref) int {
	switch h.st {
	case stIdle:
		i := 0
		for i < len(b) && (b[i] == '\r' || b[i] == '\n') {
			i++
		}
		if i < len(b) {
			h.st = stStart
			h.buf = h.buf[:0]
			h.lc.reset(h.dir == event.S2C, h.resync)
			h.sinceDone = true
		}
		return i
	case stStart:
		return c.startLine(h, b, at)
	case stHeaders, stTrailers:
		return c.lines(h, b, at)
	case stBody, stChunkData:
		k := min(h.remain, int64(len(b)))
		h.remain -= k
		h.msg.bodyLen += k
		if h.remain == 0 {
			if h.st == stBody {
				c.finish(h, at, false)
			} else {
				h.st, h.crSeen = stChunkEnd, false
			}
		}
		return int(k)
	case stChunkSize:
		return c.chunkSize(h, b, at)
	case stChunkEnd:
		switch {
		case b[0] == '\r' && !h.crSeen:
			h.crSeen = true
			return 1
		case b[0] == '\n':
			h.st = stChunkSize
			h.buf = h.buf[:0]
			return 1
		}
		c.finish(h, at, true)
		c.resync(h, "bad_chunk_end", false)
		return 0
	case stUntilClose:
		h.msg.bodyLen += int64(len(b))
		return len(b)
	case stResync:
		return c.scan(h, b)
	}
	return len(b) // stSwitched is never stepped
}

// resync starts skipping to the next plausible start line, counting
// cause (if any) and "resync". atLineStart says whether the next byte
// begins a line (a candidate itself).
func (c *Conn) resync(h *half, cause string, atLineStart bool) {
	if cause != "" {
		c.anomaly(cause)
	}
	c.anomaly("resync")
	h.buf = h.buf[:0]
	h.resync = true
	h.st = stResync
	h.nscan = 0
	if atLineStart {
		h.st = stIdle
	}
}

// scan skips bytes while resynchronising. A start line is looked for at
// the start of each line and, since a message follows the previous body
// with no line break, inside lines too: "HTTP/" for a status line, an
// upper-case token followed by a space for a request line.
func (c *Conn) scan(h *half, b []byte) int {
	for i, x := range b {
		if x == '\n' {
			h.st, h.resync, h.nscan = stIdle, true, 0
			return i + 1
		}
		if h.dir == event.S2C {
			switch {
			case x == httpVersion[h.nscan]:
				h.nscan++
				if h.nscan == len(httpVersion) {
					c.candidate(h, []byte(httpVersion))
					return i + 1
				}
			case x == 'H':
				h.nscan = 1
			default:
				h.nscan = 0
			}
			continue
		}
		switch {
		case isUpperMethod(x):
			if h.nscan < len(h.tok) {
				h.tok[h.nscan] = x
			}
			h.nscan++
		case x == ' ' && h.nscan >= 3 && h.nscan <= len(h.tok):
			c.candidate(h, h.tok[:h.nscan:h.nscan])
			h.buf = append(h.buf, ' ')
			h.lc.feed(' ')
			return i + 1
		default:
			h.nscan = 0
		}
	}
	return len(b)
}

// candidate starts reading a possible start line that begins with p.
func (c *Conn) candidate(h *half, p []byte) {
	h.nscan = 0
	h.st, h.resync, h.sinceDone = stStart, true, true
	h.buf = append(h.buf[:0], p...)
	h.lc.reset(h.dir == event.S2C, true)
	for _, x := range p {
		h.lc.feed(x)
	}
}

// startLine reads the start line, checking each byte.
func (c *Conn) startLine(h *half, b []byte, at event.Ref) int {
	i := bytes.IndexByte(b, '\n')
	seg := b
	if i >= 0 {
		seg = b[:i]
	}
	// room counts the bytes the head may still take, its '\n' included.
	// Limits are checked at the byte that crosses them, and that byte is
	// left to the resync scan, so that results never depend on how the
	// stream was cut into calls.
	room := c.opts.MaxHeader - len(h.buf)
	for j := 0; j < len(seg); {
		if j >= room {
			c.tooLarge(h)
			return j
		}
		if k := h.lc.targetRun(seg[j:min(len(seg), room)]); k > 0 {
			j += k
			continue
		}
		if !h.lc.feed(seg[j]) {
			c.badStart(h, false)
			return j + 1
		}
		j++
	}
	if i >= 0 && len(seg) >= room {
		c.tooLarge(h)
		return len(seg)
	}
	h.buf = append(h.buf, seg...)
	if i < 0 {
		return len(b)
	}
	h.loose = false
	if !h.lc.complete() {
		if !h.lc.loose() {
			c.badStart(h, true)
			return i + 1
		}
		h.loose = true
	}
	h.buf = append(h.buf, '\n')
	h.st = stHeaders
	h.lineStart = len(h.buf)
	h.resync = false
	return i + 1
}

// tooLarge handles a head that outgrew MaxHeader: an anomaly (unless it
// was a resync candidate), and a resync from the byte that crossed it.
func (c *Conn) tooLarge(h *half) {
	if h.resync {
		h.buf = h.buf[:0]
		h.st, h.nscan = stResync, 0
		return
	}
	c.lost(h)
	c.resync(h, "header_too_large", false)
}

// badStart handles a line that cannot be a start line: an anomaly unless
// it was a resync candidate.
func (c *Conn) badStart(h *half, atLineStart bool) {
	if h.resync {
		h.buf = h.buf[:0]
		h.st = stResync
		h.nscan = 0
		if atLineStart {
			h.st = stIdle
		}
		return
	}
	cause := "bad_request_line"
	if h.dir == event.S2C {
		cause = "bad_status_line"
	}
	c.resync(h, cause, atLineStart)
}

// lines reads header or trailer lines up to the empty line.
func (c *Conn) lines(h *half, b []byte, at event.Ref) int {
	i := bytes.IndexByte(b, '\n')
	seg := b
	if i >= 0 {
		seg = b[:i+1]
	}
	if room := c.opts.MaxHeader - len(h.buf); len(seg) > room {
		if h.st == stTrailers {
			c.finish(h, at, true)
		} else {
			c.lost(h) // a message whose head cannot be read
		}
		c.resync(h, "header_too_large", false)
		return max(room, 0)
	}
	h.buf = append(h.buf, seg...)
	if i < 0 {
		return len(b)
	}
	line := h.buf[h.lineStart : len(h.buf)-1]
	if len(line) == 0 || len(line) == 1 && line[0] == '\r' {
		if h.st == stHeaders {
			c.head(h, at)
		} else {
			c.trailers(h, at)
		}
		return i + 1
	}
	if h.loose && h.st == stHeaders && !fieldLine(line) {
		c.notLoose(h)
	}
	h.lineStart = len(h.buf)
	return i + 1
}

// fieldLine reports whether a head line can be a header field (or its
// continuation).
func fieldLine(ln []byte) bool {
	return ln[0] == ' ' || ln[0] == '\t' || bytes.IndexByte(ln, ':') > 0
}

// notLoose gives up a head whose loose request line is followed by a line
// that is no header field: that line may itself be a start line.
func (c *Conn) notLoose(h *half) {
	c.anomaly("bad_request_line")
	h.loose = false
	ln := h.buf[h.lineStart:]
	var l lineCheck
	l.reset(false, false)
	ok := true
	for _, x := range ln[:len(ln)-1] {
		if ok = l.feed(x); !ok {
			break
		}
	}
	if !ok || !l.complete() {
		c.resync(h, "", true)
		return
	}
	h.buf = h.buf[:copy(h.buf, ln)]
}

// chunkSize reads a chunk-size line.
func (c *Conn) chunkSize(h *half, b []byte, at event.Ref) int {
	const maxLine = 4 << 10 // chunk extensions included
	i := bytes.IndexByte(b, '\n')
	seg := b
	if i >= 0 {
		seg = b[:i]
	}
	if room := maxLine - len(h.buf); len(seg) > room {
		c.finish(h, at, true)
		c.resync(h, "bad_chunk_size", false)
		return max(room, 0)
	}
	h.buf = append(h.buf, seg...)
	if i < 0 {
		return len(b)
	}
	line := h.buf
	if n := len(line); n > 0 && line[n-1] == '\r' {
		line = line[:n-1]
	}
	size, ok := parseChunkSize(line)
	h.buf = h.buf[:0]
	switch {
	case !ok:
		c.finish(h, at, true)
		c.resync(h, "bad_chunk_size", true)
	case size == 0:
		h.st, h.lineStart = stTrailers, 0
	default:
		h.st, h.remain = stChunkData, size
	}
	return i + 1
}

// head parses a complete head in h.buf and sets up the body.
func (c *Conn) head(h *half, at event.Ref) {
	s := string(h.buf) // the one copy of the head
	h.buf = h.buf[:0]
	i := strings.IndexByte(s, '\n')
	start := trimCR(s[:i])
	m := &h.msg
	*m = message{headers: m.headers[:0], trailers: m.trailers[:0], active: true, head: at}
	h.seq++
	m.seq = h.seq
	switch {
	case h.loose:
		c.anomaly("bad_request_line")
		h.loose = false
		m.method, start, _ = strings.Cut(start, " ")
		m.target, m.version, _ = strings.Cut(start, " ")
	case h.dir == event.C2S:
		sp1 := strings.IndexByte(start, ' ')
		sp2 := sp1 + 1 + strings.IndexByte(start[sp1+1:], ' ')
		m.method, m.target, m.version = start[:sp1], start[sp1+1:sp2], start[sp2+1:]
	default:
		m.version = start[:8]
		m.status = int(start[9]-'0')*100 + int(start[10]-'0')*10 + int(start[11]-'0')
		if len(start) > 13 {
			m.reason = start[13:]
		}
	}
	m.headers = fields(m.headers, s[i+1:], c.anomaly)
	c.frame(h, at)
}

// framing is what a head says about its message's body and connection.
type framing struct {
	hasTE, chunked   bool
	hasCL, badCL     bool
	cl               int64
	close, keepAlive bool // Connection tokens
}

func (c *Conn) framing(m *message) framing {
	var f framing
	for _, x := range m.headers {
		switch {
		case strings.EqualFold(x.Name, "Transfer-Encoding"):
			f.hasTE = true
			last := ""
			tokens(x.Value, func(t string) { last = t })
			f.chunked = strings.EqualFold(last, "chunked")
		case strings.EqualFold(x.Name, "Content-Length"):
			n, ok := parseContentLength(x.Value)
			if !ok || f.hasCL && n != f.cl {
				f.badCL = true
			}
			f.hasCL, f.cl = true, n
		case strings.EqualFold(x.Name, "Connection"):
			tokens(x.Value, func(t string) {
				switch {
				case strings.EqualFold(t, "close"):
					f.close = true
				case strings.EqualFold(t, "keep-alive"):
					f.keepAlive = true
				}
			})
		case strings.EqualFold(x.Name, "Keep-Alive"):
			m.kaTimeout, m.kaMax = keepAliveParams(x.Value)
		case strings.EqualFold(x.Name, "Upgrade"):
			if m.upgrade == "" {
				tokens(x.Value, func(t string) {
					if m.upgrade == "" {
						m.upgrade = t
					}
				})
			}
		}
	}
	// HTTP/1.1 and later persist unless told to close; 1.0 only when told
	// to keep alive.
	m.keepAlive = !f.close && (persistentVersion(m.version) || f.keepAlive)
	return f
}

// persistentVersion reports whether version ("HTTP/1.1") defaults to
// persistent connections: 1.1 and later do; 1.0, 0.9 and malformed
// versions do not.
func persistentVersion(v string) bool {
	if len(v) != 8 || v[:5] != httpVersion {
		return false
	}
	return v[5] > '1' || v[5] == '1' && v[7] >= '1'
}

// frame decides how the message whose head was just parsed ends.
func (c *Conn) frame(h *half, at event.Ref) {
	m := &h.msg
	f := c.framing(m)
	if f.hasTE && f.hasCL {
		c.anomaly("content_length_with_transfer_encoding")
	}
	if h.dir == event.C2S {
		c.request(h, f, at)
	} else {
		c.response(h, f, at)
	}
	if !m.keepAlive && c.sum.CloseRequestedBy == "" && (h.dir == event.C2S || m.status >= 200) {
		c.sum.CloseRequestedBy = "client"
		if h.dir == event.S2C {
			c.sum.CloseRequestedBy = "server"
		}
		c.sum.CloseRequestedFrame = m.head.Frame
	}
}

func (c *Conn) request(h *half, f framing, at event.Ref) {
	m := &h.msg
	c.sum.Requests++
	p := pending{seq: m.seq, isHead: m.method == "HEAD", connect: m.method == "CONNECT",
		keepAlive: m.keepAlive, upgrade: m.upgrade}
	if m.upgrade != "" {
		p.up = upgradeOf(m)
	}
	c.enqueue(p)
	switch {
	case f.hasTE && f.chunked:
		c.chunked(h)
	case f.hasTE:
		c.finish(h, at, true)
		c.resync(h, "bad_transfer_encoding", true)
	case f.badCL:
		c.finish(h, at, true)
		c.resync(h, "bad_content_length", true)
	case f.hasCL && f.cl > 0:
		h.st, h.remain = stBody, f.cl
	default:
		c.finish(h, at, false)
	}
}

func (c *Conn) response(h *half, f framing, at event.Ref) {
	m := &h.msg
	c.sum.Responses++
	interim := m.status < 200 && m.status != 101
	var req pending
	matched := c.queue.len() > 0
	if matched {
		req = c.queue.front()
		if !interim {
			c.queue.pop()
		}
	} else {
		c.anomaly("unmatched_HTTP_reply")
	}
	m.req = req.seq
	if m.kaTimeout != 0 || m.kaMax != 0 {
		c.sum.KeepAliveTimeout, c.sum.KeepAliveMax = m.kaTimeout, m.kaMax
	}
	if interim {
		c.sum.Interim++
	}
	m.keepAlive = m.keepAlive && (req.keepAlive || !matched)
	switch {
	case m.status == 101 || req.connect && m.status/100 == 2:
		c.switchProto(h, req, at)
	case req.isHead || interim || m.status == 204 || m.status == 304:
		c.finish(h, at, false)
	case f.hasTE && f.chunked:
		c.chunked(h)
	case f.hasTE || !f.hasCL:
		h.st = stUntilClose
		m.keepAlive = false
	case f.badCL:
		c.anomaly("bad_content_length")
		h.st = stUntilClose
		m.keepAlive = false
	case f.cl > 0:
		h.st, h.remain = stBody, f.cl
	default:
		c.finish(h, at, false)
	}
}

func (c *Conn) chunked(h *half) {
	h.msg.chunked = true
	h.st = stChunkSize
	h.buf = h.buf[:0]
}

func (c *Conn) enqueue(p pending) {
	if c.queue.len() >= c.opts.MaxPending {
		c.anomaly("too_many_pending")
		c.queue.pop()
	}
	c.queue.push(p)
	c.sum.MaxPipelined = max(c.sum.MaxPipelined, c.queue.len())
}

// switchProto hands the connection to another protocol after the response
// head just parsed (101, or 2xx to CONNECT): the server direction now, the
// client direction after the request that asked for it.
func (c *Conn) switchProto(h *half, req pending, at event.Ref) {
	m := &h.msg
	proto := "CONNECT"
	if m.status == 101 {
		proto = m.upgrade
		if proto == "" {
			proto = req.upgrade
		}
		if proto == "" {
			proto = "unknown"
		}
		proto = strings.ToLower(proto)
	}
	c.sum.Upgrade, c.sum.UpgradeFrame, c.upgraded = proto, at.Frame, true
	c.upReq = req.up
	c.finish(h, at, false)
	h.st = stSwitched
	cs := &c.half[event.C2S]
	switch {
	case cs.st == stSwitched || cs.closed:
	case cs.msg.active && cs.msg.seq == req.seq && req.seq != 0:
		cs.switchAfter = true
	case !cs.msg.active && cs.lastDone == req.seq && !cs.sinceDone:
		cs.st = stSwitched
	default:
		// The client sent more than the upgrade request before the
		// switch was seen: switch where it stands.
		c.anomaly("upgrade_desync")
		cs.st = stSwitched
	}
}

// trailers parses a complete trailer section and ends the message.
func (c *Conn) trailers(h *half, at event.Ref) {
	if h.lineStart > 0 { // some trailer fields
		h.msg.trailers = fields(h.msg.trailers, string(h.buf), c.anomaly)
	}
	c.finish(h, at, false)
}

// finish ends the message in progress and sends its event.
func (c *Conn) finish(h *half, at event.Ref, incomplete bool) {
	m := &h.msg
	if !m.active {
		return
	}
	m.active = false
	h.lastDone, h.sinceDone = m.seq, false
	h.st, h.resync = stIdle, false
	h.buf = h.buf[:0]
	if h.switchAfter {
		h.st, h.switchAfter = stSwitched, false
	}
	if h.dir == event.S2C && m.status >= 200 {
		c.sum.KeepAlive = m.keepAlive && !incomplete
	}
	if c.opts.Exchanges {
		c.record(h.dir, m, at, incomplete)
	}
	if c.sink == nil {
		return
	}
	typ := "request"
	if h.dir == event.S2C {
		typ = "response"
	}
	c.det = event.HTTP1{
		Method: m.method, Target: m.target, Version: m.version, Status: m.status, Reason: m.reason,
		Headers: m.headers, BodyLen: m.bodyLen, Chunked: m.chunked, KeepAlive: m.keepAlive, Seq: m.seq,
		HeadFrame: m.head.Frame, Trailers: m.trailers, KeepAliveTimeout: m.kaTimeout, KeepAliveMax: m.kaMax,
		Request: m.req, Missed: m.missed, Incomplete: incomplete,
	}
	if len(m.headers) == 0 {
		c.det.Headers = nil
	}
	if len(m.trailers) == 0 {
		c.det.Trailers = nil
	}
	c.ev = event.Event{Ref: at, Conn: c.id, Dir: h.dir, Proto: event.ProtoHTTP1, Type: typ,
		Len: int(m.bodyLen), HTTP1: &c.det}
	c.sink.Event(&c.ev)
}

// Gap reports n bytes of dir lost by the capture; at is the frame that
// revealed the loss.
func (c *Conn) Gap(dir event.Dir, n int, at event.Ref) {
	h := &c.half[dir&1]
	if h.closed || h.st == stSwitched || n <= 0 {
		return
	}
	m := &h.msg
	k := int64(n)
	switch h.st {
	case stUntilClose:
		m.bodyLen += k
		m.missed += k
	case stBody, stChunkData:
		d := min(k, h.remain)
		h.remain -= d
		m.bodyLen += d
		m.missed += d
		switch {
		case h.st == stChunkData && d < k:
			c.finish(h, at, true)
			c.gapResync(h, "gap_in_chunk_framing")
		case h.st == stChunkData:
			if h.remain == 0 {
				h.st, h.crSeen = stChunkEnd, false
			}
		case h.remain == 0:
			c.finish(h, at, false)
			if d < k {
				c.lost(h) // the gap ran into the next message
				c.gapResync(h, "gap_in_header")
			}
		}
	case stChunkSize, stChunkEnd, stTrailers:
		c.finish(h, at, true)
		c.gapResync(h, "gap_in_chunk_framing")
	case stIdle, stStart, stHeaders:
		if h.resync {
			// Already looking for a start line: drop the candidate.
			h.st = stIdle
			h.buf = h.buf[:0]
			return
		}
		c.lost(h)
		c.gapResync(h, "gap_in_header")
	case stResync:
		h.st, h.nscan = stIdle, 0 // the bytes after a gap may begin a line
	}
}

// gapResync resynchronises after a gap: the next byte may begin a start
// line.
func (c *Conn) gapResync(h *half, cause string) {
	c.resync(h, cause, true)
}

// lost accounts for a message of h's direction lost in a gap, keeping the
// request queue aligned with the responses.
func (c *Conn) lost(h *half) {
	if h.dir == event.S2C {
		c.sum.LostResponses++
		if c.queue.len() > 0 {
			c.queue.pop()
		}
		return
	}
	c.sum.LostRequests++
	c.enqueue(pending{keepAlive: true})
}

// Close reports the end of dir: a FIN (reset false), an RST (reset true),
// or the end of the capture. A body delimited by the close ends here; a
// message cut short is sent marked Incomplete.
func (c *Conn) Close(dir event.Dir, reset bool, at event.Ref) {
	h := &c.half[dir&1]
	if h.closed {
		return
	}
	switch h.st {
	case stUntilClose:
		c.finish(h, at, reset)
	case stBody:
		c.anomaly("content_length_mismatch")
		c.finish(h, at, true)
	case stChunkSize, stChunkData, stChunkEnd, stTrailers:
		c.anomaly("incomplete_chunked")
		c.finish(h, at, true)
	case stStart, stHeaders:
		if !h.resync {
			c.anomaly("partial_header")
		}
	}
	h.closed = true
	h.buf = nil
}
