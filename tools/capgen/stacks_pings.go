package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"strconv"
	"strings"

	"github.com/h2scope/h2scope/tools/capgen/truth"
)

// A gRPC server ending a connection for too many pings (goaway, cause
// too_many_pings), played by grpc-core (Python's grpcio) on both sides:
// a client whose keepalive pings come faster than the server's
// enforcement allows.

func init() {
	addStackScenarios(&scenario{
		name: "grpcio-too-many-pings",
		description: "a Python grpcio 1.51 (grpc-core) server over h2c with its default keepalive enforcement " +
			"(grpc.http2.min_ping_interval_without_data_ms 5 min, grpc.http2.max_ping_strikes 2) and a grpcio client with " +
			"grpc.keepalive_time_ms 100, grpc.keepalive_permit_without_calls 1 and grpc.http2.max_pings_without_data 0: " +
			"during a unary call whose handler sleeps 6 s without sending anything, the client pings about once a second " +
			"(grpc-core's own floor); at the fourth or fifth ping (3 or 4 s in) the server answers the call UNAVAILABLE and sends GOAWAY " +
			"ENHANCE_YOUR_CALM \"too_many_pings\" and closes. The client logs the GOAWAY, doubles its keepalive time and " +
			"makes a short call on a new connection, which succeeds.",
		findings: []string{"goaway"},
		commit:   true,
		tools:    []string{"python3-grpcio"},
		stack:    runGRPCTooManyPings,
	})
}

// pythonGRPCSleepServer answers /h2scope.Echo/Call after sleeping the
// seconds its request names (bytes, no protobuf). One JSON object a
// line per call.
const pythonGRPCSleepServer = `import json, sys, time
from concurrent import futures
import grpc
port = int(sys.argv[1])
def call(req, ctx):
    print(json.dumps({"event": "call", "peer": ctx.peer(), "sleep": req.decode()}), flush=True)
    time.sleep(float(req.decode()))
    return b"ok"
server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler("h2scope.Echo", {"Call": grpc.unary_unary_rpc_method_handler(call)}),))
server.add_insecure_port("127.0.0.1:%d" % port)
server.start()
print(json.dumps({"event": "listening", "port": port, "grpcio": grpc.__version__}), flush=True)
server.wait_for_termination()
`

// pythonGRPCPingClient makes one call per argument (the seconds the
// server sleeps) on one channel with aggressive keepalive. It asks
// grpc-core for its keepalive trace (on standard error). One JSON
// object a line per call.
const pythonGRPCPingClient = `import json, os, sys, time
os.environ["GRPC_VERBOSITY"] = "debug"
os.environ["GRPC_TRACE"] = "http_keepalive"
import grpc
target = sys.argv[1]
ch = grpc.insecure_channel(target, options=[("grpc.keepalive_time_ms", 100), ("grpc.keepalive_timeout_ms", 1000),
    ("grpc.keepalive_permit_without_calls", 1), ("grpc.http2.max_pings_without_data", 0)])
call = ch.unary_unary("/h2scope.Echo/Call")
for i, s in enumerate(sys.argv[2:]):
    t = time.monotonic()
    try:
        call(s.encode(), timeout=10)
        got, details = "OK", ""
    except grpc.RpcError as e:
        got, details = e.code().name, e.details()
    print(json.dumps({"event": "call", "call": i, "sleep": s, "status": got, "details": details, "secs": round(time.monotonic() - t, 3)}), flush=True)
ch.close()
print(json.dumps({"event": "closed"}), flush=True)
`

// runGRPCTooManyPings is grpcio-too-many-pings.
func runGRPCTooManyPings(ctx context.Context, r *stackRun) error {
	if err := os.WriteFile(r.path("server.py"), []byte(pythonGRPCSleepServer), 0o644); err != nil {
		return err
	}
	if err := os.WriteFile(r.path("client.py"), []byte(pythonGRPCPingClient), 0o644); err != nil {
		return err
	}
	srv, err := r.start(ctx, "python3-grpcio", "server", r.port, r.path("server.py"), strconv.Itoa(r.port))
	if err != nil {
		return err
	}
	out, errb, err := r.runClient(ctx, "python3-grpcio", nil, r.path("client.py"), r.addr(), "6", "0")
	r.report("python3-grpcio", "client: the status of each call, one JSON object a line", lines(out))
	// grpc-core's keepalive trace: the pings it sent and the GOAWAY.
	var trace []string
	var pings, calm int // pings sent before the GOAWAY, GOAWAYs too_many_pings
	for _, l := range lines(errb) {
		switch {
		case strings.Contains(l, "Ping sent"):
			if calm == 0 {
				pings++
			}
		case strings.Contains(l, `ENHANCE_YOUR_CALM and debug data equal to "too_many_pings"`):
			calm++
		case strings.Contains(l, "Got goaway"):
		default:
			continue
		}
		if i := strings.Index(l, "]"); i >= 0 {
			l = strings.TrimSpace(l[i+1:]) // no time stamp, thread or source line
		}
		trace = append(trace, l)
	}
	r.report("python3-grpcio", "client: grpc-core's log (GRPC_TRACE=http_keepalive): pings sent and GOAWAYs received", trace)
	if err != nil {
		return fmt.Errorf("grpc client: %v: %s", err, errb)
	}
	r.stopAll(sigTerm)
	srvLines := lines(r.output(srv))
	r.report("python3-grpcio", "server: each call it began (peer, sleep), one JSON object a line", srvLines)
	var served []int
	for _, l := range srvLines {
		var ev struct{ Event, Peer string }
		if err := json.Unmarshal([]byte(l), &ev); err != nil || ev.Event != "call" {
			continue
		}
		i := strings.LastIndexByte(ev.Peer, ':')
		port, err := strconv.Atoi(ev.Peer[i+1:])
		if err != nil || !strings.HasPrefix(ev.Peer, "ipv4:127.0.0.1:") {
			return fmt.Errorf("server line %q: peer", l)
		}
		served = append(served, port)
	}
	type call struct{ status, details string }
	var calls []call
	for _, l := range lines(out) {
		var ev struct{ Event, Status, Details string }
		if err := json.Unmarshal([]byte(l), &ev); err != nil {
			return fmt.Errorf("client line %q: %v", l, err)
		}
		if ev.Event == "call" {
			calls = append(calls, call{ev.Status, ev.Details})
		}
	}
	if len(calls) != 2 || calls[0].status != "UNAVAILABLE" || calls[0].details != "Too many pings" || calls[1].status != "OK" {
		return fmt.Errorf("client calls %+v: want UNAVAILABLE \"Too many pings\", then OK", calls)
	}
	if len(served) != 2 || served[0] == served[1] {
		return fmt.Errorf("server began calls from ports %v: want 2 calls on 2 connections", served)
	}
	if calm != 1 {
		return fmt.Errorf("grpc-core logged %d GOAWAY too_many_pings, want 1", calm)
	}
	a := r.newConn(served[0], "pinged")
	r.request(a, truth.Request{Phase: "pinged", Method: "POST", Path: "/h2scope.Echo/Call", Status: 200, Proto: "HTTP/2.0",
		Error: "grpc-status UNAVAILABLE (Too many pings)"})
	b := r.newConn(served[1], "reconnected")
	r.request(b, truth.Request{Phase: "reconnected", Method: "POST", Path: "/h2scope.Echo/Call", Status: 200, Proto: "HTTP/2.0"})
	r.fact("pings_before_goaway", pings)
	r.fact("goaway_too_many_pings", calm)
	r.fact("calls_failed", 1)
	r.fact("calls_ok", 1)
	r.verdictCause("goaway", "critical", "too_many_pings",
		"the server's keepalive enforcement: the client pinged more often than it permits (GOAWAY ENHANCE_YOUR_CALM too_many_pings)",
		fmt.Sprintf("the grpcio client (keepalive_time_ms 100) sent %d pings (grpc-core's trace: Ping sent), about one a second, during a call the server "+
			"answered only after 6 s; grpc-core logged a GOAWAY with ENHANCE_YOUR_CALM and debug data \"too_many_pings\", the "+
			"call failed UNAVAILABLE \"Too many pings\" and the next call went on a new connection", pings))
	return nil
}
