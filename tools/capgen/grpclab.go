package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptrace"
	"net/url"
	"slices"
	"strconv"
	"sync"
	"time"

	"golang.org/x/net/http2"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/encoding/gzip"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/stats"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/h2scope/h2scope/tools/capgen/truth"
)

// The test service, defined without protoc: a hand-written
// grpc.ServiceDesc whose messages are google.protobuf.BytesValue, so every
// message on the wire is valid Protobuf, encoded by grpc-go's own "proto"
// codec. What the server answers is decided per call by a callPlan the
// client registers under the call's ID (the capgen-call header).
const (
	labServiceName = "h2scope.capgen.Lab"
	methodEcho     = "/" + labServiceName + "/Echo"
	methodLookup   = "/" + labServiceName + "/Lookup"
	methodWatch    = "/" + labServiceName + "/Watch"
	methodCollect  = "/" + labServiceName + "/Collect"
	methodChat     = "/" + labServiceName + "/Chat"
)

// callPlan is what the server does for one call, and what the client
// expects of it.
type callPlan struct {
	resp  []int         // value sizes of the response messages (Collect, unary: one)
	echo  bool          // Chat: answer each message with one of the same value size
	code  codes.Code    // status the handler returns
	msg   string        // its message
	sleep time.Duration // Echo/Lookup: sleep before answering, ignoring the deadline
	want  codes.Code    // status the client must observe
}

// A grpcLab runs gRPC calls in a session and records what the client and
// the server observed of each.
type grpcLab struct {
	l *lab

	mu      sync.Mutex
	plans   map[int]*callPlan
	calls   []*clientCall       // ID order
	servers map[int]*serverCall // by call ID
}

// clientCall is what the client observed of one call.
type clientCall struct {
	id          int
	phase       string
	client      string
	method      string
	kind        string
	timeout     time.Duration
	cancelled   bool
	compression string
	conn        int
	code        codes.Code
	msg         string
	sent        []int // message lengths sent
	received    []int // message lengths received
}

// serverCall is what the server observed of one call.
type serverCall struct {
	ran      bool
	code     codes.Code
	received []int
	sent     []int
}

func newGRPCLab(l *lab) *grpcLab {
	return &grpcLab{l: l, plans: make(map[int]*callPlan), servers: make(map[int]*serverCall)}
}

// newCall registers a call and its plan.
func (g *grpcLab) newCall(phase, client, method, kind string, p *callPlan) *clientCall {
	g.mu.Lock()
	defer g.mu.Unlock()
	c := &clientCall{id: len(g.calls) + 1, phase: phase, client: client, method: method, kind: kind}
	g.calls = append(g.calls, c)
	g.plans[c.id] = p
	return c
}

// grpcCalls returns the calls as truth records, without their wire fields.
func (s *session) grpcCalls() []truth.GRPCCall {
	g := s.grpc
	g.mu.Lock()
	defer g.mu.Unlock()
	var out []truth.GRPCCall
	for _, c := range g.calls {
		sv := g.servers[c.id]
		if sv == nil {
			sv = new(serverCall)
		}
		tc := truth.GRPCCall{
			ID: c.id, Conn: c.conn, Phase: c.phase, Client: c.client, Method: c.method, Kind: c.kind,
			TimeoutMS:   int(c.timeout.Milliseconds()),
			Compression: c.compression,
			Cancelled:   c.cancelled,
			Code:        grpcCodeName(uint32(c.code)),
			Message:     c.msg,
			C2S:         truth.GRPCMessages{Sent: len(c.sent), Received: len(sv.received), Sizes: nonNil(c.sent)},
			S2C:         truth.GRPCMessages{Sent: len(sv.sent), Received: len(c.received), Sizes: nonNil(sv.sent)},
		}
		if sv.ran {
			tc.ServerCode = grpcCodeName(uint32(sv.code))
		}
		out = append(out, tc)
	}
	return out
}

func nonNil(s []int) []int {
	if s == nil {
		return []int{}
	}
	return slices.Clone(s)
}

// callKey is the context key of the *clientCall of a grpc-go call.
type callKey struct{}

// clientStats is the grpc-go client's stats.Handler: it records each
// call's connection, compression and messages.
type clientStats struct{ g *grpcLab }

// TagRPC leaves the context as it is: the call's carries its record.
func (h clientStats) TagRPC(ctx context.Context, _ *stats.RPCTagInfo) context.Context { return ctx }

// HandleRPC records one event of a call.
func (h clientStats) HandleRPC(ctx context.Context, s stats.RPCStats) {
	c, ok := ctx.Value(callKey{}).(*clientCall)
	if !ok {
		return
	}
	switch s := s.(type) {
	case *stats.OutHeader:
		id := h.g.l.countClient(s.LocalAddr.String())
		h.g.mu.Lock()
		c.conn, c.compression = id, s.Compression
		h.g.mu.Unlock()
	case *stats.OutPayload:
		h.g.mu.Lock()
		c.sent = append(c.sent, s.Length)
		h.g.mu.Unlock()
	case *stats.InPayload:
		h.g.mu.Lock()
		c.received = append(c.received, s.Length)
		h.g.mu.Unlock()
	}
}

// TagConn leaves the context as it is.
func (h clientStats) TagConn(ctx context.Context, _ *stats.ConnTagInfo) context.Context { return ctx }

// HandleConn ignores connection events.
func (h clientStats) HandleConn(context.Context, stats.ConnStats) {}

// serverStats is the server's stats.Handler: it records, per call ID, the
// messages the server received and sent and the status its handler
// returned, and counts calls per connection.
type serverStats struct{ g *grpcLab }

// serverKey is the context key of a server call's *serverCall.
type serverKey struct{}

// TagRPC gives each call a record.
func (h serverStats) TagRPC(ctx context.Context, _ *stats.RPCTagInfo) context.Context {
	return context.WithValue(ctx, serverKey{}, new(serverCall))
}

// HandleRPC records one event of a call.
func (h serverStats) HandleRPC(ctx context.Context, s stats.RPCStats) {
	sc, ok := ctx.Value(serverKey{}).(*serverCall)
	if !ok {
		return
	}
	if s, ok := s.(*stats.InHeader); ok {
		h.g.l.countServer(s.RemoteAddr.String())
	}
	h.g.mu.Lock()
	defer h.g.mu.Unlock()
	switch s := s.(type) {
	case *stats.InHeader:
		if v := s.Header.Get("capgen-call"); len(v) == 1 {
			if id, err := strconv.Atoi(v[0]); err == nil {
				h.g.servers[id] = sc
			}
		}
	case *stats.InPayload:
		sc.received = append(sc.received, s.Length)
	case *stats.OutPayload:
		sc.sent = append(sc.sent, s.Length)
	case *stats.End:
		sc.ran = true
		sc.code = status.Code(s.Error)
	}
}

// TagConn leaves the context as it is.
func (h serverStats) TagConn(ctx context.Context, _ *stats.ConnTagInfo) context.Context { return ctx }

// HandleConn ignores connection events.
func (h serverStats) HandleConn(context.Context, stats.ConnStats) {}

// plan returns the plan of the call whose server context is ctx.
func (g *grpcLab) plan(ctx context.Context) (*callPlan, error) {
	md, _ := metadata.FromIncomingContext(ctx)
	v := md.Get("capgen-call")
	if len(v) != 1 {
		return nil, status.Error(codes.InvalidArgument, "no capgen-call header")
	}
	id, _ := strconv.Atoi(v[0])
	g.mu.Lock()
	defer g.mu.Unlock()
	p := g.plans[id]
	if p == nil {
		return nil, status.Errorf(codes.InvalidArgument, "no plan for call %d", id)
	}
	return p, nil
}

// message returns a response message with a value of n bytes.
func message(n int) *wrapperspb.BytesValue { return &wrapperspb.BytesValue{Value: body(n)} }

// labDesc describes the service for grpc.Server.RegisterService.
func (g *grpcLab) labDesc() *grpc.ServiceDesc {
	unary := func(_ any, ctx context.Context, dec func(any) error, _ grpc.UnaryServerInterceptor) (any, error) {
		in := new(wrapperspb.BytesValue)
		if err := dec(in); err != nil {
			return nil, err
		}
		p, err := g.plan(ctx)
		if err != nil {
			return nil, err
		}
		if p.sleep > 0 {
			time.Sleep(p.sleep)
		}
		if p.code != codes.OK {
			return nil, status.Error(p.code, p.msg)
		}
		return message(p.resp[0]), nil
	}
	return &grpc.ServiceDesc{
		ServiceName: labServiceName,
		HandlerType: (*any)(nil),
		Methods: []grpc.MethodDesc{
			{MethodName: "Echo", Handler: unary},
			{MethodName: "Lookup", Handler: unary},
		},
		Streams: []grpc.StreamDesc{
			{StreamName: "Watch", ServerStreams: true, Handler: func(_ any, ss grpc.ServerStream) error {
				p, err := g.plan(ss.Context())
				if err != nil {
					return err
				}
				if err := ss.RecvMsg(new(wrapperspb.BytesValue)); err != nil {
					return err
				}
				for _, n := range p.resp {
					if err := ss.SendMsg(message(n)); err != nil {
						return err
					}
				}
				return status.Error(p.code, p.msg)
			}},
			{StreamName: "Collect", ClientStreams: true, Handler: func(_ any, ss grpc.ServerStream) error {
				p, err := g.plan(ss.Context())
				if err != nil {
					return err
				}
				for {
					err := ss.RecvMsg(new(wrapperspb.BytesValue))
					if errors.Is(err, io.EOF) {
						break
					}
					if err != nil {
						return err
					}
				}
				if err := ss.SendMsg(message(p.resp[0])); err != nil {
					return err
				}
				return status.Error(p.code, p.msg)
			}},
			{StreamName: "Chat", ServerStreams: true, ClientStreams: true, Handler: func(_ any, ss grpc.ServerStream) error {
				p, err := g.plan(ss.Context())
				if err != nil {
					return err
				}
				for {
					in := new(wrapperspb.BytesValue)
					err := ss.RecvMsg(in)
					if errors.Is(err, io.EOF) {
						return status.Error(p.code, p.msg)
					}
					if err != nil {
						return err
					}
					if err := ss.SendMsg(message(len(in.Value))); err != nil {
						return err
					}
				}
			}},
		},
		Metadata: "capgen: no .proto file",
	}
}

// serveGRPC serves the test service with grpc-go on ln, in h2c (no TLS).
func serveGRPC(s *session, ln net.Listener) func() error {
	return serveGRPCWith(s, ln)
}

// serveGRPCWith serves the test service with grpc-go on ln with the
// server options opts.
func serveGRPCWith(s *session, ln net.Listener, opts ...grpc.ServerOption) func() error {
	srv := grpc.NewServer(append(opts, grpc.StatsHandler(serverStats{s.grpc}))...)
	srv.RegisterService(s.grpc.labDesc(), nil)
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	return func() error {
		srv.Stop()
		return <-served
	}
}

// dial returns a grpc-go client connection to the lab's server over h2c
// (insecure credentials), dialing through the lab's dialer.
func (s *session) dialGRPC(phase string) (*grpc.ClientConn, error) {
	return s.dialGRPCWith(phase, insecure.NewCredentials())
}

// dialGRPCWith is dialGRPC with the transport credentials creds.
func (s *session) dialGRPCWith(phase string, creds credentials.TransportCredentials) (*grpc.ClientConn, error) {
	dial := s.dialer(phase)
	cc, err := grpc.NewClient("passthrough:///"+s.server,
		grpc.WithTransportCredentials(creds),
		grpc.WithContextDialer(func(ctx context.Context, addr string) (net.Conn, error) { return dial(ctx, "tcp", addr) }),
		grpc.WithStatsHandler(clientStats{s.grpc}),
		grpc.WithUserAgent("capgen"),
	)
	if err != nil {
		return nil, err
	}
	s.onClose(func() { cc.Close() })
	return cc, nil
}

// grpcOpts are the client-side options of one grpc-go call.
type grpcOpts struct {
	timeout     time.Duration // deadline, 0 for none
	cancelAfter time.Duration // cancel the call after this long, 0 for never
	gzip        bool          // compress the messages
	md          []string      // extra metadata, key value pairs
}

// start prepares the context and options of a grpc-go call. The call's
// context drops the scenario's deadline (which grpc-go would send as
// grpc-timeout on every call) but is still cancelled with it.
func (g *grpcLab) start(ctx context.Context, c *clientCall, o grpcOpts) (context.Context, context.CancelFunc, []grpc.CallOption) {
	parent := ctx
	ctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	stop := context.AfterFunc(parent, cancel)
	unlink := cancel
	cancel = func() { stop(); unlink() }
	ctx = context.WithValue(ctx, callKey{}, c)
	ctx = metadata.AppendToOutgoingContext(ctx, append([]string{"capgen-call", strconv.Itoa(c.id)}, o.md...)...)
	if o.timeout > 0 {
		var cancelT context.CancelFunc
		ctx, cancelT = context.WithTimeout(ctx, o.timeout)
		c.timeout = o.timeout
		prev := cancel
		cancel = func() { cancelT(); prev() }
	}
	if o.cancelAfter > 0 {
		var cancel2 context.CancelFunc
		ctx, cancel2 = context.WithCancel(ctx)
		t := time.AfterFunc(o.cancelAfter, func() {
			g.mu.Lock()
			c.cancelled = true
			g.mu.Unlock()
			cancel2()
		})
		prev := cancel
		cancel = func() { t.Stop(); cancel2(); prev() }
	}
	var opts []grpc.CallOption
	if o.gzip {
		opts = append(opts, grpc.UseCompressor(gzip.Name))
	}
	return ctx, cancel, opts
}

// finish records the status err and checks it against the plan.
func (g *grpcLab) finish(c *clientCall, p *callPlan, err error) error {
	st := status.Convert(err)
	g.mu.Lock()
	c.code, c.msg = st.Code(), st.Message()
	g.mu.Unlock()
	if st.Code() != p.want {
		return fmt.Errorf("gRPC call %d %s: status %v %q, want %v", c.id, c.method, st.Code(), st.Message(), p.want)
	}
	return nil
}

// unary makes a unary call with a request value of reqSize bytes.
func (g *grpcLab) unary(ctx context.Context, cc *grpc.ClientConn, phase, method string, reqSize int, p *callPlan, o grpcOpts) error {
	c := g.newCall(phase, "grpc-go", method, truth.GRPCUnary, p)
	ctx, cancel, opts := g.start(ctx, c, o)
	defer cancel()
	err := cc.Invoke(ctx, method, message(reqSize), new(wrapperspb.BytesValue), opts...)
	return g.finish(c, p, err)
}

// A unaryCall is one unary call of a scripted client: see unary.
type unaryCall struct {
	method string
	req    int // request value size
	plan   *callPlan
	o      grpcOpts
}

// unaries makes the calls one after the other on cc.
func (g *grpcLab) unaries(ctx context.Context, cc *grpc.ClientConn, phase string, calls []unaryCall) error {
	for _, c := range calls {
		if err := g.unary(ctx, cc, phase, c.method, c.req, c.plan, c.o); err != nil {
			return err
		}
	}
	return nil
}

// stream makes a streaming call of the given kind: it sends a message for
// each of reqs (value sizes), receiving as it goes for bidi calls, then
// closes its side and receives the rest.
func (g *grpcLab) stream(ctx context.Context, cc *grpc.ClientConn, phase, method, kind string, reqs []int, p *callPlan, o grpcOpts) error {
	c := g.newCall(phase, "grpc-go", method, kind, p)
	ctx, cancel, opts := g.start(ctx, c, o)
	defer cancel()
	desc := &grpc.StreamDesc{
		ServerStreams: kind != truth.GRPCClientStream,
		ClientStreams: kind != truth.GRPCServerStream,
	}
	cs, err := cc.NewStream(ctx, desc, method, opts...)
	if err != nil {
		return g.finish(c, p, err)
	}
	err = func() error {
		for _, n := range reqs {
			if err := cs.SendMsg(message(n)); err != nil {
				return err
			}
			if kind == truth.GRPCBidi {
				if err := cs.RecvMsg(new(wrapperspb.BytesValue)); err != nil {
					return err
				}
			}
		}
		if err := cs.CloseSend(); err != nil {
			return err
		}
		for {
			if err := cs.RecvMsg(new(wrapperspb.BytesValue)); err != nil {
				return err
			}
		}
	}()
	if errors.Is(err, io.EOF) {
		err = nil
	}
	return g.finish(c, p, err)
}

// h2Transport returns a golang.org/x/net/http2 client transport in h2c
// (prior knowledge: AllowHTTP, and a DialTLSContext that dials plain TCP
// through the lab's dialer), configured by cfg (may be nil).
//
// http2.Transport takes its receive windows only from the net/http
// Transport it is configured for (http.HTTP2Config's
// MaxReceiveBufferPerConnection and MaxReceiveBufferPerStream), so it is
// made by ConfigureTransports; that installs a connection pool that never
// dials (it expects net/http to dial), which ConnPool = nil replaces with
// the default, dialing one.
func (s *session) h2Transport(phase string, cfg *http.HTTP2Config) (*http2.Transport, error) {
	t1 := &http.Transport{HTTP2: cfg}
	t2, err := http2.ConfigureTransports(t1)
	if err != nil {
		return nil, err
	}
	t2.ConnPool = nil
	dial := s.dialer(phase)
	t2.AllowHTTP = true
	t2.DisableCompression = true
	t2.DialTLSContext = func(ctx context.Context, network, addr string, _ *tls.Config) (net.Conn, error) {
		return dial(ctx, network, addr)
	}
	s.onClose(t2.CloseIdleConnections)
	return t2, nil
}

// grpcFrame appends message m to b as a gRPC length-prefixed message.
func grpcFrame(b []byte, m []byte) []byte {
	b = append(b, 0)
	b = binary.BigEndian.AppendUint32(b, uint32(len(m)))
	return append(b, m...)
}

// chunkReader reads from r at most n bytes at a time, as a proxy
// forwarding what it receives might.
type chunkReader struct {
	r io.Reader
	n int
}

func (c chunkReader) Read(p []byte) (int, error) { return c.r.Read(p[:min(len(p), c.n)]) }

// handCall makes a gRPC call by hand over an x/net/http2 Transport, as a
// proxy or a non-Go client might: the request body holds all the request
// messages back to back and the transport reads it chunk bytes at a time,
// sending a DATA frame per read, so several messages share a DATA frame
// and messages (prefixes too) straddle frames. It parses the response
// messages and the status from the trailers (or from the headers of a
// trailers-only response).
func (g *grpcLab) handCall(ctx context.Context, t *http2.Transport, phase, method, kind string, reqs []int, chunk int, p *callPlan) error {
	c := g.newCall(phase, "x/net/http2", method, kind, p)
	var reqBody []byte
	for _, n := range reqs {
		m, err := proto.Marshal(message(n))
		if err != nil {
			return err
		}
		reqBody = grpcFrame(reqBody, m)
		c.sent = append(c.sent, len(m))
	}
	trace := &httptrace.ClientTrace{GotConn: func(info httptrace.GotConnInfo) {
		id := g.l.gotConn(info.Conn)
		g.mu.Lock()
		c.conn = id
		g.mu.Unlock()
	}}
	ctx = httptrace.WithClientTrace(ctx, trace)
	// A body of unknown length: no content-length, as gRPC clients send.
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, "http://"+g.l.server+method, io.NopCloser(chunkReader{bytes.NewReader(reqBody), chunk}))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/grpc")
	req.Header.Set("Te", "trailers")
	req.Header.Set("User-Agent", "capgen-h2")
	req.Header.Set("Capgen-Call", strconv.Itoa(c.id))
	resp, err := t.RoundTrip(req)
	if err != nil {
		return g.finish(c, p, status.Error(codes.Unavailable, err.Error()))
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return g.finish(c, p, status.Error(codes.Internal, err.Error()))
	}
	for len(b) >= 5 {
		n := int(binary.BigEndian.Uint32(b[1:]))
		if len(b) < 5+n {
			break
		}
		c.received = append(c.received, n)
		b = b[5+n:]
	}
	if len(b) != 0 {
		return fmt.Errorf("gRPC call %d: %d bytes of a truncated message", c.id, len(b))
	}
	code, msg := resp.Trailer.Get("Grpc-Status"), resp.Trailer.Get("Grpc-Message")
	if code == "" {
		code, msg = resp.Header.Get("Grpc-Status"), resp.Header.Get("Grpc-Message")
	}
	n, err := strconv.Atoi(code)
	if err != nil {
		return fmt.Errorf("gRPC call %d: grpc-status %q", c.id, code)
	}
	if dec, err := url.PathUnescape(msg); err == nil {
		msg = dec
	}
	var st error
	if n != 0 {
		st = status.Error(codes.Code(n), msg)
	}
	return g.finish(c, p, st)
}
