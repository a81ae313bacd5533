package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"runtime"
	"slices"
	"strconv"
	"strings"
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

	base   string
	derive func(base *result) (*result, error)
}

// A result is a capture and its truth.
type result struct {
	pkts  []packet
	truth *truth.Truth
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

// produce captures sc (or its base, then derives it).
func produce(ctx context.Context, sc *scenario, o *options) (*result, error) {
	if sc.derive == nil {
		return captureLive(ctx, sc, o)
	}
	base := findScenario(sc.base)
	if base == nil || base.run == nil {
		return nil, fmt.Errorf("%s: base scenario %q is not a live scenario", sc.name, sc.base)
	}
	b, err := captureLive(ctx, base, o)
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
	ln, err := sock.listen()
	if err != nil {
		rec.stop(0)
		return nil, err
	}
	srv := &http.Server{
		Handler:           newHandler(),
		ConnState:         l.connState,
		IdleTimeout:       10 * time.Minute,
		ReadHeaderTimeout: 10 * time.Second,
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(watchListener{Listener: ln, lab: l}) }()

	s := &session{lab: l}
	runErr := sc.run(ctx, s)
	s.closeIdle()
	waitErr := l.waitClosed(5 * time.Second)
	srv.Close()
	if err := <-served; !errors.Is(err, http.ErrServerClosed) {
		runErr = errors.Join(runErr, err)
	}
	pkts, capErr := rec.stop(200 * time.Millisecond)
	if err := errors.Join(runErr, waitErr, capErr); err != nil {
		return nil, err
	}

	t := buildTruth(sc, s, o)
	t.Expect.Frames = len(pkts)
	if err := verifyLive(pkts, sock.port, t); err != nil {
		return nil, fmt.Errorf("capture disagrees with the programs: %w", err)
	}
	if o.segment {
		pkts = segment(pkts, o.mss)
		t.Capture.Segmented = true
		t.Expect.Frames = len(pkts)
		if err := verifyLive(pkts, sock.port, t); err != nil {
			return nil, fmt.Errorf("segmented capture: %w", err)
		}
	}
	return &result{pkts: pkts, truth: t}, nil
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
		})
		t.Expect.C2SBytes += c.sides[0].written
		t.Expect.S2CBytes += c.sides[1].written
	}
	t.Expect.TCPConnections = len(t.Connections)
	t.Expect.HTTPRequests = len(t.Requests)
	t.Expect.Findings = sc.findings
	return t
}
