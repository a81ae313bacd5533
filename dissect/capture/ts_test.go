package capture

import (
	"math"
	"testing"
	"time"
)

// TestWritableTS checks writableTS against the year it stands for, around
// the bounds and at the extremes of time.Unix.
func TestWritableTS(t *testing.T) {
	var secs []int64
	for _, b := range []int64{-62167219200, 253402300799, 0, -1 << 62, 1 << 62, math.MinInt64, math.MaxInt64, math.MaxInt64 - 62135596800, math.MinInt64 + 62135596800} {
		for d := int64(-3); d <= 3; d++ {
			secs = append(secs, b+d)
		}
	}
	for i := int64(1); i < 1<<62; i *= 3 {
		secs = append(secs, i, -i, math.MaxInt64-i, math.MinInt64+i)
	}
	for _, s := range secs {
		for _, ns := range []int64{0, 999999999} {
			ts := time.Unix(s, ns).UTC()
			y := ts.Year()
			if got, want := writableTS(ts), y >= 0 && y <= 9999; got != want {
				t.Errorf("writableTS(time.Unix(%d, %d)) = %v, want %v (year %d)", s, ns, got, want, y)
			}
		}
	}
}
