package main

import (
	"bytes"
	"errors"
	"fmt"
	"net/netip"

	"github.com/h2scope/h2scope/tools/capgen/truth"
)

// flowStats is what a capture shows of one connection.
type flowStats struct {
	syns     int    // SYN without ACK
	payload  [2]int // TCP payload bytes c2s, s2c (retransmissions included)
	firstFIN string // side whose FIN comes first: "client" or "server"
	firstRST string // side whose RST comes first
}

// flows summarises pkts per connection; serverPort tells directions apart.
func flows(pkts []packet, serverPort uint16) (map[connKey]*flowStats, error) {
	m := make(map[connKey]*flowStats)
	ct := newConnTracker(serverPort)
	for i, p := range pkts {
		t, ok := parseTCP(p.data)
		if !ok {
			return nil, fmt.Errorf("frame %d: not an IPv4 TCP segment", i+1)
		}
		k, dir, ok := ct.track(t)
		if !ok {
			return nil, fmt.Errorf("frame %d: ports %d>%d, not the server's %d", i+1, t.src, t.dst, serverPort)
		}
		f := m[k]
		if f == nil {
			f = new(flowStats)
			m[k] = f
		}
		if t.flags&(flagSYN|flagACK) == flagSYN {
			f.syns++
		}
		f.payload[dir] += t.payloadLen
		if t.flags&flagFIN != 0 && f.firstFIN == "" {
			f.firstFIN = [2]string{"client", "server"}[dir]
		}
		if t.flags&flagRST != 0 && f.firstRST == "" {
			f.firstRST = [2]string{"client", "server"}[dir]
		}
	}
	return m, nil
}

// truthKeys returns the connKey of each connection of t, in order.
func truthKeys(conns []truth.Connection) ([]connKey, error) {
	keys := make([]connKey, len(conns))
	seen := make(map[uint16]int)
	for i, c := range conns {
		ap, err := netip.ParseAddrPort(c.Client)
		if err != nil {
			return nil, fmt.Errorf("connection %d: %w", c.ID, err)
		}
		keys[i] = connKey{port: ap.Port(), nth: seen[ap.Port()]}
		seen[ap.Port()]++
	}
	return keys, nil
}

// verifyLive checks a live capture against the programs' truth: one SYN
// per connection the client dialed and none other (so no frame was seen
// twice), exactly the bytes each side wrote, no identical frames, time
// never going back, the first FIN from the side that closed first, and
// the server seeing as many requests as the client sent.
func verifyLive(pkts []packet, serverPort uint16, t *truth.Truth) error {
	var errs []error
	seen := make(map[string]int, len(pkts))
	for i, p := range pkts {
		if j, dup := seen[string(p.data)]; dup {
			errs = append(errs, fmt.Errorf("frame %d repeats frame %d", i+1, j))
		}
		seen[string(p.data)] = i + 1
		if i > 0 && p.ts.Before(pkts[i-1].ts) {
			errs = append(errs, fmt.Errorf("frame %d is older than frame %d", i+1, i))
		}
	}
	fs, err := flows(pkts, serverPort)
	if err != nil {
		return err
	}
	keys, err := truthKeys(t.Connections)
	if err != nil {
		return err
	}
	known := make(map[connKey]bool)
	for i, c := range t.Connections {
		k := keys[i]
		known[k] = true
		f := fs[k]
		name := fmt.Sprintf("connection %d (%s)", c.ID, c.Client)
		switch {
		case c.ID != i+1:
			errs = append(errs, fmt.Errorf("%s: listed at %d", name, i+1))
		case f == nil:
			errs = append(errs, fmt.Errorf("%s: no frames", name))
		case f.syns != 1+c.SYNRetransmits:
			errs = append(errs, fmt.Errorf("%s: %d SYNs, want %d (1 + %d retransmissions)", name, f.syns, 1+c.SYNRetransmits, c.SYNRetransmits))
		case int64(f.payload[0]) != c.C2SBytes || int64(f.payload[1]) != c.S2CBytes:
			errs = append(errs, fmt.Errorf("%s: captured %d/%d payload bytes c2s/s2c, programs wrote %d/%d",
				name, f.payload[0], f.payload[1], c.C2SBytes, c.S2CBytes))
		case c.ClosedBy != "" && f.firstFIN != c.ClosedBy && !(c.ResetBy == c.ClosedBy && f.firstRST == c.ClosedBy && f.firstFIN == ""):
			errs = append(errs, fmt.Errorf("%s: closed by the %s but the first FIN is the %s's", name, c.ClosedBy, f.firstFIN))
		case c.Requests != c.ServerRequests:
			errs = append(errs, fmt.Errorf("%s: client sent %d requests, server saw %d", name, c.Requests, c.ServerRequests))
		}
	}
	for k := range fs {
		if !known[k] {
			errs = append(errs, fmt.Errorf("frames of connection %d from client port %d, which no program dialed", k.nth+1, k.port))
		}
	}
	for _, r := range t.Requests {
		if r.Conn < 1 || r.Conn > len(t.Connections) || t.Connections[r.Conn-1].Client != r.ConnClient {
			errs = append(errs, fmt.Errorf("request %s %s on unknown connection %d (%s)", r.Method, r.Path, r.Conn, r.ConnClient))
		}
	}
	return errors.Join(errs...)
}

// verifyWritten checks that each connection's captured payload is, byte
// for byte and per direction, what the programs wrote to their sockets
// (written, by connection ID - 1). TLS scenarios keep those bytes: the
// capture holds the records the programs wrote, which checks an
// encrypted capture as verifyHTTP2 checks a plaintext one.
func verifyWritten(pkts []packet, serverPort uint16, t *truth.Truth, written [][2][]byte) error {
	if len(written) != len(t.Connections) {
		return fmt.Errorf("%d connections, bytes of %d", len(t.Connections), len(written))
	}
	return checkFlows(pkts, serverPort, t.Connections, func(i int, c truth.Connection, f *tcpFlow) (errs []error) {
		for dir := range 2 {
			if !bytes.Equal(f.data[dir], written[i][dir]) {
				errs = append(errs, fmt.Errorf("connection %d %s: the capture's %d bytes are not the %d the program wrote",
					c.ID, dirName(dir), len(f.data[dir]), len(written[i][dir])))
			}
		}
		return errs
	})
}
