package main

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"

	"github.com/h2scope/h2scope/tools/capgen/truth"
)

// parsedFrame is an HTTP/2 frame read back from a committed capture.
type parsedFrame struct {
	dir    int
	typ    http2.FrameType
	flags  http2.Flags
	stream uint32
	data   []byte // DATA: data; HEADERS, CONTINUATION: fragment
	code   http2.ErrCode
	last   uint32 // GOAWAY last stream
	sets   map[string]uint32
}

// reassemble returns one direction of connection c of a capture as a byte
// stream starting at the first whole HTTP/2 frame (after the preface, or
// after the partial frame a cut capture starts with). The capture must be
// in order and without gaps. cut describes the direction of a connection
// a derived capture starts in the middle of, or is nil.
func reassemble(t *testing.T, c *capturedConn, dir int, cut *truth.CutDir) []byte {
	t.Helper()
	var next uint32
	switch {
	case cut != nil:
		next = cut.Seq
	case c.isn[dir] != nil:
		next = *c.isn[dir] + 1
	default:
		t.Fatalf("%s: no SYN and no cut", dirName(dir))
	}
	var b []byte
	resync := -1
	for _, s := range c.segs[dir] {
		if s.seq != next {
			t.Fatalf("%s: frame %d has seq %d, expected %d: not an in-order capture without gaps", dirName(dir), s.frame, s.seq, next)
		}
		if cut != nil && resync < 0 && int64(len(b)+len(s.payload)) > cut.PartialBytes {
			resync = s.frame
			if s.frame != cut.ResyncFrame || int64(cut.ResyncOffset) != cut.PartialBytes-int64(len(b)) {
				t.Errorf("%s: first whole frame at frame %d offset %d, truth says frame %d offset %d",
					dirName(dir), s.frame, cut.PartialBytes-int64(len(b)), cut.ResyncFrame, cut.ResyncOffset)
			}
		}
		b = append(b, s.payload...)
		next += uint32(len(s.payload))
	}
	switch {
	case cut != nil:
		return b[cut.PartialBytes:]
	case dir == 0:
		if !bytes.HasPrefix(b, []byte(http2.ClientPreface)) {
			t.Fatal("c2s: no client preface")
		}
		return b[len(http2.ClientPreface):]
	}
	return b
}

// parseFrames reads the frames of b with an http2.Framer.
func parseFrames(t *testing.T, b []byte, dir int) []parsedFrame {
	t.Helper()
	fr := http2.NewFramer(nil, bytes.NewReader(b))
	fr.SetMaxReadFrameSize(1<<24 - 1)
	var fs []parsedFrame
	for {
		f, err := fr.ReadFrame()
		if errors.Is(err, io.EOF) {
			return fs
		}
		if err != nil {
			t.Fatalf("%s: HTTP/2 frame %d: %v", dirName(dir), len(fs)+1, err)
		}
		h := f.Header()
		p := parsedFrame{dir: dir, typ: h.Type, flags: h.Flags, stream: h.StreamID}
		switch f := f.(type) {
		case *http2.DataFrame:
			p.data = bytes.Clone(f.Data())
		case *http2.HeadersFrame:
			p.data = bytes.Clone(f.HeaderBlockFragment())
		case *http2.ContinuationFrame:
			p.data = bytes.Clone(f.HeaderBlockFragment())
		case *http2.RSTStreamFrame:
			p.code = f.ErrCode
		case *http2.GoAwayFrame:
			p.code, p.last = f.ErrCode, f.LastStreamID
		case *http2.SettingsFrame:
			if !f.IsAck() {
				p.sets = make(map[string]uint32)
				f.ForeachSetting(func(s http2.Setting) error {
					p.sets[s.ID.String()] = s.Val
					return nil
				})
			}
		}
		fs = append(fs, p)
	}
}

// grpcCount is what TestCommittedHTTP2 counts of one direction of a gRPC
// stream.
type grpcCount struct {
	sizes      []int
	compressed int
	multi      int // DATA frames in which two or more messages begin
	split      int // messages over more than one DATA frame
}

// countMessages parses the gRPC messages in the DATA frames of one
// direction of one stream, which must start on a message boundary.
func countMessages(t *testing.T, data [][]byte) grpcCount {
	t.Helper()
	var g grpcCount
	var pending []byte // current message's bytes so far, prefix included
	need, first := 5, 0
	for fi, d := range data {
		starts := 0
		for len(d) > 0 {
			if len(pending) == 0 {
				starts++
				first = fi
			}
			n := min(need-len(pending), len(d))
			pending = append(pending, d[:n]...)
			d = d[n:]
			if len(pending) == 5 && need == 5 {
				need = 5 + int(binary.BigEndian.Uint32(pending[1:]))
			}
			if len(pending) == need {
				g.sizes = append(g.sizes, need-5)
				if pending[0]&1 != 0 {
					g.compressed++
				}
				if fi != first {
					g.split++
				}
				pending, need = pending[:0], 5
			}
		}
		if starts >= 2 {
			g.multi++
		}
	}
	if len(pending) != 0 {
		t.Errorf("%d bytes of an incomplete gRPC message", len(pending))
	}
	return g
}

// TestCommittedHTTP2 checks the HTTP/2 and gRPC parts of every truth file
// against its capture, with code of its own rather than capgen's tee: it
// reassembles each connection from the (in-order, unimpaired) capture,
// reads the HTTP/2 frames with an http2.Framer and compares frames by type
// and direction, SETTINGS, RST_STREAM and GOAWAY frames, per-stream DATA
// frames and bytes and END_STREAM, gRPC messages per call (count, sizes,
// compressed flags, messages sharing a DATA frame, messages split over
// frames) and the expect values. On live captures it also decodes the
// header blocks (HPACK) and checks paths, grpc-timeout and grpc-status.
// It needs no privileges.
func TestCommittedHTTP2(t *testing.T) {
	files, err := filepath.Glob(filepath.Join(pcapsDir, "*.truth.json"))
	if err != nil {
		t.Fatal(err)
	}
	checked := 0
	for _, file := range files {
		tr, err := truth.Load(file)
		if err != nil {
			t.Fatal(err)
		}
		if tr.HTTP2 == nil || tr.Capture.KeyLog != "" {
			continue // TLS: see TestCommittedTLS
		}
		checked++
		t.Run(tr.Scenario, func(t *testing.T) {
			server, err := netip.ParseAddrPort(tr.Server)
			if err != nil {
				t.Fatal(err)
			}
			conns, _ := readCapture(t, filepath.Join(pcapsDir, tr.Scenario+".pcapng"), server.Port())
			keys, err := truthKeys(tr.Connections)
			if err != nil {
				t.Fatal(err)
			}
			checkHTTP2(t, tr, conns, keys)
		})
	}
	if checked == 0 {
		t.Skip("no HTTP/2 truth files")
	}
}

func checkHTTP2(t *testing.T, tr *truth.Truth, conns map[connKey]*capturedConn, keys []connKey) {
	e := tr.Expect
	allFrames, rsts, goaways, statuses := map[string]int{}, map[string]int{}, map[string]int{}, map[string]int{}
	var msgs, multi, split truth.PerDir
	streams := 0
	calls := make(map[[2]uint64]*truth.GRPCCall)
	for i := range tr.GRPCCalls {
		c := &tr.GRPCCalls[i]
		calls[[2]uint64{uint64(c.Conn), uint64(c.Stream)}] = c
	}
	for _, hc := range tr.HTTP2 {
		if hc.Conn < 1 || hc.Conn > len(tr.Connections) {
			t.Fatalf("http2 record for connection %d, not in the truth", hc.Conn)
		}
		cc := conns[keys[hc.Conn-1]]
		if cc == nil {
			t.Fatalf("connection %d: not in the capture", hc.Conn)
		}
		var cut [2]*truth.CutDir
		if d := tr.DerivedFrom; d != nil && d.Cut != nil && d.Cut.Conn == hc.Conn {
			if len(d.Cut.Dirs) != 2 {
				t.Fatalf("cut: %d directions", len(d.Cut.Dirs))
			}
			cut[0], cut[1] = &d.Cut.Dirs[0], &d.Cut.Dirs[1]
			if hc.Preface {
				t.Error("a cut connection has its preface")
			}
		}
		var frames []parsedFrame
		for dir := range 2 {
			frames = append(frames, parseFrames(t, reassemble(t, cc, dir, cut[dir]), dir)...)
		}
		name := fmt.Sprintf("connection %d", hc.Conn)

		// Frames by type and direction.
		got := [2]map[string]int{{}, {}}
		var gotSettings [2][]map[string]uint32
		var gotResets, gotGoAways [2][]string
		for _, f := range frames {
			got[f.dir][f.typ.String()]++
			allFrames[f.typ.String()]++
			switch {
			case f.sets != nil:
				gotSettings[f.dir] = append(gotSettings[f.dir], f.sets)
			case f.typ == http2.FrameRSTStream:
				gotResets[f.dir] = append(gotResets[f.dir], fmt.Sprintf("%d:%v", f.stream, f.code))
				rsts[f.code.String()]++
			case f.typ == http2.FrameGoAway:
				gotGoAways[f.dir] = append(gotGoAways[f.dir], fmt.Sprintf("%d:%v", f.last, f.code))
				goaways[f.code.String()]++
			}
		}
		for dir, want := range [2]map[string]int{hc.Frames.C2S, hc.Frames.S2C} {
			if !maps.Equal(got[dir], want) {
				t.Errorf("%s %s: frames %v in the capture, truth %v", name, dirName(dir), got[dir], want)
			}
		}
		var wantSettings [2][]map[string]uint32
		var wantResets, wantGoAways [2][]string
		for _, s := range hc.Settings {
			wantSettings[dirIndex(s.Dir)] = append(wantSettings[dirIndex(s.Dir)], s.Values)
		}
		for _, r := range hc.Resets {
			wantResets[dirIndex(r.Dir)] = append(wantResets[dirIndex(r.Dir)], fmt.Sprintf("%d:%s", r.Stream, r.Code))
		}
		for _, g := range hc.GoAways {
			wantGoAways[dirIndex(g.Dir)] = append(wantGoAways[dirIndex(g.Dir)], fmt.Sprintf("%d:%s", g.LastStream, g.Code))
		}
		for dir := range 2 {
			if !slices.EqualFunc(gotSettings[dir], wantSettings[dir], maps.Equal) {
				t.Errorf("%s %s: SETTINGS %v, truth %v", name, dirName(dir), gotSettings[dir], wantSettings[dir])
			}
			if !slices.Equal(gotResets[dir], wantResets[dir]) {
				t.Errorf("%s %s: RST_STREAM %v, truth %v", name, dirName(dir), gotResets[dir], wantResets[dir])
			}
			if !slices.Equal(gotGoAways[dir], wantGoAways[dir]) {
				t.Errorf("%s %s: GOAWAY %v, truth %v", name, dirName(dir), gotGoAways[dir], wantGoAways[dir])
			}
		}

		// Streams: DATA frames and bytes, END_STREAM, header blocks.
		byStream := make(map[uint32][]parsedFrame)
		for _, f := range frames {
			if f.stream != 0 {
				byStream[f.stream] = append(byStream[f.stream], f)
			}
		}
		streams += len(byStream)
		if len(byStream) != len(hc.Streams) {
			t.Errorf("%s: %d streams in the capture, truth lists %d", name, len(byStream), len(hc.Streams))
		}
		for _, hs := range hc.Streams {
			fs := byStream[hs.ID]
			var df, db, es, hb truth.PerDir
			var data [2][][]byte
			for _, f := range fs {
				switch f.typ {
				case http2.FrameData:
					add(&df, f.dir, 1)
					add(&db, f.dir, len(f.data))
					data[f.dir] = append(data[f.dir], f.data)
				case http2.FrameHeaders:
					add(&hb, f.dir, 1)
				}
				if (f.typ == http2.FrameData || f.typ == http2.FrameHeaders) && f.flags&http2.FlagDataEndStream != 0 {
					if f.dir == 0 {
						es.C2S = 1
					} else {
						es.S2C = 1
					}
				}
			}
			sn := fmt.Sprintf("%s stream %d", name, hs.ID)
			if df != hs.DataFrames || db != hs.DataBytes || es != hs.EndStream || hb != hs.HeaderBlocks {
				t.Errorf("%s: DATA frames %v bytes %v, END_STREAM %v, header blocks %v; truth %v %v %v %v",
					sn, df, db, es, hb, hs.DataFrames, hs.DataBytes, hs.EndStream, hs.HeaderBlocks)
			}
			c := calls[[2]uint64{uint64(hc.Conn), uint64(hs.ID)}]
			if (c == nil) != (hs.Call == 0) || c != nil && c.ID != hs.Call {
				t.Errorf("%s: call %d in the truth's stream, %v in its calls", sn, hs.Call, c)
			}
			if c == nil {
				continue
			}
			if hs.Partial {
				t.Logf("%s: partly before the capture: messages not checked", sn)
				continue
			}
			for dir, m := range [2]*truth.GRPCMessages{&c.C2S, &c.S2C} {
				g := countMessages(t, data[dir])
				add(&msgs, dir, len(g.sizes))
				add(&multi, dir, g.multi)
				add(&split, dir, g.split)
				if len(g.sizes) != m.Wire || g.compressed != m.Compressed || g.multi != m.MultiMessageFrames || g.split != m.Split {
					t.Errorf("%s %s: %d messages, %d compressed, %d frames with several, %d split; truth %d %d %d %d",
						sn, dirName(dir), len(g.sizes), g.compressed, g.multi, g.split, m.Wire, m.Compressed, m.MultiMessageFrames, m.Split)
				}
				want := m.Sizes
				if m.Compressed > 0 {
					want = m.WireSizes
				}
				if hs.Reset == "" && !slices.Equal(g.sizes, want) {
					t.Errorf("%s %s: message sizes %v on the wire, truth %v", sn, dirName(dir), head(g.sizes), head(want))
				}
			}
		}
		if cut[0] == nil {
			checkHeaders(t, hc, frames, calls, statuses)
		}
	}
	if !maps.Equal(allFrames, e.HTTP2Frames) {
		t.Errorf("frames by type %v, expect %v", allFrames, e.HTTP2Frames)
	}
	if streams != e.HTTP2Streams {
		t.Errorf("%d streams, expect %d", streams, e.HTTP2Streams)
	}
	if !maps.Equal(rsts, e.RSTStreamCodes) || !maps.Equal(goaways, e.GoAwayCodes) {
		t.Errorf("RST_STREAM %v GOAWAY %v, expect %v %v", rsts, goaways, e.RSTStreamCodes, e.GoAwayCodes)
	}
	if len(tr.GRPCCalls) == 0 {
		return
	}
	partial := 0
	for _, c := range tr.GRPCCalls {
		if c.InCapture == truth.InCapturePartial {
			partial++
		}
	}
	if partial == 0 && (e.GRPCMessages == nil || msgs != *e.GRPCMessages || multi != *e.GRPCMultiMessageFrames || split != *e.GRPCSplitMessages) {
		t.Errorf("gRPC messages %v, sharing frames %v, split %v; expect %v %v %v", msgs, multi, split,
			e.GRPCMessages, e.GRPCMultiMessageFrames, e.GRPCSplitMessages)
	}
	if tr.DerivedFrom == nil && !maps.Equal(statuses, e.GRPCStatus) {
		t.Errorf("grpc-status %v, expect %v", statuses, e.GRPCStatus)
	}
}

// checkHeaders decodes the header blocks of a connection captured from
// its start and checks the streams' paths and statuses and the calls'
// grpc-timeout, grpc-status and grpc-message; it counts grpc-status
// values in statuses.
func checkHeaders(t *testing.T, hc truth.HTTP2Conn, frames []parsedFrame, calls map[[2]uint64]*truth.GRPCCall, statuses map[string]int) {
	t.Helper()
	decs := [2]*hpack.Decoder{hpack.NewDecoder(4096, nil), hpack.NewDecoder(4096, nil)}
	type info struct{ path, status, timeout, grpcStatus, grpcMessage string }
	infos := make(map[uint32]*info)
	var block []byte
	for _, f := range frames {
		if f.sets != nil {
			if v, ok := f.sets["HEADER_TABLE_SIZE"]; ok {
				decs[1-f.dir].SetAllowedMaxDynamicTableSize(v)
			}
		}
		if f.typ != http2.FrameHeaders && f.typ != http2.FrameContinuation {
			continue
		}
		if f.typ == http2.FrameHeaders {
			block = block[:0]
		}
		block = append(block, f.data...)
		if f.flags&http2.FlagHeadersEndHeaders == 0 {
			continue
		}
		fields, err := decs[f.dir].DecodeFull(block)
		if err != nil {
			t.Fatalf("connection %d stream %d: %v", hc.Conn, f.stream, err)
		}
		in := infos[f.stream]
		if in == nil {
			in = new(info)
			infos[f.stream] = in
		}
		for _, hf := range fields {
			switch {
			case f.dir == 0 && hf.Name == ":path":
				in.path = hf.Value
			case f.dir == 0 && hf.Name == "grpc-timeout":
				in.timeout = hf.Value
			case f.dir == 1 && hf.Name == ":status":
				in.status = hf.Value
			case f.dir == 1 && hf.Name == "grpc-status":
				in.grpcStatus = grpcStatusName(hf.Value)
				statuses[in.grpcStatus]++
			case f.dir == 1 && hf.Name == "grpc-message":
				in.grpcMessage = hf.Value
			}
		}
	}
	for _, hs := range hc.Streams {
		in := infos[hs.ID]
		if in == nil {
			in = new(info)
		}
		if in.path != hs.Path || in.status != hs.Status {
			t.Errorf("connection %d stream %d: :path %q :status %q, truth %q %q", hc.Conn, hs.ID, in.path, in.status, hs.Path, hs.Status)
		}
		c := calls[[2]uint64{uint64(hc.Conn), uint64(hs.ID)}]
		if c == nil {
			continue
		}
		if in.path != c.Method || in.timeout != c.GRPCTimeout || in.grpcStatus != c.WireStatus || in.grpcMessage != c.WireMessage {
			t.Errorf("call %d: %s grpc-timeout %q grpc-status %q grpc-message %q; truth %s %q %q %q", c.ID,
				in.path, in.timeout, in.grpcStatus, in.grpcMessage, c.Method, c.GRPCTimeout, c.WireStatus, c.WireMessage)
		}
	}
}

// head shortens a long list for a message.
func head(s []int) string {
	if len(s) > 10 {
		return fmt.Sprint(s[:10]) + fmt.Sprintf("... (%d)", len(s))
	}
	return fmt.Sprint(s)
}

// TestDerivedMatchesBase checks that every committed capture derived from
// a committed capture by a cut is that capture without its first frames,
// byte for byte, and that the cut lies where the truth says.
func TestDerivedMatchesBase(t *testing.T) {
	files, err := filepath.Glob(filepath.Join(pcapsDir, "*.truth.json"))
	if err != nil {
		t.Fatal(err)
	}
	var total int64
	for _, file := range files {
		tr, err := truth.Load(file)
		if err != nil {
			t.Fatal(err)
		}
		if st, err := os.Stat(strings.TrimSuffix(file, ".truth.json") + ".pcapng"); err == nil {
			total += st.Size()
		}
		d := tr.DerivedFrom
		if d == nil || d.Cut == nil {
			continue
		}
		t.Run(tr.Scenario, func(t *testing.T) {
			basePath := filepath.Join(pcapsDir, d.Scenario+".pcapng")
			if _, err := os.Stat(basePath); err != nil {
				t.Skipf("base %s not committed", d.Scenario)
			}
			base, err := readScenario(basePath)
			if err != nil {
				t.Fatal(err)
			}
			got, err := readScenario(filepath.Join(pcapsDir, tr.Scenario+".pcapng"))
			if err != nil {
				t.Fatal(err)
			}
			n := len(d.Cut.DroppedFrames)
			for i, f := range d.Cut.DroppedFrames {
				if f != i+1 {
					t.Fatalf("dropped frames %v: not 1 to %d", d.Cut.DroppedFrames, n)
				}
			}
			if d.BaseFrames != len(base.pkts) || len(got.pkts) != len(base.pkts)-n {
				t.Fatalf("%d frames, base %d (truth %d), %d dropped", len(got.pkts), len(base.pkts), d.BaseFrames, n)
			}
			for i, p := range got.pkts {
				if !bytes.Equal(p.data, base.pkts[n+i].data) || !p.ts.Equal(base.pkts[n+i].ts) {
					t.Fatalf("frame %d differs from base frame %d", i+1, n+i+1)
				}
			}
			// The dropped bytes per direction, and the base's view.
			ap, _ := netip.ParseAddrPort(tr.Server)
			flows, err := connFlows(base.pkts, ap.Port(), base.truth.Connections)
			if err != nil {
				t.Fatal(err)
			}
			f := flows[d.Cut.Conn-1]
			var dropped [2]int64
			for _, s := range f.segs {
				if s.pkt < n {
					dropped[s.dir] += int64(s.n)
				}
			}
			for dir, cd := range d.Cut.Dirs {
				if cd.Bytes != dropped[dir] {
					t.Errorf("%s: %d bytes dropped, truth %d", cd.Dir, dropped[dir], cd.Bytes)
				}
			}
			c, bc := tr.Connections[d.Cut.Conn-1], base.truth.Connections[d.Cut.Conn-1]
			if c.BeforeCapture == nil || c.C2SBytes+c.BeforeCapture.C2S != bc.C2SBytes || c.S2CBytes+c.BeforeCapture.S2C != bc.S2CBytes {
				t.Errorf("bytes %d/%d + before %v, base %d/%d", c.C2SBytes, c.S2CBytes, c.BeforeCapture, bc.C2SBytes, bc.S2CBytes)
			}
		})
	}
	if total >= maxCaptures {
		t.Errorf("committed captures total %d bytes, keep them under %d", total, maxCaptures)
	}
}
