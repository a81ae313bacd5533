//go:build !amd64 && !arm64

package tcp

// prefetch does nothing where no prefetch instruction is wired up.
func prefetch(addr uintptr) {}

// prefetchLines does nothing where no prefetch instruction is wired up.
func prefetchLines(addr uintptr, n int) {}
