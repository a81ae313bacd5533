package slice

import (
	"bufio"
	"encoding/binary"
	"io"
)

// writer writes a pcapng file of one little-endian section.
type writer struct {
	w      *bufio.Writer
	ifaces map[ifaceKey]uint32 // source interface -> output interface
	err    error
}

func newWriter(w io.Writer) *writer {
	return &writer{w: bufio.NewWriter(w), ifaces: map[ifaceKey]uint32{}}
}

// maxOption is the longest option value pcapng can hold.
const maxOption = 0xffff

// block writes one block of type typ whose body (after the type and
// length, before the trailing length) is body, padded.
func (w *writer) block(typ uint32, body []byte) {
	if w.err != nil {
		return
	}
	total := uint32(12 + len(body) + pad(len(body)))
	var h [8]byte
	binary.LittleEndian.PutUint32(h[0:4], typ)
	binary.LittleEndian.PutUint32(h[4:8], total)
	w.w.Write(h[:])
	w.w.Write(body)
	w.w.Write(make([]byte, pad(len(body))))
	_, w.err = w.w.Write(h[4:8])
}

// commentOptions encodes comments as opt_comment options, each cut to
// the longest an option holds.
func commentOptions(b []byte, comments []string) []byte {
	for _, c := range comments {
		if len(c) > maxOption {
			c = c[:maxOption]
		}
		b = appendOption(b, optComment, []byte(c))
	}
	return b
}

// endOptions closes an option list; an empty list needs no end marker.
func endOptions(b []byte) []byte {
	if len(b) == 0 {
		return b
	}
	return append(b, 0, 0, 0, 0)
}

// shb writes the section header: version 1.0, unknown section length,
// the comments and shb_userappl.
func (w *writer) shb(comments []string, userappl string) {
	b := binary.LittleEndian.AppendUint32(nil, byteOrderMagic)
	b = binary.LittleEndian.AppendUint16(b, 1)
	b = binary.LittleEndian.AppendUint16(b, 0)
	b = binary.LittleEndian.AppendUint64(b, ^uint64(0))
	opts := commentOptions(nil, comments)
	opts = appendOption(opts, 4, []byte(userappl)) // shb_userappl
	w.block(blockSHB, append(b, endOptions(opts)...))
}

// secretsTLS is the Decryption Secrets Block type of an NSS key log.
const secretsTLS = 0x544c534b

// dsb writes a Decryption Secrets Block holding an NSS key log.
func (w *writer) dsb(keylog []byte) {
	b := binary.LittleEndian.AppendUint32(nil, secretsTLS)
	b = binary.LittleEndian.AppendUint32(b, uint32(len(keylog)))
	b = append(b, keylog...)
	b = append(b, make([]byte, pad(len(keylog)))...)
	w.block(blockDSB, b)
}

// iface returns the output interface of source interface k, writing its
// Interface Description Block the first time.
func (w *writer) iface(k ifaceKey, f iface) uint32 {
	if id, ok := w.ifaces[k]; ok {
		return id
	}
	id := uint32(len(w.ifaces))
	w.ifaces[k] = id
	b := binary.LittleEndian.AppendUint16(nil, f.linkType)
	b = binary.LittleEndian.AppendUint16(b, 0)
	b = binary.LittleEndian.AppendUint32(b, f.snapLen)
	w.block(blockIDB, append(b, endOptions(f.options)...))
	return id
}

// packet writes an Enhanced Packet Block.
func (w *writer) packet(ifc uint32, ts uint64, data []byte, origLen int, options []byte) {
	b := binary.LittleEndian.AppendUint32(nil, ifc)
	b = binary.LittleEndian.AppendUint32(b, uint32(ts>>32))
	b = binary.LittleEndian.AppendUint32(b, uint32(ts))
	b = binary.LittleEndian.AppendUint32(b, uint32(len(data)))
	b = binary.LittleEndian.AppendUint32(b, uint32(origLen))
	b = append(b, data...)
	b = append(b, make([]byte, pad(len(data)))...)
	w.block(blockEPB, append(b, endOptions(options)...))
}

// flush writes what is buffered.
func (w *writer) flush() error {
	if w.err != nil {
		return w.err
	}
	return w.w.Flush()
}
