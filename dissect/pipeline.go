package dissect

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/h2scope/h2scope/dissect/capture"
	"github.com/h2scope/h2scope/dissect/layer"
)

// The pipelined run: a reader goroutine (stage 1) reads the captures and
// decodes link, IP and TCP headers into batches; Run's goroutine (stage 2)
// takes the batches in order and does exactly what the sequential loop
// does with each segment. Batches come from a small ring of preallocated
// ones, so stage 1 runs at most pipeDepth batches ahead and the memory
// they hold is fixed.
// They are variables so that tests can make batches tiny.
var (
	pipeDepth     = 4         // batches in the ring
	batchItems    = 256       // items per batch
	batchBufBytes = 512 << 10 // payload bytes per batch
)

// itemKind says what a batch item carries.
type itemKind uint8

const (
	itemSegment  itemKind = iota // a decoded TCP segment
	itemFault                    // a located fault that ended a file
	itemProgress                 // Options.Progress is due, with read bytes read
	itemSecrets                  // Decryption Secrets Blocks were read
	itemSweep                    // a sharded run's clock swept, at now
)

// item is one thing stage 2 must do, in capture order.
type item struct {
	kind    itemKind
	seg     layer.Segment // itemSegment; Payload points into the batch's buf
	now     time.Time     // in a sharded run, the capture clock's tick for seg, or a sweep's time
	sweep   bool          // in a sharded run, whether the clock swept at seg
	fault   *Error
	read    int64
	secrets []capture.Secret
}

// batch is a run of items and the payload bytes their segments point to.
// err, if set, ends the run after the items: io.EOF when the input is read.
type batch struct {
	items   []item
	buf     []byte
	packets uint64 // packets and bytes read, up to the batch's last item
	bytes   uint64
	err     error
}

// runPipeline is runSequential split over two goroutines; see the
// comment above pipeDepth.
func runPipeline(ctx context.Context, r *capture.Reader, dec *layer.Decoder, s *stage2) error {
	free := make(chan *batch, pipeDepth)
	full := make(chan *batch, pipeDepth)
	for range pipeDepth {
		free <- &batch{items: make([]item, 0, batchItems), buf: make([]byte, 0, batchBufBytes)}
	}
	quit := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		read(ctx, r, dec, s.opts.Progress != nil, free, full, quit)
	}()
	// Stage 1 must be gone before Run closes the reader or returns.
	defer func() {
		close(quit)
		<-done
	}()
	st := s.st
	for b := range full {
		for i := range b.items {
			it := &b.items[i]
			switch it.kind {
			case itemSegment:
				s.segment(&it.seg)
			case itemFault:
				st.Faults = append(st.Faults, it.fault)
			case itemProgress:
				s.opts.Progress(it.read, s.total)
			case itemSecrets:
				s.secrets(it.secrets)
			}
		}
		st.Packets, st.Bytes = b.packets, b.bytes
		err := b.err
		b.items, b.buf, b.err = b.items[:0], b.buf[:0], nil
		free <- b
		switch {
		case err == io.EOF:
			return nil
		case err != nil:
			return err
		case ctx.Err() != nil:
			return ctx.Err()
		}
	}
	return nil
}

// read is stage 1: it reads and decodes packets into batches taken from
// free and sends them, filled, to full, until the input ends, an error
// stops it (sent as the last batch's err), or quit is closed.
func read(ctx context.Context, r *capture.Reader, dec *layer.Decoder, progress bool, free <-chan *batch, full chan<- *batch, quit <-chan struct{}) {
	var (
		packets, bytes uint64
		nsecrets       int
		seg            layer.Segment
		b              *batch
	)
	get := func() bool {
		select {
		case b = <-free:
			return true
		case <-quit:
			return false
		}
	}
	send := func() bool {
		b.packets, b.bytes = packets, bytes
		select {
		case full <- b:
			b = nil
			return true
		case <-quit:
			return false
		}
	}
	// add appends an item, sending the batch first when it is full or its
	// buffer cannot take n more bytes (it must not grow: items point
	// into it).
	add := func(n int) *item {
		if b == nil && !get() {
			return nil
		}
		if len(b.items) == cap(b.items) || len(b.buf)+n > cap(b.buf) && len(b.buf) > 0 {
			if !send() || !get() {
				return nil
			}
		}
		b.items = append(b.items, item{})
		return &b.items[len(b.items)-1]
	}
	finish := func(err error) {
		if b == nil && !get() {
			return
		}
		b.err = err
		send()
	}
	// A panic here (a bug) would end the process from a goroutine no
	// caller can recover in: end the run with an error instead, so that
	// batch goes on with the next capture.
	defer func() {
		if p := recover(); p != nil {
			finish(fmt.Errorf("h2scope internal error while reading the capture (a bug: please report it with this capture): %v", p))
		}
	}()
	for {
		if packets&1023 == 0 && ctx.Err() != nil {
			finish(ctx.Err())
			return
		}
		p, err := r.Next()
		if err == io.EOF {
			finish(io.EOF)
			return
		}
		if err != nil {
			var e *Error
			if !errors.As(err, &e) {
				finish(err)
				return
			}
			it := add(0)
			if it == nil {
				return
			}
			it.kind, it.fault = itemFault, e
			continue
		}
		packets++
		bytes += uint64(len(p.Data))
		if progress && packets%ProgressInterval == 0 {
			it := add(0)
			if it == nil {
				return
			}
			it.kind, it.read = itemProgress, r.BytesRead()
		}
		if sec := r.Secrets(); len(sec) > nsecrets {
			it := add(0)
			if it == nil {
				return
			}
			it.kind, it.secrets = itemSecrets, sec[nsecrets:len(sec):len(sec)]
			nsecrets = len(sec)
		}
		res, _ := dec.Decode(p.LinkType, p.Data, p.OrigLen, &seg)
		if res.Kind != layer.KindTCP {
			continue
		}
		seg.Ref = p.Ref
		fingerprint(&seg)
		it := add(len(seg.Payload))
		if it == nil {
			return
		}
		it.kind, it.seg = itemSegment, seg
		if n := len(seg.Payload); n > cap(b.buf)-len(b.buf) {
			// Larger than a batch buffer: a copy of its own.
			it.seg.Payload = append([]byte(nil), seg.Payload...)
		} else if seg.Payload != nil {
			off := len(b.buf)
			b.buf = append(b.buf, seg.Payload...)
			it.seg.Payload = b.buf[off : off+n : off+n]
		}
	}
}
