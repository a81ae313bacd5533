package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"time"

	"golang.org/x/net/http2"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"

	"github.com/h2scope/h2scope/tools/capgen/truth"
)

// tlsParams is the server side of a TLS scenario: versions, TLS 1.2
// cipher suites (nil: Go's defaults) and ALPN protocols.
type tlsParams struct {
	min, max uint16
	suites   []uint16
	protos   []string
}

// TLS 1.2 cipher suites of the scenarios: ECDHE with RSA, AES-GCM and
// ChaCha20-Poly1305.
var (
	suiteAES128  = []uint16{tls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256}
	suiteAES256  = []uint16{tls.TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384}
	suiteChaCha  = []uint16{tls.TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256}
	tls12Suites  = []uint16{tls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256, tls.TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384, tls.TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256}
	tls13Params  = &tlsParams{min: tls.VersionTLS13, max: tls.VersionTLS13, protos: []string{"http/1.1"}}
	tls12Params  = &tlsParams{min: tls.VersionTLS12, max: tls.VersionTLS12, suites: tls12Suites, protos: []string{"http/1.1"}}
	h2TLS13      = &tlsParams{min: tls.VersionTLS13, max: tls.VersionTLS13, protos: []string{"h2"}}
	h2TLS12      = &tlsParams{min: tls.VersionTLS12, max: tls.VersionTLS12, suites: suiteAES256, protos: []string{"h2"}}
	alertParams  = &tlsParams{min: tls.VersionTLS12, max: tls.VersionTLS13, suites: tls12Suites, protos: []string{"h2"}}
	http11Protos = []string{"http/1.1"}
)

// serveHTTPS serves the HTTP/1.1 test handler over TLS on ln: net/http
// over tls.NewListener, each connection with the lab's per-connection
// server configuration (ticket policy).
func serveHTTPS(s *session, ln net.Listener) func() error {
	srv := newHTTP1Server(s)
	srv.ErrorLog = log.New(io.Discard, "", 0)
	return serveHTTP(srv, tls.NewListener(ln, s.tls.listenerConfig()))
}

// serveH2TLS serves newHandler over HTTP/2 in TLS: the server runs the
// TLS handshake itself, checks that ALPN chose h2, and serves the
// plaintext connection (teed) with x/net/http2's Server.ServeConn.
func serveH2TLS(s *session, ln net.Listener) func() error {
	serve := s.h2ConnServer(&http2.Server{})
	return acceptLoop(ln, func(c net.Conn) {
		tc, err := s.tls.serverHandshake(context.Background(), c)
		if err != nil || tc.ConnectionState().NegotiatedProtocol != "h2" {
			c.Close()
			return
		}
		serve(s.plainConn(tc, c))
	})
}

// serveTLSOnly runs TLS handshakes and nothing else: after a handshake
// the server reads until the client closes, then closes.
func serveTLSOnly(s *session, ln net.Listener) func() error {
	return acceptLoop(ln, func(c net.Conn) {
		defer c.Close()
		tc, err := s.tls.serverHandshake(context.Background(), c)
		if err != nil {
			return
		}
		io.Copy(io.Discard, tc)
		tc.Close()
	})
}

// tlsCreds are gRPC transport credentials over the lab's TLS: the server
// side runs the lab's server handshake and tees the plaintext; the client
// side records its handshake. Both use crypto/tls directly.
type tlsCreds struct {
	s   *session
	cfg *tls.Config // the client's; nil on the server
}

// ClientHandshake runs the client's handshake on raw.
func (c tlsCreds) ClientHandshake(ctx context.Context, _ string, raw net.Conn) (net.Conn, credentials.AuthInfo, error) {
	tc := tls.Client(raw, c.cfg.Clone())
	err := tc.HandshakeContext(ctx)
	cs := tc.ConnectionState()
	c.s.clientDone(raw, c.cfg, nil, cs, err)
	if err != nil {
		return nil, nil, err
	}
	return tc, tlsInfo(cs), nil
}

// ServerHandshake runs the lab's server handshake on raw.
func (c tlsCreds) ServerHandshake(raw net.Conn) (net.Conn, credentials.AuthInfo, error) {
	tc, err := c.s.tls.serverHandshake(context.Background(), raw)
	if err != nil {
		return nil, nil, err
	}
	return c.s.plainConn(tc, raw), tlsInfo(tc.ConnectionState()), nil
}

func tlsInfo(cs tls.ConnectionState) credentials.TLSInfo {
	return credentials.TLSInfo{State: cs, CommonAuthInfo: credentials.CommonAuthInfo{SecurityLevel: credentials.PrivacyAndIntegrity}}
}

// Info describes the credentials.
func (c tlsCreds) Info() credentials.ProtocolInfo {
	return credentials.ProtocolInfo{SecurityProtocol: "tls", SecurityVersion: "1.3", ServerName: tlsServerName}
}

// Clone returns c: it holds nothing mutable.
func (c tlsCreds) Clone() credentials.TransportCredentials { return c }

// OverrideServerName is not supported.
func (c tlsCreds) OverrideServerName(string) error { return errors.New("capgen: not supported") }

// serveGRPCTLS serves the gRPC test service over TLS (tlsCreds).
func serveGRPCTLS(s *session, ln net.Listener) func() error {
	return serveGRPCWith(s, ln, grpc.Creds(tlsCreds{s: s}))
}

// tlsConn is one TLS connection of a scenario: the server's ticket
// policy for it, the client configuration, and the requests made on it.
type tlsConn struct {
	tickets string
	cfg     *tls.Config
	steps   []step
}

// runTLSConns makes each connection in turn: it sets the server's
// ticket policy, then makes the requests over HTTP/1.1 in TLS with
// keep-alives off, so each request is a new connection and the next
// handshake may resume the last.
func (s *session) runTLSConns(ctx context.Context, phase string, conns []tlsConn) error {
	for _, c := range conns {
		s.tls.setTickets(c.tickets)
		t := s.transport(phase, false)
		t.DialContext = nil
		t.DialTLSContext = s.tlsDialer(phase, c.cfg)
		if err := s.runSteps(ctx, client(t), phase, c.steps); err != nil {
			return err
		}
	}
	return nil
}

// resumeConns returns the connections of a resumption scenario: one
// client (cache) per suite, each making n connections, the first with
// tickets stable and the others under the policies in order (one step
// each; reused if short).
func (s *session) resumeConns(max uint16, suites [][]uint16, policies []string) []tlsConn {
	var cs []tlsConn
	ss := steps(getBytes(1200), upload(3000), getBytes(9000), get("/missing"), getBytes(20_000), upload(500), getBytes(64))
	for _, suite := range suites {
		cfg := s.tls.clientConfig(max, suite, tls.NewLRUClientSessionCache(8), http11Protos...)
		for _, p := range policies {
			k := len(cs) % len(ss)
			cs = append(cs, tlsConn{tickets: p, cfg: cfg, steps: ss[k : k+1]})
		}
	}
	return cs
}

// runTLS13Resume is tls13-resume: see its description.
func runTLS13Resume(ctx context.Context, s *session) error {
	p := []string{ticketsStable, ticketsStable, ticketsStable, ticketsStable, ticketsStable}
	return s.runTLSConns(ctx, "resume", s.resumeConns(tls.VersionTLS13, [][]uint16{nil}, p))
}

// runTLS13ResumeFail is tls13-resume-fail: see its description.
func runTLS13ResumeFail(ctx context.Context, s *session) error {
	p := []string{ticketsStable, ticketsRotated, ticketsRotated, ticketsDisabled, ticketsDisabled}
	return s.runTLSConns(ctx, "resume", s.resumeConns(tls.VersionTLS13, [][]uint16{nil}, p))
}

// runTLS12Resume is tls12-resume: see its description.
func runTLS12Resume(ctx context.Context, s *session) error {
	p := []string{ticketsStable, ticketsStable, ticketsStable}
	return s.runTLSConns(ctx, "resume", s.resumeConns(tls.VersionTLS12, [][]uint16{suiteAES128, suiteAES256, suiteChaCha}, p))
}

// runTLS12ResumeFail is tls12-resume-fail: see its description.
func runTLS12ResumeFail(ctx context.Context, s *session) error {
	conns := s.resumeConns(tls.VersionTLS12, [][]uint16{suiteAES128},
		[]string{ticketsStable, ticketsRotated, ticketsRotated, ticketsDisabled, ticketsDisabled})
	conns = append(conns, s.resumeConns(tls.VersionTLS12, [][]uint16{suiteChaCha}, []string{ticketsStable, ticketsRotated})...)
	return s.runTLSConns(ctx, "resume", conns)
}

// checkResume checks that every connection after each client's first
// resumed, and the first did not.
func checkResume(t *truth.Truth) error {
	for _, c := range t.Connections {
		first := !c.TLS.CachedSession
		if c.TLS.DidResume == first || c.TLS.OfferedResumption == first {
			return fmt.Errorf("connection %d: cached session %v, offered %v, resumed %v",
				c.ID, c.TLS.CachedSession, c.TLS.OfferedResumption, c.TLS.DidResume)
		}
	}
	return nil
}

// checkResumeFail checks that each client's first connection made a full
// handshake without offering, and every later one offered a session the
// server refused.
func checkResumeFail(t *truth.Truth) error {
	for _, c := range t.Connections {
		first := !c.TLS.CachedSession
		if c.TLS.DidResume || c.TLS.OfferedResumption == first {
			return fmt.Errorf("connection %d: cached session %v, offered %v, resumed %v",
				c.ID, c.TLS.CachedSession, c.TLS.OfferedResumption, c.TLS.DidResume)
		}
	}
	return nil
}

// h2Client returns net/http's client transport for HTTP/2 over TLS
// (ALPN h2), dialing through the lab with cfg.
func (s *session) h2Client(phase string, cfg *tls.Config) *http.Transport {
	t := s.transport(phase, true)
	t.DialContext = nil
	t.DialTLSContext = s.tlsDialer(phase, cfg)
	t.ForceAttemptHTTP2 = true
	return t
}

// runH2TLS makes HTTP/2 requests over one TLS connection of version
// max, bodies over 16 KB included (DATA frames span TLS records).
func runH2TLS(max uint16, suites []uint16) func(ctx context.Context, s *session) error {
	return func(ctx context.Context, s *session) error {
		cfg := s.tls.clientConfig(max, suites, nil, "h2", "http/1.1")
		t := s.h2Client("h2", cfg)
		ss := steps(getBytes(1000), upload(40_000), getBytes(50_000), getBytes(20_000), upload(17_000), getBytes(100))
		if err := s.runSteps2(ctx, t, "h2", ss); err != nil {
			return err
		}
		return concurrently(2, func(int) error {
			return s.do2(ctx, t, "h2-concurrent", http.MethodGet, "/bytes/30000", 0, nil)
		})
	}
}

// checkH2TLS checks that the connection negotiated h2 and that some DATA
// frames were longer than a TLS record can hold with them.
func checkH2TLS(t *truth.Truth) error {
	for _, c := range t.Connections {
		if c.TLS.ALPN != "h2" {
			return fmt.Errorf("connection %d: ALPN %q", c.ID, c.TLS.ALPN)
		}
	}
	big := 0
	for _, h := range t.HTTP2 {
		for _, st := range h.Streams {
			if st.DataBytes.C2S > 16384 || st.DataBytes.S2C > 16384 {
				big++
			}
		}
	}
	if big == 0 {
		return errors.New("no stream with over 16 KB of DATA")
	}
	return nil
}

// runGRPCTLS is grpc-tls: unary and streaming calls from grpc-go over
// TLS 1.3.
func runGRPCTLS(ctx context.Context, s *session) error {
	cfg := s.tls.clientConfig(tls.VersionTLS13, nil, nil, "h2")
	cc, err := s.dialGRPCWith("grpc-tls", tlsCreds{s: s, cfg: cfg})
	if err != nil {
		return err
	}
	g := s.grpc
	const phase = "grpc-tls"
	calls := []unaryCall{
		{methodEcho, 10, ok(100), grpcOpts{}},
		{methodEcho, 20_000, ok(10), grpcOpts{}},
		{methodEcho, 100, ok(40_000), grpcOpts{}},
		{methodLookup, 30, fails(codes.NotFound, "no such key: «tls-7»"), grpcOpts{}},
		{methodEcho, 30_000, ok(30_000), grpcOpts{gzip: true}},
		{methodEcho, 64, ok(64), grpcOpts{timeout: 5 * time.Second}},
	}
	if err := g.unaries(ctx, cc, phase, calls); err != nil {
		return err
	}
	if err := g.stream(ctx, cc, phase, methodWatch, truth.GRPCServerStream, []int{16}, &callPlan{resp: repeat(20, 300)}, grpcOpts{}); err != nil {
		return err
	}
	if err := g.stream(ctx, cc, phase, methodCollect, truth.GRPCClientStream, repeat(20, 1000), ok(8), grpcOpts{}); err != nil {
		return err
	}
	return g.stream(ctx, cc, phase, methodChat, truth.GRPCBidi, []int{8, 64, 512, 4096, 20_000}, &callPlan{echo: true}, grpcOpts{})
}

// runTLSAlert is tls-alert: see its description.
func runTLSAlert(ctx context.Context, s *session) error {
	untrusting := func(max uint16, protos ...string) *tls.Config {
		cfg := s.tls.clientConfig(max, nil, nil, protos...)
		cfg.RootCAs = x509.NewCertPool() // trusts nothing
		return cfg
	}
	attempts := []struct {
		phase string
		cfg   *tls.Config
		ok    bool
	}{
		{"unknown-ca-tls13", untrusting(tls.VersionTLS13, "h2"), false},
		{"unknown-ca-tls12", untrusting(tls.VersionTLS12, "h2"), false},
		{"alpn-mismatch", s.tls.clientConfig(tls.VersionTLS13, nil, nil, "spdy/3.1"), false},
		{"ok", s.tls.clientConfig(tls.VersionTLS13, nil, nil, "h2"), true},
	}
	for _, a := range attempts {
		tc, err := s.dialTLS(ctx, a.phase, a.cfg)
		if (err == nil) != a.ok {
			return fmt.Errorf("%s: handshake error %v", a.phase, err)
		}
		if tc != nil {
			tc.Close()
		}
		// Let the server see the end of the connection before the next.
		time.Sleep(20 * time.Millisecond)
	}
	return nil
}

// checkTLSAlert checks that the alerts are those the scenario is for.
func checkTLSAlert(t *truth.Truth) error {
	want := []string{"client bad_certificate encrypted", "client bad_certificate", "server no_application_protocol", ""}
	if len(t.Connections) != len(want) {
		return fmt.Errorf("%d connections, want %d", len(t.Connections), len(want))
	}
	for i, c := range t.Connections {
		got := ""
		if a := c.TLS.Alert; a != nil {
			got = a.From + " " + a.Description
			if a.Encrypted {
				got += " encrypted"
			}
		}
		if got != want[i] {
			return fmt.Errorf("connection %d: alert %q, want %q", c.ID, got, want[i])
		}
	}
	return nil
}
