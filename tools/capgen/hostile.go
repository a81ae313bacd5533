package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"

	"github.com/h2scope/h2scope/tools/capgen/truth"
)

// hostile-strings: values that must reach every report inert (markup,
// script, terminal escapes) or not at all (secrets, redacted by default).
// The SECRET-* values are what tests look for in redacted output.
const (
	hostileSearch   = "/search?q=<script>alert(1)</script>&access_token=SECRET-TOKEN-1"
	hostileImg      = `/x"><img src=x onerror=alert(2)>`
	hostileUA       = "</script><script>alert(3)</script>"
	hostileAuth     = "Bearer SECRET-BEARER-2"
	hostileCookie   = "session=SECRET-COOKIE-3"
	hostileAPIKey   = "SECRET-KEY-4"
	hostileSetCook  = "id=SECRET-SETCOOKIE-5"
	hostileLocation = "https://user:SECRET-PW-6@example.test/?sig=SECRET-SIG-7"
	hostileGoAway   = "<script>alert(4)</script>"
	hostileHost     = "<b>x</b>"
	// hostileTerm clears the screen and sets the terminal title if a
	// report prints it raw.
	hostileTerm = "\x1b[2J\x1b]0;pwned\x07"
	// hostileEsc is an h2c request path with the same escapes (HTTP/1.1
	// has no way to carry them: net/http's server refuses them).
	hostileEsc  = "/esc" + hostileTerm
	hostileBody = "<script>alert(5)</script>\n"
)

// hostileBin is the value of the trace-bin metadata (gRPC binary
// metadata: base64 on the wire, unpadded as grpc-go sends it).
var hostileBin = []byte("\x00\x1b\xffSECRET-BIN-8")

// serveHostile serves both halves of hostile-strings on ln: a connection
// starting with the HTTP/2 client preface goes to a hand-written HTTP/2
// server (x/net/http2's Framer; x/net's Server cannot set GOAWAY debug
// data and rejects some of the values), any other to net/http's server.
// The HTTP/2 server reports ConnState as net/http would (new, active per
// request, closed), so the lab counts its requests and its close.
func serveHostile(s *session, ln net.Listener) func() error {
	h1 := make(chan net.Conn)
	srv := &http.Server{
		Handler:           http.HandlerFunc(hostileHandler),
		ConnState:         s.connState,
		IdleTimeout:       time.Minute,
		ReadHeaderTimeout: 10 * time.Second,
	}
	cl := &chanListener{conns: h1, done: make(chan struct{}), addr: ln.Addr()}
	stopHTTP1 := serveHTTP(srv, cl)
	stopAccept := acceptLoop(ln, func(c net.Conn) {
		br := bufio.NewReader(c)
		head, err := br.Peek(len(http2.ClientPreface))
		pc := &peekedConn{Conn: c, r: br}
		if err == nil && string(head) == http2.ClientPreface {
			serveHostileH2(s, pc)
			return
		}
		select {
		case h1 <- pc:
		case <-cl.done:
			c.Close()
		}
	})
	return func() error {
		err := stopAccept()
		if serr := stopHTTP1(); serr != nil {
			err = errors.Join(err, serr)
		}
		return err
	}
}

// hostileHandler answers /x... with a redirect to a URL with user
// information and a signature, anything else with a cookie and a body.
func hostileHandler(w http.ResponseWriter, r *http.Request) {
	if strings.HasPrefix(r.URL.Path, "/x") {
		w.Header().Set("Location", hostileLocation)
		w.WriteHeader(http.StatusFound)
		return
	}
	w.Header().Set("Set-Cookie", hostileSetCook)
	w.Header().Set("Content-Type", "text/html")
	io.WriteString(w, hostileBody)
}

// chanListener hands net/http's server the connections sent on conns.
type chanListener struct {
	conns chan net.Conn
	done  chan struct{}
	once  sync.Once
	addr  net.Addr
}

func (l *chanListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.conns:
		return c, nil
	case <-l.done:
		return nil, net.ErrClosed
	}
}

func (l *chanListener) Close() error {
	l.once.Do(func() { close(l.done) })
	return nil
}

func (l *chanListener) Addr() net.Addr { return l.addr }

// peekedConn reads through the reader that peeked at its first bytes.
// NetConn lets the lab find the watchedConn under it.
type peekedConn struct {
	net.Conn
	r *bufio.Reader
}

func (c *peekedConn) Read(b []byte) (int, error) { return c.r.Read(b) }
func (c *peekedConn) NetConn() net.Conn          { return c.Conn }

// CloseWrite keeps net/http's FIN-before-close.
func (c *peekedConn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return nil
}

// hostileBlock HPACK-encodes fields with enc into a fresh slice.
func hostileBlock(enc *hpack.Encoder, buf *bytes.Buffer, fields [][2]string) ([]byte, error) {
	buf.Reset()
	for _, f := range fields {
		if err := enc.WriteField(hpack.HeaderField{Name: f[0], Value: f[1]}); err != nil {
			return nil, err
		}
	}
	return bytes.Clone(buf.Bytes()), nil
}

// serveHostileH2 is the hand-written HTTP/2 server of hostile-strings: it
// answers each request (HEADERS with END_STREAM) on /x... with a 302 and
// a Location, others with a Set-Cookie, a header value with terminal
// escapes and a small body; once all 3 are answered and its SETTINGS
// acknowledged it sends GOAWAY NO_ERROR with debug data, then reads until
// the client closes.
func serveHostileH2(s *session, c net.Conn) {
	defer func() {
		c.Close()
		s.connState(c, http.StateClosed)
	}()
	s.connState(c, http.StateNew)
	if _, err := io.ReadFull(c, make([]byte, len(http2.ClientPreface))); err != nil {
		return
	}
	// Header blocks are decoded with hpack alone: x/net's MetaHeadersFrame
	// would reject the values with control characters.
	fr := http2.NewFramer(c, c)
	dec := hpack.NewDecoder(4096, nil)
	var hbuf bytes.Buffer
	enc := hpack.NewEncoder(&hbuf)
	if err := fr.WriteSettings(http2.Setting{ID: http2.SettingMaxConcurrentStreams, Val: 100}); err != nil {
		return
	}
	answered, acked, sentGoAway := 0, false, false
	var last uint32
	for {
		f, err := fr.ReadFrame()
		if err != nil {
			return
		}
		switch f := f.(type) {
		case *http2.SettingsFrame:
			if f.IsAck() {
				acked = true
			} else if fr.WriteSettingsAck() != nil {
				return
			}
		case *http2.PingFrame:
			if !f.IsAck() && fr.WritePing(true, f.Data) != nil {
				return
			}
		case *http2.HeadersFrame:
			hs, err := dec.DecodeFull(f.HeaderBlockFragment())
			if err != nil || !f.HeadersEnded() {
				return
			}
			s.connState(c, http.StateActive)
			path := ""
			for _, h := range hs {
				if h.Name == ":path" {
					path = h.Value
				}
			}
			last = f.StreamID
			if strings.HasPrefix(path, "/x") {
				b, err := hostileBlock(enc, &hbuf, [][2]string{{":status", "302"}, {"location", hostileLocation}})
				if err != nil || fr.WriteHeaders(http2.HeadersFrameParam{StreamID: f.StreamID, BlockFragment: b, EndStream: true, EndHeaders: true}) != nil {
					return
				}
			} else {
				b, err := hostileBlock(enc, &hbuf, [][2]string{
					{":status", "200"}, {"content-type", "text/html"}, {"set-cookie", hostileSetCook}, {"x-term", hostileTerm},
				})
				if err != nil || fr.WriteHeaders(http2.HeadersFrameParam{StreamID: f.StreamID, BlockFragment: b, EndHeaders: true}) != nil {
					return
				}
				if fr.WriteData(f.StreamID, true, []byte(hostileBody)) != nil {
					return
				}
			}
			answered++
		}
		if answered == 3 && acked && !sentGoAway {
			sentGoAway = true
			if fr.WriteGoAway(last, http2.ErrCodeNo, []byte(hostileGoAway)) != nil {
				return
			}
		}
	}
}

// runHostile is hostile-strings: see its description.
func runHostile(ctx context.Context, s *session) error {
	if err := runHostileHTTP1(ctx, s); err != nil {
		return err
	}
	return runHostileH2(ctx, s)
}

// runHostileHTTP1 writes two requests by hand on one keep-alive
// connection (exact bytes: net/http's client would refuse or rewrite
// some), reads both responses, then closes.
func runHostileHTTP1(ctx context.Context, s *session) error {
	c, err := s.dialer("http1")(ctx, "tcp", s.server)
	if err != nil {
		return err
	}
	defer c.Close()
	br := bufio.NewReader(c)
	reqs := []struct{ target, head string }{
		{hostileSearch, "Authorization: " + hostileAuth + "\r\nCookie: " + hostileCookie + "\r\nX-Api-Key: " + hostileAPIKey + "\r\n"},
		// No spaces in an HTTP/1 request target: %20 here, spaces on h2c.
		{strings.ReplaceAll(hostileImg, " ", "%20"), ""},
	}
	for i, q := range reqs {
		r := truth.Request{Phase: "http1", Method: http.MethodGet, Path: q.target, Conn: s.gotConn(c),
			ConnClient: c.LocalAddr().String(), Reused: i > 0}
		if _, err := fmt.Fprintf(c, "GET %s HTTP/1.1\r\nHost: %s\r\nUser-Agent: %s\r\n%s\r\n", q.target, s.server, hostileUA, q.head); err != nil {
			return err
		}
		resp, err := http.ReadResponse(br, nil)
		err = readResponse(&r, resp, err, nil)
		s.addRequest(r, "")
		if err != nil {
			return fmt.Errorf("GET %s: %w", q.target, err)
		}
	}
	return nil
}

// runHostileH2 is the h2c half: a hand-written client (x/net/http2's
// Framer) sends its preface and SETTINGS, then three requests at once
// with :authority <b>x</b>, the hostile paths (one with terminal escapes)
// and headers and trace-bin metadata, reads the answers and the server's GOAWAY, and closes.
func runHostileH2(ctx context.Context, s *session) error {
	c, err := s.dialer("h2c")(ctx, "tcp", s.server)
	if err != nil {
		return err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(c, http2.ClientPreface); err != nil {
		return err
	}
	fr := http2.NewFramer(c, c)
	if err := fr.WriteSettings(); err != nil {
		return err
	}
	var hbuf bytes.Buffer
	enc := hpack.NewEncoder(&hbuf)
	dec := hpack.NewDecoder(4096, nil)
	bin := base64.RawStdEncoding.EncodeToString(hostileBin)
	paths := []string{hostileSearch, hostileImg, hostileEsc}
	reqs := make(map[uint32]*truth.Request)
	for i, p := range paths {
		id := uint32(2*i + 1)
		fields := [][2]string{
			{":method", "GET"}, {":scheme", "http"}, {":authority", hostileHost}, {":path", p},
			{"user-agent", hostileUA},
		}
		if i == 0 {
			fields = append(fields, [2]string{"authorization", hostileAuth}, [2]string{"cookie", hostileCookie},
				[2]string{"x-api-key", hostileAPIKey})
		}
		fields = append(fields, [2]string{"trace-bin", bin})
		b, err := hostileBlock(enc, &hbuf, fields)
		if err != nil {
			return err
		}
		reqs[id] = &truth.Request{Phase: "h2c", Method: http.MethodGet, Path: p, Proto: "HTTP/2.0", Stream: id,
			Conn: s.gotConn(c), ConnClient: c.LocalAddr().String(), Reused: i > 0}
		if err := fr.WriteHeaders(http2.HeadersFrameParam{StreamID: id, BlockFragment: b, EndStream: true, EndHeaders: true}); err != nil {
			return err
		}
	}
	done, goAway := 0, false
	for done < len(paths) || !goAway {
		f, err := fr.ReadFrame()
		if err != nil {
			return fmt.Errorf("h2c: %d of %d answers, GOAWAY %v: %w", done, len(paths), goAway, err)
		}
		switch f := f.(type) {
		case *http2.SettingsFrame:
			if !f.IsAck() {
				if err := fr.WriteSettingsAck(); err != nil {
					return err
				}
			}
		case *http2.HeadersFrame:
			r := reqs[f.StreamID]
			hs, err := dec.DecodeFull(f.HeaderBlockFragment())
			if err != nil || r == nil {
				return fmt.Errorf("h2c: HEADERS on stream %d: %v", f.StreamID, err)
			}
			for _, h := range hs {
				if h.Name == ":status" {
					fmt.Sscan(h.Value, &r.Status)
				}
			}
			if f.StreamEnded() {
				done++
			}
		case *http2.DataFrame:
			r := reqs[f.StreamID]
			if r == nil {
				return fmt.Errorf("h2c: DATA on stream %d", f.StreamID)
			}
			r.RespBytes += int64(len(f.Data()))
			if f.StreamEnded() {
				done++
			}
		case *http2.GoAwayFrame:
			if f.ErrCode != http2.ErrCodeNo || string(f.DebugData()) != hostileGoAway {
				return fmt.Errorf("h2c: GOAWAY %v %q", f.ErrCode, f.DebugData())
			}
			goAway = true
		}
	}
	for id := uint32(1); id <= uint32(2*len(paths)-1); id += 2 {
		s.addRequest(*reqs[id], "")
	}
	return nil
}

// checkHostile checks that every request got its answer.
func checkHostile(t *truth.Truth) error {
	want := map[string]int{hostileSearch: 200, hostileImg: 302, strings.ReplaceAll(hostileImg, " ", "%20"): 302, hostileEsc: 200}
	if len(t.Requests) != 5 || len(t.Connections) != 2 {
		return fmt.Errorf("%d requests on %d connections, want 5 on 2", len(t.Requests), len(t.Connections))
	}
	for _, r := range t.Requests {
		if r.Status != want[r.Path] {
			return fmt.Errorf("GET %s: status %d, want %d", r.Path, r.Status, want[r.Path])
		}
	}
	return nil
}
