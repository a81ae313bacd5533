//go:build amd64 || arm64

package tcp

// prefetch asks the processor to start bringing the cache line at addr
// into its caches, and returns at once: a hint, which cannot fault and
// changes nothing the program can observe. Go has no such call; the
// runtime's own (internal/runtime/sys.Prefetch) cannot be imported.
//
//go:noescape
func prefetch(addr uintptr)

// prefetchLines is prefetch of the n cache lines from the one at addr
// on, 64 bytes apart (n <= 0 fetches none).
//
//go:noescape
func prefetchLines(addr uintptr, n int)
