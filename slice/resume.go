package slice

import (
	"crypto/sha256"

	"github.com/h2scope/h2scope/dissect/event"
	"golang.org/x/crypto/cryptobyte"
)

// resumptions follows the cleartext TLS 1.2 handshakes of a capture to
// tell which session each resumed connection continues: a client that
// resumes (by ticket or session id) writes no key log line of its own
// (Go's crypto/tls does not), but its master secret is the one of the
// connection that established the session. A slice of a resumed
// connection then carries a CLIENT_RANDOM line for it with that master
// secret, so that Wireshark decrypts it without the first connection.
//
// It reads at most maxHandshakeBytes of each direction, in order, up to
// the first record that is not a handshake record (ChangeCipherSpec),
// and gives up on a direction with a gap. It follows at most
// maxHandshakeConns handshakes at once (a connection is forgotten when
// the server's cleartext part is over; past the bound, new connections
// are not followed) and remembers at most maxSessions sessions.
type resumptions struct {
	conns   map[event.ConnID]*hsConn
	tickets map[[32]byte][32]byte // SHA-256 of a ticket -> client random of the connection that received it
	sids    map[string][32]byte   // session id -> client random of the connection that established it
	from    map[[32]byte][32]byte // client random of a resumed connection -> of the one it resumed
}

// Bounds: bytes read of a direction's handshake, connections followed
// at once, sessions remembered.
const (
	maxHandshakeBytes = 64 << 10
	maxHandshakeConns = 1 << 16
	maxSessions       = 1 << 20
)

// hsConn is one connection's handshake being read.
type hsConn struct {
	dir      [2]hsDir
	cr       [32]byte
	haveCR   bool
	ticket   []byte // the ticket the client offered
	sid      []byte // the session id the client offered
	hello    bool   // ServerHello seen
	srvSID   []byte // the session id the server chose
	full     bool   // the server sent a certificate or key exchange: no resumption
	newTicks [][32]byte
}

// hsDir is one direction's bytes, in order.
type hsDir struct {
	started, done bool
	next          uint32
	buf           []byte // records not yet parsed
	hs            []byte // handshake bytes not yet parsed
	read          int
}

func newResumptions() *resumptions {
	return &resumptions{conns: map[event.ConnID]*hsConn{}, tickets: map[[32]byte][32]byte{}, sids: map[string][32]byte{}, from: map[[32]byte][32]byte{}}
}

// segment follows one TCP segment of connection id.
func (r *resumptions) segment(id event.ConnID, dir event.Dir, seq uint32, payload []byte, payloadLen int) {
	if payloadLen == 0 {
		return
	}
	c := r.conns[id]
	if c == nil {
		// Only connections whose client starts with a TLS handshake record.
		if dir != event.C2S || len(payload) < 6 || payload[0] != 0x16 || payload[5] != 1 || len(r.conns) >= maxHandshakeConns {
			return
		}
		c = &hsConn{}
		r.conns[id] = c
	}
	d := &c.dir[dir]
	if d.done {
		return
	}
	switch {
	case !d.started:
		d.started, d.next = true, seq
	case seq != d.next:
		if int32(seq+uint32(payloadLen)-d.next) > 0 {
			d.done = true // a gap or an overlap: give up on the direction
			r.finish(id, c)
		}
		return // a retransmission
	}
	if len(payload) < payloadLen {
		d.done = true
		r.finish(id, c)
		return
	}
	d.next = seq + uint32(payloadLen)
	d.buf = append(d.buf, payload...)
	d.read += len(payload)
	r.parse(c, dir)
	if d.read > maxHandshakeBytes {
		d.done = true
	}
	if d.done {
		d.buf, d.hs = nil, nil
	}
	r.finish(id, c)
}

// parse reads the whole records of a direction.
func (r *resumptions) parse(c *hsConn, dir event.Dir) {
	d := &c.dir[dir]
	for !d.done && len(d.buf) >= 5 {
		n := int(d.buf[3])<<8 | int(d.buf[4])
		if len(d.buf) < 5+n {
			return
		}
		typ, body := d.buf[0], d.buf[5:5+n]
		d.buf = d.buf[5+n:]
		if typ != 0x16 {
			d.done = true // ChangeCipherSpec, alert or data: the cleartext handshake is over
			return
		}
		d.hs = append(d.hs, body...)
		for len(d.hs) >= 4 {
			m := int(d.hs[1])<<16 | int(d.hs[2])<<8 | int(d.hs[3])
			if len(d.hs) < 4+m {
				break
			}
			r.message(c, dir, d.hs[0], d.hs[4:4+m])
			d.hs = d.hs[4+m:]
		}
	}
}

// message reads one handshake message.
func (r *resumptions) message(c *hsConn, dir event.Dir, typ byte, b []byte) {
	s := cryptobyte.String(b)
	switch {
	case dir == event.C2S && typ == 1 && !c.haveCR: // ClientHello
		var random, sid, suites, comp, exts cryptobyte.String
		if !s.Skip(2) || !s.ReadBytes((*[]byte)(&random), 32) || !s.ReadUint8LengthPrefixed(&sid) ||
			!s.ReadUint16LengthPrefixed(&suites) || !s.ReadUint8LengthPrefixed(&comp) {
			return
		}
		copy(c.cr[:], random)
		c.haveCR, c.sid = true, append([]byte(nil), sid...)
		if !s.ReadUint16LengthPrefixed(&exts) {
			return
		}
		for !exts.Empty() {
			var et uint16
			var ed cryptobyte.String
			if !exts.ReadUint16(&et) || !exts.ReadUint16LengthPrefixed(&ed) {
				return
			}
			if et == 35 && len(ed) > 0 { // session_ticket
				c.ticket = append([]byte(nil), ed...)
			}
		}
		c.dir[event.C2S].done = true // nothing else of the client's is needed (segment frees its bytes)
	case dir == event.S2C && typ == 2: // ServerHello
		var sid cryptobyte.String
		if s.Skip(2+32) && s.ReadUint8LengthPrefixed(&sid) {
			c.hello, c.srvSID = true, append([]byte(nil), sid...)
		}
	case dir == event.S2C && (typ == 11 || typ == 12 || typ == 13 || typ == 14):
		c.full = true // Certificate, ServerKeyExchange, CertificateRequest, ServerHelloDone
	case dir == event.S2C && typ == 4: // NewSessionTicket (cleartext in TLS 1.2)
		var ticket cryptobyte.String
		if s.Skip(4) && s.ReadUint16LengthPrefixed(&ticket) && len(ticket) > 0 {
			c.newTicks = append(c.newTicks, sha256.Sum256(ticket))
		}
	}
}

// finish records what a connection's handshake says once the server's
// cleartext part is over: the session it resumed, the session it
// established, the tickets it received.
func (r *resumptions) finish(id event.ConnID, c *hsConn) {
	if !c.dir[event.S2C].done {
		return
	}
	delete(r.conns, id)
	if !c.haveCR || !c.hello || len(r.from) >= maxSessions {
		return
	}
	if c.full {
		if len(c.srvSID) > 0 && len(r.sids) < maxSessions {
			r.sids[string(c.srvSID)] = c.cr
		}
	} else {
		if from, ok := r.tickets[sha256.Sum256(c.ticket)]; ok && len(c.ticket) > 0 {
			r.from[c.cr] = from
		} else if from, ok := r.sids[string(c.sid)]; ok && len(c.sid) > 0 && string(c.sid) == string(c.srvSID) {
			r.from[c.cr] = from
		}
	}
	for _, t := range c.newTicks {
		if len(r.tickets) < maxSessions {
			r.tickets[t] = c.cr
		}
	}
}

// origin returns the client random of the connection whose session the
// connection of client random cr resumed, following resumptions of
// resumptions; ok is false for a connection that resumed none.
func (r *resumptions) origin(cr [32]byte, hasMaster func([32]byte) bool) (from [32]byte, ok bool) {
	for range 64 { // a chain of resumptions, bounded
		f, resumed := r.from[cr]
		if !resumed {
			return from, ok
		}
		from, ok, cr = f, true, f
		if hasMaster(f) {
			return from, true
		}
	}
	return from, ok
}
