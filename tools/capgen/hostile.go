package main

import (
	"bufio"
	"bytes"
	"cmp"
	"context"
	"crypto/tls"
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
	// hostileCtl holds every kind of control a captured string can carry
	// to a terminal or an editor: ESC sequences (colour, erase), BEL, NUL,
	// DEL, the C1 CSI U+009B, the bidi override U+202E (a "Trojan Source"
	// file name), invalid UTF-8 (0xff 0xfe), the isolate U+2066 and the
	// line separator U+2028. It is the Host, :authority, SNI, header
	// values and grpc-message of the ctl connections.
	hostileCtl = "ctl\x1b[31m\x07\x00\x7f\u009b2J\u202egnp.exe\xff\xfe\u2066\u2028end"
	// hostileCtlPct is a grpc-message percent-encoded as gRPC sends it,
	// decoding to ESC, C1 CSI, U+202E and an invalid byte.
	hostileCtlPct = "pct%1B%C2%9B%E2%80%AE%FFend"
	// hostileInvalid is a content-type whose only fault is invalid UTF-8.
	hostileInvalid = "text/plain; charset=\xff\xfe"
	// hostileBigLen is the length of the big values: past every bound
	// h2scope keeps (64 KiB for an HPACK string or an HTTP/1 head, 1 KiB
	// for a grpc-message, 256 bytes of GOAWAY debug data), so they take
	// the paths a 1 MB value would; 1 MB values would not fit the 8 MB
	// that all committed captures may take.
	hostileBigLen = 72 << 10
	// hostileCtlPath and the others are the paths of the ctl connections.
	hostileCtlPath    = "/ctl"
	hostileCtlBigPath = "/ctl/big"
	hostileGRPCFail   = "/hostile.Ctl/Fail"
	hostileGRPCBig    = "/hostile.Ctl/Big"
)

// hostileBig is "big" and hostileCtl repeated, hostileBigLen bytes in all.
var hostileBig = func() string {
	b := strings.Repeat(hostileCtl, hostileBigLen/len(hostileCtl)+1)
	return "big" + b[:hostileBigLen-3]
}()

// hostileBin is the value of the trace-bin metadata (gRPC binary
// metadata: base64 on the wire, unpadded as grpc-go sends it).
var hostileBin = []byte("\x00\x1b\xffSECRET-BIN-8")

// serveHostile serves every part of hostile-strings on ln: a connection
// starting with the HTTP/2 client preface goes to a hand-written HTTP/2
// server (x/net/http2's Framer; x/net's Server cannot set GOAWAY debug
// data and rejects some of the values), one starting with a TLS record to
// crypto/tls's server (which refuses the handshake), one starting "GET /ctl" to a
// hand-written HTTP/1.1 server (net/http's refuses control characters),
// any other to net/http's server. The hand-written servers report
// ConnState as net/http would (new, active per request, closed), so the
// lab counts their requests and their close.
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
		switch {
		case err == nil && string(head) == http2.ClientPreface:
			serveHostileH2(s, pc)
			return
		case err == nil && head[0] == 0x16: // a TLS handshake record
			serveHostileTLS(s, pc)
			return
		case err == nil && strings.HasPrefix(string(head), "GET "+hostileCtlPath):
			serveHostileRaw(s, pc)
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

// serveHostileH2 is the hand-written HTTP/2 server of hostile-strings. It
// answers each request once it has ended (END_STREAM on HEADERS or DATA):
// /x... with a 302 and a Location; the gRPC paths with a gRPC error whose
// grpc-message has controls (hostileGRPCFail) or is hostileBig
// (hostileGRPCBig), in trailers after an empty message; /ctl with a header
// value with controls, a content-type with invalid UTF-8 and a small body; others with a Set-Cookie, a
// header value with terminal escapes and a small body. Once all 3 are
// answered and its SETTINGS acknowledged it sends GOAWAY NO_ERROR with
// debug data, hostileBig on the connection whose requests had the ctl
// :authority, hostileGoAway on the other, then reads until the client
// closes.
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
	answered, acked, sentGoAway, ctl := 0, false, false, false
	var last uint32
	paths := map[uint32]string{}
	answer := func(id uint32) error {
		s.connState(c, http.StateActive)
		last = id
		answered++
		headers := func(end bool, fields ...[2]string) error {
			b, err := hostileBlock(enc, &hbuf, fields)
			if err != nil {
				return err
			}
			return fr.WriteHeaders(http2.HeadersFrameParam{StreamID: id, BlockFragment: b, EndStream: end, EndHeaders: true})
		}
		switch path := paths[id]; {
		case strings.HasPrefix(path, "/x"):
			return headers(true, [2]string{":status", "302"}, [2]string{"location", hostileLocation})
		case path == hostileGRPCFail || path == hostileGRPCBig:
			code, msg := "13", hostileCtl+" "+hostileCtlPct // INTERNAL
			if path == hostileGRPCBig {
				code, msg = "8", hostileBig // RESOURCE_EXHAUSTED
			}
			if err := headers(false, [2]string{":status", "200"}, [2]string{"content-type", "application/grpc"}); err != nil {
				return err
			}
			if err := fr.WriteData(id, false, make([]byte, 5)); err != nil { // an empty message
				return err
			}
			return headers(true, [2]string{"grpc-status", code}, [2]string{"grpc-message", msg})
		case path == hostileCtlPath:
			if err := headers(false, [2]string{":status", "200"}, [2]string{"content-type", hostileInvalid},
				[2]string{"x-ctl", hostileCtl}); err != nil {
				return err
			}
			return fr.WriteData(id, true, []byte("ok\n"))
		default:
			if err := headers(false, [2]string{":status", "200"}, [2]string{"content-type", "text/html"},
				[2]string{"set-cookie", hostileSetCook}, [2]string{"x-term", hostileTerm}); err != nil {
				return err
			}
			return fr.WriteData(id, true, []byte(hostileBody))
		}
	}
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
			for _, h := range hs {
				switch h.Name {
				case ":path":
					paths[f.StreamID] = h.Value
				case ":authority":
					ctl = ctl || strings.HasPrefix(h.Value, "ctl") || strings.HasPrefix(h.Value, "big")
				}
			}
			if f.StreamEnded() && answer(f.StreamID) != nil {
				return
			}
		case *http2.DataFrame:
			if f.StreamEnded() && answer(f.StreamID) != nil {
				return
			}
		}
		if answered == 3 && acked && !sentGoAway {
			sentGoAway = true
			debug := hostileGoAway
			if ctl {
				debug = hostileBig
			}
			if fr.WriteGoAway(last, http2.ErrCodeNo, []byte(debug)) != nil {
				return
			}
		}
	}
}

// runHostile is hostile-strings: see its description. The connections
// run one after the other, in the order of the truth's connections.
func runHostile(ctx context.Context, s *session) error {
	for _, run := range []func(context.Context, *session) error{
		runHostileHTTP1, runHostileH2, runHostileRaw, runHostileH2Ctl, runHostileTLS,
	} {
		if err := run(ctx, s); err != nil {
			return err
		}
	}
	return nil
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

// runHostileH2 is the first h2c connection: a hand-written client
// (x/net/http2's Framer) sends its preface and SETTINGS, then three
// requests at once with :authority <b>x</b>, the hostile paths (one with
// terminal escapes) and headers and trace-bin metadata, reads the answers
// and the server's GOAWAY, and closes.
func runHostileH2(ctx context.Context, s *session) error {
	bin := base64.RawStdEncoding.EncodeToString(hostileBin)
	var reqs []hostileH2Req
	for i, p := range []string{hostileSearch, hostileImg, hostileEsc} {
		fields := [][2]string{
			{":method", "GET"}, {":scheme", "http"}, {":authority", hostileHost}, {":path", p},
			{"user-agent", hostileUA},
		}
		if i == 0 {
			fields = append(fields, [2]string{"authorization", hostileAuth}, [2]string{"cookie", hostileCookie},
				[2]string{"x-api-key", hostileAPIKey})
		}
		reqs = append(reqs, hostileH2Req{path: p, fields: append(fields, [2]string{"trace-bin", bin})})
	}
	return hostileH2Conn(ctx, s, "h2c", nil, reqs, hostileGoAway)
}

// runHostileH2Ctl is the second h2c connection, whose client allows
// frames of up to 1 MiB: a GET /ctl with hostileCtl as :authority, host
// and x-ctl, then two gRPC calls (an empty request message each) that the
// server fails: one with hostileCtl and percent-encoded controls in
// grpc-message, the last with :authority and grpc-message hostileBig. The
// server's GOAWAY debug data is hostileBig.
func runHostileH2Ctl(ctx context.Context, s *session) error {
	req := func(method, auth, path string, extra ...[2]string) hostileH2Req {
		f := [][2]string{{":method", method}, {":scheme", "http"}, {":authority", auth}, {":path", path}}
		r := hostileH2Req{path: path, method: method, fields: append(f, extra...)}
		if method == http.MethodPost {
			r.fields = append(r.fields, [2]string{"content-type", "application/grpc"}, [2]string{"te", "trailers"})
			r.body = make([]byte, 5)
		}
		return r
	}
	reqs := []hostileH2Req{
		req(http.MethodGet, hostileCtl, hostileCtlPath, [2]string{"host", hostileCtl}, [2]string{"x-ctl", hostileCtl}),
		req(http.MethodPost, hostileCtl, hostileGRPCFail, [2]string{"x-ctl", hostileCtl}),
		req(http.MethodPost, hostileBig, hostileGRPCBig),
	}
	return hostileH2Conn(ctx, s, "h2c-ctl", []http2.Setting{{ID: http2.SettingMaxFrameSize, Val: 1 << 20}}, reqs, hostileBig)
}

// hostileH2Req is a request of a hand-written h2c client: its header
// fields in order, and a body sent in one DATA frame if not nil.
type hostileH2Req struct {
	method, path string
	fields       [][2]string
	body         []byte
}

// hostileH2Conn dials an h2c connection labelled phase, sends the client
// preface and SETTINGS (with settings), then every request at once on
// streams 1, 3, ..., reads the answers and a GOAWAY NO_ERROR with the
// debug data goAway, and closes.
func hostileH2Conn(ctx context.Context, s *session, phase string, settings []http2.Setting, reqs []hostileH2Req, goAway string) error {
	c, err := s.dialer(phase)(ctx, "tcp", s.server)
	if err != nil {
		return err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(c, http2.ClientPreface); err != nil {
		return err
	}
	fr := http2.NewFramer(c, c)
	if err := fr.WriteSettings(settings...); err != nil {
		return err
	}
	var hbuf bytes.Buffer
	enc := hpack.NewEncoder(&hbuf)
	dec := hpack.NewDecoder(4096, nil)
	byID := make(map[uint32]*truth.Request)
	for i, q := range reqs {
		id := uint32(2*i + 1)
		b, err := hostileBlock(enc, &hbuf, q.fields)
		if err != nil {
			return err
		}
		method := cmp.Or(q.method, http.MethodGet)
		byID[id] = &truth.Request{Phase: phase, Method: method, Path: q.path, Proto: "HTTP/2.0", Stream: id,
			Conn: s.gotConn(c), ConnClient: c.LocalAddr().String(), Reused: i > 0, ReqBytes: int64(len(q.body))}
		if err := fr.WriteHeaders(http2.HeadersFrameParam{StreamID: id, BlockFragment: b, EndStream: q.body == nil, EndHeaders: true}); err != nil {
			return err
		}
		if q.body != nil {
			if err := fr.WriteData(id, true, q.body); err != nil {
				return err
			}
		}
	}
	done, gotGoAway := 0, false
	for done < len(reqs) || !gotGoAway {
		f, err := fr.ReadFrame()
		if err != nil {
			return fmt.Errorf("%s: %d of %d answers, GOAWAY %v: %w", phase, done, len(reqs), gotGoAway, err)
		}
		switch f := f.(type) {
		case *http2.SettingsFrame:
			if !f.IsAck() {
				if err := fr.WriteSettingsAck(); err != nil {
					return err
				}
			}
		case *http2.HeadersFrame:
			r := byID[f.StreamID]
			hs, err := dec.DecodeFull(f.HeaderBlockFragment())
			if err != nil || r == nil {
				return fmt.Errorf("%s: HEADERS on stream %d: %v", phase, f.StreamID, err)
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
			r := byID[f.StreamID]
			if r == nil {
				return fmt.Errorf("%s: DATA on stream %d", phase, f.StreamID)
			}
			r.RespBytes += int64(len(f.Data()))
			if f.StreamEnded() {
				done++
			}
		case *http2.GoAwayFrame:
			if f.ErrCode != http2.ErrCodeNo || string(f.DebugData()) != goAway {
				return fmt.Errorf("%s: GOAWAY %v with %d bytes of debug data", phase, f.ErrCode, len(f.DebugData()))
			}
			gotGoAway = true
		}
	}
	for id := uint32(1); id <= uint32(2*len(reqs)-1); id += 2 {
		s.addRequest(*byID[id], "")
	}
	return nil
}

// runHostileRaw is the ctl HTTP/1.1 connection, written and read by hand
// (net/http refuses these values on both sides): GET /ctl with hostileCtl
// as Host, User-Agent and X-Ctl, answered with an X-Ctl of hostileCtl;
// then GET /ctl/big with hostileBig as Host. The client closes.
func runHostileRaw(ctx context.Context, s *session) error {
	c, err := s.dialer("http1-ctl")(ctx, "tcp", s.server)
	if err != nil {
		return err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	br := bufio.NewReader(c)
	heads := []struct{ path, head string }{
		{hostileCtlPath, "Host: " + hostileCtl + "\r\nUser-Agent: " + hostileCtl + "\r\nX-Ctl: " + hostileCtl + "\r\n"},
		{hostileCtlBigPath, "Host: " + hostileBig + "\r\n"},
	}
	for i, q := range heads {
		r := truth.Request{Phase: "http1-ctl", Method: http.MethodGet, Path: q.path, Conn: s.gotConn(c),
			ConnClient: c.LocalAddr().String(), Reused: i > 0}
		if _, err := fmt.Fprintf(c, "GET %s HTTP/1.1\r\n%s\r\n", q.path, q.head); err != nil {
			return err
		}
		status, body, err := readRawResponse(br)
		r.Status, r.RespBytes = status, body
		s.addRequest(r, "")
		if err != nil {
			return fmt.Errorf("GET %s: %w", q.path, err)
		}
	}
	return nil
}

// readRawResponse reads a response head and its Content-Length body by
// hand (http.ReadResponse refuses control characters in header values)
// and returns the status and the body's length.
func readRawResponse(br *bufio.Reader) (status int, body int64, err error) {
	line, err := br.ReadString('\n')
	if err != nil {
		return 0, 0, err
	}
	if _, err := fmt.Sscanf(line, "HTTP/1.1 %d", &status); err != nil {
		return 0, 0, fmt.Errorf("status line %q: %w", line, err)
	}
	for {
		line, err := br.ReadString('\n')
		if err != nil {
			return status, 0, err
		}
		if line == "\r\n" {
			break
		}
		if v, ok := strings.CutPrefix(line, "Content-Length: "); ok {
			fmt.Sscan(v, &body)
		}
	}
	n, err := io.CopyN(io.Discard, br, body)
	return status, n, err
}

// serveHostileRaw is the hand-written HTTP/1.1 server of the ctl
// connection: it reads request heads of any size and answers each with
// 200, an X-Ctl of hostileCtl on /ctl, and a 3-byte body, until the
// client closes.
func serveHostileRaw(s *session, c net.Conn) {
	defer func() {
		c.Close()
		s.connState(c, http.StateClosed)
	}()
	s.connState(c, http.StateNew)
	br := bufio.NewReader(c)
	for {
		first, err := br.ReadString('\n')
		if err != nil {
			return
		}
		for {
			line, err := br.ReadString('\n')
			if err != nil {
				return
			}
			if line == "\r\n" {
				break
			}
		}
		s.connState(c, http.StateActive)
		extra := ""
		if strings.HasPrefix(first, "GET "+hostileCtlPath+" ") {
			extra = "X-Ctl: " + hostileCtl + "\r\n"
		}
		if _, err := fmt.Fprintf(c, "HTTP/1.1 200 OK\r\n%sContent-Type: text/plain\r\nContent-Length: 3\r\n\r\nok\n", extra); err != nil {
			return
		}
	}
}

// runHostileTLS is the TLS connection: crypto/tls's client sends
// hostileCtl as the ClientHello's server_name (it sends any string; only
// an IP address is left out) and the server, which has no certificate
// for it, refuses the handshake with a fatal unrecognized_name alert, in
// the clear. The client's error and the alert go to the truth.
func runHostileTLS(ctx context.Context, s *session) error {
	c, err := s.dialer("tls")(ctx, "tcp", s.server)
	if err != nil {
		return err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	herr := tls.Client(c, &tls.Config{ServerName: hostileCtl, InsecureSkipVerify: true, MinVersion: tls.VersionTLS13}).HandshakeContext(ctx)
	if herr == nil || !strings.Contains(herr.Error(), "unrecognized name") {
		return fmt.Errorf("tls: handshake %v, want the server's unrecognized_name alert", herr)
	}
	if w, ok := watched(c); ok {
		s.lab.mu.Lock()
		r := hostileTLSRecord(w.rec)
		r.SNI, r.ClientError = hostileCtl, herr.Error()
		r.Alert = tlsAlert(r)
		s.lab.mu.Unlock()
	}
	return nil
}

// serveHostileTLS runs crypto/tls's server handshake on c with a
// configuration without certificates, so that it sends unrecognized_name
// once it has read the ClientHello (any other SNI than hostileCtl fails
// with internal_error), records its error and reads until the client
// closes.
func serveHostileTLS(s *session, c net.Conn) {
	defer func() {
		c.Close()
		s.connState(c, http.StateClosed)
	}()
	s.connState(c, http.StateNew)
	tc := tls.Server(c, &tls.Config{GetConfigForClient: func(h *tls.ClientHelloInfo) (*tls.Config, error) {
		if h.ServerName != hostileCtl {
			return nil, fmt.Errorf("SNI %q, want hostileCtl", h.ServerName)
		}
		return &tls.Config{MinVersion: tls.VersionTLS13}, nil
	}})
	err := tc.Handshake()
	if w, ok := watched(c); ok && err != nil {
		s.lab.mu.Lock()
		hostileTLSRecord(w.rec).ServerError = err.Error()
		s.lab.mu.Unlock()
	}
	io.Copy(io.Discard, c)
}

// hostileTLSRecord returns rec's TLS record, creating it. The lab's mutex
// must be held.
func hostileTLSRecord(rec *connRecord) *truth.TLS {
	if rec.tls == nil {
		rec.tls = &truth.TLS{}
	}
	return rec.tls
}

// checkHostile checks that every request got its answer and that the TLS
// connection is there.
func checkHostile(t *truth.Truth) error {
	want := map[string]int{hostileSearch: 200, hostileImg: 302, strings.ReplaceAll(hostileImg, " ", "%20"): 302, hostileEsc: 200,
		hostileCtlPath: 200, hostileCtlBigPath: 200, hostileGRPCFail: 200, hostileGRPCBig: 200}
	if len(t.Requests) != 10 || len(t.Connections) != 5 {
		return fmt.Errorf("%d requests on %d connections, want 10 on 5", len(t.Requests), len(t.Connections))
	}
	for _, r := range t.Requests {
		if r.Status != want[r.Path] {
			return fmt.Errorf("%s %s: status %d, want %d", r.Method, r.Path, r.Status, want[r.Path])
		}
	}
	if c := t.Connections[4]; c.Phase != "tls" || c.TLS == nil || c.TLS.Alert == nil || c.TLS.Alert.Description != "unrecognized_name" {
		return fmt.Errorf("connection 5: phase %q, TLS %+v, want the TLS connection refused with unrecognized_name", c.Phase, c.TLS)
	}
	return nil
}
