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
// Capturing needs root (an AF_PACKET socket). See README.md.
package main
