package main

import (
	"context"
	"fmt"
	"strconv"
	"strings"
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
	dropped, retx, err := lossDownload(ctx, r, size,
		func(n *lossNet) error {
			return r.startIn(ctx, n.srv, "python3", "server", r.port, "-m", "http.server", "--bind", n.server,
				"--directory", r.path("www"), strconv.Itoa(r.port))
		},
		func() error {
			r.stopAll(sigTerm)
			// http.server logs each request on its standard error.
			log := lines(r.output(r.procs[0]))
			r.report("python3", "http.server's request log", log)
			var logged int
			for _, l := range log {
				if strings.Contains(l, `"GET /200000 HTTP/1.1" 200`) {
					logged++
				}
			}
			if logged != 1 {
				return fmt.Errorf("http.server logged %d GETs of the file, want 1", logged)
			}
			return nil
		})
	if err != nil {
		return err
	}
	r.verdictCause("packet_loss", "warning", "fast_retransmit",
		"the router's queue overflowed and dropped segments; the server resent them at once on the client's SACKs",
		fmt.Sprintf("tc -s on the router counts %d packets dropped by the bottleneck queue; the capture at the server holds %d "+
			"data segments sent again (each a dropped one), right after the client's ACKs reported the holes (SACK); curl "+
			"got all %d bytes (status 200): a cost, no failure, a warning", dropped, retx, size))
	return nil
}
