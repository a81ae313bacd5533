package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/h2scope/h2scope/tools/capgen/truth"
)

// TCP handshakes the server completes late (handshake_latency, cause
// tcp), played by nginx and a Python socket client: nginx listens with
// TCP_DEFER_ACCEPT (listen ... deferred, common on Linux) and backlog=1
// and freezes for a moment. A deferred connection enters the kernel's
// accept queue only when its first data arrives; while the queue is
// full the kernel drops that segment (a listen overflow) and keeps the
// connection half open, retransmitting its SYN-ACK, until a later copy
// of the data finds room. The client's connect() returned at once; its
// request waits.

func init() {
	stackTools["nstat"] = stackTool{bin: "nstat", pkg: "iproute2", version: []string{"-V"}}
	addStackScenarios(&scenario{
		name: "nginx-python-deferred-overflow",
		description: "nginx 1.22 over HTTP/1.1 listening with backlog=1 and deferred (TCP_DEFER_ACCEPT), and a Python socket " +
			"client, one GET with Connection: close per connection. 10 connections 30 ms apart are served at once. Then " +
			"nginx is frozen (SIGSTOP, as a server stuck in GC or on a full CPU) and the client opens a pool of 4 connections " +
			"10 ms apart (each connect() returns at once: the kernel answers the SYN), then writes a GET on each, 10 ms " +
			"apart. The first 2 wait deferred in the SYN queue; the kernel, that queue being over the backlog, answers the " +
			"other 2 with SYN cookies, which enter the accept queue on their ACK and fill it. So the GETs of the first 2 " +
			"arrive with the accept queue full: the kernel drops them (listen overflow, nstat TcpExtListenOverflows) and " +
			"keeps those connections half open, sends their SYN-ACK again about 1 s after the SYN, and the client resends " +
			"the GET with backoff. 1.5 s in nginx continues (SIGCONT), accepts, and the next copy of each dropped GET " +
			"completes its handshake. Then 10 more connections are served at once. The client reports per connection how " +
			"long connect() took, when the response came and TCP_INFO's tcpi_total_retrans.",
		findings: []string{"handshake_latency", "reconnect_churn"},
		commit:   true,
		tools:    []string{"nginx", "python3", "nstat"},
		stack:    runNginxDeferredOverflow,
	})
}

// pythonDeferredClient is the client of nginx-python-deferred-overflow.
// Mode "seq N GAP": N connections one after another, GAP seconds apart,
// each sending a GET and reading the response. Mode "burst N GAP": N
// connections GAP seconds apart, each writing its GET as soon as
// connect() returns, then reading every response in turn. One JSON
// object a line.
const pythonDeferredClient = `import json, socket, struct, sys, time
host, port, path, mode, n, gap = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4], int(sys.argv[5]), float(sys.argv[6])
t0 = time.monotonic()
def log(**kw):
    kw["t"] = round(time.monotonic() - t0, 6)
    print(json.dumps(kw), flush=True)
def retrans(s):
    # struct tcp_info: tcpi_total_retrans is the u32 at offset 100.
    return struct.unpack_from("I", s.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 104), 100)[0]
req = ("GET %s HTTP/1.1\r\nHost: %s:%d\r\nConnection: close\r\n\r\n" % (path, host, port)).encode()
def connect(i):
    s = socket.socket()
    s.settimeout(20)
    start = time.monotonic()
    s.connect((host, port))
    log(event="connected", conn=i, local_port=s.getsockname()[1], connect_ms=round((time.monotonic() - start) * 1000, 3))
    return s, start
def send(i, s):
    s.sendall(req)
    log(event="sent", conn=i, local_port=s.getsockname()[1])
def read(i, s, start):
    data = b""
    while True:
        b = s.recv(65536)
        if not b:
            break
        data += b
    head = data.split(b"\r\n", 1)[0].decode()
    log(event="response", conn=i, local_port=s.getsockname()[1], status=int(head.split()[1]), bytes=len(data),
        response_ms=round((time.monotonic() - start) * 1000, 3), total_retrans=retrans(s))
    s.close()
if mode == "seq":
    for i in range(n):
        if i:
            time.sleep(gap)
        s, start = connect(i)
        send(i, s)
        read(i, s, start)
else:
    socks = []
    for i in range(n):
        if i:
            time.sleep(gap)
        socks.append(connect(i))
    for i, (s, start) in enumerate(socks):
        time.sleep(gap)
        send(i, s)
    for i, (s, start) in enumerate(socks):
        read(i, s, start)
`

// listenOverflows reads the kernel's TcpExtListenOverflows counter.
func (r *stackRun) listenOverflows(ctx context.Context, phase string) (int, error) {
	args := []string{"-asz", "TcpExtListenOverflows", "TcpExtListenDrops", "TcpExtSyncookiesSent", "TcpExtSyncookiesRecv"}
	r.program("nstat", "counters", args)
	out, err := r.command(ctx, "nstat", args).CombinedOutput()
	if err != nil {
		return 0, fmt.Errorf("nstat: %v: %s", err, out)
	}
	r.report("nstat", phase+": nstat "+strings.Join(args, " ")+" (the kernel's counters, all sockets)", lines(out))
	for _, l := range lines(out) {
		if f := strings.Fields(l); len(f) >= 2 && f[0] == "TcpExtListenOverflows" {
			return strconv.Atoi(f[1])
		}
	}
	return 0, fmt.Errorf("nstat printed no TcpExtListenOverflows: %s", out)
}

// runNginxDeferredOverflow is nginx-python-deferred-overflow.
func runNginxDeferredOverflow(ctx context.Context, r *stackRun) error {
	if err := r.writeWWW(); err != nil {
		return err
	}
	srv, err := r.startNginx(ctx, nginxConf{listen: "backlog=1 deferred"})
	if err != nil {
		return err
	}
	if err := os.WriteFile(r.path("deferred.py"), []byte(pythonDeferredClient), 0o644); err != nil {
		return err
	}
	type event struct {
		Event        string  `json:"event"`
		LocalPort    int     `json:"local_port"`
		ConnectMS    float64 `json:"connect_ms"`
		Status       int     `json:"status"`
		Bytes        int64   `json:"bytes"`
		ResponseMS   float64 `json:"response_ms"`
		TotalRetrans int     `json:"total_retrans"`
	}
	// run runs the client in one mode and records its connections;
	// it returns the response events.
	run := func(phase, mode string, n int, gap string) ([]event, error) {
		out, errb, err := r.runClient(ctx, "python3", nil, r.path("deferred.py"), "127.0.0.1", strconv.Itoa(r.port),
			"/index.html", mode, strconv.Itoa(n), gap)
		r.report("python3", phase+": socket client events, one JSON object a line", lines(out))
		if err != nil {
			return nil, fmt.Errorf("python client (%s): %v: %s", phase, err, errb)
		}
		var res []event
		for _, l := range lines(out) {
			var ev event
			if err := json.Unmarshal([]byte(l), &ev); err != nil {
				return nil, fmt.Errorf("python client line %q: %v", l, err)
			}
			if ev.Event == "connected" && ev.ConnectMS > 100 {
				return nil, fmt.Errorf("python client line %q: connect() took over 100 ms", l)
			}
			if ev.Event != "response" {
				continue
			}
			if ev.Status != 200 {
				return nil, fmt.Errorf("python client line %q: want 200", l)
			}
			res = append(res, ev)
		}
		if len(res) != n {
			return nil, fmt.Errorf("python client (%s): %d responses, want %d", phase, len(res), n)
		}
		return res, nil
	}
	record := func(phase string, evs []event) {
		for _, ev := range evs {
			id := r.newConn(ev.LocalPort, phase)
			r.request(id, truth.Request{Phase: phase, Method: "GET", Path: "/index.html", Status: ev.Status, RespBytes: ev.Bytes})
		}
	}
	before, err := run("before", "seq", 10, "0.03")
	if err != nil {
		return err
	}
	record("before", before)
	over0, err := r.listenOverflows(ctx, "before the freeze")
	if err != nil {
		return err
	}
	if err := r.signal(srv, syscall.SIGSTOP); err != nil {
		return err
	}
	type res struct {
		evs []event
		err error
	}
	ch := make(chan res, 1)
	go func() {
		evs, err := run("frozen", "burst", 4, "0.01")
		ch <- res{evs, err}
	}()
	if err := sleepCtx(ctx, 1500*time.Millisecond); err != nil {
		return err
	}
	r.report("capgen", "signals capgen sent", []string{"SIGSTOP to nginx's process group before the burst's client started",
		"SIGCONT 1.5 s after it started"})
	if err := r.signal(srv, syscall.SIGCONT); err != nil {
		return err
	}
	c := <-ch
	if c.err != nil {
		return c.err
	}
	over1, err := r.listenOverflows(ctx, "after the freeze")
	if err != nil {
		return err
	}
	// 2 of them wait in the accept queue until SIGCONT (the SYN cookie
	// ones); the data of the other 2 is dropped until a copy gets in
	// after it: they answer only after retransmitting.
	var queued, overflowed int
	var queuedEvs, overEvs []event
	for _, ev := range c.evs {
		switch {
		case ev.ResponseMS < 1400:
			return fmt.Errorf("frozen connections: a response after %.0f ms, before SIGCONT (all: %+v)", ev.ResponseMS, c.evs)
		case ev.TotalRetrans == 0:
			queued++
			queuedEvs = append(queuedEvs, ev)
		default:
			overflowed++
			overEvs = append(overEvs, ev)
		}
	}
	if queued != 2 || overflowed != 2 {
		return fmt.Errorf("frozen connections: %d without retransmissions, %d with; want 2 and 2 (all: %+v)", queued, overflowed, c.evs)
	}
	if over1-over0 < overflowed {
		return fmt.Errorf("nstat: TcpExtListenOverflows grew by %d, want at least %d", over1-over0, overflowed)
	}
	record("frozen", queuedEvs)
	record("overflowed", overEvs)
	after, err := run("after", "seq", 10, "0.03")
	if err != nil {
		return err
	}
	record("after", after)
	if _, _, err := r.stopNginx(); err != nil {
		return err
	}
	r.fact("connections", len(r.conns))
	r.fact("queued_while_frozen", queued)
	r.fact("data_dropped_by_full_accept_queue", overflowed)
	r.fact("listen_overflows", over1-over0)
	var slow []string
	for _, ev := range overEvs {
		slow = append(slow, fmt.Sprintf("port %d: response %.0f ms after connect(), %d retransmissions", ev.LocalPort, ev.ResponseMS, ev.TotalRetrans))
	}
	r.verdictCause("handshake_latency", "warning", "tcp",
		"the server's full accept queue dropped the client's handshake ACK and request: the server completed the TCP "+
			"handshake seconds after the SYN (its SYN-ACK sent again), on 2 of 24 connections",
		fmt.Sprintf("with nginx frozen, its accept queue (backlog=1) full of 2 connections, the kernel dropped the first data of "+
			"2 more connections (nstat TcpExtListenOverflows +%d) and kept them half open: their connect() had returned "+
			"at once, but the GET waited for a copy the server would take (%s); 22 other handshakes took well under a "+
			"millisecond. The server's side of each slow handshake lasted over 1 s; the requests were served, so a "+
			"warning (latency is a cost; nothing failed)", over1-over0, strings.Join(slow, "; ")))
	r.verdictCause("reconnect_churn", "warning", "client_connection_close",
		"the client sends Connection: close on every request, one connection each",
		"the Python client's GETs carry Connection: close (its request line in the script), so nginx closes after each response")
	return nil
}
