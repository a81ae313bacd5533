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
// optional fields with omitempty so that older files stay valid. Addresses
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
}

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
	// C2SBytes is the number of bytes the client wrote to the socket.
	C2SBytes int64 `json:"c2s_bytes"`
	// S2CBytes is the number of bytes the server wrote to the socket.
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
}

// Expect holds values a test can assert without recomputing them.
type Expect struct {
	// Frames is the number of frames in the pcapng.
	Frames int `json:"frames"`
	// TCPConnections is the number of TCP connections (SYNs without ACK,
	// one per connection: loopback retransmits none).
	TCPConnections int `json:"tcp_connections"`
	// HTTPRequests is the number of HTTP requests (and responses).
	HTTPRequests int `json:"http_requests"`
	// C2SBytes and S2CBytes sum the bytes the programs wrote, over all
	// connections, client to server and server to client.
	C2SBytes int64 `json:"c2s_bytes"`
	// S2CBytes: see C2SBytes.
	S2CBytes int64 `json:"s2c_bytes"`
	// Retransmissions counts repeated data segments (OpRetransmit).
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
