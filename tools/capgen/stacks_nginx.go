package main

import (
	"context"
	"crypto/rand"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/h2scope/h2scope/tools/capgen/truth"
)

// nginxLogFormat is the access log format of the stack scenarios: one
// line per request with what the truth needs from nginx.
const nginxLogFormat = `$remote_port $connection $connection_requests $request_method $request_uri $server_protocol ` +
	`$status $body_bytes_sent $request_time $ssl_protocol $ssl_session_reused`

// nginxConf is an nginx configuration: one server on the captured port.
type nginxConf struct {
	tls    bool   // listen ssl (TLS 1.2 and 1.3) with the run's certificate
	h2     bool   // listen http2 (h2 over TLS, h2c with prior knowledge without)
	server string // more directives for the server block
	http   string // more directives for the http block
	port   int    // the port to listen on; 0 means the captured port
	listen string // more parameters of the listen directive ("backlog=1")
	host   string // the address to listen on; "" means 127.0.0.1
}

// writeWWW fills DIR/www with the files the clients fetch: /index.html
// and /N (N random bytes, e.g. /20000), sized as asked.
func (r *stackRun) writeWWW(sizes ...int) error {
	if err := os.MkdirAll(r.path("www"), 0o755); err != nil {
		return err
	}
	if err := os.WriteFile(r.path("www/index.html"), []byte("<!doctype html><title>h2scope</title>\n"), 0o644); err != nil {
		return err
	}
	for _, n := range sizes {
		b := make([]byte, n)
		rand.Read(b)
		if err := os.WriteFile(r.path("www/"+strconv.Itoa(n)), b, 0o644); err != nil {
			return err
		}
	}
	return nil
}

// writeCert makes a P-256 certificate for stackHost with openssl, as
// DIR/cert.pem and DIR/key.pem.
func (r *stackRun) writeCert(ctx context.Context) error {
	out, err := exec.CommandContext(ctx, "openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
		"-nodes", "-keyout", r.path("key.pem"), "-out", r.path("cert.pem"), "-days", "30",
		"-subj", "/CN="+stackHost, "-addext", "subjectAltName=DNS:"+stackHost).CombinedOutput()
	if err != nil {
		return fmt.Errorf("openssl req: %v: %s", err, out)
	}
	return nil
}

// startNginx writes DIR/nginx.conf and starts nginx in the foreground
// (master and one worker).
func (r *stackRun) startNginx(ctx context.Context, c nginxConf) (*exec.Cmd, error) {
	port, err := r.writeNginx(ctx, c)
	if err != nil {
		return nil, err
	}
	return r.start(ctx, "nginx", "server", port, "-p", r.dir, "-c", r.path("nginx.conf"))
}

// writeNginx writes DIR/nginx.conf (and the certificate for TLS) and
// returns the port it listens on.
func (r *stackRun) writeNginx(ctx context.Context, c nginxConf) (int, error) {
	if _, err := os.Stat(r.path("cert.pem")); c.tls && err != nil {
		// Once per run: a configuration written again (before nginx -s
		// reload) keeps the certificate.
		if err := r.writeCert(ctx); err != nil {
			return 0, err
		}
	}
	port := c.port
	if port == 0 {
		port = r.port
	}
	host := c.host
	if host == "" {
		host = "127.0.0.1"
	}
	listen := "listen " + host + ":" + strconv.Itoa(port)
	if c.tls {
		listen += " ssl"
	}
	if c.h2 {
		listen += " http2"
	}
	if c.listen != "" {
		listen += " " + c.listen
	}
	var tls string
	if c.tls {
		tls = fmt.Sprintf("ssl_certificate %s; ssl_certificate_key %s; ssl_protocols TLSv1.2 TLSv1.3;",
			r.path("cert.pem"), r.path("key.pem"))
	}
	conf := fmt.Sprintf(`daemon off;
master_process on;
worker_processes 1;
user root;
pid %[1]s/nginx.pid;
error_log %[1]s/error.log info;
events { worker_connections 64; }
http {
  log_format capgen '%[2]s';
  access_log %[1]s/access.log capgen;
  default_type application/octet-stream;
  sendfile off;
  %[5]s
  server {
    %[3]s;
    server_name %[6]s;
    %[4]s
    root %[1]s/www;
    %[7]s
  }
}
`, r.dir, nginxLogFormat, listen, tls, c.http, stackHost, c.server)
	if err := os.WriteFile(r.path("nginx.conf"), []byte(conf), 0o644); err != nil {
		return 0, err
	}
	return port, nil
}

// stopNginx stops the run's programs (nginx gracefully), records
// nginx's access and error logs as reports, checks that the access log
// names the connections the clients reported with their requests
// (checkNginxConns), and returns both logs.
func (r *stackRun) stopNginx() (access []nginxLog, errs []string, err error) {
	r.stopAll(sigQuit)
	ng, err := r.nginxAccess()
	if err != nil {
		return nil, nil, err
	}
	errs = r.nginxErrors()
	if err := r.checkNginxConns(ng); err != nil {
		return nil, nil, err
	}
	return ng, errs, nil
}

// nginxLog is one line of the access log (nginxLogFormat).
type nginxLog struct {
	port, conn, connRequests, status int
	method, uri, proto               string
	bodyBytes                        int64
	requestTime                      string
	ssl, reused                      string
}

// nginxAccess reads the access log, records it as a report and returns
// its lines parsed.
func (r *stackRun) nginxAccess() ([]nginxLog, error) {
	b, err := os.ReadFile(r.path("access.log"))
	if err != nil {
		return nil, err
	}
	ls := lines(b)
	r.report("nginx", "access log, log_format "+nginxLogFormat, ls)
	var out []nginxLog
	for _, l := range ls {
		f := strings.Fields(l)
		if len(f) != 11 {
			return nil, fmt.Errorf("access log line %q: %d fields", l, len(f))
		}
		var e nginxLog
		var errs [5]error
		e.port, errs[0] = strconv.Atoi(f[0])
		e.conn, errs[1] = strconv.Atoi(f[1])
		e.connRequests, errs[2] = strconv.Atoi(f[2])
		e.status, errs[3] = strconv.Atoi(f[6])
		e.bodyBytes, errs[4] = strconv.ParseInt(f[7], 10, 64)
		for _, err := range errs {
			if err != nil {
				return nil, fmt.Errorf("access log line %q: %v", l, err)
			}
		}
		e.method, e.uri, e.proto, e.requestTime, e.ssl, e.reused = f[3], f[4], f[5], f[8], f[9], f[10]
		out = append(out, e)
	}
	return out, nil
}

// nginxErrors records the error log (info level) as a report and
// returns its lines.
func (r *stackRun) nginxErrors() []string {
	b, _ := os.ReadFile(r.path("error.log"))
	ls := lines(b)
	r.report("nginx", "error log, level info", ls)
	return ls
}

// curlFormat is the -w format of the stack scenarios' curl runs: one
// line per transfer.
const curlFormat = `%{local_port} %{num_connects} %{http_version} %{response_code} %{size_download} %{exitcode} ` +
	`%{time_appconnect} %{time_starttransfer} %{time_total} %{url} %{errormsg}\n`

// curlLine is one line of curlFormat.
type curlLine struct {
	port, connects, status, exit int
	version, url, errmsg         string
	size                         int64
}

// curl runs curl with args (URLs last) and -w curlFormat, keeping its
// report; it logs TLS secrets to r.keylog when set. A curl that fails
// is an error only if failOK is false.
func (r *stackRun) curl(ctx context.Context, phase string, failOK bool, args ...string) ([]curlLine, error) {
	var env []string
	if r.keylog != "" {
		env = append(env, "SSLKEYLOGFILE="+r.keylog)
	}
	full := append([]string{"-sS", "-o", "/dev/null", "-w", curlFormat}, args...)
	// -o applies to one URL: give each URL its own.
	var urls int
	for _, a := range args {
		if strings.HasPrefix(a, "http://") || strings.HasPrefix(a, "https://") {
			urls++
		}
	}
	for i := 1; i < urls; i++ {
		full = append([]string{"-o", "/dev/null"}, full...)
	}
	out, errb, err := r.runClient(ctx, "curl", env, full...)
	r.report("curl", phase+": -w '"+strings.TrimSuffix(curlFormat, `\n`)+"'", lines(out))
	if len(errb) > 0 {
		r.report("curl", phase+": standard error", lines(errb))
	}
	if err != nil && !failOK {
		return nil, fmt.Errorf("curl: %v: %s", err, errb)
	}
	var res []curlLine
	for _, l := range lines(out) {
		f := strings.SplitN(l, " ", 11)
		if len(f) < 10 {
			return nil, fmt.Errorf("curl -w line %q", l)
		}
		var c curlLine
		c.port, _ = strconv.Atoi(f[0])
		c.connects, _ = strconv.Atoi(f[1])
		c.version = f[2]
		c.status, _ = strconv.Atoi(f[3])
		c.size, _ = strconv.ParseInt(f[4], 10, 64)
		c.exit, _ = strconv.Atoi(f[5])
		c.url = f[9]
		if len(f) == 11 {
			c.errmsg = f[10]
		}
		res = append(res, c)
	}
	return res, nil
}

// curlRequests records curl's transfers as requests on the connections
// of their local ports (a transfer with num_connects 1 opened its
// connection; a port seen again later with a new connect is a new
// connection), in the order curl reported them.
func (r *stackRun) curlRequests(phase string, ls []curlLine) {
	for _, c := range ls {
		if c.port == 0 {
			continue // no connection
		}
		// curl prints transfers as they end, so a reuse may come before
		// the transfer that opened the connection.
		id := 0
		for i := len(r.conns) - 1; i >= 0 && id == 0; i-- {
			if k := r.conns[i]; k.port == c.port && (c.connects == 0 || !k.opened) {
				id = i + 1
			}
		}
		if id == 0 {
			id = r.newConn(c.port, phase)
		}
		if c.connects > 0 {
			r.conns[id-1].opened = true
		}
		path := c.url
		if i := strings.Index(path, "://"); i >= 0 {
			if j := strings.IndexByte(path[i+3:], '/'); j >= 0 {
				path = path[i+3+j:]
			}
		}
		proto := map[string]string{"2": "HTTP/2.0", "1.1": "HTTP/1.1"}[c.version]
		r.request(id, truth.Request{Phase: phase, Method: "GET", Path: path, Status: c.status, RespBytes: c.size,
			Proto: proto, Reused: c.connects == 0, Error: c.errmsg})
	}
}

// curlTLS returns curl's arguments to reach the captured TLS server as
// https://stackHost:PORT.
func (r *stackRun) curlTLS() []string {
	return []string{"-k", "--resolve", fmt.Sprintf("%s:%d:127.0.0.1", stackHost, r.port)}
}

// url returns the URL of path on the captured server.
func (r *stackRun) url(tls bool, path string) string {
	if tls {
		return fmt.Sprintf("https://%s:%d%s", stackHost, r.port, path)
	}
	return fmt.Sprintf("http://127.0.0.1:%d%s", r.port, path)
}

// checkNginxConns checks that nginx's access log names the same
// connections, by client port, with the same requests per connection,
// as the client reported.
func (r *stackRun) checkNginxConns(ng []nginxLog) error {
	perConn := map[int]int{} // nginx $connection -> requests
	port := map[int]int{}
	for _, e := range ng {
		perConn[e.conn]++
		port[e.conn] = e.port
	}
	opened := 0 // connections whose connect succeeded
	for _, c := range r.conns {
		if c.dial == "" {
			opened++
		}
	}
	if len(perConn) != opened {
		return fmt.Errorf("nginx logged %d connections, the clients opened %d", len(perConn), opened)
	}
	for n, k := range perConn {
		found := false
		for _, c := range r.conns {
			found = found || c.port == port[n] && c.requests == k
		}
		if !found {
			return fmt.Errorf("nginx connection %d (port %d, %d requests) not as the client reported", n, port[n], k)
		}
	}
	return nil
}

// sleepCtx sleeps for d unless ctx ends first.
func sleepCtx(ctx context.Context, d time.Duration) error {
	select {
	case <-time.After(d):
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// runNginxReload is nginx-reload-goaway.
func runNginxReload(ctx context.Context, r *stackRun) error {
	const size = 100000
	if err := r.writeWWW(size); err != nil {
		return err
	}
	if _, err := r.startNginx(ctx, nginxConf{tls: true, h2: true, server: "limit_rate 64k;"}); err != nil {
		return err
	}
	r.keylog = r.path("keys")
	args := append(r.curlTLS(), "--http2", "--tlsv1.3", "--parallel", "--parallel-max", "2",
		r.url(true, "/100000"), r.url(true, "/100000"), r.url(true, "/index.html"))
	type res struct {
		ls  []curlLine
		err error
	}
	ch := make(chan res, 1)
	go func() {
		ls, err := r.curl(ctx, "downloads", false, args...)
		ch <- res{ls, err}
	}()
	if err := sleepCtx(ctx, 600*time.Millisecond); err != nil {
		return err
	}
	reload := []string{"-p", r.dir, "-c", r.path("nginx.conf"), "-s", "reload"}
	r.program("nginx", "server", reload)
	if out, err := r.command(ctx, "nginx", reload).CombinedOutput(); err != nil {
		return fmt.Errorf("nginx -s reload: %v: %s", err, out)
	}
	c := <-ch
	if c.err != nil {
		return c.err
	}
	r.curlRequests("downloads", c.ls)
	_, errs, err := r.stopNginx()
	if err != nil {
		return err
	}
	var ok, connects int
	for _, l := range c.ls {
		if l.status == 200 && l.exit == 0 {
			ok++
		}
		connects += l.connects
	}
	graceful := 0
	for _, l := range errs {
		if strings.Contains(l, "gracefully shutting down") {
			graceful++
		}
	}
	if ok != 3 || connects != 2 || graceful == 0 {
		return fmt.Errorf("curl: %d of 3 transfers succeeded over %d connections, nginx logged %d graceful shutdowns; want 3, 2, 1",
			ok, connects, graceful)
	}
	r.fact("transfers_ok", ok)
	r.fact("connections", connects)
	r.verdictCause("goaway", "info", "graceful", "server's graceful shutdown (nginx reload): GOAWAY NO_ERROR, streams in flight completed",
		"nginx -s reload made the old worker shut down gracefully (its error log: \"gracefully shutting down\"); its GOAWAY "+
			"NO_ERROR let both 100,000-byte downloads in flight finish (curl: 200, exit 0, full size) and curl sent the "+
			"queued request on a new connection (num_connects 1): nothing failed, nothing to warn about")
	return nil
}

// runNginxKilled is nginx-killed-midstream.
func runNginxKilled(ctx context.Context, r *stackRun) error {
	const size = 200000
	if err := r.writeWWW(size); err != nil {
		return err
	}
	srv, err := r.startNginx(ctx, nginxConf{tls: true, h2: true, server: "limit_rate 32k;"})
	if err != nil {
		return err
	}
	r.keylog = r.path("keys")
	args := append(r.curlTLS(), "--http2", "--tlsv1.3", "--parallel", "--parallel-max", "2",
		r.url(true, "/200000"), r.url(true, "/200000"))
	type res struct {
		ls  []curlLine
		err error
	}
	ch := make(chan res, 1)
	go func() {
		ls, err := r.curl(ctx, "downloads", true, args...)
		ch <- res{ls, err}
	}()
	if err := sleepCtx(ctx, 800*time.Millisecond); err != nil {
		return err
	}
	// kill -9 of the master and its worker, as an OOM killer or a
	// crashed host would end them: no GOAWAY, the kernel closes the sockets.
	if err := r.signal(srv, syscall.SIGKILL); err != nil {
		return err
	}
	r.report("capgen", "signals capgen sent", []string{"800 ms after curl started: SIGKILL to nginx's process group (master and worker)"})
	c := <-ch
	if c.err != nil {
		return c.err
	}
	r.curlRequests("downloads", c.ls)
	errs := r.nginxErrors()
	var failed, connects int
	var got int64
	for _, l := range c.ls {
		if l.exit != 0 {
			failed++
		}
		connects += l.connects
		got += l.size
	}
	if failed != 2 || connects != 1 || len(errs) == 0 {
		return fmt.Errorf("curl: %d of 2 transfers failed over %d connections; want 2 over 1", failed, connects)
	}
	// The access log is written when a request ends: nginx died first.
	if b, _ := os.ReadFile(r.path("access.log")); len(b) != 0 {
		return fmt.Errorf("nginx logged requests before it was killed: %s", b)
	}
	r.report("nginx", "access log", []string{})
	r.fact("transfers_failed", failed)
	r.fact("bytes_received", int(got))
	r.verdictCause("connection_lost", "critical", "server_abort", "server process killed mid-stream: connection closed with 2 streams in flight, no GOAWAY",
		fmt.Sprintf("nginx (master and worker) was killed with SIGKILL 800 ms into two 200,000-byte downloads throttled to 32 KB/s "+
			"each; the kernel closed its socket, so the connection ended without GOAWAY and without END_STREAM on either "+
			"stream; curl reported both transfers failed (%d bytes of 400,000 received; its -w errormsg and exit code) and "+
			"nginx's access log is empty (it logs a request when it ends)", got))
	return nil
}
