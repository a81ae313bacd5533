package main

import (
	"context"
	"fmt"
	"time"

	"google.golang.org/grpc/codes"

	"github.com/h2scope/h2scope/tools/capgen/truth"
)

// Calls of grpc-cancel-storm: stormDeadline calls with a short deadline
// and stormCancel calls the client cancels, all at once, against a
// handler that sleeps stormSleep.
const (
	stormDeadline = 150
	stormCancel   = 50
	stormAfter    = 40 * time.Millisecond
	stormSleep    = 300 * time.Millisecond
)

// runGRPCCancelStorm is grpc-cancel-storm: see its description.
func runGRPCCancelStorm(ctx context.Context, s *session) error {
	cc, err := s.dialGRPC("storm")
	if err != nil {
		return err
	}
	g := s.grpc
	// One ordinary call first, so the connection is up when the burst
	// starts and every call of the burst goes out at once.
	if err := g.unary(ctx, cc, "warm-up", methodEcho, 10, ok(10), grpcOpts{}); err != nil {
		return err
	}
	err = concurrently(stormDeadline+stormCancel, func(i int) error {
		o := grpcOpts{timeout: stormAfter}
		want := codes.DeadlineExceeded
		if i%4 == 3 && i/4 < stormCancel {
			o = grpcOpts{cancelAfter: stormAfter}
			want = codes.Canceled
		}
		return g.unary(ctx, cc, "storm", methodEcho, 64, &callPlan{resp: []int{64}, sleep: stormSleep, want: want}, o)
	})
	// Let the handlers that slept past the resets return.
	time.Sleep(stormSleep + 200*time.Millisecond)
	return err
}

// checkGRPCCancelStorm checks that the client reset nearly every call of
// the burst with CANCEL.
func checkGRPCCancelStorm(t *truth.Truth) error {
	n := 0
	for _, h := range t.HTTP2 {
		for _, r := range h.Resets {
			if r.Dir == "c2s" && r.Code == "CANCEL" {
				n++
			}
		}
	}
	if want := stormDeadline + stormCancel; n < want*9/10 {
		return fmt.Errorf("the client sent %d RST_STREAM CANCEL, want at least %d", n, want*9/10)
	}
	return nil
}
