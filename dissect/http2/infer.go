package http2

import "github.com/h2scope/h2scope/dissect/event"

// minInferHits is how many times a sender must be pinned at the same
// ceiling before its stalls are inferred: once could just be the end of
// its data.
const minInferHits = 2

// maxEarly bounds the WINDOW_UPDATE frames remembered to put a DATA frame
// emitted late back in capture order (see Conn.spendGuess).
const maxEarly = 32

// early is a WINDOW_UPDATE applied to a window being inferred.
type early struct {
	snd    event.Dir // the sender whose window it grew
	stream uint32
	inc    int64
	at     event.Ref
}

// guess infers the stalls of a flow-control window whose starting value
// W0 the capture did not show. It keeps the deficit d, the bytes the
// sender's DATA consumed less the increments granted since tracking
// began. A conforming sender never overdraws, so W0 - d >= 0 throughout
// and W0 >= max d; under the tightest estimate, W0 = max d, the window
// was zero exactly where d reached its maximum. The maximum is final only
// when tracking ends, so the intervals starting at the DATA frames that
// reached the running maximum are kept as candidates, and those below a
// new maximum dropped. The zero value tracks from a deficit of zero (a
// window that was not negative when the capture started).
type guess struct {
	d, max int64
	// hits counts the DATA frames that brought d to max since max last
	// rose, including those past the bound on cands; alone counts those
	// of them that the frame's stream window does not explain (see
	// spend).
	hits, alone int
	// cands holds the intervals starting at those frames, at most the
	// bound given to spend; open says the last one has not ended.
	cands []stallRec
	open  bool
}

// add raises the deficit by n bytes, dropping the candidates below a new
// maximum.
func (g *guess) add(n int64) {
	g.d += n
	if g.d > g.max {
		g.max, g.hits, g.alone, g.open = g.d, 0, 0, false
		g.cands = g.cands[:0]
	}
}

// spend accounts n bytes of DATA sent by dir on stream (0 for the
// connection's window) at at, and reports whether the frame reached the
// ceiling. start says the frame may begin a stall: it is not empty and,
// for a stream's window, does not end the stream. explained says, for
// the connection's window, that the frame also exhausted its stream's
// window (known, or reaching its running maximum): the sender may have
// been held back by that window alone, so the frame is no evidence that
// the connection's was pinned. At most limit candidates are kept.
func (g *guess) spend(n int64, start, explained bool, dir event.Dir, stream uint32, at event.Ref, limit int) bool {
	g.add(n)
	if !start || g.d < g.max {
		return false
	}
	g.hits++
	if !explained {
		g.alone++
	}
	if len(g.cands) >= limit {
		return true
	}
	g.cands = append(g.cands, stallRec{dir: dir, stream: stream, start: at, open: true, inferred: true})
	g.open = true
	return true
}

// grow applies an increment of inc bytes at at; a positive one ends the
// candidate in progress, by the frame named by.
func (g *guess) grow(inc int64, at event.Ref, by string) {
	if inc < 0 {
		g.add(-inc)
		return
	}
	g.d -= inc
	if inc > 0 && g.open {
		x := &g.cands[len(g.cands)-1]
		x.open, x.end, x.by = false, at, by
		g.open = false
	}
}

// stalls returns the candidates as inferred stalls when the ceiling was
// reached at least minInferHits times by frames it alone explains, and
// how many of those reached past the bound on candidates. The slice is
// g's own.
func (g *guess) stalls() ([]stallRec, int) {
	if g.alone < minInferHits {
		return nil, 0
	}
	return g.cands, g.hits - len(g.cands)
}

// settle ends tracking at at: the candidate in progress ends by the
// frame named by, the inferred stalls go to *dst (at most limit of them,
// the rest counted in *dropped), and g starts over.
func (g *guess) settle(at event.Ref, by string, dst *[]stallRec, dropped *int, limit int) {
	if g.open {
		x := &g.cands[len(g.cands)-1]
		x.open, x.end, x.by = false, at, by
	}
	xs, n := g.stalls()
	if dst != nil {
		*dropped += n
		for _, x := range xs {
			if len(*dst) >= limit {
				*dropped++
				continue
			}
			*dst = append(*dst, x)
		}
	}
	*g = guess{cands: g.cands[:0]}
}

// noteGrow remembers an increment applied to the inferred window of snd
// on stream (0: the connection's).
func (c *Conn) noteGrow(snd event.Dir, stream uint32, inc int64, at event.Ref) {
	c.early[c.earlyN%maxEarly] = early{snd: snd, stream: stream, inc: inc, at: at}
	c.earlyN++
	c.earlyTop[snd] = max(c.earlyTop[snd], at.Frame)
}

// spendGuess feeds g, the inferred window of dir on stream, with a DATA
// frame of n bytes (see guess.spend). A direction's frames are emitted
// late while it synchronises, so increments the other direction sent
// after the frame may already be applied: they are taken back while the
// frame is accounted, and the first of them ends the stall it starts.
func (c *Conn) spendGuess(g *guess, n int64, start, explained bool, dir event.Dir, stream uint32, at event.Ref, limit int) bool {
	var late int64
	var first event.Ref
	if at.Frame < c.earlyTop[dir] {
		for i := max(0, c.earlyN-maxEarly); i < c.earlyN; i++ {
			e := &c.early[i%maxEarly]
			if e.snd != dir || e.stream != stream || e.at.Frame <= at.Frame || e.inc <= 0 {
				continue
			}
			if late == 0 || e.at.Frame < first.Frame {
				first = e.at
			}
			late += e.inc
		}
	}
	g.d += late
	hit := g.spend(n, start, explained, dir, stream, at, limit)
	if late > 0 {
		g.grow(late, first, StallWindowUpdate)
	}
	return hit
}

// replayEarly follows a loss at at, after which the inference of every
// window started over: the increments remembered that came after at (the
// other direction's, applied while this one was out of step) are applied
// again, and the rest forgotten.
func (c *Conn) replayEarly(at event.Ref) {
	var keep [maxEarly]early
	n := 0
	for i := max(0, c.earlyN-maxEarly); i < c.earlyN; i++ {
		if e := c.early[i%maxEarly]; e.at.Frame > at.Frame {
			keep[n] = e
			n++
		}
	}
	copy(c.early[:], keep[:n])
	c.earlyN = n
	c.earlyTop = [2]uint64{}
	for _, e := range keep[:n] {
		c.earlyTop[e.snd] = max(c.earlyTop[e.snd], e.at.Frame)
		if e.stream == 0 {
			if s := &c.send[e.snd]; !s.known {
				s.guess.grow(e.inc, e.at, StallWindowUpdate)
			}
		} else if st := c.active[e.stream]; st != nil && !st.winKnown[e.snd] && !st.end[e.snd] {
			st.guess[e.snd].grow(e.inc, e.at, StallWindowUpdate)
		}
	}
}

// settleGuess ends the inference of dir's window on st.
func (c *Conn) settleGuess(dir event.Dir, st *sstate, at event.Ref, by string) {
	g := &st.guess[dir]
	if r := c.rec(st); r != nil {
		g.settle(at, by, &r.stalls, &r.stallsDropped, maxStreamStalls)
	} else {
		g.settle(at, by, nil, nil, 0)
	}
}

// settleConnGuess ends the inference of dir's connection window.
func (c *Conn) settleConnGuess(dir event.Dir, at event.Ref, by string) {
	c.send[dir].guess.settle(at, by, &c.stalls, &c.stallsDropped, maxConnStalls)
}

// exportGuess appends g's inferred stalls so far to *dst, within limit,
// counting the rest in *dropped, without changing g.
func exportGuess(g *guess, dst *[]Stall, dropped *int, limit int) {
	xs, n := g.stalls()
	*dropped += n
	for _, x := range xs {
		if len(*dst) >= limit {
			*dropped++
			continue
		}
		*dst = append(*dst, x.export())
	}
}
