package main

import (
	"context"
	"fmt"
	"time"
)

func init() {
	scenarios = append(scenarios, stackScenarios[:writtenStacks]...)
}

// writtenStacks is the number of stack scenarios written here, counted
// before any init adds more (addStackScenarios).
var writtenStacks = len(stackScenarios)

// addStackScenarios adds stack scenarios written in other files, from
// their init.
func addStackScenarios(scs ...*scenario) {
	stackScenarios = append(stackScenarios, scs...)
	scenarios = append(scenarios, scs...)
}

// stackScenarios are the scenarios played by other stacks (stacks.go),
// in the order written.
var stackScenarios = []*scenario{
	{
		name: "nginx-curl-h2",
		description: "nginx 1.22 serving HTTP/2 over TLS 1.3 (ALPN h2) and curl 7.88 (libcurl, nghttp2) with keep-alive: " +
			"one curl run fetches 6 files with --parallel (up to 4 streams at once on one connection, multiplexed), a " +
			"second fetches 4 files one after another on one connection (reused). Healthy traffic: 2 connections, 10 " +
			"requests, all 200. curl logs its TLS secrets (SSLKEYLOGFILE).",
		findings: []string{},
		commit:   true,
		tools:    []string{"nginx", "curl", "openssl"},
		stack:    runNginxCurlH2,
	},
	{
		name: "h2o-curl-h2",
		description: "h2o 2.2 serving HTTP/2 over TLS 1.3 and curl 7.88, as nginx-curl-h2: one curl run fetches 6 files with " +
			"--parallel on one connection, a second 4 files one after another on one connection. Healthy: 2 connections, " +
			"10 requests, all 200; h2o's access log ($remote_port, connection and stream IDs) agrees with curl's -w.",
		findings: []string{},
		commit:   true,
		tools:    []string{"h2o", "curl", "openssl"},
		stack:    runH2OCurl,
	},
	{
		name: "nghttpd-python-cancel",
		description: "nghttpd (nghttp2 1.52) over h2c and a python-h2 4.1 client with prior knowledge and an 8,192-byte " +
			"initial window: 16 GETs of a 40,000-byte file one at a time, each stream reset with RST_STREAM CANCEL as soon " +
			"as its response HEADERS arrive (the DATA already in flight still arrives), sleeping 150 ms between requests (fewer " +
			"than 10 resets in any second); then GOAWAY NO_ERROR. " +
			"Client cancellations, one at a time after the response began: not a rapid-reset flood, nothing to warn about.",
		findings: []string{},
		commit:   true,
		tools:    []string{"nghttpd", "python3-h2"},
		stack:    runPythonCancel(16, 150*time.Millisecond),
	},
	{
		name: "nghttpd-python-cancel-burst",
		description: "as nghttpd-python-cancel, sleeping 20 ms between requests: 16 client cancellations (RST_STREAM " +
			"CANCEL, each after its response HEADERS and DATA) within about 0.7 s. A burst by rst_storm's threshold, so a " +
			"warning, but not rapid reset: the server answered every request before its reset.",
		findings: []string{"rst_storm"},
		commit:   true,
		tools:    []string{"nghttpd", "python3-h2"},
		stack:    runPythonCancel(16, 20*time.Millisecond),
	},
	{
		name: "nginx-reload-goaway",
		description: "nginx serving HTTP/2 over TLS 1.3 with limit_rate 64k and curl --parallel --parallel-max 2: two " +
			"100,000-byte downloads (about 1.5 s each) and a small request queued behind them; 600 ms in, nginx -s reload: " +
			"the old worker shuts down gracefully, sends GOAWAY NO_ERROR and finishes both downloads, and curl sends the " +
			"queued request on a new connection to the new worker. curl logs its TLS secrets.",
		findings: []string{},
		commit:   true,
		tools:    []string{"nginx", "curl", "openssl"},
		stack:    runNginxReload,
	},
	{
		name: "nginx-killed-midstream",
		description: "nginx serving HTTP/2 over TLS 1.3 with limit_rate 32k, and curl --parallel downloading two " +
			"200,000-byte files on one connection; 800 ms in, nginx's master and worker are killed with SIGKILL: the " +
			"kernel closes the socket, no GOAWAY and no END_STREAM, both streams cut, and curl reports both transfers " +
			"failed. (Over h2c with prior knowledge curl 7.88 does not multiplex the second download, so TLS.) curl logs " +
			"its TLS secrets.",
		findings: []string{"connection_lost"},
		commit:   true,
		tools:    []string{"nginx", "curl", "openssl"},
		stack:    runNginxKilled,
	},
	{
		name: "nghttpd-killed-midstream",
		description: "nghttpd over h2c and a python-h2 client (prior knowledge) downloading a 300,000-byte file with a " +
			"16,384-byte stream window it returns (WINDOW_UPDATE) only every 200 ms; once the client has read 3 windows " +
			"(49,152 bytes), nghttpd is killed with SIGKILL: the kernel closes the socket, no GOAWAY and no END_STREAM, and the client reports the connection " +
			"closed with the stream unfinished. The slow reading is a flow-control stall of its own (window_stall).",
		findings: []string{"connection_lost", "window_stall"},
		commit:   true,
		tools:    []string{"nghttpd", "python3-h2"},
		stack:    runNghttpdKilled,
	},
	{
		name: "nginx-openssl-resume",
		description: "nginx over TLS (HTTP/1.1, keepalive_timeout 0) with ssl_session_cache off and session tickets on, and " +
			"openssl s_client (OpenSSL 3.0) making one request a connection: over TLS 1.3 a full handshake, then 2 " +
			"connections offering the saved session (-sess_in, a PSK) that nginx resumes; the same over TLS 1.2 with the " +
			"ticket. s_client prints New or Reused, nginx logs $ssl_session_reused; s_client logs the TLS secrets (-keylogfile).",
		findings: []string{},
		commit:   true,
		tools:    []string{"nginx", "openssl"},
		stack:    runNginxResume(false),
	},
	{
		name: "nginx-openssl-resume-fail",
		description: "as nginx-openssl-resume, but after each first connection nginx gets a new ssl_session_ticket_key " +
			"(nginx -s reload): the 2 offers of the saved session, over TLS 1.3 (PSK) and TLS 1.2 (ticket), are all refused " +
			"and every handshake is full.",
		findings: []string{"resumption_failure"},
		commit:   true,
		tools:    []string{"nginx", "openssl"},
		stack:    runNginxResume(true),
	},
	{
		name: "haproxy-idle-race",
		description: "haproxy 2.6 (mode http, timeout http-keep-alive 600ms) in front of nginx (not captured), HTTP/1.1. " +
			"Python's http.client keeps one connection and sends a GET after gaps of 0, 0.2, 0.3, 1.0, 0.25, 1.2 and 0.2 s: " +
			"after 1.0 and 1.2 s haproxy has closed the idle connection (FIN), the request is written on it anyway, " +
			"haproxy's socket answers with RST, http.client raises RemoteDisconnected and the client retries on a new " +
			"connection. Then curl -H 'Connection: close' fetches 10 URLs, one connection each (churn). haproxy logs " +
			"every request (option httplog).",
		findings: []string{"keepalive_mismatch", "reconnect_churn"},
		commit:   true,
		tools:    []string{"haproxy", "nginx", "curl", "python3"},
		stack:    runHAProxyIdle,
	},
	{
		name: "h2load-nghttpd-refused",
		description: "nghttpd over h2c with --max-concurrent-streams=4 and h2load -n 60 -c 1 -m 40 on 5,000-byte files: " +
			"nghttpd is stopped (SIGSTOP) while h2load connects, so h2load opens 40 streams before it has read the " +
			"server's SETTINGS (as over a slow link); nghttpd, continued, answers the 36 beyond its limit with RST_STREAM " +
			"REFUSED_STREAM and h2load counts those requests failed (it does not retry them), then keeps within the limit.",
		findings: []string{"rst_storm"},
		commit:   true,
		tools:    []string{"nghttpd", "h2load"},
		stack:    runH2loadRefused,
	},
}

// runNginxCurlH2 is nginx-curl-h2.
func runNginxCurlH2(ctx context.Context, r *stackRun) error {
	if err := r.writeWWW(40000, 20000, 10000, 4000); err != nil {
		return err
	}
	if _, err := r.startNginx(ctx, nginxConf{tls: true, h2: true}); err != nil {
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
	// Stop nginx gracefully before reading its logs.
	ng, _, err := r.stopNginx()
	if err != nil {
		return err
	}
	for _, e := range ng {
		if e.status != 200 || e.proto != "HTTP/2.0" || e.ssl != "TLSv1.3" {
			return fmt.Errorf("nginx logged %s %s %d %s", e.proto, e.uri, e.status, e.ssl)
		}
	}
	r.fact("connections", len(r.conns))
	r.fact("requests", len(ng))
	return nil
}
