package capture

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/h2scope/h2scope/dissect/event"
	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
)

// TestTruncated cuts real captures at offsets in their file headers,
// record headers, packet data and block trailers, and checks the packets
// returned before the fault and the exact error.
//
// one_http_stream_rst.pcap: a 24-byte file header, then records of 16 + 82,
// 16 + 82, 16 + 70 and 16 + 1106 bytes (frame.cap_len from tshark) at
// offsets 24, 122, 220 and 306. retransmit-timeout.pcapng: a 136-byte
// section header, a 20-byte interface description at 136, and Enhanced
// Packet Blocks of 104, 88 and 104 bytes at 156, 260 and 348.
func TestTruncated(t *testing.T) {
	pcap := mustRead(t, corpusPath(t, "pcapplusplus/one_http_stream_rst.pcap"))
	ng := mustRead(t, corpusPath(t, "zeek/tcp/retransmit-timeout.pcapng"))
	tests := []struct {
		name    string
		data    []byte
		n       int // length kept
		pkts    int
		openErr string
		err     string
	}{
		{"cut.pcap", pcap, 0, 0, "cut.pcap: offset 0: capture: unrecognised capture format: file is empty", ""},
		{"cut.pcap", pcap, 3, 0, "cut.pcap: offset 0: capture: unrecognised capture format: file has only 3 bytes", ""},
		{"cut.pcap", pcap, 10, 0, "cut.pcap: offset 0: pcap: file truncated: file header has 10 of 24 bytes", ""},
		{"cut.pcap", pcap, 24, 0, "", ""},
		{"cut.pcap", pcap, 30, 0, "", "cut.pcap: frame 1 (offset 24): pcap: file truncated: record header has 6 of 16 bytes"},
		{"cut.pcap", pcap, 40, 0, "", "cut.pcap: frame 1 (offset 24): pcap: file truncated: packet data has 0 of 82 bytes"},
		{"cut.pcap", pcap, 45, 0, "", "cut.pcap: frame 1 (offset 24): pcap: file truncated: packet data has 5 of 82 bytes"},
		{"cut.pcap", pcap, 220, 2, "", ""},
		{"cut.pcap", pcap, 227, 2, "", "cut.pcap: frame 3 (offset 220): pcap: file truncated: record header has 7 of 16 bytes"},
		{"cut.pcap", pcap, 400, 3, "", "cut.pcap: frame 4 (offset 306): pcap: file truncated: packet data has 78 of 1106 bytes"},
		{"cut.pcap", pcap, len(pcap) - 1, 9, "", "cut.pcap: frame 10 (offset 2458): pcap: file truncated: packet data has 69 of 70 bytes"},
		{"cut.pcapng", ng, 10, 0, "cut.pcapng: offset 0: pcapng: file truncated: section header block has 10 of 12 bytes", ""},
		{"cut.pcapng", ng, 100, 0, "cut.pcapng: offset 0: pcapng: file truncated: block has 100 of 136 bytes", ""},
		{"cut.pcapng", ng, 136, 0, "", ""},
		{"cut.pcapng", ng, 150, 0, "", "cut.pcapng: frame 1 (offset 136): pcapng: file truncated: block has 14 of 20 bytes"},
		{"cut.pcapng", ng, 160, 0, "", "cut.pcapng: frame 1 (offset 156): pcapng: file truncated: block header has 4 of 8 bytes"},
		{"cut.pcapng", ng, 200, 0, "", "cut.pcapng: frame 1 (offset 156): pcapng: file truncated: block has 44 of 104 bytes"},
		{"cut.pcapng", ng, 258, 0, "", "cut.pcapng: frame 1 (offset 156): pcapng: file truncated: block has 102 of 104 bytes"},
		{"cut.pcapng", ng, 260, 1, "", ""},
		{"cut.pcapng", ng, 440, 2, "", "cut.pcapng: frame 3 (offset 348): pcapng: file truncated: block has 92 of 104 bytes"},
	}
	for _, tc := range tests {
		ps, errs, openErr := readBytes(t, tc.name, tc.data[:tc.n])
		if got := errString(openErr); got != tc.openErr {
			t.Errorf("%s[:%d]: Open error %q\n want %q", tc.name, tc.n, got, tc.openErr)
			continue
		}
		if len(ps) != tc.pkts {
			t.Errorf("%s[:%d]: %d packets, want %d", tc.name, tc.n, len(ps), tc.pkts)
		}
		var got string
		for _, e := range errs {
			got += e.Error()
		}
		if got != tc.err {
			t.Errorf("%s[:%d]: error %q\n want %q", tc.name, tc.n, got, tc.err)
		}
		for _, e := range append(errs, openErr) {
			if e == nil {
				continue
			}
			if ee, ok := asError[*event.Error](e); !ok || ee.File != tc.name {
				t.Errorf("%s[:%d]: %v is not an *event.Error naming the file", tc.name, tc.n, e)
			}
			if tc.n >= 4 && !errors.Is(e, event.ErrTruncated) {
				t.Errorf("%s[:%d]: %v is not ErrTruncated", tc.name, tc.n, e)
			}
		}
	}
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

// TestProperPrefixes reads every prefix of small real captures, plain and
// compressed: none panics, each gives the packets wholly inside it, and
// each ends cleanly exactly when it ends on a record boundary, with
// ErrTruncated otherwise.
func TestProperPrefixes(t *testing.T) {
	for _, name := range []string{
		"pcapplusplus/nanosecs_big_endian.pcap",
		"tcpdump/tcp-handshake-nano.pcap",
		"sv/bug-6887-defrag-ppp-ipv4-tcp-syn/frag-ppp-ip-tcp-syn.pcap",
		"zeek/tcp/retransmit-timeout.pcapng",
		"ndpi/http2.pcapng",
	} {
		t.Run(name, func(t *testing.T) {
			data := mustRead(t, corpusPath(t, name))
			full, errs, err := readBytes(t, "f", data)
			if err != nil || len(errs) > 0 {
				t.Fatal(err, errs)
			}
			ends := recordEnds(t, data)
			for n := 0; n < len(data); n++ {
				ps, errs, openErr := readBytes(t, "f", data[:n])
				if openErr != nil {
					if n >= ends[0] {
						t.Fatalf("[:%d]: Open: %v", n, openErr)
					}
					continue
				}
				if err := samePackets(ps, full[:len(ps)]); err != nil {
					t.Fatalf("[:%d]: %v", n, err)
				}
				// Packets whose record ends within n must all be there.
				whole := 0
				for _, p := range full {
					if recordEnd(ends, p.Offset) <= int64(n) {
						whole++
					}
				}
				if len(ps) != whole {
					t.Fatalf("[:%d]: %d packets, want %d", n, len(ps), whole)
				}
				onBoundary := false
				for _, e := range ends {
					onBoundary = onBoundary || e == n
				}
				switch {
				case onBoundary && len(errs) != 0:
					t.Fatalf("[:%d]: on a record boundary, got %v", n, errs)
				case !onBoundary && (len(errs) != 1 || !errors.Is(errs[0], event.ErrTruncated)):
					t.Fatalf("[:%d]: inside a record, got %v", n, errs)
				}
			}
			// And the same through gzip: every prefix of the compressed
			// stream gives a prefix of the packets and one error.
			var gz bytes.Buffer
			w := gzip.NewWriter(&gz)
			w.Write(data)
			w.Close()
			for n := 0; n < gz.Len(); n++ {
				ps, errs, openErr := readBytes(t, "f.gz", gz.Bytes()[:n])
				if openErr != nil {
					continue
				}
				if err := samePackets(ps, full[:len(ps)]); err != nil {
					t.Fatalf("gzip[:%d]: %v", n, err)
				}
				if len(errs) != 1 {
					t.Fatalf("gzip[:%d]: errors %v", n, errs)
				}
			}
		})
	}
}

// recordEnds returns the offsets at which the records of a well-formed
// capture end, the file header first. It walks the file independently of
// the reader.
func recordEnds(t *testing.T, data []byte) []int {
	var ends []int
	if bytes.HasPrefix(data, []byte{0x0a, 0x0d, 0x0d, 0x0a}) {
		var o binary.ByteOrder = binary.LittleEndian
		for off := 0; off < len(data); {
			if binary.BigEndian.Uint32(data[off:]) == ngBlockSHB {
				o = binary.LittleEndian
				if binary.BigEndian.Uint32(data[off+8:]) == ngByteOrderMagic {
					o = binary.BigEndian
				}
			}
			off += int(o.Uint32(data[off+4:]))
			ends = append(ends, off)
		}
		return ends
	}
	var o binary.ByteOrder = binary.LittleEndian
	if data[0] == 0xa1 {
		o = binary.BigEndian
	}
	for off := 24; ; {
		ends = append(ends, off)
		if off >= len(data) {
			return ends
		}
		off += 16 + int(o.Uint32(data[off+8:]))
	}
}

// recordEnd returns the end of the record starting at off.
func recordEnd(ends []int, off int64) int64 {
	for _, e := range ends {
		if int64(e) > off {
			return int64(e)
		}
	}
	return -1
}

// TestCorruptLength damages length fields of real captures: an error, not
// a panic or a huge allocation, naming the record.
func TestCorruptLength(t *testing.T) {
	pcap := mustRead(t, corpusPath(t, "pcapplusplus/one_http_stream_rst.pcap"))
	ng := mustRead(t, corpusPath(t, "zeek/tcp/retransmit-timeout.pcapng"))
	le := binary.LittleEndian
	tests := []struct {
		name string
		data []byte
		at   int // offset of the 32-bit field to set
		v    uint32
		pkts int
		err  string
	}{
		// Frame 3's caplen, at 220+8.
		{"bad.pcap", pcap, 228, 0xffffffff, 2, "bad.pcap: frame 3 (offset 220): pcap: corrupt record: captured length 4294967295 exceeds the 262144-byte limit"},
		{"bad.pcap", pcap, 228, 262145, 2, "bad.pcap: frame 3 (offset 220): pcap: corrupt record: captured length 262145 exceeds the 262144-byte limit"},
		{"bad.pcap", pcap, 228, 262144, 2, "bad.pcap: frame 3 (offset 220): pcap: file truncated: packet data has 2308 of 262144 bytes"},
		// Frame 3 takes in most of frame 4, whose data is then read as a
		// record header.
		{"bad.pcap", pcap, 228, 70 + 1000, 3, "bad.pcap: frame 4 (offset 1306): pcap: corrupt record: captured length 2053993589 exceeds the 262144-byte limit"},
		// The second block's total length, at 260+4, and its caplen at
		// 260+20.
		{"bad.pcapng", ng, 264, 0xfffffffc, 1, "bad.pcapng: frame 2 (offset 260): pcapng: corrupt record: block length 4294967292 exceeds the 134217728-byte limit"},
		{"bad.pcapng", ng, 264, 0, 1, "bad.pcapng: frame 2 (offset 260): pcapng: corrupt record: block type 0x6 has length 0, less than 32"},
		{"bad.pcapng", ng, 264, 92, 1, "bad.pcapng: frame 2 (offset 260): pcapng: corrupt record: block length 92 does not match trailing length 6"},
		{"bad.pcapng", ng, 264, 1 << 20, 1, "bad.pcapng: frame 2 (offset 260): pcapng: file truncated: block has 192 of 1048576 bytes"},
		{"bad.pcapng", ng, 280, 0xffffffff, 1, "bad.pcapng: frame 2 (offset 260): pcapng: corrupt record: captured length 4294967295 exceeds the 262144-byte limit"},
		{"bad.pcapng", ng, 280, 57, 1, "bad.pcapng: frame 2 (offset 260): pcapng: corrupt record: captured length 57 does not fit in a 88-byte block"},
		// The section header's length: the trailer is then read from the
		// next block's type field.
		{"bad.pcapng", ng, 4, 135, 0, "bad.pcapng: offset 0: pcapng: corrupt record: block length 135 is not a multiple of 4"},
		{"bad.pcapng", ng, 4, 140, 0, "bad.pcapng: offset 0: pcapng: corrupt record: block length 140 does not match trailing length 1"},
	}
	for _, tc := range tests {
		data := bytes.Clone(tc.data)
		le.PutUint32(data[tc.at:], tc.v)
		ps, errs, openErr := readBytes(t, tc.name, data)
		if openErr != nil {
			if openErr.Error() != tc.err {
				t.Errorf("%s %#x at %d: Open: %q\n want %q", tc.name, tc.v, tc.at, openErr, tc.err)
			}
			continue
		}
		got := ""
		for _, e := range errs {
			got += e.Error()
		}
		if len(ps) != tc.pkts || got != tc.err {
			t.Errorf("%s %#x at %d: %d packets, error %q\n want %d, %q", tc.name, tc.v, tc.at, len(ps), got, tc.pkts, tc.err)
		}
	}
}

// TestNotACapture checks the errors Open gives for files it cannot read.
func TestNotACapture(t *testing.T) {
	dir := t.TempDir()
	gzipped := func(b []byte) []byte {
		var buf bytes.Buffer
		w := gzip.NewWriter(&buf)
		w.Write(b)
		w.Close()
		return buf.Bytes()
	}
	zstded := func(b []byte) []byte {
		var buf bytes.Buffer
		w, _ := zstd.NewWriter(&buf)
		w.Write(b)
		w.Close()
		return buf.Bytes()
	}
	tests := []struct {
		name string
		data []byte // nil: no such file
		err  string // after the path
		is   error
	}{
		{"missing.pcap", nil, ": open: no such file or directory", fs.ErrNotExist},
		{"empty.pcap", []byte{}, ": offset 0: capture: unrecognised capture format: file is empty", event.ErrFormat},
		{"three.pcap", []byte("abc"), ": offset 0: capture: unrecognised capture format: file has only 3 bytes", event.ErrFormat},
		{"notes.txt", []byte("GET / HTTP/1.1\r\n"), ": offset 0: capture: unrecognised capture format: file is neither pcap nor pcapng (starts 47455420)", event.ErrFormat},
		{"x.pcap.xz", []byte{0xfd, '7', 'z', 'X', 'Z', 0, 1, 2}, ": offset 0: capture: unrecognised capture format: file is xz-compressed; decompress it first", event.ErrFormat},
		{"x.pcap.gz", gzipped([]byte("hello, world")), ": offset 0: capture: unrecognised capture format: gzip stream holds neither pcap nor pcapng (starts 68656c6c)", event.ErrFormat},
		{"x.pcap.zst", zstded([]byte("hello, world")), ": offset 0: capture: unrecognised capture format: zstd stream holds neither pcap nor pcapng (starts 68656c6c)", event.ErrFormat},
		{"empty.pcap.gz", gzipped(nil), ": offset 0: capture: unrecognised capture format: decompressed gzip stream is empty", event.ErrFormat},
		{"empty.pcap.zst", zstded(nil), ": offset 0: capture: unrecognised capture format: decompressed zstd stream is empty", event.ErrFormat},
		{"bad.pcap.gz", []byte{0x1f, 0x8b, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9}, ": offset 0: gzip: invalid header", nil},
		{"short.pcap.gz", []byte{0x1f, 0x8b}, ": offset 0: gzip: file truncated: compressed stream ends early", event.ErrTruncated},
		{"bad.pcap.zst", []byte{0x28, 0xb5, 0x2f, 0xfd, 0xff, 0xff, 0xff, 0xff, 0xff}, ": offset 0: zstd: reserved bit set on frame header", nil},
		// A zstd frame whose header claims a 256 MiB window (window
		// descriptor 0x90), over the 128 MiB the decoder accepts.
		{"window.pcap.zst", append([]byte{0x28, 0xb5, 0x2f, 0xfd, 0x00, 0x90, 0xc1, 0, 0}, newPcapFile(le, 0xa1b2c3d4, 2, 4, 65535, 1).Bytes()...), ": offset 0: zstd: window size exceeded", zstd.ErrWindowSizeExceeded},
		{"pcap-v1.pcap", newPcapFile(le, 0xa1b2c3d4, 1, 0, 65535, 1).Bytes(), ": offset 0: pcap: unrecognised capture format: unsupported pcap version 1.0", event.ErrFormat},
		{"pcapng-v2.pcapng", new(ngFile).shbVersion(le, 2, 0).Bytes(), ": offset 0: pcapng: unrecognised capture format: unsupported pcapng version 2.0", event.ErrFormat},
		{"no-bom.pcapng", []byte{0x0a, 0x0d, 0x0d, 0x0a, 28, 0, 0, 0, 1, 2, 3, 4, 0, 0, 0, 0}, ": offset 0: pcapng: unrecognised capture format: section header block has no byte-order magic", event.ErrFormat},
	}
	for _, tc := range tests {
		p := filepath.Join(dir, tc.name)
		if tc.data != nil {
			os.WriteFile(p, tc.data, 0o644)
		}
		r, err := Open([]string{p}, Options{})
		if err == nil {
			r.Close()
			t.Errorf("%s: no error", tc.name)
			continue
		}
		if err.Error() != p+tc.err {
			t.Errorf("%s: %q\n want %q", tc.name, err, p+tc.err)
		}
		if _, ok := asError[*event.Error](err); !ok {
			t.Errorf("%s: %T is not an *event.Error", tc.name, err)
		}
		if tc.is != nil && !errors.Is(err, tc.is) {
			t.Errorf("%s: %v is not %v", tc.name, err, tc.is)
		}
	}
	if _, err := Open([]string{dir}, Options{}); err == nil || !strings.HasPrefix(err.Error(), dir+": offset 0: capture: read: ") {
		t.Errorf("directory: %v", err)
	}
	if _, err := Open(nil, Options{}); err == nil || err.Error() != "capture: no input files" {
		t.Errorf("no files: %v", err)
	}
}

// TestOpenClosesOnError checks that when one of several files fails to
// open, Open reports it and leaves none open.
func TestOpenClosesOnError(t *testing.T) {
	good := writeTemp(t, "good.pcap", synthetic()[0].data)
	_, err := Open([]string{good, good + ".missing"}, Options{})
	if e, ok := asError[*event.Error](err); !ok || e.File != good+".missing" {
		t.Fatalf("error %v does not name the missing file", err)
	}
}

// TestCompressedDamage checks faults found by the decompressors: they name
// the compression and the record being read.
func TestCompressedDamage(t *testing.T) {
	raw := mustRead(t, corpusPath(t, "pcapplusplus/one_http_stream_rst.pcap"))
	full, _, _ := readBytes(t, "f", raw)

	var gz bytes.Buffer
	w := gzip.NewWriter(&gz)
	w.Write(raw)
	w.Close()

	// A gzip stream cut short: the packets decompressed before the cut,
	// then one error.
	ps, errs, err := readBytes(t, "cut.pcap.gz", gz.Bytes()[:gz.Len()/2])
	if err != nil || len(errs) != 1 || samePackets(ps, full[:len(ps)]) != nil {
		t.Fatalf("cut gzip: %d packets, %v, %v", len(ps), errs, err)
	}
	if want := "cut.pcap.gz: frame " + strconv.Itoa(len(ps)+1) + " (offset " + strconv.Itoa(int(full[len(ps)].Offset)) + "): gzip: file truncated: compressed stream ends early"; errs[0].Error() != want {
		t.Errorf("cut gzip: %q\n want %q", errs[0], want)
	}
	if !errors.Is(errs[0], event.ErrTruncated) {
		t.Errorf("cut gzip: %v is not ErrTruncated", errs[0])
	}

	// The CRC-32 in the gzip trailer damaged: all packets, then the error
	// where the next record would start.
	bad := bytes.Clone(gz.Bytes())
	bad[len(bad)-8] ^= 0xff
	ps, errs, _ = readBytes(t, "crc.pcap.gz", bad)
	if want := "crc.pcap.gz: frame 11 (offset 2544): gzip: invalid checksum"; len(ps) != 10 || len(errs) != 1 || errs[0].Error() != want {
		t.Errorf("bad crc: %d packets, %v\n want 10, %q", len(ps), errs, want)
	}
	if !errors.Is(errs[0], gzip.ErrChecksum) {
		t.Errorf("bad crc: %v is not gzip.ErrChecksum", errs[0])
	}

	// A zstd stream cut short, of a file large enough for several zstd
	// blocks.
	raw = mustRead(t, corpusPath(t, "pcapplusplus/sll.pcap"))
	full, _, _ = readBytes(t, "f", raw)
	var zs bytes.Buffer
	zw, _ := zstd.NewWriter(&zs)
	zw.Write(raw)
	zw.Close()
	ps, errs, err = readBytes(t, "cut.pcap.zst", zs.Bytes()[:zs.Len()-10])
	if err != nil || len(ps) == 0 || len(errs) != 1 || samePackets(ps, full[:len(ps)]) != nil {
		t.Fatalf("cut zstd: %d packets, %v, %v", len(ps), errs, err)
	}
	if want := "cut.pcap.zst: frame " + strconv.Itoa(len(ps)+1) + " (offset " + strconv.Itoa(int(full[len(ps)].Offset)) + "): zstd: file truncated: compressed stream ends early"; errs[0].Error() != want {
		t.Errorf("cut zstd: %q\n want %q", errs[0], want)
	}
}

// TestCorruptBlocks checks pcapng blocks whose fields cannot be right.
func TestCorruptBlocks(t *testing.T) {
	hugeDSB := newNgFile(le).idb(1, 0)
	hugeDSB.Write(le.AppendUint32(nil, ngBlockDSB))
	hugeDSB.Write(le.AppendUint32(nil, 17<<20+20))
	hugeDSB.Write(le.AppendUint32(nil, SecretsTLSKeyLog))
	hugeDSB.Write(le.AppendUint32(nil, 17<<20))

	longDSB := newNgFile(le).idb(1, 0)
	longDSB.block(ngBlockDSB, append(le.AppendUint32(le.AppendUint32(nil, SecretsTLSKeyLog), 100), "short"...))

	badSection := newNgFile(le).idb(1, 0).epb(0, t0*1e6, payload(20, 1))
	badSection.Write([]byte{0x0a, 0x0d, 0x0d, 0x0a, 28, 0, 0, 0, 1, 2, 3, 4})

	manyIfaces := newNgFile(le)
	for range maxInterfaces + 1 {
		manyIfaces.idb(1, 0)
	}

	tests := []struct {
		name string
		data []byte
		pkts int
		err  string
	}{
		{"huge-dsb.pcapng", hugeDSB.Bytes(), 0, "huge-dsb.pcapng: frame 1 (offset 48): pcapng: corrupt record: secrets length 17825792 exceeds the 16777216-byte limit"},
		{"long-dsb.pcapng", longDSB.Bytes(), 0, "long-dsb.pcapng: frame 1 (offset 48): pcapng: corrupt record: secrets length 100 does not fit in a 28-byte block"},
		{"spb-first.pcapng", newNgFile(le).spb(20, payload(20, 1)).Bytes(), 0, "spb-first.pcapng: frame 1 (offset 28): pcapng: corrupt record: simple packet block before any interface description block"},
		{"bad-section.pcapng", badSection.Bytes(), 1, "bad-section.pcapng: frame 2 (offset 100): pcapng: corrupt record: section header block has no byte-order magic"},
		{"many-ifaces.pcapng", manyIfaces.Bytes(), 0, "many-ifaces.pcapng: frame 1 (offset 1310748): pcapng: corrupt record: more than 65536 interfaces in one section"},
	}
	for _, tc := range tests {
		ps, errs, err := readBytes(t, tc.name, tc.data)
		if err != nil {
			t.Errorf("%s: Open: %v", tc.name, err)
			continue
		}
		got := ""
		for _, e := range errs {
			got += e.Error()
		}
		if len(ps) != tc.pkts || got != tc.err {
			t.Errorf("%s: %d packets, error %q\n want %d, %q", tc.name, len(ps), got, tc.pkts, tc.err)
		}
		if !errors.Is(errs[0], ErrCorrupt) {
			t.Errorf("%s: %v is not ErrCorrupt", tc.name, errs[0])
		}
	}
}
