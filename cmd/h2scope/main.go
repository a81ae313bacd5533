// Command h2scope reads packet captures and explains why HTTP/2, gRPC,
// HTTP/1.1 and TLS connections misbehaved.
//
// Usage:
//
//	h2scope conns [--json] CAPTURE...
//
// See the README for every command and its flags.
package main

import (
	"context"
	"os"
	"os/signal"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}
