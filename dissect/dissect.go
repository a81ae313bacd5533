// Package dissect turns capture files into typed units: it wires capture
// reading, link-layer decoding, TCP tracking and the protocol dissectors
// below it into one pass over the input.
package dissect

import "github.com/h2scope/h2scope/dissect/event"

// Error is a fault located in the input; see event.Error.
type Error = event.Error
