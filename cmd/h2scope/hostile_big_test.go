package main

import (
	"bytes"
	binenc "encoding/binary"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/gopacket/gopacket/pcapgo"
	"golang.org/x/net/http2/hpack"
)

// bigHostile is a 1 MiB value made of hostileCtl (controls, bidi
// overrides, invalid UTF-8) repeated: what a hostile peer can put in one
// header, message or debug field.
func bigHostile(n int) string {
	return "big" + strings.Repeat(hostileCtl, n/len(hostileCtl)+1)[:n-3]
}

// synthConn writes the packets of one TCP connection between 10.1.0.1
// and 10.2.0.1 (loopback-like, synthetic) to a pcap: a handshake, the
// payloads each side sends in segments of at most 16 KiB, and FINs.
type synthConn struct {
	t          *testing.T
	w          *pcapgo.Writer
	ts         time.Time
	cport      uint16
	cseq, sseq uint32
}

func (c *synthConn) seg(fromClient, syn, ack, fin bool, payload []byte) {
	c.t.Helper()
	ip := &layers.IPv4{Version: 4, TTL: 64, Protocol: layers.IPProtocolTCP,
		SrcIP: []byte{10, 1, 0, 1}, DstIP: []byte{10, 2, 0, 1}}
	tcp := &layers.TCP{SYN: syn, ACK: ack, FIN: fin, PSH: len(payload) > 0, Window: 65535,
		SrcPort: layers.TCPPort(c.cport), DstPort: 443}
	seq, peer := &c.cseq, &c.sseq
	if !fromClient {
		seq, peer = &c.sseq, &c.cseq
		ip.SrcIP, ip.DstIP = ip.DstIP, ip.SrcIP
		tcp.SrcPort, tcp.DstPort = tcp.DstPort, tcp.SrcPort
	}
	tcp.Seq = *seq
	if ack {
		tcp.Ack = *peer
	}
	*seq += uint32(len(payload))
	if syn || fin {
		*seq++
	}
	tcp.SetNetworkLayerForChecksum(ip)
	eth := &layers.Ethernet{SrcMAC: make([]byte, 6), DstMAC: make([]byte, 6), EthernetType: layers.EthernetTypeIPv4}
	buf := gopacket.NewSerializeBuffer()
	opts := gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true}
	if err := gopacket.SerializeLayers(buf, opts, eth, ip, tcp, gopacket.Payload(payload)); err != nil {
		c.t.Fatal(err)
	}
	c.ts = c.ts.Add(time.Millisecond)
	b := buf.Bytes()
	if err := c.w.WritePacket(gopacket.CaptureInfo{Timestamp: c.ts, CaptureLength: len(b), Length: len(b)}, b); err != nil {
		c.t.Fatal(err)
	}
}

// send sends b from one side in segments, each acknowledged.
func (c *synthConn) send(fromClient bool, b []byte) {
	for len(b) > 0 {
		n := min(len(b), 16384)
		c.seg(fromClient, false, true, false, b[:n])
		c.seg(!fromClient, false, true, false, nil)
		b = b[n:]
	}
}

// run writes the whole connection: handshake, the exchanges in order
// (client bytes, then server bytes), FINs.
func (c *synthConn) run(exchanges ...[2][]byte) {
	c.seg(true, true, false, false, nil)
	c.seg(false, true, true, false, nil)
	c.seg(true, false, true, false, nil)
	for _, x := range exchanges {
		c.send(true, x[0])
		c.send(false, x[1])
	}
	c.seg(true, false, true, true, nil)
	c.seg(false, false, true, true, nil)
	c.seg(true, false, true, false, nil)
}

// h2frame encodes one HTTP/2 frame.
func h2frame(typ, flags byte, stream uint32, payload []byte) []byte {
	b := make([]byte, 9, 9+len(payload))
	b[0], b[1], b[2] = byte(len(payload)>>16), byte(len(payload)>>8), byte(len(payload))
	b[3], b[4] = typ, flags
	binenc.BigEndian.PutUint32(b[5:], stream)
	return append(b, payload...)
}

// h2headers encodes a header block as HEADERS and CONTINUATION frames of
// at most 16 KiB (the default SETTINGS_MAX_FRAME_SIZE).
func h2headers(stream uint32, endStream bool, fields ...hpack.HeaderField) []byte {
	var block bytes.Buffer
	enc := hpack.NewEncoder(&block)
	for _, f := range fields {
		enc.WriteField(f)
	}
	var out []byte
	b, typ := block.Bytes(), byte(0x1)
	for {
		n := min(len(b), 16384)
		var flags byte
		if typ == 0x1 && endStream {
			flags |= 0x1
		}
		if n == len(b) {
			flags |= 0x4
		}
		out = append(out, h2frame(typ, flags, stream, b[:n])...)
		b, typ = b[n:], 0x9
		if len(b) == 0 {
			return out
		}
	}
}

// clientHelloSNI is a TLS 1.2 ClientHello record (split in records of at
// most 16 KiB) whose server_name is sni.
func clientHelloSNI(sni string) []byte {
	name := append([]byte{0}, byte(len(sni)>>8), byte(len(sni)))
	name = append(name, sni...)
	list := append([]byte{byte(len(name) >> 8), byte(len(name))}, name...)
	ext := append([]byte{0, 0, byte(len(list) >> 8), byte(len(list))}, list...)
	body := []byte{3, 3}
	body = append(body, make([]byte, 32)...)    // random
	body = append(body, 0)                      // session id
	body = append(body, 0, 2, 0xc0, 0x2f, 1, 0) // one suite, null compression
	body = append(body, byte(len(ext)>>8), byte(len(ext)))
	body = append(body, ext...)
	msg := append([]byte{1, byte(len(body) >> 16), byte(len(body) >> 8), byte(len(body))}, body...)
	var out []byte
	for len(msg) > 0 {
		n := min(len(msg), 16384)
		out = append(out, 22, 3, 1, byte(n>>8), byte(n))
		out = append(out, msg[:n]...)
		msg = msg[n:]
	}
	return out
}

// TestHostileMegabyteValues feeds 1 MiB hostile values (controls, bidi
// overrides, invalid UTF-8) through every field a peer controls: an
// HTTP/1.1 Host and response header, an HTTP/2 :authority and header
// value (in CONTINUATION frames), a grpc-message, GOAWAY debug data, and
// a TLS SNI as long as its length field allows. Every command must
// succeed, stay small (no output copies a value whole) and print nothing
// raw that a terminal or a viewer would act on.
func TestHostileMegabyteValues(t *testing.T) {
	const mib = 1 << 20
	big := bigHostile(mib)
	path := filepath.Join(t.TempDir(), "big.pcap")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	w := pcapgo.NewWriter(f)
	if err := w.WriteFileHeader(262144, layers.LinkTypeEthernet); err != nil {
		t.Fatal(err)
	}
	ts := time.Date(2026, 12, 7, 10, 0, 0, 0, time.UTC)
	conn := func(port uint16) *synthConn {
		ts = ts.Add(time.Second)
		return &synthConn{t: t, w: w, ts: ts, cport: port, cseq: 1000, sseq: 5000}
	}

	conn(40001).run([2][]byte{
		[]byte("GET /x HTTP/1.1\r\nHost: " + big + "\r\nUser-Agent: " + big + "\r\n\r\n"),
		[]byte("HTTP/1.1 200 OK\r\nX-Ctl: " + big + "\r\nContent-Length: 0\r\n\r\n"),
	})

	preface := []byte("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n")
	settings := h2frame(0x4, 0, 0, nil)
	req := h2headers(1, true,
		hpack.HeaderField{Name: ":method", Value: "POST"},
		hpack.HeaderField{Name: ":scheme", Value: "http"},
		hpack.HeaderField{Name: ":authority", Value: big},
		hpack.HeaderField{Name: ":path", Value: "/hostile.Ctl/Big"},
		hpack.HeaderField{Name: "content-type", Value: "application/grpc"},
		hpack.HeaderField{Name: "x-ctl", Value: big})
	resp := h2headers(1, false,
		hpack.HeaderField{Name: ":status", Value: "200"},
		hpack.HeaderField{Name: "content-type", Value: "application/grpc"})
	trailers := h2headers(1, true,
		hpack.HeaderField{Name: "grpc-status", Value: "13"},
		hpack.HeaderField{Name: "grpc-message", Value: big})
	goaway := append([]byte{0, 0, 0, 1, 0, 0, 0, 0}, big...)
	conn(40002).run(
		[2][]byte{append(append(preface, settings...), req...), append(append(settings, resp...), trailers...)},
		[2][]byte{h2frame(0x4, 0x1, 0, nil), h2frame(0x7, 0, 0, goaway)},
	)

	conn(40003).run([2][]byte{clientHelloSNI(big[:65000]), nil})
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}

	dir := t.TempDir()
	outs := map[string]string{}
	for _, args := range [][]string{
		{"analyze"},
		{"analyze", "--json", "-"},
		{"analyze", "--md", "-"},
		{"analyze", "--html", "-"},
		{"conns"},
		{"conns", "--json"},
		{"frames"},
		{"frames", "--json"},
		{"timeline", "--conn", "0"},
		{"timeline", "--conn", "1"},
		{"timeline", "--conn", "2"},
	} {
		name := strings.Join(args, " ")
		out, errOut, code := runCLI(t, append(args, path)...)
		if code != 0 {
			t.Fatalf("h2scope %s: exit %d: %s", name, code, errOut)
		}
		outs[name] = out
	}
	out, errOut, code := runCLI(t, "batch", "--out", filepath.Join(dir, "out.ndjson"), path)
	if code != 0 {
		t.Fatalf("h2scope batch: exit %d: %s%s", code, out, errOut)
	}
	outs["batch"] = string(readFile(t, filepath.Join(dir, "out.ndjson")))

	if !strings.Contains(outs["conns --json"], `"proto":"http2"`) || !strings.Contains(outs["conns --json"], `"proto":"http1"`) || !strings.Contains(outs["conns --json"], `"proto":"tls"`) {
		t.Errorf("the three connections are not all recognised:\n%s", outs["conns --json"])
	}
	if !strings.Contains(outs["frames --json"], `"type":"GOAWAY"`) || !strings.Contains(outs["frames --json"], `"type":"ClientHello"`) {
		t.Errorf("frames --json lacks the GOAWAY or the ClientHello")
	}
	// The values are there, escaped, and cut: the test cannot pass by
	// dropping them.
	for _, tt := range []struct{ out, want string }{
		{"analyze", `debug "bigctl\x1b[31m\a\x00\x7f\u009b2J\u202egnp.exe\xff\xfe\u2066\u2028end`},
		{"analyze", `│ 10.1.0.1 │ "bigctl\x1b[31m\a\x00\x7f\u009b2J\u202egnp.exe`},
		{"conns --json", `"sni":"bigctl\u001b[31m\u0007\u0000\u007f\u009b2J\u202egnp.exe\ufffd\ufffd\u2066\u2028end`},
		{"frames --json", `"debug":"bigctl\u001b[31m\u0007\u0000\u007f\u009b2J\u202egnp.exe`},
		{"analyze --md -", `bigctl\\x1b\[31m\\a\\x00\\x7f\\u009b2J\\u202egnp.exe`},
		{"analyze --html -", `bigctl\x1b[31m\a\x00\x7f\u009b2J\u202egnp.exe`},
	} {
		if !strings.Contains(outs[tt.out], tt.want) {
			t.Errorf("%s lacks %s:\n%.3000s", tt.out, tt.want, outs[tt.out])
		}
	}
	for _, sni := range tlsSNIs(t, outs["conns --json"]) {
		if len(sni) < 200 || len(sni) > 3*255 {
			t.Errorf("SNI of %d bytes kept of 65000: want its first 255 bytes", len(sni))
		}
	}
	for name, out := range outs {
		if len(out) > mib/2 {
			t.Errorf("%s: %d bytes: a 1 MiB value is copied (nearly) whole", name, len(out))
		}
		checkInert(t, name, out)
	}
}
