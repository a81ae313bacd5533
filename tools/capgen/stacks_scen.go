package main

import (
	"context"
	"fmt"
)

func init() {
	scenarios = append(scenarios, stackScenarios...)
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
	r.stopAll(sigQuit)
	ng, err := r.nginxAccess()
	if err != nil {
		return err
	}
	r.nginxErrors()
	if err := r.checkNginxConns(ng); err != nil {
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
