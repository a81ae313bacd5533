package main

import (
	"container/heap"
	"encoding/binary"
	"fmt"
	"io"
	"math/rand/v2"
	"strconv"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/gopacket/gopacket/pcapgo"
)

// The -conns captures are synthesised packet by packet, not captured:
// they are for measuring how h2scope scales with the number of
// connections (make bench-conns), where a live capture of a million
// connections would take long and hold little but handshakes.
//
// Two kinds, both seeded and so byte-for-byte reproducible:
//
//   - short: HTTP/1.1 connections of one request each, from connsClients
//     clients to connsServers servers, arriving at shortRate a second
//     (exponential gaps). Each is seven segments: SYN, SYN-ACK, ACK, the
//     request, the response with the server's FIN (Connection: close),
//     the client's FIN, the server's last ACK: conn_state SF. Each
//     client takes its ephemeral ports in turn from 32768-60999, so ports
//     repeat only after 28,232 connections of one client.
//   - syn-flood: N SYNs at floodRate a second from N spoofed source
//     addresses (distinct for N up to 2^24) and random ports to
//     floodTargets servers, none answered (conn_state S0), plus short
//     connections as above at floodNormalRate a second.
//
// Frames are raw IPv4 (pcap link type 101, no Ethernet header) with
// correct checksums, in pcap files with nanosecond timestamps: a SYN is
// 56 bytes on disk, a short connection about 500. The writer holds the
// connections in flight (a few dozen) and nothing per finished one.

// Rates and pool sizes of the -conns captures.
const (
	connsClients    = 64
	connsServers    = 4
	shortRate       = 2000   // connections a second (kind short)
	floodRate       = 20_000 // SYNs a second (kind syn-flood)
	floodNormalRate = 100    // short connections a second beside the flood
	floodTargets    = 2      // servers the flood aims at
)

// connsStart is when every -conns capture starts.
var connsStart = time.Date(2026, 3, 2, 10, 0, 0, 0, time.UTC)

// connsSpec says what -conns writes.
type connsSpec struct {
	kind string // "short" or "syn-flood"
	n    int    // short connections (short) or flood SYNs (syn-flood)
	seed uint64
}

// connsStats counts what a -conns capture holds.
type connsStats struct {
	Frames   int   // frames written
	Bytes    int64 // file size
	Conns    int   // TCP connections (every SYN starts one)
	SYNs     int   // SYNs without ACK
	Flood    int   // of those, flood SYNs never answered
	Requests int   // HTTP requests, each answered
	Status   map[int]int
}

// genConn is one connection in flight in the generator.
type genConn struct {
	at        [7]int64 // capture-time offsets of the frames, ns from connsStart, non-decreasing
	n, next   int      // frames in all, the next to write
	client    [4]byte
	server    [4]byte
	cport     uint16
	sport     uint16
	cisn      uint32
	sisn      uint32
	item      int // the requested item, 0-999999
	host      int // the server's index, for its Host header
	status    int // index in shortStatus
	flood     bool
	heapIndex int
}

// connHeap orders the connections in flight by their next frame's time,
// then by start (a stable order for equal timestamps).
type connHeap []*genConn

func (h connHeap) Len() int { return len(h) }
func (h connHeap) Less(i, j int) bool {
	a, b := h[i].at[h[i].next], h[j].at[h[j].next]
	if a != b {
		return a < b
	}
	return h[i].at[0] < h[j].at[0]
}
func (h connHeap) Swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].heapIndex, h[j].heapIndex = i, j
}
func (h *connHeap) Push(x any) { c := x.(*genConn); c.heapIndex = len(*h); *h = append(*h, c) }
func (h *connHeap) Pop() any {
	old := *h
	c := old[len(old)-1]
	*h = old[:len(old)-1]
	return c
}

// shortStatus are the responses of short connections, all the same
// length so that sequence numbers need no per-connection lengths; weights
// in shortStatusWeight (per 1000).
var (
	shortStatus = []struct {
		code int
		resp string
	}{
		{200, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok"},
		{404, "HTTP/1.1 404 NF\r\nContent-Length: 2\r\nConnection: close\r\n\r\nno"},
		{503, "HTTP/1.1 503 SU\r\nContent-Length: 2\r\nConnection: close\r\n\r\nno"},
	}
	shortStatusWeight = []int{985, 10, 5}
)

// shortRequest is the request of a short connection, with the item
// number and the host's index filled in by request.
const shortRequest = "GET /items/000000 HTTP/1.1\r\nHost: api0.example\r\n\r\n"

// request writes c's request into b (len(shortRequest) bytes).
func (c *genConn) request(b []byte) {
	copy(b, shortRequest)
	n := c.item
	for i := 16; i >= 11; i-- {
		b[i] = byte('0' + n%10)
		n /= 10
	}
	b[len("GET /items/000000 HTTP/1.1\r\nHost: api")] = byte('0' + c.host)
}

// connsGen writes one -conns capture.
type connsGen struct {
	spec    connsSpec
	r       *rand.Rand
	clients [connsClients]struct {
		addr [4]byte
		rtt  int64 // ns
		port uint16
	}
	servers [connsServers][4]byte
	free    []*genConn
	live    connHeap
	buf     []byte
	st      connsStats
	floodAt int64 // next flood SYN, ns
	shortAt int64 // next short connection, ns
	shorts  int   // short connections started
	floods  int   // flood SYNs started
}

func newConnsGen(spec connsSpec) *connsGen {
	g := &connsGen{spec: spec, r: rand.New(rand.NewPCG(spec.seed, 0x68327363_6f6e6e73)), buf: make([]byte, 256)}
	g.st.Status = map[int]int{}
	for i := range g.clients {
		c := &g.clients[i]
		c.addr = [4]byte{10, 0, byte(1 + i/200), byte(1 + i%200)}
		// Round-trip times from 0.2 to 3 ms: a few racks, a few zones.
		c.rtt = int64(200_000 + g.r.IntN(2_800_000))
		c.port = uint16(32768 + g.r.IntN(60999-32768+1))
	}
	for i := range g.servers {
		g.servers[i] = [4]byte{10, 1, 0, byte(1 + i)}
	}
	g.shortAt = g.gap(shortRate)
	if spec.kind == "syn-flood" {
		g.shortAt = g.gap(floodNormalRate)
		g.floodAt = g.gap(floodRate)
	}
	return g
}

// gap returns an exponentially distributed gap in ns for rate events a
// second, at least 1 µs.
func (g *connsGen) gap(rate float64) int64 {
	return max(1000, int64(g.r.ExpFloat64()/rate*1e9))
}

// conn returns a connection struct to fill, reused from finished ones.
func (g *connsGen) conn() *genConn {
	if n := len(g.free); n > 0 {
		c := g.free[n-1]
		g.free = g.free[:n-1]
		*c = genConn{}
		return c
	}
	return &genConn{}
}

// startShort starts a short connection at t.
func (g *connsGen) startShort(t int64) {
	c := g.conn()
	ci := g.r.IntN(connsClients)
	cl := &g.clients[ci]
	c.client, c.cport = cl.addr, cl.port
	if cl.port++; cl.port > 60999 {
		cl.port = 32768
	}
	c.host = g.r.IntN(connsServers)
	c.server, c.sport = g.servers[c.host], 80
	c.cisn, c.sisn = g.r.Uint32(), g.r.Uint32()
	c.item = g.r.IntN(1_000_000)
	w := g.r.IntN(1000)
	for w >= shortStatusWeight[c.status] {
		w -= shortStatusWeight[c.status]
		c.status++
	}
	// Captured at the server: the SYN, the SYN-ACK 30 µs later, the
	// client's ACK one round trip after that and its request 20 µs
	// later; the response after a service time (0.2 ms plus an
	// exponential of mean 4 ms); the client's FIN a round trip later and
	// the server's ACK 15 µs after it.
	rtt := cl.rtt * int64(90+g.r.IntN(21)) / 100
	svc := int64(200_000 + g.r.ExpFloat64()*4e6)
	c.at = [7]int64{t, t + 30_000, t + 30_000 + rtt, t + 50_000 + rtt, t + 50_000 + rtt + svc,
		t + 50_000 + 2*rtt + svc, t + 65_000 + 2*rtt + svc}
	c.n = 7
	heap.Push(&g.live, c)
	g.st.Conns++
	g.st.SYNs++
	g.st.Requests++
	g.st.Status[shortStatus[c.status].code]++
}

// floodOctets are the first octets of the flood's spoofed sources: public
// unicast ranges.
var floodOctets = []byte{23, 31, 45, 62, 77, 89, 101, 112, 134, 151, 176, 185, 193, 203, 212}

// startFlood starts flood SYN number i at t: one frame, never answered.
func (g *connsGen) startFlood(i int, t int64) {
	c := g.conn()
	// i times an odd number is a permutation of 0..2^24-1: the sources
	// are distinct for up to 2^24 SYNs, and look scattered.
	low := uint32(i)*0x9e3779b1&0xffffff ^ uint32(g.spec.seed)&0xffffff
	c.client = [4]byte{floodOctets[g.r.IntN(len(floodOctets))], byte(low >> 16), byte(low >> 8), byte(low)}
	c.cport = uint16(1024 + g.r.IntN(65536-1024))
	c.host = g.r.IntN(floodTargets)
	c.server, c.sport = g.servers[c.host], 80
	c.cisn = g.r.Uint32()
	c.flood = true
	c.at[0], c.n = t, 1
	heap.Push(&g.live, c)
	g.st.Conns++
	g.st.SYNs++
	g.st.Flood++
}

// run writes the capture to w, which it wraps in a pcap writer.
func (g *connsGen) run(w io.Writer) error {
	pw := pcapgo.NewWriterNanos(w)
	if err := pw.WriteFileHeader(snaplen, layers.LinkTypeRaw); err != nil {
		return err
	}
	flood := g.spec.kind == "syn-flood"
	for {
		// The next event: a frame of a connection in flight, a new short
		// connection or a new flood SYN, whichever comes first. Short
		// connections stop once the last flood SYN is out (syn-flood) or
		// n have started (short).
		next := int64(-1)
		if g.live.Len() > 0 {
			c := g.live[0]
			next = c.at[c.next]
		}
		moreShort := (!flood && g.shorts < g.spec.n) || (flood && g.floods < g.spec.n)
		moreFlood := flood && g.floods < g.spec.n
		switch {
		case moreFlood && (next < 0 || g.floodAt < next) && (!moreShort || g.floodAt <= g.shortAt):
			g.startFlood(g.floods, g.floodAt)
			g.floods++
			g.floodAt += g.gap(floodRate)
			continue
		case moreShort && (next < 0 || g.shortAt < next):
			g.startShort(g.shortAt)
			g.shorts++
			if flood {
				g.shortAt += g.gap(floodNormalRate)
			} else {
				g.shortAt += g.gap(shortRate)
			}
			continue
		case next < 0:
			return nil
		}
		c := g.live[0]
		b := g.frame(c)
		ts := connsStart.Add(time.Duration(c.at[c.next]))
		if err := pw.WritePacket(gopacket.CaptureInfo{Timestamp: ts, CaptureLength: len(b), Length: len(b)}, b); err != nil {
			return err
		}
		g.st.Frames++
		if c.next++; c.next == c.n {
			heap.Pop(&g.live)
			g.free = append(g.free, c)
		} else {
			heap.Fix(&g.live, 0)
		}
	}
}

// TCP flag bits not in packet.go.
const (
	flagPSH = 0x08
)

// frame builds frame c.next of c in g.buf and returns it: an IPv4 packet
// with its TCP segment, checksums set.
func (g *connsGen) frame(c *genConn) []byte {
	req, resp := uint32(len(shortRequest)), uint32(len(shortStatus[c.status].resp))
	var (
		fromClient bool
		seq, ack   uint32
		flags      uint8
		mss        bool
		payload    int    // 1 request, 2 response
		win        uint16 = 64240
	)
	ci, si := c.cisn, c.sisn
	switch c.next {
	case 0:
		fromClient, seq, flags, mss = true, ci, flagSYN, !c.flood
		if c.flood {
			win = 1024
		}
	case 1:
		seq, ack, flags, mss, win = si, ci+1, flagSYN|flagACK, true, 65160
	case 2:
		fromClient, seq, ack, flags = true, ci+1, si+1, flagACK
	case 3:
		fromClient, seq, ack, flags, payload = true, ci+1, si+1, flagPSH|flagACK, 1
	case 4:
		seq, ack, flags, payload, win = si+1, ci+1+req, flagPSH|flagACK|flagFIN, 2, 509
	case 5:
		fromClient, seq, ack, flags = true, ci+1+req, si+2+resp, flagFIN|flagACK
	case 6:
		seq, ack, flags, win = si+2+resp, ci+2+req, flagACK, 509
	}
	thl := 20
	if mss {
		thl = 24
	}
	plen := 0
	switch payload {
	case 1:
		plen = int(req)
	case 2:
		plen = int(resp)
	}
	total := 20 + thl + plen
	b := g.buf[:total]
	clear(b[:20+thl])
	ip := b[:20]
	ip[0] = 0x45
	binary.BigEndian.PutUint16(ip[2:], uint16(total))
	binary.BigEndian.PutUint16(ip[4:], uint16(c.cisn>>8)+uint16(c.next)) // IP id
	ip[6] = 0x40                                                         // don't fragment
	ip[8] = 64
	ip[9] = 6
	src, dst, sport, dport := c.client, c.server, c.cport, c.sport
	if !fromClient {
		src, dst, sport, dport = dst, src, dport, sport
		ip[8] = 63
	}
	copy(ip[12:], src[:])
	copy(ip[16:], dst[:])
	binary.BigEndian.PutUint16(ip[10:], fold(sum16(0, ip)))
	tcp := b[20:]
	binary.BigEndian.PutUint16(tcp[0:], sport)
	binary.BigEndian.PutUint16(tcp[2:], dport)
	binary.BigEndian.PutUint32(tcp[4:], seq)
	binary.BigEndian.PutUint32(tcp[8:], ack)
	tcp[12] = byte(thl/4) << 4
	tcp[13] = flags
	binary.BigEndian.PutUint16(tcp[14:], win)
	if mss {
		copy(tcp[20:], []byte{2, 4, 0x05, 0xb4}) // MSS 1460
	}
	switch payload {
	case 1:
		c.request(tcp[thl:])
	case 2:
		copy(tcp[thl:], shortStatus[c.status].resp)
	}
	s := sum16(0, ip[12:20]) + 6 + uint32(len(tcp))
	binary.BigEndian.PutUint16(tcp[16:], fold(sum16(s, tcp)))
	return b
}

// writeConns writes the -conns capture spec to path, through a
// temporary file renamed into place once complete, and returns what it
// holds.
func writeConns(path string, spec connsSpec) (connsStats, error) {
	g := newConnsGen(spec)
	err := writeAtomic(path, func(w io.Writer) error {
		cw := &countWriter{w: w}
		err := g.run(cw)
		g.st.Bytes = cw.n
		return err
	})
	return g.st, err
}

// parseCount reads a count such as 250000, 250k or 1M.
func parseCount(s string) (int, error) {
	mult := 1
	switch {
	case len(s) > 1 && (s[len(s)-1] == 'k' || s[len(s)-1] == 'K'):
		mult, s = 1000, s[:len(s)-1]
	case len(s) > 1 && s[len(s)-1] == 'M':
		mult, s = 1_000_000, s[:len(s)-1]
	}
	n, err := strconv.Atoi(s)
	if err != nil || n <= 0 {
		return 0, fmt.Errorf("bad count %q: want a positive number, optionally with k or M (250k, 1M)", s)
	}
	return n * mult, nil
}
