package tcp

import (
	"math"
	"math/rand/v2"
	"testing"
	"time"
)

// subClock is Clock as it was written first, deciding each sweep with
// Sub: the reference TestClockTick holds Clock to.
type subClock struct{ now, last time.Time }

func (k *subClock) Tick(ts time.Time) (time.Time, bool) {
	switch {
	case k.now.IsZero():
		k.now = ts
	case ts.After(k.now):
		k.now = minTime(ts, k.now.Add(maxClockStep))
	}
	if k.now.Sub(k.last) < time.Second && !k.last.IsZero() {
		return k.now, false
	}
	k.last = k.now
	return k.now, true
}

// TestClockTick: Clock sweeps exactly when a clock deciding with Sub
// does, on random packet times (steps back, small and large steps
// forward, jumps past maxClockStep) and at the far end of time.Time,
// where a second after the last sweep cannot be represented.
func TestClockTick(t *testing.T) {
	const unixToInternal = (1969*365 + 1969/4 - 1969/100 + 1969/400) * 86400
	end := time.Unix(math.MaxInt64-unixToInternal, 999999999).UTC()
	seqs := [][]time.Time{
		{end, end, end},
		{end, time.Unix(1700000000, 0), time.Unix(1700000001, 0)},
		{end.Add(-30 * time.Second), end.Add(-time.Second / 2), end, end},
		{time.Unix(0, 1), time.Unix(0, 1), time.Unix(1, 0), time.Unix(1, 1)},
	}
	r := rand.New(rand.NewPCG(3, 4))
	for range 200 {
		ts := time.Unix(1700000000+r.Int64N(1000), r.Int64N(1e9))
		seq := make([]time.Time, 300)
		for i := range seq {
			switch r.IntN(10) {
			case 0:
				ts = ts.Add(-time.Duration(r.Int64N(int64(5 * time.Second))))
			case 1:
				ts = ts.Add(time.Duration(r.Int64N(int64(3 * time.Hour))))
			default:
				ts = ts.Add(time.Duration(r.Int64N(int64(700 * time.Millisecond))))
			}
			seq[i] = ts
		}
		seqs = append(seqs, seq)
	}
	sweeps := 0
	for n, seq := range seqs {
		var ref subClock
		var k Clock
		for i, ts := range seq {
			wantNow, wantSweep := ref.Tick(ts)
			now, sweep := k.Tick(ts)
			if !now.Equal(wantNow) || sweep != wantSweep {
				t.Fatalf("sequence %d, packet %d (%v): Tick = %v, %v; want %v, %v", n, i, ts, now, sweep, wantNow, wantSweep)
			}
			if sweep {
				sweeps++
			}
		}
	}
	if sweeps < 1000 {
		t.Errorf("only %d sweeps: the sequences do not exercise Tick", sweeps)
	}
}
