package main

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/h2scope/h2scope/tools/capgen/truth"
)

// A scenario is one capture capgen can produce: live (run is set) or
// derived from a live one (base and derive are set).
type scenario struct {
	name        string
	description string
	// findings are the h2scope finding kinds (warning or above) the
	// scenario provokes; see truth.Expect.Findings.
	findings []string
	// commit says the scenario is written to testdata/pcaps; others
	// are only captured in memory as bases.
	commit bool

	run func(ctx context.Context, s *session) error
	// serve starts the scenario's server on ln and returns a function
	// that stops it; nil means the HTTP/1.1 server (serveHTTP1).
	serve func(s *session, ln net.Listener) (stop func() error)
	// h2 says the server speaks HTTP/2: its connections are teed
	// (wireTee) and the truth gets HTTP/2 and gRPC fields.
	h2 bool
	// check, if set, checks that a live HTTP/2 run showed what the
	// scenario is for (say, a flow-control stall); a failure retries.
	// In TLS scenarios it also runs for servers without HTTP/2.
	check func(t *truth.Truth) error
	// tls, if set, makes the programs speak TLS with a server configured
	// so: the session gets a tlsLab, the truth TLS records and a key log.
	tls *tlsParams

	// backlog is the listen backlog of the server's socket; 0 means 128.
	backlog int

	base   string
	derive func(base *result) (*result, error)

	// stack, if set, makes this a stack scenario (stacks.go): programs
	// of other stacks, named in tools, play it, and it is written to
	// stacksDir.
	stack func(ctx context.Context, r *stackRun) error
	tools []string
}

// A result is a capture and its truth.
type result struct {
	pkts  []packet
	truth *truth.Truth
	// wires holds, for HTTP/2 scenarios, each connection's wire as the
	// server's tee parsed it (index: connection ID - 1).
	wires []*h2Wire
	// keys is the key log of a TLS scenario, written as NAME.keys, or
	// into the capture when embed is set.
	keys  []byte
	embed bool
}

// scenarios lists every scenario, committed ones in the order written.
var scenarios = []*scenario{
	{
		name: "http1-keepalive",
		description: "net/http client and server with keep-alive: 20 sequential GET/POST requests on one connection " +
			"(bodies up to 200 KB), then 3 concurrent clients sharing the transport (one reuses the idle connection, " +
			"two dial); the client closes its idle connections at the end.",
		findings: []string{},
		commit:   true,
		run:      runKeepAlive,
	},
	{
		name: "http1-nokeepalive",
		description: "net/http client with DisableKeepAlives: 15 sequential requests, each on a new TCP connection " +
			"(Connection: close), so connections churn.",
		findings: []string{"reconnect_churn"},
		commit:   true,
		run:      runNoKeepAlive,
	},
	{
		name:        "http1-transfer",
		description: "net/http keep-alive client and server: 6 requests with bodies up to 120 KB each way on one connection.",
		findings:    []string{},
		run:         runTransfer,
	},
	{
		name: "tcp-impaired",
		description: "http1-transfer rewritten: adjacent data segments swapped (out of order), data segments " +
			"repeated later (retransmissions, same bytes) and data segments removed for good (lost, gaps in the byte " +
			"streams); handshakes and FINs untouched.",
		findings: []string{},
		commit:   true,
		base:     "http1-transfer",
		derive:   deriveImpaired,
	},
	{
		name: "grpc-unary-h2c",
		description: "grpc-go client and server over h2c (insecure credentials, HTTP/2 prior knowledge), one connection: " +
			"20 unary calls of a hand-written service with google.protobuf.BytesValue messages: requests and responses " +
			"over 16 KB split over DATA frames, a 16,379-byte message filling one 16,384-byte DATA frame, empty messages, " +
			"gzip-compressed messages, 70 KB messages past the initial windows, 6 error statuses in trailers-only responses " +
			"(grpc-message percent-encoded: non-ASCII, '%', newline, tab), a call whose 100 ms deadline expires while the " +
			"server sleeps (grpc-timeout, DEADLINE_EXCEEDED, RST_STREAM CANCEL) and one the client cancels after 50 ms " +
			"(RST_STREAM CANCEL); the client closes the connection at the end (GOAWAY).",
		findings: []string{},
		commit:   true,
		h2:       true,
		serve:    serveGRPC,
		run:      runGRPCUnary,
		check:    checkGRPCUnary,
	},
	{
		name: "grpc-streaming-h2c",
		description: "grpc-go server over h2c. Connection 1, a grpc-go client: server-streaming calls (30 small messages; " +
			"3 messages of 100 KB; 200 tiny messages sent as fast as possible, one DATA frame each but several frames per " +
			"TCP segment; 3 messages then NOT_FOUND in the trailers), a gzip client-streaming call (50 messages), bidi " +
			"ping-pong (10 messages) and bidi with 80 KB messages each way. Connection 2, gRPC by hand over " +
			"golang.org/x/net/http2's Transport: a client-streaming call of 300 small messages written back to back, so " +
			"many messages share each DATA frame and some straddle two (prefixes included), and a server-streaming call.",
		findings: []string{},
		commit:   true,
		h2:       true,
		serve:    serveGRPC,
		run:      runGRPCStreaming,
		check:    checkGRPCStreaming,
	},
	{
		name: "h2c-large-slow",
		description: "golang.org/x/net/http2 over h2c (prior knowledge: Server.ServeConn, Transport with AllowHTTP) with " +
			"small windows (the server receives with 65,535 bytes per connection and 32 KB per stream, the client with " +
			"131,070 and 80 KB): 3 small requests, a 300,000-byte upload, a 1,000,000-byte download the client reads 8 KB every 3 ms " +
			"(the server's stream window reaches 0 again and again and each WINDOW_UPDATE lets 8 KB through), then two " +
			"such slow 120,000-byte downloads at once (the connection window reaches 0).",
		findings: []string{"window_stall"},
		commit:   true,
		h2:       true,
		serve:    serveH2C,
		run:      runH2CLargeSlow,
		check:    checkH2CLargeSlow,
	},
	{
		name: "grpc-unary-h2c-midstream",
		description: "grpc-unary-h2c from the frame after the third call's trailers: no handshake, client preface, " +
			"SETTINGS or first header blocks, so the HPACK dynamic tables are unknown and later header blocks that " +
			"refer to them cannot be decoded; the capture starts on HTTP/2 frame boundaries.",
		findings: []string{},
		commit:   true,
		base:     "grpc-unary-h2c",
		derive:   deriveMidstream(cutAfterStream(1, 5)),
	},
	{
		name: "h2c-large-slow-midstream",
		description: "h2c-large-slow from inside the upload's request body: no handshake, client preface, SETTINGS or " +
			"first header blocks (HPACK dynamic tables unknown), and the first client bytes are the tail of a DATA frame, " +
			"so a dissector must find the next frame boundary.",
		findings: []string{"window_stall"},
		commit:   true,
		base:     "h2c-large-slow",
		derive:   deriveMidstream(cutInsideBody("upload")),
	},
	{
		name: "tls13-resume",
		description: "net/http client and server, HTTP/1.1 over TLS 1.3 (SNI h2scope.test, ALPN http/1.1) with keep-alives " +
			"off: 5 connections of one request each from one client with a tls.ClientSessionCache; the server keeps its " +
			"session-ticket keys, so the first connection is a full handshake and the other 4 resume with a PSK.",
		findings: []string{},
		commit:   true,
		tls:      tls13Params,
		serve:    serveHTTPS,
		run:      runTLS13Resume,
		check:    checkResume,
	},
	{
		name: "tls13-resume-fail",
		description: "as tls13-resume, but after the first connection the server sets fresh session-ticket keys before " +
			"connections 2 and 3 and disables session tickets for connections 4 and 5: the client offers a PSK every time " +
			"and gets a full handshake every time.",
		findings: []string{"resumption_failure"},
		commit:   true,
		tls:      tls13Params,
		serve:    serveHTTPS,
		run:      runTLS13ResumeFail,
		check:    checkResumeFail,
	},
	{
		name: "tls12-resume",
		description: "net/http client and server, HTTP/1.1 over TLS 1.2 with keep-alives off and session tickets (RFC 5077): " +
			"3 clients, each with its own session cache and one ECDHE-RSA suite (AES-128-GCM, AES-256-GCM, " +
			"ChaCha20-Poly1305), make 3 connections each: a full handshake, then 2 resumed with the ticket.",
		findings: []string{},
		commit:   true,
		tls:      tls12Params,
		serve:    serveHTTPS,
		run:      runTLS12Resume,
		check:    checkResume,
	},
	{
		name: "tls12-resume-fail",
		description: "as tls12-resume, but the server refuses the tickets: an AES-128-GCM client makes 5 connections (the " +
			"server sets fresh ticket keys before connections 2 and 3 and disables tickets for 4 and 5) and a " +
			"ChaCha20-Poly1305 client 2 (fresh keys before the second); every offered ticket is ignored and every handshake is full.",
		findings: []string{"resumption_failure"},
		commit:   true,
		tls:      tls12Params,
		serve:    serveHTTPS,
		run:      runTLS12ResumeFail,
		check:    checkResumeFail,
	},
	{
		name: "h2-tls",
		description: "HTTP/2 over TLS 1.3 (ALPN h2): net/http's client (ForceAttemptHTTP2) and x/net/http2's server on one " +
			"connection: 6 sequential requests with bodies up to 50 KB each way (DATA frames of 16 KB span two TLS " +
			"records) and 2 concurrent ones. The server tees the plaintext above TLS, so the truth lists the HTTP/2 frames.",
		findings: []string{},
		commit:   true,
		h2:       true,
		tls:      h2TLS13,
		serve:    serveH2TLS,
		run:      runH2TLS(tls.VersionTLS13, nil),
		check:    checkH2TLS,
	},
	{
		name: "h2-tls-dsb",
		description: "h2-tls with its key log embedded in a pcapng Decryption Secrets Block (TLSK) before the first packet, " +
			"so Wireshark and h2scope decrypt it without a key log file.",
		findings: []string{},
		commit:   true,
		base:     "h2-tls",
		derive:   deriveEmbedKeys,
	},
	{
		name:        "h2-tls12",
		description: "as h2-tls over TLS 1.2 with TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384 (explicit GCM nonces, SHA-384 PRF).",
		findings:    []string{},
		commit:      true,
		h2:          true,
		tls:         h2TLS12,
		serve:       serveH2TLS,
		run:         runH2TLS(tls.VersionTLS12, suiteAES256),
		check:       checkH2TLS,
	},
	{
		name: "grpc-tls",
		description: "grpc-go client and server over TLS 1.3 (ALPN h2), one connection: 6 unary calls (messages over 16 KB, " +
			"a NOT_FOUND status, gzip, a deadline), a server-streaming call of 20 messages, a client-streaming call of 20 " +
			"and a bidi call with messages up to 20 KB. The server tees the plaintext above TLS.",
		findings: []string{},
		commit:   true,
		h2:       true,
		tls:      h2TLS13,
		serve:    serveGRPCTLS,
		run:      runGRPCTLS,
	},
	{
		name: "tls-alert",
		description: "TLS handshakes that end in fatal alerts, from crypto/tls clients to a crypto/tls server offering h2: " +
			"a TLS 1.3 client that does not trust the server's certificate sends bad_certificate (encrypted, after the " +
			"ServerHello), a TLS 1.2 one sends it in the clear, a client offering only ALPN spdy/3.1 gets " +
			"no_application_protocol from the server; a fourth handshake succeeds and the client closes at once.",
		findings: []string{},
		commit:   true,
		tls:      alertParams,
		serve:    serveTLSOnly,
		run:      runTLSAlert,
		check:    checkTLSAlert,
	},
	{
		name: "grpc-cancel-storm",
		description: "grpc-go client and server over h2c, one connection: after one ordinary call the client starts 200 " +
			"unary calls at once against a handler that sleeps 300 ms; 150 have a 40 ms deadline (grpc-timeout) and 50 are " +
			"cancelled by the client after 40 ms, so within a few milliseconds the client resets every one of them with " +
			"RST_STREAM CANCEL (DEADLINE_EXCEEDED or CANCELLED on the client) and the server's own timers may add resets of their own.",
		findings: []string{"rst_storm", "request_errors"},
		commit:   true,
		h2:       true,
		serve:    serveGRPC,
		run:      runGRPCCancelStorm,
		check:    checkGRPCCancelStorm,
	},
	{
		name: "h2-max-streams",
		description: "x/net/http2 server over h2c with MaxConcurrentStreams 4, and a hand-written client (x/net/http2's Framer) " +
			"that opens 40 streams (GET /slow/50) at once right after its preface, before it has read, let alone acknowledged, " +
			"the server's SETTINGS: the server runs 4 and refuses the other 36 with RST_STREAM REFUSED_STREAM; the client then " +
			"retries each refused request on a new stream, keeping within the limit of 4.",
		findings: []string{"rst_storm"},
		commit:   true,
		h2:       true,
		serve:    serveH2MaxStreams,
		run:      runH2MaxStreams,
		check:    checkH2MaxStreams,
	},
	{
		name: "http1-small-pool",
		description: "net/http keep-alive client whose Transport keeps one idle connection per host " +
			"(MaxIdleConnsPerHost 1), shared by 16 goroutines that fan out in 10 rounds, each making one request per round " +
			"at once (small bodies, half from a 5 ms handler): when the requests of a round end, one connection takes the " +
			"idle slot and the client closes the other 15, so most " +
			"connections carry one request and the client churns through connections (FIN, then a new SYN).",
		findings: []string{"reconnect_churn"},
		commit:   true,
		run:      runHTTP1SmallPool,
		check:    checkSmallPool,
	},
	{
		name: "http1-idle-timeout",
		description: "net/http server with IdleTimeout 600 ms, client with the default long IdleConnTimeout: requests " +
			"after gaps of 200-400 ms reuse the connection, after gaps of 900 ms and 1.2 s the server has closed it (FIN) " +
			"and the client dials anew; then requests sent right when the server's idle timer fires race its close: " +
			"written on a connection the server is closing (answered by its RST), they are retried by net/http on a new " +
			"connection (failed_attempts); the server FIN comes first and its RST answers the request.",
		findings: []string{"keepalive_mismatch"},
		commit:   true,
		serve:    serveIdleTimeout,
		run:      runHTTP1IdleTimeout,
		check:    checkIdleTimeout,
	},
	{
		name: "h2-slow-reader",
		description: "x/net/http2 over h2c, a client with small receive windows (16 KB per stream, SETTINGS_INITIAL_WINDOW_SIZE; " +
			"131,070 bytes for the connection, the least x/net allows) starts 10 downloads of 20,000 bytes at once and reads " +
			"each 4 KB every 150 ms: the 10 stream windows add up to more than the connection window, so the server's " +
			"connection window reaches 0 and stays there while every stream has data waiting (connection window starvation), " +
			"and the stream windows reach 0 as well.",
		findings: []string{"window_stall"},
		commit:   true,
		h2:       true,
		serve:    serveH2C,
		run:      runH2SlowReader,
		check:    checkH2SlowReader,
	},
	{
		name: "tcp-stopped-reader",
		description: "a raw HTTP/1.1 client with SO_RCVBUF 16384 (set before connect) sends GET /bytes/100000 to the net/http " +
			"server and reads nothing for 1.5 s: its receive buffer fills, it advertises a zero TCP window and the server, " +
			"its send window full, probes it until the client reads the response, then closes.",
		findings: []string{"window_stall"},
		commit:   true,
		run:      runTCPStoppedReader,
	},
	{
		name: "grpc-goaway",
		description: "grpc-go server with MaxConnectionAge 1 s (grace 5 s) over h2c; the grpc-go client starts a unary call " +
			"every 100 ms for 1.7 s, each answered after 300 ms. About 1 s in, the server drains the connection gracefully: " +
			"GOAWAY NO_ERROR with last-stream-id 2^31-1, a PING, then GOAWAY NO_ERROR with the real last stream; the calls in " +
			"flight finish on the old connection and the next ones go to a new connection. Nothing is cut and there is no " +
			"error code, so the goaway finding is info and nothing is expected at warning or above.",
		findings: []string{},
		commit:   true,
		h2:       true,
		serve:    serveGRPCMaxAge,
		run:      runGRPCGoAway,
		check:    checkGRPCGoAway,
	},
	{
		name: "h2-goaway-abrupt",
		description: "grpc-go server with the default keepalive enforcement (MinTime 5 min, no pings without streams) and " +
			"gRPC calls by hand over golang.org/x/net/http2's Transport with ReadIdleTimeout 100 ms: after a server-streaming " +
			"call the idle client pings every 100 ms, the server counts strikes and answers the third with GOAWAY " +
			"ENHANCE_YOUR_CALM, debug data \"too_many_pings\", and closes the connection; the next call dials a new one.",
		findings: []string{"goaway"},
		commit:   true,
		h2:       true,
		serve:    serveGRPC,
		run:      runH2GoAwayAbrupt,
		check:    checkGoAwayAbrupt,
	},
	{
		name: "syn-refused",
		description: "a client makes 3 HTTP/1.1 requests (Connection: close, one connection each) to the net/http server, " +
			"which then stops listening (its listening socket closed, as in a restart): 4 connects 50 ms apart are refused, " +
			"each SYN answered by the kernel's RST-ACK (ECONNREFUSED); the server listens again on the same port and 3 more " +
			"requests succeed. Live, no rewriting (there is no iptables or nft on the capture host, and none is needed).",
		findings: []string{"syn_retransmit"},
		commit:   true,
		serve:    serveRestartable,
		run:      runSYNRefused,
		check:    checkSYNRefused,
	},
	{
		name: "syn-unanswered",
		description: "a net/http server listening with backlog 1 that accepts nothing for 2.5 s: the client's first 2 " +
			"connects complete and wait in the kernel's accept queue, which is then full, so the kernel drops the SYNs of " +
			"the next 2 without answer and the client's kernel retransmits them, about once a second: one connect, with a " +
			"10 s timeout, is answered by its third retransmitted SYN, about 3 s in, once the server accepts again; the other " +
			"gives up after 2 s (one SYN retransmitted, never answered). Then each established connection carries one GET. Live, no " +
			"rewriting: the SYN retransmissions are the client kernel's (TCP_INFO tcpi_total_retrans in syn_retransmits).",
		findings: []string{"syn_retransmit"},
		commit:   true,
		backlog:  1,
		serve:    serveGated,
		run:      runSYNUnanswered,
		check:    checkSYNUnanswered,
	},
	{
		name: "hostile-strings",
		description: "hostile and secret values for the reports to render inert or redact (issue 6): an HTTP/1.1 " +
			"keep-alive connection (requests written by hand, net/http's server) with two requests and an h2c connection " +
			"(prior knowledge, hand-written client and server on x/net/http2's Framer) with three concurrent streams. The " +
			"requests carry targets with <script> and \"><img onerror> markup and an access_token query parameter (on h2c " +
			"also one with terminal escapes, ESC and BEL), a " +
			"</script><script> User-Agent, Authorization, Cookie and X-Api-Key secrets, and on h2c :authority <b>x</b> and " +
			"trace-bin binary metadata; the responses carry Set-Cookie, a Location with user information and a sig " +
			"parameter, on h2c a header value with terminal escapes (ESC, BEL), and the h2c server ends with GOAWAY " +
			"NO_ERROR whose debug data is <script>alert(4)</script>. Every secret value starts with SECRET-. Then " +
			"three connections carry controls (issue 12): the string ctl ESC [31m BEL NUL DEL U+009B(C1 CSI) 2J " +
			"U+202E(RLO) gnp.exe 0xff 0xfe(invalid UTF-8) U+2066 U+2028 end, and big values of 73,728 bytes (\"big\" " +
			"then that string repeated; past every bound h2scope keeps). An HTTP/1.1 connection written and answered " +
			"by hand sends GET /ctl with it as Host, User-Agent and X-Ctl (answered with an X-Ctl of it), then " +
			"GET /ctl/big with a big Host. An h2c connection (hand-written client allowing 1 MiB frames, the same " +
			"server) sends GET /ctl with it as :authority, host and x-ctl (answered with an x-ctl of it and a " +
			"content-type whose only fault is invalid UTF-8, text/plain; charset=0xff 0xfe), a gRPC " +
			"call /hostile.Ctl/Fail failed with INTERNAL and a grpc-message of it plus a percent-encoded part " +
			"(pct%1B%C2%9B%E2%80%AE%FFend), and a gRPC call /hostile.Ctl/Big with a big :authority failed with " +
			"RESOURCE_EXHAUSTED and a big grpc-message; the server's GOAWAY NO_ERROR has big debug data. A TLS 1.3 " +
			"connection (crypto/tls client and server, handshake only) has it as the ClientHello's server_name.",
		findings: []string{},
		commit:   true,
		serve:    serveHostile,
		run:      runHostile,
		check:    checkHostile,
	},
}

// deriveEmbedKeys is h2-tls-dsb: base's packets and truth, the key log
// to be embedded in the capture instead of written beside it.
func deriveEmbedKeys(base *result) (*result, error) {
	if base.keys == nil {
		return nil, fmt.Errorf("base %s has no key log", base.truth.Scenario)
	}
	b, err := json.Marshal(base.truth)
	if err != nil {
		return nil, err
	}
	t := new(truth.Truth)
	if err := json.Unmarshal(b, t); err != nil {
		return nil, err
	}
	t.Capture.KeyLog = truth.KeyLogEmbedded
	t.DerivedFrom = &truth.Derivation{
		Scenario:   base.truth.Scenario,
		How:        "the same frames, with the key log in a Decryption Secrets Block after the interface description",
		BaseFrames: len(base.pkts),
		Edits:      []truth.Edit{},
	}
	return &result{pkts: base.pkts, truth: t, wires: base.wires, keys: base.keys, embed: true}, nil
}

// checkWire runs sc.check, if any.
func (sc *scenario) checkWire(t *truth.Truth) error {
	if sc.check == nil {
		return nil
	}
	if err := sc.check(t); err != nil {
		return fmt.Errorf("the run did not show what %s is for: %w", sc.name, err)
	}
	return nil
}

// findScenario returns the scenario called name, or nil.
func findScenario(name string) *scenario {
	for _, s := range scenarios {
		if s.name == name {
			return s
		}
	}
	return nil
}

// produce captures sc (or its base, then derives it). Live results are
// kept in done, by name, and a derived scenario reuses its base's from
// there, so that a derived capture and its committed base come from the
// same run.
func produce(ctx context.Context, sc *scenario, o *options, done map[string]*result) (*result, error) {
	if sc.stack != nil {
		return captureStack(ctx, sc, o)
	}
	if sc.derive == nil {
		if r := done[sc.name]; r != nil {
			return r, nil
		}
		r, err := captureLive(ctx, sc, o)
		if err == nil && done != nil {
			done[sc.name] = r
		}
		return r, err
	}
	base := findScenario(sc.base)
	if base == nil || base.run == nil {
		return nil, fmt.Errorf("%s: base scenario %q is not a live scenario", sc.name, sc.base)
	}
	b, err := produce(ctx, base, o, done)
	if err != nil {
		return nil, err
	}
	r, err := sc.derive(b)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", sc.name, err)
	}
	r.truth.Scenario = sc.name
	r.truth.Description = sc.description
	r.truth.Expect.Findings = sc.findings
	r.truth.Expect.Frames = len(r.pkts)
	return r, nil
}

// captureLive runs sc under capture, retrying a few times if the capture
// and the programs' view disagree (a check, not an expected event).
func captureLive(ctx context.Context, sc *scenario, o *options) (*result, error) {
	var err error
	for attempt := 1; attempt <= 3; attempt++ {
		var r *result
		r, err = captureOnce(ctx, sc, o)
		if err == nil {
			return r, nil
		}
		if errors.Is(err, errNotRoot) || ctx.Err() != nil {
			return nil, err
		}
		fmt.Fprintf(o.stderr, "capgen: %s: attempt %d: %v\n", sc.name, attempt, err)
	}
	return nil, fmt.Errorf("%s: %w", sc.name, err)
}

// captureOnce starts the capture, then the server, runs the clients, waits
// for every connection to close and the capture to go quiet, and checks
// the capture against what the programs saw.
func captureOnce(ctx context.Context, sc *scenario, o *options) (*result, error) {
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()

	sock, err := bindLoopback(o.mss)
	if err != nil {
		return nil, err
	}
	rec, err := startCapture(sock.port)
	if err != nil {
		sock.close()
		return nil, err
	}
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(int(sock.port)))
	l := newLab(addr, o.mss)
	l.h2 = sc.h2
	s := newSession(l)
	if p := sc.tls; p != nil {
		l.tls, l.sockClose = true, true
		if s.tls, err = newTLSLab(l, p.min, p.max, p.suites, p.protos...); err != nil {
			rec.stop(0)
			sock.close()
			return nil, err
		}
	}
	ln, err := sock.listen(sc.backlog)
	if err != nil {
		rec.stop(0)
		return nil, err
	}
	serve := sc.serve
	if serve == nil {
		serve = serveHTTP1
	}
	stop := serve(s, watchListener{Listener: ln, lab: l})

	runErr := sc.run(ctx, s)
	s.closeIdle()
	waitErr := l.waitClosed(5 * time.Second)
	stopErr := stop()
	pkts, capErr := rec.stop(200 * time.Millisecond)
	if err := errors.Join(runErr, waitErr, stopErr, capErr); err != nil {
		return nil, err
	}

	t := buildTruth(sc, s, o)
	t.Expect.Frames = len(pkts)
	if !sc.h2 && sc.tls == nil {
		if err := sc.checkWire(t); err != nil {
			return nil, err
		}
	}
	var written [][2][]byte
	if sc.tls != nil {
		l.mu.Lock()
		recs := slices.Clone(s.conns)
		for _, c := range recs {
			written = append(written, [2][]byte{c.sides[0].wire, c.sides[1].wire})
		}
		err := finishTLS(t, recs, s.tls.keys())
		l.mu.Unlock()
		if err != nil {
			return nil, err
		}
		t.Capture.KeyLog = sc.name + ".keys"
		if !sc.h2 {
			if err := sc.checkWire(t); err != nil {
				return nil, err
			}
		}
	}
	var wires []*h2Wire
	if sc.h2 {
		if wires, err = s.wires(); err != nil {
			return nil, err
		}
		if err := s.linkStreams(t, wires); err != nil {
			return nil, err
		}
		applyWire(t, wires, nil)
		if err := sc.checkWire(t); err != nil {
			return nil, err
		}
	}
	check := func(pkts []packet) error {
		if err := verifyLive(pkts, sock.port, t); err != nil {
			return err
		}
		if sc.tls != nil {
			return verifyWritten(pkts, sock.port, t, written)
		}
		if sc.h2 {
			return verifyHTTP2(pkts, sock.port, t, wires)
		}
		return nil
	}
	if err := check(pkts); err != nil {
		return nil, fmt.Errorf("capture disagrees with the programs: %w", err)
	}
	if o.segment {
		pkts = segment(pkts, o.mss)
		t.Capture.Segmented = true
		t.Expect.Frames = len(pkts)
		if err := check(pkts); err != nil {
			return nil, fmt.Errorf("segmented capture: %w", err)
		}
	}
	r := &result{pkts: pkts, truth: t, wires: wires}
	if sc.tls != nil {
		r.keys = s.tls.keys()
	}
	return r, nil
}

// serveHTTP1 serves the HTTP/1.1 test handler (newHandler) on ln.
func serveHTTP1(s *session, ln net.Listener) func() error {
	return serveHTTP(newHTTP1Server(s), ln)
}

// newHTTP1Server returns the HTTP/1.1 test server: newHandler, with the
// connections' states reported to the lab.
func newHTTP1Server(s *session) *http.Server {
	return &http.Server{
		Handler:           newHandler(),
		ConnState:         s.connState,
		IdleTimeout:       10 * time.Minute,
		ReadHeaderTimeout: 10 * time.Second,
	}
}

// serveHTTP runs srv.Serve(ln) in a goroutine and returns a function that
// closes srv and returns the error Serve stopped with, unless it is
// http.ErrServerClosed.
func serveHTTP(srv *http.Server, ln net.Listener) func() error {
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	return func() error {
		srv.Close()
		if err := <-served; !errors.Is(err, http.ErrServerClosed) {
			return err
		}
		return nil
	}
}

// acceptLoop calls serve, in a goroutine, on every connection ln accepts,
// and returns a function that closes ln and waits for them.
func acceptLoop(ln net.Listener, serve func(net.Conn)) func() error {
	var wg sync.WaitGroup
	acceptErr := make(chan error, 1)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				acceptErr <- err
				return
			}
			wg.Go(func() { serve(c) })
		}
	}()
	return func() error {
		ln.Close()
		err := <-acceptErr
		wg.Wait()
		if errors.Is(err, net.ErrClosed) {
			return nil
		}
		return err
	}
}

// buildTruth turns what the session saw into a truth file.
func buildTruth(sc *scenario, s *session, o *options) *truth.Truth {
	t := &truth.Truth{
		Scenario:    sc.name,
		Description: sc.description,
		Server:      s.server,
		Capture: truth.Capture{
			Interface: "lo",
			LinkType:  "ethernet",
			Snaplen:   snaplen,
			MSS:       o.mss,
			SockBuf:   sockBuf,
			Go:        runtime.Version(),
		},
		Requests: s.requests,
	}
	s.lab.mu.Lock()
	recs := slices.Clone(s.conns)
	s.lab.mu.Unlock()
	for _, c := range recs {
		active := 0
		for _, st := range c.states {
			if st == http.StateActive.String() {
				active++
			}
		}
		if s.h2 {
			active = c.serverRequests
		}
		// A TLS scenario's records are completed by finishTLS; a TLS
		// connection in another scenario is recorded by its programs.
		var tlsRec *truth.TLS
		if c.tls != nil {
			r := *c.tls
			tlsRec = &r
		}
		t.Connections = append(t.Connections, truth.Connection{
			ID:             c.id,
			Client:         c.client,
			Server:         s.server,
			Phase:          c.phase,
			Requests:       c.requests,
			ServerRequests: active,
			C2SBytes:       c.sides[0].written,
			S2CBytes:       c.sides[1].written,
			ClosedBy:       c.closedBy(),
			ServerStates:   strings.Join(c.states, " "),
			FailedRequests: c.failed,
			ResetBy:        c.resetBy(),
			RcvBuf:         c.rcvBuf,
			Dial:           c.dial,
			SYNRetransmits: c.synRetrans,
			TLS:            tlsRec,
		})
		t.Expect.C2SBytes += c.sides[0].written
		t.Expect.Retransmissions += c.synRetrans
		t.Expect.S2CBytes += c.sides[1].written
	}
	t.Expect.TCPConnections = len(t.Connections)
	t.Expect.HTTPRequests = len(t.Requests)
	t.GRPCCalls = s.grpcCalls()
	t.Expect.Findings = sc.findings
	if len(s.settings) > 0 {
		t.Settings = s.settings
	}
	return t
}
