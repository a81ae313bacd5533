package tcp

import (
	"cmp"
	"net/netip"
	"slices"
	"time"
	"unsafe"

	"github.com/h2scope/h2scope/dissect/event"
	"github.com/h2scope/h2scope/dissect/layer"
	"github.com/h2scope/h2scope/internal/freelist"
)

// Options configure a Tracker. The zero value is usable: every zero field
// takes the default given with it.
type Options struct {
	// IdleTimeout finishes an open connection after this much capture
	// time without a packet. Default 1 hour: Wireshark never splits a
	// connection on silence, and keep-alive connections idle for many
	// minutes are common. A negative value never finishes open
	// connections for idleness.
	IdleTimeout time.Duration
	// MaxConns bounds the open connections tracked at once, and separately
	// the tombstones of closed ones (see MaxClosed); past it the least
	// recently active of that kind is finished (forgotten). Default 65536.
	MaxConns int
	// MaxClosed bounds the closed connections kept whole while they wait
	// out ClosedTimeout (with what the callbacks hold for them until
	// OnFinish); past it the least recently active is finished early and
	// only its tombstone is kept until ClosedTimeout: a SYN reusing its
	// 4-tuple is still flagged ReusedPorts, but another late packet of it
	// starts a new connection (see tomb.go). Default MaxConns/16 (4096).
	MaxClosed int
	// ClosedTimeout finishes a connection this long after its last packet
	// once it has been reset or both sides have sent FIN. Default 2 minutes
	// (a generous TIME_WAIT).
	ClosedTimeout time.Duration
	// MaxBufferPerConn caps the out-of-order bytes buffered for one
	// connection; past it the oldest hole is declared a gap. Default 4 MiB.
	MaxBufferPerConn int
	// MaxBufferTotal caps the out-of-order bytes buffered for all
	// connections together. Default 32 MiB.
	MaxBufferTotal int
	// StreamGrace is how long, in capture time, a closed connection's
	// StreamHandler still receives bytes (a late retransmission filling a
	// hole) before its streams are ended: holes still pending become
	// gaps, both directions are closed, OnStreamsDone is called and the
	// handler gets no more calls. The connection itself stays tracked until
	// ClosedTimeout, so that late packets are accounted to it exactly.
	// Closed means reset, or closed by FIN from both sides; a reset before
	// any payload does not count, as the handshake may be retried on the
	// same connection. Default 5 seconds (Zeek's tcp_close_delay). A
	// negative value keeps the handler until the connection finishes.
	StreamGrace time.Duration
	// NewHandler returns the handler for a connection's bytes. It is
	// called when the connection first has something for its handler:
	// its first in-order bytes, a gap, or a FIN. A connection whose
	// streams end (StreamGrace after it closed, or when it finishes)
	// before it had any of these gets no handler, and no Close calls: an
	// unanswered SYN costs none. Nil, or a nil handler returned, discards
	// them.
	NewHandler func(c *Conn) StreamHandler
	// OnStreamsDone, if set, is called once per connection right after
	// its StreamHandler's last call: StreamGrace after the connection
	// closed or, at the latest, just before OnFinish. The summary fields
	// are filled in as of that moment; later packets still update them
	// (they are final at OnFinish), but their payload is not delivered:
	// bytes arriving later for the part of a stream that was declared
	// lost at that moment are counted in the anomaly late_payload_bytes.
	// The Conn may be read during the call only.
	OnStreamsDone func(c *Conn)
	// ConnID, if set, returns the ID of a new connection whose first
	// segment is first; the IDs it returns must increase. By default IDs
	// count from 0 in order of first frame. A Tracker that sees one shard
	// of a capture (see AddTicked) numbers its connections so that IDs
	// stay unique and ordered across the shards.
	ConnID func(first *layer.Segment) event.ConnID
	// OnFinish is called once per connection when it is finished (closed
	// and idle, evicted by MaxConns, replaced by a new connection on the
	// same 4-tuple, or at Flush), after OnStreamsDone, with its summary
	// complete. The Conn must not be retained past the call
	// unless the caller owns it from then on (the Tracker forgets it),
	// which ReuseConns rules out.
	OnFinish func(c *Conn)
	// ReuseConns says that no callback (NewHandler's handlers,
	// OnStreamsDone, OnFinish, nor the callers of Add) retains a Conn
	// once OnFinish has returned for it (they copy what they keep): the
	// Tracker then reuses it for a later connection, where a
	// million-SYN flood otherwise allocates a Conn per SYN.
	ReuseConns bool
}

// Stats counts what a Tracker saw.
type Stats struct {
	// Segments counts segments added.
	Segments uint64
	// Conns counts connections created.
	Conns uint64
	// BufferOverflows counts holes given up because a buffer cap was hit.
	BufferOverflows uint64
}

// Tracker follows TCP connections through a capture. It is not safe for
// concurrent use; feed it segments in capture order.
type Tracker struct {
	opts  Options
	conns table
	// halves and hlist hold the half-open connections (see half.go).
	halves halfTable
	hlist  halfList
	// spare holds Conns to reuse from the next call on (the caller of
	// Add may use one until then): those let go when they became halves,
	// and finished ones (Options.ReuseConns, see reuse); freeHalves
	// halves to reuse.
	spare      freelist.List[Conn]
	freeHalves freelist.List[half]
	// young holds, oldest first from youngHead, the last youngN
	// demotable connections (see queueYoung), youngGen their Conns' gen
	// when queued.
	young     [maxYoung]*Conn
	youngGen  [maxYoung]uint32
	youngHead int
	youngN    int
	open      lru // connections still open, least recently active first
	closed    lru // connections reset or closed by both sides
	// tombs holds the tombstones of closed connections finished past
	// MaxClosed (see tomb.go).
	tombs tombs
	// grace holds the closed connections whose streams are still open,
	// in order of closing (graceAt): StreamGrace ends them. Entries
	// whose streams ended otherwise are skipped when reached.
	grace graceQueue
	// recent caches connections lookup found, by a hash of their ports;
	// finished ones are removed.
	recent [8]*Conn
	// lastEnds holds the hashes (table.hashEnd) of the source and the
	// destination lookup looked up last, if hashed (they were not when
	// found in recent); their sum is the pair's table hash.
	lastEnds [2]uint64
	hashed   bool
	// prehashed says lastEnds holds the hashes of the endpoints of the
	// segment being added, hashed by prehash for lookup.
	prehashed bool
	// free holds tracking states to reuse (at most maxFree); buf is
	// where compact encodes.
	free freelist.List[state]
	buf  []byte
	// recs holds the compact encodings (Conn.rec) of finished
	// connections, emptied, for compact to reuse (at most maxFree, each
	// of at most maxRecReuse bytes).
	recs [][]byte
	// noCompact and verify are for tests: never compact, or check each
	// encoding by decoding it.
	noCompact bool
	verify    func(c *Conn, enc []byte)
	// noPrehash, for tests, turns prehash off.
	noPrehash bool
	// verifyReplay, for tests, is given each demoted connection kept as
	// its first segment and the Conn replay makes of it.
	verifyReplay func(c, replayed *Conn)
	// shape and shapeSum are the shape and the finished summary of the
	// last half of one segment made again to be finished, if shapeSet
	// (see finishHalf); verifyShape, for tests, is given each half
	// finished from them and the Conn replay makes of it, finalized.
	shape       halfShape
	shapeSum    Summary
	shapeSet    bool
	verifyShape func(c, replayed *Conn)
	// noShape, for tests, makes finishHalf replay every half.
	noShape bool
	// histories holds the connections' history strings (one per
	// distinct history).
	histories interner
	nextID    event.ConnID
	r         reasm
	clock     Clock // capture clock for timeouts
	stats     Stats
}

// Defaults of Options.MaxConns and Options.MaxBufferTotal.
const (
	DefaultMaxConns       = 1 << 16
	DefaultMaxBufferTotal = 32 << 20
)

// NewTracker returns a Tracker with opts.
func NewTracker(opts Options) *Tracker {
	if opts.IdleTimeout == 0 {
		opts.IdleTimeout = time.Hour
	}
	if opts.MaxConns <= 0 {
		opts.MaxConns = DefaultMaxConns
	}
	if opts.MaxClosed <= 0 {
		opts.MaxClosed = max(opts.MaxConns/16, 1)
	}
	if opts.ClosedTimeout <= 0 {
		opts.ClosedTimeout = 2 * time.Minute
	}
	if opts.StreamGrace == 0 {
		opts.StreamGrace = 5 * time.Second
	}
	if opts.MaxBufferPerConn <= 0 {
		opts.MaxBufferPerConn = 4 << 20
	}
	if opts.MaxBufferTotal <= 0 {
		opts.MaxBufferTotal = DefaultMaxBufferTotal
	}
	return &Tracker{
		opts:       opts,
		conns:      newTable(),
		r:          reasm{perConn: opts.MaxBufferPerConn, total: opts.MaxBufferTotal, newHandler: opts.NewHandler},
		free:       freelist.List[state]{Max: maxFree},
		spare:      freelist.List[Conn]{Max: maxSpare},
		freeHalves: freelist.List[half]{Max: maxSpare, Chunk: halfChunk},
		tombs:      tombs{max: min(opts.MaxConns, 1<<30)},
	}
}

// Stats returns the counters so far.
func (t *Tracker) Stats() Stats {
	s := t.stats
	s.BufferOverflows = t.r.overflow
	return s
}

// Active returns the number of connections being tracked.
func (t *Tracker) Active() int { return t.conns.len() + t.halves.n }

// Add processes one segment (s.Ref must be set) and returns its connection,
// its direction and its analysis flags. The Conn is valid until it is
// finished; but when only one side of it has sent anything, and nothing
// but control segments (an unanswered SYN), it is valid only until the
// next call of a method of the Tracker (it is then kept as a half; see
// half.go).
func (t *Tracker) Add(s *layer.Segment) (*Conn, event.Dir, Analysis) {
	t.prehash(s)
	t.evict()
	if now, sweep := t.clock.Tick(s.Ref.TS); sweep {
		t.sweep(now)
	}
	return t.add(s)
}

// AddTicked is Add for a Tracker that sees one shard of a capture split
// by connection (every segment of a connection, in both directions, goes
// to the same shard): its timeouts must follow the whole capture's clock,
// not the clock of the segments it sees. now and sweep are what the
// capture's Clock.Tick returned for s; Sweep must be called for each
// segment of the other shards for which Tick reported a sweep. The
// Tracker then finishes and hands over each connection exactly when a
// Tracker of the whole capture would (but for MaxConns and
// MaxBufferTotal, which bound each shard on its own).
func (t *Tracker) AddTicked(s *layer.Segment, now time.Time, sweep bool) (*Conn, event.Dir, Analysis) {
	t.prehash(s)
	t.evict()
	t.clock.now = now
	if sweep {
		t.clock.swept(now)
		t.sweep(now)
	}
	return t.add(s)
}

// Sweep finishes what has timed out at capture time now, as Add does
// when its clock reports a sweep; see AddTicked.
func (t *Tracker) Sweep(now time.Time) {
	t.clock.now = now
	t.clock.swept(now)
	t.sweep(now)
}

func (t *Tracker) add(s *layer.Segment) (*Conn, event.Dir, Analysis) {
	t.stats.Segments++
	c := t.lookup(s.Src, s.Dst)
	if c != nil && c.state == nil {
		t.expand(c)
	}
	syn := s.Flags&(layer.SYN|layer.ACK) == layer.SYN
	reused := false
	if c != nil && syn {
		d := c.dirOf(s.Src)
		if si := &c.seq[d]; si.baseSet && si.baseSeq != s.Seq {
			t.finish(c)
			c = nil
			reused = true
		}
	}
	if c == nil && t.tombs.n > 0 && t.unearth(s.Src, s.Dst, syn, s.Seq) {
		// The 4-tuple of a closed connection finished early, reused:
		// flagged as it would have been.
		reused = true
	}
	if c == nil {
		c = t.newConn(s)
	}
	dir, a := t.track(c, s, reused)
	t.touch(c)
	if !c.graceQueued && t.opts.StreamGrace > 0 && c.streamsClosing() {
		c.graceQueued = true
		t.grace.push(graceEntry{c, c.gen, t.clock.now})
	}
	switch {
	case t.noCompact:
	case c.demotable():
		t.queueYoung(c)
	case c.waiting() && !c.closed() && c.compactable() && !c.lastACKDue():
		// A closed connection stays whole: at most MaxClosed of them
		// wait, and in a capture of many short connections each is
		// retired past that bound soon after, so compacting it at its
		// close only to expand it again at its retirement cost 5% of
		// the run (a kilobyte more each: 4 MB at the bound).
		t.compact(c)
	}
	return c, dir, a
}

// track analyses segment s of connection c and updates c's summary, its
// tracking state and its streams; reused says s is a SYN that reuses the
// ports of a finished connection. It changes nothing else of the
// Tracker's but what the streams' handler and the buffers need: a
// connection that a segment without payload, FIN or RST created is made
// again by initConn and track (see replay).
func (t *Tracker) track(c *Conn, s *layer.Segment, reused bool) (event.Dir, Analysis) {
	ts := s.Ref.TS
	syn := s.Flags&(layer.SYN|layer.ACK) == layer.SYN
	dir := c.dirOf(s.Src)
	rev := dir.Reverse()
	f := s.Flags
	si := &c.seq[dir]
	switch {
	case syn && si.baseSet && !reused:
		// A retransmitted SYN: resume from the highest contiguous
		// sequence number, as a RST may have moved nextseq (Wireshark
		// issue 17616).
		si.nextseq = si.maxToAck
	case f.Has(layer.SYN|layer.ACK) && si.baseSet && si.baseSeq != s.Seq:
		// A SYN-ACK with a new ISN on a known connection: flagged as port
		// reuse, but the connection stays (its SYN already started it).
		si.baseSeq = s.Seq
		reused = true
	}

	a := analyze(si, &c.seq[rev], s, ts, c.irtt)
	if reused {
		a |= ReusedPorts
	}
	switch {
	case syn:
		c.SYNs++
		c.synTS = ts
		si.firstAck = true
	case f.Has(layer.SYN | layer.ACK):
		c.SYNACKs++
		si.firstAck = true
	case f.Has(layer.ACK):
		if !c.synTS.IsZero() && c.irtt == 0 {
			c.irtt = ts.Sub(c.synTS)
		}
		si.firstAck = false
	}
	if s.WScale >= 0 {
		si.winScale = min(s.WScale, 14)
	}
	if f.Has(layer.SYN) {
		c.sawSYN[dir] = true
		// Without the option on both SYN and SYN-ACK, windows are not
		// scaled.
		if si.winScale == wsUnknown {
			si.winScale, c.seq[rev].winScale = wsNone, wsNone
		} else if f.Has(layer.ACK) && c.seq[rev].winScale == wsNone {
			si.winScale = wsNone
		}
	}

	c.Packets.Add(dir, 1)
	c.Bytes.Add(dir, uint64(s.PayloadLen))
	c.count(a)
	c.hist.segment(dir, s, a)
	c.updateState(dir, f)
	if c.Close == "" {
		switch {
		case f.Has(layer.RST):
			c.Close = pick(dir, CloseRSTClient, CloseRSTServer)
		case f.Has(layer.FIN):
			c.Close = pick(dir, CloseFINClient, CloseFINServer)
		}
	}
	c.LastTS = ts
	c.LastFrame = s.Ref.Frame
	c.lastRef = s.Ref

	t.reassemble(c, dir, s)
	return dir, a
}

// lastACKDue reports whether c was closed by a FIN from each side and a
// FIN is not acknowledged yet: the ACK due right after would expand c
// again at once. c is compacted at that ACK instead (or, if it never
// comes, when its streams end; closed connections kept whole are at most
// MaxClosed).
func (c *Conn) lastACKDue() bool {
	if !c.fin[0] || !c.fin[1] || c.rst[0] || c.rst[1] {
		return false
	}
	for d := range c.streams {
		if st := &c.streams[d]; st.finSet && seqLT(c.seq[1-d].lastack, st.fin+1) {
			return true
		}
	}
	return false
}

// waiting reports whether c is likely to wait a while for its next
// packet: its streams ended, it is closed, or one side has sent nothing
// yet (an unanswered SYN). A connection in the middle of its handshake is
// left alone.
func (c *Conn) waiting() bool {
	return c.streamsDone || c.Packets.C2S == 0 || c.Packets.S2C == 0 || c.closed()
}

// lookup returns the connection between src and dst, nil if none is
// tracked. Captures are dominated by a few busy connections, so a small
// cache indexed by their ports is tried before the table, whose hash of
// two netip.AddrPorts costs more.
func (t *Tracker) lookup(src, dst netip.AddrPort) *Conn {
	pre := t.prehashed
	t.prehashed = false
	slot := &t.recent[recentSlot(src.Port(), dst.Port())]
	if c := *slot; c != nil && (c.Client == src && c.Server == dst || c.Client == dst && c.Server == src) {
		t.hashed = pre
		return c
	}
	hs, hd := t.lastEnds[0], t.lastEnds[1]
	if !pre {
		hs, hd = t.conns.hashEnd(src), t.conns.hashEnd(dst)
	}
	h := hs + hd
	if t.tombs.n > 0 {
		// Read by unearth if this is a new connection: fetched while
		// the tables are searched.
		prefetch(uintptr(unsafe.Pointer(t.tombs.bucket(h))))
	}
	c := t.conns.get(src, dst, h)
	t.lastEnds, t.hashed = [2]uint64{hs, hd}, true
	if c == nil {
		if x := t.halves.get(src, dst, h); x != nil {
			c = t.promote(x, true)
		}
	}
	if c != nil {
		*slot = c
	}
	return c
}

// prehash hashes s's endpoints for lookup, before evict finishes the
// oldest connection if it is about to (at every SYN of a flood past
// MaxConns), and prefetches their slot in the table of halves (see
// oaTable.prefetch): it is fetched while that connection is finished.
func (t *Tracker) prehash(s *layer.Segment) {
	if t.open.n+t.hlist.n < t.opts.MaxConns || t.noPrehash {
		return
	}
	hs, hd := t.conns.hashEnd(s.Src), t.conns.hashEnd(s.Dst)
	t.lastEnds, t.prehashed = [2]uint64{hs, hd}, true
	t.halves.prefetch(hs + hd)
}

// ends returns the hashes (table.hashEnd) of src and dst, those lookup
// computed for them if it was its last call.
func (t *Tracker) ends(src, dst netip.AddrPort) (uint64, uint64) {
	// Add calls lookup for the segment's endpoints before anything else
	// that might need their hashes.
	if t.hashed {
		return t.lastEnds[0], t.lastEnds[1]
	}
	return t.conns.hashEnd(src), t.conns.hashEnd(dst)
}

// recentSlot is the index in Tracker.recent of a connection between ports
// p and q, the same in both directions.
func recentSlot(p, q uint16) int {
	h := uint32(p^q) * 0x9e3779b1
	return int(h >> 29)
}

// streamsClosing reports whether c is closed as StreamGrace counts it:
// closed by FIN from both sides, or with both streams ended by a reset.
func (c *Conn) streamsClosing() bool {
	return c.fin[0] && c.fin[1] || c.streams[0].closed && c.streams[1].closed
}

func pick(dir event.Dir, client, server Close) Close {
	if dir == event.C2S {
		return client
	}
	return server
}

// reassemble feeds the segment's bytes, FIN, ACK and RST to reassembly.
func (t *Tracker) reassemble(c *Conn, dir event.Dir, s *layer.Segment) {
	f := s.Flags
	st := &c.streams[dir]
	seq := s.Seq
	if f.Has(layer.SYN) {
		seq++
		if !st.started {
			st.started = true
			st.next = seq
		}
	}
	if s.PayloadLen > 0 {
		t.r.segment(c, dir, seq, s.Payload, s.PayloadLen, s.Ref, sum{s.Sum, s.Summed})
	}
	if f.Has(layer.ACK) {
		t.r.ackTo(c, dir.Reverse(), s.Ack, s.Ref)
	}
	if f.Has(layer.FIN) {
		c.fin[dir] = true
		t.r.setFIN(c, dir, seq+uint32(s.PayloadLen), s.Ref)
	}
	if f.Has(layer.RST) {
		c.rst[dir] = true
		if c.StreamBytes.C2S == 0 && c.StreamBytes.S2C == 0 && len(c.streams[0].pend) == 0 && len(c.streams[1].pend) == 0 {
			// A reset before any payload (a refused or aborted
			// handshake) ends nothing yet: the same connection may go on
			// with a retransmitted SYN, as Wireshark keeps it. The
			// streams are told at the end.
			c.earlyRST = true
			return
		}
		t.r.end(c, dir, true, s.Ref)
		t.r.end(c, dir.Reverse(), true, s.Ref)
	}
}

func (c *Conn) dirOf(src netip.AddrPort) event.Dir {
	if src == c.Client {
		return event.C2S
	}
	return event.S2C
}

// newConn creates the connection for a segment that matches none.
func (t *Tracker) newConn(s *layer.Segment) *Conn {
	id := t.nextID
	if t.opts.ConnID != nil {
		id = t.opts.ConnID(s)
	}
	c := t.newConnObject()
	t.initConn(c, s, id)
	t.nextID++
	t.stats.Conns++
	hs, hd := t.ends(s.Src, s.Dst)
	t.conns.add(c, hs+hd)
	c.cliHash, c.cliSet = hs, true
	if c.Client != s.Src {
		c.cliHash = hd
	}
	return c
}

// initConn makes c, a zero Conn, the connection with ID id whose first
// segment is s, before s is tracked.
func (t *Tracker) initConn(c *Conn, s *layer.Segment, id event.ConnID) {
	c.ID, c.FirstFrame, c.FirstTS = id, s.Ref.Frame, s.Ref.TS
	c.state = t.newState()
	switch {
	case s.Flags.Has(layer.SYN | layer.ACK):
		c.Client, c.Server = s.Dst, s.Src
	case s.Flags.Has(layer.SYN):
		c.Client, c.Server = s.Src, s.Dst
	default:
		c.ClientGuessed = true
		// The endpoint with the lower port is more likely the service.
		if s.Src.Port() < s.Dst.Port() {
			c.Client, c.Server = s.Dst, s.Src
		} else {
			c.Client, c.Server = s.Src, s.Dst
		}
	}
	if c.Client != s.Src {
		c.hist.flipped()
	}
	if f := uint16(s.Ref.File); int(f) == s.Ref.File {
		c.first = firstSeg{seq: s.Seq, ack: s.Ack, win: s.Win, flags: s.Flags, file: f, wscale: s.WScale, c2s: c.Client == s.Src}
		c.firstSet = true
	}
}

// graceEntry is a connection waiting for StreamGrace since at (capture
// clock).
type graceEntry struct {
	c   *Conn
	gen uint32 // c's when queued
	at  time.Time
}

// graceQueue is the StreamGrace queue: a slice popped at head, whose
// entries move back to the start of its array once it is full and half
// of it lies before head, so that a steady stream of closing connections
// reuses one array (popping by reslicing made append copy the queue
// into a new one each time it reached the end: 40 MB on a capture of
// 250,000 short connections).
type graceQueue struct {
	q    []graceEntry
	head int
}

func (g *graceQueue) len() int { return len(g.q) - g.head }

func (g *graceQueue) front() *graceEntry { return &g.q[g.head] }

func (g *graceQueue) push(e graceEntry) {
	if len(g.q) == cap(g.q) && g.head > 0 && g.head >= len(g.q)/2 {
		n := copy(g.q, g.q[g.head:])
		clear(g.q[n:])
		g.q, g.head = g.q[:n], 0
	}
	g.q = append(g.q, e)
}

func (g *graceQueue) pop() {
	g.q[g.head] = graceEntry{}
	if g.head++; g.head == len(g.q) {
		g.q, g.head = g.q[:0], 0
	}
}

func (g *graceQueue) reset() {
	clear(g.q)
	g.q, g.head = nil, 0
}

// lru is a list of connections in order of last activity.
type lru struct {
	head, tail *Conn
	n          int
}

func (l *lru) push(c *Conn) {
	l.n++
	c.list = l
	c.prev = l.tail
	if l.tail != nil {
		l.tail.next = c
	} else {
		l.head = c
	}
	l.tail = c
}

func (l *lru) remove(c *Conn) {
	l.n--
	if c.prev != nil {
		c.prev.next = c.next
	} else {
		l.head = c.next
	}
	if c.next != nil {
		c.next.prev = c.prev
	} else {
		l.tail = c.prev
	}
	c.prev, c.next, c.list = nil, nil, nil
}

// touch moves c to the most recently active end of its list.
func (t *Tracker) touch(c *Conn) {
	want := &t.open
	if c.closed() {
		want = &t.closed
	}
	if c.list == want && want.tail == c {
		return
	}
	if c.list != nil {
		c.list.remove(c)
	}
	want.push(c)
}

// closed reports whether c has been reset or closed by both sides.
func (c *Conn) closed() bool {
	return c.rst[0] || c.rst[1] || c.fin[0] && c.fin[1]
}

// maxClockStep is the most the capture clock moves forward on one packet.
const maxClockStep = time.Minute

// Clock is the capture clock that drives a Tracker's timeouts. It never
// goes back and moves at most one minute per packet, so one corrupt
// timestamp years ahead cannot time out every connection, while a real
// silence, followed by many packets, is caught up within a few packets per
// minute of silence. The zero value starts at the first packet.
type Clock struct {
	now  time.Time
	last time.Time // of the last sweep
	due  time.Time // last plus a second: the next sweep's earliest time
}

// Tick moves the clock towards ts, the time of the next packet, and
// returns the clock's time and whether timeouts are to be checked (at
// most once per capture second).
func (k *Clock) Tick(ts time.Time) (now time.Time, sweep bool) {
	switch {
	case k.now.IsZero():
		k.now = ts
	case ts.After(k.now):
		k.now = minTime(ts, k.now.Add(maxClockStep))
	}
	// now < due is now.Sub(last) < time.Second without Sub's overflow
	// checks, on every packet; Sub itself decides where due could not
	// be a second after last (the largest time there is).
	if !k.last.IsZero() && (k.now.Before(k.due) || !k.due.After(k.last) && k.now.Sub(k.last) < time.Second) {
		return k.now, false
	}
	k.swept(k.now)
	return k.now, true
}

// swept records a sweep at now.
func (k *Clock) swept(now time.Time) {
	k.last, k.due = now, now.Add(time.Second)
}

func minTime(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}

// evict finishes the least recently active connections past MaxConns.
func (t *Tracker) evict() {
	// Each list is bounded on its own: closed connections waiting out
	// ClosedTimeout must not push out the open ones.
	for t.open.n+t.hlist.n >= t.opts.MaxConns {
		c, h := t.oldestOpen()
		if h != nil {
			t.finishHalf(h)
		} else {
			t.finish(c)
		}
		if h := t.hlist.head; h != nil {
			// The next to go (at the next new connection, in a flood).
			t.halves.prefetch(h.hash)
		}
	}
	if t.closed.n >= t.opts.MaxClosed {
		for t.closed.n >= t.opts.MaxClosed {
			t.retire(t.closed.head)
		}
		t.prefetchRetire()
	}
}

// prefetchRetire starts fetching what the next retire is to read, as
// retiring one connection past MaxClosed (at every new close, in a
// capture of many short connections) makes the next one due. Each
// closed connection waits there, compact and long out of the cache, and
// retiring it reads its Conn and its encoding to expand it: this fetches
// the encoding, the table slot and the tombstone bucket of the head,
// whose Conn was fetched when it was second, and the Conn of the second.
func (t *Tracker) prefetchRetire() {
	c := t.closed.head
	if c == nil {
		return
	}
	if len(c.rec) > 0 {
		prefetchObj(unsafe.Pointer(&c.rec[0]), uintptr(len(c.rec)))
	}
	t.conns.slots.prefetch(c.hash)
	t.tombs.prefetch(c.hash)
	if n := c.next; n != nil {
		prefetchConn(n)
	}
}

// sweep finishes the connections idle at capture time now, and ends the
// streams whose StreamGrace is over.
func (t *Tracker) sweep(now time.Time) {
	for t.grace.len() > 0 {
		e := *t.grace.front()
		c := e.c
		if c.gen == e.gen && !c.streamsDone && now.Sub(e.at) < t.opts.StreamGrace {
			break
		}
		t.grace.pop()
		if c.gen != e.gen {
			// It finished, its streams with it, and the Conn went on to
			// another connection.
			continue
		}
		if !c.streamsDone && c.state == nil {
			t.expand(c)
		}
		t.endStreams(c)
		if c.compactable() {
			t.compact(c)
		}
	}
	for c := t.closed.head; c != nil && now.Sub(c.LastTS) >= t.opts.ClosedTimeout; c = t.closed.head {
		t.finish(c)
	}
	t.buryOld(now)
	for t.opts.IdleTimeout > 0 {
		c, h := t.oldestOpen()
		switch {
		case h != nil && now.Sub(h.lastTS) >= t.opts.IdleTimeout:
			t.finishHalf(h)
			continue
		case h != nil || c == nil || now.Sub(c.LastTS) < t.opts.IdleTimeout:
			return
		}
		t.finish(c)
	}
}

// endStreams ends c's streams, unless done already: buffered chunks and
// the holes between them are delivered (as data and gaps), both
// directions are closed, and the handler is let go after OnStreamsDone.
func (t *Tracker) endStreams(c *Conn) {
	if c.streamsDone {
		return
	}
	c.streamsDone = true
	for d := range c.streams {
		if st := &c.streams[d]; !st.closed && st.finSet {
			// What of [next, fin) arrives from now on is late payload.
			st.cut, st.cutFrom, st.cutTo = true, st.next, st.fin
		}
	}
	reset := c.earlyRST && c.StreamBytes.C2S == 0 && c.StreamBytes.S2C == 0
	if c.handler == nil && c.nothingToDeliver() {
		// Its streams carried nothing and end with nothing: no handler
		// (an unanswered SYN costs none).
		c.handler = discard{}
	}
	t.r.end(c, event.C2S, reset, c.lastRef)
	t.r.end(c, event.S2C, reset, c.lastRef)
	c.handler = discard{}
	c.finalize(&t.histories)
	if t.opts.OnStreamsDone != nil {
		t.opts.OnStreamsDone(c)
	}
}

// nothingToDeliver reports whether ending c's streams would deliver no
// bytes and no gap: nothing is buffered, and no FIN waits for bytes.
func (c *Conn) nothingToDeliver() bool {
	for d := range c.streams {
		st := &c.streams[d]
		if len(st.pend) > 0 || st.finSet && st.next != st.fin && !st.closed {
			return false
		}
	}
	return true
}

// finish ends c's streams, completes its summary and hands it over.
func (t *Tracker) finish(c *Conn) {
	if c.done {
		return
	}
	if c.state == nil {
		t.expand(c)
	}
	c.done = true
	if c.list != nil {
		// It is in the table too (it is in neither when promoted to be
		// finished).
		c.list.remove(c)
		t.conns.remove(c)
	}
	if slot := &t.recent[recentSlot(c.Client.Port(), c.Server.Port())]; *slot == c {
		*slot = nil
	}
	if c.streamsDone {
		// Packets since the streams ended count too.
		c.finalize(&t.histories)
	} else {
		t.endStreams(c) // which finalizes c
	}
	t.freeState(c.state)
	if n := cap(c.rec); n > 0 && n <= maxRecReuse && len(t.recs) < maxFree {
		t.recs = append(t.recs, c.rec[:0])
	}
	c.state, c.rec = nil, nil
	if t.opts.OnFinish != nil {
		t.opts.OnFinish(c)
	}
	t.reuse(c)
}

// reuse keeps the finished c, OnFinish done with it, for a later
// connection, if the callbacks retain none (Options.ReuseConns). The
// StreamGrace queue and the young ring may still name it: they tell the
// next connection from this one by gen.
func (t *Tracker) reuse(c *Conn) {
	if t.opts.ReuseConns {
		t.spareConn(c)
	}
}

// spareConn keeps c, which nobody holds any more, for a later
// connection, unless the spare list is full.
func (t *Tracker) spareConn(c *Conn) {
	if !t.spare.Full() {
		c.recycle()
		t.spare.Put(c)
	}
}

// recycle makes c a zero Conn for another connection, but for gen,
// which it advances.
func (c *Conn) recycle() {
	gen := c.gen + 1
	*c = Conn{}
	c.gen = gen
}

// Flush finishes every connection still tracked, in ID order. Call it at
// the end of the input.
func (t *Tracker) Flush() {
	// Halves become Conns one at a time, as they are finished.
	type entry struct {
		id event.ConnID
		c  *Conn
		h  *half
	}
	all := make([]entry, 0, t.conns.len()+t.halves.n)
	for _, c := range t.conns.all() {
		all = append(all, entry{c.ID, c, nil})
	}
	for h := t.hlist.head; h != nil; h = h.next {
		all = append(all, entry{h.id, nil, h})
	}
	slices.SortFunc(all, func(a, b entry) int { return cmp.Compare(a.id, b.id) })
	for _, e := range all {
		if e.h != nil {
			t.finishHalf(e.h)
		} else {
			t.finish(e.c)
		}
	}
	t.grace.reset()
	t.tombs.clear()
	clear(t.young[:])
	t.youngHead, t.youngN = 0, 0
}

// Add adds o's counts to s's: the Stats of the shards of one capture add
// up to those of a Tracker of the whole capture.
func (s *Stats) Add(o Stats) {
	s.Segments += o.Segments
	s.Conns += o.Conns
	s.BufferOverflows += o.BufferOverflows
}
