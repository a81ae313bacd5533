package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptrace"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/h2scope/h2scope/tools/capgen/truth"
)

// http1-small-pool: workers share one transport keeping smallPoolIdle
// idle connections, each making smallPoolEach requests.
const (
	smallPoolIdle    = 1
	smallPoolWorkers = 16
	smallPoolEach    = 10
)

// runHTTP1SmallPool is http1-small-pool: see its description. The
// goroutines fan out in rounds, as a handler fanning out to a backend
// does: each round, all of them make one request at once and the round
// ends when all are answered.
func runHTTP1SmallPool(ctx context.Context, s *session) error {
	t := s.transport("pool", true)
	t.MaxIdleConnsPerHost = smallPoolIdle
	s.setting("http.Transport.MaxIdleConnsPerHost", smallPoolIdle)
	s.setting("goroutines", smallPoolWorkers)
	for round := range smallPoolEach {
		err := concurrently(smallPoolWorkers, func(w int) error {
			st := get("/slow/5")
			if (w+round)%2 == 0 {
				st = getBytes(200 + 10*w)
			}
			return s.do(ctx, client(t), fmt.Sprintf("round-%d", round+1), st.method, st.path, st.body)
		})
		if err != nil {
			return err
		}
	}
	s.closeIdle()
	return nil
}

// checkSmallPool checks that most connections carried one request.
func checkSmallPool(t *truth.Truth) error {
	one := 0
	for _, c := range t.Connections {
		if c.Requests <= 1 {
			one++
		}
	}
	if len(t.Connections) < 40 || one*2 < len(t.Connections) {
		return fmt.Errorf("%d connections, %d with one request: want at least 40, half of them with one", len(t.Connections), one)
	}
	return nil
}

// http1-idle-timeout: the server's idle timeout, and the offsets from
// the moment the server's idle timer fires at which the client sends the
// requests meant to race the server's close.
const idleTimeout = 600 * time.Millisecond

var raceOffsets = []time.Duration{
	0, 100 * time.Microsecond, 200 * time.Microsecond, 400 * time.Microsecond, -100 * time.Microsecond,
	300 * time.Microsecond, 600 * time.Microsecond, 50 * time.Microsecond, 150 * time.Microsecond,
	800 * time.Microsecond, 250 * time.Microsecond, 1 * time.Millisecond,
}

// serverIdleAt is when the idle-timeout server last reported a
// connection idle (UnixNano): its idle timer starts right after.
var serverIdleAt atomic.Int64

// serveIdleTimeout serves newHandler with HTTP/1.1 and a short
// http.Server.IdleTimeout.
func serveIdleTimeout(s *session, ln net.Listener) func() error {
	s.setting("http.Server.IdleTimeout", idleTimeout)
	srv := &http.Server{
		Handler: newHandler(),
		ConnState: func(c net.Conn, st http.ConnState) {
			if st == http.StateIdle {
				serverIdleAt.Store(time.Now().UnixNano())
			}
			s.connState(c, st)
		},
		IdleTimeout:       idleTimeout,
		ReadHeaderTimeout: 10 * time.Second,
	}
	return serveHTTP(srv, ln)
}

// doTraced makes a GET of path, recording every connection the transport
// tried (GotConn, WroteRequest): when it retried the request on a new
// connection, the earlier attempts go to FailedAttempts and their
// connections count a failed request instead of a request.
func (s *session) doTraced(ctx context.Context, c *http.Client, phase, path string, gap time.Duration) (retried bool, err error) {
	r := truth.Request{Phase: phase, Method: http.MethodGet, Path: path, IdleGapMS: roundMS(float64(gap.Microseconds()) / 1000)}
	var attempts []truth.Attempt
	trace := &httptrace.ClientTrace{
		GotConn: func(info httptrace.GotConnInfo) {
			attempts = append(attempts, truth.Attempt{
				Conn: s.gotConn(info.Conn), ConnClient: info.Conn.LocalAddr().String(), Reused: info.Reused,
				IdleMS: roundMS(float64(info.IdleTime.Microseconds()) / 1000),
			})
		},
		WroteRequest: func(info httptrace.WroteRequestInfo) {
			a := &attempts[len(attempts)-1]
			a.Wrote = info.Err == nil
			if info.Err != nil {
				a.WriteError = info.Err.Error()
			}
		},
	}
	req, err := http.NewRequestWithContext(httptrace.WithClientTrace(withPhase(ctx, phase), trace), http.MethodGet, "http://"+s.server+path, nil)
	if err != nil {
		return false, err
	}
	resp, err := c.Do(req)
	err = readResponse(&r, resp, err, nil)
	if n := len(attempts); n > 0 {
		last := attempts[n-1]
		r.Conn, r.ConnClient, r.Reused = last.Conn, last.ConnClient, last.Reused
		if n > 1 {
			r.FailedAttempts = attempts[:n-1]
			s.lab.mu.Lock()
			for _, a := range r.FailedAttempts {
				rec := s.lab.conns[a.Conn-1]
				rec.requests--
				rec.failed++
			}
			s.lab.mu.Unlock()
		}
	}
	s.addRequest(r, "")
	if err != nil {
		return false, fmt.Errorf("GET %s: %w", path, err)
	}
	return len(attempts) > 1, nil
}

// runHTTP1IdleTimeout is http1-idle-timeout: see its description.
func runHTTP1IdleTimeout(ctx context.Context, s *session) error {
	t := s.transport("idle", true)
	s.setting("http.Transport.IdleConnTimeout", t.IdleConnTimeout)
	c := client(t)
	var lastEnd time.Time
	req := func(phase, path string) (bool, error) {
		var gap time.Duration
		if !lastEnd.IsZero() {
			gap = time.Since(lastEnd)
		}
		prev := serverIdleAt.Load()
		retried, err := s.doTraced(ctx, c, phase, path, gap)
		lastEnd = time.Now()
		// The client may read the response before the server's ConnState
		// hook reports the connection idle: wait for it.
		for i := 0; i < 100 && serverIdleAt.Load() == prev; i++ {
			time.Sleep(time.Millisecond)
		}
		return retried, err
	}
	// Reuse within the idle timeout, then a gap past it: the server
	// closes the idle connection and the client, having read its FIN,
	// dials a new one.
	for _, st := range []struct {
		gap  time.Duration
		path string
	}{{0, "/bytes/1000"}, {200 * time.Millisecond, "/bytes/2000"}, {400 * time.Millisecond, "/bytes/500"},
		{900 * time.Millisecond, "/bytes/1500"}, {200 * time.Millisecond, "/bytes/300"}, {1200 * time.Millisecond, "/bytes/800"}} {
		time.Sleep(st.gap)
		if _, err := req("gap", st.path); err != nil {
			return err
		}
	}
	// Requests sent right when the server's idle timer fires: some are
	// written on a connection the server is closing, and net/http
	// retries them on a new one.
	races := 0
	for i := 0; i < len(raceOffsets) && races < 2; i++ {
		at := time.Unix(0, serverIdleAt.Load()).Add(idleTimeout + raceOffsets[i])
		time.Sleep(time.Until(at))
		retried, err := req("race", "/bytes/700")
		if err != nil {
			return err
		}
		if retried {
			races++
		}
	}
	if races == 0 {
		return errors.New("no request raced the server's idle close")
	}
	s.closeIdle()
	return nil
}

// checkIdleTimeout checks that the server closed idle connections and
// that some request raced a close.
func checkIdleTimeout(t *truth.Truth) error {
	server, retried := 0, 0
	for _, c := range t.Connections {
		if c.ClosedBy == "server" {
			server++
		}
	}
	for _, r := range t.Requests {
		if len(r.FailedAttempts) > 0 {
			retried++
		}
	}
	if server < 2 || retried == 0 {
		return fmt.Errorf("%d connections closed by the server, %d requests retried: want 2 and 1", server, retried)
	}
	// A request that reaches the server before its close makes the close
	// a RST alone (unread data); keep runs where every raced connection
	// shows the server's FIN, the request after it and the server's RST,
	// the shape a close crossing a request has on a real network.
	for _, c := range t.Connections {
		if c.ResetBy != "" {
			return fmt.Errorf("connection %d was reset by the %s without a FIN first", c.ID, c.ResetBy)
		}
	}
	return nil
}

// tcp-stopped-reader: the client's receive buffer, the response size and
// how long the client stops reading.
const (
	stoppedRcvBuf = 16384
	stoppedBody   = 100_000
	stoppedPause  = 1500 * time.Millisecond
)

// dialerRcvBuf is lab.dialer with the client's SO_RCVBUF set to rcvBuf
// (before connect, so the window scale follows it).
func (l *lab) dialerRcvBuf(phase string, rcvBuf int) func(ctx context.Context) (*watchedConn, error) {
	d := &net.Dialer{
		LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1)},
		Control: func(network, address string, rc syscall.RawConn) error {
			var serr error
			if err := rc.Control(func(fd uintptr) {
				if serr = tuneSocket(int(fd), l.mss); serr == nil {
					serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_RCVBUF, rcvBuf)
				}
			}); err != nil {
				return err
			}
			return serr
		},
	}
	return func(ctx context.Context) (*watchedConn, error) {
		c, err := d.DialContext(ctx, "tcp4", l.server)
		if err != nil {
			return nil, err
		}
		l.mu.Lock()
		rec := l.attach(c.LocalAddr().String(), 0)
		rec.phase, rec.rcvBuf = phase, rcvBuf
		l.mu.Unlock()
		return &watchedConn{TCPConn: c.(*net.TCPConn), lab: l, rec: rec, side: 0}, nil
	}
}

// runTCPStoppedReader is tcp-stopped-reader: see its description.
func runTCPStoppedReader(ctx context.Context, s *session) error {
	s.setting("client SO_RCVBUF", stoppedRcvBuf)
	c, err := s.dialerRcvBuf("stopped", stoppedRcvBuf)(ctx)
	if err != nil {
		return err
	}
	defer c.Close()
	r := truth.Request{Phase: "stopped", Method: http.MethodGet, Path: fmt.Sprintf("/bytes/%d", stoppedBody),
		Conn: s.gotConn(c), ConnClient: c.LocalAddr().String(), StoppedReadingMS: int(stoppedPause.Milliseconds())}
	if _, err := fmt.Fprintf(c, "GET %s HTTP/1.1\r\nHost: %s\r\nUser-Agent: capgen-raw\r\n\r\n", r.Path, s.server); err != nil {
		return err
	}
	time.Sleep(stoppedPause)
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	err = readResponse(&r, resp, err, nil)
	s.addRequest(r, "")
	if err == nil && r.RespBytes != stoppedBody {
		err = fmt.Errorf("read %d bytes of %d", r.RespBytes, stoppedBody)
	}
	return err
}

// h2-slow-reader: concurrent downloads read slowly by a client with
// small receive windows.
const (
	slowReaderStreams = 10
	slowReaderBody    = 20_000
	slowReaderConnBuf = 65535    // the least: the connection window is 131,070
	slowReaderStream  = 16 << 10 // SETTINGS_INITIAL_WINDOW_SIZE
)

// runH2SlowReader is h2-slow-reader: see its description.
func runH2SlowReader(ctx context.Context, s *session) error {
	t, err := s.h2Transport("h2c", &http.HTTP2Config{
		MaxReceiveBufferPerConnection: slowReaderConnBuf,
		MaxReceiveBufferPerStream:     slowReaderStream,
	})
	if err != nil {
		return err
	}
	s.setting("http.HTTP2Config.MaxReceiveBufferPerConnection", slowReaderConnBuf)
	s.setting("http.HTTP2Config.MaxReceiveBufferPerStream", slowReaderStream)
	if err := s.do2(ctx, t, "warm-up", http.MethodGet, "/bytes/100", 0, nil); err != nil {
		return err
	}
	slow := &slowRead{chunk: 4 << 10, pause: 150 * time.Millisecond}
	return concurrently(slowReaderStreams, func(int) error {
		return s.do2(ctx, t, "slow-concurrent", http.MethodGet, fmt.Sprintf("/bytes/%d", slowReaderBody), 0, slow)
	})
}

// checkH2SlowReader checks that the server's connection window reached 0
// while several streams waited.
func checkH2SlowReader(t *truth.Truth) error {
	var conn int
	var longest float64
	for _, h := range t.HTTP2 {
		conn += h.Flow.S2C.ConnZero
		longest = max(longest, h.Flow.S2C.LongestMS)
	}
	if conn == 0 || longest < 100 {
		return fmt.Errorf("the server's connection window reached 0 %d times, longest stall %.1f ms: want some, over 100 ms", conn, longest)
	}
	return nil
}
