package tls

import (
	"bytes"

	"github.com/h2scope/h2scope/dissect/event"
)

// extEncryptThenMAC is the encrypt_then_mac extension (RFC 7366).
const extEncryptThenMAC = 22

// unprotect decrypts one protected record of dir in place. It returns
// false, leaving the record counted as encrypted, when there are no keys
// or authentication fails.
func (c *Conn) unprotect(dir event.Dir, d *direction, typ uint8, p []byte, at event.Ref) ([]byte, uint8, bool) {
	if d.failed || d.prot == nil && !c.startDecryption(dir, d) {
		return nil, 0, false
	}
	// Early data the server skipped is undecryptable under the keys that
	// follow it: keep the record to retry it, or to skip it.
	skippable := c.tls13 && dir == event.C2S && !d.opened && c.ch.earlyData
	var saved []byte
	if d.pending != nil || skippable {
		saved = append(d.scratch[:0], p...)
		d.scratch = saved
	}
	pt, inner, err := d.prot.open(typ, p)
	if err != nil && d.pending != nil {
		copy(p, saved)
		if pt, inner, err = d.pending.open(typ, p); err == nil {
			d.prot, d.pending = d.pending, nil
		}
	}
	if err != nil {
		if skippable {
			c.sum.Decryption.EarlySkipped++
			return nil, 0, false
		}
		c.sum.Decryption.Failures[dir]++
		d.failed = true
		c.because(ReasonAuthentication)
		if d.opened && c.opts.Plain != nil {
			c.opts.Plain.Gap(dir, len(p), at)
		}
		return nil, 0, false
	}
	d.opened = true
	d.lastEarly = d.prot.early
	c.sum.Decryption.Records[dir]++
	return pt, inner, true
}

// startDecryption installs dir's first protector: the handshake traffic
// keys in TLS 1.3 (the early traffic keys first when the client offered
// 0-RTT and they are logged), the key block's in TLS 1.2.
func (c *Conn) startDecryption(dir event.Dir, d *direction) bool {
	fail := func(reason string) bool {
		c.because(reason)
		d.failed = true
		return false
	}
	switch {
	case c.opts.Keys.Len() == 0:
		return fail(ReasonNoKeyLog)
	case c.ch == nil:
		return fail(ReasonNoClientHello)
	case c.sh == nil:
		return fail(ReasonNoServerHello)
	}
	s, ok := suites[c.sh.cipherSuite]
	if !ok || c.tls13 != (c.sh.cipherSuite>>8 == 0x13) {
		return fail(ReasonUnsupported)
	}
	if c.tls13 {
		sec := c.lookup()
		if sec == nil {
			return fail(ReasonNoKeys)
		}
		secret := sec.ServerHandshake
		if dir == event.C2S {
			secret = sec.ClientHandshake
		}
		p, err := newProtector13(s, secret)
		if err != nil {
			return fail(ReasonNoKeys)
		}
		d.prot = p
		if dir == event.C2S && c.ch.earlyData && sec.ClientEarly != nil {
			if early, err := newProtector13(s, sec.ClientEarly); err == nil {
				early.early = true
				d.prot, d.pending = early, p
			}
		}
		return true
	}
	if c.keys12[0] == nil {
		master := c.master12()
		if master == nil {
			return fail(ReasonNoKeys)
		}
		etm := false
		for _, e := range c.sh.extensions {
			etm = etm || e == extEncryptThenMAC
		}
		cl, sv, err := keys12(s, c.sh.negotiated(), master, c.ch.random, c.sh.random, etm)
		if err != nil {
			return fail(ReasonNoKeys)
		}
		c.keys12 = [2]*protector{cl, sv}
		if sec := c.lookup(); sec != nil && sec.Master != nil {
			c.opts.Sessions.remember('s', c.sh.sessionID, master)
		}
	}
	d.prot = c.keys12[dir&1]
	return true
}

// applicationKeys switches dir to its first TLS 1.3 application traffic
// keys after its Finished.
func (c *Conn) applicationKeys(dir event.Dir) {
	d := &c.d[dir&1]
	if d.prot == nil || !d.prot.tls13 {
		return
	}
	d.pending = nil
	var secret []byte
	if sec := c.lookup(); sec != nil {
		secret = sec.ServerTraffic
		if dir == event.C2S {
			secret = sec.ClientTraffic
		}
	}
	// With no secrets (nil), newProtector13 fails as for a wrong length.
	p, err := newProtector13(d.prot.s, secret)
	if err != nil {
		d.prot, d.failed = nil, true
		c.because(ReasonNoKeys)
		return
	}
	d.prot = p
}

// lookup returns the key log's secrets for the session, looked up once.
func (c *Conn) lookup() *Secrets {
	if !c.looked && c.ch != nil {
		c.looked = true
		c.secrets = c.opts.Keys.Lookup(c.ch.random)
	}
	return c.secrets
}

// master12 returns the TLS 1.2 master secret: logged under the client
// random, or remembered from the connection that established the session
// this one resumes.
func (c *Conn) master12() []byte {
	if sec := c.lookup(); sec != nil && sec.Master != nil {
		return sec.Master
	}
	if c.ch == nil || c.sh == nil {
		return nil
	}
	if len(c.sh.sessionID) > 0 && bytes.Equal(c.sh.sessionID, c.ch.sessionID) {
		if m := c.opts.Sessions.resumed('s', c.ch.sessionID); m != nil {
			return m
		}
	}
	return c.opts.Sessions.resumed('t', c.ch.ticket)
}

// encryptedExtensions reads the TLS 1.3 EncryptedExtensions: the selected
// ALPN protocol and the early-data verdict.
func (c *Conn) encryptedExtensions(body []byte) {
	r := reader(body)
	early := false
	err := extensions(&r, func(typ uint16, data reader) error {
		switch typ {
		case extALPN:
			var list, p reader
			if !data.lp16(&list) || !list.lp8(&p) || !list.empty() || !data.empty() {
				return errMalformed
			}
			c.sum.ALPNSelected = string(p)
		case extEarlyData:
			early = true
		}
		return nil
	})
	if err != nil || !r.empty() {
		c.anomaly(AnomalyMalformedHandshake)
		return
	}
	c.earlyAccepted = early
	c.sawEE = true
	c.settleEarly()
}

// maxEarlyHeld bounds the 0-RTT plaintext held until the server's
// EncryptedExtensions says whether it accepted early data.
const maxEarlyHeld = 256 << 10

// holdEarly keeps 0-RTT application data until the server's verdict:
// data the server rejected was never processed, and must not reach the
// HTTP dissectors (the client sends it again after the handshake).
func (c *Conn) holdEarly(b []byte, at event.Ref) {
	d := &c.d[event.C2S]
	if len(d.earlyHeld)+len(b) > maxEarlyHeld {
		c.anomaly(AnomalyEarlyDataDropped)
		c.sum.Decryption.EarlySkipped++
		return
	}
	d.earlyHeld = append(d.earlyHeld, b...)
	d.earlyAt = at
	d.earlyRecords++
}

// settleEarly hands held 0-RTT data over if the server accepted early
// data, and drops it otherwise.
func (c *Conn) settleEarly() {
	d := &c.d[event.C2S]
	if len(d.earlyHeld) == 0 {
		return
	}
	if c.sawEE && c.earlyAccepted && c.opts.Plain != nil {
		c.opts.Plain.Data(event.C2S, d.earlyHeld, d.earlyAt)
	} else {
		c.sum.Decryption.EarlySkipped += d.earlyRecords
	}
	d.earlyHeld, d.earlyRecords = nil, 0
}

// parseNewSessionTicket reads a NewSessionTicket: TLS 1.2's lifetime hint
// and ticket (RFC 5077), or TLS 1.3's (RFC 8446 section 4.6.1).
func parseNewSessionTicket(body []byte, tls13 bool) (lifetime uint32, ticket []byte, ok bool) {
	r := reader(body)
	var t reader
	if !r.u32(&lifetime) {
		return 0, nil, false
	}
	if tls13 {
		var ageAdd uint32
		var nonce, exts reader
		if !r.u32(&ageAdd) || !r.lp8(&nonce) || !r.lp16(&t) || !r.lp16(&exts) || !r.empty() {
			return 0, nil, false
		}
		return lifetime, t, true
	}
	if !r.lp16(&t) || !r.empty() {
		return 0, nil, false
	}
	return lifetime, bytes.Clone(t), true
}

// because records the first reason protected records stayed encrypted.
func (c *Conn) because(reason string) {
	if c.reason == "" {
		c.reason = reason
	}
}
