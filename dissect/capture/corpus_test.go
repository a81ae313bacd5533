package capture

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/gopacket/gopacket/pcapgo"
	"github.com/h2scope/h2scope/dissect/event"
)

// TestCorpusTshark reads every capture of the corpus and checks the frame
// count, first and last timestamps and captured bytes against tshark.
func TestCorpusTshark(t *testing.T) {
	if _, err := os.Stat(corpusDir); err != nil {
		t.Skipf("corpus not found at %s: %v", corpusDir, err)
	}
	for _, tc := range tsharkCorpus {
		t.Run(tc.path, func(t *testing.T) {
			path := corpusPath(t, tc.path)
			r, err := Open([]string{path}, Options{})
			if err != nil {
				t.Fatal(err)
			}
			defer r.Close()
			f := r.files[0]
			kind := map[int]string{kindPcap: "pcap", kindPcapng: "pcapng"}[f.kind]
			if f.kind == kindPcap && f.nanos {
				kind = "nsecpcap"
			}
			if kind != tc.fileType {
				t.Errorf("format %s, tshark says %s", kind, tc.fileType)
			}
			ps, errs := drain(t, r)
			if len(errs) > 0 {
				t.Fatalf("errors: %v", errs)
			}
			if len(ps) != tc.frames {
				t.Fatalf("%d frames, tshark says %d", len(ps), tc.frames)
			}
			capBytes := 0
			for i, p := range ps {
				capBytes += len(p.Data)
				if p.Frame != uint64(i+1) {
					t.Fatalf("packet %d has frame number %d", i, p.Frame)
				}
			}
			if capBytes != tc.capBytes {
				t.Errorf("captured bytes %d, tshark says %d", capBytes, tc.capBytes)
			}
			if got := epoch(ps[0].TS); got != tc.first {
				t.Errorf("first timestamp %s, tshark says %s", got, tc.first)
			}
			if got := epoch(ps[len(ps)-1].TS); got != tc.last {
				t.Errorf("last timestamp %s, tshark says %s", got, tc.last)
			}
		})
	}
}

// TestCorpusPcapgoAgrees checks every packet against pcapgo's readers, on
// the corpus files pcapgo reads.
func TestCorpusPcapgoAgrees(t *testing.T) {
	if _, err := os.Stat(corpusDir); err != nil {
		t.Skipf("corpus not found at %s: %v", corpusDir, err)
	}
	for _, tc := range tsharkCorpus {
		t.Run(tc.path, func(t *testing.T) {
			path := corpusPath(t, tc.path)
			want, ok := readPcapgo(t, path)
			if !ok {
				t.Skip("pcapgo cannot read this file")
			}
			got, errs := readFile(t, path)
			if len(errs) > 0 {
				t.Fatal(errs)
			}
			if len(got) != len(want) {
				t.Fatalf("%d packets, pcapgo %d", len(got), len(want))
			}
			for i := range got {
				g, w := got[i], want[i]
				if !g.TS.Equal(w.TS) || g.OrigLen != w.OrigLen || g.LinkType != w.LinkType || !bytes.Equal(g.Data, w.Data) {
					t.Fatalf("packet %d: got %v, pcapgo %v", i, g, w)
				}
			}
		})
	}
}

// readPcapgo reads a file with pcapgo, reporting false if pcapgo fails.
func readPcapgo(t *testing.T, path string) ([]pkt, bool) {
	fh, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer fh.Close()
	var magic [4]byte
	if _, err := io.ReadFull(fh, magic[:]); err != nil {
		t.Fatal(err)
	}
	fh.Seek(0, io.SeekStart)
	var read func() ([]byte, gopacket.CaptureInfo, layers.LinkType, error)
	if magic == [4]byte{0x0a, 0x0d, 0x0d, 0x0a} {
		r, err := pcapgo.NewNgReader(fh, pcapgo.NgReaderOptions{WantMixedLinkType: true})
		if err != nil {
			return nil, false
		}
		read = func() ([]byte, gopacket.CaptureInfo, layers.LinkType, error) {
			data, ci, err := r.ReadPacketData()
			var lt layers.LinkType
			if err == nil {
				lt = ci.AncillaryData[0].(layers.LinkType)
			}
			return data, ci, lt, err
		}
	} else {
		r, err := pcapgo.NewReader(fh)
		if err != nil {
			return nil, false
		}
		read = func() ([]byte, gopacket.CaptureInfo, layers.LinkType, error) {
			data, ci, err := r.ReadPacketData()
			return data, ci, r.LinkType(), err
		}
	}
	var ps []pkt
	for {
		data, ci, lt, err := read()
		if err == io.EOF {
			return ps, true
		}
		if err != nil {
			return nil, false
		}
		ps = append(ps, pkt{TS: ci.Timestamp, LinkType: lt, Data: data, OrigLen: ci.Length})
	}
}

// TestCorpusInterfaces checks per-interface link types in a pcapng file
// with eleven interfaces. tshark -T fields -e frame.interface_id -e
// frame.encap_type puts frames 3 and 4 on interface 10, NULL/loopback
// (encap 15, DLT_NULL 0), and the other 62 on interface 0, Ethernet.
func TestCorpusInterfaces(t *testing.T) {
	ps, errs := readFile(t, corpusPath(t, "pcapplusplus/many_interfaces-1.pcapng"))
	if len(errs) > 0 || len(ps) != 64 {
		t.Fatalf("%d packets, errors %v", len(ps), errs)
	}
	for _, p := range ps {
		want := layers.LinkTypeEthernet
		if p.Frame == 3 || p.Frame == 4 {
			want = layers.LinkTypeNull
		}
		if p.LinkType != want {
			t.Errorf("frame %d: link type %v, want %v", p.Frame, p.LinkType, want)
		}
	}
}

// TestCorpusSecrets reads the Decryption Secrets Block of a corpus file.
// capinfos reports "Number of decryption secrets in file: 1"; the type,
// length, line count and SHA-256 were taken from the block with a separate
// Python walk over the pcapng blocks.
func TestCorpusSecrets(t *testing.T) {
	path := corpusPath(t, "ja4/http2-with-cookies.pcapng")
	r, err := Open([]string{path}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	p, err := r.Next()
	if err != nil {
		t.Fatal(err)
	}
	// The block precedes the first packet, so it is there already.
	if p.Frame != 1 || len(r.Secrets()) != 1 {
		t.Fatalf("after frame %d: %d secrets, want 1", p.Frame, len(r.Secrets()))
	}
	if _, errs := drain(t, r); len(errs) > 0 {
		t.Fatal(errs)
	}
	s := r.Secrets()
	if len(s) != 1 {
		t.Fatalf("%d secrets, want 1", len(s))
	}
	sum := sha256.Sum256(s[0].Data)
	if s[0].Type != SecretsTLSKeyLog || s[0].File != 0 || len(s[0].Data) != 27880 ||
		bytes.Count(s[0].Data, []byte("\n")) != 179 ||
		!bytes.HasPrefix(s[0].Data, []byte("CLIENT_EARLY_TRAFFIC_SECRET ")) ||
		hex.EncodeToString(sum[:]) != "6fa73985ea3c82be4d7d2b5ee1ca3dc2345072862fdcdf985b71cdc78b80488f" {
		t.Errorf("secret: type %#x file %d len %d sha256 %x", s[0].Type, s[0].File, len(s[0].Data), sum)
	}
}

// TestCorpusCompressed checks that gzip and zstd copies of corpus captures,
// made here, read as the originals do, and so does the corpus's own .gz.
func TestCorpusCompressed(t *testing.T) {
	for _, name := range []string{"pcapplusplus/sll.pcap", "ja4/tls3.pcapng", "pcapplusplus/nanosecs_big_endian.pcap"} {
		t.Run(name, func(t *testing.T) {
			path := corpusPath(t, name)
			raw := mustRead(t, path)
			want, errs := readFile(t, path)
			if len(errs) > 0 {
				t.Fatal(errs)
			}
			gz, zs := gzipped(raw), zstded(raw)
			for _, c := range []struct {
				ext  string
				data []byte
			}{{".gz", gz}, {".zst", zs}} {
				// The extension is deliberately wrong: magic decides.
				p := writeTemp(t, filepath.Base(name)+c.ext+".bin", c.data)
				got, errs := readFile(t, p)
				if len(errs) > 0 {
					t.Fatalf("%s: %v", c.ext, errs)
				}
				if err := samePackets(got, want); err != nil {
					t.Errorf("%s: %v", c.ext, err)
				}
			}
		})
	}
	t.Run("zeek .pcap.gz", func(t *testing.T) {
		want, errs := readFile(t, corpusPath(t, "zeek/tls/tls-fragmented-handshake.pcap"))
		got, errs2 := readFile(t, corpusPath(t, "zeek/tls/tls-fragmented-handshake.pcap.gz"))
		if len(errs)+len(errs2) > 0 {
			t.Fatal(errs, errs2)
		}
		if err := samePackets(got, want); err != nil {
			t.Error(err)
		}
	})
}

// TestCorpusMergeSplit splits a capture into two files, packet by packet
// alternately, and checks that merging them gives back the original order
// and numbering.
func TestCorpusMergeSplit(t *testing.T) {
	for _, name := range []string{"pcapplusplus/sll.pcap", "ja4/tls3.pcapng"} {
		t.Run(name, func(t *testing.T) {
			orig, errs := readFile(t, corpusPath(t, name))
			if len(errs) > 0 {
				t.Fatal(errs)
			}
			for i := 1; i < len(orig); i++ {
				if orig[i].TS.Before(orig[i-1].TS) {
					t.Fatalf("precondition: timestamps go backwards at frame %d", i+1)
				}
			}
			var bufs [2]bytes.Buffer
			var ws [2]*pcapgo.Writer
			for k := range ws {
				ws[k] = pcapgo.NewWriterNanos(&bufs[k])
				ws[k].WriteFileHeader(65535, orig[0].LinkType)
			}
			// Alternate packets between the files, except that a packet
			// with the same timestamp as the one before goes to the same
			// file: across files, ties go to the later file.
			files := make([]int, len(orig))
			for i, p := range orig {
				files[i] = i % 2
				if i > 0 && p.TS.Equal(orig[i-1].TS) {
					files[i] = files[i-1]
				}
				ci := gopacket.CaptureInfo{Timestamp: p.TS, CaptureLength: len(p.Data), Length: p.OrigLen}
				if err := ws[files[i]].WritePacket(ci, p.Data); err != nil {
					t.Fatal(err)
				}
			}
			dir := t.TempDir()
			paths := []string{filepath.Join(dir, "a.pcap"), filepath.Join(dir, "b.pcap")}
			for k, p := range paths {
				os.WriteFile(p, bufs[k].Bytes(), 0o644)
			}
			r, err := Open(paths, Options{})
			if err != nil {
				t.Fatal(err)
			}
			defer r.Close()
			got, errs := drain(t, r)
			if len(errs) > 0 {
				t.Fatal(errs)
			}
			if len(got) != len(orig) {
				t.Fatalf("%d packets, want %d", len(got), len(orig))
			}
			for i, g := range got {
				w := orig[i]
				if g.Frame != w.Frame || g.File != files[i] || !g.TS.Equal(w.TS) || !bytes.Equal(g.Data, w.Data) {
					t.Fatalf("merged packet %d: %v, original %v", i, g, w)
				}
			}
		})
	}
}

// TestCorpusMagicNotExtension reads corpus files whose extension lies:
// tshark's capinfos says these .pcapng files are pcap.
func TestCorpusMagicNotExtension(t *testing.T) {
	for _, name := range []string{"ja4/http1.pcapng", "ndpi/tcp_scan.pcapng"} {
		r, err := Open([]string{corpusPath(t, name)}, Options{})
		if err != nil {
			t.Fatal(err)
		}
		if r.files[0].kind != kindPcap {
			t.Errorf("%s: not read as pcap", name)
		}
		r.Close()
	}
}

// TestCorpusErrorsNameFile checks the error for a corpus file cut short,
// read through Open so that File is the path as given.
func TestCorpusErrorsNameFile(t *testing.T) {
	raw := mustRead(t, corpusPath(t, "pcapplusplus/one_http_stream_rst.pcap"))
	p := writeTemp(t, "cut.pcap", raw[:330])
	r, err := Open([]string{p}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	ps, errs := drain(t, r)
	if len(ps) != 3 || len(errs) != 1 {
		t.Fatalf("%d packets, errors %v", len(ps), errs)
	}
	want := p + ": frame 4 (offset 306): pcap: file truncated: packet data has 8 of 1106 bytes"
	if errs[0].Error() != want {
		t.Errorf("error %q\nwant  %q", errs[0], want)
	}
	if !strings.HasPrefix(errs[0].Error(), p) || !errors.Is(errs[0], event.ErrTruncated) {
		t.Errorf("error %v does not name the file or is not ErrTruncated", errs[0])
	}
}
