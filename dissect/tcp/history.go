package tcp

import (
	"github.com/h2scope/h2scope/dissect/event"
	"github.com/h2scope/h2scope/dissect/layer"
)

// history builds Zeek's conn.log history string.
type history struct {
	b []byte
	// once records a, d, i, q per direction (bits 0..3).
	once [2]uint8
	// logN counts g, t, w per direction; the letter is written at
	// occurrences 1, 10, 100, ...
	logN [2][3]uint64
	// last holds the sequence number of the last s, h, f, r per direction.
	last    [2][4]uint32
	lastSet [2][4]bool
}

const (
	histOnceA = iota
	histOnceD
	histOnceI
	histOnceQ
)

const (
	histLogGap = iota
	histLogRetrans
	histLogZeroWin
)

func histLetter(dir event.Dir, c byte) byte {
	if dir == event.C2S {
		return c - 'a' + 'A'
	}
	return c
}

func (h *history) onceLetter(dir event.Dir, bit int, c byte) {
	if h.once[dir]&(1<<bit) == 0 {
		h.once[dir] |= 1 << bit
		h.b = append(h.b, histLetter(dir, c))
	}
}

func (h *history) logLetter(dir event.Dir, i int, c byte) {
	h.logN[dir][i]++
	n := h.logN[dir][i]
	for n%10 == 0 {
		n /= 10
	}
	if n == 1 {
		h.b = append(h.b, histLetter(dir, c))
	}
}

func (h *history) seqLetter(dir event.Dir, i int, c byte, seq uint32) {
	if h.lastSet[dir][i] && h.last[dir][i] == seq {
		return
	}
	h.lastSet[dir][i] = true
	h.last[dir][i] = seq
	h.b = append(h.b, histLetter(dir, c))
}

// segment records one segment's letters.
func (h *history) segment(dir event.Dir, s *layer.Segment, a Analysis) {
	f := s.Flags
	if f.Has(layer.SYN) && f&(layer.RST|layer.FIN) != 0 {
		h.onceLetter(dir, histOnceI, 'i')
	}
	switch {
	case f.Has(layer.SYN | layer.ACK):
		h.seqLetter(dir, 1, 'h', s.Seq)
	case f.Has(layer.SYN):
		h.seqLetter(dir, 0, 's', s.Seq)
	}
	if f.Has(layer.FIN) {
		h.seqLetter(dir, 2, 'f', s.Seq)
	}
	if f.Has(layer.RST) {
		h.seqLetter(dir, 3, 'r', s.Seq)
	}
	if s.PayloadLen > 0 {
		h.onceLetter(dir, histOnceD, 'd')
	} else if f&(layer.SYN|layer.FIN|layer.RST) == 0 && f.Has(layer.ACK) {
		h.onceLetter(dir, histOnceA, 'a')
	}
	if s.PayloadLen > 0 && a.IsRetransmission() {
		h.logLetter(dir, histLogRetrans, 't')
	}
	if a.Has(ZeroWindow) {
		h.logLetter(dir, histLogZeroWin, 'w')
	}
}

// gap records a content gap.
func (h *history) gap(dir event.Dir) { h.logLetter(dir, histLogGap, 'g') }

// flipped marks a connection whose direction was chosen by heuristic.
func (h *history) flipped() { h.b = append(h.b, '^') }

func (h *history) String() string { return string(h.b) }

// Endpoint states, after Zeek's TCP analyzer.
type epState uint8

const (
	epInactive epState = iota
	epSynSent
	epSynAckSent
	epPartial
	epEstablished
	epClosed
	epReset
)

// connState derives Zeek's conn_state from the endpoint states.
func (c *Conn) connState() string {
	os, rs := c.ep[event.C2S], c.ep[event.S2C]
	oInactive := os == epInactive || os == epPartial
	rInactive := rs == epInactive || rs == epPartial
	switch {
	case rs == epReset:
		if os == epSynSent || os == epSynAckSent || (os == epReset && c.Bytes.C2S == 0 && c.Bytes.S2C == 0) {
			return "REJ"
		}
		if oInactive {
			return "RSTRH"
		}
		return "RSTR"
	case os == epReset:
		if rInactive {
			if c.sawSYN[event.C2S] && !c.sawSYN[event.S2C] {
				return "RSTOS0"
			}
			return "OTH"
		}
		return "RSTO"
	case rs == epClosed && os == epClosed:
		return "SF"
	case os == epClosed:
		if rInactive {
			return "SH"
		}
		return "S2"
	case rs == epClosed:
		if oInactive {
			return "SHR"
		}
		return "S3"
	case os == epSynSent && rs == epInactive:
		return "S0"
	case os == epEstablished && rs == epEstablished:
		return "S1"
	}
	return "OTH"
}

// updateState advances the endpoint state of dir's sender for one segment.
func (c *Conn) updateState(dir event.Dir, f layer.Flags) {
	e := &c.ep[dir]
	peer := c.ep[dir.Reverse()]
	switch {
	case f.Has(layer.RST):
		*e = epReset
		return
	case *e == epReset:
		return
	case f.Has(layer.FIN):
		*e = epClosed
		return
	case *e == epClosed:
		return
	case f.Has(layer.SYN | layer.ACK):
		if *e == epInactive || *e == epPartial {
			*e = epSynAckSent
		}
	case f.Has(layer.SYN):
		if *e == epInactive || *e == epPartial {
			*e = epSynSent
		}
	case *e == epInactive:
		*e = epPartial
	case (*e == epSynSent || *e == epSynAckSent) && f.Has(layer.ACK) && peer != epInactive && peer != epPartial:
		*e = epEstablished
		if p := &c.ep[dir.Reverse()]; *p == epSynSent || *p == epSynAckSent {
			*p = epEstablished
		}
	}
}
