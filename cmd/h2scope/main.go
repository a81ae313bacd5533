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
	"syscall"
)

func main() {
	// A write to a closed pipe (h2scope ... | head) returns EPIPE, which
	// ends printing quietly, instead of killing h2scope before it has
	// written its files.
	signal.Ignore(syscall.SIGPIPE)
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}
