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

// Connection attempts that fail or need retries (syn_retransmit), played
// by other stacks: curl connecting while nginx is down (RST answers), and
// a Python client meeting nginx's full accept queue (SYNs dropped).

func init() {
	addStackScenarios(
		&scenario{
			name: "nginx-curl-refused",
			description: "nginx 1.22 over HTTP/1.1 and curl 7.88, one process a request: a GET succeeds, nginx stops (SIGQUIT: " +
				"its listening socket is closed, as in a restart), 4 curl runs 100 ms apart each get RST-ACK to their SYN " +
				"(exit 7, \"Failed to connect\"; no retry), nginx starts again and a last GET succeeds. curl binds each " +
				"connection's local port (--local-port) so that the truth names the refused ones.",
			findings: []string{"syn_retransmit"},
			commit:   true,
			tools:    []string{"nginx", "curl"},
			stack:    runNginxCurlRefused,
		},
		&scenario{
			name: "nginx-python-accept-queue",
			description: "nginx listening with backlog=1 and frozen (SIGSTOP, as a server stuck in GC or on a full CPU), and a " +
				"Python socket client opening 5 connections 50 ms apart: the first 2 complete the handshake into the kernel's " +
				"accept queue, which is then full, so the kernel drops the next SYNs; the client's kernel retransmits them " +
				"(about once a second). 2.5 s in nginx continues (SIGCONT) and accepts: 2 connects with a 10 s timeout are answered " +
				"by their third retransmitted SYN and get their response; one with a 1.5 s timeout gives up after one " +
				"retransmission. The client reads tcpi_total_retrans (TCP_INFO) of each socket.",
			findings: []string{"syn_retransmit"},
			commit:   true,
			tools:    []string{"nginx", "python3"},
			stack:    runNginxAcceptQueue,
		},
	)
}

// runNginxCurlRefused is nginx-curl-refused.
func runNginxCurlRefused(ctx context.Context, r *stackRun) error {
	if err := r.writeWWW(); err != nil {
		return err
	}
	srv, err := r.startNginx(ctx, nginxConf{})
	if err != nil {
		return err
	}
	get := func(phase string) error {
		ls, err := r.curl(ctx, phase, false, r.url(false, "/index.html"))
		if err != nil {
			return err
		}
		if len(ls) != 1 || ls[0].status != 200 {
			return fmt.Errorf("curl %s: %+v", phase, ls)
		}
		r.curlRequests(phase, ls)
		return nil
	}
	if err := get("before"); err != nil {
		return err
	}
	if err := r.signal(srv, sigQuit); err != nil {
		return err
	}
	if err := r.wait(srv, 5*time.Second); err != nil && !strings.Contains(err.Error(), "exit status") {
		return err
	}
	if listening(r.port) {
		return fmt.Errorf("nginx still listens on %d after SIGQUIT", r.port)
	}
	const refused = 4
	for i := range refused {
		if i > 0 {
			if err := sleepCtx(ctx, 100*time.Millisecond); err != nil {
				return err
			}
		}
		port, err := freePort()
		if err != nil {
			return err
		}
		ls, err := r.curl(ctx, "down", true, "--local-port", strconv.Itoa(port), r.url(false, "/index.html"))
		if err != nil {
			return err
		}
		if len(ls) != 1 || ls[0].exit != 7 || ls[0].status != 0 {
			return fmt.Errorf("curl to the stopped server: %+v, want exit 7 (couldn't connect)", ls)
		}
		id := r.newConn(port, "down")
		r.conns[id-1].dial = truth.DialRefused
	}
	srv, err = r.startNginx(ctx, nginxConf{})
	if err != nil {
		return err
	}
	if err := get("after"); err != nil {
		return err
	}
	r.stopAll(sigQuit)
	ng, err := r.nginxAccess()
	if err != nil {
		return err
	}
	r.nginxErrors()
	if len(ng) != 2 {
		return fmt.Errorf("nginx logged %d requests, want 2", len(ng))
	}
	r.fact("refused_connects", refused)
	r.fact("requests_ok", len(ng))
	r.verdictCause("syn_retransmit", "critical", "refused",
		"nothing listened on the port (nginx stopped): the kernel answered each SYN with RST, the requests failed",
		fmt.Sprintf("after nginx stopped (its listening socket closed), %d curl runs got \"Failed to connect\" (exit 7) at "+
			"once, each SYN answered by RST-ACK; curl does not retry, so %d requests failed (critical by the severity rule), "+
			"and nginx's access log holds only the GETs before and after", refused, refused))
	return nil
}

// pythonAcceptClient is the client of nginx-python-accept-queue: one
// thread per attempt "DELAY:TIMEOUT" (seconds), each binding its socket
// first (its local port is known before connect), connecting with
// TIMEOUT, reading tcpi_total_retrans from TCP_INFO right after connect
// returns or fails, and, once connected, sending one GET and reading the
// response to the end. One JSON object a line.
const pythonAcceptClient = `import json, socket, struct, sys, threading, time
host, port, path = sys.argv[1], int(sys.argv[2]), sys.argv[3]
attempts = [tuple(float(x) for x in a.split(":")) for a in sys.argv[4].split(",")]
t0 = time.monotonic()
lock = threading.Lock()
def log(**kw):
    kw["t"] = round(time.monotonic() - t0, 6)
    with lock:
        print(json.dumps(kw), flush=True)
def retrans(s):
    # struct tcp_info: tcpi_total_retrans is the u32 at offset 100.
    return struct.unpack_from("I", s.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 104), 100)[0]
def attempt(i, delay, timeout):
    time.sleep(delay)
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    lp = s.getsockname()[1]
    s.settimeout(timeout)
    start = time.monotonic()
    try:
        s.connect((host, port))
    except OSError as e:
        log(event="connect_failed", attempt=i, local_port=lp, error=type(e).__name__, after=round(time.monotonic() - start, 3), syn_retransmits=retrans(s))
        s.close()
        return
    log(event="connected", attempt=i, local_port=lp, after=round(time.monotonic() - start, 3), syn_retransmits=retrans(s))
    s.settimeout(20)
    s.sendall(("GET %s HTTP/1.1\r\nHost: %s:%d\r\nConnection: close\r\n\r\n" % (path, host, port)).encode())
    data = b""
    while True:
        b = s.recv(65536)
        if not b:
            break
        data += b
    s.close()
    head = data.split(b"\r\n", 1)[0].decode()
    log(event="response", attempt=i, local_port=lp, status=int(head.split()[1]), bytes=len(data))
ts = [threading.Thread(target=attempt, args=(i, d, t)) for i, (d, t) in enumerate(attempts)]
for t in ts:
    t.start()
for t in ts:
    t.join()
`

// runNginxAcceptQueue is nginx-python-accept-queue.
func runNginxAcceptQueue(ctx context.Context, r *stackRun) error {
	if err := r.writeWWW(); err != nil {
		return err
	}
	srv, err := r.startNginx(ctx, nginxConf{listen: "backlog=1"})
	if err != nil {
		return err
	}
	if err := os.WriteFile(r.path("accept.py"), []byte(pythonAcceptClient), 0o644); err != nil {
		return err
	}
	if err := r.signal(srv, syscall.SIGSTOP); err != nil {
		return err
	}
	// delay:timeout per attempt: 2 fill the queue, 2 wait, 1 gives up.
	const attempts = "0:10,0.05:10,0.1:10,0.15:10,0.2:1.5"
	type res struct {
		out, errb []byte
		err       error
	}
	ch := make(chan res, 1)
	go func() {
		out, errb, err := r.runClient(ctx, "python3", nil, r.path("accept.py"), "127.0.0.1", strconv.Itoa(r.port), "/index.html", attempts)
		ch <- res{out, errb, err}
	}()
	if err := sleepCtx(ctx, 2500*time.Millisecond); err != nil {
		return err
	}
	r.report("capgen", "signals capgen sent", []string{"SIGSTOP to nginx's process group before the client started",
		"SIGCONT 2.5 s after the client started"})
	if err := r.signal(srv, syscall.SIGCONT); err != nil {
		return err
	}
	c := <-ch
	r.report("python3", "socket client events, one JSON object a line", lines(c.out))
	if c.err != nil {
		return fmt.Errorf("python client: %v: %s", c.err, c.errb)
	}
	var queued, retried, gaveUp, responses int
	ids := map[int]int{} // attempt -> connection
	for _, l := range lines(c.out) {
		var ev struct {
			Event          string  `json:"event"`
			Attempt        int     `json:"attempt"`
			LocalPort      int     `json:"local_port"`
			After          float64 `json:"after"`
			SYNRetransmits int     `json:"syn_retransmits"`
			Status         int     `json:"status"`
			Bytes          int64   `json:"bytes"`
			Error          string  `json:"error"`
		}
		if err := json.Unmarshal([]byte(l), &ev); err != nil {
			return fmt.Errorf("python client line %q: %v", l, err)
		}
		switch ev.Event {
		case "connected":
			id := r.newConn(ev.LocalPort, "queued")
			if ev.SYNRetransmits > 0 {
				r.conns[id-1].phase = "retried"
				retried++
			} else {
				queued++
			}
			r.conns[id-1].synRetx = ev.SYNRetransmits
			ids[ev.Attempt] = id
		case "connect_failed":
			if ev.Error != "TimeoutError" || ev.SYNRetransmits == 0 {
				return fmt.Errorf("python client line %q: want a timeout after retransmitted SYNs", l)
			}
			id := r.newConn(ev.LocalPort, "gave up")
			r.conns[id-1].dial, r.conns[id-1].synRetx = truth.DialTimeout, ev.SYNRetransmits
			gaveUp++
		case "response":
			id, ok := ids[ev.Attempt]
			if !ok || ev.Status != 200 {
				return fmt.Errorf("python client line %q: no connection, or not 200", l)
			}
			r.request(id, truth.Request{Phase: r.conns[id-1].phase, Method: "GET", Path: "/index.html", Status: ev.Status, RespBytes: ev.Bytes})
			responses++
		}
	}
	if queued != 2 || retried != 2 || gaveUp != 1 || responses != 4 {
		return fmt.Errorf("python client: %d connected at once, %d after retrying, %d gave up, %d responses; want 2, 2, 1, 4",
			queued, retried, gaveUp, responses)
	}
	if _, _, err := r.stopNginx(); err != nil {
		return err
	}
	r.fact("connected_at_once", queued)
	r.fact("connected_after_retry", retried)
	r.fact("gave_up", gaveUp)
	r.verdictCause("syn_retransmit", "critical", "retried",
		"the server's accept queue was full (listen backlog 1, nginx not accepting): the kernel dropped SYNs; one connect failed",
		fmt.Sprintf("with nginx stopped and 2 connections waiting in its accept queue (backlog=1), the Python client's next "+
			"SYNs went unanswered: %d connects were answered only after retransmitted SYNs (TCP_INFO tcpi_total_retrans, "+
			"about 3 s) and %d gave up after 1.5 s (TimeoutError): a request failed, so critical by the severity rule; most "+
			"attempts connected after retrying", retried, gaveUp))
	return nil
}
