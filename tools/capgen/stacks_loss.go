package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/gopacket/gopacket/layers"
	"github.com/gopacket/gopacket/pcapgo"
)

// Packet loss on a real path: the kernel here has no netem (sch_netem
// is not built) and no tc actions (gact, police), and drops by a qdisc
// on lo never reach the wire: the sending TCP sees its own qdisc refuse
// the segment and sends it again later, no retransmission. So the
// scenario builds a path of three network namespaces — client, router,
// server — joined by veth pairs, and a bottleneck on the router (htb at
// 50 Mbit/s into a 90,000-byte bfifo) that drops what overflows its
// queue: the server's TCP learns of the loss only from the client's
// ACKs, as on any network. It captures in the server's namespace, at the
// sender, so every retransmission is on the wire next to its original.

func init() {
	stackTools["ip"] = stackTool{bin: "ip", pkg: "iproute2", version: []string{"-V"}}
	stackTools["tc"] = stackTool{bin: "tc", pkg: "iproute2", version: []string{"-V"}}
	stackTools["dumpcap"] = stackTool{bin: "dumpcap", pkg: "wireshark-common", version: []string{"--version"}}
	addStackScenarios(&scenario{
		name: "nginx-curl-loss",
		description: "nginx 1.22 and curl 7.88 over HTTP/1.1 on a routed path of three network namespaces (client 10.77.1.2, " +
			"router, server 10.77.2.2, veth pairs, MSS 1448); the router's link to the client is a bottleneck, htb 50 Mbit/s " +
			"into a 90,000-byte bfifo, that drops the packets overflowing its queue. curl downloads a 200,000-byte file " +
			"once: the server's slow start overflows the queue, the router drops a run of segments (tc -s: dropped), the " +
			"client's SACKs report the holes and the server resends each at once (SACK recovery; Wireshark flags at most " +
			"the first as a fast retransmission). Captured with dumpcap on the server's veth, at the sender.",
		findings: []string{"packet_loss"},
		commit:   true,
		tools:    []string{"nginx", "curl", "ip", "tc", "dumpcap"},
		stack:    runNginxCurlLoss,
	})
}

// lossNet is the scenario's three namespaces and their veths.
type lossNet struct {
	cli, rtr, srv    string // namespace names
	cliIf, rtrCli    string // the client's veth, and the router's end of it
	rtrSrv, srvIf    string // the router's veth to the server, and the server's
	clientIP, server string // addresses
}

// newLossNet makes the namespaces, with the router's bottleneck if
// bottleneck; del removes them (and their veths).
func newLossNet(ctx context.Context, r *stackRun, bottleneck bool) (*lossNet, error) {
	id := strconv.Itoa(os.Getpid() % 100000)
	n := &lossNet{cli: "capgen-cli-" + id, rtr: "capgen-rtr-" + id, srv: "capgen-srv-" + id,
		cliIf: "cg" + id + "c", rtrCli: "cg" + id + "rc", rtrSrv: "cg" + id + "rs", srvIf: "cg" + id + "s",
		clientIP: "10.77.1.2", server: "10.77.2.2"}
	cmds := [][]string{
		{"netns", "add", n.cli}, {"netns", "add", n.rtr}, {"netns", "add", n.srv},
		{"-n", n.cli, "link", "set", "lo", "up"}, {"-n", n.rtr, "link", "set", "lo", "up"}, {"-n", n.srv, "link", "set", "lo", "up"},
		{"link", "add", n.cliIf, "netns", n.cli, "type", "veth", "peer", "name", n.rtrCli, "netns", n.rtr},
		{"link", "add", n.rtrSrv, "netns", n.rtr, "type", "veth", "peer", "name", n.srvIf, "netns", n.srv},
		{"-n", n.cli, "addr", "add", n.clientIP + "/24", "dev", n.cliIf}, {"-n", n.cli, "link", "set", n.cliIf, "up"},
		{"-n", n.cli, "route", "add", "default", "via", "10.77.1.1"},
		{"-n", n.rtr, "addr", "add", "10.77.1.1/24", "dev", n.rtrCli}, {"-n", n.rtr, "link", "set", n.rtrCli, "up"},
		{"-n", n.rtr, "addr", "add", "10.77.2.1/24", "dev", n.rtrSrv}, {"-n", n.rtr, "link", "set", n.rtrSrv, "up"},
		{"netns", "exec", n.rtr, "sysctl", "-qw", "net.ipv4.ip_forward=1"},
		{"-n", n.srv, "addr", "add", n.server + "/24", "dev", n.srvIf}, {"-n", n.srv, "link", "set", n.srvIf, "up"},
		{"-n", n.srv, "route", "add", "default", "via", "10.77.2.1"},
		// One MSS-sized segment per packet: no GSO super-packets for the
		// router to drop whole.
		{"-n", n.srv, "link", "set", "dev", n.srvIf, "gso_max_segs", "1"},
	}
	if bottleneck {
		// The router's queue toward the client.
		cmds = append(cmds,
			[]string{"netns", "exec", n.rtr, "tc", "qdisc", "add", "dev", n.rtrCli, "root", "handle", "1:", "htb", "default", "2"},
			[]string{"netns", "exec", n.rtr, "tc", "class", "add", "dev", n.rtrCli, "parent", "1:", "classid", "1:2", "htb", "rate", "50mbit", "ceil", "50mbit"},
			[]string{"netns", "exec", n.rtr, "tc", "qdisc", "add", "dev", n.rtrCli, "parent", "1:2", "handle", "20:", "bfifo", "limit", "90000"})
	}
	var done []string
	for _, c := range cmds {
		out, err := r.command(ctx, "ip", c).CombinedOutput()
		if err != nil {
			n.del(ctx, r)
			return nil, fmt.Errorf("ip %s: %v: %s", strings.Join(c, " "), err, out)
		}
		done = append(done, "ip "+strings.Join(c, " "))
	}
	r.report("capgen", "network: namespaces, veths and the router's bottleneck (ip commands run)", done)
	return n, nil
}

// del removes the namespaces; their veths and qdiscs go with them.
func (n *lossNet) del(ctx context.Context, r *stackRun) {
	for _, ns := range []string{n.cli, n.rtr, n.srv} {
		r.command(context.WithoutCancel(ctx), "ip", []string{"netns", "del", ns}).Run()
	}
}

// startIn starts a server program inside namespace ns, as start does,
// waiting until it listens on port there.
func (r *stackRun) startIn(ctx context.Context, ns, name, role string, port int, args ...string) error {
	r.program(name, role, args)
	cmd := r.command(ctx, "ip", append([]string{"netns", "exec", ns, stackTools[name].bin}, args...))
	log, err := os.Create(r.path(fmt.Sprintf("%s.%d.out", name, len(r.procs))))
	if err != nil {
		return err
	}
	cmd.Stdout, cmd.Stderr = log, log
	if err := cmd.Start(); err != nil {
		log.Close()
		return fmt.Errorf("%s: %w", name, err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait(); log.Close() }()
	r.procs = append(r.procs, cmd)
	r.done = append(r.done, done)
	r.logs = append(r.logs, log.Name())
	// ip netns exec execs the program: its /proc/PID/net is the
	// namespace's.
	want := fmt.Sprintf(":%04X ", port)
	for deadline := time.Now().Add(5 * time.Second); ; {
		b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/net/tcp", cmd.Process.Pid))
		for _, l := range strings.Split(string(b), "\n")[1:] {
			if f := strings.Fields(l); len(f) > 3 && f[3] == "0A" && strings.HasSuffix(f[1]+" ", want) {
				return nil
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s: nothing listens on %d in %s after 5 s", name, port, ns)
		}
		if err := sleepCtx(ctx, 20*time.Millisecond); err != nil {
			return err
		}
	}
}

// tcDropped matches the statistics line of tc -s qdisc.
var tcDropped = regexp.MustCompile(`Sent (\d+) bytes (\d+) pkt \(dropped (\d+),`)

// runNginxCurlLoss is nginx-curl-loss.
func runNginxCurlLoss(ctx context.Context, r *stackRun) error {
	const size = 200000
	dropped, retx, err := lossDownload(ctx, r, size,
		func(n *lossNet) error {
			if _, err := r.writeNginx(ctx, nginxConf{host: n.server}); err != nil {
				return err
			}
			return r.startIn(ctx, n.srv, "nginx", "server", r.port, "-p", r.dir, "-c", r.path("nginx.conf"))
		},
		func() error {
			_, _, err := r.stopNginx()
			return err
		})
	if err != nil {
		return err
	}
	r.verdictCause("packet_loss", "warning", "fast_retransmit",
		"the router's queue overflowed and dropped segments; the server resent them at once on the client's SACKs",
		fmt.Sprintf("tc -s on the router counts %d packets dropped by the bottleneck queue; the capture at the server holds %d "+
			"data segments sent again (each a dropped one), each right after the client's ACKs reported the holes (SACK) "+
			"— loss recovered by fast retransmission, no retransmission timer; curl got all %d bytes (status 200), so "+
			"a cost, no failure: a warning", dropped, retx, size))
	return nil
}

// lossDownload plays a loss scenario on newLossNet's path with its
// bottleneck: start starts the server in the server namespace, serving
// DIR/www (which holds a file of size bytes), curl downloads that file
// once while dumpcap captures at the server, and stop stops the programs
// and checks the server's own log. It records the router's drops (tc
// -s), the segments the server sent again and the capture, and returns
// the two counts once they agree.
func lossDownload(ctx context.Context, r *stackRun, size int, start func(n *lossNet) error, stop func() error) (dropped, retx int, err error) {
	n, err := newLossNet(ctx, r, true)
	if err != nil {
		return 0, 0, err
	}
	defer n.del(ctx, r)
	r.clientIP = n.clientIP
	if err := r.writeWWW(size); err != nil {
		return 0, 0, err
	}
	if err := start(n); err != nil {
		return 0, 0, err
	}
	// The capture, at the sender.
	stopCapture, err := r.startDumpcap(ctx, n)
	if err != nil {
		return 0, 0, err
	}
	url := fmt.Sprintf("http://%s:%d/%d", n.server, r.port, size)
	r.clientNS = n.cli
	ls, err := r.curl(ctx, "download", false, url)
	r.clientNS = ""
	if err != nil {
		return 0, 0, err
	}
	if len(ls) != 1 || ls[0].status != 200 || ls[0].size != int64(size) {
		return 0, 0, fmt.Errorf("curl: %+v, want one 200 of %d bytes", ls, size)
	}
	r.curlRequests("download", ls)
	if err := sleepCtx(ctx, 300*time.Millisecond); err != nil {
		return 0, 0, err
	}
	pkts, err := stopCapture()
	if err != nil {
		return 0, 0, err
	}
	stats, err := r.command(ctx, "ip", []string{"netns", "exec", n.rtr, "tc", "-s", "qdisc", "show", "dev", n.rtrCli}).CombinedOutput()
	if err != nil {
		return 0, 0, fmt.Errorf("tc -s qdisc: %v: %s", err, stats)
	}
	r.report("tc", "router: tc -s qdisc show dev "+n.rtrCli+" (the bottleneck toward the client)", lines(stats))
	for _, m := range tcDropped.FindAllStringSubmatch(string(stats), -1) {
		d, _ := strconv.Atoi(m[3])
		dropped = max(dropped, d) // the bfifo's drops are the htb's
	}
	if err := stop(); err != nil {
		return 0, 0, err
	}
	r.own = &ownCapture{pkts: pkts, iface: n.srvIf, server: n.server + ":" + strconv.Itoa(r.port)}
	retx = retransmittedSegments(pkts, uint16(r.port))
	if dropped == 0 || retx != dropped {
		return 0, 0, fmt.Errorf("the router dropped %d packets, the server retransmitted %d segments: want as many, more than 0", dropped, retx)
	}
	r.fact("router_drops", dropped)
	r.fact("retransmitted_segments", retx)
	r.fact("bytes", size)
	return dropped, retx, nil
}

// readPcapng reads an Ethernet pcapng file's packets.
func readPcapng(file string) ([]packet, error) {
	f, err := os.Open(file)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	rd, err := pcapgo.NewNgReader(bufio.NewReader(f), pcapgo.DefaultNgReaderOptions)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", file, err)
	}
	if rd.LinkType() != layers.LinkTypeEthernet {
		return nil, fmt.Errorf("%s: link type %v, want Ethernet", file, rd.LinkType())
	}
	var pkts []packet
	for {
		data, ci, err := rd.ReadPacketData()
		if errors.Is(err, io.EOF) {
			return pkts, nil
		}
		if err != nil {
			return nil, fmt.Errorf("%s: frame %d: %w", file, len(pkts)+1, err)
		}
		pkts = append(pkts, packet{ts: ci.Timestamp, data: append([]byte(nil), data...)})
	}
}

// retransmittedSegments counts the server's data segments (from port)
// that start below the highest sequence number it had sent.
func retransmittedSegments(pkts []packet, port uint16) int {
	var high uint32
	var started bool
	n := 0
	for _, p := range pkts {
		t, ok := parseTCP(p.data)
		if !ok || t.src != port || t.payloadLen == 0 {
			continue
		}
		end := t.seq + uint32(t.payloadLen)
		switch {
		case !started:
			high, started = end, true
		case int32(t.seq-high) < 0:
			n++
		}
		if int32(end-high) > 0 {
			high = end
		}
	}
	return n
}

func init() {
	addStackScenarios(&scenario{
		name: "nginx-curl-link-flap",
		description: "nginx and curl over HTTP/1.1 on the routed path of nginx-curl-loss without its bottleneck: curl downloads " +
			"a 250,000-byte file that nginx sends at limit_rate 100k; 500 ms in, the router's link to the client goes down " +
			"for 1.2 s (ip link set down, as a flapping link or a failover), and again 0.8 s after it is back; everything " +
			"sent meanwhile is lost. The " +
			"server hears nothing back, so it waits for its retransmission timer, resends the first lost segment with " +
			"backoff until the link is back, then the rest. curl gets the whole file. Captured with dumpcap at the server.",
		findings: []string{"packet_loss"},
		commit:   true,
		tools:    []string{"nginx", "curl", "ip", "dumpcap"},
		stack:    runNginxCurlLinkFlap,
	})
}

// startDumpcap starts dumpcap on the server's veth of n, capturing the
// scenario's port into DIR/capture.pcapng, and waits until it writes; the
// function it returns stops it and reads the packets.
func (r *stackRun) startDumpcap(ctx context.Context, n *lossNet) (func() ([]packet, error), error) {
	pcap := r.path("capture.pcapng")
	dargs := []string{"-q", "-i", n.srvIf, "-f", "tcp port " + strconv.Itoa(r.port), "-w", pcap}
	r.program("dumpcap", "capture", dargs)
	dc := r.command(ctx, "ip", append([]string{"netns", "exec", n.srv, stackTools["dumpcap"].bin}, dargs...))
	var dcErr strings.Builder
	dc.Stderr = &dcErr
	if err := dc.Start(); err != nil {
		return nil, err
	}
	dcDone := make(chan error, 1)
	go func() { dcDone <- dc.Wait() }()
	stop := func() ([]packet, error) {
		syscall.Kill(-dc.Process.Pid, syscall.SIGTERM)
		select {
		case <-dcDone:
		case <-time.After(5 * time.Second):
			syscall.Kill(-dc.Process.Pid, syscall.SIGKILL)
			return nil, errors.New("dumpcap did not stop")
		}
		return readPcapng(pcap)
	}
	for deadline := time.Now().Add(5 * time.Second); ; {
		if fi, err := os.Stat(pcap); err == nil && fi.Size() > 0 {
			break
		}
		if time.Now().After(deadline) {
			stop()
			return nil, fmt.Errorf("dumpcap wrote nothing after 5 s: %s", dcErr.String())
		}
		if err := sleepCtx(ctx, 20*time.Millisecond); err != nil {
			stop()
			return nil, err
		}
	}
	if err := sleepCtx(ctx, 300*time.Millisecond); err != nil {
		stop()
		return nil, err
	}
	return stop, nil
}

// runNginxCurlLinkFlap is nginx-curl-link-flap.
func runNginxCurlLinkFlap(ctx context.Context, r *stackRun) error {
	const size = 250000
	n, err := newLossNet(ctx, r, false)
	if err != nil {
		return err
	}
	defer n.del(ctx, r)
	r.clientIP = n.clientIP
	if err := r.writeWWW(size); err != nil {
		return err
	}
	if _, err := r.writeNginx(ctx, nginxConf{host: n.server, server: "limit_rate 100k;"}); err != nil {
		return err
	}
	if err := r.startIn(ctx, n.srv, "nginx", "server", r.port, "-p", r.dir, "-c", r.path("nginx.conf")); err != nil {
		return err
	}
	stop, err := r.startDumpcap(ctx, n)
	if err != nil {
		return err
	}
	type res struct {
		ls  []curlLine
		err error
	}
	ch := make(chan res, 1)
	r.clientNS = n.cli
	go func() {
		ls, err := r.curl(ctx, "download", false, fmt.Sprintf("http://%s:%d/%d", n.server, r.port, size))
		ch <- res{ls, err}
	}()
	flap := func(state string) error {
		out, err := r.command(ctx, "ip", []string{"-n", n.rtr, "link", "set", n.rtrCli, state}).CombinedOutput()
		if err != nil {
			return fmt.Errorf("ip link set %s: %v: %s", state, err, out)
		}
		return nil
	}
	// Two outages of 1.2 s, 0.5 s and 2.5 s into the transfer.
	for _, at := range []time.Duration{500 * time.Millisecond, 800 * time.Millisecond} {
		if err == nil {
			err = sleepCtx(ctx, at)
		}
		if err == nil {
			err = flap("down")
		}
		if err == nil {
			err = sleepCtx(ctx, 1200*time.Millisecond)
		}
		if err == nil {
			err = flap("up")
		}
	}
	c := <-ch
	r.clientNS = ""
	if err != nil {
		stop()
		return err
	}
	r.report("capgen", "the router's link to the client", []string{"500 ms after curl started: ip link set " + n.rtrCli + " down",
		"1.2 s later: ip link set " + n.rtrCli + " up", "0.8 s later: down again", "1.2 s later: up"})
	if c.err != nil {
		stop()
		return c.err
	}
	ls := c.ls
	if len(ls) != 1 || ls[0].status != 200 || ls[0].size != size {
		stop()
		return fmt.Errorf("curl: %+v, want one 200 of %d bytes", ls, size)
	}
	r.curlRequests("download", ls)
	if err := sleepCtx(ctx, 300*time.Millisecond); err != nil {
		stop()
		return err
	}
	pkts, err := stop()
	if err != nil {
		return err
	}
	if _, _, err := r.stopNginx(); err != nil {
		return err
	}
	r.own = &ownCapture{pkts: pkts, iface: n.srvIf, server: n.server + ":" + strconv.Itoa(r.port)}
	retx := retransmittedSegments(pkts, uint16(r.port))
	silent := longestServerSilence(pkts, uint16(r.port))
	if retx < 10 || silent < 400*time.Millisecond {
		return fmt.Errorf("%d retransmitted segments, the server's longest silence %v: want 10 or more after a silence of 400 ms or more (the timer backing off)", retx, silent)
	}
	r.fact("retransmitted_segments", retx)
	r.fact("outages", 2)
	r.fact("outage_ms", 1200)
	r.fact("server_longest_silence_ms", int(silent/time.Millisecond))
	r.verdictCause("packet_loss", "warning", "timeouts",
		"the link was down twice for 1.2 s: everything in flight was lost and the server waited for its retransmission timer",
		fmt.Sprintf("with the router's link to the client down, no ACK came back, so the server resent only on its "+
			"retransmission timer, with backoff (its longest silence on the wire: %v), then %d segments in all once the "+
			"link was back; curl got all %d bytes (status 200): a cost, no failure", silent.Round(time.Millisecond), retx, size))
	return nil
}

// longestServerSilence returns the longest gap between two segments the
// server (port) sent.
func longestServerSilence(pkts []packet, port uint16) time.Duration {
	var last time.Time
	var most time.Duration
	for _, p := range pkts {
		t, ok := parseTCP(p.data)
		if !ok || t.src != port {
			continue
		}
		if !last.IsZero() {
			most = max(most, p.ts.Sub(last))
		}
		last = p.ts
	}
	return most
}
