package http2

import (
	"bytes"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/h2scope/h2scope/dissect/event"
	xhttp2 "golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
)

// wire builds one direction's bytes with x/net's Framer and a stateful
// hpack.Encoder, remembering where each frame starts.
type wire struct {
	t      testing.TB
	buf    bytes.Buffer
	fr     *xhttp2.Framer
	enc    *hpack.Encoder
	hb     bytes.Buffer
	starts []int // offset of each frame (and of the preface)
}

func newWire(t testing.TB, preface bool) *wire {
	w := &wire{t: t}
	w.fr = xhttp2.NewFramer(&w.buf, nil)
	w.fr.AllowIllegalWrites = true
	w.enc = hpack.NewEncoder(&w.hb)
	if preface {
		w.mark()
		w.buf.WriteString(clientPreface)
	}
	return w
}

func (w *wire) mark() { w.starts = append(w.starts, w.buf.Len()) }

func (w *wire) check(err error) {
	w.t.Helper()
	if err != nil {
		w.t.Fatal(err)
	}
}

// block HPACK-encodes fields given as "name", "value" pairs.
func (w *wire) block(kv ...string) []byte {
	w.hb.Reset()
	for i := 0; i+1 < len(kv); i += 2 {
		w.check(w.enc.WriteField(hpack.HeaderField{Name: kv[i], Value: kv[i+1]}))
	}
	return append([]byte(nil), w.hb.Bytes()...)
}

func (w *wire) settings(s ...xhttp2.Setting) *wire {
	w.mark()
	w.check(w.fr.WriteSettings(s...))
	return w
}

func (w *wire) settingsAck() *wire {
	w.mark()
	w.check(w.fr.WriteSettingsAck())
	return w
}

func (w *wire) headers(id uint32, end bool, kv ...string) *wire {
	w.mark()
	w.check(w.fr.WriteHeaders(xhttp2.HeadersFrameParam{StreamID: id, BlockFragment: w.block(kv...), EndStream: end, EndHeaders: true}))
	return w
}

func (w *wire) data(id uint32, end bool, n int) *wire {
	w.mark()
	w.check(w.fr.WriteData(id, end, bytes.Repeat([]byte{'x'}, n)))
	return w
}

func (w *wire) windowUpdate(id, inc uint32) *wire {
	w.mark()
	w.check(w.fr.WriteWindowUpdate(id, inc))
	return w
}

func (w *wire) raw(t FrameType, f Flags, id uint32, payload []byte) *wire {
	w.mark()
	w.check(w.fr.WriteRawFrame(xhttp2.FrameType(t), xhttp2.Flags(f), id, payload))
	return w
}

func (w *wire) bytes() []byte { return w.buf.Bytes() }

// ref returns the Ref of frame n of file 0.
func ref(n uint64) event.Ref {
	return event.Ref{Frame: n, TS: time.Unix(1700000000, 0).Add(time.Duration(n) * time.Millisecond)}
}

// recorder keeps every event formatted, and observer calls.
type recorder struct {
	evs []string
	obs []string

	open    bool // the last obs line is a Data record that may grow
	odir    event.Dir
	ostream uint32
	on      int
}

func (r *recorder) Event(e *event.Event) {
	r.evs = append(r.evs, fmtEvent(e))
	if e.Type == "DATA" {
		r.open = false // a new frame's data starts a new record
	}
}

func (r *recorder) Headers(dir event.Dir, stream uint32, h []event.Header, end bool, at event.Ref) {
	r.open = false
	r.obs = append(r.obs, fmt.Sprintf("%v headers s=%d end=%v %s @%d", dir, stream, end, fmtHeaders(h), at.Frame))
}

func (r *recorder) Data(dir event.Dir, stream uint32, b []byte, end bool, at event.Ref) {
	// Adjacent Data calls of one frame are merged so that the record does
	// not depend on how the bytes were split.
	if n := len(r.obs); n > 0 && r.open && r.odir == dir && r.ostream == stream {
		r.on += len(b)
		r.obs[n-1] = fmt.Sprintf("%v data s=%d n=%d end=%v", dir, stream, r.on, end)
		r.open = !end
		return
	}
	r.open, r.odir, r.ostream, r.on = !end, dir, stream, len(b)
	r.obs = append(r.obs, fmt.Sprintf("%v data s=%d n=%d end=%v", dir, stream, len(b), end))
}

func (r *recorder) Reset(dir event.Dir, stream uint32, code ErrCode, at event.Ref) {
	r.open = false
	r.obs = append(r.obs, fmt.Sprintf("%v reset s=%d %s @%d", dir, stream, code, at.Frame))
}

func (r *recorder) Gap(dir event.Dir, n int, at event.Ref) {
	r.open = false
	r.obs = append(r.obs, fmt.Sprintf("%v gap n=%d @%d", dir, n, at.Frame))
}

func fmtHeaders(h []event.Header) string {
	if h == nil {
		return "<nil>"
	}
	var parts []string
	for _, f := range h {
		if f.Unknown {
			parts = append(parts, fmt.Sprintf("?%d", f.Index))
		} else {
			parts = append(parts, f.Name+"="+f.Value)
		}
	}
	return "[" + strings.Join(parts, " ") + "]"
}

func pint(p *int64) string {
	if p == nil {
		return "-"
	}
	return fmt.Sprint(*p)
}

// fmtEvent renders every field of an HTTP/2 event.
func fmtEvent(e *event.Event) string {
	s := fmt.Sprintf("%v @%d %s s=%d len=%d", e.Dir, e.Ref.Frame, e.Type, e.Stream, e.Len)
	if fl := eventFlags(e); fl != "" {
		s += " flags=" + fl
	}
	if e.Error != "" {
		s += " err=" + e.Error
	}
	if e.Proto != event.ProtoHTTP2 || e.HTTP1 != nil || e.GRPC != nil {
		s += " BADPROTO"
	}
	if d := e.HTTP2; d != nil {
		if d.Headers != nil {
			s += " hdrs=" + fmtHeaders(d.Headers)
		}
		if d.HeadersUndecodable {
			s += " undecodable"
		}
		for _, x := range d.Settings {
			s += fmt.Sprintf(" %s=%d", x.ID, x.Value)
		}
		if d.WindowIncrement != 0 {
			s += fmt.Sprintf(" inc=%d", d.WindowIncrement)
		}
		if d.LastStreamID != 0 {
			s += fmt.Sprintf(" last=%d", d.LastStreamID)
		}
		if d.Debug != "" {
			s += fmt.Sprintf(" debug=%q", d.Debug)
		}
		if d.PromisedStream != 0 {
			s += fmt.Sprintf(" promised=%d", d.PromisedStream)
		}
		if d.PingData != "" {
			s += " ping=" + d.PingData
		}
		if d.Padding != 0 {
			s += fmt.Sprintf(" pad=%d", d.Padding)
		}
		if d.StreamWindowBefore != nil || d.ConnWindowBefore != nil {
			s += fmt.Sprintf(" sw=%s>%s cw=%s>%s", pint(d.StreamWindowBefore), pint(d.StreamWindowAfter), pint(d.ConnWindowBefore), pint(d.ConnWindowAfter))
		}
		if d.Lost != 0 {
			s += fmt.Sprintf(" lost=%d", d.Lost)
		}
	}
	return s
}

// chunk is a piece of one direction's input.
type chunk struct {
	dir  event.Dir
	b    []byte
	gap  int
	ref  event.Ref
	last bool // close after it
}

// run feeds chunks to a new Conn and closes both directions.
func run(t testing.TB, opts Options, chunks []chunk) (*Conn, *recorder) {
	r := &recorder{}
	if opts.Observer == nil {
		opts.Observer = r
	}
	c := NewConn(7, r, opts)
	var last event.Ref
	for _, ch := range chunks {
		switch {
		case ch.gap > 0:
			c.Gap(ch.dir, ch.gap, ch.ref)
		default:
			c.Data(ch.dir, ch.b, ch.ref)
		}
		last = ch.ref
	}
	c.Close(event.C2S, false, last)
	c.Close(event.S2C, false, last)
	return c, r
}

// split cuts b into frame-sized chunks at the wire's frame starts, each
// with its own Ref numbered from first.
func split(dir event.Dir, b []byte, starts []int, first uint64) []chunk {
	var out []chunk
	for i, s := range starts {
		e := len(b)
		if i+1 < len(starts) {
			e = starts[i+1]
		}
		out = append(out, chunk{dir: dir, b: b[s:e], ref: ref(first + uint64(i))})
	}
	return out
}

func wantLines(t *testing.T, what string, got, want []string) {
	t.Helper()
	if strings.Join(got, "\n") == strings.Join(want, "\n") {
		return
	}
	for i := 0; i < max(len(got), len(want)); i++ {
		var g, w string
		if i < len(got) {
			g = got[i]
		}
		if i < len(want) {
			w = want[i]
		}
		if g != w {
			t.Errorf("%s: first difference at line %d:\n got  %s\n want %s", what, i, g, w)
			break
		}
	}
	t.Logf("%s: got\n%s", what, strings.Join(got, "\n"))
}

// eventFlags names an event's frame flags, as dissect.FlagNames does.
func eventFlags(e *event.Event) string {
	if e.Kind >= KindPreface {
		return ""
	}
	return FrameType(e.Kind).FlagNames(Flags(e.Bits))
}
