package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/keepalive"

	"github.com/h2scope/h2scope/tools/capgen/truth"
)

// grpc-goaway: the server's connection age and grace, and the client's
// calls: one every goawayEvery for goawayFor, each answered after
// goawaySleep.
const (
	goawayAge   = time.Second
	goawayGrace = 5 * time.Second
	goawayEvery = 100 * time.Millisecond
	goawayFor   = 1700 * time.Millisecond
	goawaySleep = 300 * time.Millisecond
)

// serveGRPCMaxAge serves the test service with grpc-go closing each
// connection gracefully after goawayAge (±10% jitter, grpc-go's).
func serveGRPCMaxAge(s *session, ln net.Listener) func() error {
	s.setting("keepalive.ServerParameters.MaxConnectionAge", goawayAge)
	s.setting("keepalive.ServerParameters.MaxConnectionAgeGrace", goawayGrace)
	return serveGRPCWith(s, ln, grpc.KeepaliveParams(keepalive.ServerParameters{
		MaxConnectionAge:      goawayAge,
		MaxConnectionAgeGrace: goawayGrace,
	}))
}

// runGRPCGoAway is grpc-goaway: see its description.
func runGRPCGoAway(ctx context.Context, s *session) error {
	cc, err := s.dialGRPC("grpc-go")
	if err != nil {
		return err
	}
	g := s.grpc
	var wg sync.WaitGroup
	var mu sync.Mutex
	var errs []error
	start := time.Now()
	for time.Since(start) < goawayFor {
		wg.Go(func() {
			err := g.unary(ctx, cc, "grpc-go", methodEcho, 100, &callPlan{resp: []int{200}, sleep: goawaySleep}, grpcOpts{})
			mu.Lock()
			errs = append(errs, err)
			mu.Unlock()
		})
		time.Sleep(goawayEvery)
	}
	wg.Wait()
	return errors.Join(errs...)
}

// checkGRPCGoAway checks that the server sent GOAWAY on the first
// connection while calls were in flight and that the client moved to a
// second connection.
func checkGRPCGoAway(t *truth.Truth) error {
	if len(t.HTTP2) < 2 {
		return fmt.Errorf("%d connections, want 2 or more", len(t.HTTP2))
	}
	n := 0
	for _, ga := range t.HTTP2[0].GoAways {
		if ga.Dir == "s2c" {
			n++
		}
	}
	if n == 0 {
		return errors.New("no GOAWAY from the server on connection 1")
	}
	return nil
}

// runH2GoAwayAbrupt is h2-goaway-abrupt: see its description.
func runH2GoAwayAbrupt(ctx context.Context, s *session) error {
	t, err := s.h2Transport("x/net/http2", nil)
	if err != nil {
		return err
	}
	t.ReadIdleTimeout = 100 * time.Millisecond
	t.PingTimeout = time.Second
	s.setting("http2.Transport.ReadIdleTimeout", t.ReadIdleTimeout)
	s.setting("grpc server keepalive.EnforcementPolicy", "default (MinTime 5m, PermitWithoutStream false)")
	g := s.grpc
	if err := g.handCall(ctx, t, "first", methodWatch, truth.GRPCServerStream, []int{16}, 1<<20, &callPlan{resp: repeat(5, 100)}); err != nil {
		return err
	}
	// Idle: the transport pings every 100 ms; the server counts each ping
	// without an active stream as a strike and, at the third, sends
	// GOAWAY ENHANCE_YOUR_CALM "too_many_pings" and closes.
	deadline := time.Now().Add(3 * time.Second)
	for {
		s.lab.mu.Lock()
		closed := len(s.lab.conns) > 0 && s.lab.conns[0].serverClosed
		s.lab.mu.Unlock()
		if closed {
			break
		}
		if time.Now().After(deadline) {
			return errors.New("the server never closed the pinging connection")
		}
		time.Sleep(20 * time.Millisecond)
	}
	time.Sleep(100 * time.Millisecond)
	// The next call dials a new connection.
	return g.handCall(ctx, t, "after", methodWatch, truth.GRPCServerStream, []int{16}, 1<<20, &callPlan{resp: repeat(5, 100)})
}

// checkGoAwayAbrupt checks for the ENHANCE_YOUR_CALM GOAWAY.
func checkGoAwayAbrupt(t *truth.Truth) error {
	if t.Expect.GoAwayCodes["ENHANCE_YOUR_CALM"] == 0 {
		return fmt.Errorf("GOAWAY codes %v, want ENHANCE_YOUR_CALM", t.Expect.GoAwayCodes)
	}
	return nil
}
