package event

import (
	"errors"
	"fmt"
)

// Error is a fault located in the input: which file, and where in it.
// Its shape follows os.PathError: Err is the underlying cause and may be
// matched with errors.Is.
type Error struct {
	// File is the path of the capture file as the user gave it.
	File string
	// Frame is the 1-based frame number at fault, or 0 when the fault is not
	// inside a frame (a bad file header, say).
	Frame uint64
	// Offset is the byte offset in the (decompressed) file where the fault
	// was found, or -1 when unknown.
	Offset int64
	// Proto names the layer that found the fault ("pcap", "pcapng", "tcp").
	Proto string
	// Err is the cause.
	Err error
}

// Error formats the location first, then the cause:
// "cap.pcap: frame 12 (offset 4096): pcap: packet record truncated".
func (e *Error) Error() string {
	loc := e.File
	switch {
	case e.Frame > 0 && e.Offset >= 0:
		loc += fmt.Sprintf(": frame %d (offset %d)", e.Frame, e.Offset)
	case e.Frame > 0:
		loc += fmt.Sprintf(": frame %d", e.Frame)
	case e.Offset >= 0:
		loc += fmt.Sprintf(": offset %d", e.Offset)
	}
	if e.Proto != "" {
		return loc + ": " + e.Proto + ": " + e.Err.Error()
	}
	return loc + ": " + e.Err.Error()
}

// Unwrap returns the cause.
func (e *Error) Unwrap() error { return e.Err }

// Sentinel causes, for errors.Is.
var (
	// ErrTruncated reports a file that ends inside a record.
	ErrTruncated = errors.New("file truncated")
	// ErrFormat reports a file that is not a capture format h2scope reads.
	ErrFormat = errors.New("unrecognised capture format")
)
