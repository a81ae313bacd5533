package main

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"sync/atomic"
	"time"

	"github.com/h2scope/h2scope/tools/capgen/truth"
)

func init() {
	scenarios = append(scenarios, &scenario{
		name: "tls-slow-handshake",
		description: "net/http client and server, HTTP/1.1 over TLS 1.3 (SNI h2scope.test) with keep-alives off and no " +
			"session cache: 10 connections of one GET each, one after the other, every handshake full. The server's " +
			"accept loop stalls for 400 ms before it accepts connections 4 and 8, as an overloaded server's does: the " +
			"kernel completes the TCP handshake and queues the ClientHello at once, and the ServerHello follows 400 ms " +
			"later, so those two TLS handshakes take about 400 ms against a few milliseconds for the other eight (handshake_latency). " +
			"With one request per connection the pool also churns (reconnect_churn).",
		findings: []string{"handshake_latency", "reconnect_churn"},
		commit:   true,
		tls:      tls13Params,
		serve:    serveSlowAccept,
		run:      runSlowHandshake,
		check:    checkSlowHandshake,
	})
}

// slowAcceptDelay is how long the tls-slow-handshake server's accept
// loop stalls before the connections in slowAccepted.
const slowAcceptDelay = 400 * time.Millisecond

// slowAccepted are the connections (1-based, in accept order) the
// tls-slow-handshake server accepts slowAcceptDelay late.
var slowAccepted = map[int64]bool{4: true, 8: true}

// slowListener stalls before returning the connections in slowAccepted.
// The connection returned is the one the inner listener accepted, so
// the lab still watches it.
type slowListener struct {
	net.Listener
	n atomic.Int64
}

// Accept accepts the next connection, slowAcceptDelay late when it is
// one of slowAccepted.
func (l *slowListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	if slowAccepted[l.n.Add(1)] {
		time.Sleep(slowAcceptDelay)
	}
	return c, nil
}

// serveSlowAccept serves HTTPS (serveHTTPS) behind a slowListener.
func serveSlowAccept(s *session, ln net.Listener) func() error {
	return serveHTTPS(s, &slowListener{Listener: ln})
}

// runSlowHandshake is tls-slow-handshake: see its description.
func runSlowHandshake(ctx context.Context, s *session) error {
	cfg := s.tls.clientConfig(tls.VersionTLS13, nil, nil, http11Protos...)
	var conns []tlsConn
	for i := range 10 {
		conns = append(conns, tlsConn{tickets: ticketsDisabled, cfg: cfg, steps: steps(getBytes(1000 + 100*i))})
	}
	return s.runTLSConns(ctx, "slow-handshake", conns)
}

// checkSlowHandshake checks that there were 10 full TLS 1.3 handshakes,
// none resumed.
func checkSlowHandshake(t *truth.Truth) error {
	if len(t.Connections) != 10 {
		return fmt.Errorf("%d connections, want 10", len(t.Connections))
	}
	for _, c := range t.Connections {
		if c.TLS == nil || !c.TLS.HandshakeComplete || c.TLS.DidResume || c.TLS.Version != "TLS 1.3" {
			return fmt.Errorf("connection %d: not a complete full TLS 1.3 handshake", c.ID)
		}
	}
	return nil
}
