package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"strconv"
	"time"

	"google.golang.org/grpc"

	"github.com/h2scope/h2scope/tools/capgen/truth"
)

// benchConns is the number of grpc-go client connections of -grpc-bench,
// and benchInFlight the calls each keeps in flight.
const (
	benchConns    = 4
	benchInFlight = 4
)

// benchSize returns the value size of a bench message drawn from r: a few
// hundred bytes half the time, a few KB a third of the time, tens of KB
// the rest (mean about 9 KB), so that calls look like a mixed gRPC
// service: small lookups, medium records, some bulk.
func benchSize(r *rand.Rand) int {
	switch x := r.IntN(100); {
	case x < 50:
		return 200 + r.IntN(1800)
	case x < 85:
		return 2000 + r.IntN(14_000)
	default:
		return 16_000 + r.IntN(48_000)
	}
}

// runGRPCBench writes the -grpc-bench capture: grpc-go clients on
// benchConns h2c connections to a grpc-go server make o.calls unary Echo
// calls of the lab service (google.protobuf.BytesValue messages of mixed
// sizes, from a fixed seed), captured on lo and segmented at the MSS like
// the committed scenarios. With o.size above the live capture's size, the
// capture is tiled (as -big does) up to it. It prints how the file was
// made, live or tiled, so the benchmark can say so.
func runGRPCBench(ctx context.Context, o *options, stdout io.Writer) error {
	start := time.Now()
	sock, err := bindLoopback(o.mss)
	if err != nil {
		return err
	}
	rec, err := startCapture(sock.port)
	if err != nil {
		sock.close()
		return err
	}
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(int(sock.port)))
	l := newLab(addr, o.mss)
	l.sockClose = true // grpc-go, not net/http: a connection is closed when both sockets are
	s := newSession(l)
	ln, err := sock.listen(0)
	if err != nil {
		rec.stop(0)
		return err
	}
	stop := serveGRPC(s, watchListener{Listener: ln, lab: l})
	runErr := benchCalls(ctx, s, o.calls)
	s.closeIdle()
	waitErr := l.waitClosed(10 * time.Second)
	stopErr := stop()
	pkts, capErr := rec.stop(200 * time.Millisecond)
	if err := errors.Join(runErr, waitErr, stopErr, capErr); err != nil {
		return err
	}
	live := len(pkts)
	pkts = segment(pkts, o.mss)
	base := &result{pkts: pkts, truth: &truth.Truth{
		Scenario: "grpc-bench",
		Server:   addr,
		Expect:   truth.Expect{TCPConnections: benchConns},
	}}
	var bytes int64
	for _, p := range pkts {
		bytes += int64(len(p.data))
	}
	how := fmt.Sprintf("live: %d unary calls on %d connections", o.calls, benchConns)
	if bytes < o.size {
		tiles, frames, err := writeBig(o.bench, o.size, base)
		if err != nil {
			return errors.Join(fmt.Errorf("%s: %w", o.bench, err), os.Remove(o.bench))
		}
		how = fmt.Sprintf("tiled: %d copies of %d unary calls on %d connections (%d frames)", tiles, o.calls, benchConns, frames)
	} else {
		err := writeAtomic(o.bench, func(w io.Writer) error {
			return writeNg(w, "capgen grpc-bench "+how, nil, pkts)
		})
		if err != nil {
			return err
		}
	}
	st, err := os.Stat(o.bench)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "%s: %d bytes; %s, server %s, %d frames captured (%d after segmenting at MSS %d); made in %v\n",
		o.bench, st.Size(), how, addr, live, len(pkts), o.mss, time.Since(start).Round(time.Millisecond))
	return nil
}

// benchCalls makes n unary calls over benchConns grpc-go connections,
// benchInFlight at a time on each.
func benchCalls(ctx context.Context, s *session, n int) error {
	ccs := make([]*grpc.ClientConn, benchConns)
	for i := range ccs {
		cc, err := s.dialGRPC("bench-" + strconv.Itoa(i+1))
		if err != nil {
			return err
		}
		ccs[i] = cc
	}
	// Sizes come from a fixed seed, drawn before the calls start, so that
	// every run asks for the same messages.
	r := rand.New(rand.NewPCG(7, 42))
	type call struct{ req, resp int }
	calls := make([]call, n)
	for i := range calls {
		calls[i] = call{req: benchSize(r) / 4, resp: benchSize(r)}
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	next := make(chan call)
	go func() {
		defer close(next)
		for _, c := range calls {
			select {
			case next <- c:
			case <-ctx.Done():
				return
			}
		}
	}()
	return concurrently(benchConns*benchInFlight, func(w int) error {
		cc := ccs[w%benchConns]
		for c := range next {
			if err := s.grpc.unary(ctx, cc, "bench", methodEcho, c.req, ok(c.resp), grpcOpts{}); err != nil {
				cancel()
				return err
			}
		}
		return nil
	})
}
