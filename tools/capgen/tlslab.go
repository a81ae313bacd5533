package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"errors"
	"fmt"
	"math/big"
	"net"
	"strings"
	"sync"
	"time"

	"golang.org/x/crypto/cryptobyte"

	"github.com/h2scope/h2scope/tools/capgen/truth"
)

// tlsServerName is the name in the server's certificate, which clients
// send as SNI.
const tlsServerName = "h2scope.test"

// Server ticket policies, the values of truth.TLS.ServerTickets.
const (
	ticketsStable   = "stable"
	ticketsRotated  = "rotated"
	ticketsDisabled = "disabled"
)

// A tlsLab is the TLS side of a session: the server's self-signed
// certificate (made for the run), the clients' trust in it, the key log
// the clients write, and the server's ticket policy.
type tlsLab struct {
	l     *lab
	cert  tls.Certificate
	roots *x509.CertPool
	base  *tls.Config // the server's, before per-connection changes

	mu      sync.Mutex
	keylog  bytes.Buffer
	tickets string // policy for the next connections (ticketsStable...)
	rotate  bool   // set fresh ticket keys at the next ClientHello
}

// newTLSLab makes a 2048-bit RSA certificate for tlsServerName, valid for
// a day, and a server configuration using it for versions min to max (and
// the TLS 1.2 suites, if any).
func newTLSLab(l *lab, min, max uint16, suites []uint16, protos ...string) (*tlsLab, error) {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return nil, err
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(now.UnixNano()),
		Subject:               pkix.Name{CommonName: tlsServerName, Organization: []string{"h2scope capgen"}},
		DNSNames:              []string{tlsServerName},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(24 * time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, err
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, err
	}
	t := &tlsLab{l: l, cert: tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf},
		roots: x509.NewCertPool(), tickets: ticketsStable}
	t.roots.AddCert(leaf)
	t.base = &tls.Config{
		Certificates: []tls.Certificate{t.cert},
		MinVersion:   min,
		MaxVersion:   max,
		CipherSuites: suites,
		NextProtos:   protos,
	}
	return t, nil
}

// Write appends to the key log; the clients' tls.Config.KeyLogWriter.
func (t *tlsLab) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.keylog.Write(p)
}

// keys returns the key log so far.
func (t *tlsLab) keys() []byte {
	t.mu.Lock()
	defer t.mu.Unlock()
	return bytes.Clone(t.keylog.Bytes())
}

// setTickets sets the server's ticket policy for the next connections:
// ticketsRotated sets fresh ticket keys at each of them.
func (t *tlsLab) setTickets(policy string) {
	t.mu.Lock()
	t.tickets = policy
	t.mu.Unlock()
}

// record returns the TLS record of rec, creating it. l.mu must be held.
func (t *tlsLab) record(rec *connRecord) *truth.TLS {
	if rec.tls == nil {
		rec.tls = &truth.TLS{}
	}
	return rec.tls
}

// serverConfig returns the server's configuration for the connection
// whose socket is raw, under the current ticket policy, and records the
// policy.
func (t *tlsLab) serverConfig(raw net.Conn) (*tls.Config, error) {
	t.mu.Lock()
	policy := t.tickets
	if policy == ticketsRotated {
		var k [32]byte
		if _, err := rand.Read(k[:]); err != nil {
			t.mu.Unlock()
			return nil, err
		}
		t.base.SetSessionTicketKeys([][32]byte{k})
	}
	cfg := t.base.Clone()
	t.mu.Unlock()
	cfg.SessionTicketsDisabled = policy == ticketsDisabled
	if w, ok := watched(raw); ok {
		t.l.mu.Lock()
		t.record(w.rec).ServerTickets = policy
		t.l.mu.Unlock()
	}
	return cfg, nil
}

// listenerConfig is the configuration of a tls.NewListener: each
// connection gets serverConfig's.
func (t *tlsLab) listenerConfig() *tls.Config {
	return &tls.Config{GetConfigForClient: func(h *tls.ClientHelloInfo) (*tls.Config, error) {
		return t.serverConfig(h.Conn)
	}}
}

// serverHandshake runs the server's handshake on raw, an accepted
// socket, and records what the server saw.
func (t *tlsLab) serverHandshake(ctx context.Context, raw net.Conn) (*tls.Conn, error) {
	cfg, err := t.serverConfig(raw)
	if err != nil {
		return nil, err
	}
	tc := tls.Server(raw, cfg)
	err = tc.HandshakeContext(ctx)
	t.serverDone(raw, tc.ConnectionState(), err)
	return tc, err
}

// serverDone records the end of the server's handshake on raw.
func (t *tlsLab) serverDone(raw net.Conn, cs tls.ConnectionState, err error) {
	w, ok := watched(raw)
	if !ok {
		return
	}
	t.l.mu.Lock()
	defer t.l.mu.Unlock()
	r := t.record(w.rec)
	r.ServerDidResume = cs.DidResume
	if err != nil {
		r.ServerError = err.Error()
	}
}

// clientConfig returns a client configuration trusting the server's
// certificate, sending SNI tlsServerName, offering protos, and logging
// its keys to the lab's key log. cache, if not nil, keeps sessions.
func (t *tlsLab) clientConfig(max uint16, suites []uint16, cache tls.ClientSessionCache, protos ...string) *tls.Config {
	return &tls.Config{
		ServerName:         tlsServerName,
		RootCAs:            t.roots,
		MinVersion:         tls.VersionTLS12,
		MaxVersion:         max,
		CipherSuites:       suites,
		NextProtos:         protos,
		ClientSessionCache: cache,
		KeyLogWriter:       t,
	}
}

// recordingCache is a tls.ClientSessionCache that tells whether Get found
// a session. A handshake uses its own, over the client's shared cache.
type recordingCache struct {
	tls.ClientSessionCache
	mu  sync.Mutex
	hit bool
}

// Get returns the shared cache's session, noting whether there was one.
func (c *recordingCache) Get(key string) (*tls.ClientSessionState, bool) {
	s, ok := c.ClientSessionCache.Get(key)
	c.mu.Lock()
	c.hit = c.hit || ok && s != nil
	c.mu.Unlock()
	return s, ok
}

// dialTLS dials the lab's server through the session's dialer and runs
// the client's handshake with cfg, recording what the client saw.
func (s *session) dialTLS(ctx context.Context, phase string, cfg *tls.Config) (*tls.Conn, error) {
	raw, err := s.dialer(phase)(ctx, "tcp", s.server)
	if err != nil {
		return nil, err
	}
	cfg = cfg.Clone()
	var rc *recordingCache
	if cfg.ClientSessionCache != nil {
		rc = &recordingCache{ClientSessionCache: cfg.ClientSessionCache}
		cfg.ClientSessionCache = rc
	}
	tc := tls.Client(raw, cfg)
	err = tc.HandshakeContext(ctx)
	s.clientDone(raw, cfg, rc, tc.ConnectionState(), err)
	if err != nil {
		raw.Close()
		return nil, err
	}
	return tc, nil
}

// tlsDialer returns a DialTLSContext for http.Transport using cfg.
func (s *session) tlsDialer(phase string, cfg *tls.Config) func(ctx context.Context, network, addr string) (net.Conn, error) {
	return func(ctx context.Context, _, addr string) (net.Conn, error) {
		if addr != s.server {
			return nil, fmt.Errorf("capgen: refusing to dial %s: only %s", addr, s.server)
		}
		return s.dialTLS(ctx, phase, cfg)
	}
}

// clientDone records the end of the client's handshake on raw.
func (s *session) clientDone(raw net.Conn, cfg *tls.Config, rc *recordingCache, cs tls.ConnectionState, err error) {
	w, ok := watched(raw)
	if !ok {
		return
	}
	s.lab.mu.Lock()
	defer s.lab.mu.Unlock()
	r := s.tls.record(w.rec)
	r.SNI = cfg.ServerName
	r.OfferedALPN = cfg.NextProtos
	r.HandshakeComplete = cs.HandshakeComplete
	if cs.Version != 0 {
		r.Version = tls.VersionName(cs.Version)
	}
	if cs.CipherSuite != 0 {
		r.CipherSuite = tls.CipherSuiteName(cs.CipherSuite)
	}
	r.ALPN = cs.NegotiatedProtocol
	r.DidResume = cs.DidResume
	if rc != nil {
		rc.mu.Lock()
		r.CachedSession = rc.hit
		rc.mu.Unlock()
	}
	if err != nil {
		r.ClientError = err.Error()
	}
}

// plainConn is the server's TLS connection seen from above: the bytes it
// reads and writes are the plaintext, which it tees into the
// connection's wireTee (HTTP/2 labs) and counts.
type plainConn struct {
	net.Conn
	lab *lab
	rec *connRecord
}

// plainConn wraps c, the server's TLS connection over raw.
func (l *lab) plainConn(c, raw net.Conn) net.Conn {
	w, ok := watched(raw)
	if !ok {
		return c
	}
	return &plainConn{Conn: c, lab: l, rec: w.rec}
}

// Read reads plaintext, teeing it.
func (c *plainConn) Read(b []byte) (int, error) {
	n, err := c.Conn.Read(b)
	if c.rec.tee != nil {
		c.rec.tee.read(b[:n])
	}
	c.lab.mu.Lock()
	c.rec.plain[0] += int64(n)
	c.lab.mu.Unlock()
	return n, err
}

// Write writes plaintext, teeing it before the write (see watchedConn.Write).
func (c *plainConn) Write(b []byte) (int, error) {
	var chunk *teeChunk
	if c.rec.tee != nil {
		chunk = c.rec.tee.beginWrite(b)
	}
	n, err := c.Conn.Write(b)
	if chunk != nil {
		c.rec.tee.endWrite(chunk, n)
	}
	c.lab.mu.Lock()
	c.rec.plain[1] += int64(n)
	c.lab.mu.Unlock()
	return n, err
}

// ConnectionState reports the TLS state, for x/net/http2's server.
func (c *plainConn) ConnectionState() tls.ConnectionState {
	if cs, ok := c.Conn.(interface{ ConnectionState() tls.ConnectionState }); ok {
		return cs.ConnectionState()
	}
	return tls.ConnectionState{}
}

// alertNames maps crypto/tls's alert texts (the alert type's String
// without "tls: ") to RFC 8446's names and codes.
var alertNames = map[string]struct {
	name string
	code int
}{
	"close notify":                   {"close_notify", 0},
	"unexpected message":             {"unexpected_message", 10},
	"bad record MAC":                 {"bad_record_mac", 20},
	"record overflow":                {"record_overflow", 22},
	"handshake failure":              {"handshake_failure", 40},
	"bad certificate":                {"bad_certificate", 42},
	"unsupported certificate":        {"unsupported_certificate", 43},
	"revoked certificate":            {"certificate_revoked", 44},
	"expired certificate":            {"certificate_expired", 45},
	"unknown certificate":            {"certificate_unknown", 46},
	"illegal parameter":              {"illegal_parameter", 47},
	"unknown certificate authority":  {"unknown_ca", 48},
	"access denied":                  {"access_denied", 49},
	"error decoding message":         {"decode_error", 50},
	"error decrypting message":       {"decrypt_error", 51},
	"protocol version not supported": {"protocol_version", 70},
	"insufficient security level":    {"insufficient_security", 71},
	"internal error":                 {"internal_error", 80},
	"inappropriate fallback":         {"inappropriate_fallback", 86},
	"user canceled":                  {"user_canceled", 90},
	"missing extension":              {"missing_extension", 109},
	"unsupported extension":          {"unsupported_extension", 110},
	"unrecognized name":              {"unrecognized_name", 112},
	"unknown PSK identity":           {"unknown_psk_identity", 115},
	"certificate required":           {"certificate_required", 116},
	"no application protocol":        {"no_application_protocol", 120},
}

// remoteAlert returns the alert an error of crypto/tls says the peer
// sent ("remote error: tls: bad certificate"), or nil.
func remoteAlert(errText string) *truth.TLSAlert {
	text, ok := strings.CutPrefix(errText, "remote error: tls: ")
	if !ok {
		return nil
	}
	a := &truth.TLSAlert{Description: strings.ReplaceAll(text, " ", "_")}
	if n, ok := alertNames[text]; ok {
		a.Description, a.Code = n.name, n.code
	}
	return a
}

// tlsAlert tells, from the two programs' errors, which side sent the
// fatal alert that ended a handshake, and which alert; nil if neither
// side received one.
func tlsAlert(r *truth.TLS) *truth.TLSAlert {
	if a := remoteAlert(r.ClientError); a != nil {
		a.From = string(serverSide)
		return a
	}
	if a := remoteAlert(r.ServerError); a != nil {
		a.From = string(clientSide)
		return a
	}
	return nil
}

// errNotHello is returned by offersResumption for bytes that do not
// start with a ClientHello.
var errNotHello = errors.New("not a TLS handshake record holding a ClientHello")

// helloInfo is what capgen reads of a ClientHello.
type helloInfo struct {
	random []byte
	ticket []byte // the session_ticket extension's data
	// offered: a pre_shared_key extension (TLS 1.3) or a non-empty
	// session_ticket extension (TLS 1.2).
	offered bool
}

// parseHello reads the ClientHello at the start of b, the bytes a client
// wrote. The ClientHello must fit in the first record.
func parseHello(b []byte) (helloInfo, error) {
	var h helloInfo
	s := cryptobyte.String(b)
	var typ uint8
	var vers uint16
	var rec, msg cryptobyte.String
	var hsType uint8
	if !s.ReadUint8(&typ) || typ != 22 || !s.ReadUint16(&vers) || !s.ReadUint16LengthPrefixed(&rec) ||
		!rec.ReadUint8(&hsType) || hsType != 1 || !rec.ReadUint24LengthPrefixed(&msg) {
		return h, errNotHello
	}
	var random []byte
	var sid, suites, comp, exts cryptobyte.String
	if !msg.Skip(2) || !msg.ReadBytes(&random, 32) || !msg.ReadUint8LengthPrefixed(&sid) ||
		!msg.ReadUint16LengthPrefixed(&suites) || !msg.ReadUint8LengthPrefixed(&comp) ||
		!msg.ReadUint16LengthPrefixed(&exts) || !msg.Empty() {
		return h, errNotHello
	}
	h.random = random
	for !exts.Empty() {
		var ext uint16
		var data cryptobyte.String
		if !exts.ReadUint16(&ext) || !exts.ReadUint16LengthPrefixed(&data) {
			return h, errNotHello
		}
		switch ext {
		case 41: // pre_shared_key
			h.offered = true
		case 35: // session_ticket
			h.ticket = data
			h.offered = h.offered || len(data) > 0
		}
	}
	return h, nil
}

// newTickets returns the tickets of the NewSessionTicket messages in the
// plaintext handshake records at the start of b, the bytes a server wrote
// (TLS 1.2: before its ChangeCipherSpec; TLS 1.3 sends them encrypted).
func newTickets(b []byte) [][]byte {
	var hs []byte
	s := cryptobyte.String(b)
	for !s.Empty() {
		var typ uint8
		var rec cryptobyte.String
		if !s.ReadUint8(&typ) || !s.Skip(2) || !s.ReadUint16LengthPrefixed(&rec) || typ != 22 {
			break
		}
		hs = append(hs, rec...)
	}
	var tickets [][]byte
	m := cryptobyte.String(hs)
	for !m.Empty() {
		var typ uint8
		var body cryptobyte.String
		if !m.ReadUint8(&typ) || !m.ReadUint24LengthPrefixed(&body) {
			break
		}
		var ticket cryptobyte.String
		if typ == 4 && body.Skip(4) && body.ReadUint16LengthPrefixed(&ticket) {
			tickets = append(tickets, ticket)
		}
	}
	return tickets
}

// finishTLS completes the TLS records of t's connections from the
// programs' records, the bytes they wrote and the key log, and fills the
// TLS fields of t.Expect.
func finishTLS(t *truth.Truth, recs []*connRecord, keylog []byte) error {
	e := &t.Expect
	e.TLSAlerts = map[string]int{}
	issued := make(map[string]int) // ticket -> connection ID
	for i, c := range recs {
		if c.tls == nil {
			return fmt.Errorf("connection %d: no TLS handshake recorded", c.id)
		}
		r := *c.tls
		h, err := parseHello(c.sides[0].wire)
		if err != nil {
			return fmt.Errorf("connection %d: %w", c.id, err)
		}
		offered := h.offered
		r.OfferedResumption = offered
		r.KeyLogged = bytes.Contains(keylog, []byte(" "+hex.EncodeToString(h.random)+" "))
		if r.DidResume && len(h.ticket) > 0 {
			r.ResumedFrom = issued[string(h.ticket)]
		}
		for _, tk := range newTickets(c.sides[1].wire) {
			issued[string(tk)] = c.id
		}
		if r.DidResume && !r.KeyLogged && r.ResumedFrom == 0 {
			return fmt.Errorf("connection %d: resumed, not in the key log, and its ticket is from no earlier connection", c.id)
		}
		if r.Alert = tlsAlert(&r); r.Alert != nil {
			a := r.Alert
			from := 0
			if a.From == string(serverSide) {
				from = 1
			}
			typ, body := lastRecord(c.sides[from].wire)
			switch {
			case typ == 23:
				a.Encrypted = true
			case typ != 21 || len(body) != 2 || body[0] != 2 || int(body[1]) != a.Code:
				return fmt.Errorf("connection %d: the %s's last record (type %d, % x) is not the fatal alert %s", c.id, a.From, typ, body, a.Description)
			}
		}
		switch {
		case r.HandshakeComplete && r.ServerError == "" && r.DidResume != r.ServerDidResume:
			return fmt.Errorf("connection %d: the client says DidResume %v, the server %v", c.id, r.DidResume, r.ServerDidResume)
		case r.DidResume && !offered:
			return fmt.Errorf("connection %d: resumed without offering a session", c.id)
		}
		if r.HandshakeComplete {
			e.TLSHandshakes++
		}
		if r.DidResume {
			e.TLSResumed++
		}
		if offered && !r.DidResume && r.HandshakeComplete {
			e.TLSResumptionRejected++
		}
		if r.Alert != nil {
			e.TLSAlerts[r.Alert.Description]++
		}
		t.Connections[i].TLS = &r
	}
	if len(e.TLSAlerts) == 0 {
		e.TLSAlerts = nil
	}
	return nil
}

// lastRecord returns the content type and body of the last whole TLS
// record in b, a side's bytes from the start of the connection; 0 if
// there is none.
func lastRecord(b []byte) (uint8, []byte) {
	s := cryptobyte.String(b)
	var typ uint8
	var body []byte
	for !s.Empty() {
		var t uint8
		var rec cryptobyte.String
		if !s.ReadUint8(&t) || !s.Skip(2) || !s.ReadUint16LengthPrefixed(&rec) {
			break
		}
		typ, body = t, rec
	}
	return typ, body
}
