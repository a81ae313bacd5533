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

// Session resumption turned off on a second server (resumption_failure,
// cause tickets_disabled): haproxy with no-tls-tickets and no session
// cache, offered saved sessions by openssl s_client.

func init() {
	addStackScenarios(&scenario{
		name: "haproxy-openssl-tickets-off",
		description: "haproxy 2.6 terminating TLS 1.2 (HTTP/1.1, answering itself with http-request return) with its " +
			"session cache off (tune.ssl.cachesize 0): openssl s_client makes a full handshake and saves the session (the " +
			"ticket haproxy issued); haproxy is restarted with no-tls-tickets (a configuration change, the cache still off), " +
			"and 3 s_client connections offer the saved ticket: haproxy ignores it and issues no ticket and an empty session " +
			"id, a full handshake each (s_client: New, and no resumable session to save; haproxy logs ssl_fc_is_resumed 0). " +
			"Only TLS 1.2: over TLS 1.3, OpenSSL with no-tls-tickets still issues stateful tickets (session_not_cached, as " +
			"haproxy-openssl-session-not-cached). s_client logs the TLS secrets.",
		findings: []string{"resumption_failure"},
		commit:   true,
		tools:    []string{"haproxy", "openssl"},
		stack:    runHAProxyTicketsOff,
	})
}

// runHAProxyTicketsOff is haproxy-openssl-tickets-off.
func runHAProxyTicketsOff(ctx context.Context, r *stackRun) error {
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
	const body = "<!doctype html><title>h2scope</title>"
	// config is haproxy's configuration, session tickets on or off; the
	// session cache is off either way.
	config := func(tickets bool) error {
		bind := "ssl-min-ver TLSv1.2"
		if !tickets {
			bind = "no-tls-tickets " + bind
		}
		conf := fmt.Sprintf(`global
  log stdout format raw local0 info
  tune.ssl.cachesize 0
defaults
  mode http
  log global
  timeout connect 1s
  timeout client 10s
  timeout server 10s
frontend fe
  bind 127.0.0.1:%d ssl crt %s %s
  log-format "%s"
  http-request return status 200 content-type text/html string "%s"
`, r.port, r.path("haproxy.pem"), bind, haproxyLogFormat, body)
		return os.WriteFile(r.path("haproxy.cfg"), []byte(conf), 0o644)
	}
	if err := config(true); err != nil {
		return err
	}
	args := []string{"-db", "-f", r.path("haproxy.cfg")}
	hp, err := r.start(ctx, "haproxy", "server", r.port, args...)
	if err != nil {
		return err
	}
	var logs []string
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
	sess := r.path("session.tls1_2")
	if resumed, err := r.sClient(ctx, "first", "tls1_2", "", sess); err != nil || resumed {
		return fmt.Errorf("first connection: resumed %v, %v", resumed, err)
	}
	// A configuration change: tickets off, restarted.
	if err := stop(); err != nil {
		return err
	}
	for listening(r.port) {
		if err := sleepCtx(ctx, 20*time.Millisecond); err != nil {
			return err
		}
	}
	if err := config(false); err != nil {
		return err
	}
	if hp, err = r.start(ctx, "haproxy", "server", r.port, args...); err != nil {
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
		if _, err := os.Stat(sess + ".new"); err == nil {
			return fmt.Errorf("offer %d: s_client saved a resumable session: haproxy issued a ticket or session id", i+1)
		}
	}
	n := 1 + offers
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
		r.request(id, truth.Request{Method: "GET", Path: "/index.html", Status: status, RespBytes: int64(len(body))})
	}
	if got != n {
		return fmt.Errorf("haproxy logged %d requests, s_client made %d", got, n)
	}
	r.fact("handshakes", n)
	r.fact("offered_resumption", offers)
	r.fact("server_restarts", 1)
	r.fact("resumed", 0)
	r.verdictCause("resumption_failure", "warning", "tickets_disabled",
		"the server has resumption off: no tickets (no-tls-tickets) and no session cache (tune.ssl.cachesize 0); offers ignored",
		fmt.Sprintf("after haproxy was restarted with no-tls-tickets (tune.ssl.cachesize 0), openssl s_client offered the TLS 1.2 "+
			"ticket saved from the first connection %d times: s_client printed \"New\" each time and saved no resumable "+
			"session (no ticket, empty session id), and haproxy logged ssl_fc_is_resumed 0, a full handshake each", offers))
	return nil
}
