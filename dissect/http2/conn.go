package http2

import (
	"encoding/base64"
	"strings"

	"github.com/h2scope/h2scope/dissect/event"
)

// clientPreface is the client connection preface (RFC 9113 §3.4).
const clientPreface = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"

// Defaults for the Options limits.
const (
	DefaultMaxStreams      = 10000
	DefaultMaxHeaderBlock  = 1 << 20
	DefaultMaxHeaderList   = 1 << 20
	DefaultMaxStringLength = 64 << 10
	DefaultMaxTableMemory  = 64 << 10
)

// Options configure a Conn. The zero value dissects a connection seen from
// its start: the client direction begins with the connection preface and
// the server direction with its SETTINGS frame (h2c with prior knowledge,
// or h2 after a TLS handshake), with the default limits below. A direction
// whose first bytes are not what the start requires is counted as an
// anomaly and resynchronised as if the capture had started mid-connection.
type Options struct {
	// MidConnection says the capture started after the connection did: no
	// preface is expected, both directions synchronise on frame
	// boundaries, and the HPACK tables and flow-control windows are
	// unknown until the capture shows them.
	MidConnection bool
	// Upgrade says the connection switched to HTTP/2 by an HTTP/1.1
	// Upgrade: h2c (RFC 7540 §3.2): each direction's bytes start right
	// after the 101 response (server) or where the client's preface is
	// expected, and stream 1 (the upgraded request) is open, half-closed
	// (local) on the client's side. Upgrade takes precedence over
	// MidConnection.
	Upgrade bool
	// UpgradeSettings is the HTTP2-Settings header of the upgrade request
	// (base64url SETTINGS payload), applied as the client's first
	// SETTINGS. Ignored unless Upgrade is set; empty means none.
	UpgradeSettings string
	// UpgradeRequest holds the upgrade request's fields as pseudo-headers
	// (:method, :scheme, :authority, :path), recorded on stream 1. Ignored
	// unless Upgrade is set.
	UpgradeRequest []event.Header
	// UpgradeAt is the frame that carried the upgrade request's head:
	// stream 1's first headers and the end of its request.
	UpgradeAt event.Ref
	// Observer, if set, sees every stream's header blocks, DATA payload,
	// resets and the connection's lost bytes.
	Observer StreamObserver
	// MaxStreams bounds the stream records kept and the streams tracked
	// at once (DefaultMaxStreams when 0); streams past it are counted in
	// Summary.StreamsDropped.
	MaxStreams int
	// MaxHeaderBlock bounds the bytes of one header block (HEADERS or
	// PUSH_PROMISE and its CONTINUATION frames) held for decoding
	// (DefaultMaxHeaderBlock when 0); a larger block is undecodable.
	MaxHeaderBlock int
	// MaxHeaderList bounds the decoded fields recorded per block, sized
	// as SETTINGS_MAX_HEADER_LIST_SIZE counts them (DefaultMaxHeaderList
	// when 0); fields past it are decoded and counted but not recorded.
	MaxHeaderList int
	// MaxStringLength bounds one HPACK string (DefaultMaxStringLength
	// when 0); a longer one makes its block undecodable.
	MaxStringLength int
	// MaxTableMemory bounds the bytes of each direction's HPACK dynamic
	// table copy (DefaultMaxTableMemory when 0); entries evicted for it
	// decode as Unknown.
	MaxTableMemory int
}

// A StreamObserver sees the contents of a connection's streams, for a
// dissector layered on HTTP/2 (gRPC). Its methods are called in byte
// order within a direction. The slices passed are valid only during the
// call. Headers and Reset come right after the event of the frame that
// carried them; Data comes as the payload arrives, so before the DATA
// frame's event.
type StreamObserver interface {
	// Headers delivers a decoded header block of HEADERS (and its
	// CONTINUATION frames) sent by dir, on the frame that ended it.
	// Fields the capture could not decode are Unknown; h is nil when the
	// whole block was undecodable. endStream is the HEADERS frame's
	// END_STREAM flag.
	Headers(dir event.Dir, stream uint32, h []event.Header, endStream bool, at event.Ref)
	// Data delivers DATA payload as it arrives, without padding, in one or
	// more calls per frame. endStream is set on the call that delivers the
	// last byte of a frame carrying END_STREAM, or on an empty call when
	// such a frame ends in padding or is empty.
	Data(dir event.Dir, stream uint32, b []byte, endStream bool, at event.Ref)
	// Reset reports a RST_STREAM sent by dir, with its error code.
	Reset(dir event.Dir, stream uint32, code ErrCode, at event.Ref)
	// Gap reports n bytes of dir that the capture lost. When they fall
	// inside one DATA frame's payload, Gap comes between that frame's Data
	// calls and n counts the lost payload bytes (padding excluded when
	// known), so the stream is the one of the last Data call; otherwise
	// frames of any stream may be hidden in the n bytes.
	Gap(dir event.Dir, n int, at event.Ref)
}

// state is where a direction's parser stands.
type state uint8

const (
	stPreface state = iota // matching the client preface
	stHeader               // reading a frame header
	stPayload              // inside a frame's payload
	stSync                 // looking for a frame boundary
)

// block is a header block being gathered from HEADERS or PUSH_PROMISE and
// CONTINUATION frames.
type block struct {
	active    bool
	stream    uint32
	typ       FrameType
	endStream bool
	promised  uint32
	buf       []byte
	over      bool // exceeded MaxHeaderBlock
	lost      bool // part of it was lost or malformed
	start     event.Ref
}

// half is one direction's parser.
type half struct {
	dir    event.Dir
	st     state
	closed bool
	pn     int  // preface bytes matched
	first  bool // the next frame is the direction's first
	resync bool // the next frame is the first after resynchronising

	hb [frameHeaderLen]byte
	hn int
	fh FrameHeader

	spec *frameSpec
	rem  uint32 // payload bytes still to come
	got  uint32 // payload bytes consumed
	lost int    // payload bytes of this frame lost

	// DATA
	padPending bool
	pad        int
	dataLeft   uint32
	dataBytes  uint32 // unpadded bytes of the frame (delivered or lost)
	endSent    bool
	badPad     bool

	// header-block frames
	pfx      [6]byte
	pfxN     int
	pfxWant  int
	fragLeft uint32
	discard  bool // fragment of an unexpected CONTINUATION

	// kindKeep
	keep  [8 + maxDebug + maxSettingsBytes]byte
	keepN int

	blk block
	hp  *hdecoder
	sy  syncer

	// last is the packet of the latest Data call, seen set once there was
	// one.
	last event.Ref
	seen bool
}

// sender is one direction's connection-level flow-control state as a
// sender of DATA.
type sender struct {
	win   int64
	known bool
	stall openStall
	// guess infers the stalls of the window while it is not known.
	guess guess
}

// peer holds the settings one side announced; they govern what the other
// side may send.
type peer struct {
	initWin       int64
	initKnown     bool
	maxFrame      uint32
	maxFrameKnown bool
	// tablePending is a lowered SETTINGS_HEADER_TABLE_SIZE awaiting the
	// other side's SETTINGS ACK.
	tablePending    uint32
	hasTablePending bool
	values          []event.Setting
	// maxHeaderList is the SETTINGS_MAX_HEADER_LIST_SIZE this side
	// advertised, 0 when none (no limit).
	maxHeaderList uint32
}

// Conn dissects one TCP connection's two byte streams as HTTP/2. It
// implements the tcp.StreamHandler contract. A Conn is not safe for
// concurrent use.
type Conn struct {
	id   event.ConnID
	sink event.Sink
	opts Options
	obs  StreamObserver

	h    [2]half
	peer [2]peer
	send [2]sender

	// pristine is set while both directions have been seen from the
	// start without loss: the stream-id space is then known exactly.
	pristine bool
	preface  bool
	// untracked is set once a stream was left untracked (MaxStreams):
	// an unknown stream is then not necessarily a closed one.
	untracked bool

	active  map[uint32]*sstate
	recs    recList
	recIdx  map[uint32]int32
	maxID   [2]uint32 // highest stream id seen, by initiator (client odd, server even)
	seen    int
	dropped int
	// closing lists the states of streams closed during the current
	// frame, reused (from spare) once it is over.
	closing, spare []*sstate

	anomalies map[string]int
	frames    [2][256]uint64
	resets    [2]uint64 // streams reset while open, by the resetting side
	lostBytes [2]uint64
	skipped   [2]uint64
	resyncs   int

	blocks, undecodable, fields, decoded int

	stalls        []stallRec
	stallsDropped int
	goaways       []GoAway
	// early holds the latest increments applied to inferred windows
	// (earlyN counts them all, the last maxEarly are kept); earlyTop is
	// the latest frame of those granted to each sender.
	early    [maxEarly]early
	earlyN   int
	earlyTop [2]uint64

	ev   event.Event
	det  event.HTTP2
	win  [4]int64
	hdrs []event.Header
}

// NewConn returns a Conn that sends one event per frame to sink (which may
// be nil) for connection id.
func NewConn(id event.ConnID, sink event.Sink, opts Options) *Conn {
	if opts.MaxStreams <= 0 {
		opts.MaxStreams = DefaultMaxStreams
	}
	if opts.MaxHeaderBlock <= 0 {
		opts.MaxHeaderBlock = DefaultMaxHeaderBlock
	}
	if opts.MaxHeaderList <= 0 {
		opts.MaxHeaderList = DefaultMaxHeaderList
	}
	if opts.MaxStringLength <= 0 {
		opts.MaxStringLength = DefaultMaxStringLength
	}
	if opts.MaxTableMemory <= 0 {
		opts.MaxTableMemory = DefaultMaxTableMemory
	}
	if opts.Upgrade {
		opts.MidConnection = false
	}
	c := &Conn{
		id:     id,
		sink:   sink,
		opts:   opts,
		obs:    opts.Observer,
		active: make(map[uint32]*sstate),
		recIdx: make(map[uint32]int32),
	}
	known := !opts.MidConnection
	for d := range c.h {
		h := &c.h[d]
		h.dir = event.Dir(d)
		h.hp = newHDecoder(known, opts.MaxStringLength, opts.MaxTableMemory)
		if known {
			c.send[d].win, c.send[d].known = defaultWindow, true
			c.peer[d].initWin, c.peer[d].initKnown = defaultWindow, true
			c.peer[d].maxFrame, c.peer[d].maxFrameKnown = defaultMaxFrameSize, true
		}
	}
	c.pristine = known
	switch {
	case opts.MidConnection:
		for d := range c.h {
			c.h[d].st, c.h[d].sy.fresh = stSync, true
		}
	default:
		c.h[event.C2S].st = stPreface
		c.h[event.S2C].st, c.h[event.S2C].first = stHeader, true
	}
	if opts.Upgrade {
		c.startUpgrade()
	}
	return c
}

// startUpgrade opens stream 1 for the upgraded request and applies the
// HTTP2-Settings header.
func (c *Conn) startUpgrade() {
	if s := c.opts.UpgradeSettings; s != "" {
		p, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(s, "="))
		if err != nil || len(p)%6 != 0 {
			c.anomaly("upgrade_settings_bad")
		} else {
			for i := 0; i+6 <= len(p); i += 6 {
				c.applySetting(event.C2S, SettingID(uint16(p[i])<<8|uint16(p[i+1])),
					uint32(p[i+2])<<24|uint32(p[i+3])<<16|uint32(p[i+4])<<8|uint32(p[i+5]), event.Ref{})
			}
		}
	}
	at := c.opts.UpgradeAt
	st := c.touch(1, at, true)
	if st == nil {
		return
	}
	st.opening = false
	c.openWindows(st)
	if r := c.rec(st); r != nil {
		r.midstream = false
		r.upgrade = true
		if at != (event.Ref{}) {
			r.first, r.hasFirst = at, true
		}
		c.requestFields(r, c.opts.UpgradeRequest)
	}
	c.endStream(event.C2S, st, at)
}

// Anomalies the analysis reads from Summary.Anomalies, by name; the
// others are named where they are counted.
const (
	AnomalyClientEmptyFrames   = "client_empty_frames"   // DATA, HEADERS or CONTINUATION without payload from the client
	AnomalyHeaderListTooLarge  = "header_list_too_large" // a decoded header list past the limit
	AnomalyHeaderListAmplified = "header_list_amplified" // a header list decoded far larger than its block
)

// anomaly counts one occurrence of a named irregularity.
func (c *Conn) anomaly(name string) { c.anomalyN(name, 1) }

func (c *Conn) anomalyN(name string, n int) {
	if c.anomalies == nil {
		c.anomalies = make(map[string]int)
	}
	c.anomalies[name] += n
}

// Data consumes the next in-order bytes of dir; at is the frame that
// carried them. b is valid only during the call.
func (c *Conn) Data(dir event.Dir, b []byte, at event.Ref) {
	h := &c.h[dir&1]
	if h.closed {
		if len(b) > 0 {
			c.anomaly("data_after_close")
		}
		return
	}
	// A packet's bytes may come in several calls: it starts where the
	// packet reference changes.
	start := at.Frame != h.last.Frame || at.File != h.last.File || !h.seen
	h.last, h.seen = at, true
	c.feed(h, b, at, start)
}

// feed runs b through h's parser, buffering while synchronising. start
// says b begins a packet.
func (c *Conn) feed(h *half, b []byte, at event.Ref, start bool) {
	whole := len(b)
	for len(b) > 0 {
		if h.st == stSync || h.sy.pending() {
			n := c.syncAppend(h, b, at, start && len(b) == whole)
			b = b[n:]
			c.drain(h, endNone)
			continue
		}
		b = b[c.parse(h, b, at):]
	}
}

// Gap reports n bytes of dir lost to the capture; at is the frame that
// revealed the loss. Lost bytes inside a frame's payload are accounted to
// that frame and parsing goes on at the next frame; elsewhere the
// direction resynchronises on a later frame boundary.
func (c *Conn) Gap(dir event.Dir, n int, at event.Ref) {
	h := &c.h[dir&1]
	if h.closed || n <= 0 {
		return
	}
	c.lostBytes[dir&1] += uint64(n)
	if h.st == stSync || h.sy.pending() {
		c.drain(h, endGap)
		c.dropSync(h)
	}
	if h.st == stPayload {
		if uint64(n) <= uint64(h.rem) {
			c.losePayload(h, uint32(n), at)
			if h.rem == 0 {
				c.endFrame(h, at)
			}
			return
		}
		n -= int(h.rem)
		c.losePayload(h, h.rem, at)
		c.endFrame(h, at)
	}
	if h.st != stSync {
		c.loseSync(h, "sync_lost_gap", at)
	}
	if c.obs != nil {
		c.obs.Gap(h.dir, n, at)
	}
}

// Close reports the end of dir: a FIN, a reset (reset true), or the end of
// the capture. Bytes held while synchronising are dissected as far as they
// go; a frame cut short is counted as truncated_frame.
func (c *Conn) Close(dir event.Dir, reset bool, at event.Ref) {
	h := &c.h[dir&1]
	if h.closed {
		return
	}
	if h.st == stSync || h.sy.pending() {
		c.drain(h, endClose)
		c.dropSync(h)
	}
	switch {
	case h.st == stPayload || h.st == stHeader && h.hn > 0:
		c.anomaly("truncated_frame")
	case h.st == stPreface && h.pn > 0:
		c.anomaly("preface_truncated")
	}
	if h.blk.active {
		c.anomaly("continuation_missing")
		c.abortBlock(h)
	}
	h.closed = true
	h.sy = syncer{}
	h.blk.buf = nil
}

// parse dissects b in step with h's state and returns the bytes consumed:
// all of b, unless synchronisation was lost first.
func (c *Conn) parse(h *half, b []byte, at event.Ref) int {
	n0 := len(b)
	for len(b) > 0 {
		switch h.st {
		case stSync:
			return n0 - len(b)
		case stPreface:
			for len(b) > 0 && h.pn < len(clientPreface) && b[0] == clientPreface[h.pn] {
				b = b[1:]
				h.pn++
			}
			if h.pn == len(clientPreface) {
				c.preface = true
				h.st, h.first = stHeader, true
				c.prepare(h, at, "PREFACE", KindPreface, 0, len(clientPreface), 0)
				c.emit(h)
				continue
			}
			if len(b) > 0 {
				// Not the preface: the capture must have started later.
				c.skipped[h.dir] += uint64(h.pn)
				c.anomalyN("resync_skipped_bytes", h.pn)
				c.anomaly("preface_missing")
				c.loseSync(h, "", at)
			}
		case stHeader:
			if h.hn == 0 && len(b) >= frameHeaderLen {
				h.fh, _ = ParseFrameHeader(b)
				b = b[frameHeaderLen:]
			} else {
				k := copy(h.hb[h.hn:], b)
				h.hn += k
				b = b[k:]
				if h.hn < frameHeaderLen {
					continue
				}
				h.fh, _ = ParseFrameHeader(h.hb[:])
				h.hn = 0
			}
			c.beginFrame(h, at)
		case stPayload:
			k := uint32(len(b))
			if k > h.rem {
				k = h.rem
			}
			c.payload(h, b[:k], at)
			b = b[k:]
			if h.rem == 0 {
				c.endFrame(h, at)
			}
		}
	}
	return n0
}

// maxFrameLen returns the largest frame dir may send: the receiver's
// SETTINGS_MAX_FRAME_SIZE when known, else the 24-bit maximum.
func (c *Conn) maxFrameLen(dir event.Dir) (uint32, bool) {
	p := &c.peer[dir.Reverse()]
	if p.maxFrameKnown {
		return p.maxFrame, true
	}
	return maxFrameSizeLimit, false
}

// beginFrame checks a complete frame header and prepares for its payload.
func (c *Conn) beginFrame(h *half, at event.Ref) {
	fh := &h.fh
	s := specFor(fh.Type)
	if h.first {
		h.first = false
		if fh.Type != FrameSettings || fh.Flags.Has(FlagAck) {
			c.anomaly("settings_not_first")
			if !plausibleFrom(*fh, maxFrameSizeLimit, h.dir == event.C2S) {
				c.loseSync(h, "", at)
				return
			}
		}
	}
	if max, _ := c.maxFrameLen(h.dir); fh.Length > max {
		// Past the receiver's SETTINGS_MAX_FRAME_SIZE: a violation the
		// frame's length still delimits if the header is otherwise
		// sound (as Wireshark reads it), else a sign of lost framing.
		c.anomaly("frame_too_large")
		if !plausibleFrom(*fh, maxFrameSizeLimit, h.dir == event.C2S) {
			c.loseSync(h, "", at)
			return
		}
	}
	afterSync := h.resync
	h.resync = false
	if h.blk.active && (fh.Type != FrameContinuation || fh.StreamID != h.blk.stream) {
		c.anomaly("continuation_missing")
		c.abortBlock(h)
	}
	h.spec = s
	h.rem, h.got, h.lost, h.keepN = fh.Length, 0, 0, 0
	if s == unknownSpec {
		c.anomaly("unknown_frame_type")
	}
	if !s.lengthOK(fh.Type, fh.Flags, fh.Length) && s.lenAnomaly != "" {
		c.anomaly(s.lenAnomaly)
	}
	if !s.streamOK(fh.StreamID) && s.streamAnomaly != "" {
		c.anomaly(s.streamAnomaly)
	}
	if fh.Reserved {
		c.anomaly("reserved_bit_set")
	}
	if fh.Length == 0 && h.dir == event.C2S && !fh.Flags.Has(FlagEndStream) &&
		(fh.Type == FrameData || fh.Type == FrameHeaders || fh.Type == FrameContinuation) {
		c.anomaly(AnomalyClientEmptyFrames)
	}
	switch s.kind {
	case kindData:
		h.padPending = fh.Flags.Has(FlagPadded)
		h.pad, h.badPad, h.endSent = 0, false, false
		h.dataLeft, h.dataBytes = fh.Length, fh.Length
		if h.padPending {
			h.dataLeft, h.dataBytes = 0, 0
		}
	case kindBlock:
		h.discard, h.pad, h.badPad, h.pfxN, h.fragLeft = false, 0, false, 0, 0
		h.pfxWant = 0
		if fh.Flags.Has(FlagPadded) && fh.Type != FrameContinuation {
			h.pfxWant++
		}
		switch fh.Type {
		case FrameHeaders:
			if fh.Flags.Has(FlagPriority) {
				h.pfxWant += 5
			}
			c.startBlock(h, at)
		case FramePushPromise:
			if h.dir == event.C2S {
				c.anomaly("push_promise_from_client")
			}
			h.pfxWant += 4
			c.startBlock(h, at)
		case FrameContinuation:
			if !h.blk.active {
				if !afterSync {
					c.anomaly("continuation_unexpected")
				}
				// Its fragment may insert table entries we cannot see.
				h.hp.forget()
				h.discard = true
			}
		}
		if h.pfxWant == 0 {
			c.prefixDone(h)
		}
	}
	h.st = stPayload
	if h.rem == 0 {
		c.endFrame(h, at)
	}
}

// startBlock begins a header block with a HEADERS or PUSH_PROMISE frame.
func (c *Conn) startBlock(h *half, at event.Ref) {
	buf := h.blk.buf[:0]
	h.blk = block{active: true, stream: h.fh.StreamID, typ: h.fh.Type,
		endStream: h.fh.Type == FrameHeaders && h.fh.Flags.Has(FlagEndStream), buf: buf, start: at}
}

// prefixDone sizes the header block fragment once the pad length and
// priority or promised-stream fields are read.
func (c *Conn) prefixDone(h *half) {
	fh := &h.fh
	if fh.Flags.Has(FlagPadded) && fh.Type != FrameContinuation {
		h.pad = int(h.pfx[0])
	}
	if fh.Type == FramePushPromise {
		o := h.pfxWant - 4
		h.blk.promised = (uint32(h.pfx[o])<<24 | uint32(h.pfx[o+1])<<16 | uint32(h.pfx[o+2])<<8 | uint32(h.pfx[o+3])) & (1<<31 - 1)
	}
	avail := int64(fh.Length) - int64(h.pfxWant)
	if int64(h.pad) > avail {
		c.anomaly("bad_padding")
		h.badPad = true
		if !h.discard {
			h.blk.lost = true
		}
		return
	}
	h.fragLeft = uint32(avail - int64(h.pad))
}

// payload consumes b, a piece of the current frame's payload.
func (c *Conn) payload(h *half, b []byte, at event.Ref) {
	h.rem -= uint32(len(b))
	h.got += uint32(len(b))
	switch h.spec.kind {
	case kindData:
		if h.padPending && len(b) > 0 {
			h.padPending = false
			h.pad = int(b[0])
			b = b[1:]
			avail := h.fh.Length - 1
			if uint32(h.pad) > avail {
				c.anomaly("bad_padding")
				h.badPad = true
			} else {
				h.dataLeft = avail - uint32(h.pad)
				h.dataBytes = h.dataLeft
			}
		}
		if h.dataLeft > 0 && len(b) > 0 {
			k := uint32(len(b))
			if k > h.dataLeft {
				k = h.dataLeft
			}
			h.dataLeft -= k
			if c.obs != nil && h.fh.StreamID != 0 {
				end := h.dataLeft == 0 && h.pad == 0 && h.fh.Flags.Has(FlagEndStream)
				h.endSent = h.endSent || end
				c.obs.Data(h.dir, h.fh.StreamID, b[:k], end, at)
			}
		}
	case kindBlock:
		for len(b) > 0 {
			if h.pfxN < h.pfxWant {
				k := copy(h.pfx[h.pfxN:h.pfxWant], b)
				h.pfxN += k
				b = b[k:]
				if h.pfxN == h.pfxWant {
					c.prefixDone(h)
				}
				continue
			}
			if h.fragLeft == 0 {
				return // padding
			}
			k := uint32(len(b))
			if k > h.fragLeft {
				k = h.fragLeft
			}
			h.fragLeft -= k
			c.appendFragment(h, b[:k])
			b = b[k:]
		}
	default:
		if room := h.spec.keep - h.keepN; room > 0 {
			h.keepN += copy(h.keep[h.keepN:h.keepN+min(room, len(b))], b)
		}
	}
}

// appendFragment adds header block bytes, within MaxHeaderBlock.
func (c *Conn) appendFragment(h *half, b []byte) {
	if h.discard || h.blk.over || h.blk.lost {
		return
	}
	if len(h.blk.buf)+len(b) > c.opts.MaxHeaderBlock {
		h.blk.over = true
		return
	}
	h.blk.buf = append(h.blk.buf, b...)
}

// losePayload accounts n lost payload bytes of the current frame.
func (c *Conn) losePayload(h *half, n uint32, at event.Ref) {
	h.rem -= n
	h.got += n
	h.lost += int(n)
	switch h.spec.kind {
	case kindData:
		lost := n
		if h.padPending {
			// The pad length is lost: count the rest as data.
			h.padPending = false
			lost--
			h.dataLeft = h.fh.Length - 1
			h.dataBytes = h.dataLeft
		}
		k := min(lost, h.dataLeft)
		h.dataLeft -= k
		if c.obs != nil && k > 0 && h.fh.StreamID != 0 {
			c.obs.Gap(h.dir, int(k), at)
		}
	case kindBlock:
		if !h.discard {
			h.blk.lost = true
		}
		h.fragLeft = 0
		h.pfxN = h.pfxWant
	}
}

// endFrame completes the current frame: it runs the type's finish
// function, which emits the frame's event.
func (c *Conn) endFrame(h *half, at event.Ref) {
	h.st = stHeader
	c.frames[h.dir][h.fh.Type]++
	c.prepare(h, at, h.fh.Type.String(), uint16(h.fh.Type), h.fh.StreamID, int(h.fh.Length), h.fh.Flags)
	c.det.Lost = h.lost
	h.spec.finish(c, h)
	c.recs.Settle()
	for _, st := range c.closing {
		*st = sstate{}
		c.spare = append(c.spare, st)
	}
	c.closing = c.closing[:0]
}

// prepare resets the event for a unit of h.
func (c *Conn) prepare(h *half, at event.Ref, typ string, kind uint16, stream uint32, n int, flags Flags) {
	c.ev = event.Event{Ref: at, Conn: c.id, Dir: h.dir, Proto: event.ProtoHTTP2,
		Type: typ, Kind: kind, Stream: stream, Len: n, Bits: uint32(flags)}
	c.det = event.HTTP2{}
}

// emit sends the prepared event, with its detail when it has any.
func (c *Conn) emit(h *half) {
	d := &c.det
	if len(d.Headers) > 0 || d.HeadersUndecodable || len(d.Settings) > 0 || d.WindowIncrement != 0 ||
		d.LastStreamID != 0 || d.Debug != "" || d.PromisedStream != 0 || d.PingData != "" || d.Padding != 0 ||
		d.StreamWindowBefore != nil || d.ConnWindowBefore != nil || d.Lost != 0 {
		c.ev.HTTP2 = d
	}
	if c.sink != nil {
		c.sink.Event(&c.ev)
	}
}

// loseSync makes h look for the next frame boundary: everything that
// depends on having seen every byte of h becomes unknown. A non-empty
// reason is counted as an anomaly.
func (c *Conn) loseSync(h *half, reason string, at event.Ref) {
	if reason != "" {
		c.anomaly(reason)
	}
	if h.blk.active {
		c.abortBlock(h)
	}
	h.st, h.hn, h.pn, h.first = stSync, 0, 0, false
	h.sy.fresh = true
	c.resyncs++
	c.loss(h.dir, at)
}

// abortBlock gives up a header block that will not be completed.
func (c *Conn) abortBlock(h *half) {
	c.blocks++
	c.undecodable++
	if r := c.recByID(h.blk.stream); r != nil {
		r.undecodable++
	}
	h.hp.forget()
	h.blk.active = false
	h.blk.buf = h.blk.buf[:0]
}

// loss records that bytes of dir were lost at an unknown frame position:
// dir's HPACK table, dir's settings, and both senders' windows become
// unknown.
func (c *Conn) loss(dir event.Dir, at event.Ref) {
	c.pristine = false
	c.h[dir].hp.forget()
	p := &c.peer[dir]
	p.initKnown, p.maxFrameKnown, p.hasTablePending = false, false, false
	c.h[dir.Reverse()].hp.allowedKnown = false
	for d := range c.send {
		s := &c.send[d]
		s.known = false
		c.closeConnStall(event.Dir(d), at, StallCaptureGap)
		c.settleConnGuess(event.Dir(d), at, StallCaptureGap)
	}
	for _, st := range c.active {
		for d := range st.winKnown {
			st.winKnown[d] = false
			c.closeStall(event.Dir(d), st, at, StallCaptureGap)
			c.settleGuess(event.Dir(d), st, at, StallCaptureGap)
		}
	}
	c.replayEarly(at)
}
