// Package truth is the schema of the NAME.truth.json files that capgen writes
// next to each NAME.pcapng in testdata/pcaps.
//
// # What a truth file holds
//
// A truth file records what the Go programs that produced a capture observed
// themselves — the client's httptrace.GotConn (local address, Reused), the
// bytes each side wrote to its socket, the server's ConnState hooks, and
// which side shut its socket down first — never what a dissector makes of
// the packets. Tests read it to check dissectors and analyzers against the
// programs' own view.
//
// # Extending it
//
// Fields are added, never renamed. Later scenarios (HTTP/2, gRPC, TLS) add
// optional fields with omitempty so that older files stay valid: the
// HTTP/2 and gRPC scenarios add HTTP2, GRPCCalls, Derivation.Cut and the
// HTTP/2 and gRPC fields of Expect, all absent from HTTP/1 files.
//
// # HTTP/2 and gRPC
//
// For scenarios over HTTP/2 the server wraps every accepted connection in
// a wire tee: each byte it reads or writes is also fed, in the order the
// server saw it, to an http2.Framer in another goroutine (the client's
// 24-byte preface skipped). HTTP2 is that parse: frames by type and
// direction, SETTINGS, RST_STREAM and GOAWAY with their codes, and per
// stream the DATA bytes, header blocks and gRPC length-prefixed messages.
// It is the server's observation of its own wire, not a dissection of the
// capture; capgen checks the two agree before writing a capture. GRPCCalls
// joins, per call, what the gRPC client and server programs observed
// (grpc-go stats handlers, returned statuses) with the wire.
//
// Frame type names are RFC 9113's ("DATA", "HEADERS", "RST_STREAM", ...),
// error codes too ("CANCEL", "NO_ERROR"), and gRPC status codes are the
// gRPC specification's upper-case names ("OK", "NOT_FOUND",
// "DEADLINE_EXCEEDED"). Addresses
// are "IP:port" strings as net.Addr.String gives them. A connection is
// named by its id: its client address alone is not enough, since the
// kernel may reuse the port of a connection that just closed (the n-th
// connection from a client port is the n-th SYN from that port).
package truth

import (
	"encoding/json"
	"fmt"
	"os"
)

// Truth is the content of one NAME.truth.json file.
type Truth struct {
	// Scenario is NAME: the capture is NAME.pcapng in the same directory.
	Scenario string `json:"scenario"`
	// Description says in a sentence or two what the programs did.
	Description string `json:"description"`
	// DerivedFrom is set when the capture is not a live capture but a
	// deterministic rewrite of one; nil for live captures.
	DerivedFrom *Derivation `json:"derived_from,omitempty"`
	// Server is the server's listening address, "127.0.0.1:PORT".
	Server string `json:"server"`
	// Capture describes how the packets were captured.
	Capture Capture `json:"capture"`
	// Connections lists every TCP connection the client opened, in the
	// order the programs saw them open; Connections[i].ID is i+1.
	Connections []Connection `json:"connections"`
	// Requests lists every HTTP request the client made, in the order the
	// client started them (concurrent requests: in order of completion).
	Requests []Request `json:"requests"`
	// HTTP2 lists, for scenarios over HTTP/2, each connection's HTTP/2
	// frames as the server's wire tee parsed them, in connection order.
	HTTP2 []HTTP2Conn `json:"http2,omitempty"`
	// GRPCCalls lists every gRPC call, in the order the clients started
	// them (ID order).
	GRPCCalls []GRPCCall `json:"grpc_calls,omitempty"`
	// Settings lists the settings of the programs that the scenario is
	// about, by their Go name ("http.Server.IdleTimeout") and value as Go
	// prints it ("600ms"); absent when the scenario has none worth naming.
	Settings map[string]string `json:"settings,omitempty"`
	// Stack is set when other stacks' programs (nginx, nghttpd, curl,
	// h2load, python-h2, openssl, haproxy) made the capture rather than
	// capgen's Go programs: what ran and what each reported. Such truth
	// files live in testdata/pcaps/stacks; see Stack.
	Stack *Stack `json:"stack,omitempty"`
	// Expect holds aggregate values a test can assert directly.
	Expect Expect `json:"expect"`
}

// Capture describes the live capture a file comes from.
type Capture struct {
	// Interface is the interface captured on, "lo".
	Interface string `json:"interface"`
	// LinkType is the link type of the file, "ethernet".
	LinkType string `json:"link_type"`
	// Snaplen is the capture length limit; no packet was truncated.
	Snaplen int `json:"snaplen"`
	// MSS is the TCP_MAXSEG set on the client and listening sockets
	// (0: the kernel default, about 65483 on lo).
	MSS int `json:"mss"`
	// SockBuf is the SO_RCVBUF and SO_SNDBUF of the programs' sockets
	// (0: kernel autotuning, which on lo briefly closes the window).
	SockBuf int `json:"sock_buf"`
	// Segmented is true when frames were split after capture into
	// segments of at most MSS (less TCP options), as a NIC doing TCP
	// segmentation offload would send them, with IPv4 and TCP checksums
	// recomputed in every frame. Loopback hands the capture GSO
	// super-segments of up to 64 KB whatever the MSS; without
	// segmentation frames may be that large and TCP checksums are
	// left partial by the kernel.
	Segmented bool `json:"segmented"`
	// Go is the Go version of the programs, as runtime.Version reports.
	Go string `json:"go"`
	// KeyLog is, for TLS scenarios, the name of the key log that decrypts
	// the capture, NAME.keys in the same directory, or "embedded" when the
	// key log is in a pcapng Decryption Secrets Block (secrets type TLSK)
	// before the first packet. Empty for captures without TLS.
	KeyLog string `json:"keylog,omitempty"`
}

// KeyLogEmbedded is the value of Capture.KeyLog when the key log is in the
// capture itself.
const KeyLogEmbedded = "embedded"

// Derivation says how a derived capture was made from a live one.
type Derivation struct {
	// Scenario names the live capture the file was derived from. It need
	// not be committed: capgen recaptures it in memory.
	Scenario string `json:"scenario"`
	// How describes the rewrite in words.
	How string `json:"how"`
	// Seed is the seed of the deterministic choice of packets.
	Seed uint64 `json:"seed"`
	// BaseFrames is the number of frames of the live capture.
	BaseFrames int `json:"base_frames"`
	// Edits lists every change, in the order of the original frames.
	Edits []Edit `json:"edits"`
	// Cut is set when the derived capture starts mid-connection: the
	// first frames of the base capture were dropped.
	Cut *Cut `json:"cut,omitempty"`
}

// Cut describes the frames a mid-connection capture lacks: a prefix of the
// base capture holding the handshake, the client preface, the first
// SETTINGS and the first header blocks with their HPACK dynamic-table
// insertions. Everything after the cut is kept as it was.
type Cut struct {
	// Conn is the ID of the connection cut.
	Conn int `json:"conn"`
	// DroppedFrames are the 1-based numbers, in the base capture, of the
	// frames dropped: 1 to len(DroppedFrames).
	DroppedFrames []int `json:"dropped_frames"`
	// Dirs describes the cut in each direction, c2s then s2c.
	Dirs []CutDir `json:"dirs"`
}

// CutDir is one direction of a Cut.
type CutDir struct {
	// Dir is "c2s" or "s2c".
	Dir string `json:"dir"`
	// Bytes is the number of TCP payload bytes of this direction in the
	// dropped frames (for c2s, the 24-byte client preface included).
	Bytes int64 `json:"bytes"`
	// Seq is the raw TCP sequence number of the first payload byte of
	// this direction in the capture.
	Seq uint32 `json:"seq"`
	// ResyncFrame is the 1-based capture frame holding the header of the
	// first whole HTTP/2 frame of this direction, and ResyncOffset its
	// offset in that frame's TCP payload. Payload before it belongs to an
	// HTTP/2 frame that began before the capture. 0 if there is none.
	ResyncFrame int `json:"resync_frame"`
	// ResyncOffset: see ResyncFrame.
	ResyncOffset int `json:"resync_offset"`
	// PartialBytes is the number of bytes before the first whole HTTP/2
	// frame: the tail of a frame that began before the capture.
	PartialBytes int64 `json:"partial_bytes"`
	// DroppedHTTP2 counts by type the HTTP/2 frames whose 9-byte header
	// lies before the capture (including one cut in two).
	DroppedHTTP2 map[string]int `json:"dropped_http2"`
	// DroppedHeaderStreams lists the stream of each header block sent in
	// this direction whose frames were dropped, in order.
	DroppedHeaderStreams []uint32 `json:"dropped_header_streams"`
	// TableInserts is the number of HPACK dynamic-table insertions made by
	// the dropped header blocks of this direction: a decoder reading the
	// capture lacks these entries, and header blocks that refer to them
	// (see HTTP2Stream.UndecodableHeaderBlocks) cannot be decoded.
	TableInserts int `json:"table_inserts"`
}

// Edit kinds, the values of Edit.Op.
const (
	// OpReorder swaps two adjacent data segments of one direction of one
	// connection: the later segment arrives first.
	OpReorder = "reorder"
	// OpRetransmit repeats a data segment, same bytes, a few frames later.
	OpRetransmit = "retransmit"
	// OpDrop removes a data segment whose bytes are never sent again: the
	// receiver's byte stream has a gap of Len bytes.
	OpDrop = "drop"
)

// Edit is one change a derivation made.
type Edit struct {
	// Op is OpReorder, OpRetransmit or OpDrop.
	Op string `json:"op"`
	// Frames are the 1-based frame numbers, in the base capture, of the
	// segments concerned: two for OpReorder (in original order), one
	// otherwise.
	Frames []int `json:"frames"`
	// NewFrames are the 1-based frame numbers in the derived capture:
	// for OpReorder, the new numbers of Frames[0] and Frames[1]; for
	// OpRetransmit, the original segment and then its copy; empty for OpDrop.
	NewFrames []int `json:"new_frames"`
	// Conn is the ID of the connection.
	Conn int `json:"conn"`
	// Client is the connection's client address.
	Client string `json:"client"`
	// Dir is "c2s" (client to server) or "s2c".
	Dir string `json:"dir"`
	// Seq is the raw (absolute) TCP sequence number of the first segment
	// concerned.
	Seq uint32 `json:"seq"`
	// Len is the TCP payload length of the segments concerned, summed.
	Len int `json:"len"`
}

// Connection is one TCP connection as the programs saw it.
type Connection struct {
	// ID numbers the connection from 1, in the order of Truth.Connections.
	ID int `json:"id"`
	// Client is the client's local address, "127.0.0.1:PORT".
	Client string `json:"client"`
	// Server is the server address the client dialed.
	Server string `json:"server"`
	// Phase names the part of the scenario that dialed the connection.
	Phase string `json:"phase,omitempty"`
	// Requests is the number of HTTP requests the client sent on it
	// (httptrace.GotConn with this local address).
	Requests int `json:"requests"`
	// ServerRequests is the number of requests the server's ConnState
	// hook saw start on it (transitions to StateActive).
	ServerRequests int `json:"server_requests"`
	// C2SBytes is the number of bytes the client wrote to the socket. In
	// a capture cut mid-connection (Derivation.Cut) it counts only the
	// bytes inside the capture; BeforeCapture holds the rest.
	C2SBytes int64 `json:"c2s_bytes"`
	// S2CBytes is the number of bytes the server wrote to the socket
	// (inside the capture only, as C2SBytes, when cut).
	S2CBytes int64 `json:"s2c_bytes"`
	// ClosedBy is the side that shut its socket down first: "client",
	// "server", or "" when the two did it at the same moment. A side that
	// read end-of-file before shutting down did not close first.
	ClosedBy string `json:"closed_by"`
	// ServerStates is the sequence of http.ConnState values the server
	// reported, e.g. "new active idle active idle closed".
	ServerStates string `json:"server_states"`
	// MissedBytes is, per direction, the number of payload bytes the
	// capture lacks (derived captures with OpDrop edits only).
	MissedBytes *Bytes `json:"missed_bytes,omitempty"`
	// BeforeCapture is, per direction, the number of bytes the programs
	// wrote before the first frame of a capture cut mid-connection
	// (Derivation.Cut); C2SBytes and S2CBytes count the rest.
	BeforeCapture *Bytes `json:"before_capture,omitempty"`
	// TLS describes the connection's TLS handshake; nil for connections
	// without TLS.
	TLS *TLS `json:"tls,omitempty"`
	// FailedRequests counts the requests the client wrote on this
	// connection that got no answer because the server had closed it
	// (net/http's Transport then retries an idempotent request on another
	// connection: see Request.FailedAttempts). They are not in Requests.
	FailedRequests int `json:"failed_requests,omitempty"`
	// ResetBy is the side whose RST ended the connection, as the other
	// side's Read or Write reported it (ECONNRESET): a socket closed with
	// unread data sends a RST instead of a FIN. "" if neither side saw one.
	// When it is ClosedBy, that side's first closing segment is the RST
	// and it may never send a FIN.
	ResetBy string `json:"reset_by,omitempty"`
	// RcvBuf is the SO_RCVBUF the client set on this connection when it
	// is not Capture.SockBuf (the kernel doubles it); 0 otherwise.
	RcvBuf int `json:"rcv_buf,omitempty"`
	// Dial is how the client's connect ended when it did not succeed:
	// DialRefused or DialTimeout; "" when the connection was established.
	// A connection that never opened has no bytes and no requests.
	Dial string `json:"dial,omitempty"`
	// SYNRetransmits is the number of times the client's kernel sent its
	// SYN again (TCP_INFO tcpi_total_retrans read by the client right
	// after connect returned or failed); the capture holds 1 +
	// SYNRetransmits SYNs for the connection.
	SYNRetransmits int `json:"syn_retransmits,omitempty"`
}

// Values of Connection.Dial.
const (
	// DialRefused: the server answered the SYN with a RST
	// (ECONNREFUSED).
	DialRefused = "refused"
	// DialTimeout: the client gave up before any SYN was answered.
	DialTimeout = "timeout"
)

// TLS is one connection's TLS handshake as the client and server programs
// observed it.
type TLS struct {
	// SNI is the server name the client sent (tls.Config.ServerName).
	SNI string `json:"sni"`
	// OfferedALPN lists the protocols the client offered, in order.
	OfferedALPN []string `json:"offered_alpn,omitempty"`
	// HandshakeComplete is the client's ConnectionState().HandshakeComplete.
	HandshakeComplete bool `json:"handshake_complete"`
	// Version is the negotiated version as tls.VersionName gives it ("TLS
	// 1.3", "TLS 1.2"); "" if the handshake failed before the client read
	// the ServerHello.
	Version string `json:"version,omitempty"`
	// CipherSuite is the negotiated cipher suite as tls.CipherSuiteName
	// gives it; "" if none was negotiated.
	CipherSuite string `json:"cipher_suite,omitempty"`
	// ALPN is the negotiated application protocol ("h2", "http/1.1"), ""
	// if none.
	ALPN string `json:"alpn,omitempty"`
	// CachedSession is true when the client's tls.ClientSessionCache
	// returned a session for this server when the handshake began.
	CachedSession bool `json:"cached_session"`
	// OfferedResumption is true when the ClientHello, as the client wrote
	// it to its socket, offered to resume a session: a TLS 1.3
	// pre_shared_key extension, or a non-empty TLS 1.2 session_ticket
	// extension.
	OfferedResumption bool `json:"offered_resumption"`
	// DidResume is the client's ConnectionState().DidResume: the server
	// accepted the offered session (an abbreviated handshake).
	DidResume bool `json:"did_resume"`
	// ResumedFrom is, for a resumed TLS 1.2 connection, the ID of the
	// connection whose NewSessionTicket carried the ticket the client
	// offered (the ticket bytes match): the resumed session's master
	// secret is that connection's. 0 otherwise.
	ResumedFrom int `json:"resumed_from,omitempty"`
	// KeyLogged is true when the key log has secrets for this
	// connection's client random. Go's crypto/tls logs TLS 1.3
	// handshakes, full and resumed, but TLS 1.2 ones only when full
	// (CLIENT_RANDOM): a resumed TLS 1.2 connection is decrypted with
	// the master secret of the connection it resumed (ResumedFrom).
	KeyLogged bool `json:"key_logged"`
	// ServerDidResume is the server's ConnectionState().DidResume; it
	// equals DidResume whenever the server completed its handshake.
	ServerDidResume bool `json:"server_did_resume"`
	// ServerTickets is the server's ticket policy for this connection:
	// "stable" (the keys of earlier connections), "rotated" (fresh
	// ticket keys set just before this connection: tickets issued
	// earlier cannot be decrypted) or "disabled"
	// (tls.Config.SessionTicketsDisabled).
	ServerTickets string `json:"server_tickets,omitempty"`
	// Alert is the fatal alert that ended the handshake, if any.
	Alert *TLSAlert `json:"alert,omitempty"`
	// ClientError is the client's handshake error text, "" on success.
	ClientError string `json:"client_error,omitempty"`
	// ServerError is the server's handshake error text, "" on success.
	ServerError string `json:"server_error,omitempty"`
}

// TLSAlert is a fatal TLS alert: the side that sent it is the side whose
// handshake failed first, and the other side's error reports it as a
// "remote error".
type TLSAlert struct {
	// From is the side that sent it: "client" or "server".
	From string `json:"from"`
	// Description is the alert's name ("bad_certificate",
	// "no_application_protocol").
	Description string `json:"description"`
	// Code is the alert's AlertDescription value (42, 120).
	Code int `json:"code"`
	// Encrypted is true when the alert went in an encrypted record (TLS
	// 1.3 after the ServerHello: its content type on the wire is
	// application_data), so only a key log reveals it.
	Encrypted bool `json:"encrypted"`
}

// Bytes is a byte count per direction.
type Bytes struct {
	// C2S counts bytes from client to server.
	C2S int64 `json:"c2s"`
	// S2C counts bytes from server to client.
	S2C int64 `json:"s2c"`
}

// Request is one HTTP request as the client saw it.
type Request struct {
	// Conn is the ID of the connection that carried it.
	Conn int `json:"conn"`
	// ConnClient is the client address of the connection that carried it.
	ConnClient string `json:"conn_client"`
	// Reused is httptrace.GotConnInfo.Reused.
	Reused bool `json:"reused"`
	// Phase names the part of the scenario that made the request.
	Phase string `json:"phase,omitempty"`
	// Method is the request method.
	Method string `json:"method"`
	// Path is the request path with any query.
	Path string `json:"path"`
	// Status is the response status code; 0 if there was no response.
	Status int `json:"status"`
	// ReqBytes is the length of the request body.
	ReqBytes int64 `json:"req_bytes"`
	// RespBytes is the number of response body bytes the client read.
	RespBytes int64 `json:"resp_bytes"`
	// Error is the client's error text, "" on success.
	Error string `json:"error"`
	// Proto is the response's protocol, "HTTP/2.0" for HTTP/2 requests;
	// empty in HTTP/1 scenarios.
	Proto string `json:"proto,omitempty"`
	// Stream is the HTTP/2 stream that carried the request (the client
	// adds a capgen-request header, which the server's wire tee reads).
	Stream uint32 `json:"stream,omitempty"`
	// SlowRead is true when the client read the response body slowly
	// (ReadChunk bytes every ReadPauseMS milliseconds).
	SlowRead bool `json:"slow_read,omitempty"`
	// ReadChunk: see SlowRead.
	ReadChunk int `json:"read_chunk,omitempty"`
	// ReadPauseMS: see SlowRead.
	ReadPauseMS int `json:"read_pause_ms,omitempty"`
	// InCapture is "" when the request's stream is wholly inside the
	// capture, "partial" when some of its HTTP/2 frames were cut off
	// (Derivation.Cut) and "none" when all were.
	InCapture string `json:"in_capture,omitempty"`
	// FailedAttempts lists the earlier attempts of a request the client's
	// transport retried by itself (net/http retries an idempotent request
	// whose reused connection the server closed under it), in order; Conn
	// is the connection of the attempt that got the response.
	FailedAttempts []Attempt `json:"failed_attempts,omitempty"`
	// StoppedReadingMS is, for a client that stopped reading the
	// response, how long it read nothing after writing the request.
	StoppedReadingMS int `json:"stopped_reading_ms,omitempty"`
	// IdleGapMS is the time, in milliseconds, between the end of the
	// client's previous request and this one's start, when the scenario
	// is about idle gaps.
	IdleGapMS float64 `json:"idle_gap_ms,omitempty"`
}

// Attempt is one attempt of a request that failed, as the client's
// httptrace hooks saw it.
type Attempt struct {
	// Conn is the ID of the connection the attempt used.
	Conn int `json:"conn"`
	// ConnClient is its client address.
	ConnClient string `json:"conn_client"`
	// Reused is httptrace.GotConnInfo.Reused.
	Reused bool `json:"reused"`
	// IdleMS is httptrace.GotConnInfo.IdleTime in milliseconds: how long
	// the connection had been idle in the client's pool.
	IdleMS float64 `json:"idle_ms"`
	// Wrote is true when httptrace.WroteRequest reported the request
	// written without error; WriteError holds its error otherwise.
	Wrote bool `json:"wrote"`
	// WriteError: see Wrote.
	WriteError string `json:"write_error,omitempty"`
}

// Values of Request.InCapture and GRPCCall.InCapture.
const (
	// InCapturePartial: some of the stream's frames are before the capture.
	InCapturePartial = "partial"
	// InCaptureNone: all of the stream's frames are before the capture.
	InCaptureNone = "none"
)

// PerDir is a count per direction.
type PerDir struct {
	// C2S counts client to server.
	C2S int `json:"c2s"`
	// S2C counts server to client.
	S2C int `json:"s2c"`
}

// HTTP2Conn is one connection's HTTP/2 frames as the server's wire tee
// parsed them. In a capture cut mid-connection it holds only what is
// inside the capture: frames whose 9-byte header is in the capture.
type HTTP2Conn struct {
	// Conn is the connection ID.
	Conn int `json:"conn"`
	// Preface is true when the client's 24-byte connection preface is in
	// the capture.
	Preface bool `json:"preface"`
	// Frames counts the frames by type name, per direction.
	Frames FrameCounts `json:"frames"`
	// Settings lists the SETTINGS frames that are not acknowledgements,
	// in order.
	Settings []HTTP2Settings `json:"settings"`
	// Streams lists the streams with a frame in the capture, by ID.
	Streams []HTTP2Stream `json:"streams"`
	// Resets lists the RST_STREAM frames, in order.
	Resets []HTTP2Reset `json:"resets"`
	// GoAways lists the GOAWAY frames, in order.
	GoAways []HTTP2GoAway `json:"goaways"`
	// Flow describes when the senders' flow-control windows ran out.
	Flow FlowControl `json:"flow"`
}

// FrameCounts counts HTTP/2 frames by type name per direction.
type FrameCounts struct {
	// C2S counts frames from client to server.
	C2S map[string]int `json:"c2s"`
	// S2C counts frames from server to client.
	S2C map[string]int `json:"s2c"`
}

// HTTP2Settings is one SETTINGS frame (not an ACK).
type HTTP2Settings struct {
	// Dir is "c2s" or "s2c".
	Dir string `json:"dir"`
	// Values maps each setting by name (e.g. "INITIAL_WINDOW_SIZE") to
	// its value; a setting sent twice keeps the last value.
	Values map[string]uint32 `json:"values"`
}

// HTTP2Reset is one RST_STREAM frame.
type HTTP2Reset struct {
	// Dir is "c2s" (the client reset the stream) or "s2c".
	Dir string `json:"dir"`
	// Stream is the stream ID.
	Stream uint32 `json:"stream"`
	// Code is the error code name, e.g. "CANCEL".
	Code string `json:"code"`
}

// HTTP2GoAway is one GOAWAY frame.
type HTTP2GoAway struct {
	// Dir is "c2s" or "s2c".
	Dir string `json:"dir"`
	// LastStream is the last-stream-id field.
	LastStream uint32 `json:"last_stream"`
	// Code is the error code name, e.g. "NO_ERROR".
	Code string `json:"code"`
	// Debug is the additional debug data, as text.
	Debug string `json:"debug,omitempty"`
}

// HTTP2Stream is one stream as the server's wire tee saw it.
type HTTP2Stream struct {
	// ID is the stream ID.
	ID uint32 `json:"id"`
	// Request is the 1-based index in Truth.Requests of the HTTP request
	// the stream carried; 0 for gRPC calls.
	Request int `json:"request,omitempty"`
	// Call is the ID of the gRPC call the stream carried; 0 if none.
	Call int `json:"call,omitempty"`
	// Method and Path are the request's :method and :path.
	Method string `json:"method"`
	// Path: see Method.
	Path string `json:"path"`
	// Status is the response's :status; "" if no response headers were
	// sent.
	Status string `json:"status,omitempty"`
	// HeaderBlocks counts header blocks (HEADERS and its CONTINUATIONs).
	HeaderBlocks PerDir `json:"header_blocks"`
	// UndecodableHeaderBlocks counts, in a capture cut mid-connection,
	// the header blocks in the capture that refer to HPACK dynamic-table
	// entries inserted before it (directly, or through an entry whose name
	// came from one): a decoder starting at the cut cannot decode them.
	UndecodableHeaderBlocks PerDir `json:"undecodable_header_blocks"`
	// DataFrames counts DATA frames.
	DataFrames PerDir `json:"data_frames"`
	// DataBytes sums the DATA frames' data, padding excluded (the
	// programs never pad).
	DataBytes PerDir `json:"data_bytes"`
	// EndStream tells per direction whether a frame with END_STREAM was
	// sent: 1 if so, 0 if not.
	EndStream PerDir `json:"end_stream"`
	// Reset is the error code of the first RST_STREAM on the stream, ""
	// if none.
	Reset string `json:"reset,omitempty"`
	// WindowZero counts, per sending direction, the DATA frames without
	// END_STREAM after which the stream's flow-control window was 0.
	WindowZero PerDir `json:"window_zero"`
	// Partial is true when some of the stream's frames are before the
	// capture (Derivation.Cut).
	Partial bool `json:"partial,omitempty"`
}

// FlowControl summarises the flow-control stalls of one connection, per
// sending direction, computed by the server's wire tee from the frames in
// the order the server read and wrote them: windows start at 65,535 and
// follow SETTINGS_INITIAL_WINDOW_SIZE, DATA (frame length, padding
// included) and WINDOW_UPDATE.
type FlowControl struct {
	// C2S is the client's sending.
	C2S Stalls `json:"c2s"`
	// S2C is the server's sending.
	S2C Stalls `json:"s2c"`
}

// Stalls counts a sender's flow-control windows reaching 0.
type Stalls struct {
	// StreamZero counts DATA frames without END_STREAM after which the
	// stream's window was 0.
	StreamZero int `json:"stream_zero"`
	// ConnZero counts DATA frames without END_STREAM after which the
	// connection's window was 0.
	ConnZero int `json:"conn_zero"`
	// LongestMS is the longest time, in milliseconds, from a DATA frame
	// leaving a window at 0 to the WINDOW_UPDATE that reopened it.
	LongestMS float64 `json:"longest_ms"`
	// TotalMS sums those times over the windows (stream or connection)
	// at 0, counting overlaps once per window.
	TotalMS float64 `json:"total_ms"`
}

// gRPC call kinds, the values of GRPCCall.Kind.
const (
	// GRPCUnary is a unary call.
	GRPCUnary = "unary"
	// GRPCServerStream is a server-streaming call.
	GRPCServerStream = "server_stream"
	// GRPCClientStream is a client-streaming call.
	GRPCClientStream = "client_stream"
	// GRPCBidi is a bidirectional-streaming call.
	GRPCBidi = "bidi"
)

// GRPCCall is one gRPC call as the client, the server and the server's
// wire tee observed it.
type GRPCCall struct {
	// ID numbers the calls from 1; the client sends it as the capgen-call
	// request header.
	ID int `json:"id"`
	// Conn is the ID of the connection that carried it.
	Conn int `json:"conn"`
	// Stream is the HTTP/2 stream ID; 0 if the call never reached the
	// server.
	Stream uint32 `json:"stream"`
	// Phase names the part of the scenario that made the call.
	Phase string `json:"phase,omitempty"`
	// Client names the client: "grpc-go", or "x/net/http2" for calls
	// made by hand over golang.org/x/net/http2's Transport.
	Client string `json:"client"`
	// Method is the full method, "/package.Service/Method" (the :path).
	Method string `json:"method"`
	// Kind is GRPCUnary, GRPCServerStream, GRPCClientStream or GRPCBidi.
	Kind string `json:"kind"`
	// TimeoutMS is the client's deadline for the call in milliseconds; 0
	// if none.
	TimeoutMS int `json:"timeout_ms,omitempty"`
	// GRPCTimeout is the grpc-timeout request header on the wire.
	GRPCTimeout string `json:"grpc_timeout,omitempty"`
	// Compression is the grpc-encoding of the request ("gzip"), "" for
	// identity.
	Compression string `json:"compression,omitempty"`
	// Cancelled is true when the client cancelled the call (not by a
	// deadline).
	Cancelled bool `json:"cancelled,omitempty"`
	// Code and Message are the status the client observed.
	Code string `json:"code"`
	// Message: see Code (decoded, not percent-encoded).
	Message string `json:"message,omitempty"`
	// ServerCode is the status the server's handler returned, as the
	// server's stats handler reported it; "" if it never ran.
	ServerCode string `json:"server_code,omitempty"`
	// WireStatus is the grpc-status the server sent on the wire, by name;
	// "" if it sent none (the stream was reset first).
	WireStatus string `json:"wire_status,omitempty"`
	// WireMessage is the grpc-message on the wire, percent-encoded as
	// sent.
	WireMessage string `json:"wire_message,omitempty"`
	// TrailersOnly is true when the response was a single header block
	// with END_STREAM (status without response headers or messages).
	TrailersOnly bool `json:"trailers_only,omitempty"`
	// C2S and S2C describe the request and response messages.
	C2S GRPCMessages `json:"c2s"`
	// S2C: see C2S.
	S2C GRPCMessages `json:"s2c"`
	// InCapture is as Request.InCapture.
	InCapture string `json:"in_capture,omitempty"`
}

// GRPCMessages describes the messages of one direction of a call.
type GRPCMessages struct {
	// Sent is the number of messages the sending program sent.
	Sent int `json:"sent"`
	// Received is the number of messages the receiving program received.
	Received int `json:"received"`
	// Wire is the number of whole length-prefixed messages on the wire
	// (in the capture, when cut).
	Wire int `json:"wire"`
	// Sizes is the length of each message the sender sent, uncompressed,
	// without the 5-byte prefix.
	Sizes []int `json:"sizes"`
	// WireSizes is the length field of each message on the wire, set
	// only when some message was compressed.
	WireSizes []int `json:"wire_sizes,omitempty"`
	// Compressed counts messages on the wire with the compressed flag.
	Compressed int `json:"compressed,omitempty"`
	// MultiMessageFrames counts the DATA frames in which two or more of
	// these messages begin.
	MultiMessageFrames int `json:"multi_message_frames,omitempty"`
	// Split counts the messages (prefix included) spread over more than
	// one DATA frame.
	Split int `json:"split,omitempty"`
}

// Expect holds values a test can assert without recomputing them.
type Expect struct {
	// Frames is the number of frames in the pcapng.
	Frames int `json:"frames"`
	// TCPConnections is the number of TCP connections (SYNs without ACK,
	// one per connection: loopback retransmits none; a connection cut by
	// Derivation.Cut has none).
	TCPConnections int `json:"tcp_connections"`
	// HTTPRequests is the number of HTTP requests (and responses) in
	// Requests, less those whose InCapture is "none". gRPC calls are
	// counted in GRPCCalls instead.
	HTTPRequests int `json:"http_requests"`
	// C2SBytes and S2CBytes sum the bytes the programs wrote, over all
	// connections, client to server and server to client.
	C2SBytes int64 `json:"c2s_bytes"`
	// S2CBytes: see C2SBytes.
	S2CBytes int64 `json:"s2c_bytes"`
	// Retransmissions counts repeated segments: the data segments a
	// derivation repeated (OpRetransmit) and, in live captures, the SYNs
	// the clients' kernels sent again (Connection.SYNRetransmits).
	Retransmissions int `json:"retransmissions"`
	// OutOfOrder counts segments arriving before an earlier one (OpReorder).
	OutOfOrder int `json:"out_of_order"`
	// LostSegments counts segments missing from the capture (OpDrop).
	LostSegments int `json:"lost_segments"`
	// LostBytes sums the payload of the lost segments.
	LostBytes int64 `json:"lost_bytes"`
	// Findings are the finding kinds at warning or above the scenario was
	// built to provoke; empty means h2scope should find nothing to warn about.
	Findings []string `json:"findings"`

	// HTTP2Streams is the number of HTTP/2 streams with a frame in the
	// capture.
	HTTP2Streams int `json:"http2_streams,omitempty"`
	// HTTP2Frames counts the HTTP/2 frames in the capture by type name,
	// both directions and all connections together.
	HTTP2Frames map[string]int `json:"http2_frames_by_type,omitempty"`
	// RSTStreamCodes counts RST_STREAM frames by error code name.
	RSTStreamCodes map[string]int `json:"rst_stream_codes,omitempty"`
	// GoAwayCodes counts GOAWAY frames by error code name.
	GoAwayCodes map[string]int `json:"goaway_codes,omitempty"`
	// WindowZero counts, per sending direction, DATA frames after which a
	// stream or connection window was 0 (FlowControl's StreamZero plus
	// ConnZero).
	WindowZero *PerDir `json:"window_zero,omitempty"`
	// UndecodableHeaderBlocks counts header blocks in a capture cut
	// mid-connection that cannot be decoded (see HTTP2Stream).
	UndecodableHeaderBlocks int `json:"undecodable_header_blocks,omitempty"`
	// GRPCCalls is the number of gRPC calls with a frame in the capture.
	GRPCCalls int `json:"grpc_calls,omitempty"`
	// GRPCMessages counts whole gRPC messages on the wire per direction.
	GRPCMessages *PerDir `json:"grpc_messages,omitempty"`
	// GRPCStatus counts the grpc-status values on the wire by name, from
	// header blocks in the capture; calls reset before their status was
	// sent have none. In a capture cut mid-connection some of these blocks
	// may be undecodable (see HTTP2Stream.UndecodableHeaderBlocks).
	GRPCStatus map[string]int `json:"grpc_status,omitempty"`
	// GRPCMultiMessageFrames counts DATA frames in which two or more gRPC
	// messages begin, per direction.
	GRPCMultiMessageFrames *PerDir `json:"grpc_multi_message_frames,omitempty"`
	// GRPCSplitMessages counts gRPC messages spread over more than one
	// DATA frame, per direction.
	GRPCSplitMessages *PerDir `json:"grpc_split_messages,omitempty"`

	// TLSHandshakes counts the connections whose TLS handshake completed.
	TLSHandshakes int `json:"tls_handshakes,omitempty"`
	// TLSResumed counts the handshakes that resumed a session
	// (TLS.DidResume).
	TLSResumed int `json:"tls_resumed,omitempty"`
	// TLSResumptionRejected counts the connections whose ClientHello
	// offered resumption but whose handshake was a full one.
	TLSResumptionRejected int `json:"tls_resumption_rejected,omitempty"`
	// TLSAlerts counts fatal alerts by description.
	TLSAlerts map[string]int `json:"tls_alerts,omitempty"`
}

// Load reads and decodes a truth file.
func Load(path string) (*Truth, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var t Truth
	if err := json.Unmarshal(b, &t); err != nil {
		return nil, fmt.Errorf("truth: %s: %w", path, err)
	}
	return &t, nil
}
