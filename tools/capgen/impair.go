package main

import (
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"time"

	"github.com/h2scope/h2scope/tools/capgen/truth"
)

// impairSeed seeds the choice of packets for tcp-impaired. Changing it
// changes the committed capture.
const impairSeed = 1

// retransmitDelay is how long after the frame it follows a retransmitted
// copy comes: Linux's minimum retransmission timeout. Far longer than the
// round trip on lo, so Wireshark too calls the copy a retransmission
// rather than an out-of-order segment.
const retransmitDelay = 200 * time.Millisecond

// impairPlan says how many edits of each kind to make.
type impairPlan struct {
	seed                      uint64
	reorder, retransmit, drop int
}

// splitmix is SplitMix64: a fixed, tiny generator, so that the choice of
// packets depends on the seed alone and never on a library's version.
type splitmix uint64

func (s *splitmix) next() uint64 {
	*s += 0x9e3779b97f4a7c15
	z := uint64(*s)
	z = (z ^ z>>30) * 0xbf58476d1ce4e5b9
	z = (z ^ z>>27) * 0x94d049bb133111eb
	return z ^ z>>31
}

// intn returns a number in [0, n).
func (s *splitmix) intn(n int) int { return int(s.next() % uint64(n)) }

// segInfo is a frame of the base capture seen by impair.
type segInfo struct {
	tcpInfo
	conn connKey
	dir  int // 0 c2s, 1 s2c
	next int // index of the next data segment of the same direction, -1 if none
	prev int // index of the previous one, -1 if none
	end  int // index of the connection's first FIN or RST frame
}

// An impairEdit is an edit with the connection still named by connKey.
type impairEdit struct {
	truth.Edit
	conn connKey
}

// impair rewrites a capture deterministically: it swaps plan.reorder pairs
// of adjacent data segments, repeats plan.retransmit data segments a few
// frames later and removes plan.drop data segments from the middle of a
// transfer. It touches only frames with payload and no SYN, FIN or RST, and
// never two edits within two frames of each other, so each edit stands
// alone. It returns the new frames and the edits, in original frame order.
func impair(pkts []packet, serverPort uint16, plan impairPlan) ([]packet, []impairEdit, error) {
	type stream struct {
		conn connKey
		dir  int
	}
	n := len(pkts)
	segs := make([]segInfo, n)
	last := make(map[stream]int) // last data segment index
	ends := make(map[connKey]int)
	ct := newConnTracker(serverPort)
	for i, p := range pkts {
		t, ok := parseTCP(p.data)
		if !ok {
			return nil, nil, fmt.Errorf("frame %d: not an IPv4 TCP segment", i+1)
		}
		k, dir, ok := ct.track(t)
		if !ok {
			return nil, nil, fmt.Errorf("frame %d: not to or from port %d", i+1, serverPort)
		}
		s := segInfo{tcpInfo: t, conn: k, dir: dir, next: -1, prev: -1}
		if t.flags&(flagFIN|flagRST) != 0 {
			if _, ok := ends[k]; !ok {
				ends[k] = i
			}
		}
		if t.isData() {
			k := stream{s.conn, s.dir}
			if j, ok := last[k]; ok {
				s.prev = j
				segs[j].next = i
			}
			last[k] = i
		}
		segs[i] = s
	}
	for i := range segs {
		segs[i].end = n
		if e, ok := ends[segs[i].conn]; ok {
			segs[i].end = e
		}
	}
	// contiguous reports whether data segment j directly follows i.
	contiguous := func(i, j int) bool {
		return i >= 0 && j >= 0 && segs[i].seq+uint32(segs[i].payloadLen) == segs[j].seq
	}

	used := make([]bool, n)
	free := func(lo, hi int) bool { // frames lo-2 .. hi+2 untouched so far
		for i := max(lo-2, 0); i <= min(hi+2, n-1); i++ {
			if used[i] {
				return false
			}
		}
		return true
	}
	rng := splitmix(plan.seed)
	// pick chooses an index among candidates that ok accepts, preferring
	// direction dir.
	pick := func(dir int, ok func(i int) bool) (int, bool) {
		var cands []int
		for _, wantDir := range []int{dir, 1 - dir} {
			for i := range segs {
				if segs[i].dir == wantDir && segs[i].isData() && ok(i) {
					cands = append(cands, i)
				}
			}
			if len(cands) > 0 {
				return cands[rng.intn(len(cands))], true
			}
		}
		return 0, false
	}

	dropped := make([]bool, n)
	swapped := make([]bool, n) // i is the first of a swapped pair
	copyAfter := make(map[int][]int)
	type chosen struct {
		op     string
		frames []int // 0-based
		after  int   // retransmit: the copy follows this frame
	}
	var picks []chosen

	for k := range plan.drop {
		i, ok := pick(k%2, func(i int) bool {
			s := segs[i]
			return contiguous(s.prev, i) && contiguous(i, s.next) && free(i, i)
		})
		if !ok {
			return nil, nil, errors.New("impair: no data segment left to drop")
		}
		used[i], dropped[i] = true, true
		picks = append(picks, chosen{op: truth.OpDrop, frames: []int{i}})
	}
	for k := range plan.reorder {
		i, ok := pick(k%2, func(i int) bool {
			return segs[i].next == i+1 && contiguous(i, i+1) && free(i, i+1)
		})
		if !ok {
			return nil, nil, errors.New("impair: no adjacent data segments left to swap")
		}
		used[i], used[i+1], swapped[i] = true, true, true
		picks = append(picks, chosen{op: truth.OpReorder, frames: []int{i, i + 1}})
	}
	for k := range plan.retransmit {
		gap := 3 + int(rng.next()%4)
		i, ok := pick(k%2, func(i int) bool {
			return i+gap < segs[i].end && free(i, i+gap)
		})
		if !ok {
			return nil, nil, errors.New("impair: no data segment left to retransmit")
		}
		for j := i; j <= i+gap; j++ {
			used[j] = true
		}
		copyAfter[i+gap] = append(copyAfter[i+gap], i)
		picks = append(picks, chosen{op: truth.OpRetransmit, frames: []int{i}, after: i + gap})
	}

	// Lay out the new capture. Frames keep the time slots of the original
	// positions, so time never goes back. A copy comes retransmitDelay
	// after the frame it follows, as after a retransmission timeout, and
	// every later frame shifts by as much.
	out := make([]packet, 0, n+plan.retransmit)
	newPos := make([]int, n)  // 0-based position of original i, -1 if dropped
	copyPos := make([]int, n) // position of the copy of original i
	var delay time.Duration
	for i := 0; i < n; i++ {
		newPos[i] = -1
		switch {
		case dropped[i]:
			continue
		case swapped[i]:
			out = append(out, packet{ts: pkts[i].ts.Add(delay), data: pkts[i+1].data})
			out = append(out, packet{ts: pkts[i+1].ts.Add(delay), data: pkts[i].data})
			newPos[i+1], newPos[i] = len(out)-2, len(out)-1
			i++
		default:
			out = append(out, packet{ts: pkts[i].ts.Add(delay), data: pkts[i].data})
			newPos[i] = len(out) - 1
		}
		for _, c := range copyAfter[i] {
			delay += retransmitDelay
			out = append(out, packet{ts: pkts[i].ts.Add(delay), data: pkts[c].data})
			copyPos[c] = len(out) - 1
		}
	}

	slices.SortFunc(picks, func(a, b chosen) int { return a.frames[0] - b.frames[0] })
	edits := make([]impairEdit, 0, len(picks))
	for _, p := range picks {
		s := segs[p.frames[0]]
		e := impairEdit{conn: s.conn, Edit: truth.Edit{
			Op:        p.op,
			Client:    netip.AddrPortFrom(netip.AddrFrom4([4]byte{127, 0, 0, 1}), s.conn.port).String(),
			Dir:       [2]string{"c2s", "s2c"}[s.dir],
			Seq:       s.seq,
			NewFrames: []int{},
		}}
		for _, f := range p.frames {
			e.Frames = append(e.Frames, f+1)
			e.Len += segs[f].payloadLen
			if newPos[f] >= 0 {
				e.NewFrames = append(e.NewFrames, newPos[f]+1)
			}
		}
		if p.op == truth.OpRetransmit {
			e.NewFrames = append(e.NewFrames, copyPos[p.frames[0]]+1)
		}
		edits = append(edits, e)
	}
	return out, edits, nil
}

// deriveImpaired makes tcp-impaired from a capture of http1-transfer.
func deriveImpaired(base *result) (*result, error) {
	ap, err := netip.ParseAddrPort(base.truth.Server)
	if err != nil {
		return nil, err
	}
	plan := impairPlan{seed: impairSeed, reorder: 3, retransmit: 3, drop: 3}
	pkts, iedits, err := impair(base.pkts, ap.Port(), plan)
	if err != nil {
		return nil, err
	}
	keys, err := truthKeys(base.truth.Connections)
	if err != nil {
		return nil, err
	}
	edits := make([]truth.Edit, len(iedits))
	for i, e := range iedits {
		j := slices.Index(keys, e.conn)
		if j < 0 {
			return nil, fmt.Errorf("edit on connection %d from port %d, not in the truth", e.conn.nth+1, e.conn.port)
		}
		edits[i] = e.Edit
		edits[i].Conn = base.truth.Connections[j].ID
	}
	t := *base.truth
	t.Connections = slices.Clone(t.Connections)
	t.DerivedFrom = &truth.Derivation{
		Scenario: base.truth.Scenario,
		How: "seeded SplitMix64 choice among data segments (payload, no SYN/FIN/RST); " +
			strconv.Itoa(plan.reorder) + " adjacent same-direction pairs swapped, keeping time slots; " +
			strconv.Itoa(plan.retransmit) + " segments repeated 3 to 6 frames later, same bytes, 200 ms (a minimum RTO) after the frame before, later frames shifted as much; " +
			strconv.Itoa(plan.drop) + " mid-transfer segments removed and never re-sent",
		Seed:       plan.seed,
		BaseFrames: len(base.pkts),
		Edits:      edits,
	}
	for _, e := range edits {
		switch e.Op {
		case truth.OpReorder:
			t.Expect.OutOfOrder++
		case truth.OpRetransmit:
			t.Expect.Retransmissions++
		case truth.OpDrop:
			t.Expect.LostSegments++
			t.Expect.LostBytes += int64(e.Len)
			c := &t.Connections[e.Conn-1]
			if c.MissedBytes == nil {
				c.MissedBytes = new(truth.Bytes)
			}
			if e.Dir == "c2s" {
				c.MissedBytes.C2S += int64(e.Len)
			} else {
				c.MissedBytes.S2C += int64(e.Len)
			}
		}
	}
	return &result{pkts: pkts, truth: &t}, nil
}
