package main

import (
	"bytes"
	"maps"
	"slices"
	"testing"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"

	"github.com/h2scope/h2scope/tools/capgen/truth"
)

// encodeBlock HPACK-encodes fields with enc.
func encodeBlock(t *testing.T, enc *hpack.Encoder, buf *bytes.Buffer, fields ...string) []byte {
	t.Helper()
	buf.Reset()
	for i := 0; i < len(fields); i += 2 {
		if err := enc.WriteField(hpack.HeaderField{Name: fields[i], Value: fields[i+1]}); err != nil {
			t.Fatal(err)
		}
	}
	return bytes.Clone(buf.Bytes())
}

// TestWireTee feeds a scripted HTTP/2 exchange to a wireTee in small
// chunks, alternating directions in causal order, and checks the parse:
// frames by type, header blocks split over CONTINUATION, gRPC messages
// sharing a DATA frame and straddling two (prefix included), a stream
// window reaching 0 and reopening, RST_STREAM and GOAWAY.
func TestWireTee(t *testing.T) {
	var c2s, s2c bytes.Buffer
	cf, sf := http2.NewFramer(&c2s, nil), http2.NewFramer(&s2c, nil)
	var cbuf, sbuf bytes.Buffer
	cenc, senc := hpack.NewEncoder(&cbuf), hpack.NewEncoder(&sbuf)
	tee := newWireTee()
	// flush hands what the framers wrote to the tee, 7 bytes at a time.
	flush := func() {
		for _, d := range []struct {
			b   *bytes.Buffer
			dir int
		}{{&c2s, 0}, {&s2c, 1}} {
			for d.b.Len() > 0 {
				chunk := d.b.Next(7)
				if d.dir == 0 {
					tee.read(chunk)
				} else {
					tee.endWrite(tee.beginWrite(chunk), len(chunk))
				}
			}
		}
	}

	c2s.WriteString(http2.ClientPreface)
	cf.WriteSettings(http2.Setting{ID: http2.SettingInitialWindowSize, Val: 100})
	req := encodeBlock(t, cenc, &cbuf, ":method", "POST", ":path", "/svc/M", "content-type", "application/grpc", "capgen-call", "1")
	cf.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: req[:5]})
	cf.WriteContinuation(1, true, req[5:])
	msg := func(n int) []byte { return grpcFrame(nil, bytes.Repeat([]byte{'m'}, n)) }
	three := append(append(msg(1), msg(2)...), msg(3)...) // 3 messages in one frame
	long := msg(20)
	cf.WriteData(1, false, append(three, long[:3]...)) // ... and the prefix of a 4th
	cf.WriteData(1, true, long[3:])
	flush()
	sf.WriteSettings()
	sf.WriteSettingsAck()
	resp := encodeBlock(t, senc, &sbuf, ":status", "200", "content-type", "application/grpc")
	sf.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: resp, EndHeaders: true})
	big := msg(99)
	sf.WriteData(1, false, big[:100]) // 100 bytes: the stream window is 0
	flush()
	cf.WriteWindowUpdate(1, 50)
	cf.WriteRSTStream(3, http2.ErrCodeCancel)
	flush()
	trailers := encodeBlock(t, senc, &sbuf, "grpc-status", "5", "grpc-message", "not%20found")
	sf.WriteData(1, false, big[100:]) // the rest of the message
	sf.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: trailers, EndHeaders: true, EndStream: true})
	sf.WriteGoAway(1, http2.ErrCodeNo, []byte("bye"))
	flush()
	tee.close()
	w := tee.wait()
	if w.err != nil {
		t.Fatal(w.err)
	}

	hc, _ := wireView{w: w}.summarize(1)
	want := truth.FrameCounts{
		C2S: map[string]int{"SETTINGS": 1, "HEADERS": 1, "CONTINUATION": 1, "DATA": 2, "WINDOW_UPDATE": 1, "RST_STREAM": 1},
		S2C: map[string]int{"SETTINGS": 2, "HEADERS": 2, "DATA": 2, "GOAWAY": 1},
	}
	if !maps.Equal(hc.Frames.C2S, want.C2S) || !maps.Equal(hc.Frames.S2C, want.S2C) {
		t.Errorf("frames %v, want %v", hc.Frames, want)
	}
	if !hc.Preface || len(hc.Settings) != 2 || hc.Settings[0].Values["INITIAL_WINDOW_SIZE"] != 100 {
		t.Errorf("preface %v, settings %v", hc.Preface, hc.Settings)
	}
	if !slices.Equal(hc.Resets, []truth.HTTP2Reset{{Dir: "c2s", Stream: 3, Code: "CANCEL"}}) ||
		len(hc.GoAways) != 1 || hc.GoAways[0] != (truth.HTTP2GoAway{Dir: "s2c", LastStream: 1, Code: "NO_ERROR", Debug: "bye"}) {
		t.Errorf("resets %v, goaways %v", hc.Resets, hc.GoAways)
	}
	if hc.Flow.S2C.StreamZero != 1 || hc.Flow.S2C.ConnZero != 0 || hc.Flow.C2S != (truth.Stalls{}) {
		t.Errorf("flow %+v", hc.Flow)
	}
	if len(hc.Streams) != 2 {
		t.Fatalf("streams %+v", hc.Streams)
	}
	s := hc.Streams[0]
	if s.Path != "/svc/M" || s.Status != "200" || s.HeaderBlocks != (truth.PerDir{C2S: 1, S2C: 2}) ||
		s.DataFrames != (truth.PerDir{C2S: 2, S2C: 2}) || s.DataBytes != (truth.PerDir{C2S: len(three) + len(long), S2C: 104}) ||
		s.EndStream != (truth.PerDir{C2S: 1, S2C: 1}) || s.WindowZero != (truth.PerDir{S2C: 1}) {
		t.Errorf("stream 1: %+v", s)
	}

	c := truth.GRPCCall{ID: 1, Conn: 1, Stream: 1}
	wireView{w: w}.callWire(&c)
	if c.C2S.Wire != 4 || c.C2S.MultiMessageFrames != 1 || c.C2S.Split != 1 || c.S2C.Wire != 1 || c.S2C.Split != 1 ||
		c.WireStatus != "NOT_FOUND" || c.WireMessage != "not%20found" || c.TrailersOnly {
		t.Errorf("call: %+v", c)
	}
}

// TestHPACKTaint checks which header blocks a decoder starting after the
// first cannot decode: those referring to an entry the first inserted,
// directly or through an entry named after one.
func TestHPACKTaint(t *testing.T) {
	var buf bytes.Buffer
	enc := hpack.NewEncoder(&buf)
	dec := hpack.NewDecoder(4096, nil)
	m := newHPACKModel()
	var refs []hpackRefs
	for _, fields := range [][]string{
		{"x-a", "1"},               // inserts A
		{"x-a", "1", "x-a", "2"},   // refers to A; inserts B, named after A
		{"x-a", "2", ":path", "/"}, // refers to B; static only for :path
		{"x-b", "3"},               // inserts C
		{"x-b", "3", ":path", "/"}, // refers to C
	} {
		b := encodeBlock(t, enc, &buf, fields...)
		hf, err := dec.DecodeFull(b)
		if err != nil {
			t.Fatal(err)
		}
		r, err := m.block(b, hf)
		if err != nil {
			t.Fatal(err)
		}
		refs = append(refs, r)
	}
	bad, lost := undecodable(refs, []bool{false, true, true, true, true})
	if !slices.Equal(bad, []bool{false, true, true, false, false}) || lost != 1 {
		t.Errorf("undecodable %v, %d insertions lost; want [false true true false false], 1", bad, lost)
	}
	if r := refs[1]; !slices.Equal(r.refs, []int{0, 0}) || !slices.Equal(r.inserts, []hpackInsert{{serial: 1, nameOf: 0}}) {
		t.Errorf("block 2: %+v", r)
	}
}

// TestHPACKEviction checks that the model follows evictions and size
// updates: with room for two entries, the third insertion evicts the
// first, and indices then name the right insertions.
func TestHPACKEviction(t *testing.T) {
	var buf bytes.Buffer
	enc := hpack.NewEncoder(&buf)
	enc.SetMaxDynamicTableSizeLimit(80)
	enc.SetMaxDynamicTableSize(80) // a size update, then room for two 36-byte entries
	dec := hpack.NewDecoder(4096, nil)
	m := newHPACKModel()
	var refs []hpackRefs
	for _, fields := range [][]string{
		{"x-a", "1", "x-a", "2", "x-a", "3"}, // inserts 0, 1, 2 (0 evicted)
		{"x-a", "2"},                         // refers to 1
		{"x-a", "1"},                         // inserts 3, named after 2 (the newest x-a)
	} {
		b := encodeBlock(t, enc, &buf, fields...)
		hf, err := dec.DecodeFull(b)
		if err != nil {
			t.Fatal(err)
		}
		r, err := m.block(b, hf)
		if err != nil {
			t.Fatal(err)
		}
		refs = append(refs, r)
	}
	if m.maxSize != 80 || len(m.entries) != 2 || m.entries[0].serial != 3 || m.entries[1].serial != 2 {
		t.Errorf("table %+v, max %d", m.entries, m.maxSize)
	}
	if !slices.Equal(refs[1].refs, []int{1}) || len(refs[2].inserts) != 1 || refs[2].inserts[0].serial != 3 {
		t.Errorf("refs %+v", refs)
	}
}

// TestSelected checks -only's families.
func TestSelected(t *testing.T) {
	for _, tt := range []struct {
		only string
		want []string
	}{
		{"grpc-unary-h2c", []string{"grpc-unary-h2c", "grpc-unary-h2c-midstream"}},
		{"h2c-large-slow-midstream", []string{"h2c-large-slow", "h2c-large-slow-midstream"}},
		{"tcp-impaired", []string{"tcp-impaired"}},
		{"http1-keepalive", []string{"http1-keepalive"}},
	} {
		var got []string
		for _, sc := range scenarios {
			if sc.commit && selected(sc, tt.only) {
				got = append(got, sc.name)
			}
		}
		if !slices.Equal(got, tt.want) {
			t.Errorf("-only %s selects %v, want %v", tt.only, got, tt.want)
		}
	}
}
