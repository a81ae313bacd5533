package main

import (
	"bytes"
	"context"
	"io"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/gopacket/gopacket/pcapgo"

	"github.com/h2scope/h2scope/dissect"
	"github.com/h2scope/h2scope/dissect/tcp"
	"github.com/h2scope/h2scope/report"
)

// connsCaptures returns testdata/pcaps and, when present, the shared
// corpus ($H2SCOPE_CORPUS or ../shared/corpus next to the repository),
// each with its key log argument ("" when none).
func connsCaptures(t *testing.T) [][2]string {
	t.Helper()
	var caps [][2]string
	add := func(glob string) {
		files, err := filepath.Glob(glob)
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range files {
			keys := strings.TrimSuffix(f, filepath.Ext(f)) + ".keys"
			if _, err := os.Stat(keys); err != nil {
				keys = ""
			}
			caps = append(caps, [2]string{f, keys})
		}
	}
	add("../../testdata/pcaps/*.pcapng")
	caps = append(caps, [2]string{outOfOrderCapture(t), ""})
	dir := os.Getenv("H2SCOPE_CORPUS")
	if dir == "" {
		dir = filepath.Join("..", "..", "..", "shared", "corpus")
	}
	if _, err := os.Stat(dir); err != nil {
		t.Logf("shared corpus %s not found (set H2SCOPE_CORPUS): testdata/pcaps only", dir)
		return caps
	}
	for _, g := range []string{"*/*.pcap*", "*/*/*.pcap*", "*/*.cap"} {
		add(filepath.Join(dir, g))
	}
	return caps
}

// outOfOrderCapture writes a capture whose connections finish out of id
// order: connection 0 sends a SYN and is never heard from again (open: it
// idles an hour), connection 1 is reset a second later (finished two
// minutes after), and SYNs every 50 s move the capture clock past those
// two minutes; the open ones finish at the end.
func outOfOrderCapture(t *testing.T) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "out-of-order.pcap")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	w := pcapgo.NewWriterNanos(f)
	if err := w.WriteFileHeader(65535, layers.LinkTypeRaw); err != nil {
		t.Fatal(err)
	}
	t0 := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	seg := func(at time.Duration, client uint16, fromClient bool, tcp layers.TCP) {
		ip := layers.IPv4{Version: 4, TTL: 64, Protocol: layers.IPProtocolTCP,
			SrcIP: net.IP{10, 0, 0, 1}, DstIP: net.IP{10, 0, 0, 2}}
		tcp.SrcPort, tcp.DstPort, tcp.Window = layers.TCPPort(client), 80, 1024
		if !fromClient {
			ip.SrcIP, ip.DstIP = ip.DstIP, ip.SrcIP
			tcp.SrcPort, tcp.DstPort = tcp.DstPort, tcp.SrcPort
		}
		tcp.SetNetworkLayerForChecksum(&ip)
		buf := gopacket.NewSerializeBuffer()
		if err := gopacket.SerializeLayers(buf, gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true}, &ip, &tcp); err != nil {
			t.Fatal(err)
		}
		b := buf.Bytes()
		if err := w.WritePacket(gopacket.CaptureInfo{Timestamp: t0.Add(at), CaptureLength: len(b), Length: len(b)}, b); err != nil {
			t.Fatal(err)
		}
	}
	seg(0, 1000, true, layers.TCP{SYN: true, Seq: 100})
	seg(time.Second, 1001, true, layers.TCP{SYN: true, Seq: 200})
	seg(time.Second+time.Millisecond, 1001, false, layers.TCP{SYN: true, ACK: true, Seq: 900, Ack: 201})
	seg(time.Second+2*time.Millisecond, 1001, true, layers.TCP{ACK: true, Seq: 201, Ack: 901})
	seg(time.Second+3*time.Millisecond, 1001, true, layers.TCP{RST: true, ACK: true, Seq: 201, Ack: 901})
	for i := range 5 {
		seg(time.Duration(i+1)*50*time.Second, uint16(2000+i), true, layers.TCP{SYN: true, Seq: uint32(300 + i)})
	}
	return path
}

// connsReference is conns --json as it was before it streamed: every
// record kept until the end, sorted by id, written at once. It also
// returns the records in the order the connections finished.
func connsReference(t *testing.T, file, keys string) (want []byte, finished []report.ConnRecord) {
	t.Helper()
	args := []string{file}
	if keys != "" {
		args = append(args, "--keylog", keys)
	}
	fs, in := newFlags("conns", io.Discard)
	files, ok := parse(fs, args, io.Discard)
	if !ok {
		t.Fatalf("conns %v: bad arguments", args)
	}
	opts, ok := in.options(io.Discard)
	if !ok {
		t.Fatalf("conns %v: bad options", args)
	}
	early := map[*tcp.Conn]report.ConnRecord{}
	opts.OnApp = func(c *tcp.Conn, app *dissect.App) {
		r := report.NewConnRecord(&c.Summary, app)
		r.Summary = nil
		early[c] = r
	}
	opts.OnConn = func(c *tcp.Conn, _ *dissect.App) {
		r, ok := early[c]
		delete(early, c)
		sum := c.Summary
		final := report.NewConnRecord(&sum, nil)
		if ok {
			r.Summary = final.Summary
		} else {
			r = final
		}
		finished = append(finished, r)
	}
	if _, err := dissect.Run(context.Background(), files, opts); err != nil {
		t.Fatal(err)
	}
	conns := slices.Clone(finished)
	slices.SortFunc(conns, func(a, b report.ConnRecord) int { return int(a.ID) - int(b.ID) })
	var b bytes.Buffer
	if err := report.WriteConnsJSON(&b, conns); err != nil {
		t.Fatal(err)
	}
	return b.Bytes(), finished
}

// TestConnsStreamsInIDOrder checks that conns --json, which writes each
// connection as soon as every lower id is written, prints byte for byte
// what the sorted-at-end reference prints, on every capture of
// testdata/pcaps and the corpus; and that the same records, in the order
// their connections finished, come out the same through a ConnsWriter
// that spills every record that has to wait (a cap of one).
func TestConnsStreamsInIDOrder(t *testing.T) {
	outOfOrder := 0
	caps := connsCaptures(t)
	for _, c := range caps {
		file, keys := c[0], c[1]
		want, finished := connsReference(t, file, keys)
		args := []string{"conns", "--json", file}
		if keys != "" {
			args = append(args, "--keylog", keys)
		}
		var out, errb bytes.Buffer
		run(context.Background(), args, &out, &errb)
		if !bytes.Equal(out.Bytes(), want) {
			t.Errorf("%s: conns --json differs from the sorted reference (stderr %q)", file, errb.String())
			continue
		}
		if !slices.IsSortedFunc(finished, func(a, b report.ConnRecord) int { return int(a.ID) - int(b.ID) }) {
			outOfOrder++
		}
		var spilled bytes.Buffer
		w := report.NewConnsWriter(&spilled)
		w.MaxWaiting, w.TempDir = 1, t.TempDir()
		for i := range finished {
			if err := w.Add(&finished[i]); err != nil {
				t.Fatal(err)
			}
		}
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(spilled.Bytes(), want) {
			t.Errorf("%s: ConnsWriter with a cap of 1 differs from the sorted reference", file)
		}
	}
	// The captures must exercise the reorder buffer: connections that
	// finish before a lower id (outOfOrderCapture's, at least).
	if outOfOrder == 0 {
		t.Error("no capture has connections finishing out of id order: the test checks no reordering")
	}
	t.Logf("%d captures, %d with connections finishing out of id order", len(caps), outOfOrder)
}
