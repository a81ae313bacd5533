package main

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/h2scope/h2scope/tools/capgen/truth"
)

// boundSocket is a TCP socket bound to 127.0.0.1 on a port the kernel
// chose, not yet listening: its port is known, so the capture can start
// before the server listens.
type boundSocket struct {
	fd   int
	port uint16
}

// sockBuf is the send and receive buffer size of the programs' sockets:
// large enough for the biggest body, so loopback's receive buffer
// autotuning never closes the window (zero-window and window-full
// segments would otherwise show in healthy captures).
const sockBuf = 1 << 20

// tuneSocket sets the buffers and, if mss > 0, TCP_MAXSEG on fd before it
// connects or listens (accepted sockets inherit both).
func tuneSocket(fd, mss int) error {
	for _, opt := range []struct{ level, name, v int }{
		{unix.SOL_SOCKET, unix.SO_RCVBUF, sockBuf},
		{unix.SOL_SOCKET, unix.SO_SNDBUF, sockBuf},
		{unix.IPPROTO_TCP, unix.TCP_MAXSEG, mss},
	} {
		if opt.v <= 0 {
			continue
		}
		if err := unix.SetsockoptInt(fd, opt.level, opt.name, opt.v); err != nil {
			return err
		}
	}
	return nil
}

// The server's port is drawn from [serverPortMin, serverPortMax), below
// Linux's ephemeral range (32768-60999) that the clients' ports come from,
// as a service's port usually is: a reader that must guess which end of a
// connection without handshake is the server, by the lower port, then
// guesses right.
const (
	serverPortMin = 20000
	serverPortMax = 30000
)

// bindLoopback creates a boundSocket, tuned by tuneSocket, on a free port
// in [serverPortMin, serverPortMax) (or any, if none of a few tries is
// free).
func bindLoopback(mss int) (*boundSocket, error) {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, unix.IPPROTO_TCP)
	if err != nil {
		return nil, fmt.Errorf("socket: %w", err)
	}
	err = unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_REUSEADDR, 1)
	if err == nil {
		err = tuneSocket(fd, mss)
	}
	if err == nil {
		err = errors.New("no port tried")
		for try := 0; try < 32 && err != nil; try++ {
			port := serverPortMin + rand.IntN(serverPortMax-serverPortMin)
			err = unix.Bind(fd, &unix.SockaddrInet4{Port: port, Addr: [4]byte{127, 0, 0, 1}})
		}
		if err != nil {
			err = unix.Bind(fd, &unix.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}})
		}
	}
	var sa unix.Sockaddr
	if err == nil {
		sa, err = unix.Getsockname(fd)
	}
	if err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("bind 127.0.0.1:0: %w", err)
	}
	return &boundSocket{fd: fd, port: uint16(sa.(*unix.SockaddrInet4).Port)}, nil
}

// listen starts listening and hands the socket to the net package.
func (s *boundSocket) listen(backlog int) (net.Listener, error) {
	if backlog <= 0 {
		backlog = 128
	}
	if err := unix.Listen(s.fd, backlog); err != nil {
		unix.Close(s.fd)
		return nil, fmt.Errorf("listen: %w", err)
	}
	f := os.NewFile(uintptr(s.fd), "capgen-listener")
	defer f.Close() // FileListener holds a duplicate
	return net.FileListener(f)
}

// side is "client" or "server".
type side string

const (
	clientSide side = "client"
	serverSide side = "server"
)

// connRecord is what both programs observe of one TCP connection. The
// client address alone does not name it: the kernel may give a new
// connection the port of one that just closed (port reuse).
type connRecord struct {
	id       int // 1-based, in the order the programs saw connections open
	client   string
	phase    string
	attached [2]bool // the client's (0) and the server's (1) conn point here
	requests int     // GotConn calls, or gRPC calls the client started on it
	sides    [2]sideRecord
	states   []string // server ConnState values

	serverRequests int      // HTTP/2 requests or gRPC calls the server saw (HTTP/2 labs)
	serverClosed   bool     // the server closed its socket
	clientClosed   bool     // the client's Close returned
	tee            *wireTee // the server's wire tee (HTTP/2 labs)

	// TLS labs: the handshake as both programs saw it, the first bytes the
	// client wrote (its ClientHello), and the plaintext bytes the server
	// read and wrote above TLS (what its tee saw).
	tls   *truth.TLS
	plain [2]int64

	// failed counts requests written on the connection that got no
	// answer (the client retried them elsewhere); rcvBuf is the client's
	// SO_RCVBUF when not sockBuf; dial and synRetrans are how a connect
	// ended and how many SYNs the client's kernel repeated.
	failed     int
	rcvBuf     int
	dial       string
	synRetrans int
}

// sideRecord is one side's view of its socket.
type sideRecord struct {
	read, written int64
	eof           bool      // Read returned io.EOF before this side shut down
	reset         bool      // Read or Write failed with ECONNRESET: the peer reset the connection
	shut          bool      // this side called CloseWrite or Close
	shutStart     time.Time // just before the first CloseWrite/Close
	shutEnd       time.Time // just after it returned
	busy          int       // Read and Write calls under way
	wire          []byte    // TLS labs: every byte written, in order
}

// closedBy tells which side shut its socket down first: a side that read
// EOF first did not; otherwise the first whose shutdown call completed
// before the other's began; "" if the calls overlap.
func (c *connRecord) closedBy() string {
	cl, sv := &c.sides[0], &c.sides[1]
	switch {
	case cl.eof && !sv.eof:
		return string(serverSide)
	case sv.eof && !cl.eof:
		return string(clientSide)
	case cl.shut && (!sv.shut || cl.shutEnd.Before(sv.shutStart)):
		return string(clientSide)
	case sv.shut && (!cl.shut || sv.shutEnd.Before(cl.shutStart)):
		return string(serverSide)
	}
	return ""
}

// resetBy is the side that reset the connection, as the other side's
// Read or Write reported it (ECONNRESET); "" if neither did.
func (c *connRecord) resetBy() string {
	switch {
	case c.sides[0].reset && !c.sides[1].reset:
		return string(serverSide)
	case c.sides[1].reset && !c.sides[0].reset:
		return string(clientSide)
	}
	return ""
}

// A lab holds the connections both programs saw in one scenario run.
type lab struct {
	server string // "127.0.0.1:PORT"
	mss    int
	// h2 makes the server tee every connection's bytes into an HTTP/2
	// parser (wireTee), count requests itself (countServer) and count a
	// connection closed when the server closes it, not by ConnState.
	h2 bool
	// tls says the programs speak TLS over the sockets: the server's tee,
	// if any, reads the plaintext (plainConn), not the socket, and the
	// bytes each side writes to its socket are kept (sideRecord.wire).
	tls bool
	// sockClose counts a connection closed when both programs have closed
	// their sockets, not by ConnState (servers without net/http).
	sockClose bool

	mu     sync.Mutex
	conns  []*connRecord            // in id order
	byAddr map[string][]*connRecord // client address -> its connections, in order
	idle   *sync.Cond               // signalled on every server ConnState change
}

func newLab(server string, mss int) *lab {
	l := &lab{server: server, mss: mss, byAddr: make(map[string][]*connRecord)}
	l.idle = sync.NewCond(&l.mu)
	return l
}

// attach returns the record that side's new connection from client
// belongs to: the latest one for client the other side has attached to
// and this side not yet (the peer saw the connection first), or a new one.
// l.mu must be held.
func (l *lab) attach(client string, side int) *connRecord {
	rs := l.byAddr[client]
	if n := len(rs); n > 0 && !rs[n-1].attached[side] {
		rs[n-1].attached[side] = true
		return rs[n-1]
	}
	c := &connRecord{id: len(l.conns) + 1, client: client}
	c.attached[side] = true
	l.conns = append(l.conns, c)
	l.byAddr[client] = append(rs, c)
	return c
}

// phaseKey is the context key of the scenario phase making a request.
type phaseKey struct{}

// withPhase labels the connections dialed for requests made with ctx.
func withPhase(ctx context.Context, phase string) context.Context {
	return context.WithValue(ctx, phaseKey{}, phase)
}

// dialer returns a DialContext for http.Transport that dials only l.server,
// tunes the socket (tuneSocket), and wraps the connection so that l sees its bytes and
// its shutdown. It labels the connection with the phase of the request
// that caused the dial (see withPhase), or with phase.
func (l *lab) dialer(phase string) func(ctx context.Context, network, addr string) (net.Conn, error) {
	d := &net.Dialer{
		LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1)},
		Control: func(network, address string, rc syscall.RawConn) error {
			var serr error
			if err := rc.Control(func(fd uintptr) {
				serr = tuneSocket(int(fd), l.mss)
			}); err != nil {
				return err
			}
			return serr
		},
	}
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		if addr != l.server {
			return nil, fmt.Errorf("capgen: refusing to dial %s: only %s", addr, l.server)
		}
		c, err := d.DialContext(ctx, "tcp4", addr)
		if err != nil {
			return nil, err
		}
		p, ok := ctx.Value(phaseKey{}).(string)
		if !ok {
			p = phase
		}
		l.mu.Lock()
		rec := l.attach(c.LocalAddr().String(), 0)
		rec.phase = p
		l.mu.Unlock()
		return &watchedConn{TCPConn: c.(*net.TCPConn), lab: l, rec: rec, side: 0}, nil
	}
}

// gotConn counts a request on c, a connection from l's dialer, and
// returns the connection's record id.
func (l *lab) gotConn(c net.Conn) int {
	w, ok := watched(c)
	if !ok {
		return 0
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	w.rec.requests++
	return w.rec.id
}

// byClient returns the latest connection attached from client address
// addr, or nil. l.mu must be held.
func (l *lab) byClient(addr string) *connRecord {
	rs := l.byAddr[addr]
	if len(rs) == 0 {
		return nil
	}
	return rs[len(rs)-1]
}

// countClient counts a call the client started on its connection from
// local address addr, and returns the connection's id (0 if unknown).
func (l *lab) countClient(addr string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	if c := l.byClient(addr); c != nil {
		c.requests++
		return c.id
	}
	return 0
}

// countServer counts a request or call the server saw on its connection
// from client address addr, and returns the connection's id.
func (l *lab) countServer(addr string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	if c := l.byClient(addr); c != nil {
		c.serverRequests++
		return c.id
	}
	return 0
}

// connState is the http.Server ConnState hook.
func (l *lab) connState(c net.Conn, st http.ConnState) {
	w, ok := watched(c)
	if !ok {
		return
	}
	l.mu.Lock()
	w.rec.states = append(w.rec.states, st.String())
	if tc, ok := c.(*tls.Conn); ok && st == http.StateActive && w.rec.tls != nil {
		w.rec.tls.ServerDidResume = tc.ConnectionState().DidResume
	}
	l.mu.Unlock()
	l.idle.Broadcast()
}

// waitClosed waits until the server has reported every connection closed,
// or timeout passes.
func (l *lab) waitClosed(timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	t := time.AfterFunc(timeout, l.idle.Broadcast)
	defer t.Stop()
	l.mu.Lock()
	defer l.mu.Unlock()
	for {
		open := 0
		for _, c := range l.conns {
			n := len(c.states)
			closed := n > 0 && c.states[n-1] == "closed"
			if l.h2 || l.sockClose {
				// Both sides closed, and no Read or Write still to count
				// its bytes: grpc-go writes a GOAWAY just before closing,
				// and may still be writing when its reader sees EOF and
				// closes the socket.
				closed = c.serverClosed && c.clientClosed && c.sides[0].busy == 0 && c.sides[1].busy == 0
			}
			if c.dial != "" {
				closed = true // never connected
			}
			if !closed {
				open++
			}
		}
		if open == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%d connections still open on the server after %v", open, timeout)
		}
		l.idle.Wait()
	}
}

// watchListener wraps accepted connections so that l sees the server side.
type watchListener struct {
	net.Listener
	lab *lab
}

// Accept waits for and returns the next connection, wrapped.
func (w watchListener) Accept() (net.Conn, error) {
	c, err := w.Listener.Accept()
	if err != nil {
		return nil, err
	}
	tc, ok := c.(*net.TCPConn)
	if !ok {
		c.Close()
		return nil, fmt.Errorf("capgen: accepted a %T", c)
	}
	w.lab.mu.Lock()
	rec := w.lab.attach(c.RemoteAddr().String(), 1)
	if w.lab.h2 {
		rec.tee = newWireTee()
	}
	w.lab.mu.Unlock()
	wc := &watchedConn{TCPConn: tc, lab: w.lab, rec: rec, side: 1, tee: rec.tee}
	if w.lab.tls {
		wc.tee = nil // the tee reads the plaintext: see plainConn
	}
	return wc, nil
}

// watched returns the watchedConn under c: c itself, or the connection
// under a *tls.Conn or another wrapper with a NetConn method.
func watched(c net.Conn) (*watchedConn, bool) {
	for range 4 {
		switch w := c.(type) {
		case *watchedConn:
			return w, true
		case interface{ NetConn() net.Conn }:
			c = w.NetConn()
		default:
			return nil, false
		}
	}
	return nil, false
}

// watchedConn counts the bytes one side reads and writes and records when
// it shuts the socket down. It keeps CloseWrite, which net/http's server
// uses to send its FIN before closing.
type watchedConn struct {
	*net.TCPConn
	lab  *lab
	rec  *connRecord
	side int      // 0 client, 1 server
	tee  *wireTee // the server side of an HTTP/2 lab's connection
}

func (c *watchedConn) view(f func(s *sideRecord)) {
	c.lab.mu.Lock()
	f(&c.rec.sides[c.side])
	c.lab.mu.Unlock()
}

// Read reads from the socket, counting bytes and end-of-file.
func (c *watchedConn) Read(b []byte) (int, error) {
	c.view(func(s *sideRecord) { s.busy++ })
	defer c.done()
	n, err := c.TCPConn.Read(b)
	if c.tee != nil {
		c.tee.read(b[:n])
	}
	c.view(func(s *sideRecord) {
		s.read += int64(n)
		if errors.Is(err, io.EOF) && !s.shut {
			s.eof = true
		}
		if errors.Is(err, syscall.ECONNRESET) {
			s.reset = true
		}
	})
	return n, err
}

// Write writes to the socket, counting bytes. The server's tee queues the
// bytes before they are written, so the tee always parses them before
// anything the peer sends in answer.
func (c *watchedConn) Write(b []byte) (int, error) {
	c.view(func(s *sideRecord) { s.busy++ })
	defer c.done()
	var chunk *teeChunk
	if c.tee != nil {
		chunk = c.tee.beginWrite(b)
	}
	n, err := c.TCPConn.Write(b)
	if chunk != nil {
		c.tee.endWrite(chunk, n)
	}
	c.view(func(s *sideRecord) {
		if errors.Is(err, syscall.ECONNRESET) {
			s.reset = true
		}
		s.written += int64(n)
		if c.lab.tls {
			s.wire = append(s.wire, b[:n]...)
		}
	})
	return n, err
}

// ReadFrom keeps io.Copy from bypassing Write through TCPConn.ReadFrom.
func (c *watchedConn) ReadFrom(r io.Reader) (int64, error) {
	return io.Copy(struct{ io.Writer }{c}, r)
}

// WriteTo keeps io.Copy from bypassing Read through TCPConn.WriteTo.
func (c *watchedConn) WriteTo(w io.Writer) (int64, error) {
	return io.Copy(w, struct{ io.Reader }{c})
}

// shutdown runs f, recording the first shutdown's time.
func (c *watchedConn) shutdown(f func() error) error {
	first := false
	c.view(func(s *sideRecord) {
		if !s.shut {
			s.shut, first = true, true
			s.shutStart = time.Now()
		}
	})
	err := f()
	if first {
		c.view(func(s *sideRecord) { s.shutEnd = time.Now() })
	}
	return err
}

// CloseWrite shuts down the writing side (sends FIN).
func (c *watchedConn) CloseWrite() error { return c.shutdown(c.TCPConn.CloseWrite) }

// done ends a Read or Write call, waking waitClosed.
func (c *watchedConn) done() {
	c.view(func(s *sideRecord) { s.busy-- })
	c.lab.idle.Broadcast()
}

// Close closes the socket. On the server side it also ends the tee; on
// either side it wakes waitClosed.
func (c *watchedConn) Close() error {
	err := c.shutdown(c.TCPConn.Close)
	if c.side == 1 && c.rec.tee != nil {
		c.rec.tee.close()
	}
	c.lab.mu.Lock()
	if c.side == 1 {
		c.rec.serverClosed = true
	} else {
		c.rec.clientClosed = true
	}
	c.lab.mu.Unlock()
	c.lab.idle.Broadcast()
	return err
}

// close releases a socket that never listened.
func (s *boundSocket) close() { unix.Close(s.fd) }
