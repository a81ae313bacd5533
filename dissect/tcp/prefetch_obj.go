package tcp

import "unsafe"

// cacheLine is the cache line size prefetchLines steps by.
const cacheLine = 64

// linesSpanned returns how many cache lines the n bytes from addr on
// touch (none when n is 0).
func linesSpanned(addr, n uintptr) int {
	if n == 0 {
		return 0
	}
	return int((addr+n-1)/cacheLine - addr/cacheLine + 1)
}

// prefetchObj starts fetching every cache line of the n bytes at p: an
// object about to be read, long out of the cache, so that its misses
// overlap other work rather than stall its first reader. Like prefetch,
// it is a hint that changes nothing the program can observe.
func prefetchObj(p unsafe.Pointer, n uintptr) {
	prefetchLines(uintptr(p), linesSpanned(uintptr(p), n))
}

// prefetchConn starts fetching c whole (see prefetchObj).
func prefetchConn(c *Conn) { prefetchObj(unsafe.Pointer(c), unsafe.Sizeof(*c)) }
