package main

import (
	"context"
	"errors"
	"fmt"
	"time"

	"google.golang.org/grpc/codes"

	"github.com/h2scope/h2scope/tools/capgen/truth"
)

// ok is a plan answering one message of n value bytes with status OK.
func ok(n int) *callPlan { return &callPlan{resp: []int{n}} }

// fails is a plan answering with status code and message msg, and no
// message (grpc-go then sends a trailers-only response).
func fails(code codes.Code, msg string) *callPlan { return &callPlan{code: code, msg: msg, want: code} }

// repeat returns n copies of size.
func repeat(n, size int) []int {
	s := make([]int, n)
	for i := range s {
		s[i] = size
	}
	return s
}

// runGRPCUnary is grpc-unary-h2c: 20 unary calls from grpc-go to grpc-go
// over one h2c connection. See the scenario's description.
func runGRPCUnary(ctx context.Context, s *session) error {
	cc, err := s.dialGRPC("unary")
	if err != nil {
		return err
	}
	g := s.grpc
	const phase = "unary"
	calls := []unaryCall{
		{methodEcho, 10, ok(100), grpcOpts{}},
		{methodEcho, 1000, ok(1000), grpcOpts{}},
		{methodEcho, 20_000, ok(10), grpcOpts{}},  // request over 16 KB: 2 DATA frames
		{methodEcho, 100, ok(40_000), grpcOpts{}}, // response over 16 KB: 3 DATA frames
		{methodLookup, 30, fails(codes.NotFound, "no such key: «café-42» (100% gone)"), grpcOpts{}},
		{methodEcho, 0, ok(0), grpcOpts{}}, // empty messages: prefix only
		{methodLookup, 30, fails(codes.InvalidArgument, "size must be ≤ 4 MiB, got 5 MiB"), grpcOpts{}},
		{methodEcho, 30_000, ok(30_000), grpcOpts{gzip: true}}, // compressed flag both ways
		{methodEcho, 70_000, ok(70_000), grpcOpts{}},           // past the 64 KB initial windows
		{methodLookup, 30, fails(codes.PermissionDenied, `tenant "blue" may not read /secrets`), grpcOpts{}},
		// The server sleeps past the client's deadline: the client gives up
		// with DEADLINE_EXCEEDED and resets the stream (grpc-timeout sent).
		{methodEcho, 100, &callPlan{resp: []int{100}, sleep: 300 * time.Millisecond, want: codes.DeadlineExceeded},
			grpcOpts{timeout: 100 * time.Millisecond}},
		// The client cancels while the server sleeps: RST_STREAM CANCEL.
		{methodEcho, 100, &callPlan{resp: []int{100}, sleep: 300 * time.Millisecond, want: codes.Canceled},
			grpcOpts{cancelAfter: 50 * time.Millisecond}},
		{methodEcho, 500, ok(500), grpcOpts{}},
		{methodLookup, 30, fails(codes.ResourceExhausted, "quota exceeded: 5 calls/s"), grpcOpts{}},
		{methodLookup, 30, fails(codes.Internal, "line one\nline two\twith a tab"), grpcOpts{}},
		{methodEcho, 3000, ok(17_000), grpcOpts{md: []string{"x-tenant", "blue"}}},
		// A 16,379-byte message: with its prefix exactly one 16,384-byte DATA frame.
		{methodEcho, 16_376, ok(10), grpcOpts{}},
		{methodEcho, 64, ok(64), grpcOpts{timeout: 5 * time.Second}}, // a deadline that does not expire
		{methodLookup, 30, fails(codes.Unavailable, "backend down; retry later"), grpcOpts{}},
		{methodEcho, 50, ok(50), grpcOpts{}},
	}
	if err := g.unaries(ctx, cc, phase, calls); err != nil {
		return err
	}
	// Let the server's handlers that slept past the reset finish, so the
	// capture ends with a quiet connection.
	time.Sleep(300 * time.Millisecond)
	return nil
}

// checkGRPCUnary checks that the run shows the resets, split messages and
// error statuses grpc-unary-h2c is for.
func checkGRPCUnary(t *truth.Truth) error {
	e := t.Expect
	var errs []error
	if e.RSTStreamCodes["CANCEL"] < 2 {
		errs = append(errs, fmt.Errorf("%d RST_STREAM CANCEL, want at least 2", e.RSTStreamCodes["CANCEL"]))
	}
	if e.GRPCSplitMessages == nil || e.GRPCSplitMessages.C2S == 0 || e.GRPCSplitMessages.S2C == 0 {
		errs = append(errs, fmt.Errorf("split messages %+v, want some each way", e.GRPCSplitMessages))
	}
	if e.GRPCStatus["NOT_FOUND"] != 1 {
		errs = append(errs, fmt.Errorf("grpc-status %v, want one NOT_FOUND", e.GRPCStatus))
	}
	for _, c := range t.GRPCCalls {
		if c.TimeoutMS > 0 && c.GRPCTimeout == "" {
			errs = append(errs, fmt.Errorf("call %d has a deadline but no grpc-timeout", c.ID))
		}
	}
	return errors.Join(errs...)
}

// runGRPCStreaming is grpc-streaming-h2c: server-streaming,
// client-streaming and bidi calls from grpc-go on one connection, and two
// calls by hand over x/net/http2 on a second one.
func runGRPCStreaming(ctx context.Context, s *session) error {
	cc, err := s.dialGRPC("grpc-go")
	if err != nil {
		return err
	}
	g := s.grpc
	const phase = "grpc-go"
	small := make([]int, 300)
	for i := range small {
		small[i] = 1 + i*7%60
	}
	ping := []int{8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096}
	steps := []func() error{
		func() error { // 30 small messages
			return g.stream(ctx, cc, phase, methodWatch, truth.GRPCServerStream, []int{16}, &callPlan{resp: repeat(30, 200)}, grpcOpts{})
		},
		func() error { // messages over 64 KB: each spans several DATA frames and window updates
			return g.stream(ctx, cc, phase, methodWatch, truth.GRPCServerStream, []int{16}, &callPlan{resp: repeat(3, 100_000)}, grpcOpts{})
		},
		func() error {
			return g.stream(ctx, cc, phase, methodCollect, truth.GRPCClientStream, repeat(50, 1000), ok(8), grpcOpts{gzip: true})
		},
		func() error { // ping-pong
			return g.stream(ctx, cc, phase, methodChat, truth.GRPCBidi, ping, &callPlan{echo: true}, grpcOpts{})
		},
		func() error { // large messages each way
			return g.stream(ctx, cc, phase, methodChat, truth.GRPCBidi, []int{80_000, 80_000}, &callPlan{echo: true}, grpcOpts{})
		},
		func() error { // 200 tiny messages as fast as the server can send them
			return g.stream(ctx, cc, phase, methodWatch, truth.GRPCServerStream, []int{16}, &callPlan{resp: repeat(200, 20)}, grpcOpts{})
		},
		func() error { // status in trailers after messages
			return g.stream(ctx, cc, phase, methodWatch, truth.GRPCServerStream, []int{16},
				&callPlan{resp: repeat(3, 50), code: codes.NotFound, msg: "stream ended: topic «news» gone", want: codes.NotFound}, grpcOpts{})
		},
	}
	for _, st := range steps {
		if err := st(); err != nil {
			return err
		}
	}
	t2, err := s.h2Transport("x/net/http2", nil)
	if err != nil {
		return err
	}
	const hand = "x/net/http2"
	// 300 messages (11,250 bytes) read 1,009 bytes at a time: 12 DATA
	// frames, each holding several messages, 3 of them ending inside a
	// message's 5-byte prefix.
	if err := g.handCall(ctx, t2, hand, methodCollect, truth.GRPCClientStream, small, 1009, ok(8)); err != nil {
		return err
	}
	return g.handCall(ctx, t2, hand, methodWatch, truth.GRPCServerStream, []int{16}, 1<<20, &callPlan{resp: repeat(40, 20)})
}

// checkGRPCStreaming checks that several messages shared a DATA frame, as
// the server's tee counted them, and that some messages exceeded 64 KB.
func checkGRPCStreaming(t *truth.Truth) error {
	var errs []error
	if m := t.Expect.GRPCMultiMessageFrames; m == nil || m.C2S < 10 {
		errs = append(errs, fmt.Errorf("too few DATA frames from the client hold two messages or more (%+v)", m))
	}
	big := 0
	for _, c := range t.GRPCCalls {
		for _, n := range append(c.C2S.Sizes, c.S2C.Sizes...) {
			if n > 64<<10 {
				big++
			}
		}
	}
	if big == 0 {
		errs = append(errs, errors.New("no message over 64 KB"))
	}
	return errors.Join(errs...)
}
