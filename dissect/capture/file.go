package capture

import (
	"bufio"
	"bytes"
	"cmp"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/gopacket/gopacket/layers"
	"github.com/h2scope/h2scope/dissect/event"
	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
)

// The formats a file can hold.
const (
	kindPcap = iota + 1
	kindPcapng
)

// bufSlack is what the read buffer holds beyond the largest packet: record
// and block headers and the options of a pcapng packet block, so that a
// whole packet block fits in the buffer.
const bufSlack = 64 << 10

// minSlack is the least the buffer must hold beyond the largest packet:
// every read of a packet takes its record or block header and data at once.
const minSlack = 32

// maxZstdWindow bounds the history a zstd stream may ask the decoder to
// keep, which the decoder allocates when the stream starts: 128 MiB, the
// largest window the zstd command line (and Wireshark, through libzstd)
// decompresses by default, so that files made with zstd --long or --ultra
// read. A zstd file claiming more is refused.
const maxZstdWindow = 1 << 27

// limits are the internal sizes tests and fuzzing turn down; the zero value
// means the usual ones.
type limits struct {
	bufSize    int    // read buffer size
	zstdWindow uint64 // maximum zstd window
}

// file is one input file being read.
type file struct {
	r      *Reader
	index  int
	name   string
	closer io.Closer     // the os.File, or nil
	raw    *countReader  // counts the bytes read from the os.File, or nil
	zr     *zstd.Decoder // to release, or nil
	br     *bufio.Reader // over the decompressed stream
	off    int64         // offset in the decompressed stream of br's next byte
	proto  string        // "pcap" or "pcapng"; "capture" until known
	codec  string        // "gzip", "zstd" or ""
	kind   int           // kindPcap or kindPcapng
	big    bool          // the byte order of the file or section is big endian
	maxCap int           // Options.MaxCaptureLen
	closed bool
	head   Packet // the packet waiting in the merge
	// uncounted is the number of blocks read since the last packet that
	// Wireshark numbers as frames although they hold no packet.
	uncounted uint64
	lastTS    time.Time

	// pcap
	recHdrLen int // 16, or 24 for the modified format
	lenSwap   int // swapNever, swapAlways or swapMaybe
	nanos     bool
	linkType  layers.LinkType

	// pcapng
	ifaces  []iface
	scratch []byte // packet data of a block too large for br, rarely used
}

// newFile sniffs src for compression and format and reads the file header.
// closer, if not nil, is closed by file.close, or by newFile if it fails.
func newFile(r *Reader, index int, name string, src io.Reader, closer io.Closer, opts Options, lim limits) (_ *file, err error) {
	f := &file{r: r, index: index, name: name, closer: closer, maxCap: opts.maxCaptureLen(), proto: "capture"}
	defer func() {
		if err != nil {
			f.close()
		}
	}()
	var magic [6]byte
	n, err := io.ReadFull(src, magic[:])
	if err != nil && err != io.EOF && err != io.ErrUnexpectedEOF {
		return nil, f.errAt(0, "capture", fmt.Errorf("read: %w", unwrapPath(err)))
	}
	if n == 0 {
		return nil, f.errAt(0, "capture", fmt.Errorf("%w: file is empty", event.ErrFormat))
	}
	in := io.MultiReader(bytes.NewReader(magic[:n]), src)
	m := magic[:n]
	switch {
	case bytes.HasPrefix(m, []byte{0x1f, 0x8b}):
		f.codec = "gzip"
		zr, err := gzip.NewReader(in)
		if err != nil {
			return nil, f.codecErr(0, err)
		}
		in = &codecReader{r: zr}
	case bytes.HasPrefix(m, []byte{0x28, 0xb5, 0x2f, 0xfd}):
		f.codec = "zstd"
		zr, err := zstd.NewReader(in,
			zstd.WithDecoderConcurrency(1),
			zstd.WithDecoderLowmem(true),
			zstd.WithDecoderMaxWindow(cmp.Or(lim.zstdWindow, maxZstdWindow)))
		if err != nil {
			return nil, f.codecErr(0, err)
		}
		f.zr = zr
		in = &codecReader{r: zr}
	default:
		for _, c := range otherCompressions {
			if bytes.HasPrefix(m, c.magic) {
				return nil, f.errAt(0, "capture", fmt.Errorf("%w: file is %s-compressed; decompress it first", event.ErrFormat, c.name))
			}
		}
	}
	bufSize := cmp.Or(lim.bufSize, f.maxCap+bufSlack)
	f.br = bufio.NewReaderSize(in, max(bufSize, f.maxCap+minSlack))
	if err := f.readFileHeader(); err != nil {
		return nil, err
	}
	return f, nil
}

// otherCompressions are formats recognised only to say why the file is not
// read.
var otherCompressions = []struct {
	name  string
	magic []byte
}{
	{"xz", []byte{0xfd, '7', 'z', 'X', 'Z', 0}},
	{"bzip2", []byte("BZh")},
	{"lz4", []byte{0x04, 0x22, 0x4d, 0x18}},
}

// readFileHeader identifies the format by its magic number and reads the
// pcap file header or the first pcapng section header.
func (f *file) readFileHeader() error {
	b, err := f.br.Peek(4)
	if len(b) < 4 {
		if len(b) == 0 && (err == io.EOF || err == nil) && f.codec != "" {
			return f.errAt(0, "capture", fmt.Errorf("%w: decompressed %s stream is empty", event.ErrFormat, f.codec))
		}
		if err == io.EOF || err == nil {
			return f.errAt(0, "capture", fmt.Errorf("%w: file has only %d bytes", event.ErrFormat, len(b)))
		}
		return f.short(0, err, "file header has %d of 4 bytes", len(b))
	}
	switch m := binary.BigEndian.Uint32(b); m {
	case 0xa1b2c3d4, 0xa1b23c4d, 0xa1b2cd34, 0xd4c3b2a1, 0x4d3cb2a1, 0x34cdb2a1:
		f.kind, f.proto = kindPcap, "pcap"
		return f.readPcapHeader()
	case ngBlockSHB:
		f.kind, f.proto = kindPcapng, "pcapng"
		return f.readSHB(0)
	default:
		if f.codec == "gzip" || f.codec == "zstd" {
			return f.errAt(0, "capture", fmt.Errorf("%w: %s stream holds neither pcap nor pcapng (starts %x)", event.ErrFormat, f.codec, b))
		}
		return f.errAt(0, "capture", fmt.Errorf("%w: file is neither pcap nor pcapng (starts %x)", event.ErrFormat, b))
	}
}

// next reads the next packet into p; it returns io.EOF at the clean end of
// the file.
func (f *file) next(p *Packet) error {
	if f.closed {
		return io.EOF
	}
	switch f.kind {
	case kindPcap:
		return f.nextPcap(p)
	default:
		return f.nextPcapng(p)
	}
}

// close releases the file; it is safe to call more than once.
func (f *file) close() error {
	if f.closed {
		return nil
	}
	f.closed = true
	f.br = nil
	f.ifaces = nil
	f.scratch = nil
	if f.zr != nil {
		f.zr.Close()
		f.zr = nil
	}
	if f.closer != nil {
		return f.closer.Close()
	}
	return nil
}

func (f *file) u16(b []byte) uint16 {
	if f.big {
		return binary.BigEndian.Uint16(b)
	}
	return binary.LittleEndian.Uint16(b)
}

func (f *file) u32(b []byte) uint32 {
	if f.big {
		return binary.BigEndian.Uint32(b)
	}
	return binary.LittleEndian.Uint32(b)
}

func (f *file) u64(b []byte) uint64 {
	if f.big {
		return binary.BigEndian.Uint64(b)
	}
	return binary.LittleEndian.Uint64(b)
}

// discard consumes n buffered or unbuffered bytes. It returns the number
// consumed, short only when the stream ends or fails.
func (f *file) discard(n int64) (int64, error) {
	var done int64
	for done < n {
		step := n - done
		if step > 1<<30 {
			step = 1 << 30
		}
		m, err := f.br.Discard(int(step))
		done += int64(m)
		f.off += int64(m)
		if err != nil {
			return done, err
		}
	}
	return done, nil
}

// errAt reports a fault at offset off found by layer proto. The Reader
// fills in Frame.
func (f *file) errAt(off int64, proto string, err error) *event.Error {
	return &event.Error{File: f.name, Offset: off, Proto: proto, Err: err}
}

// corrupt reports a record at off whose fields are impossible.
func (f *file) corrupt(off int64, format string, args ...any) error {
	return f.errAt(off, f.proto, fmt.Errorf("%w: "+format, append([]any{ErrCorrupt}, args...)...))
}

// short reports a record at off that could not be read whole because the
// stream ended or failed with err; format and args say how much was there.
func (f *file) short(off int64, err error, format string, args ...any) error {
	var ce *codecError
	switch {
	case err == nil || err == io.EOF:
		return f.errAt(off, f.proto, fmt.Errorf("%w: "+format, append([]any{event.ErrTruncated}, args...)...))
	case errors.As(err, &ce):
		return f.codecErr(off, ce.err)
	default:
		return f.errAt(off, f.proto, fmt.Errorf("read: %w", unwrapPath(err)))
	}
}

// codecErr reports a failure of the decompressor at off.
func (f *file) codecErr(off int64, err error) error {
	if err == io.ErrUnexpectedEOF || err == io.EOF {
		return f.errAt(off, f.codec, fmt.Errorf("%w: compressed stream ends early", event.ErrTruncated))
	}
	return f.errAt(off, f.codec, trimmed{err, f.codec + ": "})
}

// codecReader marks the errors of a decompressor, so that they are not
// taken for errors of the capture format.
type codecReader struct{ r io.Reader }

func (c *codecReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	if err != nil && err != io.EOF {
		err = &codecError{err}
	}
	return n, err
}

type codecError struct{ err error }

func (e *codecError) Error() string { return e.err.Error() }
func (e *codecError) Unwrap() error { return e.err }

// trimmed is err with a redundant prefix dropped from its message (the
// event.Error already names the layer).
type trimmed struct {
	err    error
	prefix string
}

func (t trimmed) Error() string { return strings.TrimPrefix(t.err.Error(), t.prefix) }
func (t trimmed) Unwrap() error { return t.err }
