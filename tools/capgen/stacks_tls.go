package main

import (
	"context"
	"crypto/rand"
	"fmt"
	"os"
	"regexp"
	"strings"

	"github.com/h2scope/h2scope/tools/capgen/truth"
)

// sClientSession matches the line openssl s_client prints for the
// session: "New, TLSv1.3, Cipher is TLS_AES_256_GCM_SHA384" or "Reused, ...".
var sClientSession = regexp.MustCompile(`^(New|Reused), (TLSv1\.[0-9]), Cipher is (\S+)`)

// sClient connects with openssl s_client over version ("tls1_2",
// "tls1_3"), reading a session from sessIn if set and writing the one it
// gets to sessOut, sends one HTTP/1.1 request with Connection: close and
// returns whether the handshake resumed. Its session lines are kept as a
// report.
func (r *stackRun) sClient(ctx context.Context, phase, version, sessIn, sessOut string) (bool, error) {
	args := []string{"s_client", "-connect", r.addr(), "-servername", stackHost, "-" + version, "-ign_eof",
		"-keylogfile", r.keylog, "-sess_out", sessOut}
	if sessIn != "" {
		args = append(args, "-sess_in", sessIn)
	}
	r.program("openssl", "client", args)
	cmd := r.command(ctx, "openssl", args)
	cmd.Stdin = strings.NewReader("GET /index.html HTTP/1.1\r\nHost: " + stackHost + "\r\nConnection: close\r\n\r\n")
	out, err := cmd.CombinedOutput()
	var keep []string
	resumed, found := false, false
	for _, l := range lines(out) {
		l = strings.TrimSpace(l)
		if m := sClientSession.FindStringSubmatch(l); m != nil {
			found, resumed = true, m[1] == "Reused"
			keep = append(keep, l)
		}
		for _, p := range []string{"Protocol  :", "Resumption PSK", "Reuse session-id", "TLS session ticket lifetime hint", "HTTP/1.1 ", "Verify return code", "read R BLOCK"} {
			if strings.HasPrefix(l, p) {
				keep = append(keep, l)
			}
		}
	}
	r.report("openssl", phase+": s_client -"+version+" session lines", keep)
	if err != nil {
		return false, fmt.Errorf("openssl s_client: %v: %s", err, out)
	}
	if !found {
		return false, fmt.Errorf("openssl s_client printed no New/Reused line: %s", out)
	}
	return resumed, nil
}

// ticketKey writes a fresh 80-byte session ticket key file for nginx's
// ssl_session_ticket_key.
func (r *stackRun) ticketKey() error {
	b := make([]byte, 80)
	rand.Read(b)
	return os.WriteFile(r.path("ticket.key"), b, 0o600)
}

// runNginxResume returns nginx-openssl-resume (fail false) or
// nginx-openssl-resume-fail (fail true): for TLS 1.3 and then 1.2, one
// s_client connection with a full handshake, then 2 offering its
// session; with fail, nginx's ticket key changes (nginx -s reload)
// before the offers.
func runNginxResume(fail bool) func(ctx context.Context, r *stackRun) error {
	return func(ctx context.Context, r *stackRun) error {
		if err := r.writeWWW(); err != nil {
			return err
		}
		if err := r.ticketKey(); err != nil {
			return err
		}
		conf := nginxConf{tls: true, server: "ssl_session_cache off; ssl_session_tickets on; ssl_session_ticket_key " +
			r.path("ticket.key") + "; keepalive_timeout 0;"}
		if _, err := r.startNginx(ctx, conf); err != nil {
			return err
		}
		r.keylog = r.path("keys")
		var want []bool // resumed, per connection
		for _, v := range []string{"tls1_3", "tls1_2"} {
			sess := r.path("session." + v)
			full, err := r.sClient(ctx, "first", v, "", sess)
			if err != nil {
				return err
			}
			want = append(want, false)
			if full {
				return fmt.Errorf("%s: the first connection resumed", v)
			}
			if fail {
				if err := r.ticketKey(); err != nil {
					return err
				}
				reload := []string{"-p", r.dir, "-c", r.path("nginx.conf"), "-s", "reload"}
				r.program("nginx", "server", reload)
				if out, err := r.command(ctx, "nginx", reload).CombinedOutput(); err != nil {
					return fmt.Errorf("nginx -s reload: %v: %s", err, out)
				}
				// The new worker must be up before the next connection.
				if err := sleepCtx(ctx, 300e6); err != nil {
					return err
				}
			}
			for i := range 2 {
				// The first session is offered every time: a new one
				// goes to a scratch file.
				got, err := r.sClient(ctx, fmt.Sprintf("offer %d", i+1), v, sess, sess+".new")
				if err != nil {
					return err
				}
				want = append(want, !fail)
				if got != !fail {
					return fmt.Errorf("%s: offer %d resumed %v, want %v", v, i+1, got, !fail)
				}
			}
		}
		r.stopAll(sigQuit)
		ng, err := r.nginxAccess()
		if err != nil {
			return err
		}
		r.nginxErrors()
		if len(ng) != len(want) {
			return fmt.Errorf("nginx logged %d requests, s_client made %d", len(ng), len(want))
		}
		resumed, offered := 0, 0
		for i, e := range ng {
			reused := e.reused == "r"
			if reused != want[i] || e.status != 200 {
				return fmt.Errorf("nginx request %d: status %d, $ssl_session_reused %q; s_client resumed %v", i+1, e.status, e.reused, want[i])
			}
			id := r.newConn(e.port, map[bool]string{true: "resumed", false: "full"}[reused])
			r.request(id, truth.Request{Method: e.method, Path: e.uri, Status: e.status, RespBytes: e.bodyBytes, Reused: false})
			if reused {
				resumed++
			}
			if i%3 != 0 {
				offered++
			}
		}
		r.fact("handshakes", len(ng))
		r.fact("offered_resumption", offered)
		r.fact("resumed", resumed)
		if fail {
			r.verdictCause("resumption_failure", "warning", "ticket_key_mismatch", "server refused every offered session: its ticket key changed",
				fmt.Sprintf("openssl s_client offered the session saved from the first connection (-sess_in) %d times, TLS 1.3 "+
					"(PSK) and TLS 1.2 (ticket), after nginx -s reload with a new ssl_session_ticket_key; s_client printed "+
					"\"New\" every time and nginx logged $ssl_session_reused \".\": every offer refused, a full handshake each", offered))
		}
		return nil
	}
}
