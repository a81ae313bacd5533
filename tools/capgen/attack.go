package main

// Attack captures (issue 14): synthetic, deterministic captures of one
// attacker hammering one HTTP/2 (h2c, prior knowledge) server, one per
// cause h2scope's protocol_abuse and rst_storm detectors report. They are
// written packet by packet, as the -conns captures are, not captured
// live: an attack of 500,000 streams would take long on loopback and a
// real server would answer it, which is not what the capture is for.
//
//	go run ./tools/capgen -attack all -out testdata/pcaps/attacks
//	go run ./tools/capgen -attack rapid-reset -n 500000 -out /tmp/attacks
//
// Each capture is NAME.pcapng (Ethernet, pcapng, nanosecond timestamps,
// IPv4 and TCP checksums right) and NAME.truth.json (truth.Truth): what
// the attacker sent (frames by type, streams, Stack.Facts), the server,
// and the verdict h2scope must give (Stack.Verdicts, Expect.Findings).
// The attacker is 203.0.113.66:40001 (a documentation address), the server
// 198.51.100.10:8080. Every TCP connection has a handshake, sequence
// numbers that follow the bytes, an ACK from the peer after every data
// segment and FINs both ways; frames are never split across segments.
// With -n, the generated capture is named after the count (rapid-reset
// with -n 500000 writes rapid-reset-500000.pcapng), so that it never
// replaces a committed one.

import (
	"bytes"
	"encoding/binary"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/pcapgo"
	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"

	"github.com/h2scope/h2scope/tools/capgen/truth"
)

// attackStart is when every attack capture starts.
var attackStart = time.Date(2026, 3, 2, 11, 0, 0, 0, time.UTC)

// The attack's addresses.
var (
	attackClient = [4]byte{203, 0, 113, 66}
	attackServer = [4]byte{198, 51, 100, 10}
)

const (
	attackClientPort = 40001
	attackServerPort = 8080
	attackMSS        = 1460
	attackAuthority  = "victim.example:8080"
	// attackServerMaxHeaderList is the server's
	// SETTINGS_MAX_HEADER_LIST_SIZE.
	attackServerMaxHeaderList = 65536
)

// An attackKind is one attack capture: its name, the count -n sets by
// default (the committed capture's) and what the count counts.
type attackKind struct {
	name  string
	n     int
	count string
	build func(g *attackGen, n int) error
}

// attackKinds lists the attacks -attack knows, in the order -attack all
// writes them.
var attackKinds = []attackKind{
	{"rapid-reset", 5000, "streams, each HEADERS then RST_STREAM(CANCEL)", buildRapidReset},
	{"ping-flood", 5000, "PING frames", buildPingFlood},
	{"settings-flood", 5000, "SETTINGS frames beyond the first", buildSettingsFlood},
	{"window-update-flood", 5000, "WINDOW_UPDATE frames", buildWindowUpdateFlood},
	{"continuation-flood", 20000, "CONTINUATION frames", buildContinuationFlood},
	{"hpack-bomb", 8, "header blocks decoding past 1 MiB", buildHPACKBomb},
	{"hpack-bomb-64k", 8, "header blocks decoding to about 118 KB, past the server's 64 KiB", buildHPACKBomb64k},
	{"syn-flood", 3000, "SYNs from distinct spoofed sources", buildSYNFlood},
	{"empty-frames-flood", 5000, "empty DATA frames without END_STREAM", buildEmptyFramesFlood},
	{"syn-flood-half-open", 1500, "SYNs from distinct spoofed sources, each answered by a SYN-ACK", buildSYNFloodHalfOpen},
}

// runAttack is capgen -attack: it writes the attack kinds (or all) to
// -out, with -n as the count when given. It returns the exit code.
func runAttack(kind string, o *options, fs *flag.FlagSet, stdout, stderr io.Writer) int {
	usage := func(msg string) int {
		fmt.Fprintln(stderr, "capgen:", msg)
		fs.Usage()
		return 2
	}
	nSet := false
	fs.Visit(func(f *flag.Flag) { nSet = nSet || f.Name == "n" })
	var kinds []attackKind
	for _, k := range attackKinds {
		if kind == "all" || k.name == kind {
			kinds = append(kinds, k)
		}
	}
	switch {
	case len(kinds) == 0:
		var names []string
		for _, k := range attackKinds {
			names = append(names, k.name)
		}
		return usage(fmt.Sprintf("-attack %q: want all or one of %s", kind, strings.Join(names, ", ")))
	case o.out == "" || fs.NArg() > 0 || o.big != "" || o.conns != "" || o.bench != "":
		return usage("-attack goes with -out DIR and, optionally, -n COUNT")
	case nSet && kind == "all":
		return usage("-n goes with one -attack kind, not all")
	}
	if err := os.MkdirAll(o.out, 0o755); err != nil {
		fmt.Fprintln(stderr, "capgen:", err)
		return 1
	}
	for _, k := range kinds {
		n := k.n
		if nSet {
			var err error
			if n, err = parseCount(o.n); err != nil {
				return usage(err.Error())
			}
		}
		start := time.Now()
		tr, size, err := writeAttack(o.out, k, n)
		if err != nil {
			fmt.Fprintln(stderr, "capgen:", err)
			return 1
		}
		fmt.Fprintf(stdout, "%s: %d bytes, %d frames, %d %s; HTTP/2 frames %v, written in %v\n",
			filepath.Join(o.out, tr.Scenario+".pcapng"), size, tr.Expect.Frames, n, k.count, tr.Expect.HTTP2Frames,
			time.Since(start).Round(time.Millisecond))
	}
	return 0
}

// attackName is the scenario name of kind k with count n: the kind's
// name, with the count appended unless it is the committed one.
func attackName(k attackKind, n int) string {
	if n == k.n {
		return k.name
	}
	return k.name + "-" + strconv.Itoa(n)
}

// writeAttack writes dir/NAME.pcapng and dir/NAME.truth.json for kind k
// with count n, and returns the truth and the capture's size.
func writeAttack(dir string, k attackKind, n int) (*truth.Truth, int64, error) {
	name := attackName(k, n)
	var g *attackGen
	var size int64
	err := writeAtomic(filepath.Join(dir, name+".pcapng"), func(w io.Writer) error {
		cw := &countWriter{w: w}
		var err error
		if g, err = newAttackGen(cw, name, k, n); err != nil {
			return err
		}
		if err := errors.Join(k.build(g, n), g.err); err != nil {
			return err
		}
		if err := g.w.Flush(); err != nil {
			return err
		}
		size = cw.n
		return nil
	})
	if err != nil {
		return nil, 0, err
	}
	tr := g.truth()
	err = writeAtomic(filepath.Join(dir, name+".truth.json"), func(w io.Writer) error { return writeTruth(w, tr) })
	return tr, size, err
}

// attackGen writes one attack capture and counts what it holds.
type attackGen struct {
	w      *pcapgo.NgWriter
	name   string
	kind   attackKind
	n      int
	t      time.Duration // the next packet's offset from attackStart
	r      *rand.Rand
	buf    []byte
	frames int
	conns  []*attackConn
	// HTTP/2, per direction (0 client to server, 1 server to client):
	// frames by type name, RST_STREAM codes, the streams with a frame.
	h2       [2]map[string]int
	rstCodes map[string]int
	streams  map[uint32]bool
	facts    map[string]int
	verdicts []truth.Verdict
	desc     string
	syns     int
	// err is the first error writing an HTTP/2 frame (h2frames.frame).
	err error
}

func newAttackGen(w io.Writer, name string, k attackKind, n int) (*attackGen, error) {
	nw, err := newNgWriter(w, "capgen attack "+name+" (synthetic)")
	if err != nil {
		return nil, err
	}
	g := &attackGen{w: nw, name: name, kind: k, n: n, r: rand.New(rand.NewPCG(uint64(n), 0x61747461636b)),
		buf: make([]byte, 14+20+24+attackMSS), rstCodes: map[string]int{}, streams: map[uint32]bool{}, facts: map[string]int{}}
	g.h2 = [2]map[string]int{{}, {}}
	return g, nil
}

// packet writes one Ethernet frame holding an IPv4 TCP segment, after
// gap, with checksums set.
func (g *attackGen) packet(gap time.Duration, src, dst [4]byte, sport, dport uint16, seq, ack uint32, flags uint8, win uint16, ipid uint16, payload []byte) error {
	g.t += gap
	thl := 20
	if flags&flagSYN != 0 {
		thl = 24
	}
	total := 20 + thl + len(payload)
	b := g.buf[:14+total]
	clear(b[:14+20+thl])
	// Ethernet: the server's and the router's made-up, locally
	// administered MACs; which is which follows the direction.
	smac, dmac := []byte{0x02, 0, 0, 0, 0, 0x01}, []byte{0x02, 0, 0, 0, 0, 0x02}
	if src == attackServer {
		smac, dmac = dmac, smac
	}
	copy(b[0:], dmac)
	copy(b[6:], smac)
	binary.BigEndian.PutUint16(b[12:], 0x0800)
	ip := b[14 : 14+20]
	ip[0] = 0x45
	binary.BigEndian.PutUint16(ip[2:], uint16(total))
	binary.BigEndian.PutUint16(ip[4:], ipid)
	ip[6] = 0x40 // don't fragment
	ip[8] = 64
	ip[9] = 6
	copy(ip[12:], src[:])
	copy(ip[16:], dst[:])
	binary.BigEndian.PutUint16(ip[10:], fold(sum16(0, ip)))
	tcp := b[14+20:]
	binary.BigEndian.PutUint16(tcp[0:], sport)
	binary.BigEndian.PutUint16(tcp[2:], dport)
	binary.BigEndian.PutUint32(tcp[4:], seq)
	binary.BigEndian.PutUint32(tcp[8:], ack)
	tcp[12] = byte(thl/4) << 4
	tcp[13] = flags
	binary.BigEndian.PutUint16(tcp[14:], win)
	if thl == 24 {
		copy(tcp[20:], []byte{2, 4, attackMSS >> 8, attackMSS & 0xff})
	}
	copy(tcp[thl:], payload)
	s := sum16(0, ip[12:20]) + 6 + uint32(len(tcp))
	binary.BigEndian.PutUint16(tcp[16:], fold(sum16(s, tcp)))
	g.frames++
	ts := attackStart.Add(g.t)
	return g.w.WritePacket(gopacket.CaptureInfo{Timestamp: ts, CaptureLength: len(b), Length: len(b)}, b)
}

// attackConn is one TCP connection of an attack capture.
type attackConn struct {
	g              *attackGen
	client, server [4]byte
	cport, sport   uint16
	seq            [2]uint32 // next sequence number per direction
	ipid           [2]uint16
	bytes          [2]int64
	preface        bool // the client preface was sent
}

// conn starts a connection from the attacker's address and port: SYN,
// SYN-ACK, ACK.
func (g *attackGen) conn() (*attackConn, error) {
	c := &attackConn{g: g, client: attackClient, server: attackServer, cport: attackClientPort, sport: attackServerPort,
		seq: [2]uint32{g.r.Uint32(), g.r.Uint32()}, ipid: [2]uint16{uint16(g.r.Uint32()), uint16(g.r.Uint32())}}
	g.conns = append(g.conns, c)
	return c, errors.Join(
		c.segment(0, 0, flagSYN, nil),
		c.segment(1, 40*time.Microsecond, flagSYN|flagACK, nil),
		c.segment(0, 80*time.Microsecond, flagACK, nil))
}

// segment writes one segment of direction dir after gap.
func (c *attackConn) segment(dir int, gap time.Duration, flags uint8, payload []byte) error {
	src, dst, sport, dport := c.client, c.server, c.cport, c.sport
	if dir == 1 {
		src, dst, sport, dport = dst, src, dport, sport
	}
	var ack uint32
	if flags&flagACK != 0 {
		ack = c.seq[1-dir]
	}
	err := c.g.packet(gap, src, dst, sport, dport, c.seq[dir], ack, flags, 65535, c.ipid[dir], payload)
	c.ipid[dir]++
	c.seq[dir] += uint32(len(payload))
	if flags&(flagSYN|flagFIN) != 0 {
		c.seq[dir]++
	}
	c.bytes[dir] += int64(len(payload))
	return err
}

// send writes frames from direction dir, packed whole into segments of
// at most attackMSS bytes (a frame larger than that is split), the first
// after gap and the others 20 µs apart; the peer ACKs each segment 20 µs
// after it. It counts the HTTP/2 frames.
func (c *attackConn) send(dir int, gap time.Duration, frames ...[]byte) error {
	var seg []byte
	flush := func() error {
		if len(seg) == 0 {
			return nil
		}
		err := errors.Join(c.segment(dir, gap, flagPSH|flagACK, seg), c.segment(1-dir, 20*time.Microsecond, flagACK, nil))
		gap, seg = 20*time.Microsecond, seg[:0]
		return err
	}
	for _, f := range frames {
		c.count(dir, f)
		if len(seg)+len(f) > attackMSS {
			if err := flush(); err != nil {
				return err
			}
		}
		for len(f) > attackMSS {
			seg = append(seg, f[:attackMSS]...)
			f = f[attackMSS:]
			if err := flush(); err != nil {
				return err
			}
		}
		seg = append(seg, f...)
	}
	return flush()
}

// count counts frame f (or the client preface) sent by dir.
func (c *attackConn) count(dir int, f []byte) {
	if dir == 0 && !c.preface && string(f) == http2.ClientPreface {
		c.preface = true
		return
	}
	if len(f) < 9 {
		return // a frame the Framer refused: g.err fails the capture
	}
	t := http2.FrameType(f[3])
	c.g.h2[dir][t.String()]++
	if id := binary.BigEndian.Uint32(f[5:]) & (1<<31 - 1); id != 0 {
		c.g.streams[id] = true
	}
	if t == http2.FrameRSTStream {
		c.g.rstCodes[http2.ErrCode(binary.BigEndian.Uint32(f[9:])).String()]++
	}
}

// close ends the connection: the client's FIN, the server's FIN, the
// client's last ACK.
func (c *attackConn) close(gap time.Duration) error {
	return errors.Join(
		c.segment(0, gap, flagFIN|flagACK, nil),
		c.segment(1, 30*time.Microsecond, flagFIN|flagACK, nil),
		c.segment(0, 60*time.Microsecond, flagACK, nil))
}

// h2frames writes HTTP/2 frames with x/net's Framer, one slice each, and
// encodes header blocks with one HPACK encoder per direction's sender.
type h2frames struct {
	g   *attackGen // its err receives the first write error
	buf bytes.Buffer
	fr  *http2.Framer
	hb  bytes.Buffer
	enc *hpack.Encoder
}

func newH2Frames(g *attackGen) *h2frames {
	h := &h2frames{g: g}
	h.fr = http2.NewFramer(&h.buf, nil)
	h.enc = hpack.NewEncoder(&h.hb)
	return h
}

// frame returns the frame write writes. The Framer refuses only frames
// this file builds wrong (a stream id of 0 on HEADERS, say): the first
// such error goes to the generator's err, which fails the capture.
func (h *h2frames) frame(write func(fr *http2.Framer) error) []byte {
	h.buf.Reset()
	if err := write(h.fr); err != nil && h.g.err == nil {
		h.g.err = fmt.Errorf("%s: writing an HTTP/2 frame: %w", h.g.name, err)
	}
	return bytes.Clone(h.buf.Bytes())
}

// block HPACK-encodes fields (name, value pairs) as one header block.
func (h *h2frames) block(fields ...string) []byte {
	h.hb.Reset()
	for i := 0; i+1 < len(fields); i += 2 {
		h.enc.WriteField(hpack.HeaderField{Name: fields[i], Value: fields[i+1]})
	}
	return bytes.Clone(h.hb.Bytes())
}

// headers returns a HEADERS frame with block, END_HEADERS set.
func (h *h2frames) headers(stream uint32, end bool, block []byte) []byte {
	return h.frame(func(fr *http2.Framer) error {
		return fr.WriteHeaders(http2.HeadersFrameParam{StreamID: stream, BlockFragment: block, EndStream: end, EndHeaders: true})
	})
}

// request returns the HEADERS frame of a GET of path, END_STREAM set.
func (h *h2frames) request(stream uint32, path string) []byte {
	return h.headers(stream, true, h.block(":method", "GET", ":scheme", "http", ":authority", attackAuthority, ":path", path,
		"user-agent", "attack/1.0"))
}

// h2Conn is an HTTP/2 connection of an attack capture: its TCP
// connection and the frame writers of client and server.
type h2Conn struct {
	*attackConn
	cl, sv *h2frames
}

// h2conn opens an h2c connection with prior knowledge: handshake, the
// client's preface and SETTINGS, the server's SETTINGS and ACK, the
// client's ACK.
func (g *attackGen) h2conn() (*h2Conn, error) {
	tc, err := g.conn()
	if err != nil {
		return nil, err
	}
	c := &h2Conn{attackConn: tc, cl: newH2Frames(g), sv: newH2Frames(g)}
	return c, errors.Join(
		c.send(0, 30*time.Microsecond, []byte(http2.ClientPreface),
			c.cl.frame(func(fr *http2.Framer) error {
				return fr.WriteSettings(http2.Setting{ID: http2.SettingEnablePush, Val: 0},
					http2.Setting{ID: http2.SettingInitialWindowSize, Val: 4 << 20})
			}),
			c.cl.frame(func(fr *http2.Framer) error { return fr.WriteWindowUpdate(0, 1<<30) })),
		c.send(1, 40*time.Microsecond,
			c.sv.frame(func(fr *http2.Framer) error {
				return fr.WriteSettings(http2.Setting{ID: http2.SettingMaxConcurrentStreams, Val: 100},
					http2.Setting{ID: http2.SettingMaxHeaderListSize, Val: attackServerMaxHeaderList})
			}),
			c.sv.frame(func(fr *http2.Framer) error { return fr.WriteSettingsAck() })),
		c.send(0, 40*time.Microsecond, c.cl.frame(func(fr *http2.Framer) error { return fr.WriteSettingsAck() })))
}

// respond writes the server's answer to stream: HEADERS with status and
// DATA body with END_STREAM.
func (c *h2Conn) respond(gap time.Duration, stream uint32, status int, body string) error {
	return c.send(1, gap,
		c.sv.headers(stream, false, c.sv.block(":status", strconv.Itoa(status), "content-type", "text/plain; charset=utf-8",
			"content-length", strconv.Itoa(len(body)))),
		c.sv.frame(func(fr *http2.Framer) error { return fr.WriteData(stream, true, []byte(body)) }))
}

// requests makes n ordinary requests on streams 1, 3, ..., each answered
// with 200 and a short body.
func (c *h2Conn) requests(n int) error {
	for i := range n {
		id := uint32(2*i + 1)
		if err := errors.Join(
			c.send(0, 200*time.Microsecond, c.cl.request(id, "/items/"+strconv.Itoa(i+1))),
			c.respond(500*time.Microsecond, id, 200, "ok\n")); err != nil {
			return err
		}
	}
	return nil
}

// verdict records the finding h2scope must report.
func (g *attackGen) verdict(kind, severity, cause, why string) {
	g.verdicts = append(g.verdicts, truth.Verdict{Kind: kind, Severity: severity, Cause: cause, Why: why})
}

// truth returns the capture's truth file.
func (g *attackGen) truth() *truth.Truth {
	tr := &truth.Truth{
		Scenario:    g.name,
		Description: g.desc,
		Server:      fmt.Sprintf("%d.%d.%d.%d:%d", attackServer[0], attackServer[1], attackServer[2], attackServer[3], attackServerPort),
		Capture:     truth.Capture{Interface: "none (synthetic)", LinkType: "ethernet", Snaplen: snaplen, MSS: attackMSS},
		Connections: []truth.Connection{},
		Requests:    []truth.Request{},
		Stack: &truth.Stack{
			Programs: []truth.Program{{Name: "capgen", Role: "client", Package: "github.com/h2scope/h2scope/tools/capgen",
				Version: "attack generator (synthetic: both sides written by capgen)",
				Args:    []string{"-attack", g.kind.name, "-n", strconv.Itoa(g.n), "-out", "$DIR"}}},
			Reports:   []truth.Report{},
			BytesFrom: "capture",
			Verdicts:  g.verdicts,
			Facts:     g.facts,
		},
	}
	var e truth.Expect
	e.Frames = g.frames
	e.TCPConnections = len(g.conns) + g.syns
	for i, c := range g.conns {
		tr.Connections = append(tr.Connections, truth.Connection{
			ID: i + 1, Client: fmt.Sprintf("%d.%d.%d.%d:%d", c.client[0], c.client[1], c.client[2], c.client[3], c.cport),
			Server: tr.Server, Phase: "attack", C2SBytes: c.bytes[0], S2CBytes: c.bytes[1], ClosedBy: "client"})
		e.C2SBytes += c.bytes[0]
		e.S2CBytes += c.bytes[1]
	}
	for _, v := range g.verdicts {
		if v.Severity != "info" && !slices.Contains(e.Findings, v.Kind) {
			e.Findings = append(e.Findings, v.Kind)
		}
	}
	if e.Findings == nil {
		e.Findings = []string{}
	}
	if len(g.h2[0])+len(g.h2[1]) > 0 {
		e.HTTP2Streams = len(g.streams)
		e.HTTP2Frames = map[string]int{}
		for d := range 2 {
			for t, n := range g.h2[d] {
				e.HTTP2Frames[t] += n
				g.facts[[2]string{"c2s_", "s2c_"}[d]+t] = n
			}
		}
		if len(g.rstCodes) > 0 {
			e.RSTStreamCodes = g.rstCodes
		}
	}
	tr.Expect = e
	return tr
}

// buildRapidReset: one connection; the client opens n streams, each a
// GET whose HEADERS is followed at once, in the same segment, by
// RST_STREAM(CANCEL); 50 streams a segment, 100 µs apart (500,000 streams
// a second). The server answers none of them: it has time only to ACK.
func buildRapidReset(g *attackGen, n int) error {
	c, err := g.h2conn()
	if err != nil {
		return err
	}
	const perSeg = 50
	var batch [][]byte
	for i := range n {
		id := uint32(2*i + 1)
		if id >= 1<<31 {
			return fmt.Errorf("rapid-reset: %d streams: stream ids run out past 1,073,741,823 streams", n)
		}
		batch = append(batch, c.cl.request(id, "/"),
			c.cl.frame(func(fr *http2.Framer) error { return fr.WriteRSTStream(id, http2.ErrCodeCancel) }))
		if len(batch) == 2*perSeg || i == n-1 {
			if err := c.send(0, 100*time.Microsecond, batch...); err != nil {
				return err
			}
			batch = batch[:0]
		}
	}
	g.facts["streams"] = n
	g.facts["rst_frames"] = n
	g.facts["streams_reset"] = n
	g.facts["rapid_resets"] = n
	g.desc = fmt.Sprintf("Rapid reset (CVE-2023-44487), synthetic: one h2c connection on which the client opens %d streams, "+
		"each a GET whose HEADERS is followed in the same TCP segment by RST_STREAM(CANCEL), 50 streams a segment every 100 µs; "+
		"the server (SETTINGS_MAX_CONCURRENT_STREAMS 100) sends no response, only ACKs.", n)
	g.verdict("rst_storm", "critical", "rapid_reset",
		fmt.Sprintf("%d client RST_STREAM(CANCEL), each 0 ms after its stream's HEADERS and before any response: rst_frames and streams_reset are %d", n, n))
	return c.close(time.Millisecond)
}

// floodConn opens an h2c connection with streams ordinary requests
// answered, then sends n flood frames from the client, perSeg a segment
// 100 µs apart, each segment answered by the server's frames from reply
// (nil: an ACK only).
func floodConn(g *attackGen, streams, n, perSeg int, flood func(c *h2Conn, i int) []byte, reply func(c *h2Conn, i int) []byte) (*h2Conn, error) {
	c, err := g.h2conn()
	if err != nil {
		return nil, err
	}
	if err := c.requests(streams); err != nil {
		return nil, err
	}
	var batch, answers [][]byte
	for i := range n {
		batch = append(batch, flood(c, i))
		if reply != nil {
			answers = append(answers, reply(c, i))
		}
		if len(batch) == perSeg || i == n-1 {
			if err := c.send(0, 100*time.Microsecond, batch...); err != nil {
				return nil, err
			}
			if len(answers) > 0 {
				if err := c.send(1, 30*time.Microsecond, answers...); err != nil {
					return nil, err
				}
			}
			batch, answers = batch[:0], answers[:0]
		}
	}
	return c, nil
}

// buildPingFlood: 3 requests, then n PINGs from the client, each
// answered with a PING ACK.
func buildPingFlood(g *attackGen, n int) error {
	c, err := floodConn(g, 3, n, 80,
		func(c *h2Conn, i int) []byte {
			return c.cl.frame(func(fr *http2.Framer) error { return fr.WritePing(false, pingData(i)) })
		},
		func(c *h2Conn, i int) []byte {
			return c.sv.frame(func(fr *http2.Framer) error { return fr.WritePing(true, pingData(i)) })
		})
	if err != nil {
		return err
	}
	g.facts["attack_frames"] = n
	g.facts["client_streams"] = 3
	g.desc = fmt.Sprintf("PING flood (CVE-2019-9512), synthetic: one h2c connection, 3 ordinary GETs answered, then %d PING frames "+
		"from the client, 80 a segment every 100 µs, each answered with a PING ACK.", n)
	g.verdict("protocol_abuse", "critical", "ping_flood",
		fmt.Sprintf("%d client PINGs on a connection with 3 streams (%d a stream; thresholds 1,000 and 100 a stream)", n, n/3))
	return c.close(time.Millisecond)
}

// pingData is the opaque data of PING i.
func pingData(i int) [8]byte {
	var d [8]byte
	binary.BigEndian.PutUint64(d[:], uint64(i)+1)
	return d
}

// buildSettingsFlood: 2 requests, then n SETTINGS frames from the client
// (SETTINGS_ENABLE_PUSH 0, repeated), each acknowledged by the server.
func buildSettingsFlood(g *attackGen, n int) error {
	c, err := floodConn(g, 2, n, 90,
		func(c *h2Conn, i int) []byte {
			return c.cl.frame(func(fr *http2.Framer) error {
				return fr.WriteSettings(http2.Setting{ID: http2.SettingEnablePush, Val: 0})
			})
		},
		func(c *h2Conn, i int) []byte {
			return c.sv.frame(func(fr *http2.Framer) error { return fr.WriteSettingsAck() })
		})
	if err != nil {
		return err
	}
	// The client's SETTINGS frames: its first, its ACK of the server's,
	// and the flood.
	g.facts["attack_frames"] = n + 2
	g.facts["client_streams"] = 2
	g.desc = fmt.Sprintf("SETTINGS flood (CVE-2019-9515), synthetic: one h2c connection, 2 ordinary GETs answered, then %d SETTINGS "+
		"frames (SETTINGS_ENABLE_PUSH 0) from the client, 90 a segment every 100 µs, each acknowledged by the server. "+
		"With its first SETTINGS and its ACK the client sends %d SETTINGS frames.", n, n+2)
	g.verdict("protocol_abuse", "critical", "settings_flood",
		fmt.Sprintf("%d client SETTINGS frames on a connection with 2 streams", n+2))
	return c.close(time.Millisecond)
}

// buildWindowUpdateFlood: 2 downloads left open, n WINDOW_UPDATE frames
// of increment 1 from the client, in turn on the connection and on
// streams 1 and 3, then the downloads end.
func buildWindowUpdateFlood(g *attackGen, n int) error {
	c, err := g.h2conn()
	if err != nil {
		return err
	}
	body := bytes.Repeat([]byte("x"), 1000)
	for _, id := range []uint32{1, 3} {
		if err := errors.Join(
			c.send(0, 200*time.Microsecond, c.cl.request(id, "/download/"+strconv.Itoa(int(id)))),
			c.send(1, 500*time.Microsecond,
				c.sv.headers(id, false, c.sv.block(":status", "200", "content-type", "application/octet-stream")),
				c.sv.frame(func(fr *http2.Framer) error { return fr.WriteData(id, false, body) }))); err != nil {
			return err
		}
	}
	var batch [][]byte
	for i := range n {
		id := []uint32{0, 1, 3}[i%3]
		batch = append(batch, c.cl.frame(func(fr *http2.Framer) error { return fr.WriteWindowUpdate(id, 1) }))
		if len(batch) == 100 || i == n-1 {
			if err := c.send(0, 100*time.Microsecond, batch...); err != nil {
				return err
			}
			batch = batch[:0]
		}
	}
	for _, id := range []uint32{1, 3} {
		if err := c.send(1, 200*time.Microsecond, c.sv.frame(func(fr *http2.Framer) error { return fr.WriteData(id, true, body) })); err != nil {
			return err
		}
	}
	// The client's WINDOW_UPDATE frames: its first, on the connection,
	// and the flood.
	g.facts["attack_frames"] = n + 1
	g.facts["client_streams"] = 2
	g.desc = fmt.Sprintf("WINDOW_UPDATE flood, synthetic: one h2c connection, 2 downloads of which the server sent 1,000 bytes each, "+
		"then %d WINDOW_UPDATE frames of increment 1 from the client, in turn on the connection and streams 1 and 3, 100 a segment "+
		"every 100 µs; then the downloads end. With the WINDOW_UPDATE after its preface the client sends %d.", n, n+1)
	g.verdict("protocol_abuse", "critical", "window_update_flood",
		fmt.Sprintf("%d client WINDOW_UPDATE frames on a connection with 2 streams", n+1))
	return c.close(time.Millisecond)
}

// buildContinuationFlood: a HEADERS frame without END_HEADERS on stream 1
// followed by n CONTINUATION frames of 8 bytes, none ending the block:
// the block's last field is a literal whose value would be 8n bytes long.
func buildContinuationFlood(g *attackGen, n int) error {
	c, err := g.h2conn()
	if err != nil {
		return err
	}
	block := c.cl.block(":method", "GET", ":scheme", "http", ":authority", attackAuthority, ":path", "/")
	// A literal without indexing, new name "x-flood", value of 8n
	// bytes, not Huffman-coded: RFC 7541 §6.2.2.
	block = append(block, 0x00, byte(len("x-flood")))
	block = append(block, "x-flood"...)
	block = appendHPACKInt(block, 7, 0, uint64(8*n))
	first := c.cl.frame(func(fr *http2.Framer) error {
		return fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: block, EndStream: true})
	})
	if err := c.send(0, 200*time.Microsecond, first); err != nil {
		return err
	}
	frag := []byte("aaaaaaaa")
	var batch [][]byte
	for i := range n {
		batch = append(batch, c.cl.frame(func(fr *http2.Framer) error { return fr.WriteContinuation(1, false, frag) }))
		if len(batch) == 85 || i == n-1 {
			if err := c.send(0, 100*time.Microsecond, batch...); err != nil {
				return err
			}
			batch = batch[:0]
		}
	}
	g.facts["attack_frames"] = n
	g.facts["client_streams"] = 1
	g.desc = fmt.Sprintf("CONTINUATION flood (CVE-2024-27316 and kin), synthetic: one h2c connection; the client sends a HEADERS frame "+
		"on stream 1 without END_HEADERS whose last field is a literal x-flood header of %d bytes, then %d CONTINUATION frames of 8 "+
		"bytes each, 85 a segment every 100 µs, none with END_HEADERS; the block never ends and the client closes.", 8*n, n)
	g.verdict("protocol_abuse", "critical", "continuation_flood",
		fmt.Sprintf("%d client CONTINUATION frames on a connection with 1 stream, a header block that never ends", n))
	return c.close(time.Millisecond)
}

// buildEmptyFramesFlood: 2 requests answered, then a POST on stream 5
// whose body is n empty DATA frames without END_STREAM, 100 a segment
// every 100 µs, ended by an empty DATA frame with END_STREAM and
// answered with 200.
func buildEmptyFramesFlood(g *attackGen, n int) error {
	c, err := g.h2conn()
	if err != nil {
		return err
	}
	if err := c.requests(2); err != nil {
		return err
	}
	const stream = 5
	post := c.cl.headers(stream, false, c.cl.block(":method", "POST", ":scheme", "http", ":authority", attackAuthority, ":path", "/upload"))
	if err := c.send(0, 200*time.Microsecond, post); err != nil {
		return err
	}
	var batch [][]byte
	for i := range n {
		batch = append(batch, c.cl.frame(func(fr *http2.Framer) error { return fr.WriteData(stream, false, nil) }))
		if len(batch) == 100 || i == n-1 {
			if err := c.send(0, 100*time.Microsecond, batch...); err != nil {
				return err
			}
			batch = batch[:0]
		}
	}
	end := c.cl.frame(func(fr *http2.Framer) error { return fr.WriteData(stream, true, nil) })
	if err := errors.Join(c.send(0, 100*time.Microsecond, end), c.respond(300*time.Microsecond, stream, 200, "ok\n")); err != nil {
		return err
	}
	g.facts["attack_frames"] = n
	g.facts["client_streams"] = 3
	g.desc = fmt.Sprintf("Empty frames flood (CVE-2019-9518), synthetic: one h2c connection, 2 ordinary GETs answered, then a POST on "+
		"stream 5 whose body is %d empty DATA frames without END_STREAM, 100 a segment every 100 µs, ended by an empty DATA frame "+
		"with END_STREAM and answered with 200.", n)
	g.verdict("protocol_abuse", "critical", "empty_frames_flood",
		fmt.Sprintf("%d empty client DATA frames on a connection with 3 streams (%d a stream; thresholds 1,000 and 100 a stream)", n, n/3))
	return c.close(time.Millisecond)
}

// appendHPACKInt appends v as an HPACK integer with an n-bit prefix,
// the prefix's other bits being first (RFC 7541 §5.1).
func appendHPACKInt(b []byte, n uint, first byte, v uint64) []byte {
	max := uint64(1)<<n - 1
	if v < max {
		return append(b, first|byte(v))
	}
	b = append(b, first|byte(max))
	for v -= max; v >= 128; v >>= 7 {
		b = append(b, byte(v&0x7f|0x80))
	}
	return append(b, byte(v))
}

// bombValue is the bomb's header value: with its name, a dynamic table
// entry of 3,938 bytes (RFC 7541 §4.1), which fits in the default 4,096
// beside the :authority and user-agent entries (61 and 52 bytes), so
// that no block evicts it.
var bombValue = strings.Repeat("a", 3900)

// buildHPACKBomb: n requests whose header blocks decode past h2scope's
// 1 MiB bound on a header list (and the server's 64 KiB).
func buildHPACKBomb(g *attackGen, n int) error { return hpackBomb(g, n, 300) }

// buildHPACKBomb64k: the same bomb with 30 references a block: lists of
// about 118 KB, past the 64 KiB the server advertised but under 1 MiB.
func buildHPACKBomb64k(g *attackGen, n int) error { return hpackBomb(g, n, 30) }

// hpackBomb: n requests on streams 1, 3, ...; the first block inserts
// "x-bomb: a×3900" into the dynamic table and every block then refers to
// it refs times (one byte each), so that each decodes to about
// refs × 3,938 bytes. The server, which advertised
// SETTINGS_MAX_HEADER_LIST_SIZE 65536, answers each with 431.
func hpackBomb(g *attackGen, n, refs int) error {
	c, err := g.h2conn()
	if err != nil {
		return err
	}
	listSize := 0
	for i := range n {
		id := uint32(2*i + 1)
		fields := []string{":method", "GET", ":scheme", "http", ":authority", attackAuthority, ":path", "/", "user-agent", "attack/1.0"}
		for range refs {
			fields = append(fields, "x-bomb", bombValue)
		}
		list := 0
		for j := 0; j < len(fields); j += 2 {
			list += len(fields[j]) + len(fields[j+1]) + 32
		}
		listSize = list
		block := c.cl.block(fields...)
		if i == 1 {
			g.facts["block_bytes"] = len(block)
		}
		if err := errors.Join(
			c.send(0, 300*time.Microsecond, c.cl.headers(id, true, block)),
			c.respond(200*time.Microsecond, id, 431, "<h1>HTTP Error 431</h1><p>Request Header Field(s) Too Large</p>")); err != nil {
			return err
		}
	}
	g.facts["header_blocks"] = n
	g.facts["refs_per_block"] = refs
	g.facts["decoded_list_bytes"] = listSize
	g.facts["server_max_header_list_size"] = attackServerMaxHeaderList
	g.facts["client_streams"] = n
	over := "past both the server's limit and h2scope's 1 MiB bound on a decoded list"
	if listSize <= 1<<20 {
		over = "past the server's limit but under h2scope's 1 MiB bound on a decoded list"
	}
	g.facts["header_lists_over_limit"] = n
	g.desc = fmt.Sprintf("HPACK bomb (CVE-2016-6581 shape), synthetic: one h2c connection; the server advertises "+
		"SETTINGS_MAX_HEADER_LIST_SIZE %d. The client's first header block inserts x-bomb (a 3,900-byte value, a 3,938-byte "+
		"table entry) into the dynamic table; each of its %d requests refers to it %d times, one byte a reference, so each "+
		"header list decodes to %d bytes (RFC 7541 sizes), %s; blocks after the first are %d bytes. "+
		"The server answers each with 431.", attackServerMaxHeaderList, n, refs, listSize, over, g.facts["block_bytes"])
	g.verdict("protocol_abuse", "critical", "hpack_bomb",
		fmt.Sprintf("%d header lists of %d decoded bytes from blocks of %d bytes, over the server's SETTINGS_MAX_HEADER_LIST_SIZE %d",
			n, listSize, g.facts["block_bytes"], attackServerMaxHeaderList))
	return c.close(time.Millisecond)
}

// buildSYNFlood: n SYNs to the server from n distinct spoofed sources
// (random ports), 50 µs apart on average, none answered. The sources'
// first octets are floodOctets, as in the -conns SYN flood.
func buildSYNFlood(g *attackGen, n int) error { return synFlood(g, n, false) }

// buildSYNFloodHalfOpen is the SYN flood captured at a server that
// answers every SYN (SYN cookies): each SYN gets a SYN-ACK, and the
// spoofed sources never complete the handshake.
func buildSYNFloodHalfOpen(g *attackGen, n int) error { return synFlood(g, n, true) }

// synFlood writes n SYNs from distinct spoofed sources, each answered by
// a SYN-ACK when answered is set.
func synFlood(g *attackGen, n int, answered bool) error {
	if n > 1<<24 {
		return fmt.Errorf("syn-flood: at most %d distinct sources", 1<<24)
	}
	for i := range n {
		// i times an odd number is a permutation of 0..2^24-1: distinct
		// sources that look scattered.
		low := uint32(i) * 0x9e3779b1 & 0xffffff
		src := [4]byte{floodOctets[i%len(floodOctets)], byte(low >> 16), byte(low >> 8), byte(low)}
		gap := time.Duration(10_000 + g.r.IntN(80_000))
		if i == 0 {
			gap = 0
		}
		sport, seq := uint16(1024+g.r.IntN(65536-1024)), g.r.Uint32()
		if err := g.packet(gap, src, attackServer, sport, attackServerPort, seq, 0,
			flagSYN, 1024, uint16(g.r.Uint32()), nil); err != nil {
			return err
		}
		if answered {
			if err := g.packet(5*time.Microsecond, attackServer, src, attackServerPort, sport, g.r.Uint32(), seq+1,
				flagSYN|flagACK, 65535, uint16(g.r.Uint32()), nil); err != nil {
				return err
			}
		}
	}
	g.syns = n
	g.facts["syns"] = n
	g.facts["sources"] = n
	fate, why := "none answered", "unanswered SYNs"
	if answered {
		g.facts["half_open"] = n
		fate = "each answered 5 µs later by a SYN-ACK from the server (SYN cookies) and never acknowledged: half-open"
		why = "half-open handshakes (SYN, SYN-ACK, never an ACK)"
	}
	g.desc = fmt.Sprintf("SYN flood, synthetic: %d SYNs to %d.%d.%d.%d:%d from %d distinct spoofed sources and random ports, "+
		"10-90 µs apart (about 20,000 a second), %s.", n, attackServer[0], attackServer[1], attackServer[2], attackServer[3],
		attackServerPort, n, fate)
	g.verdict("protocol_abuse", "critical", "syn_flood",
		fmt.Sprintf("%d %s from %d sources (thresholds 1,000 SYNs, 100 sources)", n, why, n))
	return nil
}
