package report

import (
	"bytes"
	"errors"
	"runtime"
	"sync"
)

// Encoding a report's connections and timelines is most of the time
// `analyze --json` spends after the analysis on a capture of many
// connections (a few kilobytes of JSON each). Long lists are therefore
// encoded in batches on the idle cores and written in order: the bytes
// are those of encoding them one by one. Variables, so that tests can
// take the parallel path with few items.
var (
	// parallelItems is the list length from which items are encoded on
	// several goroutines.
	parallelItems = 256
	// itemBatch is the number of items a goroutine encodes at a time.
	itemBatch = 64
)

// listBatch returns the batch size of a list of n items encoded on
// several goroutines, 0 when it is encoded on one: a long list in
// batches of itemBatch; a short one in batches that give each core
// about two, since its items may be large (the timelines of a few long
// connections, tens of thousands of events each) and encoding one is
// what a report of them waits for.
func listBatch(n int) int {
	procs := runtime.GOMAXPROCS(0)
	switch {
	case n >= parallelItems:
		return itemBatch
	case n >= 2 && procs >= 2:
		return max(1, n/(2*procs))
	}
	return 0
}

// errStopped stops a producer once writing failed; the writer's error is
// the one reported.
var errStopped = errors.New("report: writing stopped")

// itemBatchJob is a batch of list items and, once done is closed, their
// encodings (or the first error).
type itemBatchJob struct {
	items []any
	enc   [][]byte
	err   error
	done  chan struct{}
}

// listEncoder encodes the items of one JSON array (at depth 2 when jw
// indents) on several goroutines, and writes them to jw in the order
// added.
type listEncoder struct {
	jw      *jsonWriter
	batch   int // items per batch
	cur     *itemBatchJob
	work    chan *itemBatchJob
	ordered chan *itemBatchJob
	workers sync.WaitGroup
	writer  sync.WaitGroup
	first   bool
	// failed is set by the writer once it stopped on an error; add then
	// stops the producer.
	failed chan struct{}
	once   sync.Once
}

func newListEncoder(jw *jsonWriter, batch int) *listEncoder {
	n := max(1, runtime.GOMAXPROCS(0))
	e := &listEncoder{jw: jw, batch: max(batch, 1), work: make(chan *itemBatchJob, n), ordered: make(chan *itemBatchJob, 2*n),
		first: true, failed: make(chan struct{})}
	for range n {
		e.workers.Go(e.encodeBatches)
	}
	e.writer.Go(e.writeBatches)
	return e
}

// add queues v, which must not change until the list is written.
func (e *listEncoder) add(v any) error {
	if e.cur == nil {
		e.cur = &itemBatchJob{items: make([]any, 0, e.batch), done: make(chan struct{})}
	}
	e.cur.items = append(e.cur.items, v)
	if len(e.cur.items) == e.batch {
		return e.flush()
	}
	return nil
}

// flush hands the batch being filled to the workers and the writer.
func (e *listEncoder) flush() error {
	b := e.cur
	e.cur = nil
	if b == nil {
		return nil
	}
	select {
	case <-e.failed:
		return errStopped
	case e.ordered <- b:
	}
	e.work <- b
	return nil
}

// close writes what is left and waits for it; jw.err then holds the
// first error.
func (e *listEncoder) close() {
	e.flush()
	close(e.work)
	close(e.ordered)
	e.workers.Wait()
	e.writer.Wait()
}

func (e *listEncoder) encodeBatches() {
	var buf bytes.Buffer
	var fast []byte
	enc := e.jw.encoder(&buf, 2)
	for b := range e.work {
		for _, v := range b.items {
			var ok bool
			if fast, ok = e.jw.appendFast(fast[:0], v, 2); ok {
				b.enc = append(b.enc, bytes.Clone(fast))
				continue
			}
			buf.Reset()
			if b.err = enc.Encode(v); b.err != nil {
				break
			}
			b.enc = append(b.enc, bytes.Clone(bytes.TrimSuffix(buf.Bytes(), []byte("\n"))))
		}
		close(b.done)
	}
}

// writeBatches writes the batches in order as they are done. When an item
// fails to encode, the error is the one encoding the items one by one
// returns, but the bytes written before it may differ (the rest of its
// batch is not written): a failed write's output is not the report.
func (e *listEncoder) writeBatches() {
	jw := e.jw
	for b := range e.ordered {
		<-b.done
		if jw.err == nil && b.err != nil {
			jw.err = b.err
		}
		for _, s := range b.enc {
			if !e.first {
				jw.punct(",\n", ",")
			}
			e.first = false
			jw.punct("    ", "")
			if jw.err == nil {
				_, jw.err = jw.w.Write(s)
			}
		}
		if jw.err != nil {
			e.once.Do(func() { close(e.failed) })
		}
	}
}
