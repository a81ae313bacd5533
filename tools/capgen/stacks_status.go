package main

import (
	"context"
	"fmt"
	"sort"
	"strconv"
	"strings"
)

// HTTP failures by class from nginx (request_errors), the HTTP twin of
// grpcio-status-classes: a gateway whose upstream is down (502), a rate
// limit (429), an upstream that does not answer in time (504) and a
// handler that fails (500), each on its own server name.

// statusPlan is one server name of nginx-curl-status-classes: the path
// curl asks failing requests of, how many, and the status nginx gives.
var statusPlan = []struct {
	host, path string
	fail       int // failing requests among the 40
	status     int
}{
	{"unavailable.test", "/api/orders", 12, 502},
	{"overload.test", "/api/search", 6, 429},
	{"deadline.test", "/api/report", 6, 504},
	{"internal.test", "/api/cart", 12, 500},
}

func init() {
	addStackScenarios(&scenario{
		name: "nginx-curl-status-classes",
		description: "nginx 1.22 in front of upstreams that fail, one curl run of 40 keep-alive requests per server name: " +
			"unavailable.test proxies /api/orders to a port nobody listens on (12 × 502 Bad Gateway), overload.test " +
			"rate-limits /api/search (limit_req, 1 request a minute, limit_req_status 429: 6 × 429 after the first), " +
			"deadline.test proxies /api/report to an upstream that accepts and never answers with proxy_read_timeout " +
			"300ms (6 × 504), internal.test fails /api/cart (12 × 500, after each of which nginx closes the connection: 13 connections); " +
			"the rest are 200. nginx's access log and curl agree on every status.",
		findings: []string{"request_errors"},
		commit:   true,
		tools:    []string{"nginx", "curl", "python3"},
		stack:    runNginxCurlStatusClasses,
	})
}

// runNginxCurlStatusClasses is nginx-curl-status-classes.
func runNginxCurlStatusClasses(ctx context.Context, r *stackRun) error {
	if err := r.writeWWW(); err != nil {
		return err
	}
	down, err := freePort()
	if err != nil {
		return err
	}
	silent, err := freePort()
	if err != nil {
		return err
	}
	// The upstream of deadline.test: accepts connections (the kernel's
	// backlog) and never reads or answers.
	if _, err := r.start(ctx, "python3", "upstream", silent, "-c", fmt.Sprintf(
		"import socket, time\ns = socket.socket()\ns.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)\n"+
			"s.bind(('127.0.0.1', %d))\ns.listen(64)\ntime.sleep(120)\n", silent)); err != nil {
		return err
	}
	servers := fmt.Sprintf(`location = /ok { return 200 "ok\n"; }
    location = /api/orders { proxy_pass http://127.0.0.1:%[1]d; }
    location = /api/search { limit_req zone=one nodelay; limit_req_status 429; try_files /index.html =404; }
    location = /api/report { proxy_pass http://127.0.0.1:%[2]d; proxy_read_timeout 300ms; }
    location = /api/cart { return 500; }`, down, silent)
	if _, err := r.startNginx(ctx, nginxConf{server: servers, http: "limit_req_zone $host zone=one:1m rate=1r/m;"}); err != nil {
		return err
	}
	got := map[string]map[int]int{}
	for _, p := range statusPlan {
		// The plan's failures first (the rate limit lets one through:
		// one more request for it), then 200s up to 40. (return answers
		// before limit_req runs: the limited location serves a file.)
		fails := p.fail
		if p.status == 429 {
			fails++
		}
		args := []string{"-H", "Host: " + p.host}
		for i := range 40 {
			path := "/ok"
			if i < fails {
				path = p.path
			}
			args = append(args, r.url(false, path))
		}
		ls, err := r.curl(ctx, p.host, false, args...)
		if err != nil {
			return err
		}
		if len(ls) != 40 || ls[0].connects != 1 {
			return fmt.Errorf("%s: curl reported %d transfers (first connects %d), want 40", p.host, len(ls), ls[0].connects)
		}
		got[p.host] = map[int]int{}
		for _, l := range ls {
			got[p.host][l.status]++
		}
		r.curlRequests(p.host, ls)
	}
	ng, _, err := r.stopNginx()
	if err != nil {
		return err
	}
	logged := map[int]int{}
	for _, e := range ng {
		logged[e.status]++
	}
	for _, p := range statusPlan {
		if got[p.host][p.status] != p.fail {
			return fmt.Errorf("%s: curl got %v, want %d × %d", p.host, got[p.host], p.fail, p.status)
		}
		if logged[p.status] != p.fail {
			return fmt.Errorf("nginx logged %d × %d, curl got %d", logged[p.status], p.status, p.fail)
		}
		var parts []string
		for s, n := range got[p.host] {
			parts = append(parts, strconv.Itoa(s)+" "+strconv.Itoa(n))
		}
		sort.Strings(parts)
		r.report("capgen", p.host+": statuses curl got", parts)
		r.fact(strings.TrimSuffix(p.host, ".test")+"_"+strconv.Itoa(p.status), p.fail)
	}
	r.verdictCause("request_errors", "critical", "unavailable",
		"nginx answered 502 Bad Gateway on 12 of 40 requests to unavailable.test (30%, past --errors-critical-share 25%): its upstream is down",
		fmt.Sprintf("curl got 502 on %d of 40 requests; nginx logged each (connect() failed, Connection refused, to the upstream)", got["unavailable.test"][502]))
	r.verdictCause("request_errors", "warning", "overload",
		"nginx's rate limit answered 429 on 6 of 40 requests to overload.test (15%)",
		fmt.Sprintf("limit_req let the first /api/search through and refused the next %d with 429", got["overload.test"][429]))
	r.verdictCause("request_errors", "warning", "deadline",
		"nginx answered 504 Gateway Time-out on 6 of 40 requests to deadline.test (15%): its upstream did not answer within proxy_read_timeout",
		fmt.Sprintf("the upstream accepted and never answered; nginx gave up after 300 ms on each of %d requests", got["deadline.test"][504]))
	r.verdictCause("request_errors", "critical", "server_error",
		"nginx answered 500 on 12 of 40 requests to internal.test (30%)",
		fmt.Sprintf("curl got 500 on %d of 40 requests", got["internal.test"][500]))
	return nil
}
