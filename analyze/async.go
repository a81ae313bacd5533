package analyze

import (
	"maps"
	"runtime"

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

// asyncBatch is the calls an asyncCollector hands over at once;
// asyncDepth the batches that may wait for the Collector's goroutine
// (the dissection waits when they are all full).
const (
	asyncBatch = 256
	asyncDepth = 4
)

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
// an event (and of an HTTP/1 message, its Host header only, the one
// field the Collector reads of its headers), or a connection's TCP
// summary and application part. The dissectors reuse their events and
// the tracker its connections once the call returns; the App is the
// receiver's.
type asyncCall struct {
	op   asyncOp
	ev   event.Event
	h1   event.HTTP1
	host [1]event.Header
	sum  tcp.Summary
	app  *dissect.App
}

// asyncCollector is the event.Sink, OnApp and OnConn of a run that
// analyses beside the dissection: see above. Call wait once the run is
// over, whatever its end, before reading the Collector.
type asyncCollector struct {
	k    *Collector
	cur  []asyncCall
	work chan []asyncCall
	free chan []asyncCall
	done chan struct{}
	// fault is the panic that stopped the Collector's goroutine (a bug),
	// raised again by wait on the dissection's.
	fault any
}

// newAsync starts the goroutine that feeds k.
func newAsync(k *Collector) *asyncCollector {
	a := &asyncCollector{k: k, work: make(chan []asyncCall, asyncDepth),
		free: make(chan []asyncCall, asyncDepth+2), done: make(chan struct{})}
	go a.run()
	return a
}

// run feeds the Collector the calls handed over, in order, until wait.
// After a panic it takes the rest without reading them, so that the
// dissection never waits for it.
func (a *asyncCollector) run() {
	defer close(a.done)
	defer func() {
		if x := recover(); x != nil {
			a.fault = x
			for range a.work {
			}
		}
	}()
	for b := range a.work {
		for i := range b {
			a.call(&b[i])
		}
		select {
		case a.free <- b[:0]:
		default:
		}
	}
}

// call makes the call c stands for.
func (a *asyncCollector) call(c *asyncCall) {
	switch c.op {
	case opEvent:
		a.k.Event(&c.ev)
	case opApp:
		a.k.app(&c.sum, c.app)
	case opFinish:
		a.k.finish(&c.sum, c.app)
	}
}

// next returns the next call of the current batch, as a previous use
// left it.
func (a *asyncCollector) next() *asyncCall {
	if a.cur == nil {
		select {
		case a.cur = <-a.free:
		default:
			a.cur = make([]asyncCall, 0, asyncBatch)
		}
	}
	a.cur = a.cur[:len(a.cur)+1]
	return &a.cur[len(a.cur)-1]
}

// sent hands the current batch over once it is full.
func (a *asyncCollector) sent() {
	if len(a.cur) == cap(a.cur) {
		a.work <- a.cur
		a.cur = nil
	}
}

// Event implements event.Sink: the events the Collector reads, copied.
func (a *asyncCollector) Event(e *event.Event) {
	if !collects(e) {
		return
	}
	c := a.next()
	c.op, c.ev = opEvent, *e
	c.ev.HTTP2, c.ev.GRPC = nil, nil
	if h := e.HTTP1; h != nil {
		c.h1 = *h
		c.h1.Headers = nil
		for _, f := range h.Headers {
			if equalFold(f.Name, "host") {
				c.host[0] = f
				c.h1.Headers = c.host[:]
				break
			}
		}
		c.ev.HTTP1 = &c.h1 // the batch's array is never moved
	}
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
	c.ev.HTTP1 = nil
	a.sent()
}

// wait hands over what is left, waits until the Collector has taken
// every call, and raises again a panic of its goroutine.
func (a *asyncCollector) wait() {
	if len(a.cur) > 0 {
		a.work <- a.cur
		a.cur = nil
	}
	close(a.work)
	<-a.done
	if a.fault != nil {
		panic(a.fault)
	}
}
