package tls

import "sync"

// maxSessions bounds the entries of a Sessions.
const maxSessions = 1 << 16

// Sessions remembers, across the connections of a capture, the TLS 1.2
// sessions servers established: the session ids they issued, and the
// master secret of each session (by session id and by ticket) when a key
// log revealed it. A later connection that offers one of those ids is
// resuming, and is decrypted with the master secret of the connection
// that established the session (key logs name it only under that
// connection's client random: Go's crypto/tls logs nothing for a resumed
// TLS 1.2 connection), as Wireshark's session cache does. The zero value
// is ready to use; a Sessions is safe for concurrent use.
type Sessions struct {
	mu      sync.Mutex
	issued  map[string]bool
	masters map[string][]byte
}

func sessionKey(kind byte, id []byte) string { return string(kind) + string(id) }

// issue records a session id a server issued in a full handshake.
func (s *Sessions) issue(id []byte) {
	if s == nil || len(id) == 0 {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.issued == nil || len(s.issued) >= maxSessions {
		s.issued = map[string]bool{}
	}
	s.issued[string(id)] = true
}

// wasIssued reports whether a server issued id earlier in the capture.
func (s *Sessions) wasIssued(id []byte) bool {
	if s == nil || len(id) == 0 {
		return false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.issued[string(id)]
}

// remember records the master secret of a session by session id (kind
// 's') or ticket (kind 't').
func (s *Sessions) remember(kind byte, id, master []byte) {
	if s == nil || len(id) == 0 || len(master) == 0 {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.masters == nil || len(s.masters) >= maxSessions {
		s.masters = map[string][]byte{}
	}
	s.masters[sessionKey(kind, id)] = master
}

// resumed returns the master secret remembered for a session, or nil.
func (s *Sessions) resumed(kind byte, id []byte) []byte {
	if s == nil || len(id) == 0 {
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.masters[sessionKey(kind, id)]
}
