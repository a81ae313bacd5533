package dissect

import (
	"github.com/h2scope/h2scope/dissect/event"
	"github.com/h2scope/h2scope/dissect/http2"
	"github.com/h2scope/h2scope/dissect/tcp"
)

// FlagNames names the flags of e (its Bits) as output shows them,
// joined by "|": the TCP analysis of a TCP event ("zero_window"), the
// frame flags of an HTTP/2 frame ("END_STREAM|END_HEADERS"); "" when it
// has none. Events carry flags typed, so that analysis compares
// constants; only output names them.
func FlagNames(e *event.Event) string {
	switch e.Proto {
	case event.ProtoTCP:
		if e.Bits != 0 {
			return tcp.Analysis(e.Bits).String()
		}
	case event.ProtoHTTP2:
		if e.Kind < http2.KindPreface {
			return http2.FrameType(e.Kind).FlagNames(http2.Flags(e.Bits))
		}
	}
	return ""
}
