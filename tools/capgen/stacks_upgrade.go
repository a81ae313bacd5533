package main

import (
	"context"
	"fmt"
	"os"
	"strings"
)

// The h2c Upgrade from HTTP/1.1 (RFC 7540 §3.2) made by other stacks:
// curl --http2 on an http:// URL against h2o over cleartext, whose
// first request is answered as HTTP/2 stream 1 after 101 Switching
// Protocols. (nghttpd --no-tls speaks prior-knowledge HTTP/2 only.)

func init() {
	addStackScenarios(&scenario{
		name: "h2o-curl-h2c-upgrade",
		description: "h2o 2.2 over cleartext and one curl run with --http2 fetching three files over one connection: curl sends the " +
			"first request as HTTP/1.1 with Upgrade: h2c and HTTP2-Settings, h2o answers 101 Switching Protocols and the " +
			"response as HTTP/2 stream 1, and the other two go as streams 3 and 5; h2o's access log and curl's report agree " +
			"on three HTTP/2 responses on one connection.",
		commit: true,
		tools:  []string{"h2o", "curl"},
		stack:  runH2OCurlUpgrade,
	})
}

// runH2OCurlUpgrade is h2o-curl-h2c-upgrade.
func runH2OCurlUpgrade(ctx context.Context, r *stackRun) error {
	sizes := []int{1000, 20000, 300}
	if err := r.writeWWW(sizes...); err != nil {
		return err
	}
	if _, err := r.startH2OConf(ctx, "", fmt.Sprintf("127.0.0.1:%d", r.port)); err != nil {
		return err
	}
	var urls []string
	for _, n := range sizes {
		urls = append(urls, r.url(false, fmt.Sprintf("/%d", n)))
	}
	ls, err := r.curl(ctx, "upgrade", false, append([]string{"--http2"}, urls...)...)
	if err != nil {
		return err
	}
	if len(ls) != len(sizes) {
		return fmt.Errorf("curl reported %d transfers, want %d", len(ls), len(sizes))
	}
	for i, l := range ls {
		if l.status != 200 || l.version != "2" || l.exit != 0 || l.port != ls[0].port {
			return fmt.Errorf("curl transfer %d: %+v, want 200 over HTTP/2 on one connection", i+1, l)
		}
	}
	r.curlRequests("upgrade", ls)
	r.stopAll(sigTerm)
	b, err := os.ReadFile(r.path("h2o-access.log"))
	if err != nil {
		return err
	}
	logs := lines(b)
	r.report("h2o", "access log, format "+h2oLogFormat, logs)
	// One connection, three HTTP/2 requests on streams 1, 3 and 5: the
	// first is the upgraded HTTP/1.1 request.
	var streams []string
	for _, l := range logs {
		f := strings.Fields(l)
		if len(f) < 7 || f[5] != "HTTP/2" || f[6] != "200" {
			return fmt.Errorf("h2o access log line %q: want an HTTP/2 200", l)
		}
		streams = append(streams, f[2])
	}
	if strings.Join(streams, ",") != "1,3,5" {
		return fmt.Errorf("h2o logged streams %v, want 1,3,5", streams)
	}
	r.fact("http2_responses", len(logs))
	r.fact("upgraded_requests", 1)
	return nil
}
