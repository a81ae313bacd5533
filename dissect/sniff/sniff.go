// Package sniff recognises a connection's application protocol from the
// first bytes of its streams, not from port numbers.
//
// # What it recognises
//
//   - the HTTP/2 client connection preface;
//   - HTTP/2 frames when a capture starts mid-connection: a chain of
//     plausible frame headers starting at the first byte;
//   - an HTTP/1.x request line or status line;
//   - a TLS record header (handshake, alert, change cipher spec or
//     application data with a plausible version and length).
//
// Detect never guesses from too few bytes: it says how many more it needs.
package sniff

import (
	"bytes"
	"encoding/binary"

	"github.com/h2scope/h2scope/dissect/event"
)

// Preface is the HTTP/2 client connection preface (RFC 9113 §3.4).
const Preface = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"

// Verdict is what Detect concluded.
type Verdict struct {
	// Proto is the protocol recognised, ProtoUnknown when none.
	Proto event.Proto
	// Preface is set for HTTP/2 when the bytes start with the client
	// connection preface (rather than mid-connection frames).
	Preface bool
	// More is set when the bytes are a prefix of something recognisable:
	// call again with more bytes. Proto is then ProtoUnknown.
	More bool
}

// maxH2Frame bounds a plausible HTTP/2 frame length when the peer's
// SETTINGS_MAX_FRAME_SIZE is unknown (RFC 9113 allows up to 2^24-1).
const maxH2Frame = 1 << 24

// Detect classifies the first bytes of one direction of a connection.
func Detect(b []byte) Verdict {
	if len(b) == 0 {
		return Verdict{More: true}
	}
	switch {
	case hasPrefixOrIsPrefix(b, Preface):
		if len(b) < len(Preface) {
			return Verdict{More: true}
		}
		return Verdict{Proto: event.ProtoHTTP2, Preface: true}
	}
	if v, ok := tlsRecord(b); ok {
		return v
	}
	if _, ok, more := SSLv2ClientHello(b); ok {
		if more {
			return Verdict{More: true}
		}
		return Verdict{Proto: event.ProtoTLS}
	}
	if v, ok := http1Line(b); ok {
		return v
	}
	return h2Frames(b)
}

func hasPrefixOrIsPrefix(b []byte, p string) bool {
	n := min(len(b), len(p))
	return string(b[:n]) == p[:n]
}

// SSLv2ClientHello returns the length of the SSL 2.0-format record b
// starts with when it is a ClientHello (RFC 5246 appendix E.2: a 2-byte
// header with the high bit set, msg_type 1, a version, and lengths that
// add up); ok is false when b
// is not one, more is true when b is too short to tell.
func SSLv2ClientHello(b []byte) (n int, ok, more bool) {
	if len(b) == 0 || b[0]&0x80 == 0 {
		return 0, false, false
	}
	if len(b) < 11 {
		return 0, true, true
	}
	n = int(b[0]&0x7f)<<8 | int(b[1])
	specs := int(b[5])<<8 | int(b[6])
	sid := int(b[7])<<8 | int(b[8])
	chal := int(b[9])<<8 | int(b[10])
	switch {
	case b[2] != 1, // CLIENT-HELLO
		b[3] != 0 && b[3] != 3, b[3] == 0 && b[4] != 2, b[3] == 3 && b[4] > 4,
		specs == 0 || specs%3 != 0,
		sid != 0 && sid != 16,
		chal < 16 || chal > 32,
		n != 9+specs+sid+chal:
		return 0, false, false
	}
	return n, true, false
}

// tlsRecord recognises a TLS (or SSL 3.0) record header.
func tlsRecord(b []byte) (Verdict, bool) {
	if b[0] < 20 || b[0] > 23 {
		return Verdict{}, false
	}
	if len(b) < 5 {
		if len(b) >= 2 && b[1] != 3 {
			return Verdict{}, false
		}
		return Verdict{More: true}, true
	}
	if b[1] != 3 || b[2] > 4 {
		return Verdict{}, false
	}
	n := int(binary.BigEndian.Uint16(b[3:]))
	if n == 0 || n > 1<<14+2048 {
		return Verdict{}, false
	}
	if b[0] == 22 && len(b) > 5 && (b[5] == 0 || b[5] > 24) && b[5] != 254 {
		// Handshake messages: 1 ClientHello .. 24 KeyUpdate; a record that
		// is encrypted under a renegotiation may hold anything, so only
		// the first record of a direction is held to this.
		return Verdict{}, false
	}
	return Verdict{Proto: event.ProtoTLS}, true
}

var methods = []string{"GET ", "POST ", "PUT ", "HEAD ", "DELETE ", "OPTIONS ", "PATCH ", "CONNECT ", "TRACE ",
	"PROPFIND ", "PROPPATCH ", "MKCOL ", "COPY ", "MOVE ", "LOCK ", "UNLOCK ", "REPORT ", "SEARCH ", "PURGE "}

// http1Line recognises an HTTP/1.x request or status line start.
func http1Line(b []byte) (Verdict, bool) {
	if hasPrefixOrIsPrefix(b, "HTTP/1.") {
		if len(b) < len("HTTP/1.x ") {
			return Verdict{More: true}, true
		}
		if (b[7] == '0' || b[7] == '1') && b[8] == ' ' {
			return Verdict{Proto: event.ProtoHTTP1}, true
		}
		return Verdict{}, false
	}
	prefix := false
	for _, m := range methods {
		if hasPrefixOrIsPrefix(b, m) {
			if len(b) < len(m) {
				prefix = true
				continue
			}
			// The request line must end with " HTTP/1.x" before CRLF.
			line := b
			if i := bytes.IndexByte(b, '\n'); i >= 0 {
				line = b[:i]
			} else if len(b) < 8192 {
				return Verdict{More: true}, true
			}
			line = bytes.TrimSuffix(line, []byte("\r"))
			if i := bytes.LastIndexByte(line, ' '); i > len(m)-1 && bytes.HasPrefix(line[i+1:], []byte("HTTP/1.")) {
				return Verdict{Proto: event.ProtoHTTP1}, true
			}
			return Verdict{}, false
		}
	}
	if prefix {
		return Verdict{More: true}, true
	}
	return Verdict{}, false
}

// h2Frames recognises a chain of HTTP/2 frame headers from the first byte:
// at least three frames, or every complete frame in b when fewer fit and
// the last header is cut.
func h2Frames(b []byte) Verdict {
	const need = 3
	frames := 0
	for off := 0; ; {
		if len(b)-off < 9 {
			if frames > 0 && len(b)-off == 0 && frames >= need {
				return Verdict{Proto: event.ProtoHTTP2}
			}
			return Verdict{More: frames > 0 || len(b) < 9}
		}
		n, ok := PlausibleFrameHeader(b[off:])
		if !ok {
			return Verdict{}
		}
		frames++
		if frames >= need {
			return Verdict{Proto: event.ProtoHTTP2}
		}
		off += 9 + n
		if off > len(b) {
			// The payload runs past what we have: ask for more, unless
			// the chain is already long enough to be sure.
			return Verdict{More: true}
		}
	}
}

// PlausibleFrameHeader reports whether the 9 bytes at the start of h can be
// an HTTP/2 frame header of one of the RFC 9113 frame types, with the
// stream-id and length rules of that type; it returns the payload length.
func PlausibleFrameHeader(h []byte) (int, bool) {
	if len(h) < 9 {
		return 0, false
	}
	n := int(h[0])<<16 | int(h[1])<<8 | int(h[2])
	typ, flags := h[3], h[4]
	sid := binary.BigEndian.Uint32(h[5:]) & 0x7fffffff
	if h[5]&0x80 != 0 || n >= maxH2Frame {
		return 0, false
	}
	switch typ {
	case 0x0: // DATA
		return n, sid != 0 && flags&^0x09 == 0
	case 0x1: // HEADERS
		return n, sid != 0 && flags&^0x2d == 0
	case 0x2: // PRIORITY
		return n, sid != 0 && n == 5 && flags == 0
	case 0x3: // RST_STREAM
		return n, sid != 0 && n == 4 && flags == 0
	case 0x4: // SETTINGS
		return n, sid == 0 && n%6 == 0 && flags&^0x1 == 0 && (flags == 0 || n == 0)
	case 0x5: // PUSH_PROMISE
		return n, sid != 0 && n >= 4 && flags&^0x0c == 0
	case 0x6: // PING
		return n, sid == 0 && n == 8 && flags&^0x1 == 0
	case 0x7: // GOAWAY
		return n, sid == 0 && n >= 8 && flags == 0
	case 0x8: // WINDOW_UPDATE
		return n, n == 4 && flags == 0
	case 0x9: // CONTINUATION
		return n, sid != 0 && flags&^0x4 == 0
	}
	return 0, false
}

// Resync looks for HTTP/2 frames in bytes that start in the middle of a
// connection, possibly inside a frame: it returns the first offset at which
// at least three complete, plausible frame headers follow one another.
// Three whole frames whose types, flags, stream ids and lengths all fit
// their RFC 9113 rules make a false match on other data very unlikely.
func Resync(b []byte) (off int, ok bool) {
	for off = 0; off+9 <= len(b); off++ {
		if chain(b[off:]) >= 3 {
			return off, true
		}
	}
	return 0, false
}

// chain counts the complete plausible frames that follow each other from
// the start of b.
func chain(b []byte) int {
	n := 0
	for off := 0; ; n++ {
		l, ok := PlausibleFrameHeader(b[off:])
		if !ok || off+9+l > len(b) {
			return n
		}
		off += 9 + l
	}
}
