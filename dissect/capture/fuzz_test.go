package capture

import (
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/h2scope/h2scope/dissect/event"
	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
)

// fuzzSeeds are small corpus captures of each format.
var fuzzSeeds = []string{
	"pcapplusplus/nanosecs_big_endian.pcap",
	"tcpdump/tcp-handshake-nano.pcap",
	"pcapplusplus/sll2.pcap",
	"zeek/tcp/retransmit-timeout.pcapng",
	"ndpi/http2.pcapng",
	"wireshark-notes/tls-null.pcapng",
}

// FuzzRead feeds arbitrary bytes to the Reader as a capture file: it must
// not panic, must end (io.EOF after at most one fault), and must keep its
// promises about what it returns.
func FuzzRead(f *testing.F) {
	for _, name := range fuzzSeeds {
		if b, err := os.ReadFile(filepath.Join(corpusDir, name)); err == nil {
			f.Add(b)
		}
	}
	for _, c := range synthetic() {
		f.Add(c.data)
	}
	// Compressed seeds, small enough to mutate usefully.
	small := synthetic()[0].data
	var gz, zs bytes.Buffer
	gw := gzip.NewWriter(&gz)
	gw.Write(small)
	gw.Close()
	zw, _ := zstd.NewWriter(&zs)
	zw.Write(small)
	zw.Close()
	f.Add(gz.Bytes())
	f.Add(zs.Bytes())

	f.Fuzz(func(t *testing.T, data []byte) {
		checkRead(t, data)
	})
}

// checkRead reads data as one capture file with a small buffer, so that
// the paths for blocks larger than the buffer are reached too, and a small
// zstd window (a 30-byte zstd stream may claim 128 MiB, which the decoder
// allocates: bounded, but too slow for fuzzing), and checks the Reader's
// promises.
func checkRead(t *testing.T, data []byte) {
	const maxCap = 4096
	lim := limits{bufSize: 1, zstdWindow: 1 << 20}
	r, err := openReaders([]io.Reader{bytes.NewReader(data)}, []string{"fuzz"}, Options{MaxCaptureLen: maxCap}, lim)
	if err != nil {
		checkError(t, err)
		return
	}
	defer r.Close()
	var frame uint64
	faults := 0
	for calls := 0; ; calls++ {
		if calls > len(data) {
			// Every packet takes at least 16 bytes of the decompressed
			// stream; a compressed input can hold more, so this is
			// generous only for plain inputs.
			if !bytes.HasPrefix(data, []byte{0x1f, 0x8b}) && !bytes.HasPrefix(data, []byte{0x28, 0xb5, 0x2f, 0xfd}) {
				t.Fatalf("%d calls to Next for %d bytes", calls, len(data))
			}
		}
		p, err := r.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			checkError(t, err)
			faults++
			continue
		}
		if p.Frame <= frame || len(p.Data) > maxCap || p.File != 0 || p.Offset < 0 {
			t.Fatalf("bad packet: frame %d after %d, %d bytes, file %d, offset %d", p.Frame, frame, len(p.Data), p.File, p.Offset)
		}
		frame = p.Frame
	}
	if faults > 1 {
		t.Fatalf("%d faults from one file", faults)
	}
	if _, err := r.Next(); err != io.EOF {
		t.Fatalf("Next after io.EOF: %v", err)
	}
}

// checkError checks that err is an *event.Error naming the file, with a
// known layer.
func checkError(t *testing.T, err error) {
	var e *event.Error
	if !errors.As(err, &e) || e.File != "fuzz" || e.Offset < 0 {
		t.Fatalf("error %v (%T) is not located in the file", err, err)
	}
	switch e.Proto {
	case "pcap", "pcapng", "gzip", "zstd", "capture":
	default:
		t.Fatalf("error %v has layer %q", err, e.Proto)
	}
}
