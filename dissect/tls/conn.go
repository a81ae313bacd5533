// Package tls dissects TLS records and handshake messages (RFC 5246,
// RFC 8446) from the two in-order byte streams of a TCP connection. It
// reports cleartext handshake messages, alerts and ChangeCipherSpec as
// events and gathers a per-connection Summary: negotiated version, SNI,
// ALPN, cipher suite, resumption and early-data verdicts, alerts and
// timing. Protected records are decrypted when a KeyLog holds the
// session's secrets (TLS 1.3 with AES-GCM or ChaCha20-Poly1305 and
// KeyUpdate; TLS 1.0-1.2 with AES-GCM, ChaCha20-Poly1305 or AES-CBC): the
// protected handshake is then parsed like the cleartext one and the
// application data is handed, in order, to a Handler. Without keys they
// are counted, and the Summary says why they stayed encrypted.
package tls

import (
	ctls "crypto/tls"
	"crypto/x509"
	"fmt"
	"strings"
	"time"

	"github.com/h2scope/h2scope/dissect/event"
	"github.com/h2scope/h2scope/dissect/sniff"
)

// Record content types.
const (
	recordCCS       = 20
	recordAlert     = 21
	recordHandshake = 22
	recordAppData   = 23
	recordHeartbeat = 24
)

const (
	// DefaultMaxRecord is the largest record length accepted: 2^14 plus
	// the 2048 bytes of expansion TLS 1.2 allows a protected record.
	DefaultMaxRecord = 1<<14 + 2048
	// DefaultMaxHandshake caps one reassembled handshake message.
	DefaultMaxHandshake = 256 << 10
	// maxAlerts bounds the alerts a Summary lists.
	maxAlerts = 16
)

// Options tune a Conn. The zero value is valid.
type Options struct {
	// MaxRecord bounds a record's length; 0 means DefaultMaxRecord.
	MaxRecord int
	// MaxHandshake bounds a handshake message's length; 0 means
	// DefaultMaxHandshake.
	MaxHandshake int
	// Keys, if set, holds the secrets to decrypt protected records with.
	Keys *KeyLog
	// Sessions, if set, is shared by the connections of a capture: it
	// tells resumption offers from random session ids, and decrypts
	// resumed TLS 1.2 sessions.
	Sessions *Sessions
	// Plain, if set, receives the decrypted application data of each
	// direction in order, a Gap where records could not be decrypted
	// after some were, and the close of each direction.
	Plain Handler
}

// Handler receives decrypted application data: the same calls a TCP
// connection's byte streams make.
type Handler interface {
	Data(dir event.Dir, b []byte, at event.Ref)
	Gap(dir event.Dir, n int, at event.Ref)
	Close(dir event.Dir, reset bool, at event.Ref)
}

// Reasons records stayed encrypted, the values of Decryption.Reason.
const (
	ReasonNoKeyLog       = "no_key_log"
	ReasonNoKeys         = "no_keys_for_session"
	ReasonNoClientHello  = "no_client_hello"
	ReasonNoServerHello  = "no_server_hello"
	ReasonUnsupported    = "unsupported_cipher_suite"
	ReasonAuthentication = "authentication_failed"
	ReasonCaptureGap     = "capture_gap"
	ReasonEarlyData      = "early_data_before_server_hello"
)

// Decryption says what became of a connection's protected records.
type Decryption struct {
	// Decrypted is true when at least one protected record was
	// decrypted.
	Decrypted bool `json:"decrypted"`
	// Reason says why protected records stayed encrypted (one of the
	// Reason constants); empty when none did.
	Reason string `json:"reason,omitempty"`
	// Records counts decrypted records per direction, Failures records
	// whose authentication failed (wrong or partial key log): those and
	// all later records of the direction are not decrypted, so no wrong
	// plaintext is ever reported.
	Records  [2]int `json:"records"`
	Failures [2]int `json:"failures"`
	// EarlySkipped counts 0-RTT records skipped because the server
	// rejected early data or the key log lacks the early secret.
	EarlySkipped int `json:"early_skipped,omitempty"`
}

// Anomaly tokens, the keys of Summary.Anomalies.
const (
	AnomalyNotTLS               = "not_tls"
	AnomalyRecordTooLong        = "record_too_long"
	AnomalyHandshakeTooLong     = "handshake_too_long"
	AnomalyMalformedHandshake   = "malformed_handshake"
	AnomalyMalformedAlert       = "malformed_alert"
	AnomalyMalformedCCS         = "malformed_change_cipher_spec"
	AnomalyEmptyRecord          = "empty_record"
	AnomalyGap                  = "capture_gap"
	AnomalyTruncatedRecord      = "truncated_record"
	AnomalyTruncatedHandshake   = "truncated_handshake"
	AnomalyPSKNotLast           = "pre_shared_key_not_last"
	AnomalyHeartbeat            = "heartbeat_record"
	AnomalyUnexpectedMessage    = "unexpected_message"
	AnomalyCertificateParse     = "certificate_parse_error"
	AnomalyHandshakeInterleaved = "handshake_interleaved_with_ccs"
	AnomalyEarlyDataDropped     = "early_data_dropped"
)

// Alert is one alert seen in the clear.
type Alert struct {
	// Dir is the side that sent it.
	Dir event.Dir `json:"dir"`
	// Level is "warning" or "fatal"; Description the alert's RFC name
	// ("bad_certificate").
	Level       string `json:"level"`
	Description string `json:"description"`
	// Frame is the frame that carried it.
	Frame uint64 `json:"frame"`
}

// Resumption is the session-resumption verdict.
type Resumption struct {
	// Offered lists what the client offered: "session_id", "ticket",
	// "psk", or just "none".
	Offered []string `json:"offered"`
	// Known is false when no ServerHello was seen, so Accepted means
	// nothing.
	Known bool `json:"known"`
	// Accepted says whether the server resumed a session.
	Accepted bool `json:"accepted"`
	// Mechanism names how: "session_id" or "ticket" (TLS 1.2), "psk_ke"
	// or "psk_dhe_ke" (TLS 1.3); empty when not resumed.
	Mechanism string `json:"mechanism,omitempty"`
}

// EarlyData is the 0-RTT verdict.
type EarlyData struct {
	// Offered says whether the ClientHello offered 0-RTT data.
	Offered bool `json:"offered"`
	// Accepted is "yes", "no", or "unknown" (TLS 1.3 signals acceptance
	// in the encrypted EncryptedExtensions, unreadable without keys).
	Accepted string `json:"accepted,omitempty"`
}

// Certificate describes the first certificate of a cleartext (TLS 1.2)
// Certificate message.
type Certificate struct {
	// Count is the number of certificates in the chain.
	Count int `json:"count"`
	// Subject, Issuer, SANs (DNS names and IP addresses) and NotAfter
	// describe the first (leaf) certificate.
	Subject  string    `json:"subject,omitempty"`
	Issuer   string    `json:"issuer,omitempty"`
	SANs     []string  `json:"sans,omitempty"`
	NotAfter time.Time `json:"not_after,omitzero"`
	// Error says why the leaf could not be parsed, if it could not.
	Error string `json:"error,omitempty"`
}

// Timing holds the frames of handshake milestones; nil when not seen.
// Per-direction arrays are indexed by event.Dir.
type Timing struct {
	// ClientHello and ServerHello are the frames that completed the
	// first ClientHello and the final ServerHello.
	ClientHello *event.Ref `json:"client_hello,omitempty"`
	ServerHello *event.Ref `json:"server_hello,omitempty"`
	// CCS, Finished and FirstAppData are, per direction ([c2s, s2c]),
	// the first ChangeCipherSpec, Finished (when readable: cleartext,
	// decrypted, or TLS 1.2's first protected handshake record) and
	// application_data record.
	CCS          [2]*event.Ref `json:"ccs"`
	Finished     [2]*event.Ref `json:"finished"`
	FirstAppData [2]*event.Ref `json:"first_app_data"`
}

// Durations are the phases of a connection's set-up in milliseconds; nil
// where a phase's ends were not both seen.
type Durations struct {
	// SYNToClientHello runs from the client's first SYN to the
	// ClientHello; ClientHelloToServerHello to the ServerHello;
	// ServerHelloToFinished to the client's Finished (see
	// Summary.HandshakeMS); Total from the SYN to that Finished.
	SYNToClientHello         *float64 `json:"syn_to_client_hello,omitempty"`
	ClientHelloToServerHello *float64 `json:"client_hello_to_server_hello,omitempty"`
	ServerHelloToFinished    *float64 `json:"server_hello_to_finished,omitempty"`
	Total                    *float64 `json:"total,omitempty"`
}

func msBetween(a, b *event.Ref) *float64 {
	if a == nil || b == nil {
		return nil
	}
	ms := float64(b.TS.Sub(a.TS)) / float64(time.Millisecond)
	return &ms
}

// SetSYN fills the durations that start at the client's first SYN (nil
// when the capture has none).
func (s *Summary) SetSYN(syn *event.Ref) {
	s.Durations.SYNToClientHello = msBetween(syn, s.Timing.ClientHello)
	s.Durations.Total = msBetween(syn, s.clientDone())
}

// clientDone is when the client finished its handshake.
func (s *Summary) clientDone() *event.Ref {
	if f := s.Timing.Finished[event.C2S]; f != nil {
		return f
	}
	if s.Timing.ServerHello != nil {
		return s.Timing.FirstAppData[event.C2S]
	}
	return nil
}

// Summary gathers what the handshake revealed about a connection.
type Summary struct {
	// Version is the negotiated version ("TLS 1.3"), empty before a
	// ServerHello.
	Version string `json:"version,omitempty"`
	// ClientVersion is the ClientHello's legacy_version, OfferedVersions
	// its supported_versions.
	ClientVersion   string   `json:"client_version,omitempty"`
	OfferedVersions []string `json:"offered_versions,omitempty"`
	SNI             string   `json:"sni,omitempty"`
	// JA4 and JA3 fingerprint the client from its ClientHello (FoxIO's
	// JA4 TLS client fingerprint; Salesforce's JA3 string's MD5).
	JA4         string   `json:"ja4,omitempty"`
	JA3         string   `json:"ja3,omitempty"`
	ALPNOffered []string `json:"alpn_offered,omitempty"`
	// ALPNSelected is the server's choice when visible (TLS 1.2
	// ServerHello; in TLS 1.3 it is encrypted).
	ALPNSelected   string       `json:"alpn,omitempty"`
	CipherSuite    string       `json:"cipher,omitempty"`
	CipherSuites   int          `json:"cipher_suites_offered,omitempty"`
	KeyShareGroups []uint16     `json:"key_share_groups,omitempty"`
	KeyShareGroup  uint16       `json:"key_share_group,omitempty"`
	Resumption     Resumption   `json:"resumption"`
	EarlyData      EarlyData    `json:"early_data"`
	HelloRetry     bool         `json:"hello_retry_request,omitempty"`
	Certificate    *Certificate `json:"certificate,omitempty"`
	Alerts         []Alert      `json:"alerts,omitempty"`
	// AlertsDropped counts the alerts past the first maxAlerts (16).
	AlertsDropped int    `json:"alerts_dropped,omitempty"`
	Timing        Timing `json:"timing"`
	// TicketLifetime is the lifetime, in seconds, of the last
	// NewSessionTicket (TLS 1.3 tickets only when decrypted); Tickets
	// counts them.
	TicketLifetime uint32 `json:"ticket_lifetime_s,omitempty"`
	Tickets        int    `json:"tickets,omitempty"`
	// TicketLen is the length of the last ticket, in bytes: a stateless
	// ticket (the session sealed with the server's ticket key) takes
	// 100–250 or more; a stateful one, a key into the server's session
	// cache, 32 or so (OpenSSL's in TLS 1.3 with tickets off).
	TicketLen int `json:"ticket_len,omitempty"`
	// HandshakeMS is the handshake's duration in milliseconds, from
	// the ClientHello to the client's Finished (when that is encrypted
	// and unreadable: to the client's first protected record after the
	// ServerHello, which carries it); nil when either was not seen.
	// Durations splits the connection set-up into phases.
	HandshakeMS *float64  `json:"handshake_ms"`
	Durations   Durations `json:"durations_ms"`
	// Decrypted is true when protected records were decrypted;
	// Decryption says more, and why not.
	Decrypted  bool       `json:"decrypted"`
	Decryption Decryption `json:"decryption"`
	// Messages counts handshake messages by name (protected ones when
	// decrypted).
	Messages map[string]int `json:"messages,omitempty"`
	// EncryptedRecords counts records whose content could not be read
	// (encrypted handshake, encrypted alerts); AppDataRecords counts
	// application_data records (in TLS 1.3 these include the encrypted
	// handshake). Both are per direction.
	EncryptedRecords [2]int `json:"encrypted_records"`
	AppDataRecords   [2]int `json:"app_data_records"`
	// Anomalies counts oddities by stable token.
	Anomalies map[string]int `json:"anomalies,omitempty"`
}

type direction struct {
	buf       []byte // unconsumed record bytes
	hs        []byte // unconsumed handshake bytes
	stopped   bool
	encrypted bool
	sawCCS    bool
	// prot removes the protection of the direction's records; pending is
	// the TLS 1.3 protector tried when prot fails (handshake keys after
	// skipped early data). failed stops decryption after a failure.
	prot    *protector
	pending *protector
	failed  bool
	opened  bool // a record was decrypted
	started bool // bytes were read past the first check
	scratch []byte
	// lastEarly is set when the last record was opened with 0-RTT keys;
	// earlyHeld holds such data until the server's verdict.
	lastEarly    bool
	earlyHeld    []byte
	earlyAt      event.Ref
	earlyRecords int
}

// Conn dissects one TCP connection's TLS. It is not safe for concurrent
// use.
type Conn struct {
	id   event.ConnID
	sink event.Sink
	opts Options
	d    [2]direction
	ev   event.Event

	ch         *clientHello
	sh         *serverHello
	tls13      bool
	shSeen     bool
	afterSH    int  // server handshake messages (bar NewSessionTicket) after the final ServerHello
	ccsAfterSH bool // server CCS with no handshake message since ServerHello
	sum        Summary
	// secrets are the session's keys once looked up; keys12 the TLS 1.2
	// protectors derived from them (client, server).
	secrets *Secrets
	looked  bool
	keys12  [2]*protector
	reason  string // why protected records stayed encrypted
	// sawEE and earlyAccepted record the decrypted EncryptedExtensions'
	// early-data verdict.
	sawEE, earlyAccepted bool
	// idIssued is set when the ClientHello's session id was issued by a
	// server earlier in the capture.
	idIssued bool
	// undecrypted counts protected records left encrypted.
	undecrypted int
}

// NewConn returns a Conn reporting to sink. A nil sink discards events.
func NewConn(id event.ConnID, sink event.Sink, opts Options) *Conn {
	if opts.MaxRecord <= 0 {
		opts.MaxRecord = DefaultMaxRecord
	}
	if opts.MaxHandshake <= 0 {
		opts.MaxHandshake = DefaultMaxHandshake
	}
	return &Conn{id: id, sink: sink, opts: opts}
}

func (c *Conn) anomaly(tok string) {
	if c.sum.Anomalies == nil {
		c.sum.Anomalies = map[string]int{}
	}
	c.sum.Anomalies[tok]++
}

func (c *Conn) emit(dir event.Dir, typ string, n int, errName string, at event.Ref) {
	if c.sink == nil {
		return
	}
	c.ev = event.Event{Ref: at, Conn: c.id, Dir: dir, Proto: event.ProtoTLS, Type: typ, Len: n, Error: errName}
	c.sink.Event(&c.ev)
}

func refp(r event.Ref) *event.Ref { return &r }

// Data consumes the next in-order bytes of dir. b is not retained.
func (c *Conn) Data(dir event.Dir, b []byte, at event.Ref) {
	d := &c.d[dir&1]
	if d.stopped || len(b) == 0 {
		return
	}
	d.buf = append(d.buf, b...)
	off := 0
	if dir == event.C2S && !d.started && c.ch == nil {
		// The client's first bytes may be an SSL 2.0-format ClientHello.
		n, ok, more := sniff.SSLv2ClientHello(d.buf)
		switch {
		case more:
			return
		case ok && len(d.buf) < 2+n:
			return
		case ok:
			c.sslv2Hello(d.buf[2:2+n], at)
			off = 2 + n
		}
	}
	d.started = true
	for !d.stopped && len(d.buf)-off >= 5 {
		h := d.buf[off:]
		typ := h[0]
		n := int(h[3])<<8 | int(h[4])
		if typ < recordCCS || typ > recordHeartbeat || h[1] != 3 {
			c.anomaly(AnomalyNotTLS)
			c.stop(d)
			return
		}
		if n > c.opts.MaxRecord {
			c.anomaly(AnomalyRecordTooLong)
			c.stop(d)
			return
		}
		if len(h) < 5+n {
			break
		}
		c.record(dir, d, typ, h[5:5+n], at)
		off += 5 + n
	}
	if d.stopped {
		return
	}
	// Keep only the unconsumed tail.
	rest := copy(d.buf, d.buf[off:])
	d.buf = d.buf[:rest]
	if cap(d.buf) > 4*DefaultMaxRecord && rest < DefaultMaxRecord {
		d.buf = append([]byte(nil), d.buf...)
	}
}

// stop abandons a direction: its framing is lost.
func (c *Conn) stop(d *direction) {
	d.stopped = true
	d.buf = nil
	d.hs = nil
}

func (c *Conn) record(dir event.Dir, d *direction, typ uint8, p []byte, at event.Ref) {
	protected := c.tls13 && typ == recordAppData || d.encrypted && !c.tls13
	if typ == recordAppData {
		c.sum.AppDataRecords[dir]++
	}
	if protected {
		pt, inner, ok := c.unprotect(dir, d, typ, p, at)
		if !ok {
			c.countProtected(dir, d, typ, at)
			return
		}
		c.plain(dir, d, inner, pt, at, true)
		return
	}
	c.plain(dir, d, typ, p, at, false)
}

// countProtected accounts for a record that stayed encrypted.
func (c *Conn) countProtected(dir event.Dir, d *direction, typ uint8, at event.Ref) {
	if typ == recordAppData {
		c.undecrypted++
		if c.sum.Timing.FirstAppData[dir] == nil {
			c.sum.Timing.FirstAppData[dir] = refp(at)
		}
		return
	}
	c.sum.EncryptedRecords[dir]++
	c.undecrypted++
	if typ == recordHandshake && d.sawCCS && !c.tls13 && c.sum.Timing.Finished[dir] == nil {
		// In TLS 1.2 the first protected handshake message after
		// ChangeCipherSpec is Finished.
		c.sum.Timing.Finished[dir] = refp(at)
	}
}

// plain handles a record's content: cleartext, or decrypted when
// decrypted is set (typ is then the inner content type).
func (c *Conn) plain(dir event.Dir, d *direction, typ uint8, p []byte, at event.Ref, decrypted bool) {
	switch typ {
	case recordCCS:
		if len(p) != 1 || p[0] != 1 {
			c.anomaly(AnomalyMalformedCCS)
		}
		if len(d.hs) > 0 {
			c.anomaly(AnomalyHandshakeInterleaved)
			d.hs = nil
		}
		if c.sum.Timing.CCS[dir] == nil {
			c.sum.Timing.CCS[dir] = refp(at)
		}
		if dir == event.S2C && c.shSeen && c.afterSH == 0 && !d.sawCCS {
			c.ccsAfterSH = true
		}
		d.sawCCS = true
		// In TLS 1.3 ChangeCipherSpec is a middlebox-compatibility no-op
		// (it may follow a HelloRetryRequest); it protects nothing.
		if !(c.ch != nil && c.ch.offers13() && (c.sh == nil || c.tls13)) {
			d.encrypted = true
		}
		c.emit(dir, "ChangeCipherSpec", len(p), "", at)
	case recordAlert:
		if !decrypted && (d.encrypted || c.tls13) {
			c.sum.EncryptedRecords[dir]++
			return
		}
		if len(p) != 2 {
			c.anomaly(AnomalyMalformedAlert)
			return
		}
		level := "warning"
		switch p[0] {
		case 1:
		case 2:
			level = "fatal"
		default:
			level = fmt.Sprintf("unknown_%d", p[0])
		}
		name := alertName(p[1])
		if len(c.sum.Alerts) < maxAlerts {
			c.sum.Alerts = append(c.sum.Alerts, Alert{Dir: dir, Level: level, Description: name, Frame: at.Frame})
		} else {
			c.sum.AlertsDropped++
		}
		c.emit(dir, "Alert", len(p), name, at)
	case recordHandshake:
		if len(p) == 0 {
			c.anomaly(AnomalyEmptyRecord)
			return
		}
		if !decrypted && (d.encrypted || c.tls13) {
			c.countProtected(dir, d, typ, at)
			return
		}
		d.hs = append(d.hs, p...)
		c.handshake(dir, d, at, decrypted)
	case recordAppData:
		if c.sum.Timing.FirstAppData[dir] == nil {
			c.sum.Timing.FirstAppData[dir] = refp(at)
		}
		switch {
		case !decrypted || len(p) == 0:
		case d.lastEarly && !c.sawEE:
			c.holdEarly(p, at)
		case d.lastEarly && !c.earlyAccepted:
			c.sum.Decryption.EarlySkipped++
		case c.opts.Plain != nil:
			c.settleEarly()
			c.opts.Plain.Data(dir, p, at)
		}
	case recordHeartbeat:
		c.anomaly(AnomalyHeartbeat)
	}
}

// handshake parses the complete messages buffered in d.hs.
func (c *Conn) handshake(dir event.Dir, d *direction, at event.Ref, decrypted bool) {
	off := 0
	for len(d.hs)-off >= 4 {
		h := d.hs[off:]
		n := int(h[1])<<16 | int(h[2])<<8 | int(h[3])
		if n > c.opts.MaxHandshake {
			c.anomaly(AnomalyHandshakeTooLong)
			c.stop(d)
			return
		}
		if len(h) < 4+n {
			break
		}
		off += 4 + n
		c.message(dir, h[0], h[4:4+n], at, decrypted)
		if d.stopped {
			return
		}
		if c.tls13 && !decrypted && off < len(d.hs) {
			// Bytes after the ServerHello in its record would be
			// encrypted; they cannot be cleartext handshake.
			c.anomaly(AnomalyUnexpectedMessage)
			off = len(d.hs)
		}
	}
	rest := copy(d.hs, d.hs[off:])
	d.hs = d.hs[:rest]
	if rest == 0 && cap(d.hs) > 64<<10 {
		d.hs = nil
	}
}

func (c *Conn) countMessage(name string) {
	if c.sum.Messages == nil {
		c.sum.Messages = map[string]int{}
	}
	c.sum.Messages[name]++
}

func (c *Conn) message(dir event.Dir, typ uint8, body []byte, at event.Ref, decrypted bool) {
	name := handshakeName(typ)
	// Hellos travel in the clear: one inside protected records is not
	// part of this handshake (and must not change the version its keys
	// were derived for).
	if (typ == typeClientHello || typ == typeServerHello) && decrypted {
		c.anomaly(AnomalyUnexpectedMessage)
		c.countMessage(name)
		c.emit(dir, name, len(body), "unexpected", at)
		return
	}
	switch typ {
	case typeClientHello:
		ch, err := parseClientHello(body)
		if err != nil {
			c.anomaly(AnomalyMalformedHandshake)
			break
		}
		if ch.pskNotLast {
			c.anomaly(AnomalyPSKNotLast)
		}
		if c.ch == nil || c.sum.HelloRetry {
			c.ch = ch
			c.idIssued = c.opts.Sessions.wasIssued(ch.sessionID)
			if c.sum.Timing.ClientHello == nil {
				c.sum.Timing.ClientHello = refp(at)
			}
		}
	case typeServerHello:
		sh, err := parseServerHello(body)
		if err != nil {
			c.anomaly(AnomalyMalformedHandshake)
			break
		}
		if sh.hrr {
			name = "HelloRetryRequest"
			c.sum.HelloRetry = true
			break
		}
		c.sh = sh
		c.shSeen = true
		if c.ch == nil || string(sh.sessionID) != string(c.ch.sessionID) {
			// A new session (TLS 1.3's echo of the legacy id is not one).
			c.opts.Sessions.issue(sh.sessionID)
		}
		c.afterSH = 0
		if c.sum.Timing.ServerHello == nil {
			c.sum.Timing.ServerHello = refp(at)
		}
		if sh.negotiated() == 0x0304 {
			// Everything after the ServerHello is protected, both ways.
			c.tls13 = true
		}
	case typeCertificate:
		if dir == event.S2C && c.sum.Certificate == nil {
			c.sum.Certificate = parseCertificate(body, c.tls13)
			if c.sum.Certificate.Error != "" {
				c.anomaly(AnomalyCertificateParse)
			}
		}
	case typeNewSessionTicket:
		lifetime, ticket, ok := parseNewSessionTicket(body, c.tls13)
		if !ok {
			c.anomaly(AnomalyMalformedHandshake)
			break
		}
		c.sum.Tickets++
		c.sum.TicketLifetime, c.sum.TicketLen = lifetime, len(ticket)
		if !c.tls13 {
			c.opts.Sessions.remember('t', ticket, c.master12())
		}
	case typeEncryptedExtensions:
		c.encryptedExtensions(body)
	case typeKeyUpdate:
		d := &c.d[dir&1]
		if len(body) != 1 || body[0] > 1 {
			c.anomaly(AnomalyMalformedHandshake)
		}
		if d.prot != nil {
			d.prot = d.prot.next()
			if d.prot == nil {
				d.failed = true
			}
		}
	case typeEndOfEarlyData:
		if d := &c.d[dir&1]; d.pending != nil {
			d.prot, d.pending = d.pending, nil
		}
	case typeServerHelloDone, typeHelloRequest:
		if len(body) != 0 {
			c.anomaly(AnomalyMalformedHandshake)
		}
	case typeFinished:
		if c.sum.Timing.Finished[dir] == nil {
			c.sum.Timing.Finished[dir] = refp(at)
		}
		if c.tls13 {
			c.applicationKeys(dir)
		}
	}
	if dir == event.S2C && c.shSeen && typ != typeServerHello && typ != typeNewSessionTicket {
		c.afterSH++
	}
	c.countMessage(name)
	c.emit(dir, name, len(body), "", at)
}

func (ch *clientHello) offers13() bool {
	for _, v := range ch.supportedVersions {
		if v == 0x0304 {
			return true
		}
	}
	return false
}

// parseCertificate reads a Certificate message; TLS 1.3's adds a request
// context and per-certificate extensions.
func parseCertificate(body []byte, tls13 bool) *Certificate {
	ci := &Certificate{}
	r := reader(body)
	var list, context reader
	if tls13 && !r.lp8(&context) {
		ci.Error = "malformed certificate request context"
		return ci
	}
	if !r.lp24(&list) || !r.empty() {
		ci.Error = "malformed certificate list"
		return ci
	}
	var first []byte
	for !list.empty() {
		var cert reader
		var exts reader
		if !list.lp24(&cert) || tls13 && !list.lp16(&exts) {
			ci.Error = "malformed certificate list"
			return ci
		}
		if ci.Count == 0 {
			first = cert
		}
		ci.Count++
	}
	if first == nil {
		return ci
	}
	x, err := x509.ParseCertificate(first)
	if err != nil {
		ci.Error = err.Error()
		return ci
	}
	ci.Subject = x.Subject.String()
	ci.Issuer = x.Issuer.String()
	ci.SANs = append(ci.SANs, x.DNSNames...)
	for _, ip := range x.IPAddresses {
		ci.SANs = append(ci.SANs, ip.String())
	}
	ci.NotAfter = x.NotAfter
	return ci
}

// Gap reports n lost bytes of dir. Record framing cannot be recovered
// reliably, so the direction is no longer parsed.
func (c *Conn) Gap(dir event.Dir, n int, at event.Ref) {
	d := &c.d[dir&1]
	if d.stopped {
		return
	}
	c.anomaly(AnomalyGap)
	if d.opened && c.opts.Plain != nil {
		c.opts.Plain.Gap(dir, n, at)
	}
	if d.prot != nil {
		c.because(ReasonCaptureGap)
	}
	c.stop(d)
}

// Close reports the end of dir; buffered partial records are reported as
// truncated.
func (c *Conn) Close(dir event.Dir, reset bool, at event.Ref) {
	if dir == event.C2S {
		// No verdict on held 0-RTT data by now: it is not reported.
		c.settleEarly()
	}
	if c.opts.Plain != nil {
		c.opts.Plain.Close(dir, reset, at)
	}
	d := &c.d[dir&1]
	if d.stopped {
		return
	}
	if len(d.buf) > 0 {
		c.anomaly(AnomalyTruncatedRecord)
	}
	if len(d.hs) > 0 {
		c.anomaly(AnomalyTruncatedHandshake)
	}
	c.stop(d)
}

// Summary returns what the connection revealed so far. The returned value
// shares no mutable state with c except the slices, maps and pointers it
// holds, which the caller must not modify.
func (c *Conn) Summary() Summary {
	s := c.sum
	ch, sh := c.ch, c.sh
	if ch != nil {
		s.ClientVersion = versionName(ch.version)
		s.OfferedVersions = nil
		for _, v := range ch.supportedVersions {
			s.OfferedVersions = append(s.OfferedVersions, versionName(v))
		}
		s.SNI = ch.sni
		s.JA4 = ch.ja4()
		_, s.JA3 = ch.ja3()
		s.ALPNOffered = ch.alpn
		s.CipherSuites = len(ch.cipherSuites)
		s.KeyShareGroups = ch.keyShareGroups
		s.EarlyData.Offered = ch.earlyData
	}
	if sh != nil {
		s.Version = versionName(sh.negotiated())
		s.CipherSuite = ctls.CipherSuiteName(sh.cipherSuite)
		if sh.alpn != "" {
			s.ALPNSelected = sh.alpn
		}
		s.KeyShareGroup = sh.keyShareGroup
	}
	s.Resumption = c.resumption()
	s.Decryption.Decrypted = c.d[0].opened || c.d[1].opened
	s.Decrypted = s.Decryption.Decrypted
	done := s.clientDone()
	s.HandshakeMS = msBetween(s.Timing.ClientHello, done)
	s.Durations.ClientHelloToServerHello = msBetween(s.Timing.ClientHello, s.Timing.ServerHello)
	s.Durations.ServerHelloToFinished = msBetween(s.Timing.ServerHello, done)
	if c.undecrypted > 0 {
		s.Decryption.Reason = c.reason
		if s.Decryption.Reason == "" && !c.d[event.C2S].opened && s.Decryption.EarlySkipped > 0 {
			// Every client record failed, taken for rejected 0-RTT data.
			s.Decryption.Reason = ReasonAuthentication
		}
		if s.Decryption.Reason == "" {
			s.Decryption.Reason = ReasonNoKeyLog
		}
	}
	if s.EarlyData.Offered && sh != nil {
		switch {
		case !c.tls13 || !sh.pskSelected || s.HelloRetry:
			s.EarlyData.Accepted = "no"
		case c.sawEE && c.earlyAccepted:
			s.EarlyData.Accepted = "yes"
		case c.sawEE:
			s.EarlyData.Accepted = "no"
		default:
			s.EarlyData.Accepted = "unknown"
		}
	}
	return s
}

func (c *Conn) resumption() Resumption {
	var r Resumption
	ch, sh := c.ch, c.sh
	if ch != nil {
		// In TLS 1.3 legacy_session_id is a middlebox-compatibility value,
		// not a resumption offer; a client that offers TLS 1.3 sends one
		// (RFC 8446 D.4) even when the server then picks TLS 1.2, so its
		// session id counts as an offer only when the server echoes it.
		// Clients also send random session ids (Go does, to detect an
		// accepted ticket; RFC 5077 3.4): a session id is an offer when
		// the server echoes it or issued it earlier in the capture.
		echoed := sh != nil && len(sh.sessionID) > 0 && string(sh.sessionID) == string(ch.sessionID)
		if len(ch.sessionID) > 0 && !c.tls13 && (echoed || c.idIssued) {
			r.Offered = append(r.Offered, "session_id")
		}
		if ch.ticketPresent && ch.ticketLen > 0 {
			r.Offered = append(r.Offered, "ticket")
		}
		if ch.pskPresent {
			r.Offered = append(r.Offered, "psk")
		}
	}
	if len(r.Offered) == 0 {
		r.Offered = []string{"none"}
	}
	if ch == nil || sh == nil {
		return r
	}
	if c.tls13 {
		r.Known = true
		if sh.pskSelected && ch.pskPresent {
			r.Accepted = true
			r.Mechanism = "psk_ke"
			if sh.keyShare {
				r.Mechanism = "psk_dhe_ke"
			}
		}
		return r
	}
	// TLS 1.2 and earlier: resumption is an abbreviated handshake, in
	// which the server's ChangeCipherSpec follows its ServerHello with no
	// Certificate, ServerKeyExchange or ServerHelloDone between.
	m := c.sum.Messages
	full := m["Certificate"] > 0 || m["ServerKeyExchange"] > 0 || m["ServerHelloDone"] > 0
	echoed := len(sh.sessionID) > 0 && string(sh.sessionID) == string(ch.sessionID)
	ticket := ch.ticketPresent && ch.ticketLen > 0
	if !c.ccsAfterSH && !full {
		// The server's flight is not complete yet.
		return r
	}
	r.Known = true
	if full {
		return r
	}
	switch {
	case ticket && (c.ccsAfterSH || echoed):
		r.Accepted, r.Mechanism = true, "ticket"
	case echoed:
		r.Accepted, r.Mechanism = true, "session_id"
	}
	return r
}

// String renders the resumption offer list.
func (r Resumption) String() string {
	s := strings.Join(r.Offered, ",")
	if r.Accepted {
		return s + " -> " + r.Mechanism
	}
	return s
}
