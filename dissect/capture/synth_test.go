package capture

import (
	"bytes"
	"io"
	"slices"
	"testing"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/gopacket/gopacket/pcapgo"
)

// synthCase is a small capture built in the tests.
type synthCase struct {
	name string
	data []byte
}

// t0 is the base time of the synthetic captures: 2023-11-14T22:13:20Z.
const t0 = 1_700_000_000

// pcapgoFile writes packets with pcapgo's pcap writer.
func pcapgoFile(nanos bool, link layers.LinkType, ts []time.Time, data [][]byte) []byte {
	var buf bytes.Buffer
	w := pcapgo.NewWriter(&buf)
	if nanos {
		w = pcapgo.NewWriterNanos(&buf)
	}
	w.WriteFileHeader(65535, link)
	for i := range ts {
		w.WritePacket(gopacket.CaptureInfo{Timestamp: ts[i], CaptureLength: len(data[i]), Length: len(data[i]) + 10}, data[i])
	}
	return buf.Bytes()
}

// synthetic returns the synthetic captures of the tests; TestDumpSynthetic
// writes them out for tshark.
func synthetic() []synthCase {
	ts := []time.Time{
		time.Unix(t0, 123_456_789),
		time.Unix(t0+1, 5_000),
		time.Unix(t0+1, 5_001), // the same microsecond as the one before
	}
	data := [][]byte{payload(60, 1), payload(61, 2), payload(1514, 3)}

	var cs []synthCase
	add := func(name string, b []byte) { cs = append(cs, synthCase{name, b}) }

	add("pcapgo-us.pcap", pcapgoFile(false, layers.LinkTypeEthernet, ts, data))
	add("pcapgo-ns.pcap", pcapgoFile(true, layers.LinkTypeEthernet, ts, data))
	add("us-be.pcap", newPcapFile(be, 0xa1b2c3d4, 2, 4, 65535, 1).
		pkt(t0, 999_999, payload(60, 1)).pkt(t0+1, 0, payload(70, 2)).Bytes())
	add("ns-be.pcap", newPcapFile(be, 0xa1b23c4d, 2, 4, 65535, 101).
		pkt(t0, 999_999_999, payload(40, 1)).pkt(t0+2, 1, payload(41, 2)).Bytes())
	add("ns-le.pcap", newPcapFile(le, 0xa1b23c4d, 2, 4, 65535, 113).
		pkt(t0, 7, payload(40, 1)).Bytes())
	// The modified format's records carry 8 more bytes: ifindex, protocol,
	// packet type, padding.
	add("modified.pcap", newPcapFile(le, 0xa1b2cd34, 2, 4, 65535, 1).
		rec(t0, 10, 60, 60, append(make([]byte, 8), payload(60, 1)...)).
		rec(t0, 20, 62, 80, append(make([]byte, 8), payload(62, 2)...)).Bytes())
	// Before 2.3 the length fields were the other way round.
	add("v2.2-swapped.pcap", newPcapFile(le, 0xa1b2c3d4, 2, 2, 65535, 1).
		rec(t0, 0, 80, 40, payload(40, 1)).Bytes())
	add("v2.3-maybe-swapped.pcap", newPcapFile(le, 0xa1b2c3d4, 2, 3, 65535, 1).
		rec(t0, 0, 80, 40, payload(40, 1)).
		rec(t0, 1, 40, 80, payload(40, 2)).Bytes())
	add("caplen-gt-snaplen.pcap", newPcapFile(le, 0xa1b2c3d4, 2, 4, 64, 1).
		pkt(t0, 0, payload(100, 1)).Bytes())
	add("caplen-gt-origlen.pcap", newPcapFile(le, 0xa1b2c3d4, 2, 4, 65535, 1).
		rec(t0, 0, 100, 60, payload(100, 1)).Bytes())
	add("fcs-bits-linktype.pcap", newPcapFile(le, 0xa1b2c3d4, 2, 4, 65535, 0x24000001).
		pkt(t0, 0, payload(64, 1)).Bytes())
	add("zero-caplen.pcap", newPcapFile(le, 0xa1b2c3d4, 2, 4, 65535, 1).
		rec(t0, 0, 0, 60, nil).pkt(t0, 1, payload(60, 1)).Bytes())
	add("header-only.pcap", newPcapFile(le, 0xa1b2c3d4, 2, 4, 65535, 1).Bytes())
	add("caplen-huge.pcap", newPcapFile(le, 0xa1b2c3d4, 2, 4, 65535, 1).
		pkt(t0, 0, payload(60, 1)).rec(t0, 1, 300_000, 300_000, payload(100, 2)).Bytes())
	add("version-3.pcap", newPcapFile(le, 0xa1b2c3d4, 3, 0, 65535, 1).
		pkt(t0, 0, payload(60, 1)).Bytes())

	// pcapng written by pcapgo: two interfaces with different link types.
	{
		var buf bytes.Buffer
		w, _ := pcapgo.NewNgWriterInterface(&buf, pcapgo.NgInterface{Name: "eth0", LinkType: layers.LinkTypeEthernet}, pcapgo.DefaultNgWriterOptions)
		w.AddInterface(pcapgo.NgInterface{Name: "tun0", LinkType: layers.LinkTypeRaw})
		w.WriteDecryptionSecretsBlock(pcapgo.DSB_SECRETS_TYPE_TLS, []byte("CLIENT_RANDOM 00 11\n"))
		for i := range ts {
			w.WritePacket(gopacket.CaptureInfo{Timestamp: ts[i], CaptureLength: len(data[i]), Length: len(data[i]), InterfaceIndex: i % 2}, data[i])
		}
		w.Flush()
		add("pcapgo-two-ifaces.pcapng", buf.Bytes())
	}

	// Interfaces with other timestamp resolutions and offsets.
	{
		f := newNgFile(le)
		f.idb(1, 0, tsresol(3))                                   // milliseconds
		f.idb(0, 0, tsresol(0x80|10))                             // 2^-10 s
		f.idb(101, 0, tsresol(12))                                // picoseconds
		f.idb(1, 0, f.tsoffset(1_000_000_000))                    // microseconds, +10^9 s
		f.idb(1, 0, tsresol(9), f.tsoffset(-3600))                // nanoseconds, -1 h
		f.idb(1, 0, tsresol(0x80|0))                              // seconds
		f.epb(0, t0*1000+123, payload(20, 1))                     // t0.123
		f.epb(1, uint64(t0)<<10|512, payload(21, 2))              // t0.5
		f.epb(2, 12_345_678*1e12+123_456_789_999, payload(22, 3)) // 12345678.123456789999: picoseconds overflow 64 bits after 213 days
		f.epb(3, 700_000_000*1e6+42, payload(23, 4))              // 1.7e9 s + 42 µs
		f.epb(4, (t0+3600)*1e9+5, payload(24, 5))                 // t0 + 5 ns
		f.epb(5, t0+7, payload(25, 6))                            // t0 + 7 s
		add("tsresol.pcapng", f.Bytes())
	}
	// Two sections in different byte orders, each with its interface 0.
	{
		f := newNgFile(le).idb(1, 0).epb(0, t0*1e6+1, payload(30, 1)).epb(0, t0*1e6+2, payload(31, 2))
		f.shb(be).idb(0, 0, tsresol(9)).epb(0, t0*1e9+3000, payload(32, 3)).epb(0, t0*1e9+4000, payload(33, 4))
		add("two-sections.pcapng", f.Bytes())
	}
	// Simple and obsolete Packet Blocks, secrets, and blocks to skip.
	{
		f := newNgFile(be).idb(1, 0)
		f.block(0x00000bad, []byte("custom block, skipped"))
		f.dsb(SecretsTLSKeyLog, []byte("CLIENT_RANDOM aa bb\n"))
		f.epb(0, t0*1e6, payload(40, 1))
		f.spb(100, payload(100, 2))
		f.opb(0, t0*1e6+10, payload(41, 3))
		f.block(5, make([]byte, 12)) // an interface statistics block
		f.dsb(SecretsSSHKeyLog, []byte("ssh"))
		f.epb(0, t0*1e6+20, payload(42, 4), ngOpt{1, []byte("a comment")})
		add("spb-opb-dsb.pcapng", f.Bytes())
	}
	add("version-1.2.pcapng", newNgFile(le).shbVersion(le, 1, 2).idb(1, 0).epb(0, t0*1e6, payload(20, 1)).Bytes())
	{
		f := newNgFile(le).idb(1, 0)
		f.block(ngBlockEPB, f.epbBody(0, t0*1e6, 100, 60, payload(100, 1)))
		add("ng-caplen-gt-origlen.pcapng", f.Bytes())
	}
	// Damaged pcapng files.
	{
		f := newNgFile(le).idb(1, 0).epb(0, t0*1e6, payload(20, 1))
		f.epb(0, t0*1e6+1, payload(20, 2))
		b := f.Bytes()
		le.PutUint32(b[len(b)-4:], 60) // trailing length of the last block
		add("ng-trailer-mismatch.pcapng", b)
	}
	{
		f := newNgFile(le).idb(1, 0).epb(0, t0*1e6, payload(20, 1))
		f.Write(le.AppendUint32(nil, 0xbad))
		f.Write(le.AppendUint32(nil, 14))
		f.Write(make([]byte, 6))
		f.epb(0, t0*1e6+1, payload(20, 2))
		add("ng-len-not-multiple-of-4.pcapng", f.Bytes())
	}
	add("ng-bad-interface.pcapng", newNgFile(le).idb(1, 0).epb(0, t0*1e6, payload(20, 1)).epb(1, t0*1e6+1, payload(20, 2)).Bytes())
	add("ng-packet-before-idb.pcapng", newNgFile(le).epb(0, t0*1e6, payload(20, 1)).Bytes())
	{
		f := newNgFile(le).idb(1, 0).epb(0, t0*1e6, payload(20, 1))
		f.block(ngBlockEPB, f.epbBody(0, t0*1e6+1, 1000, 1000, payload(20, 2)))
		add("ng-caplen-beyond-block.pcapng", f.Bytes())
	}
	{
		f := newNgFile(le).idb(1, 0).epb(0, t0*1e6, payload(20, 1))
		f.Write(le.AppendUint32(nil, ngBlockEPB))
		f.Write(le.AppendUint32(nil, 8))
		add("ng-block-len-8.pcapng", f.Bytes())
	}
	{
		// An if_tsresol option after an option whose length runs past the
		// block: the rest of the options are ignored.
		f := newNgFile(le)
		var b []byte
		b = le.AppendUint16(b, 1)
		b = le.AppendUint16(b, 0)
		b = le.AppendUint32(b, 0)
		b = le.AppendUint16(b, 2) // if_name
		b = le.AppendUint16(b, 200)
		b = append(b, "eth0"...)
		f.block(ngBlockIDB, b)
		f.epb(0, t0*1e6+1, payload(20, 1))
		add("ng-idb-bad-option.pcapng", f.Bytes())
	}
	// Blocks Wireshark numbers as frames although they hold no packet,
	// among blocks it does not number.
	{
		f := newNgFile(le).idb(1, 0).epb(0, t0*1e6, payload(20, 1))
		for _, typ := range []uint32{0xbad, 0x40000bad, 9, 0x1234, 5, 4, 0x204, 0x80000001} {
			body := payload(20, 0)
			switch typ {
			case 9:
				body = []byte("__REALTIME_TIMESTAMP=1700000000000000\nMESSAGE=x\n")
			case 5: // interface statistics: interface 0, time 0
				body = make([]byte, 12)
			case 4: // name resolution: the end record
				body = make([]byte, 4)
			case 0x204: // a Sysdig event needs 24 bytes or more
				body = make([]byte, 28)
			}
			f.block(typ, body)
			f.epb(0, t0*1e6+1, payload(20, 2))
		}
		add("frame-blocks.pcapng", f.Bytes())
	}
	return cs
}

// wantPkt is what tshark shows for one frame: frame.number,
// frame.time_epoch, frame.cap_len, frame.len, and the link type.
type wantPkt struct {
	frame           uint64
	ts              string
	caplen, origlen int
	link            layers.LinkType
}

var (
	eth  = layers.LinkTypeEthernet
	null = layers.LinkTypeNull
	raw  = layers.LinkTypeRaw
)

// syntheticWant holds, for each synthetic capture, the frames and the
// error the Reader gives. Unless a comment says otherwise the frames are
// what tshark 4.0.17 shows for the file written by TestDumpSynthetic
// (tshark -T fields -e frame.number -e frame.time_epoch -e frame.cap_len
// -e frame.len -e frame.encap_type), and where tshark also reports the file
// damaged, after the same frames, the error names the same fault.
var syntheticWant = map[string]struct {
	pkts    []wantPkt
	err     string
	secrets int
}{
	"pcapgo-us.pcap": {pkts: []wantPkt{
		{1, "1700000000.123456000", 60, 70, eth},
		{2, "1700000001.000005000", 61, 71, eth},
		{3, "1700000001.000005000", 1514, 1524, eth}}},
	"pcapgo-ns.pcap": {pkts: []wantPkt{
		{1, "1700000000.123456789", 60, 70, eth},
		{2, "1700000001.000005000", 61, 71, eth},
		{3, "1700000001.000005001", 1514, 1524, eth}}},
	"us-be.pcap": {pkts: []wantPkt{
		{1, "1700000000.999999000", 60, 60, eth},
		{2, "1700000001.000000000", 70, 70, eth}}},
	"ns-be.pcap": {pkts: []wantPkt{
		{1, "1700000000.999999999", 40, 40, raw},
		{2, "1700000002.000000001", 41, 41, raw}}},
	"ns-le.pcap": {pkts: []wantPkt{
		{1, "1700000000.000000007", 40, 40, layers.LinkTypeLinuxSLL}}},
	"modified.pcap": {pkts: []wantPkt{
		{1, "1700000000.000010000", 60, 60, eth},
		{2, "1700000000.000020000", 62, 80, eth}}},
	"v2.2-swapped.pcap": {pkts: []wantPkt{
		{1, "1700000000.000000000", 40, 80, eth}}},
	"v2.3-maybe-swapped.pcap": {pkts: []wantPkt{
		{1, "1700000000.000000000", 40, 80, eth},
		{2, "1700000000.000001000", 40, 80, eth}}},
	"caplen-gt-snaplen.pcap": {pkts: []wantPkt{
		{1, "1700000000.000000000", 100, 100, eth}}},
	"caplen-gt-origlen.pcap": {pkts: []wantPkt{
		{1, "1700000000.000000000", 100, 60, eth}}},
	"fcs-bits-linktype.pcap": {pkts: []wantPkt{
		{1, "1700000000.000000000", 64, 64, eth}}},
	"zero-caplen.pcap": {pkts: []wantPkt{
		{1, "1700000000.000000000", 0, 60, eth},
		{2, "1700000000.000001000", 60, 60, eth}}},
	"header-only.pcap": {},
	// tshark: "pcap: File has 300000-byte packet, bigger than maximum of 262144".
	"caplen-huge.pcap": {pkts: []wantPkt{
		{1, "1700000000.000000000", 60, 60, eth}},
		err: "caplen-huge.pcap: frame 2 (offset 100): pcap: corrupt record: captured length 300000 exceeds the 262144-byte limit"},
	"version-3.pcap": {pkts: []wantPkt{
		{1, "1700000000.000000000", 60, 60, eth}}},
	"pcapgo-two-ifaces.pcapng": {secrets: 1, pkts: []wantPkt{
		{1, "1700000000.123456789", 60, 60, eth},
		{2, "1700000001.000005000", 61, 61, raw},
		{3, "1700000001.000005001", 1514, 1514, eth}}},
	// Frame 3: tshark 4.0.17 shows 12345678.012776325 because it computes
	// (ts % 10^12) * 10^9 in 64 bits, which overflows; the exact value is
	// 12345678.123456789(999).
	"tsresol.pcapng": {pkts: []wantPkt{
		{1, "1700000000.123000000", 20, 20, eth},
		{2, "1700000000.500000000", 21, 21, null},
		{3, "12345678.123456789", 22, 22, raw},
		{4, "1700000000.000042000", 23, 23, eth},
		{5, "1700000000.000000005", 24, 24, eth},
		{6, "1700000007.000000000", 25, 25, eth}}},
	"two-sections.pcapng": {pkts: []wantPkt{
		{1, "1700000000.000001000", 30, 30, eth},
		{2, "1700000000.000002000", 31, 31, eth},
		{3, "1700000000.000003000", 32, 32, null},
		{4, "1700000000.000004000", 33, 33, null}}},
	// tshark numbers the custom block as frame 1, and shows no time for the
	// Simple Packet Block (frame 3), which gets the time of the packet
	// before it here.
	"spb-opb-dsb.pcapng": {secrets: 2, pkts: []wantPkt{
		{2, "1700000000.000000000", 40, 40, eth},
		{3, "1700000000.000000000", 100, 100, eth},
		{4, "1700000000.000010000", 41, 41, eth},
		{5, "1700000000.000020000", 42, 42, eth}}},
	"version-1.2.pcapng": {pkts: []wantPkt{
		{1, "1700000000.000000000", 20, 20, eth}}},
	"ng-caplen-gt-origlen.pcapng": {pkts: []wantPkt{
		{1, "1700000000.000000000", 100, 60, eth}}},
	// tshark: "pcapng: total block lengths (first 52 and second 60) don't match".
	"ng-trailer-mismatch.pcapng": {pkts: []wantPkt{
		{1, "1700000000.000000000", 20, 20, eth}},
		err: "ng-trailer-mismatch.pcapng: frame 2 (offset 100): pcapng: corrupt record: block length 52 does not match trailing length 60"},
	// tshark: "pcapng: total block lengths (first 16 and second 393216) don't match".
	"ng-len-not-multiple-of-4.pcapng": {pkts: []wantPkt{
		{1, "1700000000.000000000", 20, 20, eth}},
		err: "ng-len-not-multiple-of-4.pcapng: frame 2 (offset 100): pcapng: corrupt record: block length 14 is not a multiple of 4"},
	// tshark: "pcapng: interface index 1 is not less than section interface count 1".
	"ng-bad-interface.pcapng": {pkts: []wantPkt{
		{1, "1700000000.000000000", 20, 20, eth}},
		err: "ng-bad-interface.pcapng: frame 2 (offset 100): pcapng: corrupt record: packet on interface 1; the section defines 1"},
	// tshark: "pcapng: interface index 0 is not less than section interface count 0".
	"ng-packet-before-idb.pcapng": {
		err: "ng-packet-before-idb.pcapng: frame 1 (offset 28): pcapng: corrupt record: packet on interface 0; the section defines 0"},
	// tshark: "pcapng: total block length 52 of an EPB is too small for 1000 bytes of packet data".
	"ng-caplen-beyond-block.pcapng": {pkts: []wantPkt{
		{1, "1700000000.000000000", 20, 20, eth}},
		err: "ng-caplen-beyond-block.pcapng: frame 2 (offset 100): pcapng: corrupt record: captured length 1000 does not fit in a 52-byte block"},
	// tshark: "pcapng: total block length 8 of an EPB is less than the minimum EPB size 32".
	"ng-block-len-8.pcapng": {pkts: []wantPkt{
		{1, "1700000000.000000000", 20, 20, eth}},
		err: "ng-block-len-8.pcapng: frame 2 (offset 100): pcapng: corrupt record: block type 0x6 has length 8, less than 32"},
	// tshark refuses the whole file ("pcapng: Not enough data to handle
	// option of length 200"); this reader stops reading the interface's
	// options and keeps the packet.
	"ng-idb-bad-option.pcapng": {pkts: []wantPkt{
		{1, "1700000000.000001000", 20, 20, eth}}},
	// tshark numbers the custom (0xbad, 0x40000bad), systemd journal (9) and
	// Sysdig event (0x204) blocks as frames 2, 4, 6 and 11, but not the
	// unknown, statistics, name resolution and local-use blocks.
	"frame-blocks.pcapng": {pkts: []wantPkt{
		{1, "1700000000.000000000", 20, 20, eth},
		{3, "1700000000.000001000", 20, 20, eth},
		{5, "1700000000.000001000", 20, 20, eth},
		{7, "1700000000.000001000", 20, 20, eth},
		{8, "1700000000.000001000", 20, 20, eth},
		{9, "1700000000.000001000", 20, 20, eth},
		{10, "1700000000.000001000", 20, 20, eth},
		{12, "1700000000.000001000", 20, 20, eth},
		{13, "1700000000.000001000", 20, 20, eth}}},
}

// TestSynthetic reads each synthetic capture.
func TestSynthetic(t *testing.T) {
	cases := synthetic()
	if len(cases) != len(syntheticWant) {
		t.Errorf("%d synthetic captures, %d expectations", len(cases), len(syntheticWant))
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			want, ok := syntheticWant[c.name]
			if !ok {
				t.Fatal("no expectation")
			}
			r, err := openReaders([]io.Reader{bytes.NewReader(c.data)}, []string{c.name}, Options{}, limits{})
			if err != nil {
				t.Fatal(err)
			}
			defer r.Close()
			ps, errs := drain(t, r)
			var got []wantPkt
			for _, p := range ps {
				got = append(got, wantPkt{p.Frame, epoch(p.TS), len(p.Data), p.OrigLen, p.LinkType})
			}
			if !slices.Equal(got, want.pkts) {
				t.Errorf("frames\n got %v\nwant %v", got, want.pkts)
			}
			var gotErr string
			for _, e := range errs {
				gotErr += e.Error()
			}
			if gotErr != want.err {
				t.Errorf("error %q\n want %q", gotErr, want.err)
			}
			if n := len(r.Secrets()); n != want.secrets {
				t.Errorf("%d secrets, want %d", n, want.secrets)
			}
		})
	}
}

// TestSmallBuffer reads the synthetic captures, and one with blocks larger
// than the buffer, through the smallest buffer the Reader takes: the slow
// paths (packet blocks with long options, secrets read in pieces) give the
// same packets and secrets as the usual buffer.
func TestSmallBuffer(t *testing.T) {
	big := newNgFile(le).idb(1, 0)
	big.dsb(SecretsTLSKeyLog, payload(10_000, 7))
	big.epb(0, t0*1e6, payload(1500, 1), ngOpt{1, payload(5000, 2)})
	big.spb(1500, payload(1500, 3))
	big.epb(0, t0*1e6+1, payload(1500, 4))
	cases := append(synthetic(), synthCase{"big-blocks.pcapng", big.Bytes()})
	for _, c := range cases {
		read := func(opts Options, bufSize int) ([]pkt, int, []Secret) {
			r, err := openReaders([]io.Reader{bytes.NewReader(c.data)}, []string{c.name}, opts, limits{bufSize: bufSize})
			if err != nil {
				t.Fatalf("%s: %v", c.name, err)
			}
			defer r.Close()
			ps, errs := drain(t, r)
			return ps, len(errs), r.Secrets()
		}
		want, wantErrs, wantSecrets := read(Options{}, 0)
		got, gotErrs, gotSecrets := read(Options{MaxCaptureLen: 1600}, 1)
		if err := samePackets(got, want); err != nil || gotErrs != wantErrs {
			t.Errorf("%s: %v; %d errors, want %d", c.name, err, gotErrs, wantErrs)
		}
		if !slices.EqualFunc(gotSecrets, wantSecrets, func(a, b Secret) bool {
			return a.Type == b.Type && a.File == b.File && bytes.Equal(a.Data, b.Data)
		}) {
			t.Errorf("%s: secrets differ", c.name)
		}
		if c.name == "big-blocks.pcapng" && (len(want) != 3 || len(wantSecrets) != 1 || len(wantSecrets[0].Data) != 10_000) {
			t.Errorf("%s: %d packets, secrets %d", c.name, len(want), len(wantSecrets))
		}
	}
}
