package analyze

import (
	"fmt"
	"maps"
	"runtime"
	"runtime/debug"
	"sync/atomic"

	"github.com/h2scope/h2scope/dissect"
	"github.com/h2scope/h2scope/dissect/event"
	"github.com/h2scope/h2scope/dissect/tcp"
)

// The analysis beside the dissection.
//
// A run that is not sharded tracks, dissects and analyses on one
// goroutine, and the analysis (the detectors, the tables, the report's
// Builder) costs as much as the dissection or more on captures of many
// short connections. Where there is a second CPU, an asyncCollector
// takes what the dissection tells the Collector (its events, each
// connection's application part and its end), copies what the Collector
// reads of it, and hands it over in batches, in order, to a goroutine
// that feeds the Collector: the two halves run at once, and the Collector
// sees exactly the calls, in exactly the order, that it would have seen
// directly, so the result is the same.

// asyncBatch is the calls an asyncCollector hands over at once (a
// variable: tests make it small, so that the goroutines meet often);
// asyncDepth the batches that may wait for the Collector's goroutine
// (the dissection waits when they are all full).
var asyncBatch = 256

const asyncDepth = 4

// asyncMaxRecords bounds the exchanges, streams and calls of the Apps
// handed over and not yet analysed (asyncCollector.conn): a few
// megabytes.
const asyncMaxRecords = 4096

// asyncMinProcs is the least GOMAXPROCS at which a run that is not
// sharded analyses on a goroutine of its own: 2, a second CPU to run it
// (tests change it to compare both ways).
var asyncMinProcs = 2

func useAsync() bool { return runtime.GOMAXPROCS(0) >= asyncMinProcs }

// asyncOp is what a call handed to the Collector's goroutine was.
type asyncOp uint8

const (
	opEvent  asyncOp = iota // Collector.Event
	opApp                   // Collector.App
	opFinish                // Collector.Finish
)

// asyncCall is one call to the Collector, with copies of what it reads:
// an event (without its protocol details, which the Collector does not
// read), or a connection's TCP summary and application part. The
// dissectors reuse their events and the tracker its connections once
// the call returns; the App is the receiver's.
type asyncCall struct {
	op asyncOp
	// records counts the App's exchanges, streams and calls
	// (asyncMaxRecords).
	records int64
	ev      event.Event
	sum     tcp.Summary
	app     *dissect.App
}

// pipe hands values of T over to a goroutine that takes them in order
// (take), in batches of asyncBatch, asyncDepth of them waiting at most.
// The sender fills each value in place (next, then sent); the batches
// are reused, so a value must be filled whole. Call wait once the
// sender is done, whatever its end.
type pipe[T any] struct {
	take func(*T)
	// flush, when not nil, is called after each batch was taken.
	flush func()
	cur   []T
	work  chan []T
	free  chan []T
	done  chan struct{}
	// acked receives once the taking goroutine reached a barrier (a nil
	// batch, see drain).
	acked chan struct{}
	// fault is the panic that stopped the taking goroutine (a bug), with
	// its stack; failed is set once it is. The sender raises it again
	// at its next batch or at wait, once (raised).
	fault  any
	failed atomic.Bool
	raised bool
}

// takePanic is a panic of the goroutine that takes a pipe's values,
// raised again on the sender's: its value, whose text it has (so that a
// caller that recovers it, batch, says what a run on one goroutine
// would), and the stack where it happened, for a debugger.
type takePanic struct {
	v     any
	stack []byte
}

func (p takePanic) Error() string { return fmt.Sprint(p.v) }

// asTakePanic returns x, recovered, as a takePanic with the stack where
// it happened: x itself if it is one (raised again from a later pipe).
// Call it in the deferred function that recovered x.
func asTakePanic(x any) takePanic {
	if tp, ok := x.(takePanic); ok {
		return tp
	}
	return takePanic{x, debug.Stack()}
}

// newPipe starts the goroutine that takes the values.
func newPipe[T any](take func(*T)) *pipe[T] {
	p := &pipe[T]{take: take, work: make(chan []T, asyncDepth),
		free: make(chan []T, asyncDepth+2), done: make(chan struct{}), acked: make(chan struct{})}
	go p.run()
	return p
}

// run takes the values handed over, in order, until wait. After a
// panic it takes the rest without reading them, so that the sender
// never waits for it.
func (p *pipe[T]) run() {
	defer close(p.done)
	defer func() {
		if x := recover(); x != nil {
			p.fault = asTakePanic(x)
			p.failed.Store(true)
			for b := range p.work {
				if b == nil {
					p.acked <- struct{}{}
				}
			}
		}
	}()
	for b := range p.work {
		if b == nil {
			p.acked <- struct{}{}
			continue
		}
		for i := range b {
			p.take(&b[i])
		}
		if p.flush != nil {
			p.flush()
		}
		select {
		case p.free <- b[:0]:
		default:
		}
	}
}

// next returns the next value of the current batch, as a previous use
// left it.
func (p *pipe[T]) next() *T {
	if p.cur == nil {
		select {
		case p.cur = <-p.free:
		default:
			p.cur = make([]T, 0, asyncBatch)
		}
	}
	p.cur = p.cur[:len(p.cur)+1]
	return &p.cur[len(p.cur)-1]
}

// sent hands the current batch over once it is full.
func (p *pipe[T]) sent() {
	if len(p.cur) == cap(p.cur) {
		p.raise() // the sender's work is lost after a fault: stop it
		p.work <- p.cur
		p.cur = nil
	}
}

// drain hands the current batch over and waits until every value handed
// over was taken.
func (p *pipe[T]) drain() {
	if len(p.cur) > 0 {
		p.raise()
		p.work <- p.cur
		p.cur = nil
	}
	p.work <- nil
	<-p.acked
	p.raise()
}

// raise panics with the taking goroutine's panic, if there was one and
// it was not raised yet.
func (p *pipe[T]) raise() {
	if p.failed.Load() && !p.raised {
		p.raised = true
		panic(p.fault)
	}
}

// wait hands over what is left, waits until every value was taken, and
// raises again a panic of the taking goroutine.
func (p *pipe[T]) wait() {
	if len(p.cur) > 0 {
		p.work <- p.cur
		p.cur = nil
	}
	close(p.work)
	<-p.done
	p.raise()
}

// asyncCollector is the event.Sink, OnApp and OnConn of a run that
// analyses beside the dissection: see above. Call wait once the run is
// over, whatever its end, before reading the Collector.
type asyncCollector struct {
	*pipe[asyncCall]
	k *Collector
	// records counts the streams and calls of the Apps handed over and
	// not analysed yet: past asyncMaxRecords, the dissection waits.
	records atomic.Int64
	// app is a call of App not yet made, in the batch being taken: when
	// the next call finishes the same connection (an eviction, the end
	// of the run), the two are made as one (Collector.appFinish), which
	// spares the Collector keeping the connection open in between.
	app *asyncCall
}

// newAsync starts the goroutine that feeds k.
func newAsync(k *Collector) *asyncCollector {
	a := &asyncCollector{k: k}
	a.pipe = newPipe(a.call)
	a.flush = a.callApp
	return a
}

// call makes the call c stands for.
func (a *asyncCollector) call(c *asyncCall) {
	if p := a.app; p != nil && c.op == opFinish && c.sum.ID == p.sum.ID {
		a.app = nil
		a.k.appFinish(&p.sum, p.app, &c.sum)
		a.records.Add(-p.records)
		p.app, c.app = nil, nil
		return
	}
	a.callApp()
	switch c.op {
	case opEvent:
		a.k.Event(&c.ev)
	case opApp:
		a.app = c
	case opFinish:
		a.k.finish(&c.sum, c.app)
		c.app = nil
	}
}

// callApp makes the call of App not yet made, if any. The batches are
// reused as they come back, not cleared: the call lets go of the App,
// which would otherwise stay reachable (a connection's streams and
// calls, megabytes) until its slot is used again.
func (a *asyncCollector) callApp() {
	if p := a.app; p != nil {
		a.app = nil
		a.k.app(&p.sum, p.app)
		a.records.Add(-p.records)
		p.app = nil
	}
}

// Event implements event.Sink: the events the Collector reads, copied.
func (a *asyncCollector) Event(e *event.Event) {
	if !collects(e) {
		return
	}
	c := a.next()
	c.op, c.ev = opEvent, *e
	c.ev.HTTP1, c.ev.HTTP2, c.ev.GRPC = nil, nil, nil
	c.app = nil
	a.sent()
}

// App is Collector.App beside the dissection.
func (a *asyncCollector) App(tc *tcp.Conn, app *dissect.App) { a.conn(opApp, tc, app) }

// Finish is Collector.Finish beside the dissection.
func (a *asyncCollector) Finish(tc *tcp.Conn, app *dissect.App) { a.conn(opFinish, tc, app) }

func (a *asyncCollector) conn(op asyncOp, tc *tcp.Conn, app *dissect.App) {
	c := a.next()
	c.op, c.sum, c.app = op, tc.Summary, app
	// The tracker goes on counting into the connection's map of
	// anomalies; the rest of the summary is values, or pointers it
	// never writes through again.
	c.sum.Anomalies = maps.Clone(tc.Summary.Anomalies)
	c.records = 0
	if app != nil && op == opApp {
		c.records = int64(len(app.Exchanges) + len(app.Streams) + len(app.Calls))
	}
	if c.records > 0 && a.records.Add(c.records) > asyncMaxRecords {
		// The records of the connections handed over (a connection of
		// many streams or calls holds megabytes until the analysis
		// releases them) pass the bound: the dissection waits until
		// they were analysed, so that it holds about what one goroutine
		// would.
		a.drain()
		return
	}
	a.sent()
}
