package slice

import "bytes"

// HTTP/2 frame types the framer tells apart.
const (
	frameData         = 0x0
	framePriority     = 0x2
	frameRSTStream    = 0x3
	frameSettings     = 0x4
	frameWindowUpdate = 0x8
)

// preface is the HTTP/2 client connection preface (RFC 9113 section 3.4).
var preface = []byte("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n")

// framer follows the HTTP/2 frame boundaries of one direction of a
// cleartext connection, segment by segment, to tell which segments a
// stream slice may leave out: those that start and end on a frame
// boundary and hold only frames that change no decoding state (DATA,
// PRIORITY, RST_STREAM, WINDOW_UPDATE) of other streams. Anything it
// cannot follow (TLS, HTTP/1, an upgrade, a gap, a segment cut by the
// snap length) makes it give up, and every later segment is kept.
type framer struct {
	state  framerState
	next   uint32 // sequence number expected next
	skip   int    // preface bytes still to pass
	need   int    // payload bytes left in the current frame
	hdr    [9]byte
	nhdr   int
	typ    byte
	stream uint32
}

type framerState uint8

const (
	framerStart framerState = iota
	framerSynced
	framerLost
)

// segment follows one segment of the direction and reports whether a
// slice of the streams keep may leave it out.
func (f *framer) segment(seq uint32, payload []byte, payloadLen int, c2s bool, keep func(uint32) bool) (droppable bool) {
	if payloadLen == 0 || f.state == framerLost {
		return false
	}
	if len(payload) < payloadLen {
		f.state = framerLost
		return false
	}
	switch f.state {
	case framerStart:
		switch {
		case c2s && bytes.HasPrefix(payload, preface):
			f.skip = len(preface)
		case !c2s && len(payload) >= 9 && payload[3] == frameSettings && payload[5]&0x7f|payload[6]|payload[7]|payload[8] == 0:
		default:
			f.state = framerLost
			return false
		}
		f.state, f.next = framerSynced, seq
	case framerSynced:
		if seq != f.next {
			if int32(seq+uint32(payloadLen)-f.next) <= 0 {
				return false // a retransmission of bytes already followed
			}
			f.state = framerLost
			return false
		}
	}
	f.next = seq + uint32(payloadLen)
	aligned := f.skip == 0 && f.need == 0 && f.nhdr == 0
	droppable = aligned
	touch := func() {
		switch f.typ {
		case frameData, framePriority, frameRSTStream, frameWindowUpdate:
			if f.stream != 0 && !keep(f.stream) {
				return
			}
		}
		droppable = false
	}
	b := payload
	for len(b) > 0 {
		switch {
		case f.skip > 0:
			n := min(f.skip, len(b))
			f.skip -= n
			b = b[n:]
		case f.need > 0:
			n := min(f.need, len(b))
			f.need -= n
			b = b[n:]
			touch()
		default:
			n := copy(f.hdr[f.nhdr:], b)
			f.nhdr += n
			b = b[n:]
			if f.nhdr < len(f.hdr) {
				droppable = false // a header cut across segments
				continue
			}
			f.nhdr = 0
			f.need = int(f.hdr[0])<<16 | int(f.hdr[1])<<8 | int(f.hdr[2])
			f.typ = f.hdr[3]
			f.stream = (uint32(f.hdr[5])&0x7f)<<24 | uint32(f.hdr[6])<<16 | uint32(f.hdr[7])<<8 | uint32(f.hdr[8])
			touch()
		}
	}
	return droppable && f.skip == 0 && f.need == 0 && f.nhdr == 0
}
