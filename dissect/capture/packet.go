package capture

import (
	"github.com/gopacket/gopacket/layers"
	"github.com/h2scope/h2scope/dissect/event"
)

// Packet is one captured frame.
type Packet struct {
	// Ref locates the frame: input file index, 1-based frame number over the
	// merged sequence of all inputs, and capture timestamp.
	event.Ref
	// LinkType is the link-layer header type of the frame (per interface in
	// pcapng).
	LinkType layers.LinkType
	// Data holds the captured bytes. It is valid only until the next call to
	// Reader.Next.
	Data []byte
	// OrigLen is the length of the frame on the wire; it exceeds len(Data)
	// when the capture was taken with a snap length.
	OrigLen int
	// Offset is the byte offset of the frame's record in its (decompressed)
	// file.
	Offset int64
}
