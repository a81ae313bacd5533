package tls

import (
	"bufio"
	"bytes"
	"encoding/hex"
	"fmt"
	"io"
	"sync"
)

// Key log labels (NSS SSLKEYLOGFILE format), the secrets a Secrets holds.
const (
	labelClientRandom     = "CLIENT_RANDOM"
	labelClientEarly      = "CLIENT_EARLY_TRAFFIC_SECRET"
	labelClientHandshake  = "CLIENT_HANDSHAKE_TRAFFIC_SECRET"
	labelServerHandshake  = "SERVER_HANDSHAKE_TRAFFIC_SECRET"
	labelClientTraffic0   = "CLIENT_TRAFFIC_SECRET_0"
	labelServerTraffic0   = "SERVER_TRAFFIC_SECRET_0"
	maxKeyLogLine         = 1024
	maxKeyLogSecretLength = 64 // SHA-384 secrets are 48 bytes
)

// Secrets are the secrets a key log holds for one TLS session, named by
// its ClientHello.random. A nil field was not logged.
type Secrets struct {
	// Master is the TLS 1.2 (and earlier) master secret (CLIENT_RANDOM).
	Master []byte
	// ClientEarly is the TLS 1.3 client_early_traffic_secret.
	ClientEarly []byte
	// ClientHandshake and ServerHandshake are the TLS 1.3 handshake
	// traffic secrets.
	ClientHandshake, ServerHandshake []byte
	// ClientTraffic and ServerTraffic are the first TLS 1.3 application
	// traffic secrets (CLIENT_TRAFFIC_SECRET_0, SERVER_TRAFFIC_SECRET_0).
	ClientTraffic, ServerTraffic []byte
}

// KeyLog holds the secrets of a key log, by client random. Lines are added
// from key log files and from the Decryption Secrets Blocks of pcapng
// captures; a KeyLog is safe for concurrent use.
type KeyLog struct {
	mu sync.RWMutex
	m  map[[32]byte]*Secrets
}

// NewKeyLog returns an empty KeyLog.
func NewKeyLog() *KeyLog { return &KeyLog{m: map[[32]byte]*Secrets{}} }

// KeyLogError locates a key log line that could not be used.
type KeyLogError struct {
	// Source names where the line came from: a file name, or a capture
	// file's Decryption Secrets Block.
	Source string
	// Line is the 1-based line number.
	Line int
	// Reason says what is wrong.
	Reason string
}

func (e *KeyLogError) Error() string {
	return fmt.Sprintf("%s:%d: key log line ignored: %s", e.Source, e.Line, e.Reason)
}

// Read adds the lines of an NSS key log read from r; source names it in
// errors. Comment lines, blank lines and labels other than the ones
// Secrets holds are skipped silently. It returns the number of secrets
// added and one *KeyLogError per malformed line (at most 10, then a
// count); the good lines are kept either way. A read error ends the log.
func (k *KeyLog) Read(r io.Reader, source string) (added int, errs []error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 4096), maxKeyLogLine)
	line, bad := 0, 0
	for sc.Scan() {
		line++
		ok, reason := k.addLine(sc.Bytes())
		if ok {
			added++
		}
		if reason != "" {
			bad++
			if bad <= 10 {
				errs = append(errs, &KeyLogError{Source: source, Line: line, Reason: reason})
			}
		}
	}
	if bad > 10 {
		errs = append(errs, fmt.Errorf("%s: %d more malformed key log lines", source, bad-10))
	}
	if err := sc.Err(); err != nil {
		errs = append(errs, fmt.Errorf("%s: after line %d: %w", source, line, err))
	}
	return added, errs
}

// Add adds the lines of an NSS key log held in memory, as Read does.
func (k *KeyLog) Add(b []byte, source string) (added int, errs []error) {
	return k.Read(bytes.NewReader(b), source)
}

// addLine parses one line: "LABEL <64 hex client random> <hex secret>".
func (k *KeyLog) addLine(l []byte) (ok bool, reason string) {
	l = bytes.TrimSpace(l)
	if len(l) == 0 || l[0] == '#' {
		return false, ""
	}
	f := bytes.Fields(l)
	if len(f) != 3 {
		return false, fmt.Sprintf("want 3 fields, have %d", len(f))
	}
	label := string(f[0])
	switch label {
	case labelClientRandom, labelClientEarly, labelClientHandshake, labelServerHandshake,
		labelClientTraffic0, labelServerTraffic0:
	default:
		// EXPORTER_SECRET, RSA and others: not needed to decrypt.
		return false, ""
	}
	var cr [32]byte
	if len(f[1]) != 64 {
		return false, fmt.Sprintf("%s: client random is %d hex digits, want 64", label, len(f[1]))
	}
	if _, err := hex.Decode(cr[:], f[1]); err != nil {
		return false, fmt.Sprintf("%s: client random: %v", label, err)
	}
	if len(f[2])%2 != 0 || len(f[2]) == 0 || len(f[2]) > 2*maxKeyLogSecretLength {
		return false, fmt.Sprintf("%s: secret is %d hex digits", label, len(f[2]))
	}
	secret := make([]byte, len(f[2])/2)
	if _, err := hex.Decode(secret, f[2]); err != nil {
		return false, fmt.Sprintf("%s: secret: %v", label, err)
	}
	if label == labelClientRandom && len(secret) != 48 {
		return false, fmt.Sprintf("%s: master secret is %d bytes, want 48", label, len(secret))
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.m == nil {
		k.m = map[[32]byte]*Secrets{}
	}
	s := k.m[cr]
	if s == nil {
		s = &Secrets{}
		k.m[cr] = s
	}
	switch label {
	case labelClientRandom:
		s.Master = secret
	case labelClientEarly:
		s.ClientEarly = secret
	case labelClientHandshake:
		s.ClientHandshake = secret
	case labelServerHandshake:
		s.ServerHandshake = secret
	case labelClientTraffic0:
		s.ClientTraffic = secret
	case labelServerTraffic0:
		s.ServerTraffic = secret
	}
	return true, ""
}

// Len returns the number of sessions with at least one secret.
func (k *KeyLog) Len() int {
	if k == nil {
		return 0
	}
	k.mu.RLock()
	defer k.mu.RUnlock()
	return len(k.m)
}

// Lookup returns a copy of the secrets logged for clientRandom, or nil.
func (k *KeyLog) Lookup(clientRandom []byte) *Secrets {
	if k == nil || len(clientRandom) != 32 {
		return nil
	}
	k.mu.RLock()
	defer k.mu.RUnlock()
	s := k.m[[32]byte(clientRandom)]
	if s == nil {
		return nil
	}
	c := *s
	return &c
}
