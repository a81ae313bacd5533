package main

import (
	"context"
	"fmt"
	"strings"
	"time"
)

// A client that gives up on slow responses (connection_lost, cause
// client_abort), played by curl against nginx.

func init() {
	addStackScenarios(&scenario{
		name: "nginx-curl-client-timeout",
		description: "nginx 1.22 over HTTP/1.1 sending a 200,000-byte file at limit_rate 20k, and 3 curl runs with --max-time 1: " +
			"each gives up after 1 s with the response in flight (exit 28, \"Operation timed out\") and closes its socket; " +
			"nginx logs each response cut short (status 200, fewer bytes than the file, an error log line).",
		findings: []string{"connection_lost"},
		commit:   true,
		tools:    []string{"nginx", "curl"},
		stack:    runNginxCurlClientTimeout,
	})
}

// runNginxCurlClientTimeout is nginx-curl-client-timeout.
func runNginxCurlClientTimeout(ctx context.Context, r *stackRun) error {
	const size, runs = 200000, 3
	if err := r.writeWWW(size); err != nil {
		return err
	}
	if _, err := r.startNginx(ctx, nginxConf{server: "limit_rate 20k;"}); err != nil {
		return err
	}
	var got int64
	for i := range runs {
		if i > 0 {
			if err := sleepCtx(ctx, 100*time.Millisecond); err != nil {
				return err
			}
		}
		ls, err := r.curl(ctx, fmt.Sprintf("run %d", i+1), true, "--max-time", "1", r.url(false, "/200000"))
		if err != nil {
			return err
		}
		if len(ls) != 1 || ls[0].exit != 28 || ls[0].size >= size || ls[0].size == 0 {
			return fmt.Errorf("curl run %d: %+v, want exit 28 with part of the body", i+1, ls)
		}
		got += ls[0].size
		r.curlRequests(fmt.Sprintf("run %d", i+1), ls)
	}
	// Let nginx notice the closed sockets and log the requests.
	if err := sleepCtx(ctx, 500*time.Millisecond); err != nil {
		return err
	}
	ng, errs, err := r.stopNginx()
	if err != nil {
		return err
	}
	for _, e := range ng {
		if e.bodyBytes >= size {
			return fmt.Errorf("nginx logged %d bytes sent on connection %d: want fewer than %d", e.bodyBytes, e.conn, size)
		}
	}
	var cut int
	for _, l := range errs {
		if strings.Contains(l, "Connection reset by peer") || strings.Contains(l, "Broken pipe") || strings.Contains(l, "prematurely closed") {
			cut++
		}
	}
	r.fact("transfers_timed_out", runs)
	r.fact("bytes_received", int(got))
	r.verdictCause("connection_lost", "warning", "client_abort",
		"the client gave up on each response after 1 s (curl --max-time 1) and closed with the response in flight",
		fmt.Sprintf("each of %d curl runs stopped after 1 s with exit 28 (%d bytes of %d received in all) and closed its "+
			"socket; nginx logged every response shorter than the file: the client aborted requests in flight, by its own "+
			"timeout (a warning by the README's rule for client_abort)", runs, got, runs*size))
	return nil
}
