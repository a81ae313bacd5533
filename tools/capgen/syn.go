package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/h2scope/h2scope/tools/capgen/truth"
)

// dialAttempt connects to the lab's server from a socket it binds itself
// before connect, so that the client's port is known even when connect
// fails, and reads the socket's TCP_INFO right after connect returned or
// failed (a duplicate of the descriptor keeps a failed socket open that
// long): tcpi_total_retrans counts the SYNs the kernel sent again. It
// records the connection, with Dial set when connect failed, and returns
// the connection when it succeeded.
func (l *lab) dialAttempt(ctx context.Context, phase string, timeout time.Duration) (*watchedConn, error) {
	var local string
	dup := -1
	d := &net.Dialer{
		Timeout: timeout,
		Control: func(network, address string, rc syscall.RawConn) error {
			var serr error
			if err := rc.Control(func(fd uintptr) {
				if serr = tuneSocket(int(fd), l.mss); serr != nil {
					return
				}
				if serr = unix.Bind(int(fd), &unix.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}); serr != nil {
					return
				}
				sa, err := unix.Getsockname(int(fd))
				if err != nil {
					serr = err
					return
				}
				local = fmt.Sprintf("127.0.0.1:%d", sa.(*unix.SockaddrInet4).Port)
				dup, serr = unix.Dup(int(fd))
			}); err != nil {
				return err
			}
			return serr
		},
	}
	c, err := d.DialContext(ctx, "tcp4", l.server)
	retrans := 0
	if dup >= 0 {
		if info, ierr := unix.GetsockoptTCPInfo(dup, unix.IPPROTO_TCP, unix.TCP_INFO); ierr == nil {
			retrans = int(info.Total_retrans)
		}
		unix.Close(dup)
	}
	if local == "" {
		return nil, fmt.Errorf("dial %s: %w (no socket)", l.server, err)
	}
	var dial string
	switch {
	case err == nil:
	case errors.Is(err, syscall.ECONNREFUSED):
		dial = truth.DialRefused
	case isTimeout(err):
		dial = truth.DialTimeout
	default:
		return nil, err
	}
	l.mu.Lock()
	rec := l.attach(local, 0)
	rec.phase, rec.dial, rec.synRetrans = phase, dial, retrans
	if dial != "" {
		rec.clientClosed = true
	}
	l.mu.Unlock()
	if err != nil {
		return nil, err
	}
	return &watchedConn{TCPConn: c.(*net.TCPConn), lab: l, rec: rec, side: 0}, nil
}

// isTimeout reports whether err is a dial timeout.
func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// rawGet sends GET path with Connection: close on c, reads the response
// and records it.
func (s *session) rawGet(c *watchedConn, phase, path string) error {
	r := truth.Request{Phase: phase, Method: http.MethodGet, Path: path, Conn: s.gotConn(c), ConnClient: c.LocalAddr().String()}
	_, err := fmt.Fprintf(c, "GET %s HTTP/1.1\r\nHost: %s\r\nUser-Agent: capgen-raw\r\nConnection: close\r\n\r\n", path, s.server)
	var resp *http.Response
	if err == nil {
		resp, err = http.ReadResponse(bufio.NewReader(c), nil)
	}
	err = readResponse(&r, resp, err, nil)
	s.addRequest(r, "")
	c.Close()
	return err
}

// gatedListener accepts nothing until gate is closed: connections wait
// in the kernel's accept queue, and once it is full the kernel drops new
// SYNs.
type gatedListener struct {
	net.Listener
	gate chan struct{}
}

func (g gatedListener) Accept() (net.Conn, error) {
	<-g.gate
	return g.Listener.Accept()
}

// synGate is the gate of the syn-unanswered server (scenarios run one
// at a time).
var synGate chan struct{}

// serveGated serves HTTP/1.1 once synGate is closed.
func serveGated(s *session, ln net.Listener) func() error {
	synGate = make(chan struct{})
	s.setting("listen backlog", 1)
	return serveHTTP1(s, gatedListener{Listener: ln, gate: synGate})
}

// runSYNUnanswered is syn-unanswered: see its description.
func runSYNUnanswered(ctx context.Context, s *session) error {
	gate := synGate
	defer func() {
		select {
		case <-gate:
		default:
			close(gate)
		}
	}()
	var queued []*watchedConn
	for range 2 {
		c, err := s.dialAttempt(ctx, "queued", 5*time.Second)
		if err != nil {
			return err
		}
		queued = append(queued, c)
	}
	time.Sleep(20 * time.Millisecond)
	var wg sync.WaitGroup
	var late *watchedConn
	var lateErr, gaveUpErr error
	wg.Go(func() { late, lateErr = s.dialAttempt(ctx, "dropped", 10*time.Second) })
	time.Sleep(10 * time.Millisecond)
	wg.Go(func() {
		_, gaveUpErr = s.dialAttempt(ctx, "gave-up", 2*time.Second)
	})
	time.Sleep(2500 * time.Millisecond)
	close(gate) // the server starts accepting: the queue drains
	wg.Wait()
	if lateErr != nil {
		return fmt.Errorf("the retried connection: %w", lateErr)
	}
	if !isTimeout(gaveUpErr) {
		return fmt.Errorf("the connection given up: %v, want a timeout", gaveUpErr)
	}
	for i, c := range append(queued, late) {
		if err := s.rawGet(c, c.rec.phase, fmt.Sprintf("/bytes/%d", 300*(i+1))); err != nil {
			return err
		}
	}
	return nil
}

// checkSYNUnanswered checks the SYN retransmissions the client saw.
func checkSYNUnanswered(t *truth.Truth) error {
	var retried, gaveUp int
	for _, c := range t.Connections {
		if c.SYNRetransmits > 0 && c.Dial == "" {
			retried++
		}
		if c.Dial == truth.DialTimeout && c.SYNRetransmits > 0 {
			gaveUp++
		}
	}
	if retried == 0 || gaveUp == 0 {
		return fmt.Errorf("%d connections established after SYN retransmissions, %d given up after some: want one of each", retried, gaveUp)
	}
	return nil
}

// restartable is the syn-refused server: an http.Server that can stop
// listening and listen again on the same address.
type restartable struct {
	s      *session
	srv    *http.Server
	mu     sync.Mutex
	ln     net.Listener
	served chan error
}

var synRestart *restartable

func serveRestartable(s *session, ln net.Listener) func() error {
	r := &restartable{s: s, srv: &http.Server{Handler: newHandler(), ConnState: s.connState, ReadHeaderTimeout: 10 * time.Second}}
	synRestart = r
	r.start(ln)
	return func() error {
		r.srv.Close()
		if err := <-r.served; !errors.Is(err, http.ErrServerClosed) && !errors.Is(err, net.ErrClosed) {
			return err
		}
		return nil
	}
}

func (r *restartable) start(ln net.Listener) {
	r.mu.Lock()
	r.ln, r.served = ln, make(chan error, 1)
	served := r.served
	r.mu.Unlock()
	go func() { served <- r.srv.Serve(ln) }()
}

// down closes the listening socket: the kernel answers SYNs with RST.
func (r *restartable) down() error {
	r.mu.Lock()
	ln, served := r.ln, r.served
	r.mu.Unlock()
	ln.Close()
	if err := <-served; !errors.Is(err, net.ErrClosed) {
		return fmt.Errorf("server stopped with %v", err)
	}
	return nil
}

// up listens again on the same address, with the lab's socket options.
func (r *restartable) up() error {
	lc := net.ListenConfig{Control: func(network, address string, rc syscall.RawConn) error {
		var serr error
		if err := rc.Control(func(fd uintptr) { serr = tuneSocket(int(fd), r.s.mss) }); err != nil {
			return err
		}
		return serr
	}}
	ln, err := lc.Listen(context.Background(), "tcp4", r.s.server)
	if err != nil {
		return err
	}
	r.start(watchListener{Listener: ln, lab: r.s.lab})
	return nil
}

// runSYNRefused is syn-refused: see its description.
func runSYNRefused(ctx context.Context, s *session) error {
	r := synRestart
	get := func(phase string, n int) error {
		c, err := s.dialAttempt(ctx, phase, 5*time.Second)
		if err != nil {
			return err
		}
		return s.rawGet(c, phase, fmt.Sprintf("/bytes/%d", n))
	}
	for i := range 3 {
		if err := get("before", 200*(i+1)); err != nil {
			return err
		}
	}
	if err := r.down(); err != nil {
		return err
	}
	for range 4 {
		if _, err := s.dialAttempt(ctx, "down", 5*time.Second); !errors.Is(err, syscall.ECONNREFUSED) {
			return fmt.Errorf("dial while the server is down: %v, want connection refused", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if err := r.up(); err != nil {
		return err
	}
	for i := range 3 {
		if err := get("after", 300*(i+1)); err != nil {
			return err
		}
	}
	return nil
}

// checkSYNRefused checks the refused connects.
func checkSYNRefused(t *truth.Truth) error {
	n := 0
	for _, c := range t.Connections {
		if c.Dial == truth.DialRefused {
			n++
		}
	}
	if n == 0 {
		return errors.New("no connect was refused")
	}
	return nil
}
