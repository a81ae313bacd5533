package dissect

import (
	"context"
	"errors"
	"io"
	"os"
	"runtime"

	"github.com/h2scope/h2scope/dissect/capture"
	"github.com/h2scope/h2scope/dissect/event"
	"github.com/h2scope/h2scope/dissect/layer"
	"github.com/h2scope/h2scope/dissect/tcp"
	"github.com/h2scope/h2scope/dissect/tls"
	"github.com/h2scope/h2scope/internal/freelist"
)

// Options configure Run. The zero value reads the captures and tracks TCP
// connections with default limits.
type Options struct {
	// Capture configures capture reading.
	Capture capture.Options
	// TCP configures connection tracking. Its OnFinish receives each
	// finished connection; its NewHandler receives each connection's bytes
	// unless Dissect is set.
	TCP tcp.Options
	// Dissect runs the application dissectors (HTTP/1.x, HTTP/2, gRPC) on
	// every connection, recognising protocols from content.
	Dissect bool
	// Exchanges, with Dissect, keeps each connection's HTTP/1.x requests
	// and responses as exchanges in its App (App.Exchanges), as its
	// HTTP/2 streams are kept in App.Streams.
	Exchanges bool
	// Sink, if set, receives every dissected unit in capture order: TCP
	// segments that open, close or reset a connection or carry an analysis
	// flag, and (with Dissect) the application units.
	Sink event.Sink
	// OnApp, if set, is called once per connection, with Dissect, when
	// its application part is over: its streams ended (TCP.StreamGrace
	// after it closed, or at the latest just before it finishes; see
	// tcp.Options.OnStreamsDone). app is what its dissectors found (nil
	// when no protocol was recognised); their state is freed right after
	// the call. c's summary is as of that moment: later packets may
	// still change it until OnConn. It is called after
	// TCP.OnStreamsDone.
	OnApp func(c *tcp.Conn, app *App)
	// OnConn, if set, is called with each finished connection, its
	// summary final, after TCP.OnFinish. Each connection's App is
	// delivered once: to OnApp when it is set (app is then nil here);
	// otherwise here, kept from the end of its streams until now (app
	// nil when no protocol was recognised or Dissect is off).
	OnConn func(c *tcp.Conn, app *App)
	// Keys holds the TLS secrets of a key log (--keylog). Run adds to it
	// the key logs of the captures' pcapng Decryption Secrets Blocks as
	// it meets them; nil starts from an empty key log.
	Keys *tls.KeyLog
	// OnSegment, if set, is called for every TCP segment once the tracker
	// has classified it. s and its payload are valid only during the call.
	OnSegment func(c *tcp.Conn, dir event.Dir, s *layer.Segment, a tcp.Analysis)
	// Progress, if set, is called on Run's goroutine every
	// ProgressInterval packets and once when the input is read, with the
	// bytes read so far from the files as stored (compressed bytes for .gz
	// and .zst) and the sum of their sizes.
	Progress func(read, total int64)
	// Shards, above 1, splits the tracking and dissection by connection
	// over this many goroutines (see "Shards" in the package
	// documentation): connection IDs are then provisional, Stats.IDs
	// maps them to final ones, and the callbacks come from Shard.
	Shards int
	// Shard, with Shards above 1, returns the callbacks of shard i
	// (0 <= i < Shards), called on that shard's goroutine in place of
	// Sink, OnApp, OnConn and OnSegment. When it is nil, those are called
	// from every shard, one at a time (under one lock, as are
	// TCP.NewHandler, OnStreamsDone and OnFinish in any case).
	Shard func(i int) ShardHooks
	// ShardOf, when its Count is above 0, makes the run one shard of a
	// capture split by connection over Count runs, possibly on as many
	// machines (see "One shard of several runs" in the package
	// documentation). It combines with Shards.
	ShardOf ShardOf
	// Sequential reads and decodes the captures on Run's goroutine. By
	// default, when GOMAXPROCS > 1, a second goroutine reads and decodes
	// packets ahead while Run's goroutine tracks connections and runs
	// the dissectors and callbacks, in the same order: the results are
	// the same either way.
	Sequential bool
}

// ProgressInterval is the number of packets between calls of
// Options.Progress.
const ProgressInterval = 4096

// Stats summarises a run.
type Stats struct {
	// Packets counts frames read from all captures.
	Packets uint64
	// Bytes counts captured bytes of those frames.
	Bytes uint64
	// Layer holds the link-layer decoder's counters.
	Layer layer.Stats
	// TCP holds the connection tracker's counters.
	TCP tcp.Stats
	// Faults lists the located faults that ended a file early; the packets
	// before each fault were analysed.
	Faults []*Error
	// Secrets counts the TLS key log secrets found in the captures'
	// Decryption Secrets Blocks; SecretErrors lists their malformed lines
	// (the first 20; SecretErrorsDropped counts the others).
	Secrets             int
	SecretErrors        []error
	SecretErrorsDropped int
	// IDs, after a run with Shards above 1, maps the provisional
	// connection IDs the callbacks saw to final ones; nil otherwise (IDs
	// are final). ConnIDs.Final works on nil too.
	IDs *ConnIDs
}

// Add adds o's counts to st's, and appends o's faults and secret errors:
// the Stats of runs over parts of an input add up to those of one run
// over all of it. IDs are left alone.
func (st *Stats) Add(o Stats) {
	st.Packets += o.Packets
	st.Bytes += o.Bytes
	st.Layer.Add(o.Layer)
	st.TCP.Add(o.TCP)
	st.Faults = append(st.Faults, o.Faults...)
	st.Secrets += o.Secrets
	st.SecretErrors = append(st.SecretErrors, o.SecretErrors...)
	st.SecretErrorsDropped += o.SecretErrorsDropped
}

// Run reads files as one capture merged by time and feeds every TCP segment
// to a connection tracker configured by opts. It returns once all input is
// read (every connection has then been finished), ctx is done, or the
// captures cannot be opened. Faults inside files do not stop it: they are
// listed in Stats.Faults.
func Run(ctx context.Context, files []string, opts Options) (Stats, error) {
	var st Stats
	if err := opts.ShardOf.check(); err != nil {
		return st, err
	}
	r, err := capture.Open(files, opts.Capture)
	if err != nil {
		return st, err
	}
	defer r.Close()
	if opts.Keys == nil {
		opts.Keys = tls.NewKeyLog()
	}
	var total int64
	if opts.Progress != nil {
		for _, f := range files {
			if fi, err := os.Stat(f); err == nil {
				total += fi.Size()
			}
		}
	}
	dec := layer.NewDecoder()
	if opts.Shards > 1 || opts.ShardOf.Count > 0 {
		err = runSharded(ctx, r, dec, &opts, &st, files, total)
		if opts.ShardOf.Index == 0 {
			st.Layer = dec.Stats
		}
		if err == nil && opts.Progress != nil {
			opts.Progress(r.BytesRead(), total)
		}
		return st, err
	}
	s := &stage2{opts: &opts, files: files, st: &st, tr: tcp.NewTracker(wire(&opts)), total: total}
	if opts.Sequential || runtime.GOMAXPROCS(0) < 2 {
		err = runSequential(ctx, r, dec, s)
	} else {
		err = runPipeline(ctx, r, dec, s)
	}
	if err != nil {
		return st, err
	}
	if opts.Progress != nil {
		opts.Progress(r.BytesRead(), s.total)
	}
	s.tr.Flush()
	st.Layer = dec.Stats
	st.TCP = s.tr.Stats()
	return st, nil
}

// runSequential reads, decodes and tracks on one goroutine.
func runSequential(ctx context.Context, r *capture.Reader, dec *layer.Decoder, s *stage2) error {
	st := s.st
	nsecrets := 0
	var seg layer.Segment
	for {
		p, err := nextPacket(ctx, r, st, s.opts.Progress, s.total)
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
		if sec := r.Secrets(); len(sec) > nsecrets {
			s.secrets(sec[nsecrets:])
			nsecrets = len(sec)
		}
		res, _ := dec.Decode(p.LinkType, p.Data, p.OrigLen, &seg)
		if res.Kind != layer.KindTCP {
			continue
		}
		seg.Ref = p.Ref
		fingerprint(&seg)
		s.segment(&seg)
	}
}

// nextPacket returns the capture's next packet, counted in st, calling
// progress every ProgressInterval packets. A located fault that cut a file
// short is added to st.Faults and reading goes on past it. It returns
// io.EOF at the end of the input, and ctx's error once ctx is done
// (checked every 1024 packets).
func nextPacket(ctx context.Context, r *capture.Reader, st *Stats, progress func(done, total int64), total int64) (*capture.Packet, error) {
	for {
		if st.Packets&1023 == 0 && ctx.Err() != nil {
			return nil, ctx.Err()
		}
		p, err := r.Next()
		if err != nil {
			var e *Error
			if err != io.EOF && errors.As(err, &e) {
				st.Faults = append(st.Faults, e)
				continue
			}
			return nil, err
		}
		st.Packets++
		st.Bytes += uint64(len(p.Data))
		if progress != nil && st.Packets%ProgressInterval == 0 {
			progress(r.BytesRead(), total)
		}
		return p, nil
	}
}

// fingerprint fills in the payload fingerprint the tracker keeps, right
// after decoding: in a pipelined run the reader's goroutine computes it
// while the payload is in its core's cache, sparing Run's goroutine a
// cold read of the bytes. The sequential run does the same so that both
// hand OnSegment the same segments.
func fingerprint(seg *layer.Segment) {
	if len(seg.Payload) > 0 {
		seg.Sum, seg.Summed = tcp.Fingerprint(seg.Payload), true
	}
}

// stage2 is what Run does with each decoded TCP segment, in capture order:
// connection tracking, the dissectors and the sinks. In a pipelined run it
// is the second stage, on Run's goroutine.
type stage2 struct {
	opts  *Options
	files []string
	st    *Stats
	tr    *tcp.Tracker
	total int64 // bytes of all files, for Progress
	ev    event.Event
}

func (s *stage2) segment(seg *layer.Segment) {
	c, dir, a := s.tr.Add(seg)
	s.observe(c, dir, seg, a)
}

// observe hands a segment the tracker classified to the callbacks.
func (s *stage2) observe(c *tcp.Conn, dir event.Dir, seg *layer.Segment, a tcp.Analysis) {
	if s.opts.OnSegment != nil {
		s.opts.OnSegment(c, dir, seg, a)
	}
	if s.opts.Sink != nil && (seg.Flags&(layer.SYN|layer.FIN|layer.RST) != 0 || a != 0) {
		tcpEvent(&s.ev, c, dir, seg, a)
		s.opts.Sink.Event(&s.ev)
	}
}

// secrets adds the key logs of newly read Decryption Secrets Blocks.
func (s *stage2) secrets(sec []capture.Secret) {
	s.st.addSecrets(s.opts.Keys, sec, s.files)
}

// wire returns the tracker options that connect the dissectors and the
// callbacks of opts.
func wire(opts *Options) tcp.Options {
	to := opts.TCP
	if !opts.Dissect && opts.OnConn == nil && opts.OnApp == nil {
		return to
	}
	// A connection's dissectors (*appConn) are kept in its User field
	// while its streams are open; then, if OnConn is to receive it, its
	// App until it finishes.
	shared := &tlsShared{keys: opts.Keys, sessions: &tls.Sessions{}, free: freelist.List[appConn]{Max: maxFreeApps}, exchanges: opts.Exchanges}
	// A nil sink tells the dissectors that nobody reads their units, so
	// they skip building them.
	sink := opts.Sink
	if opts.Dissect {
		to.NewHandler = func(c *tcp.Conn) tcp.StreamHandler {
			a := newAppConn(c, sink, shared)
			c.User = a
			return a
		}
	}
	onStreamsDone := to.OnStreamsDone
	to.OnStreamsDone = func(c *tcp.Conn) {
		if onStreamsDone != nil {
			onStreamsDone(c)
		}
		a, _ := c.User.(*appConn)
		c.User = nil
		app := a.app()
		if a != nil {
			a.release()
		}
		switch {
		case opts.OnApp != nil:
			opts.OnApp(c, app)
		case opts.OnConn != nil && app != nil:
			c.User = app
		}
	}
	onFinish := to.OnFinish
	to.OnFinish = func(c *tcp.Conn) {
		if onFinish != nil {
			onFinish(c)
		}
		app, _ := c.User.(*App)
		c.User = nil
		if opts.OnConn != nil {
			opts.OnConn(c, app)
		}
	}
	return to
}

// tcpEvent describes a notable TCP segment as an event: its type names the
// control flags (SYN, SYN-ACK, FIN, RST, or "segment"), Kind holds them
// and Bits its analysis.
func tcpEvent(e *event.Event, c *tcp.Conn, dir event.Dir, s *layer.Segment, a tcp.Analysis) {
	typ := "segment"
	switch {
	case s.Flags.Has(layer.SYN | layer.ACK):
		typ = "SYN-ACK"
	case s.Flags.Has(layer.SYN):
		typ = "SYN"
	case s.Flags.Has(layer.RST):
		typ = "RST"
	case s.Flags.Has(layer.FIN):
		typ = "FIN"
	}
	*e = event.Event{Ref: s.Ref, Conn: c.ID, Dir: dir, Proto: event.ProtoTCP, Type: typ, Kind: uint16(s.Flags),
		Len: s.PayloadLen, Bits: uint32(a)}
}

// maxSecretErrors bounds the key log errors Stats lists.
const maxSecretErrors = 20

// addSecrets adds the TLS key logs of Decryption Secrets Blocks to keys.
func (st *Stats) addSecrets(keys *tls.KeyLog, secrets []capture.Secret, files []string) {
	for _, sec := range secrets {
		if sec.Type != capture.SecretsTLSKeyLog {
			continue
		}
		src := "decryption secrets block"
		if sec.File >= 0 && sec.File < len(files) {
			src = files[sec.File] + ": " + src
		}
		n, errs := keys.Add(sec.Data, src)
		st.Secrets += n
		for _, e := range errs {
			if len(st.SecretErrors) < maxSecretErrors {
				st.SecretErrors = append(st.SecretErrors, e)
			} else {
				st.SecretErrorsDropped++
			}
		}
	}
}
