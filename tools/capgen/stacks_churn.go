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

// Churn scenarios played by other stacks: a pool of connections opened
// and closed instead of reused (reconnect_churn), for three of its
// causes — the server closing each connection idle between requests,
// the client closing with the response unread, and the client leaving
// connections open while it dials new ones.

func init() {
	addStackScenarios(
		&scenario{
			name: "nginx-curl-idle-timeout",
			description: "nginx 1.22 over HTTP/1.1 with keepalive_timeout 1s, and one curl 7.88 run fetching 10 URLs with " +
				"--rate 40/m (a transfer every 1.5 s): curl keeps the connection for reuse, but nginx closes it (FIN) after 1 s " +
				"idle, so curl sees it dead and opens a new connection for every transfer (-w num_connects 1 each; nginx's " +
				"$connection_requests 1 each). Nothing fails.",
			findings: []string{"reconnect_churn"},
			commit:   true,
			tools:    []string{"nginx", "curl"},
			stack:    runNginxCurlIdle,
		},
		&scenario{
			name: "nginx-python-undrained",
			description: "nginx over HTTP/1.1 and a Python http.client loop that makes 10 requests 50 ms apart for a " +
				"20,000-byte file, each on a new connection, reads 4,096 bytes of the body and closes the connection: the " +
				"socket closes with response bytes unread, so the kernel sends RST; nginx logs the responses it could not " +
				"finish.",
			findings: []string{"reconnect_churn"},
			commit:   true,
			tools:    []string{"nginx", "python3"},
			stack:    runNginxPythonChurn("undrained"),
		},
		&scenario{
			name: "nginx-python-leak",
			description: "nginx over HTTP/1.1 with keepalive_timeout 2s, and a Python http.client loop that makes 10 requests " +
				"100 ms apart, each on a new HTTPConnection, reads each response to the end and never closes the connection " +
				"(it keeps the objects): 10 connections open at once, idle, until nginx closes each after 2 s idle (FIN); " +
				"then the client exits.",
			findings: []string{"reconnect_churn"},
			commit:   true,
			tools:    []string{"nginx", "python3"},
			stack:    runNginxPythonChurn("leak"),
		},
	)
}

// runNginxCurlIdle is nginx-curl-idle-timeout.
func runNginxCurlIdle(ctx context.Context, r *stackRun) error {
	if err := r.writeWWW(2000); err != nil {
		return err
	}
	if _, err := r.startNginx(ctx, nginxConf{server: "keepalive_timeout 1s;"}); err != nil {
		return err
	}
	const n = 10
	args := []string{"--rate", "40/m"}
	for range n {
		args = append(args, r.url(false, "/2000"))
	}
	ls, err := r.curl(ctx, "rate", false, args...)
	if err != nil {
		return err
	}
	r.curlRequests("rate", ls)
	ng, _, err := r.stopNginx()
	if err != nil {
		return err
	}
	for _, l := range ls {
		if l.connects != 1 || l.status != 200 || l.exit != 0 {
			return fmt.Errorf("curl transfer %s: %d connects, status %d, exit %d; want 1, 200, 0", l.url, l.connects, l.status, l.exit)
		}
	}
	for _, e := range ng {
		if e.connRequests != 1 {
			return fmt.Errorf("nginx connection %d: $connection_requests %d, want 1", e.conn, e.connRequests)
		}
	}
	r.fact("transfers", len(ls))
	r.fact("connections", len(r.conns))
	r.verdictCause("reconnect_churn", "warning", "server_idle_timeout",
		"the server closes each connection idle between requests (nginx keepalive_timeout 1s, a request every 1.5 s)",
		fmt.Sprintf("curl fetched %d URLs in one run (it keeps connections for reuse) with --rate 40/m; nginx's keepalive_timeout "+
			"1s closed each connection before the next transfer, so curl opened a new connection for every transfer (-w "+
			"num_connects 1 on all %d, nginx $connection_requests 1 on all); nothing failed", len(ls), len(ls)))
	r.verdictCause("keepalive_mismatch", "info", "idle_close",
		"the server closes idle connections before the client reuses them; curl noticed each close and reconnected, nothing lost",
		"curl checks a pooled connection before reusing it and found each closed by nginx: every transfer succeeded")
	return nil
}

// pythonChurnClient is the client of nginx-python-undrained and
// nginx-python-leak: N requests GAP seconds apart, each on a new
// http.client connection. In mode undrained it reads READ bytes of the
// body and closes the connection; in mode leak it reads the body to the
// end and keeps the connection open, then sleeps HOLD seconds before it
// exits. One JSON object a line.
const pythonChurnClient = `import http.client, json, sys, time
host, port, path, n, gap, mode, read, hold = sys.argv[1], int(sys.argv[2]), sys.argv[3], int(sys.argv[4]), float(sys.argv[5]), sys.argv[6], int(sys.argv[7]), float(sys.argv[8])
t0 = time.monotonic()
def log(**kw):
    kw["t"] = round(time.monotonic() - t0, 6)
    print(json.dumps(kw), flush=True)
kept = []
for i in range(n):
    if i:
        time.sleep(gap)
    c = http.client.HTTPConnection(host, port)
    c.connect()
    lp = c.sock.getsockname()[1]
    c.request("GET", path, headers={"User-Agent": "python-http.client"})
    r = c.getresponse()
    length = int(r.getheader("Content-Length", "-1"))
    if mode == "undrained":
        body = r.read(read)
        c.close()
        log(event="closed_unread", request=i, local_port=lp, status=r.status, content_length=length, read=len(body))
    else:
        body = r.read()
        kept.append(c)
        log(event="response_kept_open", request=i, local_port=lp, status=r.status, content_length=length, read=len(body))
time.sleep(hold)
log(event="exit", open=len(kept))
`

// runNginxPythonChurn returns nginx-python-undrained (mode
// "undrained") or nginx-python-leak (mode "leak").
func runNginxPythonChurn(mode string) func(ctx context.Context, r *stackRun) error {
	return func(ctx context.Context, r *stackRun) error {
		const n = 10
		size, gap, hold, server := 2000, "0.1", "2.6", "keepalive_timeout 2s;"
		if mode == "undrained" {
			size, gap, hold, server = 20000, "0.05", "0", ""
		}
		if err := r.writeWWW(size); err != nil {
			return err
		}
		if _, err := r.startNginx(ctx, nginxConf{server: server}); err != nil {
			return err
		}
		if err := os.WriteFile(r.path("churn.py"), []byte(pythonChurnClient), 0o644); err != nil {
			return err
		}
		path := "/" + strconv.Itoa(size)
		out, errb, err := r.runClient(ctx, "python3", nil, r.path("churn.py"), "127.0.0.1", strconv.Itoa(r.port), path,
			strconv.Itoa(n), gap, mode, "1024", hold)
		r.report("python3", "http.client events, one JSON object a line", lines(out))
		if err != nil {
			return fmt.Errorf("python client: %v: %s", err, errb)
		}
		// Let nginx write its log lines for the reset connections.
		if err := sleepCtx(ctx, 200*time.Millisecond); err != nil {
			return err
		}
		var partial int
		for _, l := range lines(out) {
			var ev struct {
				Event         string `json:"event"`
				LocalPort     int    `json:"local_port"`
				Status        int    `json:"status"`
				ContentLength int64  `json:"content_length"`
				Read          int64  `json:"read"`
				Open          int    `json:"open"`
			}
			if err := json.Unmarshal([]byte(l), &ev); err != nil {
				return fmt.Errorf("python client line %q: %v", l, err)
			}
			switch ev.Event {
			case "closed_unread", "response_kept_open":
				if ev.Status != 200 || ev.ContentLength != int64(size) {
					return fmt.Errorf("python client line %q: want 200 and Content-Length %d", l, size)
				}
				if ev.Read < ev.ContentLength {
					partial++
				}
				id := r.newConn(ev.LocalPort, mode)
				r.request(id, truth.Request{Phase: mode, Method: "GET", Path: path, Status: ev.Status, RespBytes: ev.Read})
			case "exit":
				if mode == "leak" && ev.Open != n {
					return fmt.Errorf("python client kept %d connections open, want %d", ev.Open, n)
				}
			}
		}
		ng, errs, err := r.stopNginx()
		if err != nil {
			return err
		}
		if len(r.conns) != n {
			return fmt.Errorf("python client reported %d connections, want %d", len(r.conns), n)
		}
		var short int
		for _, e := range ng {
			if e.bodyBytes < int64(size) {
				short++
			}
		}
		r.fact("connections", len(r.conns))
		r.fact("requests", len(r.reqs))
		switch mode {
		case "undrained":
			if partial != n {
				return fmt.Errorf("python client read %d bodies in part, want %d", partial, n)
			}
			r.fact("bodies_unread", partial)
			r.fact("nginx_short_bodies", short)
			r.verdictCause("reconnect_churn", "warning", "body_not_drained",
				"the client closes each connection with its response unread (the kernel resets it), so none can be reused",
				fmt.Sprintf("the Python client read 1,024 of %d bytes of each of %d responses and closed the connection "+
					"(its events: closed_unread); a socket closed with received bytes unread is reset by the kernel (RST); "+
					"nginx logged %d of the %d responses with fewer bytes sent than the file and %d error log lines",
					size, n, short, n, len(errs)))
		case "leak":
			r.fact("kept_open", n)
			r.verdictCause("reconnect_churn", "warning", "connections_leaked",
				"the client opens a new connection per request and leaves the old ones open, idle, until the server closes them",
				fmt.Sprintf("the Python client made %d requests on %d new HTTPConnections, read every response to the end and "+
					"closed none (its events: response_kept_open, then exit with %d open); nginx closed each after its "+
					"keepalive_timeout of 2 s idle", n, n, n))
			r.verdictCause("keepalive_mismatch", "info", "idle_close",
				"nginx closed the leaked connections idle; no request was sent on them again, nothing lost",
				"no request was written on a connection after nginx's close: the client never reused them")
		}
		return nil
	}
}

func init() {
	addStackScenarios(
		&scenario{
			name: "haproxy-curl-idle-timeout",
			description: "as nginx-curl-idle-timeout with haproxy 2.6 in front of nginx (not captured): haproxy's timeout " +
				"http-keep-alive 1s closes each client connection idle between curl's transfers (--rate 40/m, one every 1.5 s), " +
				"so curl opens a new connection for each of its 10 transfers. haproxy logs every request (option httplog).",
			findings: []string{"reconnect_churn"},
			commit:   true,
			tools:    []string{"haproxy", "nginx", "curl"},
			stack:    runHAProxyChurn("idle"),
		},
		&scenario{
			name: "haproxy-python-undrained",
			description: "as nginx-python-undrained with haproxy in front of nginx (not captured): 10 Python http.client " +
				"connections 50 ms apart, each reading 1,024 bytes of a 20,000-byte response and closing: the client's " +
				"kernel resets each. haproxy logs every request.",
			findings: []string{"reconnect_churn"},
			commit:   true,
			tools:    []string{"haproxy", "nginx", "python3"},
			stack:    runHAProxyChurn("undrained"),
		},
		&scenario{
			name: "haproxy-python-leak",
			description: "as nginx-python-leak with haproxy in front of nginx (not captured) and timeout http-keep-alive 2s: " +
				"10 Python HTTPConnections 100 ms apart, each read to the end and never closed, until haproxy closes each " +
				"after 2 s idle. haproxy logs every request.",
			findings: []string{"reconnect_churn"},
			commit:   true,
			tools:    []string{"haproxy", "nginx", "python3"},
			stack:    runHAProxyChurn("leak"),
		},
	)
}

// runHAProxyChurn returns haproxy-curl-idle-timeout (mode "idle"),
// haproxy-python-undrained ("undrained") or haproxy-python-leak
// ("leak"): haproxy on the captured port in front of nginx.
func runHAProxyChurn(mode string) func(ctx context.Context, r *stackRun) error {
	return func(ctx context.Context, r *stackRun) error {
		const n = 10
		size, keepAlive := 2000, map[string]string{"idle": "1s", "leak": "2s", "undrained": "10s"}[mode]
		if mode == "undrained" {
			size = 20000
		}
		back, err := freePort()
		if err != nil {
			return err
		}
		if err := r.writeWWW(size); err != nil {
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
  timeout http-keep-alive %s
frontend fe
  bind 127.0.0.1:%d
  default_backend be
backend be
  server nginx 127.0.0.1:%d
`, keepAlive, r.port, back)
		if err := os.WriteFile(r.path("haproxy.cfg"), []byte(conf), 0o644); err != nil {
			return err
		}
		hp, err := r.start(ctx, "haproxy", "proxy", r.port, "-db", "-f", r.path("haproxy.cfg"))
		if err != nil {
			return err
		}
		path := "/" + strconv.Itoa(size)
		switch mode {
		case "idle":
			args := []string{"--rate", "40/m"}
			for range n {
				args = append(args, r.url(false, path))
			}
			ls, err := r.curl(ctx, "rate", false, args...)
			if err != nil {
				return err
			}
			for _, l := range ls {
				if l.connects != 1 || l.status != 200 || l.exit != 0 {
					return fmt.Errorf("curl transfer %s: %d connects, status %d, exit %d; want 1, 200, 0", l.url, l.connects, l.status, l.exit)
				}
			}
			r.curlRequests("rate", ls)
		default:
			if err := os.WriteFile(r.path("churn.py"), []byte(pythonChurnClient), 0o644); err != nil {
				return err
			}
			gap, hold := "0.05", "0"
			if mode == "leak" {
				gap, hold = "0.1", "2.6"
			}
			out, errb, err := r.runClient(ctx, "python3", nil, r.path("churn.py"), "127.0.0.1", strconv.Itoa(r.port), path,
				strconv.Itoa(n), gap, mode, "1024", hold)
			r.report("python3", "http.client events, one JSON object a line", lines(out))
			if err != nil {
				return fmt.Errorf("python client: %v: %s", err, errb)
			}
			for _, l := range lines(out) {
				var ev struct {
					Event         string `json:"event"`
					LocalPort     int    `json:"local_port"`
					Status        int    `json:"status"`
					ContentLength int64  `json:"content_length"`
					Read          int64  `json:"read"`
				}
				if err := json.Unmarshal([]byte(l), &ev); err != nil {
					return fmt.Errorf("python client line %q: %v", l, err)
				}
				if ev.Event != "closed_unread" && ev.Event != "response_kept_open" {
					continue
				}
				if ev.Status != 200 || ev.ContentLength != int64(size) || (mode == "undrained") != (ev.Read < ev.ContentLength) {
					return fmt.Errorf("python client line %q: want 200, Content-Length %d, body read in full only without undrained", l, size)
				}
				id := r.newConn(ev.LocalPort, mode)
				r.request(id, truth.Request{Phase: mode, Method: "GET", Path: path, Status: ev.Status, RespBytes: ev.Read})
			}
		}
		if err := sleepCtx(ctx, 200*time.Millisecond); err != nil {
			return err
		}
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
		// haproxy logs each request with the client's address.
		logged := map[int]int{}
		for _, l := range logs {
			addr, _, _ := strings.Cut(l, " ")
			port, _ := strconv.Atoi(strings.TrimPrefix(addr, "127.0.0.1:"))
			if strings.Contains(l, `"GET `) {
				logged[port]++
			}
		}
		for _, c := range r.conns {
			if logged[c.port] != 1 {
				return fmt.Errorf("haproxy logged %d requests from port %d, want 1", logged[c.port], c.port)
			}
		}
		if len(r.conns) != n || len(logged) != n {
			return fmt.Errorf("%d connections reported, haproxy logged %d client ports; want %d", len(r.conns), len(logged), n)
		}
		r.fact("connections", len(r.conns))
		r.fact("requests", len(r.reqs))
		switch mode {
		case "idle":
			r.verdictCause("reconnect_churn", "warning", "server_idle_timeout",
				"the proxy closes each connection idle between requests (haproxy timeout http-keep-alive 1s, a request every 1.5 s)",
				fmt.Sprintf("curl fetched %d URLs in one run with --rate 40/m; haproxy closed each idle connection after 1 s, so "+
					"curl opened a new connection for every transfer (-w num_connects 1 on all; haproxy's log: one request per "+
					"client port); nothing failed", n))
			r.verdictCause("keepalive_mismatch", "info", "idle_close",
				"haproxy closes idle connections before curl reuses them; curl noticed each close and reconnected, nothing lost",
				"every transfer succeeded: curl checks a pooled connection before reusing it")
		case "undrained":
			r.verdictCause("reconnect_churn", "warning", "body_not_drained",
				"the client closes each connection with its response unread (the kernel resets it), so none can be reused",
				fmt.Sprintf("the Python client read 1,024 of %d bytes of each of %d responses through haproxy and closed the "+
					"connection (its events: closed_unread): the kernel resets a socket closed with received bytes unread", size, n))
		case "leak":
			r.verdictCause("reconnect_churn", "warning", "connections_leaked",
				"the client opens a new connection per request and leaves the old ones open, idle, until the proxy closes them",
				fmt.Sprintf("the Python client made %d requests on %d new HTTPConnections through haproxy, read every response "+
					"and closed none; haproxy closed each after timeout http-keep-alive 2s", n, n))
			r.verdictCause("keepalive_mismatch", "info", "idle_close",
				"haproxy closed the leaked connections idle; no request was sent on them again, nothing lost",
				"no request was written on a connection after haproxy's close: the client never reused them")
		}
		return nil
	}
}
