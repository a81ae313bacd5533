package main

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/h2scope/h2scope/tools/capgen/truth"
)

// Resumption scenarios where the server cannot find the sessions it
// handed out (resumption_failure, cause session_not_cached), played by
// two stacks: nginx with no session store, and haproxy restarted between
// the first connection and the offers (its session cache lived in the
// old process).

func init() {
	addStackScenarios(
		&scenario{
			name: "nginx-openssl-session-not-cached",
			description: "nginx over TLS (HTTP/1.1, keepalive_timeout 0) with ssl_session_cache none and ssl_session_tickets off: " +
				"it hands out session ids (TLS 1.2) and, in TLS 1.3, OpenSSL's stateful tickets (cache keys), but stores no " +
				"session. openssl s_client makes one request a connection: over TLS 1.3 a full handshake, then 2 connections " +
				"offering the saved session (-sess_in, a PSK whose identity is the stateful ticket); the same over TLS 1.2 " +
				"(the session id). Every offer gets a full handshake: s_client prints New, nginx logs $ssl_session_reused " +
				"\".\". s_client logs the TLS secrets (-keylogfile).",
			findings: []string{"resumption_failure"},
			commit:   true,
			tools:    []string{"nginx", "openssl"},
			stack:    runNginxNotCached,
		},
		&scenario{
			name: "haproxy-openssl-session-not-cached",
			description: "haproxy 2.6 terminating TLS (HTTP/1.1, answering itself with http-request return) with no-tls-tickets " +
				"and its default session cache: it hands out session ids (TLS 1.2) and stateful TLS 1.3 tickets and keeps " +
				"the sessions in the process's cache. For TLS 1.3 and then 1.2, openssl s_client makes a full handshake, " +
				"haproxy is restarted (a deploy: the new process's cache is empty), and 2 s_client connections offer the " +
				"saved session: every one gets a full handshake (s_client: New; haproxy logs ssl_fc_is_resumed 0). " +
				"s_client logs the TLS secrets.",
			findings: []string{"resumption_failure"},
			commit:   true,
			tools:    []string{"haproxy", "openssl"},
			stack:    runHAProxyNotCached,
		},
	)
}

// verdictCause records an expected finding with h2scope's name of its
// cause (truth.Verdict.FindingCause).
func (r *stackRun) verdictCause(kind, severity, findingCause, cause, why string) {
	r.st.Verdicts = append(r.st.Verdicts, truth.Verdict{Kind: kind, Severity: severity, Cause: cause, Why: why, FindingCause: findingCause})
}

// resumeRounds plays the rounds of a resumption scenario: for TLS 1.3
// and then 1.2, one s_client connection with a full handshake, then
// between (if set), then offers connections offering the first session,
// none of which may resume. It returns how many connections it made.
func (r *stackRun) resumeRounds(ctx context.Context, offers int, between func() error) (int, error) {
	n := 0
	for _, v := range []string{"tls1_3", "tls1_2"} {
		sess := r.path("session." + v)
		resumed, err := r.sClient(ctx, "first", v, "", sess)
		if err != nil {
			return 0, err
		}
		n++
		if resumed {
			return 0, fmt.Errorf("%s: the first connection resumed", v)
		}
		if between != nil {
			if err := between(); err != nil {
				return 0, err
			}
		}
		for i := range offers {
			// The first session is offered every time; a new one goes
			// to a scratch file.
			got, err := r.sClient(ctx, fmt.Sprintf("offer %d", i+1), v, sess, sess+".new")
			if err != nil {
				return 0, err
			}
			n++
			if got {
				return 0, fmt.Errorf("%s: offer %d resumed", v, i+1)
			}
		}
	}
	return n, nil
}

// runNginxNotCached is nginx-openssl-session-not-cached.
func runNginxNotCached(ctx context.Context, r *stackRun) error {
	if err := r.writeWWW(); err != nil {
		return err
	}
	conf := nginxConf{tls: true, server: "ssl_session_cache none; ssl_session_tickets off; keepalive_timeout 0;"}
	if _, err := r.startNginx(ctx, conf); err != nil {
		return err
	}
	r.keylog = r.path("keys")
	const offers = 2
	n, err := r.resumeRounds(ctx, offers, nil)
	if err != nil {
		return err
	}
	r.stopAll(sigQuit)
	ng, err := r.nginxAccess()
	if err != nil {
		return err
	}
	r.nginxErrors()
	if len(ng) != n {
		return fmt.Errorf("nginx logged %d requests, s_client made %d", len(ng), n)
	}
	for i, e := range ng {
		if e.reused != "." || e.status != 200 {
			return fmt.Errorf("nginx request %d: status %d, $ssl_session_reused %q; want 200, \".\"", i+1, e.status, e.reused)
		}
		id := r.newConn(e.port, "full")
		r.request(id, truth.Request{Method: e.method, Path: e.uri, Status: e.status, RespBytes: e.bodyBytes})
	}
	r.fact("handshakes", len(ng))
	r.fact("offered_resumption", 2*offers)
	r.fact("resumed", 0)
	r.verdictCause("resumption_failure", "warning", "session_not_cached",
		"the server hands out session ids and stateful tickets but keeps no session (ssl_session_cache none, tickets off)",
		fmt.Sprintf("openssl s_client offered the session saved from each first connection (-sess_in) %d times: over TLS 1.3 "+
			"a PSK whose identity is the stateful ticket nginx issued (OpenSSL issues cache keys when tickets are off), over "+
			"TLS 1.2 the session id nginx handed out; nginx has ssl_session_cache none, so it stores no session: s_client "+
			"printed \"New\" every time and nginx logged $ssl_session_reused \".\", a full handshake each", 2*offers))
	return nil
}

// haproxyLogFormat is the log-format of haproxy-openssl-session-not-cached:
// client port, TLS version, whether the session was resumed, status.
const haproxyLogFormat = `%cp %[ssl_fc_protocol] resumed=%[ssl_fc_is_resumed] %ST %{+Q}r`

// runHAProxyNotCached is haproxy-openssl-session-not-cached.
func runHAProxyNotCached(ctx context.Context, r *stackRun) error {
	if err := r.writeCert(ctx); err != nil {
		return err
	}
	cert, err := os.ReadFile(r.path("cert.pem"))
	if err != nil {
		return err
	}
	key, err := os.ReadFile(r.path("key.pem"))
	if err != nil {
		return err
	}
	if err := os.WriteFile(r.path("haproxy.pem"), append(cert, key...), 0o600); err != nil {
		return err
	}
	conf := fmt.Sprintf(`global
  log stdout format raw local0 info
defaults
  mode http
  log global
  timeout connect 1s
  timeout client 10s
  timeout server 10s
frontend fe
  bind 127.0.0.1:%d ssl crt %s no-tls-tickets ssl-min-ver TLSv1.2
  log-format "%s"
  http-request return status 200 content-type text/html string "<!doctype html><title>h2scope</title>"
`, r.port, r.path("haproxy.pem"), haproxyLogFormat)
	if err := os.WriteFile(r.path("haproxy.cfg"), []byte(conf), 0o644); err != nil {
		return err
	}
	args := []string{"-db", "-f", r.path("haproxy.cfg")}
	hp, err := r.start(ctx, "haproxy", "server", r.port, args...)
	if err != nil {
		return err
	}
	var logs []string
	restarts := 0
	// stop stops haproxy (soft stop: SIGUSR1) and keeps its log.
	stop := func() error {
		r.signal(hp, syscall.SIGUSR1)
		if err := r.wait(hp, 3*time.Second); err != nil && !strings.Contains(err.Error(), "exit status") {
			return err
		}
		logs = append(logs, lines(r.output(hp))...)
		return nil
	}
	r.keylog = r.path("keys")
	const offers = 2
	n, err := r.resumeRounds(ctx, offers, func() error {
		if err := stop(); err != nil {
			return err
		}
		for listening(r.port) {
			if err := sleepCtx(ctx, 20*time.Millisecond); err != nil {
				return err
			}
		}
		restarts++
		hp, err = r.start(ctx, "haproxy", "server", r.port, args...)
		return err
	})
	if err != nil {
		return err
	}
	if err := stop(); err != nil {
		return err
	}
	r.report("haproxy", "log, log-format "+haproxyLogFormat, logs)
	var got int
	for _, l := range logs {
		f := strings.Fields(l)
		if len(f) < 4 || !strings.HasPrefix(f[2], "resumed=") {
			continue
		}
		port, err := strconv.Atoi(f[0])
		if err != nil {
			return fmt.Errorf("haproxy log line %q: %v", l, err)
		}
		status, _ := strconv.Atoi(f[3])
		if f[2] != "resumed=0" || status != 200 {
			return fmt.Errorf("haproxy log line %q: want resumed=0 and 200", l)
		}
		got++
		id := r.newConn(port, "full")
		r.request(id, truth.Request{Method: "GET", Path: "/index.html", Status: status, RespBytes: int64(len("<!doctype html><title>h2scope</title>"))})
	}
	if got != n {
		return fmt.Errorf("haproxy logged %d requests, s_client made %d", got, n)
	}
	r.fact("handshakes", n)
	r.fact("offered_resumption", 2*offers)
	r.fact("resumed", 0)
	r.fact("server_restarts", restarts)
	r.verdictCause("resumption_failure", "warning", "session_not_cached",
		"the server's session cache lost the sessions (haproxy restarted; tickets off)",
		fmt.Sprintf("haproxy (no-tls-tickets) keeps sessions in its process's cache; after each first connection it was "+
			"restarted, and openssl s_client offered the saved session (-sess_in: TLS 1.3 PSK with a stateful ticket, TLS "+
			"1.2 session id) %d times: s_client printed \"New\" every time and haproxy logged ssl_fc_is_resumed 0, a full "+
			"handshake each", 2*offers))
	return nil
}

func init() {
	addStackScenarios(
		&scenario{
			name: "nginx-openssl-tickets-off",
			description: "nginx over TLS 1.2 (HTTP/1.1, keepalive_timeout 0) with session tickets on and no session cache: " +
				"openssl s_client makes a full handshake and saves the session (its ticket); then nginx is reloaded with " +
				"ssl_session_tickets off (a configuration change, the cache still off), and 3 s_client connections offer the " +
				"saved ticket: nginx ignores it, issues no ticket and an empty session id, a full handshake each (s_client: " +
				"New; nginx: $ssl_session_reused \".\"). s_client logs the TLS secrets.",
			findings: []string{"resumption_failure"},
			commit:   true,
			tools:    []string{"nginx", "openssl"},
			stack:    runNginxTicketsOff,
		},
		&scenario{
			name: "nginx-curl-no-session-cache",
			description: "nginx serving HTTP/2 over TLS 1.3 with session tickets on, and 4 curl runs one after another, one " +
				"URL each: every curl process starts with an empty session cache, so though nginx issued tickets on each " +
				"connection, no ClientHello offers one (no pre_shared_key): 4 full handshakes. curl logs its TLS secrets " +
				"(SSLKEYLOGFILE), so the tickets are visible.",
			findings: []string{"resumption_failure"},
			commit:   true,
			tools:    []string{"nginx", "curl", "openssl"},
			stack:    runNginxCurlNoCache,
		},
	)
}

// runNginxTicketsOff is nginx-openssl-tickets-off.
func runNginxTicketsOff(ctx context.Context, r *stackRun) error {
	if err := r.writeWWW(); err != nil {
		return err
	}
	if err := r.ticketKey(); err != nil {
		return err
	}
	server := func(tickets string) string {
		return "ssl_session_cache off; ssl_session_tickets " + tickets + "; ssl_session_ticket_key " +
			r.path("ticket.key") + "; keepalive_timeout 0;"
	}
	if _, err := r.startNginx(ctx, nginxConf{tls: true, server: server("on")}); err != nil {
		return err
	}
	r.keylog = r.path("keys")
	sess := r.path("session.tls1_2")
	if resumed, err := r.sClient(ctx, "first", "tls1_2", "", sess); err != nil || resumed {
		return fmt.Errorf("first connection: resumed %v, %v", resumed, err)
	}
	// The same configuration (and certificate) with tickets off.
	if _, err := r.writeNginx(ctx, nginxConf{tls: true, server: server("off")}); err != nil {
		return err
	}
	reload := []string{"-p", r.dir, "-c", r.path("nginx.conf"), "-s", "reload"}
	r.program("nginx", "server", reload)
	if out, err := r.command(ctx, "nginx", reload).CombinedOutput(); err != nil {
		return fmt.Errorf("nginx -s reload: %v: %s", err, out)
	}
	if err := sleepCtx(ctx, 300*time.Millisecond); err != nil {
		return err
	}
	const offers = 3
	for i := range offers {
		resumed, err := r.sClient(ctx, fmt.Sprintf("offer %d", i+1), "tls1_2", sess, sess+".new")
		if err != nil {
			return err
		}
		if resumed {
			return fmt.Errorf("offer %d resumed", i+1)
		}
	}
	r.stopAll(sigQuit)
	ng, err := r.nginxAccess()
	if err != nil {
		return err
	}
	r.nginxErrors()
	if len(ng) != 1+offers {
		return fmt.Errorf("nginx logged %d requests, s_client made %d", len(ng), 1+offers)
	}
	for i, e := range ng {
		if e.reused != "." || e.status != 200 || e.ssl != "TLSv1.2" {
			return fmt.Errorf("nginx request %d: %d %s reused %q", i+1, e.status, e.ssl, e.reused)
		}
		id := r.newConn(e.port, "full")
		r.request(id, truth.Request{Method: e.method, Path: e.uri, Status: e.status, RespBytes: e.bodyBytes})
	}
	r.fact("handshakes", len(ng))
	r.fact("offered_resumption", offers)
	r.fact("resumed", 0)
	r.verdictCause("resumption_failure", "warning", "tickets_disabled",
		"the server turned session tickets off: it ignores the offered ticket and issues none (and no cacheable session id)",
		fmt.Sprintf("after nginx -s reload with ssl_session_tickets off (ssl_session_cache off), openssl s_client offered the "+
			"ticket saved from the first connection %d times: s_client printed \"New\" each time and nginx logged "+
			"$ssl_session_reused \".\"; nginx sent no NewSessionTicket and an empty session id", offers))
	return nil
}

// runNginxCurlNoCache is nginx-curl-no-session-cache.
func runNginxCurlNoCache(ctx context.Context, r *stackRun) error {
	if err := r.writeWWW(4000); err != nil {
		return err
	}
	if _, err := r.startNginx(ctx, nginxConf{tls: true, h2: true, server: "ssl_session_tickets on;"}); err != nil {
		return err
	}
	r.keylog = r.path("keys")
	const runs = 4
	for i := range runs {
		if i > 0 {
			if err := sleepCtx(ctx, 100*time.Millisecond); err != nil {
				return err
			}
		}
		args := append(r.curlTLS(), "--http2", "--tlsv1.3", r.url(true, "/4000"))
		ls, err := r.curl(ctx, fmt.Sprintf("run %d", i+1), false, args...)
		if err != nil {
			return err
		}
		if len(ls) != 1 || ls[0].connects != 1 || ls[0].status != 200 {
			return fmt.Errorf("curl run %d: %+v", i+1, ls)
		}
		r.curlRequests(fmt.Sprintf("run %d", i+1), ls)
	}
	ng, _, err := r.stopNginx()
	if err != nil {
		return err
	}
	for _, e := range ng {
		if e.reused != "." || e.ssl != "TLSv1.3" {
			return fmt.Errorf("nginx: %s reused %q, want TLSv1.3 and a full handshake", e.ssl, e.reused)
		}
	}
	r.fact("handshakes", len(ng))
	r.fact("resumed", 0)
	r.verdictCause("resumption_failure", "warning", "client_not_offering",
		"the client keeps no session cache across connections (a new curl process each time): issued tickets never offered",
		fmt.Sprintf("%d curl runs, one after another, each made a full TLS 1.3 handshake (nginx $ssl_session_reused \".\"); "+
			"nginx sent NewSessionTickets on every connection (visible with curl's key log), but each curl process starts "+
			"with an empty session cache, so no ClientHello offered one", runs))
	return nil
}
