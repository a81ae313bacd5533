package tls

import (
	"bytes"
	ctls "crypto/tls"
	"encoding/hex"
	"strings"
	"testing"

	"github.com/h2scope/h2scope/dissect/event"
)

// plainRec collects what a Conn decrypted.
type plainRec struct {
	data   [2][]byte
	gaps   [2]int
	closed [2]bool
}

func (p *plainRec) Data(dir event.Dir, b []byte, at event.Ref) {
	p.data[dir] = append(p.data[dir], b...)
}
func (p *plainRec) Gap(dir event.Dir, n int, at event.Ref)        { p.gaps[dir]++ }
func (p *plainRec) Close(dir event.Dir, reset bool, at event.Ref) { p.closed[dir] = true }

// decryptChunks plays chunks into a Conn with keys and returns what it
// decrypted.
func decryptChunks(chunks []chunk, keys *KeyLog, sessions *Sessions, step int) (*plainRec, Summary) {
	p := &plainRec{}
	c := NewConn(1, nil, Options{Keys: keys, Sessions: sessions, Plain: p})
	for i, ch := range chunks {
		at := event.Ref{Frame: uint64(i + 1)}
		for off := 0; off < len(ch.data); off += step {
			c.Data(ch.dir, ch.data[off:min(off+step, len(ch.data))], at)
		}
	}
	c.Close(event.C2S, false, event.Ref{})
	c.Close(event.S2C, false, event.Ref{})
	return p, c.Summary()
}

// keyLogged returns client and server configs that log their secrets to
// the returned buffer.
func keyLogged(t testing.TB, minV, maxV uint16, suite uint16) (*ctls.Config, *ctls.Config, *bytes.Buffer) {
	cert := serverCert(t)
	var kl bytes.Buffer
	ccfg := &ctls.Config{InsecureSkipVerify: true, ServerName: "test.example", MinVersion: minV, MaxVersion: maxV, KeyLogWriter: &kl}
	scfg := &ctls.Config{Certificates: []ctls.Certificate{cert}, MinVersion: minV, MaxVersion: maxV}
	if suite != 0 {
		ccfg.CipherSuites = []uint16{suite}
		scfg.CipherSuites = []uint16{suite}
	}
	return ccfg, scfg, &kl
}

func TestDecryptRealConnections(t *testing.T) {
	tests := []struct {
		name       string
		minV, maxV uint16
		suite      uint16
	}{
		{"tls13", ctls.VersionTLS13, ctls.VersionTLS13, 0},
		{"tls12-aes128-gcm", ctls.VersionTLS12, ctls.VersionTLS12, ctls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256},
		{"tls12-aes256-gcm", ctls.VersionTLS12, ctls.VersionTLS12, ctls.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384},
		{"tls12-chacha20", ctls.VersionTLS12, ctls.VersionTLS12, ctls.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256},
		{"tls12-aes128-cbc-sha", ctls.VersionTLS12, ctls.VersionTLS12, ctls.TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA},
		{"tls12-aes256-cbc-sha", ctls.VersionTLS12, ctls.VersionTLS12, ctls.TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA},
		{"tls12-aes128-cbc-sha256", ctls.VersionTLS12, ctls.VersionTLS12, ctls.TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA256},
		{"tls11-aes128-cbc-sha", ctls.VersionTLS11, ctls.VersionTLS11, ctls.TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA},
		{"tls10-aes128-cbc-sha", ctls.VersionTLS10, ctls.VersionTLS10, ctls.TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ccfg, scfg, kl := keyLogged(t, tc.minV, tc.maxV, tc.suite)
			chunks, st := handshake(t, ccfg, scfg)
			keys := NewKeyLog()
			if n, errs := keys.Add(kl.Bytes(), "test"); n == 0 || len(errs) > 0 {
				t.Fatalf("key log: %d secrets, errors %v", n, errs)
			}
			for _, step := range []int{1, 7, 1 << 20} {
				p, s := decryptChunks(chunks, keys, nil, step)
				if got := string(p.data[event.S2C]); got != "hello from server" {
					t.Errorf("step %d: server plaintext %q", step, got)
				}
				if got := string(p.data[event.C2S]); got != "hello from client" {
					t.Errorf("step %d: client plaintext %q", step, got)
				}
				if !s.Decryption.Decrypted || s.Decryption.Reason != "" || s.Decryption.Failures != [2]int{} {
					t.Errorf("step %d: decryption %+v", step, s.Decryption)
				}
				if s.CipherSuite != ctls.CipherSuiteName(st.CipherSuite) || s.Version != ctls.VersionName(st.Version) {
					t.Errorf("step %d: %s %s, client saw %s %s", step, s.Version, s.CipherSuite,
						ctls.VersionName(st.Version), ctls.CipherSuiteName(st.CipherSuite))
				}
				if s.Messages["Finished"] != 2 {
					t.Errorf("step %d: Finished messages %d, want 2 (both decrypted)", step, s.Messages["Finished"])
				}
				if tc.minV == ctls.VersionTLS13 && (s.Messages["EncryptedExtensions"] != 1 || s.Certificate == nil || s.Certificate.Subject == "") {
					t.Errorf("step %d: TLS 1.3 protected handshake not read: %v %+v", step, s.Messages, s.Certificate)
				}
			}
		})
	}
}

// TestDecryptResumed checks that resumed sessions decrypt too: TLS 1.3
// through the resumed connection's own secrets, TLS 1.2 (whose key log has
// no line for a resumed connection) through the master secret of the
// connection that established the session.
func TestDecryptResumed(t *testing.T) {
	for _, v := range []uint16{ctls.VersionTLS12, ctls.VersionTLS13} {
		t.Run(ctls.VersionName(v), func(t *testing.T) {
			ccfg, scfg, kl := keyLogged(t, v, v, 0)
			ccfg.ClientSessionCache = ctls.NewLRUClientSessionCache(4)
			first, _ := handshake(t, ccfg, scfg)
			second, st := handshake(t, ccfg, scfg)
			if !st.DidResume {
				t.Fatal("the client did not resume")
			}
			keys := NewKeyLog()
			keys.Add(kl.Bytes(), "test")
			sessions := &Sessions{}
			decryptChunks(first, keys, sessions, 1<<20)
			p, s := decryptChunks(second, keys, sessions, 1<<20)
			if !s.Resumption.Accepted {
				t.Errorf("resumption %+v", s.Resumption)
			}
			if string(p.data[event.S2C]) != "hello from server" || string(p.data[event.C2S]) != "hello from client" {
				t.Errorf("plaintext %q %q; decryption %+v", p.data[event.S2C], p.data[event.C2S], s.Decryption)
			}
		})
	}
}

// TestDecryptWrongKeys checks that a wrong, partial or missing key log
// never yields plaintext and says why.
func TestDecryptWrongKeys(t *testing.T) {
	for _, v := range []uint16{ctls.VersionTLS12, ctls.VersionTLS13} {
		t.Run(ctls.VersionName(v), func(t *testing.T) {
			ccfg, scfg, kl := keyLogged(t, v, v, 0)
			chunks, _ := handshake(t, ccfg, scfg)
			lines := strings.Split(strings.TrimSpace(kl.String()), "\n")

			// Every secret's last hex digit changed.
			var wrong []string
			for _, l := range lines {
				last := l[len(l)-1]
				repl := "0"
				if last == '0' {
					repl = "1"
				}
				wrong = append(wrong, l[:len(l)-1]+repl)
			}
			keys := NewKeyLog()
			keys.Add([]byte(strings.Join(wrong, "\n")), "wrong")
			p, s := decryptChunks(chunks, keys, nil, 1<<20)
			if len(p.data[0])+len(p.data[1]) != 0 || s.Decryption.Decrypted {
				t.Errorf("wrong keys gave plaintext %q %q", p.data[0], p.data[1])
			}
			if s.Decryption.Reason != ReasonAuthentication || s.Decryption.Failures[0]+s.Decryption.Failures[1] == 0 {
				t.Errorf("wrong keys: decryption %+v", s.Decryption)
			}

			// No line for this session.
			_, s = decryptChunks(chunks, NewKeyLog(), nil, 1<<20)
			if s.Decryption.Reason != ReasonNoKeyLog {
				t.Errorf("empty key log: reason %q", s.Decryption.Reason)
			}
			other := NewKeyLog()
			other.Add([]byte("CLIENT_RANDOM "+strings.Repeat("ab", 32)+" "+strings.Repeat("cd", 48)), "other")
			_, s = decryptChunks(chunks, other, nil, 1<<20)
			if s.Decryption.Reason != ReasonNoKeys {
				t.Errorf("key log without the session: reason %q", s.Decryption.Reason)
			}

			if v == ctls.VersionTLS13 {
				// Handshake secrets only: the handshake decrypts, the
				// application data does not.
				var hs []string
				for _, l := range lines {
					if strings.Contains(l, "HANDSHAKE") {
						hs = append(hs, l)
					}
				}
				keys := NewKeyLog()
				keys.Add([]byte(strings.Join(hs, "\n")), "partial")
				p, s := decryptChunks(chunks, keys, nil, 1<<20)
				if len(p.data[0])+len(p.data[1]) != 0 || s.Messages["Finished"] != 2 || s.Decryption.Reason != ReasonNoKeys {
					t.Errorf("handshake secrets only: plaintext %q %q, messages %v, decryption %+v", p.data[0], p.data[1], s.Messages, s.Decryption)
				}
			}
		})
	}
}

// TestKeyLogErrors checks that malformed key log lines are located and
// the good ones kept.
func TestKeyLogErrors(t *testing.T) {
	cr := strings.Repeat("01", 32)
	log := strings.Join([]string{
		"# comment",
		"",
		"CLIENT_RANDOM " + cr + " " + strings.Repeat("02", 48),
		"CLIENT_RANDOM " + cr[:10] + " " + strings.Repeat("02", 48),
		"CLIENT_TRAFFIC_SECRET_0 " + cr + " zz",
		"SERVER_TRAFFIC_SECRET_0 " + cr,
		"CLIENT_RANDOM " + cr + " " + strings.Repeat("02", 47),
		"EXPORTER_SECRET " + cr + " " + strings.Repeat("03", 32),
		"SERVER_HANDSHAKE_TRAFFIC_SECRET " + cr + " " + strings.Repeat("04", 32),
	}, "\n")
	k := NewKeyLog()
	n, errs := k.Add([]byte(log), "keys.txt")
	if n != 2 {
		t.Errorf("added %d secrets, want 2", n)
	}
	var lines []int
	for _, e := range errs {
		ke, ok := e.(*KeyLogError)
		if !ok || ke.Source != "keys.txt" {
			t.Fatalf("error %v", e)
		}
		lines = append(lines, ke.Line)
	}
	if want := []int{4, 5, 6, 7}; !equalInts(lines, want) {
		t.Errorf("error lines %v, want %v (%v)", lines, want, errs)
	}
	s := k.Lookup(bytes.Repeat([]byte{1}, 32))
	if s == nil || len(s.Master) != 48 || len(s.ServerHandshake) != 32 || s.ClientTraffic != nil {
		t.Errorf("secrets %+v", s)
	}
}

func equalInts(a, b []int) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// TestKeyUpdate checks the TLS 1.3 key update schedule: records protected
// under the next generation of a traffic secret open after a KeyUpdate.
func TestKeyUpdate(t *testing.T) {
	s := suites[0x1303]
	secret := bytes.Repeat([]byte{7}, 32)
	r, err := newProtector13(s, secret)
	if err != nil {
		t.Fatal(err)
	}
	w, _ := newProtector13(s, secret)
	seal := func(w *protector, inner uint8, msg []byte) []byte {
		pt := append(append([]byte(nil), msg...), inner)
		hdr := []byte{recordAppData, 3, 3, 0, 0}
		n := len(pt) + w.aead.Overhead()
		hdr[3], hdr[4] = byte(n>>8), byte(n)
		out := w.aead.Seal(nil, w.seqNonce(), pt, hdr)
		w.seq++
		return out
	}
	for gen := range 3 {
		for i := range 2 {
			rec := seal(w, recordAppData, []byte{byte(gen), byte(i)})
			pt, inner, err := r.open(recordAppData, rec)
			if err != nil || inner != recordAppData || !bytes.Equal(pt, []byte{byte(gen), byte(i)}) {
				t.Fatalf("generation %d record %d: %v %d %x", gen, i, err, inner, pt)
			}
		}
		w, r = w.next(), r.next()
	}
	// A record under the wrong generation fails to open.
	rec := seal(w.next(), recordAppData, []byte("x"))
	if _, _, err := r.open(recordAppData, rec); err == nil {
		t.Fatal("record under a later key opened")
	}
}

// TestRFC8448KeySchedule checks HKDF-Expand-Label against the traffic
// key and IV RFC 8448 section 3 derives from the server handshake traffic
// secret.
func TestRFC8448KeySchedule(t *testing.T) {
	secret := unhex("b67b7d690cc16c4e75e54213cb2d37b4e9c912bcded9105d42befd59d391ad38")
	key := hkdfExpandLabel(suites[0x1301].hash, secret, "key", 16)
	iv := hkdfExpandLabel(suites[0x1301].hash, secret, "iv", 12)
	if got, want := key, unhex("3fce516009c21727d0f2e4e86ee403bc"); !bytes.Equal(got, want) {
		t.Errorf("key %x, want %x", got, want)
	}
	if got, want := iv, unhex("5d313eb2671276ee13000b30"); !bytes.Equal(got, want) {
		t.Errorf("iv %x, want %x", got, want)
	}
}

func unhex(s string) []byte {
	b, err := hex.DecodeString(s)
	if err != nil {
		panic(err)
	}
	return b
}

// FuzzDecrypt feeds mutated records of real TLS 1.2 and 1.3 sessions to a
// Conn holding those sessions' keys: the handshake and the protected
// records must never panic, and what decrypts must be authentic.
func FuzzDecrypt(f *testing.F) {
	var log bytes.Buffer
	for _, v := range []uint16{ctls.VersionTLS12, ctls.VersionTLS13} {
		ccfg, scfg, kl := keyLogged(f, v, v, 0)
		chunks, _ := handshake(f, ccfg, scfg)
		log.Write(kl.Bytes())
		var a, b []byte
		for _, ch := range chunks {
			if ch.dir == event.C2S {
				a = append(a, ch.data...)
			} else {
				b = append(b, ch.data...)
			}
		}
		f.Add(a, b, uint8(13))
	}
	keys := NewKeyLog()
	keys.Add(log.Bytes(), "fuzz")
	f.Fuzz(func(t *testing.T, a, b []byte, step uint8) {
		n := int(step) + 1
		p := &plainRec{}
		c := NewConn(0, event.SinkFunc(func(*event.Event) {}), Options{Keys: keys, Sessions: &Sessions{}, Plain: p})
		for i := 0; i < len(a) || i < len(b); i += n {
			if i < len(a) {
				c.Data(event.C2S, a[i:min(i+n, len(a))], event.Ref{})
			}
			if i < len(b) {
				c.Data(event.S2C, b[i:min(i+n, len(b))], event.Ref{})
			}
		}
		c.Close(event.C2S, false, event.Ref{})
		c.Close(event.S2C, true, event.Ref{})
		s := c.Summary()
		for d := range 2 {
			if len(p.data[d]) > 0 && s.Decryption.Records[d] == 0 {
				t.Fatalf("plaintext without a decrypted record")
			}
		}
	})
}

// TestHelloInsideProtectedRecord feeds a resumed TLS 1.2 session whose
// first protected server record holds a ServerHello selecting TLS 1.3
// and a Finished: the hello is ignored (it would switch the keys' version
// without TLS 1.3 secrets) and nothing panics.
func TestHelloInsideProtectedRecord(t *testing.T) {
	ccfg, scfg, kl := keyLogged(t, ctls.VersionTLS12, ctls.VersionTLS12, ctls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256)
	chunks, _ := handshake(t, ccfg, scfg)
	keys := NewKeyLog()
	keys.Add(kl.Bytes(), "test")
	c := NewConn(1, nil, Options{Keys: keys, Sessions: &Sessions{}, Plain: &plainRec{}})
	var server12 *protector
	for i, ch := range chunks {
		c.Data(ch.dir, ch.data, event.Ref{Frame: uint64(i + 1)})
		if server12 == nil && c.keys12[1] != nil {
			server12 = c.keys12[1]
		}
	}
	if server12 == nil {
		t.Fatal("no TLS 1.2 keys")
	}
	// A ServerHello with supported_versions = TLS 1.3, then a Finished,
	// sealed under the server's key block as the next record.
	sh := []byte{typeServerHello, 0, 0, 46, 3, 3}
	sh = append(sh, make([]byte, 32)...)
	sh = append(sh, 0, 0x13, 0x01, 0, 0, 6, 0, 43, 0, 2, 3, 4)
	sh[3] = byte(len(sh) - 4)
	msg := append(sh, typeFinished, 0, 0, 0)
	w := *server12
	aead := w.aead
	nonce := make([]byte, 12)
	copy(nonce, w.iv[:4])
	explicit := []byte{0, 0, 0, 0, 0, 0, 0, 9}
	copy(nonce[4:], explicit)
	ad := w.additional(recordHandshake, len(msg))
	rec := append(explicit, aead.Seal(nil, nonce, msg, ad)...)
	hdr := []byte{recordHandshake, 3, 3, byte(len(rec) >> 8), byte(len(rec))}
	c.Data(event.S2C, append(hdr, rec...), event.Ref{Frame: 99})
	s := c.Summary()
	if s.Version != "TLS 1.2" || s.Anomalies[AnomalyUnexpectedMessage] == 0 {
		t.Errorf("version %s, anomalies %v", s.Version, s.Anomalies)
	}
}

// TestEarlyDataHeldUntilVerdict checks that decrypted 0-RTT data reaches
// the HTTP dissectors only once EncryptedExtensions says the server
// accepted early data, and is dropped (counted) when it did not.
func TestEarlyDataHeldUntilVerdict(t *testing.T) {
	for _, accepted := range []bool{true, false} {
		p := &plainRec{}
		c := NewConn(1, nil, Options{Plain: p})
		d := &c.d[event.C2S]
		d.lastEarly = true
		c.plain(event.C2S, d, recordAppData, []byte("GET /early"), event.Ref{Frame: 4}, true)
		if len(p.data[event.C2S]) != 0 {
			t.Fatalf("early data delivered before the verdict")
		}
		ee := []byte{0, 0}
		if accepted {
			ee = []byte{0, 4, 0, extEarlyData, 0, 0}
		}
		c.encryptedExtensions(ee)
		got := string(p.data[event.C2S])
		switch {
		case accepted && got != "GET /early":
			t.Errorf("accepted: delivered %q", got)
		case !accepted && (got != "" || c.sum.Decryption.EarlySkipped != 1):
			t.Errorf("rejected: delivered %q, %d skipped", got, c.sum.Decryption.EarlySkipped)
		}
		// 1-RTT data after the handshake flows either way.
		d.lastEarly = false
		c.plain(event.C2S, d, recordAppData, []byte("!"), event.Ref{Frame: 9}, true)
		if !strings.HasSuffix(string(p.data[event.C2S]), "!") {
			t.Errorf("1-RTT data not delivered: %q", p.data[event.C2S])
		}
	}
}
