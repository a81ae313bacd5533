package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
)

// h2oLogFormat is the access log format of h2o in the stack scenarios.
const h2oLogFormat = `%{remote}p %{connection-id}x %{http2.stream-id}x %m %U %H %s %b %{duration}x %{ssl.protocol-version}x %{ssl.session-reused}x`

// startH2O writes DIR/h2o.conf and starts h2o serving DIR/www over TLS
// (1.2 and 1.3, ALPN h2 and http/1.1) on the captured port.
func (r *stackRun) startH2O(ctx context.Context) (*exec.Cmd, error) {
	if err := r.writeCert(ctx); err != nil {
		return nil, err
	}
	ssl := fmt.Sprintf(`
  ssl:
    certificate-file: %[1]s/cert.pem
    key-file: %[1]s/key.pem
    minimum-version: TLSv1.2
    ocsp-update-interval: 0`, r.dir)
	return r.startH2OConf(ctx, ssl, fmt.Sprintf("%s:%d", stackHost, r.port))
}

// startH2OConf writes DIR/h2o.conf, listening on the captured port with
// the listen block's ssl part (empty for cleartext) and serving DIR/www
// as host, with the access log in h2oLogFormat, and starts h2o.
func (r *stackRun) startH2OConf(ctx context.Context, ssl, host string) (*exec.Cmd, error) {
	conf := fmt.Sprintf(`user: root
listen:
  host: 127.0.0.1
  port: %[2]d%[5]s
hosts:
  "%[3]s":
    paths:
      /:
        file.dir: %[1]s/www
access-log:
  path: %[1]s/h2o-access.log
  format: "%[4]s"
error-log: %[1]s/h2o-error.log
pid-file: %[1]s/h2o.pid
`, r.dir, r.port, host, h2oLogFormat, ssl)
	if err := os.WriteFile(r.path("h2o.conf"), []byte(conf), 0o644); err != nil {
		return nil, err
	}
	return r.start(ctx, "h2o", "server", r.port, "-c", r.path("h2o.conf"))
}

// runH2OCurl is h2o-curl-h2.
func runH2OCurl(ctx context.Context, r *stackRun) error {
	if err := r.writeWWW(40000, 20000, 10000, 4000); err != nil {
		return err
	}
	if _, err := r.startH2O(ctx); err != nil {
		return err
	}
	r.keylog = r.path("keys")
	args := append(r.curlTLS(), "--http2", "--tlsv1.3", "--parallel", "--parallel-max", "4")
	for _, p := range []string{"/40000", "/20000", "/10000", "/4000", "/index.html", "/20000"} {
		args = append(args, r.url(true, p))
	}
	ls, err := r.curl(ctx, "parallel", false, args...)
	if err != nil {
		return err
	}
	r.curlRequests("parallel", ls)
	args = append(r.curlTLS(), "--http2", "--tlsv1.3")
	for _, p := range []string{"/10000", "/4000", "/index.html", "/40000"} {
		args = append(args, r.url(true, p))
	}
	if ls, err = r.curl(ctx, "sequential", false, args...); err != nil {
		return err
	}
	r.curlRequests("sequential", ls)
	r.stopAll(sigTerm)
	b, err := os.ReadFile(r.path("h2o-access.log"))
	if err != nil {
		return err
	}
	logs := lines(b)
	r.report("h2o", "access log, format "+h2oLogFormat, logs)
	eb, _ := os.ReadFile(r.path("h2o-error.log"))
	r.report("h2o", "error log", lines(eb))
	// h2o logs $remote_port and its connection ID: the same connections
	// and requests per connection as curl.
	perConn, port := map[string]int{}, map[string]int{}
	for _, l := range logs {
		f := strings.Fields(l)
		if len(f) != 11 || f[6] != "200" || f[5] != "HTTP/2" || f[9] != "TLSv1.3" {
			return fmt.Errorf("h2o logged %q", l)
		}
		perConn[f[1]]++
		port[f[1]], _ = strconv.Atoi(f[0])
	}
	if len(perConn) != len(r.conns) || len(logs) != len(r.reqs) {
		return fmt.Errorf("h2o logged %d requests on %d connections, curl %d on %d", len(logs), len(perConn), len(r.reqs), len(r.conns))
	}
	for id, n := range perConn {
		found := false
		for _, c := range r.conns {
			found = found || c.port == port[id] && c.requests == n
		}
		if !found {
			return fmt.Errorf("h2o connection %s (port %d, %d requests) not as curl reported", id, port[id], n)
		}
	}
	r.fact("connections", len(r.conns))
	r.fact("requests", len(logs))
	return nil
}
