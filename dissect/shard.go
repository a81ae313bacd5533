package dissect

import (
	"context"
	"fmt"
	"io"
	"math"
	"net/netip"
	"slices"
	"sync"

	"github.com/h2scope/h2scope/dissect/capture"
	"github.com/h2scope/h2scope/dissect/event"
	"github.com/h2scope/h2scope/dissect/layer"
	"github.com/h2scope/h2scope/dissect/tcp"
	"github.com/h2scope/h2scope/dissect/tls"
)

// ShardHooks are the callbacks of one shard of a sharded run (see
// Options.Shards): they receive the connections of that shard, on its
// goroutine, as Options' fields of the same names do in a run without
// shards.
type ShardHooks struct {
	Sink      event.Sink
	OnApp     func(c *tcp.Conn, app *App)
	OnConn    func(c *tcp.Conn, app *App)
	OnSegment func(c *tcp.Conn, dir event.Dir, s *layer.Segment, a tcp.Analysis)
}

// ConnIDs maps the provisional connection IDs of a sharded run to the IDs
// a run without shards gives (see Options.Shards).
type ConnIDs struct {
	ids []event.ConnID // every connection's provisional ID, in order
}

// NewConnIDs returns the ConnIDs of a run whose connections had the
// provisional IDs ids, in any order (it sorts ids).
func NewConnIDs(ids []event.ConnID) *ConnIDs {
	slices.Sort(ids)
	return &ConnIDs{ids: slices.Compact(ids)}
}

// Final returns the ID of the connection whose provisional ID is p: its
// rank in order of first frame, which is the ID a run without shards
// gives it. On a nil ConnIDs (a run without shards, whose IDs are final)
// it returns p.
func (m *ConnIDs) Final(p event.ConnID) event.ConnID {
	if m == nil {
		return p
	}
	i, _ := slices.BinarySearch(m.ids, p)
	return event.ConnID(i)
}

// Len returns the number of connections.
func (m *ConnIDs) Len() int {
	if m == nil {
		return 0
	}
	return len(m.ids)
}

// shardOf returns the shard of the connection between addresses a and b,
// in either direction, among n.
func shardOf(a, b netip.Addr, n int) int {
	return int(shardHash(a, b) % uint64(n))
}

// shardHash is the hash of the connection between addresses a and b, in
// either direction, that picks its shard.
func shardHash(a, b netip.Addr) uint64 {
	h := mixAddr(a) + mixAddr(b) // commutative: both directions agree
	h ^= h >> 29
	h *= 0xbf58476d1ce4e5b9
	h ^= h >> 32
	return h
}

// ShardOf names one shard of a capture split by connection over Count
// runs (Options.ShardOf): the run tracks and dissects only the
// connections of shard Index (0 <= Index < Count).
type ShardOf struct {
	Index, Count int
}

func (s ShardOf) check() error {
	if s.Count < 0 || s.Count > 0 && (s.Index < 0 || s.Index >= s.Count) {
		return fmt.Errorf("dissect: shard %d of %d does not exist", s.Index, s.Count)
	}
	return nil
}

// pick returns the local shard, among n, of a connection whose shardHash
// is h, or -1 when the connection belongs to another run's shard.
func (s ShardOf) pick(h uint64, n int) int {
	if s.Count <= 0 {
		return int(h % uint64(n))
	}
	k := uint64(s.Count)
	if h%k != uint64(s.Index) {
		return -1
	}
	return int(h / k % uint64(n))
}

// Provisional returns the provisional IDs m maps, in increasing order
// (the slice is m's; do not modify it).
func (m *ConnIDs) Provisional() []event.ConnID {
	if m == nil {
		return nil
	}
	return m.ids
}

// MergeConnIDs returns the ConnIDs of a capture split into runs (see
// Options.ShardOf) whose Stats.IDs are ms: every run's connections, each
// at its rank among all of them.
func MergeConnIDs(ms ...*ConnIDs) *ConnIDs {
	var ids []event.ConnID
	for _, m := range ms {
		ids = append(ids, m.Provisional()...)
	}
	return NewConnIDs(ids)
}

func mixAddr(a netip.Addr) uint64 {
	b := a.As16()
	var x, y uint64
	for i := range 8 {
		x = x<<8 | uint64(b[i])
		y = y<<8 | uint64(b[8+i])
	}
	x = (x ^ y*0x9e3779b97f4a7c15) * 0xff51afd7ed558ccd
	return x ^ x>>33
}

// shard is one worker of a sharded run: stage 2 with its own tracker,
// dissectors, key log and callbacks, fed batches by the reader.
type shard struct {
	s2         *stage2
	st         Stats // the shard's own, for what stage 2 counts
	keys       *tls.KeyLog
	ids        []event.ConnID
	free, full chan *batch
	cur        *batch // the batch the reader is filling
	done       chan struct{}
	err        error
}

// lockedHooks returns h with each callback called under mu.
func lockedHooks(h ShardHooks, mu *sync.Mutex) ShardHooks {
	if sink := h.Sink; sink != nil {
		h.Sink = event.SinkFunc(func(e *event.Event) {
			mu.Lock()
			defer mu.Unlock()
			sink.Event(e)
		})
	}
	if f := h.OnApp; f != nil {
		h.OnApp = func(c *tcp.Conn, app *App) {
			mu.Lock()
			defer mu.Unlock()
			f(c, app)
		}
	}
	if f := h.OnConn; f != nil {
		h.OnConn = func(c *tcp.Conn, app *App) {
			mu.Lock()
			defer mu.Unlock()
			f(c, app)
		}
	}
	if f := h.OnSegment; f != nil {
		h.OnSegment = func(c *tcp.Conn, dir event.Dir, s *layer.Segment, a tcp.Analysis) {
			mu.Lock()
			defer mu.Unlock()
			f(c, dir, s, a)
		}
	}
	return h
}

// lockedConn returns f called under mu, or nil.
func lockedConn(f func(*tcp.Conn), mu *sync.Mutex) func(*tcp.Conn) {
	if f == nil {
		return nil
	}
	return func(c *tcp.Conn) {
		mu.Lock()
		defer mu.Unlock()
		f(c)
	}
}

// newShard returns local shard i of a run whose connections are split
// over n shards in all (those of every run, with Options.ShardOf).
func newShard(i, n int, opts *Options, mu *sync.Mutex, files []string) *shard {
	sh := &shard{
		keys: opts.Keys.Clone(),
		free: make(chan *batch, pipeDepth),
		full: make(chan *batch, pipeDepth),
		done: make(chan struct{}),
	}
	for range pipeDepth {
		sh.free <- &batch{items: make([]item, 0, batchItems), buf: make([]byte, 0, batchBufBytes)}
	}
	o := *opts
	o.Keys = sh.keys
	h := ShardHooks{Sink: opts.Sink, OnApp: opts.OnApp, OnConn: opts.OnConn, OnSegment: opts.OnSegment}
	if opts.Shard != nil {
		h = opts.Shard(i)
	} else {
		h = lockedHooks(h, mu)
	}
	o.Sink, o.OnApp, o.OnConn, o.OnSegment = h.Sink, h.OnApp, h.OnConn, h.OnSegment
	if f := o.TCP.NewHandler; f != nil {
		o.TCP.NewHandler = func(c *tcp.Conn) tcp.StreamHandler {
			mu.Lock()
			defer mu.Unlock()
			return f(c)
		}
	}
	o.TCP.OnStreamsDone = lockedConn(o.TCP.OnStreamsDone, mu)
	o.TCP.OnFinish = lockedConn(o.TCP.OnFinish, mu)
	// The bounds are the run's: each shard takes its part.
	if o.TCP.MaxConns <= 0 {
		o.TCP.MaxConns = tcp.DefaultMaxConns
	}
	if o.TCP.MaxBufferTotal <= 0 {
		o.TCP.MaxBufferTotal = tcp.DefaultMaxBufferTotal
	}
	o.TCP.MaxConns = (o.TCP.MaxConns + n - 1) / n
	o.TCP.MaxBufferTotal = (o.TCP.MaxBufferTotal + n - 1) / n
	// Provisional IDs: the first frame's number, unique and in the
	// order of the final IDs (Run checks that it fits).
	o.TCP.ConnID = func(first *layer.Segment) event.ConnID {
		id := event.ConnID(first.Ref.Frame)
		sh.ids = append(sh.ids, id)
		return id
	}
	sh.s2 = &stage2{opts: &o, files: files, st: &sh.st, tr: tcp.NewTracker(wire(&o))}
	return sh
}

// run is the shard's goroutine: it takes batches in order until one ends
// the run, then finishes its connections if the input was read to the end.
// A panic (a bug) ends the shard's work with an error, but it keeps taking
// batches so that the reader is never stuck.
func (sh *shard) run() {
	defer close(sh.done)
	for b := range sh.full {
		if sh.err == nil {
			sh.process(b)
		}
		err := b.err
		b.items, b.buf, b.err = b.items[:0], b.buf[:0], nil
		sh.free <- b
		if err != nil {
			if err == io.EOF && sh.err == nil {
				sh.flush()
			}
			return
		}
	}
}

// process does what a batch says, recovering from a panic.
func (sh *shard) process(b *batch) {
	defer func() {
		if p := recover(); p != nil {
			sh.err = fmt.Errorf("h2scope internal error while dissecting the capture (a bug: please report it with this capture): %v", p)
		}
	}()
	s := sh.s2
	for i := range b.items {
		it := &b.items[i]
		switch it.kind {
		case itemSegment:
			c, dir, a := s.tr.AddTicked(&it.seg, it.now, it.sweep)
			s.observe(c, dir, &it.seg, a)
		case itemSweep:
			s.tr.Sweep(it.now)
		case itemSecrets:
			// Stats count them once, on the reader's side.
			var st Stats
			st.addSecrets(sh.keys, it.secrets, s.files)
		}
	}
}

func (sh *shard) flush() {
	defer func() {
		if p := recover(); p != nil {
			sh.err = fmt.Errorf("h2scope internal error while dissecting the capture (a bug: please report it with this capture): %v", p)
		}
	}()
	sh.s2.tr.Flush()
}

// add returns a new item at the end of the shard's current batch, taking
// a batch or sending the full one first, so that n more payload bytes fit.
func (sh *shard) add(n int) *item {
	if sh.cur == nil {
		sh.cur = <-sh.free
	}
	b := sh.cur
	if len(b.items) == cap(b.items) || len(b.buf)+n > cap(b.buf) && len(b.buf) > 0 {
		sh.full <- b
		sh.cur = <-sh.free
		b = sh.cur
	}
	b.items = append(b.items, item{})
	return &b.items[len(b.items)-1]
}

// end sends the shard's last batch, which ends its run with err.
func (sh *shard) end(err error) {
	if sh.cur == nil {
		sh.cur = <-sh.free
	}
	sh.cur.err = err
	sh.full <- sh.cur
	sh.cur = nil
}

// runSharded is Run with Options.Shards > 1: Run's goroutine reads and
// decodes the captures and hands each TCP segment to the shard of its
// connection; see "Shards" in the package documentation.
func runSharded(ctx context.Context, r *capture.Reader, dec *layer.Decoder, opts *Options, st *Stats, files []string, total int64) error {
	var mu sync.Mutex
	shards := make([]*shard, max(opts.Shards, 1))
	for i := range shards {
		shards[i] = newShard(i, len(shards)*max(opts.ShardOf.Count, 1), opts, &mu, files)
		go shards[i].run()
	}
	err := dispatch(ctx, r, dec, opts, st, shards, files, total)
	end := err
	if end == nil {
		end = io.EOF
	}
	for _, sh := range shards {
		sh.end(end)
	}
	var ids []event.ConnID
	for _, sh := range shards {
		<-sh.done
		if sh.err != nil && err == nil {
			err = sh.err
		}
		st.TCP.Add(sh.s2.tr.Stats())
		opts.Keys.AddLookups(sh.keys)
		ids = append(ids, sh.ids...)
	}
	slices.Sort(ids)
	st.IDs = &ConnIDs{ids: ids}
	if opts.ShardOf.Index > 0 {
		// What the reader counts is the whole capture's, which every
		// run of a split capture reads: the first run reports it.
		tcp, ids := st.TCP, st.IDs
		*st = Stats{TCP: tcp, IDs: ids}
	}
	return err
}

// dispatch reads and decodes the captures, sending each TCP segment to its
// shard with the capture clock's tick, and every clock sweep and
// Decryption Secrets Block to all shards. It returns nil at the end of the
// input.
func dispatch(ctx context.Context, r *capture.Reader, dec *layer.Decoder, opts *Options, st *Stats, shards []*shard, files []string, total int64) error {
	var (
		clock    tcp.Clock
		seg      layer.Segment
		nsecrets int
	)
	for {
		p, err := nextPacket(ctx, r, st, opts.Progress, total)
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
		if sec := r.Secrets(); len(sec) > nsecrets {
			sec = sec[nsecrets:len(sec):len(sec)]
			nsecrets += len(sec)
			st.addSecrets(opts.Keys, sec, files)
			for _, sh := range shards {
				it := sh.add(0)
				it.kind, it.secrets = itemSecrets, sec
			}
		}
		res, _ := dec.Decode(p.LinkType, p.Data, p.OrigLen, &seg)
		if res.Kind != layer.KindTCP {
			continue
		}
		if p.Ref.Frame > math.MaxUint32 {
			return fmt.Errorf("%s: frame %d: a run with shards numbers at most %d frames; run without shards", files[max(p.Ref.File, 0)%len(files)], p.Ref.Frame, uint64(math.MaxUint32))
		}
		seg.Ref = p.Ref
		fingerprint(&seg)
		now, sweep := clock.Tick(seg.Ref.TS)
		i := opts.ShardOf.pick(shardHash(seg.Src.Addr(), seg.Dst.Addr()), len(shards))
		if sweep {
			for j, sh := range shards {
				if j != i {
					it := sh.add(0)
					it.kind, it.now = itemSweep, now
				}
			}
		}
		if i < 0 {
			continue // another run's
		}
		sh := shards[i]
		it := sh.add(len(seg.Payload))
		it.kind, it.seg, it.now, it.sweep = itemSegment, seg, now, sweep
		b := sh.cur
		if n := len(seg.Payload); n > cap(b.buf)-len(b.buf) {
			it.seg.Payload = append([]byte(nil), seg.Payload...)
		} else if seg.Payload != nil {
			off := len(b.buf)
			b.buf = append(b.buf, seg.Payload...)
			it.seg.Payload = b.buf[off : off+n : off+n]
		}
	}
}
