package main

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Real loss recovered by fast retransmission on a second server stack:
// Python's http.server behind the same bottleneck as nginx-curl-loss.

func init() {
	addStackScenarios(&scenario{
		name: "python-curl-loss",
		description: "Python 3.11's http.server and curl 7.88 over HTTP/1.1 on the routed path of nginx-curl-loss (client " +
			"10.77.1.2, router, server 10.77.2.2; the router's link to the client an htb 50 Mbit/s bottleneck into a " +
			"90,000-byte bfifo): curl downloads a 200,000-byte file once, the server's slow start overflows the queue, the " +
			"router drops a run of segments (tc -s: dropped), the client's SACKs report the holes and the server's kernel " +
			"resends them at once. Captured with dumpcap on the server's veth, at the sender.",
		findings: []string{"packet_loss"},
		commit:   true,
		tools:    []string{"python3", "curl", "ip", "tc", "dumpcap"},
		stack:    runPythonCurlLoss,
	})
}

// runPythonCurlLoss is python-curl-loss.
func runPythonCurlLoss(ctx context.Context, r *stackRun) error {
	const size = 200000
	n, err := newLossNet(ctx, r, true)
	if err != nil {
		return err
	}
	defer n.del(ctx, r)
	r.clientIP = n.clientIP
	if err := r.writeWWW(size); err != nil {
		return err
	}
	if err := r.startIn(ctx, n.srv, "python3", "server", r.port, "-m", "http.server", "--bind", n.server,
		"--directory", r.path("www"), strconv.Itoa(r.port)); err != nil {
		return err
	}
	stop, err := r.startDumpcap(ctx, n)
	if err != nil {
		return err
	}
	url := fmt.Sprintf("http://%s:%d/%d", n.server, r.port, size)
	r.clientNS = n.cli
	ls, err := r.curl(ctx, "download", false, url)
	r.clientNS = ""
	if err != nil {
		return err
	}
	if len(ls) != 1 || ls[0].status != 200 || ls[0].size != size {
		return fmt.Errorf("curl: %+v, want one 200 of %d bytes", ls, size)
	}
	r.curlRequests("download", ls)
	if err := sleepCtx(ctx, 300*time.Millisecond); err != nil {
		return err
	}
	pkts, err := stop()
	if err != nil {
		return err
	}
	stats, err := r.command(ctx, "ip", []string{"netns", "exec", n.rtr, "tc", "-s", "qdisc", "show", "dev", n.rtrCli}).CombinedOutput()
	if err != nil {
		return fmt.Errorf("tc -s qdisc: %v: %s", err, stats)
	}
	r.report("tc", "router: tc -s qdisc show dev "+n.rtrCli+" (the bottleneck toward the client)", lines(stats))
	var dropped int
	for _, m := range tcDropped.FindAllStringSubmatch(string(stats), -1) {
		d, _ := strconv.Atoi(m[3])
		dropped = max(dropped, d)
	}
	r.stopAll(sigTerm)
	// http.server logs each request on its standard error.
	var logged int
	for _, l := range lines(r.output(r.procs[0])) {
		if strings.Contains(l, `"GET /200000 HTTP/1.1" 200`) {
			logged++
		}
	}
	r.report("python3", "http.server's request log", lines(r.output(r.procs[0])))
	if logged != 1 {
		return fmt.Errorf("http.server logged %d GETs of the file, want 1", logged)
	}
	r.own = &ownCapture{pkts: pkts, iface: n.srvIf, server: n.server + ":" + strconv.Itoa(r.port)}
	retx := retransmittedSegments(pkts, uint16(r.port))
	if dropped == 0 || retx != dropped {
		return fmt.Errorf("the router dropped %d packets, the server retransmitted %d segments: want as many, more than 0", dropped, retx)
	}
	r.fact("router_drops", dropped)
	r.fact("retransmitted_segments", retx)
	r.fact("bytes", size)
	r.verdictCause("packet_loss", "warning", "fast_retransmit",
		"the router's queue overflowed and dropped segments; the server resent them at once on the client's SACKs",
		fmt.Sprintf("tc -s on the router counts %d packets dropped by the bottleneck queue; the capture at the server holds %d "+
			"data segments sent again (each a dropped one), right after the client's ACKs reported the holes (SACK); curl "+
			"got all %d bytes (status 200): a cost, no failure, a warning", dropped, retx, size))
	return nil
}
