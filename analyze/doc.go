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
// # Streaming and folding
//
// The analysis streams and folds, so that memory is bounded by the
// connections open and the pools, not by the connections finished or
// their requests. When a connection's streams end
// (dissect.Options.OnApp: 5 s of capture time after it closed, or when
// it finishes), every detector and the tables observe its full records
// (Conn.Records, and the application's HTTP/2 streams, gRPC calls and
// stalls) and keep what they need — a connection's window stalls and
// GOAWAYs become findings at once, resets are kept only for servers
// without a storm yet, gRPC call durations (8 bytes a call) for exact
// percentiles — then the Collector's OnConn hook sees them (Stream's
// ConnSink, the report's Builder), and the records are released (Records
// is nil). When the connection finishes, OnDone sees its final summary,
// and the detectors and tables fold it
// (TCP summary, SYN/FIN/RST refs, the facts connSummary derived) into
// per-pool state — reconnect_churn per (client, server, name, JA4),
// resumption_failure per (client, SNI, server), handshake_latency per
// server, syn_retransmit per server and host pair, the pool table —
// and let it go. That state holds exact counts and sums, the records
// order-dependent figures need up to a bound per pool (churnKeep,
// tlsKeep, hsExact, synKeep, poolSpans: 4096), a quantile sketch
// (relative error 1 %) past it, and a bounded evidence sample; a
// finding past a bound says which figures are estimates (metric
// "estimated"). Pools are bounded too: past maxPools (10,000), new
// clients fold into a "*" pool per server, whose heaviest clients a
// Space-Saving sketch keeps; a clientSet spares a connection from a
// client that owns no pool the lookups in full maps. Once the capture
// ends, the detectors report from that state alone. The Collector
// reuses each Conn once folded.
//
// Where there is a second CPU, a run that is not sharded analyses beside
// the dissection (async.go): the Collector, then the ConnSink's Done, run
// on goroutines of their own, fed in order with copies of what they
// read, so that the result is the same as on one goroutine
// (TestAsyncMatchesSerial).
//
// The state merges (State): the analysis of disjoint sets of
// connections, merged in any order, equals that of their union, so a
// capture split by connection into shards gives the same findings and
// tables (TestStateMerge). Stream runs the analysis; Run and Analyze
// (over an Input whose connections hold their records) give the same
// result. The Input's connections are for the report only: no detector
// reads them (Collector.DropConns keeps none).
//
// The finding kinds are fixed by the design (see the Kind constants);
// their names and the fields of Finding are what users and other tools
// rely on, and are extended, never renamed.
package analyze
