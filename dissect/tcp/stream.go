package tcp

import (
	"hash/crc32"
	"sort"

	"github.com/h2scope/h2scope/dissect/event"
)

// A StreamHandler receives one TCP connection's payload, direction by
// direction, in sequence order. b is valid only during the call.
type StreamHandler interface {
	// Data delivers the next in-order bytes of dir; at is the frame whose
	// segment carried them.
	Data(dir event.Dir, b []byte, at event.Ref)
	// Gap reports n bytes of dir that the capture lost; at is the frame
	// that revealed the loss.
	Gap(dir event.Dir, n int, at event.Ref)
	// Close reports the end of dir: a FIN after all its data (reset false),
	// a RST (reset true), or the end of the input or an idle timeout
	// (reset false).
	Close(dir event.Dir, reset bool, at event.Ref)
}

type discard struct{}

func (discard) Data(event.Dir, []byte, event.Ref) {}
func (discard) Gap(event.Dir, int, event.Ref)     {}
func (discard) Close(event.Dir, bool, event.Ref)  {}

// pending is a buffered out-of-order chunk. A nil data with n > 0 stands for
// bytes known to exist but not captured (snap length).
type pending struct {
	seq  uint32
	n    int
	data []byte
	ref  event.Ref
}

// recentSeg summarises a delivered segment (its fingerprint), to tell a
// faithful retransmission from one with different bytes.
type recentSeg struct {
	seq uint32
	n   int
	sum uint32
}

const recentSegs = 8

// Each buffered chunk is charged its bookkeeping as well as its bytes, and
// a direction holds at most maxPending chunks, so tiny out-of-order
// segments cannot use more memory or time than the caps suggest.
const (
	pendOverhead = 64
	maxPending   = 4096
)

// stream is one direction's reassembly state.
type stream struct {
	started bool
	next    uint32
	finSet  bool
	fin     uint32
	closed  bool
	pend    []pending
	pbytes  int
	recent  [recentSegs]recentSeg
	nrecent int
	// cut is set when the handover (Tracker.endStreams) ended the stream
	// before its FIN: [cutFrom, cutTo) was declared lost then, and what
	// of it arrives later is late payload.
	cut            bool
	cutFrom, cutTo uint32
}

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// fingerprintEdge is how many bytes at each end of a segment fingerprint
// reads.
const fingerprintEdge = 128

// Fingerprint summarises a segment's payload for telling a faithful
// retransmission from a conflicting one: a CRC-32C of its first and last
// 128 bytes. Checksumming every byte of every segment cost a sixth of the
// whole pipeline; rewritten retransmissions (injected or corrupted
// content) differ near their edges in practice, and a conflict confined to
// the middle of a large segment goes unnoticed.
//
// A Tracker fingerprints every payload it delivers. A caller that reads
// packets on another goroutine can compute it there, while the bytes are
// still in that core's cache, and pass it in layer.Segment.Sum.
func Fingerprint(b []byte) uint32 {
	if len(b) <= 2*fingerprintEdge {
		return crc32.Checksum(b, castagnoli)
	}
	sum := crc32.Update(0, castagnoli, b[:fingerprintEdge])
	return crc32.Update(sum, castagnoli, b[len(b)-fingerprintEdge:])
}

// sum is the fingerprint of the bytes it travels with, when the caller
// computed it (known); otherwise it is computed when needed.
type sum struct {
	v     uint32
	known bool
}

// of returns the fingerprint of b, which s travels with.
func (s sum) of(b []byte) uint32 {
	if s.known {
		return s.v
	}
	return Fingerprint(b)
}

// reasm is the reassembly side of a Tracker: it owns the buffer budget.
type reasm struct {
	perConn    int
	total      int
	used       int
	overflow   uint64
	newHandler func(*Conn) StreamHandler
}

// handler returns c's handler, asking Options.NewHandler for it the first
// time.
func (r *reasm) handler(c *Conn) StreamHandler {
	if c.handler == nil {
		c.handler = discard{}
		if r.newHandler != nil {
			if h := r.newHandler(c); h != nil {
				c.handler = h
			}
		}
	}
	return c.handler
}

// deliver hands in-order bytes (or a snap-length hole) to the handler.
func (r *reasm) deliver(c *Conn, dir event.Dir, st *stream, data []byte, n int, ref event.Ref, fp sum) {
	if data == nil {
		r.gap(c, dir, st, n, ref)
		return
	}
	i := st.nrecent % recentSegs
	st.recent[i] = recentSeg{seq: st.next, n: n, sum: fp.of(data)}
	st.nrecent++
	st.next += uint32(n)
	c.StreamBytes.Add(dir, uint64(n))
	r.handler(c).Data(dir, data, ref)
}

func (r *reasm) gap(c *Conn, dir event.Dir, st *stream, n int, ref event.Ref) {
	if n <= 0 {
		return
	}
	st.next += uint32(n)
	c.StreamBytes.Add(dir, uint64(n))
	c.MissedBytes += uint64(n)
	c.hist.gap(dir)
	r.handler(c).Gap(dir, n, ref)
}

// segment adds n payload bytes of dir starting at seq; data holds the
// captured part (it may be shorter than n), whose fingerprint fp may be
// known.
func (r *reasm) segment(c *Conn, dir event.Dir, seq uint32, data []byte, n int, ref event.Ref, fp sum) {
	st := &c.streams[dir]
	if st.closed || n <= 0 {
		if st.cut && n > 0 {
			r.late(c, st, seq, n)
		}
		return
	}
	if !st.started {
		st.started = true
		st.next = seq
	}
	if len(data) > n {
		data, fp = data[:n], sum{}
	}
	if len(data) < n {
		r.segment(c, dir, seq, data, len(data), ref, fp)
		r.hole(c, dir, seq+uint32(len(data)), n-len(data), ref)
		return
	}
	if seqLT(seq, st.next) {
		off := int(st.next - seq)
		if off >= n {
			r.checkRetransmit(c, st, seq, data, fp)
			return
		}
		seq, data, n, fp = st.next, data[off:], n-off, sum{}
	}
	if seq == st.next {
		r.deliver(c, dir, st, data, n, ref, fp)
		r.drain(c, dir, st)
		return
	}
	if seq-st.next > maxHole {
		// Far beyond any window: a bogus sequence number, not a hole.
		c.Anomaly("segment_out_of_window")
		return
	}
	r.buffer(c, dir, st, seq, data, n, ref)
}

// late counts the bytes of a segment at seq (n long) arriving after the
// handover within the part of a stream it declared lost.
func (r *reasm) late(c *Conn, st *stream, seq uint32, n int) {
	from, to := seq, seq+uint32(n)
	if seqLT(from, st.cutFrom) {
		from = st.cutFrom
	}
	if seqGT(to, st.cutTo) {
		to = st.cutTo
	}
	if seqLT(from, to) {
		c.anomalyN("late_payload_bytes", int(to-from))
	}
}

// maxHole is the largest hole reassembly believes in: no receive window is
// larger (RFC 7323 caps it at 1 GiB), and a segment further ahead than
// this is a bogus sequence number rather than the end of a loss.
const maxHole = 1 << 30

// hole records n bytes at seq that exist but were not captured.
func (r *reasm) hole(c *Conn, dir event.Dir, seq uint32, n int, ref event.Ref) {
	st := &c.streams[dir]
	if n <= 0 || st.closed {
		return
	}
	c.Anomaly("snaplen_truncated")
	if seqLT(seq, st.next) {
		return
	}
	if seq == st.next {
		r.gap(c, dir, st, n, ref)
		r.drain(c, dir, st)
		return
	}
	r.buffer(c, dir, st, seq, nil, n, ref)
}

// checkRetransmit compares a fully old segment with the delivered one of the
// same extent, when that one is still remembered; fp is data's
// fingerprint if known.
func (r *reasm) checkRetransmit(c *Conn, st *stream, seq uint32, data []byte, fp sum) {
	for i := range min(st.nrecent, recentSegs) {
		s := st.recent[i]
		if s.seq == seq && s.n == len(data) {
			if s.sum != fp.of(data) {
				c.Anomaly("conflicting_overlap")
			}
			return
		}
	}
}

// buffer stores an out-of-order chunk; bytes already buffered win.
func (r *reasm) buffer(c *Conn, dir event.Dir, st *stream, seq uint32, data []byte, n int, ref event.Ref) {
	end := seq + uint32(n)
	// The first buffered chunk that ends after seq.
	i := sort.Search(len(st.pend), func(k int) bool { return seqGT(st.pend[k].seq+uint32(st.pend[k].n), seq) })
	for seqLT(seq, end) {
		// Part before the next buffered chunk is new.
		var stop uint32 = end
		if i < len(st.pend) && seqLT(st.pend[i].seq, end) {
			stop = st.pend[i].seq
		}
		if seqLT(seq, stop) {
			k := int(stop - seq)
			var cp []byte
			if data != nil {
				cp = append([]byte(nil), data[:k]...)
				data = data[k:]
			}
			st.pend = append(st.pend, pending{})
			copy(st.pend[i+1:], st.pend[i:])
			st.pend[i] = pending{seq: seq, n: k, data: cp, ref: ref}
			st.pbytes += k + pendOverhead
			r.used += k + pendOverhead
			i++
			seq = stop
			continue
		}
		// Overlap with buffered chunk i: first seen wins.
		p := st.pend[i]
		pend := p.seq + uint32(p.n)
		if seqGT(pend, end) {
			pend = end
		}
		k := int(pend - seq)
		if data != nil && p.data != nil {
			off := int(seq - p.seq)
			if string(p.data[off:off+k]) != string(data[:k]) {
				c.Anomaly("conflicting_overlap")
			}
		}
		if data != nil {
			data = data[k:]
		}
		seq = pend
		i++
	}
	if st.pbytes > r.perConn || r.used > r.total || len(st.pend) > maxPending {
		r.overflow++
		c.Anomaly("reassembly_buffer_overflow")
		r.skip(c, dir, st, ref)
	}
}

// skip gives up waiting for the hole before the first buffered chunk.
func (r *reasm) skip(c *Conn, dir event.Dir, st *stream, ref event.Ref) {
	if len(st.pend) == 0 {
		return
	}
	r.gap(c, dir, st, int(st.pend[0].seq-st.next), ref)
	r.drain(c, dir, st)
}

// drain delivers buffered chunks that have become contiguous.
func (r *reasm) drain(c *Conn, dir event.Dir, st *stream) {
	k := 0
	for k < len(st.pend) && seqLE(st.pend[k].seq, st.next) {
		p := st.pend[k]
		k++
		st.pbytes -= p.n + pendOverhead
		r.used -= p.n + pendOverhead
		off := int(st.next - p.seq)
		if off >= p.n {
			continue
		}
		var d []byte
		if p.data != nil {
			d = p.data[off:]
		}
		r.deliver(c, dir, st, d, p.n-off, p.ref, sum{})
	}
	if k > 0 {
		n := copy(st.pend, st.pend[k:])
		clear(st.pend[n:])
		st.pend = st.pend[:n]
	}
	r.maybeClose(c, dir, st, event.Ref{})
}

// ackTo treats an acknowledgement of seq by the peer: bytes of dir below it
// that were never seen are lost to the capture.
func (r *reasm) ackTo(c *Conn, dir event.Dir, ack uint32, ref event.Ref) {
	st := &c.streams[dir]
	if !st.started || st.closed || c.StreamBytes.Get(dir) == 0 && len(st.pend) == 0 {
		// Before any payload an acknowledgement proves nothing lost: it
		// may be a challenge ACK with an unrelated number.
		return
	}
	target := ack
	if seqGT(target, st.next+maxHole) {
		c.Anomaly("ack_out_of_window")
		return
	}
	if st.finSet && seqGT(target, st.fin) {
		target = st.fin
	}
	for seqLT(st.next, target) {
		if len(st.pend) > 0 && seqLT(st.pend[0].seq, target) {
			r.skip(c, dir, st, ref)
			continue
		}
		r.gap(c, dir, st, int(target-st.next), ref)
		r.drain(c, dir, st)
	}
}

// setFIN records the sequence number of dir's FIN.
func (r *reasm) setFIN(c *Conn, dir event.Dir, fin uint32, ref event.Ref) {
	st := &c.streams[dir]
	if st.finSet {
		return
	}
	if !st.started {
		st.started = true
		st.next = fin
	}
	st.finSet = true
	st.fin = fin
	r.maybeClose(c, dir, st, ref)
}

func (r *reasm) maybeClose(c *Conn, dir event.Dir, st *stream, ref event.Ref) {
	if st.finSet && !st.closed && st.next == st.fin {
		if ref.Frame == 0 {
			ref = c.lastRef
		}
		st.closed = true
		r.handler(c).Close(dir, false, ref)
	}
}

// end flushes dir: buffered chunks are delivered with gaps between them,
// then the handler is told the direction closed.
func (r *reasm) end(c *Conn, dir event.Dir, reset bool, ref event.Ref) {
	st := &c.streams[dir]
	for !st.closed && len(st.pend) > 0 {
		r.skip(c, dir, st, ref)
	}
	if !st.closed && st.finSet && !reset && seqLT(st.next, st.fin) {
		r.gap(c, dir, st, int(st.fin-st.next), ref)
	}
	if !st.closed {
		st.closed = true
		r.handler(c).Close(dir, reset, ref)
	}
	// Bytes buffered beyond a FIN are dropped with the stream.
	r.used -= st.pbytes
	st.pbytes = 0
	st.pend = nil
}
