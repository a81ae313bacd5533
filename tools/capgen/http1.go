package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptrace"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/h2scope/h2scope/tools/capgen/truth"
)

// newHandler returns the HTTP/1.1 test server's handler:
//
//	GET  /bytes/N      N bytes of body (see body), with Content-Length
//	GET  /slow/MS      a short body after MS milliseconds (at most 1000)
//	POST /upload       reads the body, answers "received N\n"
//	anything else      404
func newHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /bytes/{n}", func(w http.ResponseWriter, r *http.Request) {
		n, err := strconv.Atoi(r.PathValue("n"))
		if err != nil || n < 0 || n > 4<<20 {
			http.Error(w, "bad size", http.StatusBadRequest)
			return
		}
		w.Header().Set("Content-Type", "text/plain")
		w.Header().Set("Content-Length", strconv.Itoa(n))
		w.Write(body(n))
	})
	mux.HandleFunc("GET /slow/{ms}", func(w http.ResponseWriter, r *http.Request) {
		ms, err := strconv.Atoi(r.PathValue("ms"))
		if err != nil || ms < 0 || ms > 1000 {
			http.Error(w, "bad delay", http.StatusBadRequest)
			return
		}
		time.Sleep(time.Duration(ms) * time.Millisecond)
		w.Write(body(256))
	})
	mux.HandleFunc("POST /upload", func(w http.ResponseWriter, r *http.Request) {
		n, err := io.Copy(io.Discard, r.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		fmt.Fprintf(w, "received %d\n", n)
	})
	return mux
}

// body returns n bytes of text in 64-byte lines, each starting with its
// offset in the body, so a gap in a reassembled stream is easy to see.
func body(n int) []byte {
	var b bytes.Buffer
	b.Grow(n + 64)
	for off := 0; off < n; off += 64 {
		fmt.Fprintf(&b, "%010d %s\n", off, strings.Repeat("capgen-", 8)[:52])
	}
	return b.Bytes()[:n]
}

// A session is one run of a scenario: the lab's view of connections plus
// the requests the clients made.
type session struct {
	*lab
	mu       sync.Mutex
	requests []truth.Request
	reqTags  []string // per request, its capgen-request header ("" for HTTP/1)
	clients  []*http.Transport
	closers  []func() // close other clients' connections (HTTP/2, gRPC)
	grpc     *grpcLab
	tls      *tlsLab           // TLS scenarios only: then requests go to https URLs
	settings map[string]string // truth.Truth.Settings
}

// setting records a setting of the programs for the truth.
func (s *session) setting(name string, v any) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.settings == nil {
		s.settings = make(map[string]string)
	}
	s.settings[name] = fmt.Sprint(v)
}

// newSession starts a session in l.
func newSession(l *lab) *session {
	return &session{lab: l, grpc: newGRPCLab(l)}
}

// onClose registers f to close a client's connections at the end.
func (s *session) onClose(f func()) {
	s.mu.Lock()
	s.closers = append(s.closers, f)
	s.mu.Unlock()
}

// transport returns a new HTTP/1.1 client transport that dials only the
// lab's server. The session closes its idle connections at the end.
func (s *session) transport(phase string, keepAlive bool) *http.Transport {
	t := &http.Transport{
		DialContext:         s.dialer(phase),
		DisableKeepAlives:   !keepAlive,
		MaxIdleConnsPerHost: 8, // the default 2 would close connections mid-scenario
		IdleConnTimeout:     time.Minute,
		DisableCompression:  true,
	}
	s.mu.Lock()
	s.clients = append(s.clients, t)
	s.mu.Unlock()
	return t
}

// do makes one request with a body of reqBody bytes (none if 0), reads the
// whole response and records what the client saw.
func (s *session) do(ctx context.Context, c *http.Client, phase, method, path string, reqBody int) error {
	r := truth.Request{Phase: phase, Method: method, Path: path, ReqBytes: int64(reqBody)}
	req, err := s.newRequest(ctx, &r, phase, method, path, reqBody)
	if err != nil {
		return err
	}
	resp, err := c.Do(req)
	err = readResponse(&r, resp, err, nil)
	s.addRequest(r, "")
	if err != nil {
		return fmt.Errorf("%s %s: %w", method, path, err)
	}
	return nil
}

// readResponse records in r the outcome of a request: when err is nil,
// resp's status and the number of body bytes the client read, to the end
// (slowly if slow is set), before closing the body; otherwise, or when
// reading the body failed, the error, which it returns.
func readResponse(r *truth.Request, resp *http.Response, err error, slow *slowRead) error {
	if err == nil {
		r.Status = resp.StatusCode
		if slow == nil {
			r.RespBytes, err = io.Copy(io.Discard, resp.Body)
		} else {
			r.RespBytes, err = slow.discard(resp.Body)
		}
		resp.Body.Close()
	}
	if err != nil {
		r.Error = err.Error()
	}
	return err
}

// addRequest records a request the client made, tagged with its
// capgen-request header value.
func (s *session) addRequest(r truth.Request, tag string) {
	s.mu.Lock()
	s.requests = append(s.requests, r)
	s.reqTags = append(s.reqTags, tag)
	s.mu.Unlock()
}

// closeIdle closes every client's idle connections (sending FINs).
func (s *session) closeIdle() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, t := range s.clients {
		t.CloseIdleConnections()
	}
	for _, f := range s.closers {
		f()
	}
}

// step is one request of a scripted client.
type step struct {
	method string
	path   string
	body   int // request body bytes
}

func get(path string) step         { return step{method: http.MethodGet, path: path} }
func post(path string, n int) step { return step{method: http.MethodPost, path: path, body: n} }
func getBytes(n int) step          { return get("/bytes/" + strconv.Itoa(n)) }
func upload(n int) step            { return post("/upload", n) }
func steps(ss ...step) []step      { return ss }
func client(t *http.Transport) *http.Client {
	return &http.Client{Transport: t, Timeout: 20 * time.Second}
}

// runSteps makes the requests one after the other.
func (s *session) runSteps(ctx context.Context, c *http.Client, phase string, ss []step) error {
	for _, st := range ss {
		if err := s.do(ctx, c, phase, st.method, st.path, st.body); err != nil {
			return err
		}
	}
	return nil
}

// concurrently calls f(0) to f(n-1), each in its own goroutine, waits for
// them all and returns their errors joined.
func concurrently(n int, f func(i int) error) error {
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i := range n {
		wg.Go(func() { errs[i] = f(i) })
	}
	wg.Wait()
	return errors.Join(errs...)
}

// runKeepAlive is http1-keepalive: 20 sequential requests on one
// connection, then 3 concurrent clients sharing the same transport whose
// first requests overlap (a slow handler), so 3 connections in all; the
// client closes its idle connections at the end.
func runKeepAlive(ctx context.Context, s *session) error {
	t := s.transport("sequential", true)
	seq := steps(
		getBytes(512), getBytes(2048), upload(1000), getBytes(150_000),
		getBytes(10), upload(120_000), get("/missing"), getBytes(4096),
		upload(300), getBytes(200_000), getBytes(0), getBytes(1500),
		upload(5000), getBytes(64), get("/slow/5"), getBytes(8000),
		upload(20), getBytes(3000), get("/also/missing"), getBytes(700),
	)
	if err := s.runSteps(ctx, client(t), "sequential", seq); err != nil {
		return err
	}
	// The concurrent clients share t, as programs share
	// http.DefaultTransport: one reuses the idle connection, two dial.
	err := concurrently(3, func(i int) error {
		ss := steps(get("/slow/100"), getBytes(1000*(i+1)), upload(2000+i), getBytes(30_000))
		return s.runSteps(ctx, client(t), "concurrent", ss)
	})
	if err != nil {
		return err
	}
	s.closeIdle()
	return nil
}

// runNoKeepAlive is http1-nokeepalive: 15 sequential requests with
// DisableKeepAlives, so one connection per request.
func runNoKeepAlive(ctx context.Context, s *session) error {
	t := s.transport("sequential", false)
	ss := steps(
		getBytes(100), getBytes(2000), upload(500), getBytes(10), get("/missing"),
		getBytes(4096), upload(3000), getBytes(0), getBytes(1200), upload(64),
		getBytes(800), get("/slow/5"), getBytes(2500), upload(100), getBytes(50),
	)
	return s.runSteps(ctx, client(t), "sequential", ss)
}

// runTransfer is http1-transfer, the base of tcp-impaired: a few larger
// bodies each way on one keep-alive connection.
func runTransfer(ctx context.Context, s *session) error {
	t := s.transport("sequential", true)
	ss := steps(getBytes(1000), getBytes(64_000), upload(80_000), getBytes(120_000), upload(2000), getBytes(30_000))
	if err := s.runSteps(ctx, client(t), "sequential", ss); err != nil {
		return err
	}
	s.closeIdle()
	return nil
}

// newRequest builds a request to the session's server with a body of
// reqBody bytes (none if 0), traced so that r records the connection the
// client used.
func (s *session) newRequest(ctx context.Context, r *truth.Request, phase, method, path string, reqBody int) (*http.Request, error) {
	trace := &httptrace.ClientTrace{
		GotConn: func(info httptrace.GotConnInfo) {
			r.Conn = s.gotConn(info.Conn)
			r.ConnClient = info.Conn.LocalAddr().String()
			r.Reused = info.Reused
		},
	}
	var rb io.Reader
	if reqBody > 0 {
		rb = bytes.NewReader(body(reqBody))
	}
	scheme := "http://"
	if s.tls != nil {
		scheme = "https://"
	}
	return http.NewRequestWithContext(httptrace.WithClientTrace(withPhase(ctx, phase), trace), method, scheme+s.server+path, rb)
}
