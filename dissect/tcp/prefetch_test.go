package tcp

import (
	"reflect"
	"testing"
	"unsafe"
)

// TestLinesSpanned checks the count of cache lines prefetchObj fetches
// for objects at every alignment.
func TestLinesSpanned(t *testing.T) {
	for _, c := range []struct {
		addr, n uintptr
		want    int
	}{
		{0, 0, 0},
		{100, 0, 0},
		{0, 1, 1},
		{63, 1, 1},
		{63, 2, 2},
		{0, 64, 1},
		{0, 65, 2},
		{64, 64, 1},
		{8, 168, 3},  // a half at the start of its chunk
		{48, 168, 4}, // one straddling four lines
		{512, 512, 8},
		{520, 512, 9},
		{1<<20 - 1, 2, 2},
	} {
		if got := linesSpanned(c.addr, c.n); got != c.want {
			t.Errorf("linesSpanned(%d, %d) = %d, want %d", c.addr, c.n, got, c.want)
		}
	}
}

// TestPrefetchObj: prefetching objects of every size and alignment,
// and nothing at all, changes nothing and does not fault.
func TestPrefetchObj(t *testing.T) {
	b := make([]byte, 4096)
	for i := range b {
		b[i] = byte(i)
	}
	for off := range 130 {
		for _, n := range []int{0, 1, 63, 64, 65, 168, 512, 1000} {
			prefetchObj(unsafe.Pointer(&b[off]), uintptr(n))
		}
	}
	prefetchLines(0, 0)
	prefetchLines(uintptr(unsafe.Pointer(&b[0])), -1)
	c := &Conn{}
	prefetchConn(c)
	for i := range b {
		if b[i] != byte(i) {
			t.Fatalf("byte %d changed", i)
		}
	}
	if !reflect.DeepEqual(*c, Conn{}) {
		t.Fatal("prefetchConn changed the Conn")
	}
}
