// Package event holds the vocabulary shared by every h2scope dissector and
// analyzer: where a unit sits in a capture (Ref), which way it travelled (Dir),
// which connection it belongs to (ConnID) and which protocol produced it
// (Proto). It imports nothing from the rest of h2scope.
package event

import (
	"fmt"
	"time"
)

// Ref locates a dissected unit in a capture, numbered as Wireshark numbers
// frames: Frame is 1-based over the merged packet sequence of all input files.
type Ref struct {
	// File is the 0-based index of the input file the frame came from.
	File int `json:"file"`
	// Frame is the 1-based frame number over the merged capture.
	Frame uint64 `json:"frame"`
	// TS is the capture timestamp of the frame.
	TS time.Time `json:"ts"`
}

// String returns "frame N".
func (r Ref) String() string { return fmt.Sprintf("frame %d", r.Frame) }

// Dir is the direction of a unit within a connection.
type Dir uint8

const (
	// C2S is client to server: the side that sent the first SYN, or the
	// side guessed to be the client when no SYN was seen.
	C2S Dir = iota
	// S2C is server to client.
	S2C
)

// Reverse returns the other direction.
func (d Dir) Reverse() Dir { return d ^ 1 }

// String returns "c2s" or "s2c", the names used in JSON output.
func (d Dir) String() string {
	if d == C2S {
		return "c2s"
	}
	return "s2c"
}

// ConnID identifies a TCP connection within one analysis run. IDs are 0-based
// and assigned in order of each connection's first frame, as Wireshark's
// tcp.stream is.
type ConnID uint32

// Proto names the protocol that produced a unit.
type Proto uint8

// Protocols, in the order the pipeline reaches them.
const (
	ProtoUnknown Proto = iota
	ProtoTCP
	ProtoTLS
	ProtoHTTP1
	ProtoHTTP2
	ProtoGRPC
)

var protoNames = [...]string{"unknown", "tcp", "tls", "http1", "http2", "grpc"}

// String returns the lower-case protocol name used in JSON output.
func (p Proto) String() string {
	if int(p) < len(protoNames) {
		return protoNames[p]
	}
	return fmt.Sprintf("proto(%d)", uint8(p))
}

// MarshalText encodes the direction as "c2s" or "s2c", so records that hold
// a Dir read the same in JSON as the rest of the output.
func (d Dir) MarshalText() ([]byte, error) { return []byte(d.String()), nil }

// Pair holds one count per direction.
type Pair struct {
	// C2S counts client to server.
	C2S uint64 `json:"c2s"`
	// S2C counts server to client.
	S2C uint64 `json:"s2c"`
}

// Add adds n to dir's count.
func (p *Pair) Add(dir Dir, n uint64) {
	if dir == C2S {
		p.C2S += n
	} else {
		p.S2C += n
	}
}

// Get returns dir's count.
func (p Pair) Get(dir Dir) uint64 {
	if dir == C2S {
		return p.C2S
	}
	return p.S2C
}
