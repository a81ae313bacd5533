package capture

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"

	"github.com/h2scope/h2scope/dissect/event"
)

// DefaultMaxCaptureLen is the captured length above which a packet record is
// reported as corrupt when Options.MaxCaptureLen is zero. It is libpcap's
// MAXIMUM_SNAPLEN and Wireshark's limit for all the link types h2scope
// decodes.
const DefaultMaxCaptureLen = 262144

// Secrets types of pcapng Decryption Secrets Blocks, as registered in the
// pcapng specification. Secret.Type holds one of these, or another value
// for types this package does not name.
const (
	// SecretsTLSKeyLog is an NSS key log ("TLSK"): the lines of an
	// SSLKEYLOGFILE, as the TLS dissector reads them.
	SecretsTLSKeyLog uint32 = 0x544c534b
	// SecretsSSHKeyLog is an SSH key log ("SSHK").
	SecretsSSHKeyLog uint32 = 0x5353484b
	// SecretsWireGuardKeyLog is a WireGuard key log ("WGKL").
	SecretsWireGuardKeyLog uint32 = 0x57474b4c
)

// ErrCorrupt is the cause of an *event.Error for a record whose fields are
// impossible: a length beyond the limits, a pcapng block whose trailing
// length does not repeat its leading one, a packet on an undefined
// interface.
var ErrCorrupt = errors.New("corrupt record")

// errClosed is returned by Next after Close.
var errClosed = errors.New("capture: reader closed")

// Options controls Open. The zero value is ready to use.
type Options struct {
	// MaxCaptureLen is the largest captured length accepted for one packet;
	// a longer record is an ErrCorrupt error. Each open file holds a read
	// buffer slightly larger than this. Zero (or a negative value) means
	// DefaultMaxCaptureLen.
	MaxCaptureLen int
}

func (o Options) maxCaptureLen() int {
	if o.MaxCaptureLen <= 0 {
		return DefaultMaxCaptureLen
	}
	return o.MaxCaptureLen
}

// Secret is the payload of one pcapng Decryption Secrets Block.
type Secret struct {
	// Type is the secrets type, such as SecretsTLSKeyLog.
	Type uint32
	// Data is the secrets payload, without padding. It is owned by the
	// Reader and must not be modified; it stays valid after Close.
	Data []byte
	// File is the index, in the paths given to Open, of the file the block
	// came from.
	File int
}

// Reader reads the packets of one or more capture files as one sequence
// merged by time. Its methods must not be called concurrently.
type Reader struct {
	files   []*file
	heap    []*file // files with a packet waiting in head, earliest first
	last    *file   // the file whose head Next returned last, not yet advanced
	pending []error // faults found but not yet returned, in file order
	frame   uint64  // number of the last frame returned
	primed  bool
	closed  bool

	secrets     []Secret
	secretBytes int
}

// Stdin is the path that makes Open read standard input, which is read
// as it comes (a pipe is fine: nothing is sought), in any format a file
// may have; StdinName names it in errors.
const (
	Stdin     = "-"
	StdinName = "standard input"
)

// Open opens the capture files at paths for reading as one merged sequence;
// see the package documentation for the formats read and the order of the
// packets. The file at paths[i] is Packet.File i.
//
// Open reads each file's header. It fails, closing any file it opened, when
// a file cannot be opened, is empty, is not a capture, or has a damaged file
// header: the error is an *event.Error naming the file. A path "-" ([Stdin])
// reads standard input; at most one may be given. Faults further into
// a file are reported by Next.
func Open(paths []string, opts Options) (*Reader, error) {
	if len(paths) == 0 {
		return nil, errors.New("capture: no input files")
	}
	r := &Reader{}
	stdin := false
	for i, p := range paths {
		var fh io.ReadCloser
		name := p
		if p == Stdin {
			if stdin {
				r.Close()
				return nil, errors.New("capture: standard input (-) given twice")
			}
			stdin = true
			fh, name = io.NopCloser(os.Stdin), StdinName
		} else {
			h, err := os.Open(p)
			if err != nil {
				r.Close()
				return nil, &event.Error{File: p, Offset: -1, Err: fmt.Errorf("open: %w", unwrapPath(err))}
			}
			fh = h
		}
		raw := &countReader{r: fh}
		f, err := newFile(r, i, name, raw, fh, opts, limits{})
		if err != nil {
			r.Close()
			return nil, err
		}
		f.raw = raw
		r.files = append(r.files, f)
	}
	return r, nil
}

// openReaders is Open over already open streams, for tests and fuzzing.
func openReaders(srcs []io.Reader, names []string, opts Options, lim limits) (*Reader, error) {
	r := &Reader{}
	for i, src := range srcs {
		f, err := newFile(r, i, names[i], src, nil, opts, lim)
		if err != nil {
			r.Close()
			return nil, err
		}
		r.files = append(r.files, f)
	}
	return r, nil
}

// Next returns the next packet of the merged sequence. The Packet and its
// Data are owned by the Reader and valid only until the next call to Next
// or Close; copy what must outlive that.
//
// At the end of all files Next returns io.EOF, and keeps returning it.
//
// Any other error is an *event.Error for one file: that file ended with a
// fault (truncated, corrupt, or unreadable). Every packet of that file
// before the fault has been returned; the error comes right after the last
// of them, and its Frame is the number the next frame would have been given
// (exact for a single file). The faulty file is closed and yields nothing
// more, but the Reader is still usable: calling Next again goes on with the
// other files, and reaches io.EOF once they are done. Each fault is
// returned once. A caller that wants to stop at the first fault simply
// stops calling Next.
func (r *Reader) Next() (*Packet, error) {
	if r.closed {
		return nil, errClosed
	}
	if !r.primed {
		r.primed = true
		for _, f := range r.files {
			r.fill(f)
		}
	} else if f := r.last; f != nil {
		r.last = nil
		r.refill(f)
	}
	if len(r.pending) > 0 {
		err := r.pending[0]
		r.pending = r.pending[1:]
		return nil, err
	}
	if len(r.heap) == 0 {
		return nil, io.EOF
	}
	f := r.heap[0]
	r.frame += f.uncounted + 1
	f.uncounted = 0
	f.head.Frame = r.frame
	r.last = f
	return &f.head, nil
}

// fill reads the first packet of f and queues f in the merge.
func (r *Reader) fill(f *file) {
	if err := f.next(&f.head); err != nil {
		r.finish(f, err)
		return
	}
	r.heap = append(r.heap, f)
	r.up(len(r.heap) - 1)
}

// refill advances f, which is at the top of the merge, to its next packet.
func (r *Reader) refill(f *file) {
	if err := f.next(&f.head); err != nil {
		n := len(r.heap) - 1
		r.heap[0] = r.heap[n]
		r.heap[n] = nil
		r.heap = r.heap[:n]
		r.down(0)
		r.finish(f, err)
		return
	}
	r.down(0)
}

// finish closes f after its last packet, keeping the fault if there was one.
func (r *Reader) finish(f *file, err error) {
	f.close()
	var e *event.Error
	if errors.As(err, &e) && e.Frame == 0 {
		e.Frame = r.frame + f.uncounted + 1
	}
	r.frame += f.uncounted
	f.uncounted = 0
	if err == io.EOF {
		return
	}
	r.pending = append(r.pending, err)
}

// before reports whether a's waiting packet comes before b's in the merge:
// the earlier timestamp first and, as in mergecap and Wireshark's merge
// (Wireshark 4.0's merge_read_packet), the file given later first when the
// timestamps are equal.
func before(a, b *file) bool {
	if c := a.head.TS.Compare(b.head.TS); c != 0 {
		return c < 0
	}
	return a.index > b.index
}

func (r *Reader) up(i int) {
	h := r.heap
	for i > 0 {
		p := (i - 1) / 2
		if !before(h[i], h[p]) {
			return
		}
		h[i], h[p] = h[p], h[i]
		i = p
	}
}

func (r *Reader) down(i int) {
	h := r.heap
	for {
		l := 2*i + 1
		if l >= len(h) {
			return
		}
		m := l
		if rt := l + 1; rt < len(h) && before(h[rt], h[l]) {
			m = rt
		}
		if !before(h[m], h[i]) {
			return
		}
		h[i], h[m] = h[m], h[i]
		i = m
	}
}

// Secrets returns the payloads of all the pcapng Decryption Secrets Blocks
// read so far, from all files, in the order they were read. Because the
// Reader reads each file up to its next packet before returning anything
// from it, a block that precedes a packet in its file is in Secrets by the
// time Next returns that packet. The returned slice only ever grows; its
// elements are never modified.
func (r *Reader) Secrets() []Secret { return r.secrets }

// BytesRead returns the number of bytes read so far from the files as they
// are stored (compressed bytes for .gz and .zst files), summed over all
// files; with the files' sizes it measures progress. It runs ahead of the
// packets returned by up to a read buffer per file, and stays valid after
// Close.
func (r *Reader) BytesRead() int64 {
	var n int64
	for _, f := range r.files {
		if f.raw != nil {
			n += f.raw.n
		}
	}
	return n
}

// countReader counts the bytes read through it.
type countReader struct {
	r io.Reader
	n int64
}

func (c *countReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

// Close closes all files. Packet data returned by Next is invalid
// afterwards; Secrets stay valid. Close returns the first error from closing
// a file, and may be called more than once.
func (r *Reader) Close() error {
	var first error
	for _, f := range r.files {
		if err := f.close(); err != nil && first == nil {
			first = err
		}
	}
	r.closed = true
	r.heap = nil
	r.last = nil
	r.pending = nil
	return first
}

// unwrapPath strips the *fs.PathError around err: the path is already in
// the event.Error that reports it.
func unwrapPath(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}
