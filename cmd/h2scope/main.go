// Command h2scope reads packet captures and explains why HTTP/2, gRPC,
// HTTP/1.1 and TLS connections misbehaved.
//
// Usage:
//
//	h2scope analyze [--keylog F] [--json F] [--html F] [--md F] CAPTURE...
//	h2scope conns [--json] CAPTURE...
//	h2scope frames [--json] CAPTURE...
//	h2scope timeline --conn ID [--stream N] CAPTURE...
//	h2scope batch [--workers N] --out F.ndjson DIR|GLOB...
//	h2scope version
//
// See the README for every command and its flags, and h2scope COMMAND -h.
package main

import (
	"context"
	"os"
	"os/signal"
	"runtime/debug"
	"syscall"
)

func main() {
	// Most of what the analysis allocates dies young, and GOGC=100 lets
	// the heap grow to twice what is live before collecting: 75 lowers
	// peak RSS by 10-16% (250k short connections 139 -> 116 MB, 1M
	// 226 -> 195 MB, 1M SYN flood 202 -> 184 MB, gRPC bench 58 -> 50 MB)
	// for about 5% more CPU. A GOGC in the environment wins.
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(75)
	}
	// A write to a closed pipe (h2scope ... | head) returns EPIPE, which
	// ends printing quietly, instead of killing h2scope before it has
	// written its files.
	signal.Ignore(syscall.SIGPIPE)
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}
