package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/h2scope/h2scope/tools/capgen/truth"
)

// gRPC calls failing with each status class (request_errors), played by
// grpc-core, the C library under Python's grpcio: a server that answers
// each call with the status the call asks for, and a client with one
// channel (one connection, its own :authority) per class.

func init() {
	stackTools["python3-grpcio"] = stackTool{bin: "/usr/bin/python3", pkg: "python3-grpcio",
		version: []string{"-c", "import grpc, sys; print('python', sys.version.split()[0], 'grpcio', grpc.__version__)"},
		probe:   []string{"-c", "import grpc"}}
	addStackScenarios(&scenario{
		name: "grpcio-status-classes",
		description: "a Python grpcio 1.51 (grpc-core) server over h2c and a grpcio client, unary calls of /h2scope.Echo/Call " +
			"whose request names the status the server answers with (context.abort, or an exception: UNKNOWN). One channel " +
			"per class, each with its own :authority (grpc.default_authority) and so its own connection, 40 calls each: " +
			"unavailable.test 12 UNAVAILABLE, overload.test 6 RESOURCE_EXHAUSTED, deadline.test 6 DEADLINE_EXCEEDED sent by " +
			"the server, internal.test 6 INTERNAL and 6 UNKNOWN, notfound.test 12 NOT_FOUND; the rest OK. The server logs " +
			"each call (peer port, status), the client the status it got.",
		findings: []string{"request_errors"},
		commit:   true,
		tools:    []string{"python3-grpcio"},
		stack:    runGRPCStatusClasses,
	})
}

// pythonGRPCServer answers /h2scope.Echo/Call with the status its
// request names (bytes, no protobuf): OK returns b"ok", UNKNOWN raises,
// others abort with that code. One JSON object a line per call.
const pythonGRPCServer = `import json, sys, time
from concurrent import futures
import grpc
port = int(sys.argv[1])
def call(req, ctx):
    want = req.decode()
    print(json.dumps({"event": "call", "peer": ctx.peer(), "status": want}), flush=True)
    if want == "OK":
        return b"ok"
    if want == "UNKNOWN":
        raise RuntimeError("h2scope: handler failed")
    ctx.abort(getattr(grpc.StatusCode, want), "h2scope: " + want)
server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler("h2scope.Echo", {"Call": grpc.unary_unary_rpc_method_handler(call)}),))
server.add_insecure_port("127.0.0.1:%d" % port)
server.start()
print(json.dumps({"event": "listening", "port": port, "grpcio": grpc.__version__}), flush=True)
server.wait_for_termination()
`

// pythonGRPCClient makes the calls of each "AUTHORITY=STATUS*N+STATUS*N"
// group on a channel of its own, one after another, and closes the
// channel. One JSON object a line per call.
const pythonGRPCClient = `import json, sys
import grpc
target = sys.argv[1]
for group in sys.argv[2:]:
    auth, plan = group.split("=")
    want = []
    for part in plan.split("+"):
        s, n = part.split("*")
        want += [s] * int(n)
    ch = grpc.insecure_channel(target, options=[("grpc.default_authority", auth)])
    call = ch.unary_unary("/h2scope.Echo/Call")
    for i, s in enumerate(want):
        try:
            call(s.encode(), timeout=10)
            got = "OK"
        except grpc.RpcError as e:
            got = e.code().name
        print(json.dumps({"event": "call", "authority": auth, "call": i, "asked": s, "status": got}), flush=True)
    ch.close()
    print(json.dumps({"event": "closed", "authority": auth}), flush=True)
`

// grpcStatusPlan is each class's channel: its authority and its calls,
// in the order made (failures spread among the OK calls).
var grpcStatusPlan = []struct {
	authority string
	plan      string
}{
	{"unavailable.test", "OK*4+UNAVAILABLE*1+OK*2+UNAVAILABLE*1+OK*1+UNAVAILABLE*10+OK*21"},
	{"overload.test", "OK*10+RESOURCE_EXHAUSTED*3+OK*10+RESOURCE_EXHAUSTED*3+OK*14"},
	{"deadline.test", "OK*10+DEADLINE_EXCEEDED*3+OK*10+DEADLINE_EXCEEDED*3+OK*14"},
	{"internal.test", "OK*5+INTERNAL*6+OK*10+UNKNOWN*6+OK*13"},
	{"notfound.test", "OK*8+NOT_FOUND*12+OK*20"},
}

// runGRPCStatusClasses is grpcio-status-classes.
func runGRPCStatusClasses(ctx context.Context, r *stackRun) error {
	if err := os.WriteFile(r.path("server.py"), []byte(pythonGRPCServer), 0o644); err != nil {
		return err
	}
	if err := os.WriteFile(r.path("client.py"), []byte(pythonGRPCClient), 0o644); err != nil {
		return err
	}
	srv, err := r.start(ctx, "python3-grpcio", "server", r.port, r.path("server.py"), strconv.Itoa(r.port))
	if err != nil {
		return err
	}
	args := []string{r.path("client.py"), r.addr()}
	for _, g := range grpcStatusPlan {
		args = append(args, g.authority+"="+g.plan)
	}
	out, errb, err := r.runClient(ctx, "python3-grpcio", nil, args...)
	r.report("python3-grpcio", "client: the status of each call, one JSON object a line", lines(out))
	if err != nil {
		return fmt.Errorf("grpc client: %v: %s", err, errb)
	}
	r.stopAll(sigTerm)
	srvLines := lines(r.output(srv))
	r.report("python3-grpcio", "server: each call it answered (peer, status), one JSON object a line", srvLines)
	type call struct{ authority, status string }
	var calls []call
	got := map[string]map[string]int{} // authority -> status -> calls
	for _, l := range lines(out) {
		var ev struct {
			Event     string `json:"event"`
			Authority string `json:"authority"`
			Asked     string `json:"asked"`
			Status    string `json:"status"`
		}
		if err := json.Unmarshal([]byte(l), &ev); err != nil {
			return fmt.Errorf("client line %q: %v", l, err)
		}
		if ev.Event != "call" {
			continue
		}
		if ev.Asked != ev.Status {
			return fmt.Errorf("client line %q: the call asked for %s and got %s", l, ev.Asked, ev.Status)
		}
		calls = append(calls, call{ev.Authority, ev.Status})
		if got[ev.Authority] == nil {
			got[ev.Authority] = map[string]int{}
		}
		got[ev.Authority][ev.Status]++
	}
	// The server's log gives each call's connection (the peer's port),
	// in the order the client made them.
	var served []int
	for _, l := range srvLines {
		var ev struct {
			Event, Peer, Status string
		}
		if err := json.Unmarshal([]byte(l), &ev); err != nil || ev.Event != "call" {
			continue
		}
		i := strings.LastIndexByte(ev.Peer, ':')
		port, err := strconv.Atoi(ev.Peer[i+1:])
		if err != nil || !strings.HasPrefix(ev.Peer, "ipv4:127.0.0.1:") {
			return fmt.Errorf("server line %q: peer", l)
		}
		if len(served) < len(calls) && ev.Status != calls[len(served)].status {
			return fmt.Errorf("server call %d answered %s, the client got %s", len(served)+1, ev.Status, calls[len(served)].status)
		}
		served = append(served, port)
	}
	if len(served) != len(calls) {
		return fmt.Errorf("server logged %d calls, the client made %d", len(served), len(calls))
	}
	conns := map[string]int{} // authority -> connection
	for i, c := range calls {
		id, ok := conns[c.authority]
		if !ok {
			id = r.newConn(served[i], c.authority)
			conns[c.authority] = id
		} else if r.conns[id-1].port != served[i] {
			return fmt.Errorf("%s: calls on two connections (ports %d and %d)", c.authority, r.conns[id-1].port, served[i])
		}
		q := truth.Request{Phase: c.authority, Method: "POST", Path: "/h2scope.Echo/Call", Status: 200, Proto: "HTTP/2.0",
			Reused: r.conns[id-1].requests > 0}
		if c.status != "OK" {
			q.Error = "grpc-status " + c.status
		}
		r.request(id, q)
	}
	for _, g := range grpcStatusPlan {
		var parts []string
		for s, n := range got[g.authority] {
			r.fact(strings.TrimSuffix(g.authority, ".test")+"_"+strings.ToLower(s), n)
			parts = append(parts, fmt.Sprintf("%s %d", s, n))
		}
		sort.Strings(parts)
		r.report("capgen", g.authority+": statuses the client got", parts)
	}
	fails := func(a string) int { return 40 - got[a]["OK"] }
	r.verdictCause("request_errors", "critical", "unavailable",
		"the server answered UNAVAILABLE on 12 of 40 calls to unavailable.test (30%, past --errors-critical-share 25%)",
		fmt.Sprintf("the grpcio client got UNAVAILABLE on %d of 40 calls on its unavailable.test channel, and the server logged "+
			"each with that status", fails("unavailable.test")))
	r.verdictCause("request_errors", "warning", "overload",
		"the server answered RESOURCE_EXHAUSTED on 6 of 40 calls to overload.test (15%)",
		fmt.Sprintf("the client got RESOURCE_EXHAUSTED on %d of 40 calls on overload.test: past --errors-min 5 and "+
			"--errors-min-share 5%%, below the critical share", fails("overload.test")))
	r.verdictCause("request_errors", "warning", "deadline",
		"the server answered DEADLINE_EXCEEDED itself (not the client's deadline) on 6 of 40 calls to deadline.test (15%)",
		fmt.Sprintf("the client's deadline was 10 s and every call returned at once; the server aborted %d of 40 calls on "+
			"deadline.test with DEADLINE_EXCEEDED (as a server whose own downstream call timed out does)", fails("deadline.test")))
	r.verdictCause("request_errors", "critical", "server_error",
		"the server failed 12 of 40 calls to internal.test: 6 INTERNAL, 6 UNKNOWN (an exception in the handler) (30%)",
		fmt.Sprintf("the client got INTERNAL or UNKNOWN on %d of 40 calls on internal.test; grpcio turns the handler's "+
			"exception into UNKNOWN \"Exception calling application\"", fails("internal.test")))
	r.verdictCause("request_errors", "info", "client_error",
		"NOT_FOUND on 12 of 40 calls to notfound.test: the client's business, not the server's failure",
		fmt.Sprintf("the client got NOT_FOUND on %d of 40 calls on notfound.test", fails("notfound.test")))
	return nil
}

func init() {
	addStackScenarios(&scenario{
		name: "grpcio-client-deadline",
		description: "a Python grpcio server and client over h2c: 30 unary calls one after another on one channel; every " +
			"third asks the server to take 300 ms and carries a 100 ms deadline (grpc-timeout), the others are answered at " +
			"once. The client's deadline fires on those 10: grpc-core gives up on the call (DEADLINE_EXCEEDED at the client) " +
			"and resets the stream; the server logs each call it handled and its outcome.",
		findings: []string{"request_errors"},
		commit:   true,
		tools:    []string{"python3-grpcio"},
		stack:    runGRPCClientDeadline,
	})
}

// pythonGRPCSlowServer answers /h2scope.Echo/Call after the number of
// milliseconds its request names, OK. One JSON object a line per call,
// with whether the call was still active when the handler returned.
const pythonGRPCSlowServer = `import json, sys, time
from concurrent import futures
import grpc
port = int(sys.argv[1])
def call(req, ctx):
    ms = int(req.decode())
    time.sleep(ms / 1000)
    print(json.dumps({"event": "call", "peer": ctx.peer(), "sleep_ms": ms, "active": ctx.is_active(), "time_remaining": ctx.time_remaining()}), flush=True)
    return b"ok"
server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler("h2scope.Echo", {"Call": grpc.unary_unary_rpc_method_handler(call)}),))
server.add_insecure_port("127.0.0.1:%d" % port)
server.start()
server.wait_for_termination()
`

// pythonGRPCDeadlineClient makes N calls; every third asks for SLOW ms
// with a DEADLINE ms deadline, the others for 0 ms with a 10 s one.
const pythonGRPCDeadlineClient = `import json, sys, time
import grpc
target, n, slow, deadline = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
ch = grpc.insecure_channel(target)
call = ch.unary_unary("/h2scope.Echo/Call")
for i in range(n):
    ms, timeout = (slow, deadline / 1000) if i % 3 == 2 else (0, 10)
    t = time.monotonic()
    try:
        call(str(ms).encode(), timeout=timeout)
        got = "OK"
    except grpc.RpcError as e:
        got = e.code().name
    print(json.dumps({"event": "call", "call": i, "asked_ms": ms, "timeout_s": timeout, "status": got, "took_ms": round((time.monotonic() - t) * 1000, 1)}), flush=True)
    time.sleep(0.02)
ch.close()
`

// runGRPCClientDeadline is grpcio-client-deadline.
func runGRPCClientDeadline(ctx context.Context, r *stackRun) error {
	if err := os.WriteFile(r.path("server.py"), []byte(pythonGRPCSlowServer), 0o644); err != nil {
		return err
	}
	if err := os.WriteFile(r.path("client.py"), []byte(pythonGRPCDeadlineClient), 0o644); err != nil {
		return err
	}
	srv, err := r.start(ctx, "python3-grpcio", "server", r.port, r.path("server.py"), strconv.Itoa(r.port))
	if err != nil {
		return err
	}
	const n = 30
	out, errb, err := r.runClient(ctx, "python3-grpcio", nil, r.path("client.py"), r.addr(), strconv.Itoa(n), "300", "100")
	r.report("python3-grpcio", "client: the status of each call, one JSON object a line", lines(out))
	if err != nil {
		return fmt.Errorf("grpc client: %v: %s", err, errb)
	}
	// Let the server finish the slow handlers before it stops.
	if err := sleepCtx(ctx, 400*time.Millisecond); err != nil {
		return err
	}
	r.stopAll(sigTerm)
	srvLines := lines(r.output(srv))
	r.report("python3-grpcio", "server: each call it handled, one JSON object a line", srvLines)
	var port, deadlines, ok int
	for _, l := range srvLines {
		var ev struct{ Event, Peer string }
		if json.Unmarshal([]byte(l), &ev) == nil && ev.Event == "call" {
			p, err := strconv.Atoi(ev.Peer[strings.LastIndexByte(ev.Peer, ':')+1:])
			if err != nil || port != 0 && p != port {
				return fmt.Errorf("server line %q: another connection", l)
			}
			port = p
		}
	}
	if port == 0 {
		return errors.New("the server logged no call")
	}
	id := r.newConn(port, "calls")
	for _, l := range lines(out) {
		var ev struct {
			Status string `json:"status"`
			Asked  int    `json:"asked_ms"`
		}
		if err := json.Unmarshal([]byte(l), &ev); err != nil {
			return fmt.Errorf("client line %q: %v", l, err)
		}
		q := truth.Request{Method: "POST", Path: "/h2scope.Echo/Call", Status: 200, Proto: "HTTP/2.0", Reused: r.conns[id-1].requests > 0}
		switch {
		case ev.Status == "OK" && ev.Asked == 0:
			ok++
		case ev.Status == "DEADLINE_EXCEEDED" && ev.Asked > 0:
			deadlines++
			q.Error = "grpc-status DEADLINE_EXCEEDED (the client's deadline)"
		default:
			return fmt.Errorf("client line %q: unexpected", l)
		}
		r.request(id, q)
	}
	if ok != 20 || deadlines != 10 {
		return fmt.Errorf("client: %d OK, %d deadlines; want 20, 10", ok, deadlines)
	}
	r.fact("calls_ok", ok)
	r.fact("client_deadlines", deadlines)
	r.verdictCause("request_errors", "critical", "deadline",
		"10 of 30 calls failed with DEADLINE_EXCEEDED: the server (300 ms) is slower than the client's 100 ms deadline",
		fmt.Sprintf("the grpcio client got DEADLINE_EXCEEDED on %d of 30 calls whose 100 ms deadline passed while the "+
			"server's handler slept 300 ms (grpc-core resets the stream at its deadline; the server's own timer, from "+
			"grpc-timeout, sometimes sends the DEADLINE_EXCEEDED trailers first); a third of the calls failed, past "+
			"--errors-critical-share", deadlines))
	r.verdictCause("rst_storm", "info", "client_cancel",
		"the client reset 10 streams at their deadline, one at a time over about a second: no burst",
		"one reset every 60 ms or so, each at its call's deadline: not a storm of resets")
	return nil
}
