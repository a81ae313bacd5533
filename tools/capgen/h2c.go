package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"sync/atomic"
	"time"

	"golang.org/x/net/http2"

	"github.com/h2scope/h2scope/tools/capgen/truth"
)

// Flow-control windows of h2c-large-slow, small so that a slow reader
// stalls the sender often: the server receives with a 65,535-byte
// connection window (the least HTTP/2 allows) and 32 KB stream windows.
// x/net's Transport adds its connection setting to the initial 65,535, so
// the client receives with 131,070 bytes per connection and 80 KB per
// stream: one slow stream exhausts its stream window, two together the
// connection's.
const (
	h2cServerConnWindow   = 65535
	h2cServerStreamWindow = 32 << 10
	h2cClientConnWindow   = 65535 // on top of the initial 65,535
	h2cClientStreamWindow = 80 << 10
)

// serveH2C serves newHandler over HTTP/2 with prior knowledge (h2c):
// golang.org/x/net/http2's Server.ServeConn on every accepted connection,
// with small receive windows, counting requests and reporting ConnState
// as h2ConnServer does.
func serveH2C(s *session, ln net.Listener) func() error {
	h2s := &http2.Server{
		MaxUploadBufferPerConnection: h2cServerConnWindow,
		MaxUploadBufferPerStream:     h2cServerStreamWindow,
	}
	return acceptLoop(ln, s.h2ConnServer(h2s))
}

// h2ConnServer returns a function that serves newHandler with h2s on one
// connection: the connection's states go to the lab through a base
// http.Server's ConnState, and the handler counts each request on its
// connection.
func (s *session) h2ConnServer(h2s *http2.Server) func(net.Conn) {
	base := &http.Server{ConnState: s.connState}
	h := newHandler()
	handler := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.countServer(r.RemoteAddr)
		h.ServeHTTP(w, r)
	})
	return func(c net.Conn) {
		h2s.ServeConn(c, &http2.ServeConnOpts{BaseConfig: base, Handler: handler})
	}
}

// slowRead makes a client read a response body chunk bytes at a time,
// pausing between reads.
type slowRead struct {
	chunk int
	pause time.Duration
}

// discard reads body to its end, chunk bytes at a time with a pause
// between reads, and returns the number of bytes it read.
func (sr *slowRead) discard(body io.Reader) (int64, error) {
	buf := make([]byte, sr.chunk)
	var n int64
	for {
		k, err := io.ReadFull(body, buf)
		n += int64(k)
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			return n, nil
		}
		if err != nil {
			return n, err
		}
		time.Sleep(sr.pause)
	}
}

// reqSeq numbers the capgen-request headers.
var reqSeq atomic.Int64

// do2 makes one HTTP/2 request over t (HTTP/2 only, x/net/http2's or
// net/http's) with a body of reqBody bytes (none
// if 0), reads the whole response (slowly if slow is set) and records
// what the client saw. The request carries a capgen-request header that
// lets the server's tee find its stream.
func (s *session) do2(ctx context.Context, t http.RoundTripper, phase, method, path string, reqBody int, slow *slowRead) error {
	tag := strconv.FormatInt(reqSeq.Add(1), 10)
	r := truth.Request{Phase: phase, Method: method, Path: path, ReqBytes: int64(reqBody)}
	if slow != nil {
		r.SlowRead, r.ReadChunk, r.ReadPauseMS = true, slow.chunk, int(slow.pause.Milliseconds())
	}
	req, err := s.newRequest(ctx, &r, phase, method, path, reqBody)
	if err != nil {
		return err
	}
	req.Header.Set("Capgen-Request", tag)
	resp, err := t.RoundTrip(req)
	if err == nil {
		r.Proto = resp.Proto
	}
	err = readResponse(&r, resp, err, slow)
	s.addRequest(r, tag)
	if err != nil {
		return fmt.Errorf("%s %s: %w", method, path, err)
	}
	if r.Status != http.StatusOK {
		return fmt.Errorf("%s %s: status %d", method, path, r.Status)
	}
	return nil
}

// runSteps2 makes the requests one after the other over t, as do2 does.
func (s *session) runSteps2(ctx context.Context, t http.RoundTripper, phase string, ss []step) error {
	for _, st := range ss {
		if err := s.do2(ctx, t, phase, st.method, st.path, st.body, nil); err != nil {
			return err
		}
	}
	return nil
}

// runH2CLargeSlow is h2c-large-slow: see its description.
func runH2CLargeSlow(ctx context.Context, s *session) error {
	t, err := s.h2Transport("h2c", &http.HTTP2Config{
		MaxReceiveBufferPerConnection: h2cClientConnWindow,
		MaxReceiveBufferPerStream:     h2cClientStreamWindow,
	})
	if err != nil {
		return err
	}
	slow := &slowRead{chunk: 8 << 10, pause: 3 * time.Millisecond}
	// Small requests first: their header blocks fill the HPACK dynamic
	// tables that later requests refer to.
	if err := s.runSteps2(ctx, t, "warm-up", steps(getBytes(1000), getBytes(3000), upload(2000))); err != nil {
		return err
	}
	if err := s.do2(ctx, t, "upload", http.MethodPost, "/upload", 300_000, nil); err != nil {
		return err
	}
	if err := s.do2(ctx, t, "slow-download", http.MethodGet, "/bytes/1000000", 0, slow); err != nil {
		return err
	}
	// Two slow readers at once: together they exhaust the connection
	// window before either exhausts its stream window.
	return concurrently(2, func(int) error {
		return s.do2(ctx, t, "slow-concurrent", http.MethodGet, "/bytes/120000", 0, slow)
	})
}

// checkH2CLargeSlow checks that both the stream and the connection
// windows of the server's sending reached 0.
func checkH2CLargeSlow(t *truth.Truth) error {
	var stream, conn int
	for _, h := range t.HTTP2 {
		stream += h.Flow.S2C.StreamZero
		conn += h.Flow.S2C.ConnZero
	}
	if stream == 0 || conn == 0 {
		return fmt.Errorf("the server's stream windows reached 0 %d times, its connection window %d times: want both", stream, conn)
	}
	return nil
}
