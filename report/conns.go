package report

import (
	"fmt"
	"io"
	"strconv"

	"github.com/h2scope/h2scope/dissect"
	"github.com/h2scope/h2scope/dissect/http1"
	"github.com/h2scope/h2scope/dissect/http2"
	"github.com/h2scope/h2scope/dissect/tcp"
	"github.com/h2scope/h2scope/dissect/tls"
	"github.com/olekukonko/tablewriter"
	"github.com/olekukonko/tablewriter/tw"
)

// ConnRecord is one line of `h2scope conns --json`: the TCP summary and,
// when the connection's protocol was recognised, what its dissectors found.
type ConnRecord struct {
	*tcp.Summary
	// HTTP1 summarises the HTTP/1.x exchanges.
	HTTP1 *http1.Summary `json:"http1,omitempty"`
	// HTTP2 summarises the HTTP/2 frames, streams, settings and windows.
	HTTP2 *http2.Summary `json:"http2,omitempty"`
	// GRPC counts the gRPC calls and the statuses their clients saw.
	GRPC *GRPCSummary `json:"grpc,omitempty"`
	// TLS summarises the handshake: version, SNI, ALPN, cipher suite,
	// resumption offered and accepted, alerts.
	TLS *tls.Summary `json:"tls,omitempty"`
	// Tunnel names the protocol an HTTP CONNECT tunnel carried;
	// TunnelHTTP1 summarises it when it was HTTP/1.x.
	Tunnel      string         `json:"tunnel,omitempty"`
	TunnelHTTP1 *http1.Summary `json:"tunnel_http1,omitempty"`
	// Decrypted names the protocol found inside TLS when it was
	// decrypted ("http2", "http1"); HTTP1, HTTP2 and GRPC then describe it.
	Decrypted string `json:"decrypted_proto,omitempty"`
}

// GRPCSummary counts a connection's gRPC calls.
type GRPCSummary struct {
	// Calls counts the calls (streams recognised as gRPC).
	Calls int `json:"calls"`
	// Status counts the calls by the status their client ended with
	// ("OK", "CANCELLED", ...; "" when it is unknown).
	Status map[string]int `json:"status"`
}

// NewConnRecord combines a finished connection's summary with its
// dissectors' findings (app may be nil). The record shares c unless its
// timestamps need converting to UTC (a copy then has them converted).
func NewConnRecord(c *tcp.Summary, app *dissect.App) ConnRecord {
	r := ConnRecord{Summary: c}
	if c.FirstTS != c.FirstTS.UTC() || c.LastTS != c.LastTS.UTC() {
		cp := *c
		cp.FirstTS, cp.LastTS = c.FirstTS.UTC(), c.LastTS.UTC()
		r.Summary = &cp
	}
	if app == nil {
		return r
	}
	r.HTTP1, r.HTTP2, r.TLS, r.TunnelHTTP1 = app.HTTP1, app.HTTP2, app.TLS, app.TunnelHTTP1
	if len(app.Calls) > 0 {
		g := &GRPCSummary{Calls: len(app.Calls), Status: map[string]int{}}
		for _, call := range app.Calls {
			g.Status[call.ClientStatus]++
		}
		r.GRPC = g
	}
	if app.Tunnel != 0 {
		r.Tunnel = app.Tunnel.String()
	}
	if app.Decrypted != 0 {
		r.Decrypted = app.Decrypted.String()
	}
	return r
}

// WriteConnsJSON writes one JSON object per connection, one per line
// (NDJSON), in the order given, with controls escaped (newJSONEncoder).
func WriteConnsJSON(w io.Writer, conns []ConnRecord) error {
	enc := newJSONEncoder(w)
	for i := range conns {
		if err := enc.Encode(&conns[i]); err != nil {
			return err
		}
	}
	return nil
}

// WriteConnsTable writes a terminal table with one row per connection.
func WriteConnsTable(w io.Writer, conns []ConnRecord) error {
	t := newTable(w)
	t.Header("ID", "Client", "Server", "Proto", "First", "Dur (ms)", "Pkts c2s/s2c", "Bytes c2s/s2c",
		"State", "History", "Close", "RTT (ms)", "Retr", "ZWin", "Missed")
	for _, r := range conns {
		c := r.Summary
		rtt := "-"
		if c.HandshakeRTTMS != nil {
			rtt = strconv.FormatFloat(*c.HandshakeRTTMS, 'f', 3, 64)
		}
		if err := t.Append(
			strconv.Itoa(int(c.ID)), r.clientLabel(), c.Server.String(), r.protoLabel(),
			strconv.FormatUint(c.FirstFrame, 10),
			strconv.FormatFloat(c.DurationMS, 'f', 1, 64),
			fmt.Sprintf("%d/%d", c.Packets.C2S, c.Packets.S2C),
			fmt.Sprintf("%d/%d", c.Bytes.C2S, c.Bytes.S2C),
			c.ConnState, c.History, string(c.Close), rtt,
			strconv.Itoa(c.Retransmissions), strconv.Itoa(c.ZeroWindows),
			strconv.FormatUint(c.MissedBytes, 10),
		); err != nil {
			return err
		}
	}
	return t.Render()
}

// clientLabel is the client's address, marked " ?" when which side is
// the client was guessed.
func (r *ConnRecord) clientLabel() string {
	if r.ClientGuessed {
		return r.Client.String() + " ?"
	}
	return r.Client.String()
}

// protoLabel names a connection's protocols for the tables: the TCP
// payload's, then the tunnelled and decrypted ones ("tls>http2"), "-" when
// none was recognised.
func (r *ConnRecord) protoLabel() string {
	proto := r.Proto
	if r.Tunnel != "" {
		proto += ">" + r.Tunnel
	}
	if r.Decrypted != "" {
		proto += ">" + r.Decrypted
	}
	if proto == "" {
		proto = "-"
	}
	return proto
}

// newTable returns a table writer with headers printed as given.
func newTable(w io.Writer) *tablewriter.Table {
	return tablewriter.NewTable(w, tablewriter.WithHeaderAutoFormat(tw.Off))
}
