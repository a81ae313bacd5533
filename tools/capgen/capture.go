package main

import (
	"errors"
	"fmt"
	"os"
	"reflect"
	"sync"
	"time"
	"unsafe"

	"github.com/gopacket/gopacket/pcapgo"
	"golang.org/x/net/bpf"
	"golang.org/x/sys/unix"
)

// snaplen is the capture length: libpcap's maximum, far above lo's MTU of
// 65536, so no frame is ever truncated.
const snaplen = 262144

// captureRcvBuf is the receive buffer forced on the packet socket. The
// default (rmem_default, about 200 KB) holds only three 64 KB loopback
// super-segments, and a burst would be dropped before we read it.
const captureRcvBuf = 64 << 20

// errNotRoot is returned when the packet socket cannot be opened.
var errNotRoot = errors.New("capturing on lo needs root (CAP_NET_RAW): run capgen as root")

// A recorder captures, on lo, the IPv4 TCP packets to and from one port of
// 127.0.0.1, from a pcapgo.EthernetHandle in its own goroutine.
type recorder struct {
	h    *pcapgo.EthernetHandle
	port uint16
	done chan struct{}

	mu      sync.Mutex
	pkts    []packet
	last    time.Time // wall time of the latest packet read
	closing bool      // stop closed the socket: read errors are expected
	err     error     // the read error that stopped the loop, if not a close
}

// loopbackFilter returns a classic BPF program that accepts IPv4 TCP
// segments between 127.0.0.1 and 127.0.0.1 with port as source or
// destination port, and only as the loopback device receives them.
//
// A packet socket on lo sees every packet twice: once as lo transmits it
// (PACKET_OUTGOING) and once as lo receives it (PACKET_HOST). libpcap drops
// the outgoing copy on loopback devices; so do we, with the packet type
// extension, so the capture looks like tcpdump's.
func loopbackFilter(port uint16) ([]bpf.RawInstruction, error) {
	const packetOutgoing = 4 // PACKET_OUTGOING in linux/if_packet.h
	rest := portFilter(port)
	prog := append([]bpf.Instruction{
		bpf.LoadExtension{Num: bpf.ExtType},
		// Skip all of rest but its last two instructions: reject, accept.
		bpf.JumpIf{Cond: bpf.JumpEqual, Val: packetOutgoing, SkipTrue: uint8(len(rest) - 2)},
	}, rest...)
	return bpf.Assemble(prog)
}

// portFilter is the part of loopbackFilter that reads only packet bytes
// (so that bpf.VM can run it in tests). It ends with reject, accept.
func portFilter(port uint16) []bpf.Instruction {
	const localhost = 0x7f000001 // 127.0.0.1
	p := uint32(port)
	// Jumps skip to reject (index 15) or accept (index 16).
	return []bpf.Instruction{
		/* 0 */ bpf.LoadAbsolute{Off: 12, Size: 2}, // EtherType
		/* 1 */ bpf.JumpIf{Cond: bpf.JumpNotEqual, Val: 0x0800, SkipTrue: 13},
		/* 2 */ bpf.LoadAbsolute{Off: 23, Size: 1}, // IPv4 protocol
		/* 3 */ bpf.JumpIf{Cond: bpf.JumpNotEqual, Val: 6, SkipTrue: 11},
		/* 4 */ bpf.LoadAbsolute{Off: 20, Size: 2}, // flags, fragment offset
		/* 5 */ bpf.JumpIf{Cond: bpf.JumpBitsSet, Val: 0x1fff, SkipTrue: 9},
		/* 6 */ bpf.LoadAbsolute{Off: 26, Size: 4}, // source address
		/* 7 */ bpf.JumpIf{Cond: bpf.JumpNotEqual, Val: localhost, SkipTrue: 7},
		/* 8 */ bpf.LoadAbsolute{Off: 30, Size: 4}, // destination address
		/* 9 */ bpf.JumpIf{Cond: bpf.JumpNotEqual, Val: localhost, SkipTrue: 5},
		/* 10 */ bpf.LoadMemShift{Off: 14}, // X = IPv4 header length
		/* 11 */ bpf.LoadIndirect{Off: 14, Size: 2}, // TCP source port
		/* 12 */ bpf.JumpIf{Cond: bpf.JumpEqual, Val: p, SkipTrue: 3},
		/* 13 */ bpf.LoadIndirect{Off: 16, Size: 2}, // TCP destination port
		/* 14 */ bpf.JumpIf{Cond: bpf.JumpEqual, Val: p, SkipTrue: 1},
		/* 15 reject */ bpf.RetConstant{Val: 0},
		/* 16 accept */ bpf.RetConstant{Val: snaplen},
	}
}

// startCapture opens a packet socket on lo, attaches the filter for port
// and starts reading. Call stop to end the capture.
func startCapture(port uint16) (*recorder, error) {
	h, err := pcapgo.NewEthernetHandle("lo")
	if err != nil {
		if errors.Is(err, unix.EPERM) || os.Geteuid() != 0 {
			return nil, fmt.Errorf("%w (%v)", errNotRoot, err)
		}
		return nil, err
	}
	filter, err := loopbackFilter(port)
	if err == nil {
		err = h.SetBPF(filter)
	}
	if err == nil {
		err = h.SetCaptureLength(snaplen)
	}
	if err == nil {
		err = forceRcvBuf(h, captureRcvBuf)
	}
	if err == nil {
		_, err = h.Stats() // reset the kernel's counters
	}
	if err != nil {
		h.Close()
		return nil, fmt.Errorf("capture on lo: %w", err)
	}
	r := &recorder{h: h, port: port, done: make(chan struct{}), last: time.Now()}
	go r.loop()
	return r, nil
}

// forceRcvBuf sets SO_RCVBUFFORCE on the handle's socket. EthernetHandle
// does not expose its descriptor, so reach it through the unexported file
// field; if a later gopacket renames it, this fails loudly rather than
// capturing with a small buffer.
func forceRcvBuf(h *pcapgo.EthernetHandle, n int) error {
	fv := reflect.ValueOf(h).Elem().FieldByName("file")
	if !fv.IsValid() || fv.Type() != reflect.TypeFor[*os.File]() {
		return errors.New("pcapgo.EthernetHandle has no file field: cannot size its receive buffer")
	}
	f := *(**os.File)(unsafe.Pointer(fv.UnsafeAddr()))
	rc, err := f.SyscallConn()
	if err != nil {
		return err
	}
	var serr error
	if err := rc.Control(func(fd uintptr) {
		serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, n)
	}); err != nil {
		return err
	}
	return serr
}

func (r *recorder) loop() {
	defer close(r.done)
	for {
		data, ci, err := r.h.ReadPacketData()
		if err != nil {
			// pcapgo formats the error with %s: os.ErrClosed is lost.
			r.mu.Lock()
			if !r.closing {
				r.err = err
			}
			r.mu.Unlock()
			return
		}
		// The filter is attached after the socket is bound: drop whatever
		// slipped in before, and check the filter's work.
		t, ok := parseTCP(data)
		mine := ok && (t.src == r.port || t.dst == r.port)
		r.mu.Lock()
		if mine && ci.CaptureLength != ci.Length && r.err == nil {
			r.err = fmt.Errorf("frame of %d bytes truncated to %d", ci.Length, ci.CaptureLength)
		}
		if mine {
			r.pkts = append(r.pkts, packet{ts: ci.Timestamp, data: data})
		}
		r.last = time.Now()
		r.mu.Unlock()
	}
}

// stop waits until no packet has arrived for quiet, closes the socket and
// returns the packets in capture order. It fails if the kernel dropped any.
func (r *recorder) stop(quiet time.Duration) ([]packet, error) {
	time.Sleep(quiet / 4)
	for {
		r.mu.Lock()
		idle := time.Since(r.last)
		r.mu.Unlock()
		if idle >= quiet {
			break
		}
		time.Sleep(quiet - idle)
	}
	st, statErr := r.h.Stats()
	r.mu.Lock()
	r.closing = true
	r.mu.Unlock()
	r.h.Close()
	<-r.done
	r.mu.Lock()
	defer r.mu.Unlock()
	switch {
	case r.err != nil:
		return nil, fmt.Errorf("capture on lo: %w", r.err)
	case statErr != nil:
		return nil, fmt.Errorf("capture on lo: statistics: %w", statErr)
	case st.Drops != 0:
		return nil, fmt.Errorf("capture on lo: kernel dropped %d packets", st.Drops)
	}
	return r.pkts, nil
}
