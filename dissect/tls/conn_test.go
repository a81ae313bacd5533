package tls

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	ctls "crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"io"
	"math/big"
	"net"
	"reflect"
	"sync"
	"testing"
	"time"

	"github.com/h2scope/h2scope/dissect/event"
)

// chunk is one Write on the wire, in the order the writes happened.
type chunk struct {
	dir  event.Dir
	data []byte
}

type recorder struct {
	mu     sync.Mutex
	chunks []chunk
}

type teeConn struct {
	net.Conn
	dir event.Dir
	rec *recorder
}

func (t *teeConn) Write(b []byte) (int, error) {
	t.rec.mu.Lock()
	t.rec.chunks = append(t.rec.chunks, chunk{t.dir, append([]byte(nil), b...)})
	t.rec.mu.Unlock()
	return t.Conn.Write(b)
}

var (
	certOnce sync.Once
	testCert ctls.Certificate
)

func serverCert(t testing.TB) ctls.Certificate {
	certOnce.Do(func() {
		key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			panic(err)
		}
		tmpl := &x509.Certificate{
			SerialNumber: big.NewInt(1),
			Subject:      pkix.Name{CommonName: "test.example"},
			DNSNames:     []string{"test.example"},
			NotBefore:    time.Now().Add(-time.Hour),
			NotAfter:     time.Date(2040, 1, 2, 3, 4, 5, 0, time.UTC),
		}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
		if err != nil {
			panic(err)
		}
		testCert = ctls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
	})
	return testCert
}

// handshake runs a crypto/tls client and server over net.Pipe, exchanges
// a little application data both ways, and returns the recorded wire
// bytes and the client's ConnectionState.
func handshake(t testing.TB, ccfg, scfg *ctls.Config) ([]chunk, ctls.ConnectionState) {
	t.Helper()
	rec := &recorder{}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Skipf("loopback: %v", err)
	}
	defer ln.Close()
	a, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	b, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	a.SetDeadline(deadline)
	b.SetDeadline(deadline)
	defer a.Close()
	defer b.Close()
	cc := ctls.Client(&teeConn{a, event.C2S, rec}, ccfg)
	sc := ctls.Server(&teeConn{b, event.S2C, rec}, scfg)
	errc := make(chan error, 1)
	go func() {
		defer sc.Close()
		if err := sc.Handshake(); err != nil {
			errc <- err
			return
		}
		if _, err := sc.Write([]byte("hello from server")); err != nil {
			errc <- err
			return
		}
		buf := make([]byte, 64)
		_, err := sc.Read(buf)
		errc <- err
	}()
	if err := cc.Handshake(); err != nil {
		t.Fatalf("client handshake: %v", err)
	}
	buf := make([]byte, 64)
	if _, err := cc.Read(buf); err != nil {
		t.Fatalf("client read: %v", err)
	}
	if _, err := cc.Write([]byte("hello from client")); err != nil {
		t.Fatalf("client write: %v", err)
	}
	if err := <-errc; err != nil && err != io.EOF {
		t.Fatalf("server: %v", err)
	}
	st := cc.ConnectionState()
	cc.Close()
	rec.mu.Lock()
	defer rec.mu.Unlock()
	return rec.chunks, st
}

type evRec struct {
	Frame uint64
	Dir   event.Dir
	Type  string
	Len   int
	Error string
}

// feed plays chunks into a new Conn; step > 0 splits each chunk into
// pieces of that size (all carried by the chunk's frame).
func feed(chunks []chunk, step int) ([]evRec, Summary) {
	var evs []evRec
	c := NewConn(7, event.SinkFunc(func(e *event.Event) {
		if e.Proto != event.ProtoTLS || e.Conn != 7 {
			panic("bad event identity")
		}
		evs = append(evs, evRec{e.Ref.Frame, e.Dir, e.Type, e.Len, e.Error})
	}), Options{})
	for i, ch := range chunks {
		at := event.Ref{Frame: uint64(i + 1)}
		if step <= 0 {
			c.Data(ch.dir, ch.data, at)
			continue
		}
		for off := 0; off < len(ch.data); off += step {
			end := min(off+step, len(ch.data))
			// Hand over a scratch copy and scribble on it afterwards:
			// Conn must not retain b.
			scratch := append([]byte(nil), ch.data[off:end]...)
			c.Data(ch.dir, scratch, at)
			for i := range scratch {
				scratch[i] = 0xAA
			}
		}
	}
	last := event.Ref{Frame: uint64(len(chunks))}
	c.Close(event.C2S, false, last)
	c.Close(event.S2C, false, last)
	return evs, c.Summary()
}

func TestHandshakes(t *testing.T) {
	cert := serverCert(t)
	keyA := [32]byte{1}
	keyB := [32]byte{2}
	type tc struct {
		name      string
		version   uint16
		resumeKey [32]byte // server ticket key on the second connection
		noTickets bool     // second server disables tickets
		wantRes   bool
		wantMech  string
		wantOffer []string
	}
	var cases []tc
	for _, v := range []uint16{ctls.VersionTLS12, ctls.VersionTLS13} {
		mech := "ticket"
		// Go sends a random session id beside its ticket (RFC 5077
		// 3.4): an offer only once the server echoes it.
		offer := []string{"session_id", "ticket"}
		failOffer := []string{"ticket"}
		if v == ctls.VersionTLS13 {
			mech = "psk_dhe_ke"
			offer = []string{"psk"}
			failOffer = offer
		}
		cases = append(cases,
			tc{name: versionName(v) + "/resumed", version: v, resumeKey: keyA, wantRes: true, wantMech: mech, wantOffer: offer},
			tc{name: versionName(v) + "/new-ticket-keys", version: v, resumeKey: keyB, wantOffer: failOffer},
			tc{name: versionName(v) + "/tickets-disabled", version: v, resumeKey: keyA, noTickets: true, wantOffer: failOffer},
		)
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cache := ctls.NewLRUClientSessionCache(4)
			ccfg := &ctls.Config{
				ServerName:         "test.example",
				InsecureSkipVerify: true,
				ClientSessionCache: cache,
				NextProtos:         []string{"h2", "http/1.1"},
				MinVersion:         c.version,
				MaxVersion:         c.version,
			}
			mk := func(key [32]byte, disabled bool) *ctls.Config {
				s := &ctls.Config{
					Certificates:           []ctls.Certificate{cert},
					NextProtos:             []string{"h2"},
					MinVersion:             c.version,
					MaxVersion:             c.version,
					SessionTicketsDisabled: disabled,
				}
				s.SetSessionTicketKeys([][32]byte{key})
				return s
			}
			// First connection: always a full handshake.
			chunks, st := handshake(t, ccfg, mk(keyA, false))
			if st.DidResume {
				t.Fatal("first connection resumed")
			}
			_, s := feed(chunks, 0)
			checkCommon(t, s, c.version)
			if s.Resumption.Accepted || !s.Resumption.Known {
				t.Errorf("first: resumption %+v, want known, not accepted", s.Resumption)
			}
			if !reflect.DeepEqual(s.Resumption.Offered, []string{"none"}) && c.version == ctls.VersionTLS13 {
				t.Errorf("first: offered %v, want [none]", s.Resumption.Offered)
			}
			if c.version == ctls.VersionTLS12 {
				if s.Certificate == nil || s.Certificate.Count != 1 || s.Certificate.Subject != "CN=test.example" ||
					!reflect.DeepEqual(s.Certificate.SANs, []string{"test.example"}) || s.Certificate.NotAfter.Year() != 2040 {
					t.Errorf("certificate = %+v", s.Certificate)
				}
				if s.ALPNSelected != "h2" {
					t.Errorf("ALPN selected %q, want h2", s.ALPNSelected)
				}
			}

			// Second connection.
			chunks, st = handshake(t, ccfg, mk(c.resumeKey, c.noTickets))
			if st.DidResume != c.wantRes {
				t.Fatalf("client DidResume = %v, want %v", st.DidResume, c.wantRes)
			}
			evs, s := feed(chunks, 0)
			checkCommon(t, s, c.version)
			r := s.Resumption
			if !r.Known || r.Accepted != st.DidResume || r.Mechanism != c.wantMech && st.DidResume {
				t.Errorf("resumption %+v, client DidResume %v", r, st.DidResume)
			}
			if !reflect.DeepEqual(r.Offered, c.wantOffer) {
				t.Errorf("offered %v, want %v", r.Offered, c.wantOffer)
			}
			if len(s.Anomalies) != 0 {
				t.Errorf("anomalies %v", s.Anomalies)
			}
			// Byte at a time and in odd pieces: same events, same summary.
			for _, step := range []int{1, 3, 7} {
				evs2, s2 := feed(chunks, step)
				if !reflect.DeepEqual(evs, evs2) {
					t.Errorf("step %d: events differ:\n%v\n%v", step, evs, evs2)
				}
				if !reflect.DeepEqual(s, s2) {
					t.Errorf("step %d: summary differs:\n%+v\n%+v", step, s, s2)
				}
			}
			if testing.Verbose() {
				t.Logf("events: %v", evs)
				t.Logf("summary: %+v", s)
			}
		})
	}
}

func checkCommon(t *testing.T, s Summary, v uint16) {
	t.Helper()
	if s.Version != versionName(v) {
		t.Errorf("version %q, want %q", s.Version, versionName(v))
	}
	if s.SNI != "test.example" {
		t.Errorf("SNI %q", s.SNI)
	}
	if !reflect.DeepEqual(s.ALPNOffered, []string{"h2", "http/1.1"}) {
		t.Errorf("ALPN offered %v", s.ALPNOffered)
	}
	if s.CipherSuite == "" || s.CipherSuite[0] == '0' {
		t.Errorf("cipher suite %q", s.CipherSuite)
	}
	tm := s.Timing
	if tm.ClientHello == nil || tm.ServerHello == nil || tm.FirstAppData[0] == nil || tm.FirstAppData[1] == nil {
		t.Errorf("timing %+v", tm)
	}
	if v == ctls.VersionTLS12 && (tm.CCS[0] == nil || tm.CCS[1] == nil || tm.Finished[0] == nil || tm.Finished[1] == nil) {
		t.Errorf("TLS 1.2 timing %+v", tm)
	}
	if s.Messages["ClientHello"] != 1 || s.Messages["ServerHello"] != 1 {
		t.Errorf("messages %v", s.Messages)
	}
}
