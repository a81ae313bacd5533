package tcp

import (
	"strings"
	"time"

	"github.com/h2scope/h2scope/dissect/layer"
)

// Analysis is the set of Wireshark TCP analysis flags a segment carries. The
// names match tshark's tcp.analysis.* fields.
type Analysis uint32

// Analysis flags.
const (
	// Retransmission: the segment carries data (or SYN/FIN) below the
	// highest sequence number already seen in its direction.
	Retransmission Analysis = 1 << iota
	// FastRetransmission: a retransmission within 20 ms of the second or
	// later duplicate ACK asking for it.
	FastRetransmission
	// SpuriousRetransmission: a retransmission of data the receiver had
	// already acknowledged.
	SpuriousRetransmission
	// OutOfOrder: a segment below the highest sequence number, arriving
	// sooner than the connection's initial RTT (3 ms when unknown) after it.
	OutOfOrder
	// LostSegment: the segment starts beyond the next expected sequence
	// number: the capture missed the previous segment.
	LostSegment
	// AckLostSegment: the segment acknowledges data the capture never saw.
	AckLostSegment
	// DuplicateACK: a bare ACK repeating the previous ACK, window and
	// sequence number of its direction.
	DuplicateACK
	// ZeroWindow: the sender advertises a receive window of zero.
	ZeroWindow
	// ZeroWindowProbe: one byte sent into a zero window.
	ZeroWindowProbe
	// ZeroWindowProbeACK: the answer to a zero-window probe.
	ZeroWindowProbeACK
	// WindowFull: the segment fills the receiver's advertised window.
	WindowFull
	// WindowUpdate: a bare ACK that only changes the advertised window.
	WindowUpdate
	// KeepAlive: zero or one byte one below the next expected sequence
	// number.
	KeepAlive
	// KeepAliveACK: the answer to a keep-alive.
	KeepAliveACK
	// ReusedPorts: a SYN on a 4-tuple that already carried a connection.
	ReusedPorts
	// CaptureDuplicate is not a tshark flag, and String does not name
	// it: it marks a retransmission that repeats the direction's latest
	// segment, with the same acknowledgement number, sooner than the
	// connection's initial RTT (3 ms when unknown) and 2 ms after it,
	// which no sender does (its timer is far longer, and a fast
	// retransmission waits for duplicate ACKs, a round trip):
	// the same packet captured twice (two interfaces, a mirror port). It
	// keeps its retransmission flag, as tshark shows it, but is not the
	// network's loss.
	CaptureDuplicate
)

var analysisNames = [...]string{
	"retransmission", "fast_retransmission", "spurious_retransmission",
	"out_of_order", "lost_segment", "ack_lost_segment", "duplicate_ack",
	"zero_window", "zero_window_probe", "zero_window_probe_ack",
	"window_full", "window_update", "keep_alive", "keep_alive_ack",
	"reused_ports",
}

// Has reports whether all flags in f are set.
func (a Analysis) Has(f Analysis) bool { return a&f == f }

// IsRetransmission reports whether tshark would show tcp.analysis.retransmission
// for the segment: plain, fast and spurious retransmissions all count.
func (a Analysis) IsRetransmission() bool {
	return a&(Retransmission|FastRetransmission|SpuriousRetransmission) != 0
}

// String lists the flags by their tshark names, joined by "|".
func (a Analysis) String() string {
	var b strings.Builder
	for i, n := range analysisNames {
		if a&(1<<i) != 0 {
			if b.Len() > 0 {
				b.WriteByte('|')
			}
			b.WriteString(n)
		}
	}
	return b.String()
}

// Window-scale states, as Wireshark keeps them.
// dupAckLost is the duplicate-ACK count that marks a side whose unseen
// segment was reported ACKed (-1 in Wireshark's unsigned counter).
const dupAckLost = ^uint32(0)

const (
	wsUnknown = -1 // no SYN seen for this side: scale unknown
	wsNone    = -2 // handshake seen without (mutual) window scaling
)

// seqInfo is one direction's sequence analysis state, following the
// definitions of Wireshark's TCP analysis (see the Wireshark User's Guide,
// "TCP Analysis"). A nextseq of 0 means "not yet known", as there.
type seqInfo struct {
	baseSeq   uint32
	baseSet   bool
	nextseq   uint32
	nextseqTS time.Time
	maxToAck  uint32
	lastack   uint32
	lastackTS time.Time
	window    uint32 // raw window field of the last segment
	winScale  int8
	// firstAck is set by a SYN and cleared by the first pure ACK: until
	// then the side's window is not scaled.
	firstAck  bool
	lastFlags Analysis
	dupacks   uint32
}

func seqLT(a, b uint32) bool { return int32(a-b) < 0 }
func seqGT(a, b uint32) bool { return int32(a-b) > 0 }
func seqLE(a, b uint32) bool { return int32(a-b) <= 0 }

// analyze classifies one segment travelling fwd (rev is the other
// direction), updating both states, and returns its flags. irtt is the
// connection's initial RTT, zero when unknown.
func analyze(fwd, rev *seqInfo, s *layer.Segment, ts time.Time, irtt time.Duration) Analysis {
	var a Analysis
	seq, ack := s.Seq, s.Ack
	seglen := uint32(s.PayloadLen)
	win := uint32(s.Win)
	fl := s.Flags
	synFinRst := fl&(layer.SYN|layer.FIN|layer.RST) != 0

	if !fwd.baseSet {
		if fl.Has(layer.SYN) {
			fwd.baseSeq = seq
		} else {
			fwd.baseSeq = seq - 1
		}
		fwd.baseSet = true
	}
	if !rev.baseSet && fl.Has(layer.ACK) {
		rev.baseSeq = ack - 1
		rev.baseSet = true
	}

	// A side that has sent nothing yet has window 0, as in Wireshark.
	if seglen == 1 && seq == fwd.nextseq && rev.window == 0 {
		a |= ZeroWindowProbe
		goto finishedFwd
	}
	if win == 0 && !synFinRst {
		a |= ZeroWindow
	}
	if fwd.nextseq != 0 && seqGT(seq, fwd.nextseq) && !fl.Has(layer.RST) {
		a |= LostSegment
	}
	if (seglen == 0 || seglen == 1) && seq == fwd.nextseq-1 && !synFinRst {
		a |= KeepAlive
	}
	if seglen == 0 && win != 0 && win != fwd.window && seq == fwd.nextseq && ack == fwd.lastack && !synFinRst {
		a |= WindowUpdate
	}
	if seglen > 0 && rev.winScale != wsUnknown && !synFinRst {
		shift := uint(0)
		if !rev.firstAck && rev.winScale >= 0 {
			shift = uint(rev.winScale)
		}
		if seq+seglen == rev.lastack+(rev.window<<shift) {
			a |= WindowFull
		}
	}
	if seglen == 0 && win != 0 && win == fwd.window && seq == fwd.nextseq && ack == fwd.lastack && rev.lastFlags&KeepAlive != 0 && !synFinRst {
		a |= KeepAliveACK
		goto finishedFwd
	}
	if seglen == 0 && win == 0 && win == fwd.window && seq == fwd.nextseq && ack == fwd.lastack && rev.lastFlags&ZeroWindowProbe != 0 && !synFinRst {
		a |= ZeroWindowProbeACK
		goto finishedFwd
	}
	if seglen == 0 && win != 0 && win == fwd.window && seq == fwd.nextseq && ack == fwd.lastack && !synFinRst {
		if fwd.dupacks == dupAckLost {
			fwd.dupacks = 1
		} else {
			fwd.dupacks++
		}
		a |= DuplicateACK
	}

finishedFwd:
	if ack != fwd.lastack {
		fwd.dupacks = 0
	}
	if rev.maxToAck != 0 && seqGT(ack, rev.maxToAck) && fl.Has(layer.ACK) {
		if seqLT(rev.maxToAck, rev.nextseq) {
			rev.maxToAck = rev.nextseq
			a |= AckLostSegment
		} else {
			// The other side is stalled: report the unseen bytes once,
			// until it sends an ACK of its own. Wireshark marks this with
			// a duplicate-ACK count of -1 in an unsigned field, which
			// also satisfies its ">= 2 duplicate ACKs" test for fast
			// retransmissions; we keep that behaviour to count alike.
			if rev.dupacks == 0 {
				a |= AckLostSegment
			}
			rev.dupacks = dupAckLost
		}
	}

	if seglen > 0 || fl&(layer.SYN|layer.FIN) != 0 {
		a = classifyRetransmission(a, fwd, rev, seq, ack, seglen, fl, ts, irtt)
	}

	nextseq := seq + seglen
	if fl&(layer.SYN|layer.FIN) != 0 {
		nextseq++
	}
	if seqGT(nextseq, fwd.nextseq) || fwd.nextseq == 0 {
		if a&ZeroWindowProbe == 0 {
			fwd.nextseq = nextseq
			fwd.nextseqTS = ts
		}
	}
	if seq == fwd.maxToAck || fwd.maxToAck == 0 {
		if a&ZeroWindowProbe == 0 {
			fwd.maxToAck = fwd.nextseq
		}
	}
	fwd.window = win
	fwd.lastack = ack
	fwd.lastackTS = ts
	fwd.lastFlags = a
	return a
}

// classifyRetransmission decides between spurious, fast and plain
// retransmission and out-of-order for a segment that carries data, SYN or FIN.
func classifyRetransmission(a Analysis, fwd, rev *seqInfo, seq, ack, seglen uint32, fl layer.Flags, ts time.Time, irtt time.Duration) Analysis {
	if a&KeepAlive != 0 {
		return a
	}
	notAdvanced := fwd.nextseq != 0 && seqLT(seq, fwd.nextseq)
	if seglen > 1 && fwd.nextseq-1 == seq {
		notAdvanced = false
	}
	thres := irtt
	if thres == 0 {
		thres = 3 * time.Millisecond
	}
	end := seq + seglen
	if fl&(layer.SYN|layer.FIN) != 0 {
		end++
	}
	// The latest segment again, acknowledging the same, sooner than a
	// round trip: a capture duplicate, whichever retransmission tshark
	// calls it (its duplicated ACKs make it look fast, or its ACK
	// spurious).
	var dup Analysis
	if notAdvanced && fwd.nextseq == end && ack == fwd.lastack && within(ts, fwd.nextseqTS, min(thres, maxDuplicateGap)) {
		dup = CaptureDuplicate
	}
	if seglen > 0 && rev.lastack != 0 && seqLE(seq+seglen, rev.lastack) {
		return a | SpuriousRetransmission | dup
	}
	if notAdvanced && rev.dupacks >= 2 && rev.lastack == seq && within(ts, rev.lastackTS, 20*time.Millisecond) {
		return a | FastRetransmission | dup
	}
	if notAdvanced && within(ts, fwd.nextseqTS, thres) && fwd.nextseq != end {
		return a | OutOfOrder
	}
	if notAdvanced {
		a |= Retransmission | dup
	}
	return a
}

// maxDuplicateGap bounds the time between a segment and a copy taken for
// a capture duplicate, whatever the initial RTT: no stack retransmits
// that soon (Linux's tail-loss probe waits 10 ms at least, retransmission
// timers 200 ms), while a slow handshake (a radio waking up) can make
// the initial RTT far longer than the path's later round trips.
const maxDuplicateGap = 2 * time.Millisecond

// within reports whether ts is at most d after ref, and not before it: an
// earlier timestamp never counts as close (Wireshark computes the difference
// unsigned).
func within(ts, ref time.Time, d time.Duration) bool {
	x := ts.Sub(ref)
	return x >= 0 && x < d
}
