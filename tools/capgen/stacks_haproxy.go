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

// pythonIdleClient is the HTTP/1.1 client of haproxy-idle-race: Python's
// http.client with one keep-alive connection, a GET after each gap in
// GAPS (seconds, comma-separated). When the server has closed the idle
// connection, the request fails (RemoteDisconnected, or a reset) and the
// client retries it once on a new connection, as urllib3 and most
// pooling clients do. One JSON object a line.
const pythonIdleClient = `import http.client, json, sys, time
host, port, path, gaps = sys.argv[1], int(sys.argv[2]), sys.argv[3], [float(g) for g in sys.argv[4].split(",")]
t0 = time.monotonic()
def log(**kw):
    kw["t"] = round(time.monotonic() - t0, 6)
    print(json.dumps(kw), flush=True)
conn = None
def connect():
    global conn
    conn = http.client.HTTPConnection(host, port)
    conn.connect()
    log(event="connected", local_port=conn.sock.getsockname()[1])
def get(i, attempt):
    conn.request("GET", path, headers={"User-Agent": "python-http.client", "X-Request": str(i)})
    resp = conn.getresponse()
    body = resp.read()
    log(event="response", request=i, attempt=attempt, local_port=conn.sock.getsockname()[1], status=resp.status, bytes=len(body), will_close=resp.will_close)
connect()
for i, gap in enumerate(gaps):
    time.sleep(gap)
    log(event="request", request=i, gap=gap)
    try:
        port_before = conn.sock.getsockname()[1]
        get(i, 1)
    except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError) as e:
        log(event="failed", request=i, attempt=1, local_port=port_before, error=type(e).__name__ + ": " + str(e))
        conn.close()
        connect()
        get(i, 2)
conn.close()
log(event="closed")
`

// runHAProxyIdle is haproxy-idle-race.
func runHAProxyIdle(ctx context.Context, r *stackRun) error {
	back, err := freePort()
	if err != nil {
		return err
	}
	if err := r.writeWWW(2000); err != nil {
		return err
	}
	if _, err := r.startNginx(ctx, nginxConf{port: back}); err != nil {
		return err
	}
	conf := fmt.Sprintf(`global
  log stdout format raw local0 info
defaults
  mode http
  log global
  option httplog
  timeout connect 1s
  timeout client 10s
  timeout server 10s
  timeout http-keep-alive 600ms
frontend fe
  bind 127.0.0.1:%d
  default_backend be
backend be
  server nginx 127.0.0.1:%d
`, r.port, back)
	if err := os.WriteFile(r.path("haproxy.cfg"), []byte(conf), 0o644); err != nil {
		return err
	}
	hp, err := r.start(ctx, "haproxy", "proxy", r.port, "-db", "-f", r.path("haproxy.cfg"))
	if err != nil {
		return err
	}
	if err := os.WriteFile(r.path("idle.py"), []byte(pythonIdleClient), 0o644); err != nil {
		return err
	}
	gaps := "0,0.2,0.3,1.0,0.25,1.2,0.2"
	out, errb, err := r.runClient(ctx, "python3", nil, r.path("idle.py"), "127.0.0.1", strconv.Itoa(r.port), "/2000", gaps)
	r.report("python3", "http.client events, one JSON object a line", lines(out))
	if err != nil {
		return fmt.Errorf("python client: %v: %s", err, errb)
	}
	id, failures := 0, 0
	var pending []truth.Attempt
	for _, l := range lines(out) {
		var ev struct {
			Event     string  `json:"event"`
			LocalPort int     `json:"local_port"`
			Status    int     `json:"status"`
			Bytes     int64   `json:"bytes"`
			Gap       float64 `json:"gap"`
			Error     string  `json:"error"`
		}
		if err := json.Unmarshal([]byte(l), &ev); err != nil {
			return fmt.Errorf("python client line %q: %v", l, err)
		}
		switch ev.Event {
		case "connected":
			id = r.newConn(ev.LocalPort, "idle")
		case "failed":
			failures++
			k := r.conn(ev.LocalPort, "idle")
			pending = append(pending, truth.Attempt{Conn: k, ConnClient: "127.0.0.1:" + strconv.Itoa(ev.LocalPort), Reused: true})
			r.conns[k-1].failed++
		case "response":
			r.request(id, truth.Request{Phase: "idle", Method: "GET", Path: "/2000", Status: ev.Status, RespBytes: ev.Bytes,
				Reused: r.conns[id-1].requests > 0, FailedAttempts: pending})
			pending = nil
		}
	}
	// curl with Connection: close: one connection a request.
	args := []string{"-H", "Connection: close"}
	for range 10 {
		args = append(args, r.url(false, "/2000"))
	}
	ls, err := r.curl(ctx, "close", false, args...)
	if err != nil {
		return err
	}
	r.curlRequests("close", ls)
	r.signal(hp, syscall.SIGUSR1) // haproxy's soft stop
	r.wait(hp, 3*time.Second)
	r.stopAll(sigQuit)
	logs := lines(r.output(hp))
	r.report("haproxy", "log (option httplog, to stdout)", logs)
	if _, err := r.nginxAccess(); err != nil {
		return err
	}
	last := &r.st.Reports[len(r.st.Reports)-1]
	last.What += " (the backend behind haproxy: its connections are not in the capture)"
	// haproxy logs each request it answered with the client's address.
	logged := 0
	for _, l := range logs {
		addr, _, _ := strings.Cut(l, " ")
		port, _ := strconv.Atoi(strings.TrimPrefix(addr, "127.0.0.1:"))
		found := false
		for _, c := range r.conns {
			found = found || c.port == port
		}
		if strings.Contains(l, `"GET `) && found {
			logged++
		}
	}
	if logged != len(r.reqs) {
		return fmt.Errorf("haproxy logged %d requests from the clients' ports, the clients got %d responses", logged, len(r.reqs))
	}
	if failures == 0 {
		return fmt.Errorf("no request met a connection haproxy had closed")
	}
	if len(logs) == 0 {
		return fmt.Errorf("haproxy logged nothing")
	}
	r.fact("idle_failures", failures)
	r.fact("close_connections", len(ls))
	r.fact("connections", len(r.conns))
	r.verdictCause("keepalive_mismatch", "critical", "reuse_race", "server (haproxy timeout http-keep-alive 600ms) closes idle connections sooner than the client reuses them",
		fmt.Sprintf("after gaps of 1.0 s and 1.2 s Python's http.client wrote its request on the connection haproxy had "+
			"closed (FIN) after 600 ms idle: it got RemoteDisconnected or a reset (%d failed attempts in its events), haproxy's "+
			"socket answered the request with RST, and the client retried on a new connection; requests failed (the "+
			"attempts got no response), so critical by the design's rule", failures))
	r.verdictCause("reconnect_churn", "warning", "client_connection_close", "client closes every connection after one request (Connection: close)",
		fmt.Sprintf("curl -H 'Connection: close' made %d requests over %d connections (num_connects 1 each), each closed "+
			"after its response (haproxy's log: one request per client port)", len(ls), len(ls)))
	return nil
}
