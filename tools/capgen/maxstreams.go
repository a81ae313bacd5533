package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"

	"github.com/h2scope/h2scope/tools/capgen/truth"
)

// h2-max-streams: the server's stream limit, the requests of the burst
// and the path each asks for.
const (
	maxStreamsLimit = 4
	maxStreamsBurst = 40
	maxStreamsPath  = "/slow/50"
)

// serveH2MaxStreams serves newHandler over h2c with x/net/http2's Server
// limited to maxStreamsLimit concurrent streams. The server counts as a
// request it saw both a request its handler ran and a stream it refused
// (its CountError hook reports each over_max_streams_race refusal; the
// scenario has one connection, which gets them).
func serveH2MaxStreams(s *session, ln net.Listener) func() error {
	h2s := &http2.Server{
		MaxConcurrentStreams: maxStreamsLimit,
		CountError: func(name string) {
			if !strings.HasSuffix(name, "over_max_streams_race") {
				return
			}
			s.lab.mu.Lock()
			if len(s.lab.conns) > 0 {
				s.lab.conns[0].serverRequests++
			}
			s.lab.mu.Unlock()
		},
	}
	return acceptLoop(ln, s.h2ConnServer(h2s))
}

// framerClient is a hand-written HTTP/2 client over one connection, built
// on x/net/http2's Framer: it writes what it is told to, when it is told
// to, unlike http2.Transport, which waits for the server's SETTINGS and
// queues requests past the server's stream limit.
type framerClient struct {
	c    net.Conn
	fr   *http2.Framer
	wmu  sync.Mutex
	enc  *hpack.Encoder
	hbuf bytes.Buffer
	next uint32 // next stream ID
}

// newFramerClient writes the client preface and an empty SETTINGS frame.
func newFramerClient(c net.Conn) (*framerClient, error) {
	fc := &framerClient{c: c, fr: http2.NewFramer(c, c), next: 1}
	fc.enc = hpack.NewEncoder(&fc.hbuf)
	fc.fr.ReadMetaHeaders = hpack.NewDecoder(4096, nil)
	if _, err := io.WriteString(c, http2.ClientPreface); err != nil {
		return nil, err
	}
	return fc, fc.write(func(fr *http2.Framer) error { return fr.WriteSettings() })
}

func (fc *framerClient) write(f func(fr *http2.Framer) error) error {
	fc.wmu.Lock()
	defer fc.wmu.Unlock()
	return f(fc.fr)
}

// get opens a stream with a GET of path (HEADERS with END_STREAM),
// tagged with a capgen-request header, and returns its ID.
func (fc *framerClient) get(authority, path, tag string) (uint32, error) {
	fc.wmu.Lock()
	defer fc.wmu.Unlock()
	fc.hbuf.Reset()
	for _, f := range [][2]string{
		{":method", "GET"}, {":scheme", "http"}, {":authority", authority}, {":path", path},
		{"user-agent", "capgen-framer"}, {"capgen-request", tag},
	} {
		if err := fc.enc.WriteField(hpack.HeaderField{Name: f[0], Value: f[1]}); err != nil {
			return 0, err
		}
	}
	id := fc.next
	fc.next += 2
	return id, fc.fr.WriteHeaders(http2.HeadersFrameParam{
		StreamID: id, BlockFragment: fc.hbuf.Bytes(), EndStream: true, EndHeaders: true,
	})
}

// streamEvent is how a stream ended, as the client's reader saw it.
type streamEvent struct {
	stream  uint32
	status  int
	bytes   int64
	reset   http2.ErrCode
	isReset bool
}

// readLoop reads the server's frames until the connection fails: it
// acknowledges SETTINGS and PINGs, reports the server's
// MAX_CONCURRENT_STREAMS on limits and each ended stream on events.
func (fc *framerClient) readLoop(limits chan<- uint32, events chan<- streamEvent) error {
	type progress struct {
		status int
		bytes  int64
	}
	open := make(map[uint32]*progress)
	get := func(id uint32) *progress {
		p := open[id]
		if p == nil {
			p = new(progress)
			open[id] = p
		}
		return p
	}
	for {
		f, err := fc.fr.ReadFrame()
		if err != nil {
			return err
		}
		switch f := f.(type) {
		case *http2.SettingsFrame:
			if f.IsAck() {
				continue
			}
			if v, ok := f.Value(http2.SettingMaxConcurrentStreams); ok {
				limits <- v
			}
			if err := fc.write(func(fr *http2.Framer) error { return fr.WriteSettingsAck() }); err != nil {
				return err
			}
		case *http2.PingFrame:
			if !f.IsAck() {
				if err := fc.write(func(fr *http2.Framer) error { return fr.WritePing(true, f.Data) }); err != nil {
					return err
				}
			}
		case *http2.MetaHeadersFrame:
			p := get(f.StreamID)
			if p.status == 0 {
				p.status, _ = strconv.Atoi(f.PseudoValue("status"))
			}
			if f.StreamEnded() {
				events <- streamEvent{stream: f.StreamID, status: p.status, bytes: p.bytes}
				delete(open, f.StreamID)
			}
		case *http2.DataFrame:
			p := get(f.StreamID)
			p.bytes += int64(len(f.Data()))
			if f.StreamEnded() {
				events <- streamEvent{stream: f.StreamID, status: p.status, bytes: p.bytes}
				delete(open, f.StreamID)
			}
		case *http2.RSTStreamFrame:
			events <- streamEvent{stream: f.StreamID, reset: f.ErrCode, isReset: true}
			delete(open, f.StreamID)
		case *http2.GoAwayFrame:
			return fmt.Errorf("GOAWAY %v", f.ErrCode)
		}
	}
}

// runH2MaxStreams is h2-max-streams: see its description.
func runH2MaxStreams(ctx context.Context, s *session) error {
	c, err := s.dialer("framer")(ctx, "tcp", s.server)
	if err != nil {
		return err
	}
	defer c.Close()
	fc, err := newFramerClient(c)
	if err != nil {
		return err
	}
	type attempt struct {
		r   truth.Request
		tag string
		idx int // the request's index in the burst
	}
	pending := make(map[uint32]*attempt)
	first := true
	open := func(idx int, phase string) error {
		tag := strconv.FormatInt(reqSeq.Add(1), 10)
		a := &attempt{tag: tag, idx: idx, r: truth.Request{Phase: phase, Method: http.MethodGet, Path: maxStreamsPath,
			Proto: "HTTP/2.0", Conn: s.gotConn(c), ConnClient: c.LocalAddr().String(), Reused: !first}}
		first = false
		id, err := fc.get(s.server, maxStreamsPath, tag)
		if err != nil {
			return err
		}
		pending[id] = a
		return nil
	}
	// The burst: every request at once, before the client has read the
	// server's SETTINGS (so before it knows the limit, and before it
	// acknowledges them).
	for i := range maxStreamsBurst {
		if err := open(i, "burst"); err != nil {
			return err
		}
	}
	limits := make(chan uint32, 4)
	events := make(chan streamEvent, 2*maxStreamsBurst)
	readErr := make(chan error, 1)
	go func() { readErr <- fc.readLoop(limits, events) }()

	limit := uint32(0) // unknown until the server's SETTINGS arrive
	var retry []int
	done := 0
	timeout := time.After(15 * time.Second)
	for done < maxStreamsBurst {
		select {
		case v := <-limits:
			limit = v
		case ev := <-events:
			a := pending[ev.stream]
			if a == nil {
				return fmt.Errorf("h2-max-streams: event on unknown stream %d", ev.stream)
			}
			delete(pending, ev.stream)
			switch {
			case ev.isReset && ev.reset == http2.ErrCodeRefusedStream:
				a.r.Error = "stream refused: RST_STREAM REFUSED_STREAM (retried on a new stream)"
				retry = append(retry, a.idx)
			case ev.isReset:
				a.r.Error = "RST_STREAM " + ev.reset.String()
				done++
			default:
				a.r.Status, a.r.RespBytes = ev.status, ev.bytes
				done++
			}
			s.addRequest(a.r, a.tag)
		case err := <-readErr:
			return fmt.Errorf("h2-max-streams: reading: %w", err)
		case <-timeout:
			return errors.New("h2-max-streams: timed out")
		}
		// Retry refused requests once the limit is known, keeping within it.
		for limit > 0 && len(retry) > 0 && uint32(len(pending)) < limit {
			if err := open(retry[0], "retry"); err != nil {
				return err
			}
			retry = retry[1:]
		}
	}
	return nil
}

// checkH2MaxStreams checks that the server refused at least 20 streams.
func checkH2MaxStreams(t *truth.Truth) error {
	if n := t.Expect.RSTStreamCodes["REFUSED_STREAM"]; n < 20 {
		return fmt.Errorf("%d RST_STREAM REFUSED_STREAM, want at least 20", n)
	}
	for _, r := range t.Requests {
		if r.Phase == "retry" && r.Status != http.StatusOK {
			return fmt.Errorf("retry on stream %d: status %d %s", r.Stream, r.Status, r.Error)
		}
	}
	return nil
}
