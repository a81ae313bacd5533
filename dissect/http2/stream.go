package http2

import (
	"sort"
	"strconv"

	"github.com/h2scope/h2scope/dissect/event"
)

// Bounds on what one connection keeps.
const (
	// maxStreamStalls bounds the stall intervals kept per stream.
	maxStreamStalls = 64
	// maxConnStalls bounds the connection-window stall intervals kept.
	maxConnStalls = 1024
	// maxGoAways bounds the GOAWAY frames kept in the summary.
	maxGoAways = 16
	// maxRecordString bounds a header value copied into a stream record.
	maxRecordString = 1024
)

// Counts holds one count per direction.
type Counts = event.Pair

// What ends a Stall (Stall.EndedBy).
const (
	StallWindowUpdate = "WINDOW_UPDATE" // the receiver opened the window
	StallSettings     = "SETTINGS"      // a new SETTINGS_INITIAL_WINDOW_SIZE opened it
	StallEndStream    = "END_STREAM"    // the stream ended
	StallRSTStream    = "RST_STREAM"    // the stream was reset
	StallCaptureGap   = "capture_gap"   // the capture lost bytes: the window is unknown
)

// Stall is an interval during which a sender's flow-control window sat at
// or below zero, so that it could not send DATA (RFC 9113 §5.2).
type Stall struct {
	// Dir is the sender whose window was exhausted.
	Dir event.Dir `json:"dir"`
	// Stream is the stream whose window it was, 0 for the connection's.
	Stream uint32 `json:"stream"`
	// Start is the frame that brought the window to zero or below (a DATA
	// frame, or a SETTINGS frame lowering SETTINGS_INITIAL_WINDOW_SIZE).
	Start event.Ref `json:"start"`
	// End is the frame that ended the stall, nil while it lasted to the
	// end of the capture.
	End *event.Ref `json:"end,omitempty"`
	// EndedBy says what ended it: "WINDOW_UPDATE", "SETTINGS",
	// "END_STREAM", "RST_STREAM", or "capture_gap" when lost bytes made
	// the window unknown; empty while open. An inferred stall also ends
	// by "SETTINGS" when a SETTINGS_INITIAL_WINDOW_SIZE moved the window
	// by an amount the capture did not show.
	EndedBy string `json:"ended_by,omitempty"`
	// MinWindow is the lowest the window went during the stall (0 for an
	// inferred stall).
	MinWindow int64 `json:"min_window"`
	// Inferred is set when the window's start was not captured: the
	// stall is inferred from the sender never exceeding this level, which
	// it reached at least twice (see "Flow control" in the package doc).
	Inferred bool `json:"inferred,omitempty"`
}

// Reset is a RST_STREAM that ended a stream.
type Reset struct {
	// Dir is the side that sent it.
	Dir event.Dir `json:"dir"`
	// Code is its error code (written by name: "CANCEL").
	Code ErrCode `json:"code"`
	// Ref is the frame that carried it.
	Ref event.Ref `json:"ref"`
}

// GoAway is a GOAWAY frame.
type GoAway struct {
	// Dir is the side that sent it.
	Dir event.Dir `json:"dir"`
	// LastStreamID is the highest stream the sender may have processed.
	LastStreamID uint32 `json:"last_stream_id"`
	// Code is its error code (written by name).
	Code ErrCode `json:"code"`
	// Debug is its debug data (at most 256 bytes).
	Debug string `json:"debug,omitempty"`
	// Ref is the frame that carried it.
	Ref event.Ref `json:"ref"`
}

// Stream is the record of one HTTP/2 stream.
type Stream struct {
	// ID is the stream identifier.
	ID uint32 `json:"id"`
	// Initiator is "client" for odd identifiers, "server" for pushed
	// (even) streams.
	Initiator string `json:"initiator"`
	// Midstream is set when the stream was opened before the capture (or
	// a loss) showed it: its request headers and windows may be unknown.
	Midstream bool `json:"midstream,omitempty"`
	// Upgrade is set for stream 1 of an h2c upgrade, whose request was
	// the HTTP/1.1 one.
	Upgrade bool `json:"upgrade,omitempty"`
	// Method, Scheme, Authority and Path are the request's pseudo-header
	// fields (from the PUSH_PROMISE for a pushed stream), empty when
	// absent or undecodable.
	Method    string `json:"method,omitempty"`
	Scheme    string `json:"scheme,omitempty"`
	Authority string `json:"authority,omitempty"`
	Path      string `json:"path,omitempty"`
	// Status is the final response's :status, 0 when not seen.
	Status int `json:"status,omitempty"`
	// ContentType is the response's content-type.
	ContentType string `json:"content_type,omitempty"`
	// GRPCStatus and GRPCMessage are grpc-status and grpc-message from the
	// response's trailers (or a trailers-only response); GRPCStatus is nil
	// when absent.
	GRPCStatus  *int   `json:"grpc_status,omitempty"`
	GRPCMessage string `json:"grpc_message,omitempty"`
	// FirstHeaders is the first HEADERS frame seen on the stream (its TS
	// is the stream's start).
	FirstHeaders *event.Ref `json:"first_headers,omitempty"`
	// ReplyHeaders is the first HEADERS frame of the side that did not
	// open the stream: the response's (an interim 1xx one included) on
	// a client's stream. A reset before it came cut the stream before
	// any answer: the rapid-reset shape.
	ReplyHeaders *event.Ref `json:"reply_headers,omitempty"`
	// ClientEnd and ServerEnd are the frames that carried each side's
	// END_STREAM, nil when not seen.
	ClientEnd *event.Ref `json:"client_end,omitempty"`
	ServerEnd *event.Ref `json:"server_end,omitempty"`
	// ClientTrailers and ServerTrailers are set when that side sent a
	// trailing header block.
	ClientTrailers bool `json:"client_trailers,omitempty"`
	ServerTrailers bool `json:"server_trailers,omitempty"`
	// Informational counts 1xx responses.
	Informational int `json:"informational,omitempty"`
	// HeaderBlocks counts header blocks on the stream; Undecodable those
	// that could not be decoded.
	HeaderBlocks int `json:"header_blocks"`
	Undecodable  int `json:"undecodable,omitempty"`
	// DataBytes counts DATA payload bytes without padding, per sender;
	// DataFrames counts DATA frames.
	DataBytes  Counts `json:"data_bytes"`
	DataFrames Counts `json:"data_frames"`
	// Reset is the RST_STREAM that ended the stream, nil when none.
	Reset *Reset `json:"reset,omitempty"`
	// PushedBy is the stream whose PUSH_PROMISE reserved this one, and
	// PushPromise that frame.
	PushedBy    uint32     `json:"pushed_by,omitempty"`
	PushPromise *event.Ref `json:"push_promise,omitempty"`
	// Pushes counts the PUSH_PROMISE frames sent on this stream.
	Pushes int `json:"pushes,omitempty"`
	// Stalls lists the intervals either side's stream window sat at or
	// below zero; StallsDropped counts those past the per-stream bound.
	Stalls        []Stall `json:"stalls,omitempty"`
	StallsDropped int     `json:"stalls_dropped,omitempty"`
}

// srec is a stream record as kept while dissecting.
type srec struct {
	id                              uint32
	midstream, upgrade, closed      bool
	method, scheme, authority, path string
	status                          int
	contentType                     string
	grpcStatus                      int
	grpcMessage                     string
	first                           event.Ref
	hasFirst                        bool
	reply                           event.Ref // the answering side's first HEADERS
	end                             [2]event.Ref
	ended                           [2]bool
	trailers                        [2]bool
	blocks                          [2]int
	finalResp                       bool
	informational                   int
	undecodable                     int
	dataBytes, dataFrames           Counts
	reset                           *Reset
	pushedBy                        uint32
	promise                         event.Ref
	pushed                          bool
	pushes                          int
	stalls                          []stallRec
	stallsDropped                   int
}

// openStall is a stall interval in progress.
type openStall struct {
	open  bool
	start event.Ref
	min   int64
}

// stallRec is a finished stall interval.
type stallRec struct {
	dir    event.Dir
	stream uint32
	start  event.Ref
	end    event.Ref
	open   bool
	min    int64
	by     string
	// inferred is set for a stall of a window whose start was unknown.
	inferred bool
}

func (s stallRec) export() Stall {
	x := Stall{Dir: s.dir, Stream: s.stream, Start: s.start, EndedBy: s.by, MinWindow: s.min, Inferred: s.inferred}
	if !s.open {
		e := s.end
		x.End = &e
	}
	return x
}

// sstate is the live state of a stream being tracked.
type sstate struct {
	id       uint32
	rec      int32 // index in Conn.recs, -1 when dropped
	r        *srec // the record, nil when dropped
	win      [2]int64
	winKnown [2]bool
	end      [2]bool
	stall    [2]openStall
	// guess infers the stalls of a window that is not known.
	guess [2]guess
	// opening is set from creation by its initiator's HEADERS until that
	// header block is complete.
	opening bool
}

// initiator returns the side that opens stream id.
func initiator(id uint32) event.Dir {
	if id%2 == 1 {
		return event.C2S
	}
	return event.S2C
}

// touch returns the state of stream id, creating it on first sight.
// opener says the frame is a HEADERS from the stream's initiator (or a
// PUSH_PROMISE reserving it). It returns nil for stream 0, for a stream
// known to be closed, and past the tracking bound.
func (c *Conn) touch(id uint32, at event.Ref, opener bool) *sstate {
	if id == 0 {
		return nil
	}
	if st := c.active[id]; st != nil {
		return st
	}
	ri, hasRec := c.recIdx[id]
	if hasRec && (c.recs.Frozen(int(ri)) || c.recs.At(int(ri)).closed) {
		return nil
	}
	par := initiator(id)
	fresh := id > c.maxID[par]
	if !fresh && !hasRec && c.pristine && !c.untracked {
		return nil // closed, or never used: the id space is known
	}
	if fresh {
		c.maxID[par] = id
	}
	if len(c.active) >= c.opts.MaxStreams {
		if fresh {
			c.untracked = true
			c.anomaly("streams_untracked")
			c.seen++
			c.dropped++
		}
		return nil
	}
	var st *sstate
	if n := len(c.spare); n > 0 {
		st, c.spare = c.spare[n-1], c.spare[:n-1]
	} else {
		st = new(sstate)
	}
	*st = sstate{id: id, rec: -1, opening: opener && fresh}
	if hasRec {
		st.rec, st.r = ri, c.recs.At(int(ri))
	} else if c.recs.Len() < c.opts.MaxStreams {
		i, r := c.recs.Add(srec{id: id, grpcStatus: -1, midstream: !(opener && fresh)})
		st.rec, st.r = int32(i), r
		c.recIdx[id] = st.rec
		c.seen++
	} else {
		c.seen++
		c.dropped++
	}
	c.active[id] = st
	return st
}

// rec returns st's record, nil when dropped.
func (c *Conn) rec(st *sstate) *srec {
	if st == nil {
		return nil
	}
	return st.r
}

// recByID returns stream id's record whether or not it is still tracked.
func (c *Conn) recByID(id uint32) *srec {
	if i, ok := c.recIdx[id]; ok {
		return c.recs.At(int(i))
	}
	return nil
}

// recFor returns the record for id, from st when tracked.
func (c *Conn) recFor(id uint32, st *sstate) *srec {
	if st != nil {
		return c.rec(st)
	}
	return c.recByID(id)
}

// openWindows sets a new stream's windows from the initial window sizes
// each receiver announced, where known.
func (c *Conn) openWindows(st *sstate) {
	for d := range st.win {
		if p := &c.peer[event.Dir(d).Reverse()]; p.initKnown {
			st.win[d], st.winKnown[d] = p.initWin, true
			st.guess[d] = guess{}
		}
	}
}

// endStream records dir's END_STREAM on st.
func (c *Conn) endStream(dir event.Dir, st *sstate, at event.Ref) {
	if st == nil {
		return
	}
	st.end[dir] = true
	if r := c.rec(st); r != nil && !r.ended[dir] {
		r.ended[dir], r.end[dir] = true, at
	}
	c.closeStall(dir, st, at, StallEndStream)
	c.settleGuess(dir, st, at, StallEndStream)
	if st.end[0] && st.end[1] {
		c.closeStream(st, at, StallEndStream)
	}
}

// closeStream stops tracking st.
func (c *Conn) closeStream(st *sstate, at event.Ref, by string) {
	for d := range st.stall {
		c.closeStall(event.Dir(d), st, at, by)
		c.settleGuess(event.Dir(d), st, at, by)
	}
	if r := c.rec(st); r != nil {
		r.closed = true
		c.recs.Freeze(int(st.rec))
	}
	if c.active[st.id] == st {
		delete(c.active, st.id)
		c.closing = append(c.closing, st)
	}
}

// closeStall ends dir's stall on st, if one is open.
func (c *Conn) closeStall(dir event.Dir, st *sstate, at event.Ref, by string) {
	o := &st.stall[dir]
	if !o.open {
		return
	}
	o.open = false
	r := c.rec(st)
	if r == nil {
		return
	}
	if len(r.stalls) >= maxStreamStalls {
		r.stallsDropped++
		return
	}
	r.stalls = append(r.stalls, stallRec{dir: dir, stream: st.id, start: o.start, end: at, min: o.min, by: by})
}

// closeConnStall ends dir's connection-window stall, if one is open.
func (c *Conn) closeConnStall(dir event.Dir, at event.Ref, by string) {
	o := &c.send[dir].stall
	if !o.open {
		return
	}
	o.open = false
	if len(c.stalls) >= maxConnStalls {
		c.stallsDropped++
		return
	}
	c.stalls = append(c.stalls, stallRec{dir: dir, start: o.start, end: at, min: o.min, by: by})
}

// watch opens or extends a stall when win is at or below zero.
func watch(o *openStall, win int64, at event.Ref) {
	if win > 0 {
		return
	}
	if !o.open {
		*o = openStall{open: true, start: at, min: win}
	} else if win < o.min {
		o.min = win
	}
}

// consume accounts a DATA frame of n bytes (padding included) sent by
// dir on st, setting the event's window fields where they are known, and
// feeding the inference of those that are not.
func (c *Conn) consume(dir event.Dir, st *sstate, n int64, endStream bool, at event.Ref) {
	over, starved := false, false
	switch {
	case st == nil:
	case st.winKnown[dir]:
		c.win[0] = st.win[dir]
		st.win[dir] -= n
		c.win[1] = st.win[dir]
		c.det.StreamWindowBefore, c.det.StreamWindowAfter = &c.win[0], &c.win[1]
		over = st.win[dir] < 0
		if n > 0 && !endStream {
			watch(&st.stall[dir], st.win[dir], at)
			starved = st.win[dir] <= 0
		}
	case !st.end[dir]:
		starved = c.spendGuess(&st.guess[dir], n, n > 0 && !endStream, false, dir, st.id, at, maxStreamStalls)
	}
	if s := &c.send[dir]; s.known {
		c.win[2] = s.win
		s.win -= n
		c.win[3] = s.win
		c.det.ConnWindowBefore, c.det.ConnWindowAfter = &c.win[2], &c.win[3]
		over = over || s.win < 0
		if n > 0 {
			watch(&s.stall, s.win, at)
		}
	} else {
		c.spendGuess(&s.guess, n, n > 0, starved, dir, 0, at, maxConnStalls)
	}
	if over && n > 0 {
		c.anomaly("flow_control_exceeded")
	}
}

// grow applies a window increment to *win, ending a stall it resolves.
func (c *Conn) grow(win *int64, o *openStall, inc int64) (ended bool) {
	*win += inc
	if *win > maxWindow {
		c.anomaly("window_overflow")
	}
	return o.open && *win > 0
}

// settingsLost makes what dir's SETTINGS govern unknown.
func (c *Conn) settingsLost(dir event.Dir, at event.Ref) {
	p := &c.peer[dir]
	p.initKnown, p.maxFrameKnown, p.hasTablePending = false, false, false
	c.h[dir.Reverse()].hp.allowedKnown = false
	snd := dir.Reverse()
	for _, st := range c.active {
		st.winKnown[snd] = false
		c.closeStall(snd, st, at, StallCaptureGap)
		c.settleGuess(snd, st, at, StallCaptureGap)
	}
}

// applySetting applies one parameter announced by dir.
func (c *Conn) applySetting(dir event.Dir, id SettingID, v uint32, at event.Ref) {
	p := &c.peer[dir]
	name := id.String()
	found := false
	for i := range p.values {
		if p.values[i].ID == name {
			p.values[i].Value, found = v, true
		}
	}
	if !found && len(p.values) < 32 {
		p.values = append(p.values, event.Setting{ID: name, Value: v})
	}
	switch id {
	case SettingHeaderTableSize:
		hd := c.h[dir.Reverse()].hp
		if !hd.allowedKnown || uint64(v) >= hd.allowed {
			hd.setAllowed(v)
			p.hasTablePending = false
		} else {
			p.tablePending, p.hasTablePending = v, true
		}
	case SettingMaxHeaderListSize:
		p.maxHeaderList = v
	case SettingEnablePush:
		if v > 1 {
			c.anomaly("settings_bad_value")
		}
	case SettingInitialWindowSize:
		if v > maxWindow {
			c.anomaly("settings_bad_value")
			return
		}
		old, known := p.initWin, p.initKnown
		p.initWin, p.initKnown = int64(v), true
		delta := int64(v) - old
		snd := dir.Reverse()
		for _, st := range c.active {
			if st.winKnown[snd] || st.end[snd] {
				continue
			}
			// A window whose start was not seen moves by the
			// difference too: by an unknown amount when the old
			// value is unknown, which starts the inference over.
			if !known {
				c.settleGuess(snd, st, at, StallSettings)
			} else {
				st.guess[snd].grow(delta, at, StallSettings)
			}
		}
		if !known {
			return
		}
		for _, st := range c.active {
			if !st.winKnown[snd] || delta == 0 {
				continue
			}
			if c.grow(&st.win[snd], &st.stall[snd], delta) {
				c.closeStall(snd, st, at, StallSettings)
			} else if delta < 0 && !st.end[snd] {
				watch(&st.stall[snd], st.win[snd], at)
			}
		}
	case SettingMaxFrameSize:
		if v < defaultMaxFrameSize || v > maxFrameSizeLimit {
			c.anomaly("settings_bad_value")
			return
		}
		p.maxFrame, p.maxFrameKnown = v, true
	}
}

// settingsAck applies what dir's SETTINGS ACK acknowledges: a lowered
// SETTINGS_HEADER_TABLE_SIZE of the peer now binds dir's encoder.
func (c *Conn) settingsAck(dir event.Dir) {
	p := &c.peer[dir.Reverse()]
	if p.hasTablePending {
		c.h[dir].hp.setAllowed(p.tablePending)
		p.hasTablePending = false
	}
}

// fieldValue returns the value of the first decoded field named name.
func fieldValue(h []event.Header, name string) (string, bool) {
	for i := range h {
		if !h[i].Unknown && h[i].Name == name {
			return h[i].Value, true
		}
	}
	return "", false
}

func clip(s string) string {
	if len(s) > maxRecordString {
		return s[:maxRecordString]
	}
	return s
}

// requestFields records a request's pseudo-header fields.
func (c *Conn) requestFields(r *srec, h []event.Header) {
	for i := range h {
		f := &h[i]
		if f.Unknown {
			continue
		}
		switch f.Name {
		case ":method":
			r.method = clip(f.Value)
		case ":scheme":
			r.scheme = clip(f.Value)
		case ":authority":
			r.authority = clip(f.Value)
		case ":path":
			r.path = clip(f.Value)
		}
	}
}

// headersBlock updates stream id's record with a complete header block
// sent by dir.
func (c *Conn) headersBlock(dir event.Dir, id uint32, h []event.Header, bad, endStream bool, at event.Ref) {
	st := c.touch(id, at, dir == initiator(id))
	r := c.recFor(id, st)
	if st != nil && st.opening {
		st.opening = false
		if _, ok := fieldValue(h, ":method"); ok || c.pristine {
			c.openWindows(st)
			if r != nil {
				r.midstream = false
			}
		} else if r != nil {
			r.midstream = true
		}
	}
	if r != nil {
		n := r.blocks[dir]
		r.blocks[dir]++
		if bad {
			r.undecodable++
		}
		switch {
		case dir == event.C2S:
			if n == 0 && !bad {
				c.requestFields(r, h)
			} else if n > 0 {
				r.trailers[dir] = true
			}
		case bad:
			if n > 0 && endStream {
				r.trailers[dir] = true
			}
		default:
			if s, ok := fieldValue(h, ":status"); ok {
				code, _ := strconv.Atoi(s)
				if code >= 100 && code < 200 {
					r.informational++
				} else {
					r.status, r.finalResp = code, true
					if ct, ok := fieldValue(h, "content-type"); ok {
						r.contentType = clip(ct)
					}
				}
			} else if r.finalResp || n > 0 {
				r.trailers[dir] = true
			}
			if s, ok := fieldValue(h, "grpc-status"); ok {
				if v, err := strconv.Atoi(s); err == nil {
					r.grpcStatus = v
				}
			}
			if s, ok := fieldValue(h, "grpc-message"); ok {
				r.grpcMessage = clip(s)
			}
		}
	}
	if endStream {
		c.endStream(dir, st, at)
		if st == nil && r != nil && !r.ended[dir] {
			r.ended[dir], r.end[dir] = true, at
		}
	}
}

// promise records a PUSH_PROMISE sent by dir on stream parent reserving
// stream id.
func (c *Conn) promise(dir event.Dir, parent, id uint32, h []event.Header, bad bool, at event.Ref) {
	if pr := c.recByID(parent); pr != nil {
		pr.pushes++
	}
	if id == 0 {
		return
	}
	st := c.touch(id, at, true)
	if st == nil {
		return
	}
	if st.opening {
		st.opening = false
		c.openWindows(st)
	}
	if r := c.rec(st); r != nil {
		r.midstream, r.pushed, r.pushedBy, r.promise = false, true, parent, at
		if bad {
			r.undecodable++
		} else {
			c.requestFields(r, h)
		}
	}
}

// Streams returns the records of the streams seen, in order of stream
// identifier, at most Options.MaxStreams of them. Stalls still in progress
// are included with a nil End.
func (c *Conn) Streams() []Stream {
	out := make([]Stream, 0, c.recs.Len())
	c.recs.Each(func(r *srec) {
		// The frames a stream names share one allocation (not one
		// per connection: a pointer kept would keep them all).
		var refs *[4]event.Ref
		n := 0
		ref := func(v event.Ref) *event.Ref {
			if refs == nil {
				refs = new([4]event.Ref)
			}
			refs[n] = v
			n++
			return &refs[n-1]
		}
		s := Stream{
			ID: r.id, Initiator: "client", Midstream: r.midstream, Upgrade: r.upgrade,
			Method: r.method, Scheme: r.scheme, Authority: r.authority, Path: r.path,
			Status: r.status, ContentType: r.contentType, GRPCMessage: r.grpcMessage,
			ClientTrailers: r.trailers[event.C2S], ServerTrailers: r.trailers[event.S2C],
			Informational: r.informational, HeaderBlocks: r.blocks[0] + r.blocks[1], Undecodable: r.undecodable,
			DataBytes: r.dataBytes, DataFrames: r.dataFrames, PushedBy: r.pushedBy, Pushes: r.pushes,
			StallsDropped: r.stallsDropped,
		}
		if r.id%2 == 0 {
			s.Initiator = "server"
		}
		if r.grpcStatus >= 0 {
			v := r.grpcStatus
			s.GRPCStatus = &v
		}
		if r.hasFirst {
			s.FirstHeaders = ref(r.first)
		}
		if r.reply != (event.Ref{}) {
			s.ReplyHeaders = ref(r.reply)
		}
		if r.ended[event.C2S] {
			s.ClientEnd = ref(r.end[event.C2S])
		}
		if r.ended[event.S2C] {
			s.ServerEnd = ref(r.end[event.S2C])
		}
		if r.reset != nil {
			v := *r.reset
			s.Reset = &v
		}
		if r.pushed {
			v := r.promise
			s.PushPromise = &v
		}
		for _, x := range r.stalls {
			s.Stalls = append(s.Stalls, x.export())
		}
		if st := c.active[r.id]; st != nil {
			for d := range st.stall {
				if o := st.stall[d]; o.open {
					s.Stalls = append(s.Stalls, stallRec{dir: event.Dir(d), stream: r.id, start: o.start, open: true, min: o.min}.export())
				}
			}
			for d := range st.guess {
				exportGuess(&st.guess[d], &s.Stalls, &s.StallsDropped, maxStreamStalls)
			}
		}
		out = append(out, s)
	})
	sort.SliceStable(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}
