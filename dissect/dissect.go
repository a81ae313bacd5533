// Package dissect turns capture files into typed units: it wires capture
// reading, link-layer decoding, TCP tracking and the protocol dissectors
// below it into one pass over the input.
//
// # Shards
//
// With Options.Shards above 1, Run's goroutine reads and decodes the
// captures and hands each TCP segment to one of that many workers, chosen
// by a hash of the two IP addresses of its connection (the same for both
// directions). Each worker runs what a run without shards does with a
// segment: its own connection tracker, dissectors and callbacks
// (Options.Shard), on its own goroutine. What is not TCP is counted by the
// reader, as without shards.
//
// Connections between the same two addresses share a worker, so that
// what TLS carries from one connection to another (the sessions a server
// issued, and their master secrets) is found as in a run without shards;
// a capture between a single pair of addresses therefore gets no
// parallelism.
//
// Three things a tracker takes from the whole capture are given to every
// worker by the reader, so that each connection is tracked, handed over
// and finished exactly as without shards:
//   - the capture clock (tcp.Clock), which drives the timeouts: each
//     segment carries the clock's time at it, and each sweep of the clock
//     (at most one per capture second) goes to every worker, in its place
//     in the capture (tcp.Tracker.AddTicked, Sweep);
//   - the key log: each worker dissects TLS with its own copy
//     (tls.KeyLog.Clone), to which the secrets of Decryption Secrets
//     Blocks are added in their place in the capture; Options.Keys gets
//     them too, and the workers' lookups are added to its counts at the
//     end;
//   - connection IDs: see below.
//
// The bounds of tcp.Options (MaxConns, MaxBufferTotal) are shared out
// between the workers, each holding its part; a capture that reaches
// them is tracked differently (another connection is evicted first, or a
// hole is given up sooner) than without shards.
//
// # Connection IDs in a sharded run
//
// A connection's ID is its rank in order of first frame over the whole
// capture (Wireshark's tcp.stream), which a worker cannot know when the
// connection starts: it depends on how many connections the other
// workers have started before that frame. So while a sharded run goes on,
// Conn.ID and the events' Conn are provisional: the number of the
// connection's first frame, unique and in the same order as the final
// IDs (a run with shards takes at most 2^32-1 frames). After the run,
// Stats.IDs.Final maps a provisional ID to the final one; it costs 4 bytes
// per connection. Callers that keep connections or findings by ID can
// merge the workers' results by provisional ID (their order is the final
// order) and rename them once at the end; callers that must show final
// IDs while the capture is read (frames, timeline) run without shards.
//
// Within one connection, events and callbacks come in the same order as
// without shards; between connections of different workers the order
// differs. Stats of the workers add up (Stats.Add, tcp.Stats.Add).
//
// # One shard of several runs
//
// Options.ShardOf{Index: i, Count: k} makes a run shard i of a capture
// split over k runs, which may be on k machines: the run reads and
// decodes the whole capture, as a sharded run's reader does, but tracks
// and dissects only the connections whose address-pair hash falls in
// shard i, giving each its provisional ID (the number of its first
// frame; Stats.IDs lists them). The clock sweeps and key log secrets go
// to it as to any shard, so each connection is tracked as in the whole
// run. What the reader counts (Packets, Bytes, Layer, Faults, Secrets,
// SecretErrors) is reported by shard 0 only, and each run's Stats.TCP
// counts its own connections, so that the Stats of the k runs added up
// (Stats.Add) are those of one run over the capture, and MergeConnIDs
// over their IDs maps the provisional IDs of every run to final ones. A
// run may split its shard further over Options.Shards goroutines. Each
// run reads every byte of the capture: k runs read it k times.
package dissect

import "github.com/h2scope/h2scope/dissect/event"

// Error is a fault located in the input; see event.Error.
type Error = event.Error
