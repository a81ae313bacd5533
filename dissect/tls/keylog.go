package tls

import (
	"bufio"
	"bytes"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"sync"
	"sync/atomic"
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
// captures; a KeyLog is safe for concurrent use. It counts what it was
// given and how the sessions looked up fitted it (Stats).
type KeyLog struct {
	mu      sync.RWMutex
	m       map[[32]byte]*Secrets
	secrets int             // secrets added, one per key log line used
	sources map[string]bool // names given to Read
	// hits and misses count lookups of a client random that has secrets,
	// and of one that has none.
	hits, misses atomic.Int64
}

// KeyLogStats says what a KeyLog was given and how the TLS sessions
// looked up in it fitted it.
type KeyLogStats struct {
	// Secrets counts the secrets read (one per key log line used), from
	// Sources distinct sources (key log files, captures' Decryption
	// Secrets Blocks), for Sessions client randoms.
	Secrets, Sources, Sessions int
	// Matched counts lookups (one per TLS session whose decryption was
	// attempted) of a client random the key log has secrets for, Missing
	// those of a client random it has none for.
	Matched, Missing int
}

// Stats returns what k was given and how the sessions looked up fitted
// it. A nil KeyLog has zero stats.
func (k *KeyLog) Stats() KeyLogStats {
	if k == nil {
		return KeyLogStats{}
	}
	k.mu.RLock()
	defer k.mu.RUnlock()
	return KeyLogStats{Secrets: k.secrets, Sources: len(k.sources), Sessions: len(k.m),
		Matched: int(k.hits.Load()), Missing: int(k.misses.Load())}
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
// errors and counts as one source in Stats. Lines may be of any length:
// one longer than maxKeyLogLine bytes is malformed (no secret is that
// long) and skipped without being held in memory. Comment lines, blank
// lines and labels other than the ones Secrets holds are skipped
// silently. It returns the number of secrets added and one *KeyLogError
// per malformed line, numbered from 1 (at most 10, then a count); the good
// lines are kept either way. A read error ends the log.
func (k *KeyLog) Read(r io.Reader, source string) (added int, errs []error) {
	k.mu.Lock()
	if k.sources == nil {
		k.sources = map[string]bool{}
	}
	k.sources[source] = true
	k.mu.Unlock()
	br := bufio.NewReaderSize(r, 2*maxKeyLogLine)
	line, bad := 0, 0
	malformed := func(reason string) {
		bad++
		if bad <= 10 {
			errs = append(errs, &KeyLogError{Source: source, Line: line, Reason: reason})
		}
	}
	tooLong := func(n int) {
		malformed(fmt.Sprintf("line is %d bytes long, longer than a key log line can be (%d)", n, maxKeyLogLine))
	}
	var rerr error
	for rerr == nil {
		l, err := br.ReadSlice('\n')
		if len(l) == 0 && err != nil {
			rerr = err
			break
		}
		line++
		rerr = err
		if errors.Is(err, bufio.ErrBufferFull) {
			// Longer than the buffer: skip to the end of the line,
			// counting its bytes. A comment may be as long as it likes.
			comment := isComment(l)
			n := len(bytes.TrimRight(l, "\r\n"))
			for errors.Is(rerr, bufio.ErrBufferFull) {
				l, rerr = br.ReadSlice('\n')
				n += len(bytes.TrimRight(l, "\r\n"))
			}
			if !comment {
				tooLong(n)
			}
			continue
		}
		if n := len(bytes.TrimRight(l, "\r\n")); n > maxKeyLogLine {
			if !isComment(l) {
				tooLong(n)
			}
			continue
		}
		ok, reason := k.addLine(l)
		if ok {
			added++
		}
		if reason != "" {
			malformed(reason)
		}
	}
	if bad > 10 {
		errs = append(errs, fmt.Errorf("%s: %d more malformed key log lines", source, bad-10))
	}
	if rerr != nil && rerr != io.EOF {
		errs = append(errs, fmt.Errorf("%s: after line %d: %w", source, line, rerr))
	}
	return added, errs
}

// isComment reports whether key log line l is a comment.
func isComment(l []byte) bool { return bytes.HasPrefix(bytes.TrimLeft(l, " \t"), []byte("#")) }

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
	k.secrets++
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

// Lookup returns a copy of the secrets logged for clientRandom, or nil,
// counting the lookup as matched or missing in Stats (a TLS connection
// looks its client random up once).
func (k *KeyLog) Lookup(clientRandom []byte) *Secrets {
	if k == nil || len(clientRandom) != 32 {
		return nil
	}
	k.mu.RLock()
	defer k.mu.RUnlock()
	s := k.m[[32]byte(clientRandom)]
	if s == nil {
		k.misses.Add(1)
		return nil
	}
	k.hits.Add(1)
	c := *s
	return &c
}

// Clone returns a KeyLog holding the secrets k holds now, which later
// additions to either do not change; its Stats count its own additions
// and lookups. A capture dissected in shards gives each shard a clone, so
// that the secrets of Decryption Secrets Blocks are added to each at its
// place in the capture.
func (k *KeyLog) Clone() *KeyLog {
	c := NewKeyLog()
	if k == nil {
		return c
	}
	k.mu.RLock()
	defer k.mu.RUnlock()
	for cr, s := range k.m {
		cp := *s // the secrets' bytes are never changed, only replaced
		c.m[cr] = &cp
	}
	return c
}

// AddLookups adds the lookups counted by from (a Clone of k) to k's.
func (k *KeyLog) AddLookups(from *KeyLog) {
	if k == nil || from == nil {
		return
	}
	k.hits.Add(from.hits.Load())
	k.misses.Add(from.misses.Load())
}
