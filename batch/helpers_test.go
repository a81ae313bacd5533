package batch

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/gopacket/gopacket/pcapgo"
	"github.com/klauspost/compress/gzip"
)

// pcapsDir holds the committed captures.
const pcapsDir = "../testdata/pcaps"

// t0 is the base time of the synthetic captures: 2026-11-22T10:15:00Z.
var t0 = time.Date(2026, 11, 22, 10, 15, 0, 0, time.UTC)

// frame is one synthetic packet.
type frame struct {
	ts   time.Time
	data []byte
}

// filler returns n packets of junk Ethernet frames from start, step apart.
func filler(start time.Time, step time.Duration, n int) []frame {
	fs := make([]frame, n)
	for i := range fs {
		fs[i] = frame{start.Add(time.Duration(i) * step), bytes.Repeat([]byte{byte(i)}, 60)}
	}
	return fs
}

// writePcap writes frames as a microsecond pcap file at path, gzipped when
// the name ends in .gz, creating the directory.
func writePcap(t *testing.T, path string, frames []frame) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	w := pcapgo.NewWriter(&buf)
	if err := w.WriteFileHeader(65535, layers.LinkTypeEthernet); err != nil {
		t.Fatal(err)
	}
	for _, f := range frames {
		ci := gopacket.CaptureInfo{Timestamp: f.ts, CaptureLength: len(f.data), Length: len(f.data)}
		if err := w.WritePacket(ci, f.data); err != nil {
			t.Fatal(err)
		}
	}
	b := buf.Bytes()
	if strings.HasSuffix(path, ".gz") {
		var z bytes.Buffer
		zw := gzip.NewWriter(&z)
		zw.Write(b)
		zw.Close()
		b = z.Bytes()
	}
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// tcpConn builds the packets of one TCP connection on loopback.
type tcpConn struct {
	t          *testing.T
	ts         time.Time
	cseq, sseq uint32
	frames     []frame
}

// seg appends a segment from the client or the server.
func (c *tcpConn) seg(fromClient, syn, ack, fin bool, payload string) {
	c.t.Helper()
	ip := &layers.IPv4{Version: 4, TTL: 64, Protocol: layers.IPProtocolTCP,
		SrcIP: []byte{127, 0, 0, 1}, DstIP: []byte{127, 0, 0, 1}}
	tcp := &layers.TCP{SYN: syn, ACK: ack, FIN: fin, PSH: payload != "", Window: 65535,
		SrcPort: 40000, DstPort: 8080}
	seq, peer := &c.cseq, &c.sseq
	if !fromClient {
		seq, peer = &c.sseq, &c.cseq
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
	c.ts = c.ts.Add(time.Second)
	c.frames = append(c.frames, frame{c.ts, bytes.Clone(buf.Bytes())})
}

// copyFile copies src to dst, keeping at most n bytes (all when n < 0).
func copyFile(t *testing.T, src, dst string, n int) {
	t.Helper()
	b, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	if n >= 0 {
		b = b[:n]
	}
	if err := os.WriteFile(dst, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// runBatch runs Run into the file out and returns the output.
func runBatch(t *testing.T, out string, opts Options, patterns ...string) (*Summary, []byte) {
	t.Helper()
	sum, err := Run(context.Background(), patterns, out, io.Discard, opts)
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	return sum, b
}

// record is what the tests read of an output line.
type record struct {
	Schema   string `json:"schema"`
	Captures []struct {
		Files       []string `json:"files"`
		Packets     int      `json:"packets"`
		Connections int      `json:"connections"`
		Faults      []string `json:"faults"`
	} `json:"captures"`
	Connections []json.RawMessage `json:"connections"`
	Error       string            `json:"error"`
}

// records parses NDJSON output, failing on a line that is not one JSON
// object.
func records(t *testing.T, b []byte) []record {
	t.Helper()
	if len(b) > 0 && b[len(b)-1] != '\n' {
		t.Fatalf("output does not end in a newline")
	}
	var rs []record
	for i, l := range strings.SplitAfter(string(b), "\n") {
		if l == "" {
			continue
		}
		var r record
		if err := json.Unmarshal([]byte(l), &r); err != nil {
			t.Fatalf("line %d: %v", i+1, err)
		}
		if r.Schema != "h2scope.report/v2" || len(r.Captures) != 1 {
			t.Fatalf("line %d: schema %q, %d captures", i+1, r.Schema, len(r.Captures))
		}
		rs = append(rs, r)
	}
	return rs
}
