package tls

import "github.com/h2scope/h2scope/dissect/event"

// An SSL 2.0-format ClientHello (RFC 6101 appendix E.2, RFC 5246
// appendix E.2) is what old clients, and clients compatible with SSL 2.0
// servers, send first: a 2-byte record header with the high bit set,
// then msg_type 1, the highest version offered, and three length-prefixed
// lists of cipher specs (3 bytes each), session id and challenge. A TLS
// server answers it with an ordinary ServerHello record.

// parseSSLv2ClientHello reads the body (after the 2-byte header) of an
// SSL 2.0-format ClientHello as a clientHello: its TLS cipher suites are
// the specs whose first byte is 0, and its random is the challenge,
// right-aligned in 32 bytes as TLS 1.x derives it.
func parseSSLv2ClientHello(body []byte) (*clientHello, error) {
	r := reader(body)
	var typ uint8
	var specsLen, sidLen, chalLen uint16
	if !r.u8(&typ) || typ != 1 {
		return nil, errMalformed
	}
	ch := &clientHello{}
	if !r.u16(&ch.version) || !r.u16(&specsLen) || !r.u16(&sidLen) || !r.u16(&chalLen) {
		return nil, errMalformed
	}
	specs, ok := r.read(int(specsLen))
	if !ok || len(specs)%3 != 0 {
		return nil, errMalformed
	}
	for i := 0; i+3 <= len(specs); i += 3 {
		if specs[i] == 0 {
			ch.cipherSuites = append(ch.cipherSuites, uint16(specs[i+1])<<8|uint16(specs[i+2]))
		}
	}
	sid, ok := r.read(int(sidLen))
	if !ok {
		return nil, errMalformed
	}
	chal, ok := r.read(int(chalLen))
	if !ok || len(chal) > 32 || !r.empty() {
		return nil, errMalformed
	}
	ch.sessionID = append([]byte(nil), sid...)
	ch.random = make([]byte, 32)
	copy(ch.random[32-len(chal):], chal)
	ch.sslv2 = true
	return ch, nil
}

// sslv2Hello handles an SSL 2.0-format ClientHello record body.
func (c *Conn) sslv2Hello(body []byte, at event.Ref) {
	ch, err := parseSSLv2ClientHello(body)
	if err != nil {
		c.anomaly(AnomalyMalformedHandshake)
		return
	}
	c.ch = ch
	if c.sum.Timing.ClientHello == nil {
		c.sum.Timing.ClientHello = refp(at)
	}
	c.countMessage("ClientHello")
	c.emit(event.C2S, "ClientHello", len(body), "", at)
}
