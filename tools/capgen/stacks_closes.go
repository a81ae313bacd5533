package main

import (
	"context"
	"fmt"
	"time"
)

// A client that closes each connection right after a complete response
// though nobody asked it to (reconnect_churn, cause
// client_closes_after_response), played by curl: a new curl process per
// request, as a shell script or a cron job makes them, against nginx
// with keep-alive on.

func init() {
	addStackScenarios(&scenario{
		name: "nginx-curl-process-per-request",
		description: "nginx 1.22 over HTTP/1.1 with keep-alive on (keepalive_timeout 75s) and 10 curl 7.88 runs 100 ms " +
			"apart, one URL each, as a shell loop makes them: each curl process reads the whole response (no Connection: " +
			"close asked by either side) and closes the connection (FIN) as it exits, so every request gets a new " +
			"connection (-w num_connects 1 each; nginx's $connection_requests 1 each). Nothing fails.",
		findings: []string{"reconnect_churn"},
		commit:   true,
		tools:    []string{"nginx", "curl"},
		stack:    runNginxCurlPerProcess,
	})
}

// runNginxCurlPerProcess is nginx-curl-process-per-request.
func runNginxCurlPerProcess(ctx context.Context, r *stackRun) error {
	if err := r.writeWWW(4000); err != nil {
		return err
	}
	if _, err := r.startNginx(ctx, nginxConf{server: "keepalive_timeout 75s;"}); err != nil {
		return err
	}
	const n = 10
	for i := range n {
		if i > 0 {
			if err := sleepCtx(ctx, 100*time.Millisecond); err != nil {
				return err
			}
		}
		phase := fmt.Sprintf("run %d", i+1)
		ls, err := r.curl(ctx, phase, false, r.url(false, "/4000"))
		if err != nil {
			return err
		}
		if len(ls) != 1 || ls[0].connects != 1 || ls[0].status != 200 || ls[0].size != 4000 || ls[0].exit != 0 {
			return fmt.Errorf("curl %s: %+v; want one transfer, 1 connect, 200, 4000 bytes", phase, ls)
		}
		r.curlRequests(phase, ls)
	}
	ng, _, err := r.stopNginx()
	if err != nil {
		return err
	}
	for _, e := range ng {
		if e.connRequests != 1 || e.status != 200 || e.bodyBytes != 4000 {
			return fmt.Errorf("nginx connection %d: $connection_requests %d, status %d, %d bytes; want 1, 200, 4000",
				e.conn, e.connRequests, e.status, e.bodyBytes)
		}
	}
	r.fact("transfers", n)
	r.fact("connections", len(r.conns))
	r.verdictCause("reconnect_churn", "warning", "client_closes_after_response",
		"the client closes each connection right after a complete response: a new curl process per request, nobody asked to close",
		fmt.Sprintf("%d curl processes, one URL each, 100 ms apart: each read the whole response (-w size_download 4000, "+
			"status 200) on a new connection (num_connects 1) and closed it on exit; nginx had keep-alive on "+
			"(keepalive_timeout 75s, no Connection: close) and logged $connection_requests 1 on every connection", n))
	return nil
}
