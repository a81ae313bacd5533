// Command capgen produces h2scope's test captures: it runs real Go servers
// and clients on 127.0.0.1, captures their traffic on lo from Go while they
// run, and writes testdata/pcaps/NAME.pcapng with NAME.truth.json, what the
// programs themselves observed (schema in package truth).
//
// Usage:
//
//	capgen -out testdata/pcaps [-only NAME]   # regenerate all scenarios, or one
//	capgen -big FILE -size 500MB [-from NAME.pcapng]  # a large capture for benchmarks
//	capgen -list                              # list scenarios
//
// Scenarios cover HTTP/1.1 (net/http), gRPC over h2c (grpc-go, and gRPC by
// hand over golang.org/x/net/http2) and h2c with flow-control stalls
// (golang.org/x/net/http2), TLS 1.2 and 1.3 (session resumption accepted
// and refused, HTTP/2 and gRPC over TLS, handshake alerts; key logs beside
// the captures or in a Decryption Secrets Block), plus captures derived
// from those: impaired TCP, and captures that start mid-connection; and
// misbehaving connections each h2scope finding kind must report: reset
// storms (cancels, refused streams), connection churn, idle-timeout
// races, flow-control and TCP zero-window stalls, GOAWAYs, refused and
// unanswered SYNs. For HTTP/2 the server tees its
// own wire into an HTTP/2 parser, whose view the truth records and the
// capture is checked against.
//
// Stack scenarios (stacks*.go) are played instead by other stacks'
// programs, Debian's nginx, nghttpd, h2load, curl, python3-h2, openssl
// and haproxy, with a truth built from their own reports; they are
// written to testdata/pcaps/stacks.
//
// Capturing needs root (an AF_PACKET socket). See README.md.
package main
