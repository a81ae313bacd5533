package tls

import (
	"bytes"
	ctls "crypto/tls"
	"testing"

	"github.com/h2scope/h2scope/dissect/event"
	"github.com/h2scope/h2scope/dissect/sniff"
)

// firstClientHello returns the body of the first ClientHello recorded.
func firstClientHello(t *testing.T) []byte {
	t.Helper()
	ccfg := &ctls.Config{ServerName: "test.example", InsecureSkipVerify: true, NextProtos: []string{"h2"}}
	scfg := &ctls.Config{Certificates: []ctls.Certificate{serverCert(t)}}
	chunks, _ := handshake(t, ccfg, scfg)
	var wire []byte
	for _, c := range chunks {
		if c.dir == event.C2S {
			wire = append(wire, c.data...)
		}
	}
	// record header (5) + handshake header (4)
	if len(wire) < 9 || wire[0] != recordHandshake || wire[5] != typeClientHello {
		t.Fatalf("no ClientHello on the wire")
	}
	n := int(wire[6])<<16 | int(wire[7])<<8 | int(wire[8])
	return wire[9 : 9+n]
}

func TestClientHelloPrefixes(t *testing.T) {
	body := firstClientHello(t)
	if _, err := parseClientHello(body); err != nil {
		t.Fatalf("full ClientHello: %v", err)
	}
	for i := 0; i < len(body); i++ {
		// The one legal short form: a hello with no extensions block.
		if ch, err := parseClientHello(body[:i]); err == nil && len(ch.extensions) != 0 {
			t.Fatalf("prefix of %d/%d bytes parsed with extensions", i, len(body))
		} else if err == nil && i != extStart(body) {
			t.Fatalf("prefix of %d/%d bytes parsed as complete", i, len(body))
		}
	}
	if _, err := parseClientHello(append(bytes.Clone(body), 0)); err == nil {
		t.Fatal("trailing byte accepted")
	}
}

// extStart returns the offset of the extensions block of a ClientHello.
func extStart(b []byte) int {
	off := 2 + 32
	off += 1 + int(b[off])
	off += 2 + (int(b[off])<<8 | int(b[off+1]))
	off += 1 + int(b[off])
	return off
}

func TestAlertAndLimits(t *testing.T) {
	tests := []struct {
		name    string
		c2s     []byte
		wantEv  []string
		wantErr string
		anomaly string
	}{
		{"alert", []byte{21, 3, 3, 0, 2, 2, 40}, []string{"Alert"}, "handshake_failure", ""},
		{"not tls", []byte("GET / HTTP/1.1\r\n"), nil, "", AnomalyNotTLS},
		{"record too long", []byte{22, 3, 1, 0xff, 0xff}, nil, "", AnomalyRecordTooLong},
		{"handshake too long", []byte{22, 3, 1, 0, 4, 1, 0x10, 0, 0}, nil, "", AnomalyHandshakeTooLong},
		{"truncated", []byte{22, 3, 1, 0, 9, 1}, nil, "", AnomalyTruncatedRecord},
		{"malformed hello", []byte{22, 3, 1, 0, 5, 1, 0, 0, 1, 3}, []string{"ClientHello"}, "", AnomalyMalformedHandshake},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got []string
			var errName string
			c := NewConn(0, event.SinkFunc(func(e *event.Event) {
				got = append(got, e.Type)
				errName = e.Error
			}), Options{})
			c.Data(event.C2S, tt.c2s, event.Ref{Frame: 1})
			c.Close(event.C2S, false, event.Ref{Frame: 2})
			s := c.Summary()
			if len(got) != len(tt.wantEv) || (len(got) > 0 && got[0] != tt.wantEv[0]) || errName != tt.wantErr {
				t.Errorf("events %v error %q", got, errName)
			}
			if tt.anomaly != "" && s.Anomalies[tt.anomaly] == 0 {
				t.Errorf("anomalies %v, want %s", s.Anomalies, tt.anomaly)
			}
		})
	}
}

func TestHelloRetryRequest(t *testing.T) {
	ccfg := &ctls.Config{ServerName: "test.example", InsecureSkipVerify: true, NextProtos: []string{"h2", "http/1.1"},
		CurvePreferences: []ctls.CurveID{ctls.X25519, ctls.CurveP256}}
	scfg := &ctls.Config{Certificates: []ctls.Certificate{serverCert(t)}, MinVersion: ctls.VersionTLS13,
		CurvePreferences: []ctls.CurveID{ctls.CurveP256}}
	chunks, _ := handshake(t, ccfg, scfg)
	evs, s := feed(chunks, 0)
	if !s.HelloRetry || s.Messages["HelloRetryRequest"] != 1 || s.Messages["ClientHello"] != 2 {
		t.Errorf("HRR not seen: %v %v", s.Messages, evs)
	}
	if s.Version != "TLS 1.3" || s.KeyShareGroup != uint16(ctls.CurveP256) {
		t.Errorf("version %q group %d", s.Version, s.KeyShareGroup)
	}
}

func FuzzRecords(f *testing.F) {
	f.Add([]byte{22, 3, 1, 0, 4, 1, 0, 0, 0}, []byte{21, 3, 3, 0, 2, 1, 0})
	f.Fuzz(func(t *testing.T, a, b []byte) {
		c := NewConn(0, event.SinkFunc(func(*event.Event) {}), Options{})
		for i := 0; i < len(a) || i < len(b); i += 13 {
			if i < len(a) {
				c.Data(event.C2S, a[i:min(i+13, len(a))], event.Ref{})
			}
			if i < len(b) {
				c.Data(event.S2C, b[i:min(i+13, len(b))], event.Ref{})
			}
		}
		c.Close(event.C2S, false, event.Ref{})
		c.Close(event.S2C, true, event.Ref{})
		_ = c.Summary()
	})
}

// TestAlertsBounded checks that a flood of alerts is counted, not listed.
func TestAlertsBounded(t *testing.T) {
	c := NewConn(0, nil, Options{})
	rec := []byte{recordAlert, 3, 3, 0, 2, 1, 0}
	for range 100 {
		c.Data(event.S2C, rec, event.Ref{})
	}
	s := c.Summary()
	if len(s.Alerts) != maxAlerts || s.AlertsDropped != 100-maxAlerts {
		t.Errorf("%d alerts listed, %d dropped", len(s.Alerts), s.AlertsDropped)
	}
}

// sslv2Hello builds an SSL 2.0-format ClientHello offering version v with
// the given 3-byte cipher specs and a 16-byte challenge.
func sslv2Hello(v uint16, specs ...[3]byte) []byte {
	body := []byte{1, byte(v >> 8), byte(v), 0, byte(3 * len(specs)), 0, 0, 0, 16}
	for _, s := range specs {
		body = append(body, s[:]...)
	}
	for i := range 16 {
		body = append(body, byte(0xa0+i))
	}
	return append([]byte{0x80 | byte(len(body)>>8), byte(len(body))}, body...)
}

// TestSSLv2ClientHello reads an SSL 2.0-format ClientHello (as old or
// compatibility-minded clients send it) followed by an ordinary TLS
// ServerHello, byte at a time and whole, and rejects its proper prefixes
// and near misses as TLS.
func TestSSLv2ClientHello(t *testing.T) {
	hello := sslv2Hello(0x0301, [3]byte{0x07, 0x00, 0xc0}, [3]byte{0x00, 0x00, 0x2f}, [3]byte{0x00, 0x00, 0x35})
	for _, step := range []int{1, len(hello)} {
		c := NewConn(0, nil, Options{})
		for off := 0; off < len(hello); off += step {
			c.Data(event.C2S, hello[off:min(off+step, len(hello))], event.Ref{Frame: 4})
		}
		s := c.Summary()
		if s.Messages["ClientHello"] != 1 || s.ClientVersion != "TLS 1.0" || s.CipherSuites != 2 || len(s.Anomalies) != 0 {
			t.Errorf("step %d: %+v", step, s)
		}
		if r := c.ch.random; len(r) != 32 || r[0] != 0 || r[16] != 0xa0 {
			t.Errorf("step %d: random %x", step, r)
		}
	}
	for i := range len(hello) {
		if n, ok, more := sniff.SSLv2ClientHello(hello[:i]); ok && !more && n+2 <= i {
			t.Errorf("prefix %d taken as a whole hello", i)
		}
	}
	bad := sslv2Hello(0x0301, [3]byte{0x00, 0x00, 0x2f})
	bad[2] = 4 // not CLIENT-HELLO
	if _, ok, _ := sniff.SSLv2ClientHello(bad); ok {
		t.Error("msg_type 4 taken for a ClientHello")
	}
	if v := sniff.Detect(hello); v.Proto != event.ProtoTLS {
		t.Errorf("Detect: %+v", v)
	}
}
