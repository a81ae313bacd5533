// Package analyze turns dissected connections into findings: the answer
// h2scope gives, with the evidence (frames, timestamps, bytes), metrics, a
// confidence that reflects the capture's quality, and the setting to
// change.
//
// A Collector receives the dissectors' units (it is an event.Sink), each
// connection's application records once its streams have ended, and each
// finished connection, and gathers per connection the facts the
// detectors read (Conn). There is one detector per finding kind; each
// lives in its own file, whose doc comment says the signal it reads, its
// thresholds (Config, overridable by CLI flags), the false positives it
// avoids and its metrics.
//
// # Streaming
//
// The analysis streams, so that memory is bounded by the number of
// connections, not by their requests: when a connection's streams end
// (dissect.Options.OnApp: 5 s of capture time after it closed, or when it
// finishes), every detector and the tables observe its full records (HTTP/2 streams, gRPC
// calls, exchanges, resets, pings) and keep what they need — a
// connection's window stalls and GOAWAYs become findings at once, resets
// are kept only for servers without a storm yet, gRPC call durations
// (8 bytes a call) for exact percentiles — then the Collector's OnConn
// hook sees them (report.Builder builds the connection's record and
// timeline there), and the records are released: the connection stays
// as a summary (TCP and application summaries, SYN/FIN/RST refs, request
// count, first request), whose TCP summary is replaced by the final one
// when the connection finishes. Once the capture ends, the detectors report
// from what they kept, over every connection's summary. Stream runs this;
// Run and Analyze (over an Input whose connections hold their records)
// give the same result.
//
// The finding kinds are fixed by the design (see the Kind constants);
// their names and the fields of Finding are what users and other tools
// rely on, and are extended, never renamed.
package analyze
