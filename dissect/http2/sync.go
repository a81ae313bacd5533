package http2

import (
	"container/heap"
	"sort"

	"github.com/h2scope/h2scope/dissect/event"
)

// Resynchronisation bounds.
const (
	// syncWindow bounds the bytes held per direction while looking for a
	// frame boundary: room for three default-size frames and headers.
	syncWindow = 64 << 10
	// syncChain is the number of consecutive plausible frame headers that
	// settles a boundary, provided they span syncSpan bytes: a run of tiny
	// frames must be longer, as zero-heavy payloads (SETTINGS values, say)
	// read as short chains of small empty-ish frames.
	syncChain = 3
	syncSpan  = 128
	// maxMarks bounds the packet references kept for held bytes; past it
	// new bytes share the last one.
	maxMarks = 4096
	// settleChain bounds the headers followed per candidate by settle.
	settleChain = 64
	// keepCap bounds the capacity of a buffer kept for reuse once idle.
	keepCap = 4 << 10
)

// endMode says whether more bytes may follow those held.
type endMode uint8

const (
	endNone  endMode = iota // more bytes may come
	endCap                  // the window is full
	endGap                  // a gap follows: the held bytes end here
	endClose                // the direction ended
)

// mark says that held bytes [start, end) arrived in the packet ref;
// aligned is set when start is where that packet's bytes began.
type mark struct {
	start, end int
	ref        event.Ref
	aligned    bool
}

// cand is a candidate frame boundary whose chain of headers is being
// checked as bytes arrive.
type cand struct {
	p    int    // the candidate position
	next int    // position of the next header to check
	n    int    // plausible headers found so far
	open uint32 // stream whose header block awaits a CONTINUATION
	done int    // for a complete chain: where its last header ends
}

// candHeap orders waiting candidates by the length of held bytes they
// need before they can be checked further.
type candHeap []cand

// Len, Less, Swap, Push and Pop implement heap.Interface.
func (h candHeap) Len() int           { return len(h) }
func (h candHeap) Less(i, j int) bool { return h[i].next < h[j].next }
func (h candHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *candHeap) Push(x any)        { *h = append(*h, x.(cand)) }
func (h *candHeap) Pop() any {
	old := *h
	x := old[len(old)-1]
	*h = old[:len(old)-1]
	return x
}

// syncer holds one direction's bytes while it looks for a frame boundary.
// buf[:off] is consumed (skipped or parsed). Every position from off on is
// a candidate; the accepted one is the candidate whose chain of syncChain
// plausible headers completes first in the byte stream, so that what is
// accepted depends on the bytes alone, not on how they were split into
// packets. Chains that complete together have converged on the same
// headers; the one starting last is taken, as the others begin with a
// header whose length spans it.
type syncer struct {
	buf   []byte
	marks []mark
	off   int
	// fresh is set when the search must start over from off.
	fresh bool
	// evalTo is the next position not yet taken as a candidate.
	evalTo int
	wait   candHeap
	ties   []cand
	// strict and loose are the frame length bounds of this search.
	strict, loose uint32
	// client is set for the client's direction.
	client bool
}

// pending reports whether held bytes await parsing.
func (s *syncer) pending() bool { return s.off < len(s.buf) }

func (s *syncer) reset() {
	if cap(s.buf) > keepCap {
		s.buf, s.marks, s.wait, s.ties = nil, nil, nil, nil
	}
	s.buf, s.marks = s.buf[:0], s.marks[:0]
	s.off, s.evalTo = 0, 0
	s.wait = s.wait[:0]
}

// compact drops the consumed bytes.
func (s *syncer) compact() {
	if s.off == 0 {
		return
	}
	n := copy(s.buf, s.buf[s.off:])
	s.buf = s.buf[:n]
	k := 0
	for _, m := range s.marks {
		if m.end > s.off {
			if m.start < s.off {
				m.start, m.aligned = s.off, false
			}
			m.start -= s.off
			m.end -= s.off
			s.marks[k] = m
			k++
		}
	}
	s.marks = s.marks[:k]
	for i := range s.wait {
		s.wait[i].p -= s.off
		s.wait[i].next -= s.off
	}
	s.evalTo -= s.off
	s.off = 0
}

// syncAppend holds as much of b as the window allows and returns how much.
// aligned says b starts where the packet's bytes do.
func (c *Conn) syncAppend(h *half, b []byte, at event.Ref, aligned bool) int {
	s := &h.sy
	if s.off > 0 && len(s.buf)+len(b) > syncWindow {
		s.compact()
	}
	k := min(syncWindow-len(s.buf), len(b))
	if k <= 0 {
		return 0
	}
	start := len(s.buf)
	s.buf = append(s.buf, b[:k]...)
	if n := len(s.marks); n > 0 && (s.marks[n-1].ref.Frame == at.Frame && s.marks[n-1].ref.File == at.File || n >= maxMarks) {
		s.marks[n-1].end = len(s.buf)
	} else {
		s.marks = append(s.marks, mark{start: start, end: len(s.buf), ref: at, aligned: aligned})
	}
	return k
}

// skip counts n bytes of h given up while synchronising.
func (c *Conn) skip(h *half, n int) {
	if n > 0 {
		c.skipped[h.dir] += uint64(n)
		c.anomalyN("resync_skipped_bytes", n)
	}
}

// dropSync gives up the bytes h still holds (before a gap or at the end).
func (c *Conn) dropSync(h *half) {
	if h.st == stSync {
		c.skip(h, len(h.sy.buf)-h.sy.off)
		h.sy.fresh = true
	}
	h.sy.reset()
}

// drain looks for a frame boundary in the held bytes and parses from it.
func (c *Conn) drain(h *half, mode endMode) {
	s := &h.sy
	for {
		if h.st == stSync {
			if s.fresh {
				s.fresh = false
				s.evalTo, s.wait = s.off, s.wait[:0]
				s.strict, s.loose = c.syncLimits(h.dir)
				s.client = h.dir == event.C2S
			}
			pos, ok := c.search(h)
			if !ok {
				m := mode
				if m == endNone && len(s.buf) >= syncWindow {
					m = endCap
				}
				if m == endNone {
					return
				}
				if pos, ok = c.settle(h, m); !ok {
					drop := len(s.buf)
					if m == endCap {
						drop = max(s.off, len(s.buf)-(frameHeaderLen-1))
					}
					c.skip(h, drop-s.off)
					s.off, s.fresh = drop, true
					return
				}
			}
			c.skip(h, pos-s.off)
			s.off = pos
			h.st, h.hn, h.resync = stHeader, 0, true
			// Whatever h sent while it was out of step is lost, including
			// on streams opened meanwhile.
			c.loss(h.dir, s.marks[0].ref)
		}
		for s.off < len(s.buf) && h.st != stSync {
			i := 0
			for s.marks[i].end <= s.off {
				i++
			}
			s.off += c.parse(h, s.buf[s.off:s.marks[i].end], s.marks[i].ref)
		}
		if h.st != stSync {
			s.reset()
			return
		}
	}
}

// syncLimits returns the frame length bounds used to judge a header while
// synchronising: the receiver's SETTINGS_MAX_FRAME_SIZE when known, else
// the default 16384 (strict) and the 24-bit maximum (loose, tried only
// once no more bytes can help).
func (c *Conn) syncLimits(dir event.Dir) (strict, loose uint32) {
	if max, ok := c.maxFrameLen(dir); ok {
		return max, max
	}
	return defaultMaxFrameSize, maxFrameSizeLimit
}

// search takes the positions that have become checkable as candidates,
// checks the waiting candidates that the held bytes now reach, and returns
// the candidate whose chain completed first.
func (c *Conn) search(h *half) (int, bool) {
	s := &h.sy
	ties := s.ties[:0]
	consider := func(cd cand) {
		switch step(&cd, s.buf, s.strict, s.client) {
		case stepDone:
			switch {
			case len(ties) == 0 || cd.done < ties[0].done:
				ties = append(ties[:0], cd)
			case cd.done == ties[0].done:
				ties = append(ties, cd)
			}
		case stepWait:
			heap.Push(&s.wait, cd)
		}
	}
	for ; s.evalTo+frameHeaderLen <= len(s.buf); s.evalTo++ {
		if specs[s.buf[s.evalTo+3]] != nil { // else not a frame type
			consider(cand{p: s.evalTo, next: s.evalTo})
		}
	}
	for len(s.wait) > 0 && s.wait[0].next+frameHeaderLen <= len(s.buf) {
		consider(heap.Pop(&s.wait).(cand))
	}
	s.ties = ties
	if len(ties) == 0 {
		return 0, false
	}
	s.wait, s.fresh = s.wait[:0], true
	return c.breakTie(h, ties, s.strict), true
}

// breakTie chooses among chains that completed at the same header, so
// share their last frames. When the earlier chain passes through the later
// candidate's position, the later one is just its suffix: the earlier is
// kept. When the earlier chain's frame jumps over the later candidate,
// the two converged after different first frames, one of which is payload
// read as a header whose length happens to land on a real frame. As TCP
// segments mostly start at frame boundaries, the candidate at the start
// of a packet is then kept; failing that, the later one.
func (c *Conn) breakTie(h *half, ties []cand, maxLen uint32) int {
	s := &h.sy
	sort.Slice(ties, func(i, j int) bool { return ties[i].p < ties[j].p })
	best := ties[0].p
	for _, y := range ties[1:] {
		cd := cand{p: best, next: best}
		for cd.next < y.p && step1(&cd, s.buf, maxLen, s.client) {
		}
		if cd.next != y.p && !(s.aligned(best) && !s.aligned(y.p)) {
			best = y.p
		}
	}
	return best
}

// aligned reports whether held position p is where a packet's bytes began.
func (s *syncer) aligned(p int) bool {
	for _, m := range s.marks {
		if m.start == p {
			return m.aligned
		}
		if m.start > p {
			break
		}
	}
	return false
}

// settle picks a boundary once no more bytes can help (the window is
// full, or a gap or the end follows) and no chain completed. Each
// candidate from off is followed through all the bytes held; those whose
// chain is refuted are out, as are those with a single header unless
// (not at the window's cap) its frame ends exactly where the bytes do.
// The best chain ends exactly where the bytes do (not counted at the cap,
// where that is chance), then has the most headers; ties are broken as in
// search. Lengths up to the 24-bit maximum are tried if the strict bound
// finds nothing.
func (c *Conn) settle(h *half, m endMode) (int, bool) {
	s := &h.sy
	s.wait, s.fresh = s.wait[:0], true
	for _, max := range [...]uint32{s.strict, s.loose} {
		ties := s.ties[:0]
		var bestExact bool
		var bestN int
		for p := s.off; p+frameHeaderLen <= len(s.buf); p++ {
			if specs[s.buf[p+3]] == nil {
				continue // not a frame type
			}
			cd := cand{p: p, next: p}
			ok := true
			for cd.next+frameHeaderLen <= len(s.buf) && cd.n < settleChain {
				if ok = step1(&cd, s.buf, max, s.client); !ok {
					break
				}
			}
			exact := m != endCap && cd.next == len(s.buf)
			if !ok || cd.n < 2 && !exact {
				continue
			}
			switch {
			case len(ties) == 0 || exact && !bestExact || exact == bestExact && cd.n > bestN:
				ties, bestExact, bestN = append(ties[:0], cd), exact, cd.n
			case exact == bestExact && cd.n == bestN:
				ties = append(ties, cd)
			}
		}
		s.ties = ties
		if len(ties) > 0 {
			return c.breakTie(h, ties, max), true
		}
		if s.loose == s.strict {
			break
		}
	}
	return 0, false
}

// Outcomes of step.
const (
	stepWait    = iota // more bytes are needed
	stepRefuted        // a header in the chain is implausible
	stepDone           // syncChain plausible headers line up
)

// step follows cd's chain of frame headers through buf while they are
// plausible, until it has syncChain of them spanning syncSpan bytes.
func step(cd *cand, buf []byte, maxLen uint32, client bool) int {
	for cd.n < syncChain || cd.done-cd.p < syncSpan {
		if cd.next+frameHeaderLen > len(buf) {
			return stepWait
		}
		if !step1(cd, buf, maxLen, client) {
			return stepRefuted
		}
	}
	return stepDone
}

// step1 checks the header at cd.next, which must be in buf, and moves past
// its frame. A CONTINUATION must follow a header block left open on its
// stream (except as the first header), and nothing else may.
func step1(cd *cand, buf []byte, maxLen uint32, client bool) bool {
	fh, ok := ParseFrameHeader(buf[cd.next:])
	if !ok || !plausibleFrom(fh, maxLen, client) {
		return false
	}
	isCont := fh.Type == FrameContinuation
	if cd.open != 0 && (!isCont || fh.StreamID != cd.open) || cd.open == 0 && isCont && cd.n > 0 {
		return false
	}
	switch {
	case (fh.Type == FrameHeaders || fh.Type == FramePushPromise || isCont) && !fh.Flags.Has(FlagEndHeaders):
		cd.open = fh.StreamID
	case isCont:
		cd.open = 0
	}
	cd.n++
	cd.done = cd.next + frameHeaderLen
	cd.next = cd.done + int(fh.Length)
	return true
}
