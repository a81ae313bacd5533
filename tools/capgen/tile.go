package main

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/gopacket/gopacket/layers"
	"github.com/gopacket/gopacket/pcapgo"
)

// A tiler repeats a base capture of TCP connections to one server port.
// Each repetition, a tile, is made of new connections: every client port
// is mapped to a port no earlier tile used (until the 64511 ports run out,
// after which ports repeat, far apart in time: port reuse, as after
// TIME_WAIT), sequence and acknowledgment numbers are shifted by per-tile,
// per-connection offsets, and timestamps advance by the base's duration
// plus a gap.
//
// Lengths are never changed, so IPv4 total length stays right. IPv4 and
// TCP checksums are not recomputed: they are wrong in every rewritten
// frame, as with checksum offload, and analysers must not rely on them.
// TCP timestamp options are copied as they are.
type tiler struct {
	base       []packet
	info       []tcpInfo
	serverPort uint16
	clientIdx  map[uint16]int // base client port -> index, in order of appearance
	dir        []uint8        // 0 c2s, 1 s2c, per base packet
	client     []int          // client index per base packet
	period     time.Duration
	buf        []byte
}

// tileGap separates the end of one tile from the start of the next.
const tileGap = 10 * time.Millisecond

// newTiler checks that every base packet is IPv4 TCP to or from
// serverPort and prepares the tiling.
func newTiler(base []packet, serverPort uint16) (*tiler, error) {
	if len(base) == 0 {
		return nil, errors.New("tile: empty base capture")
	}
	t := &tiler{
		base:       base,
		info:       make([]tcpInfo, len(base)),
		serverPort: serverPort,
		clientIdx:  make(map[uint16]int),
		dir:        make([]uint8, len(base)),
		client:     make([]int, len(base)),
	}
	maxLen := 0
	for i, p := range base {
		ti, ok := parseTCP(p.data)
		if !ok {
			return nil, fmt.Errorf("tile: frame %d: not an IPv4 TCP segment", i+1)
		}
		c := ti.src
		switch serverPort {
		case ti.dst:
		case ti.src:
			c, t.dir[i] = ti.dst, 1
		default:
			return nil, fmt.Errorf("tile: frame %d: not to or from port %d", i+1, serverPort)
		}
		idx, ok := t.clientIdx[c]
		if !ok {
			idx = len(t.clientIdx)
			t.clientIdx[c] = idx
		}
		t.info[i], t.client[i] = ti, idx
		maxLen = max(maxLen, len(p.data))
	}
	t.period = base[len(base)-1].ts.Sub(base[0].ts) + tileGap
	t.buf = make([]byte, maxLen)
	return t, nil
}

// port returns the client port of client i in tile k: ports 1024-65535
// but the server's, in turn.
func (t *tiler) port(k, i int) uint16 {
	const first, n = 1024, 65536 - 1024 - 1
	p := uint16(first + (k*len(t.clientIdx)+i)%n)
	if p >= t.serverPort {
		p++
	}
	return p
}

// shift returns the sequence offset of direction dir of client i in tile k.
func shift(k, i int, dir uint8) uint32 {
	if dir == 0 {
		return uint32(k)*0x9e3779b9 + uint32(i)*0x85ebca6b
	}
	return uint32(k)*0xc2b2ae35 + uint32(i)*0x27d4eb2f
}

// tile calls emit with every packet of tile k, in order. data is valid only
// during the call.
func (t *tiler) tile(k int, emit func(ts time.Time, data []byte) error) error {
	off := time.Duration(k) * t.period
	for i, p := range t.base {
		b := t.buf[:len(p.data)]
		copy(b, p.data)
		ti := t.info[i]
		ci, dir := t.client[i], t.dir[i]
		tcp := b[ti.tcpOff:]
		port := t.port(k, ci)
		own, peer := shift(k, ci, dir), shift(k, ci, 1-dir)
		if dir == 0 {
			binary.BigEndian.PutUint16(tcp[0:], port)
		} else {
			binary.BigEndian.PutUint16(tcp[2:], port)
		}
		binary.BigEndian.PutUint32(tcp[4:], ti.seq+own)
		if ti.flags&flagACK != 0 {
			binary.BigEndian.PutUint32(tcp[8:], ti.ack+peer)
		}
		shiftSACK(tcp[20:ti.payloadOff-ti.tcpOff], peer)
		if err := emit(p.ts.Add(off), b); err != nil {
			return err
		}
	}
	return nil
}

// shiftSACK adds d to the edges of SACK blocks in TCP options opts (they
// acknowledge the peer's sequence numbers).
func shiftSACK(opts []byte, d uint32) {
	for len(opts) > 0 {
		switch opts[0] {
		case 0: // end of options
			return
		case 1: // no-op
			opts = opts[1:]
			continue
		}
		if len(opts) < 2 || int(opts[1]) < 2 || int(opts[1]) > len(opts) {
			return
		}
		o := opts[:opts[1]]
		if o[0] == 5 { // SACK
			for e := 2; e+4 <= len(o); e += 4 {
				binary.BigEndian.PutUint32(o[e:], binary.BigEndian.Uint32(o[e:])+d)
			}
		}
		opts = opts[len(o):]
	}
}

// countWriter counts the bytes written through it.
type countWriter struct {
	w io.Writer
	n int64
}

func (c *countWriter) Write(b []byte) (int, error) {
	n, err := c.w.Write(b)
	c.n += int64(n)
	return n, err
}

// writeBig writes whole tiles of base to path until the file holds at
// least size bytes: pcapng if path ends in .pcapng, else pcap with
// nanosecond timestamps. It streams, holding one frame at a time besides
// the base. It returns the number of tiles and frames written.
func writeBig(path string, size int64, base *result) (tiles, frames int, err error) {
	ap, err := netip.ParseAddrPort(base.truth.Server)
	if err != nil {
		return 0, 0, err
	}
	t, err := newTiler(base.pkts, ap.Port())
	if err != nil {
		return 0, 0, err
	}
	f, err := os.Create(path)
	if err != nil {
		return 0, 0, err
	}
	defer f.Close()
	bw := bufio.NewWriterSize(f, 4<<20)
	cw := &countWriter{w: bw}

	var write func(ts time.Time, data []byte) error
	var flush func() error
	if strings.HasSuffix(path, ".pcapng") {
		ng, err := newNgWriter(cw, "capgen tiled "+base.truth.Scenario)
		if err != nil {
			return 0, 0, err
		}
		write = func(ts time.Time, data []byte) error {
			return ng.WritePacket(capInfo(packet{ts: ts, data: data}), data)
		}
		flush = ng.Flush
	} else {
		w := pcapgo.NewWriterNanos(cw)
		if err := w.WriteFileHeader(snaplen, layers.LinkTypeEthernet); err != nil {
			return 0, 0, err
		}
		write = func(ts time.Time, data []byte) error {
			return w.WritePacket(capInfo(packet{ts: ts, data: data}), data)
		}
		flush = func() error { return nil }
	}
	count := func(ts time.Time, data []byte) error {
		frames++
		return write(ts, data)
	}
	for tiles == 0 || cw.n < size {
		if err := t.tile(tiles, count); err != nil {
			return tiles, frames, err
		}
		tiles++
	}
	if err := flush(); err != nil {
		return tiles, frames, err
	}
	if err := bw.Flush(); err != nil {
		return tiles, frames, err
	}
	return tiles, frames, f.Close()
}

// parseSize reads a size such as 500MB, 2GiB or 1048576: decimal (KB, MB,
// GB) or binary (KiB, MiB, GiB) units, or bytes without a unit.
func parseSize(s string) (int64, error) {
	units := []struct {
		suffix string
		mult   int64
	}{
		{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30},
		{"KB", 1e3}, {"MB", 1e6}, {"GB", 1e9}, {"K", 1e3}, {"M", 1e6}, {"G", 1e9}, {"B", 1},
	}
	mult := int64(1)
	num := strings.TrimSpace(s)
	for _, u := range units {
		if v, ok := strings.CutSuffix(strings.ToUpper(num), strings.ToUpper(u.suffix)); ok && (u.suffix != "B" || v != "") {
			num, mult = strings.TrimSpace(num[:len(v)]), u.mult
			break
		}
	}
	n, err := strconv.ParseFloat(num, 64)
	if err != nil || n <= 0 {
		return 0, fmt.Errorf("bad size %q: want a positive number with an optional unit (500MB, 2GiB)", s)
	}
	return int64(n * float64(mult)), nil
}
