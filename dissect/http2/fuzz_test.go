package http2

import (
	"bytes"
	"strings"
	"testing"

	"github.com/h2scope/h2scope/dissect/event"
	"golang.org/x/net/http2/hpack"
)

// fuzzOptions are small limits, so that fuzzing reaches every bound.
func fuzzOptions(mode byte) Options {
	o := Options{MaxStreams: 8, MaxHeaderBlock: 512, MaxHeaderList: 256, MaxStringLength: 128, MaxTableMemory: 256}
	switch mode % 3 {
	case 1:
		o.MidConnection = true
	case 2:
		o.Upgrade, o.UpgradeSettings = true, "AAQAAABk"
	}
	return o
}

// fuzzChunks turns fuzz input into a script: data[0] picks the options,
// the chunk size and whether gaps are made, data[1] where the client's
// bytes end; chunks alternate directions.
func fuzzChunks(data []byte) (Options, []chunk) {
	if len(data) < 2 {
		return Options{}, nil
	}
	ctl, cut := data[0], int(data[1])
	data = data[2:]
	cut = cut * len(data) / 255
	parts := [2][]byte{data[:cut], data[cut:]}
	size := 1 + int(ctl>>2&0x7)*7
	gaps := ctl&0x20 != 0
	var out []chunk
	frame := uint64(1)
	for len(parts[0])+len(parts[1]) > 0 {
		for d := range parts {
			p := parts[d]
			if len(p) == 0 {
				continue
			}
			n := min(size, len(p))
			if gaps && p[0]%13 == 0 && n > 1 {
				out = append(out, chunk{dir: event.Dir(d), gap: n / 2, ref: ref(frame)})
				out = append(out, chunk{dir: event.Dir(d), b: p[n/2 : n], ref: ref(frame)})
			} else {
				out = append(out, chunk{dir: event.Dir(d), b: p[:n], ref: ref(frame)})
			}
			parts[d] = p[n:]
			frame++
		}
	}
	return fuzzOptions(ctl), out
}

// checkBounds verifies that what a Conn holds stays within its limits.
func checkBounds(t *testing.T, c *Conn) {
	t.Helper()
	for d := range c.h {
		h := &c.h[d]
		if len(h.sy.buf) > syncWindow || len(h.sy.marks) > maxMarks || len(h.sy.wait) > syncWindow {
			t.Fatalf("sync state: %d bytes, %d marks, %d candidates", len(h.sy.buf), len(h.sy.marks), len(h.sy.wait))
		}
		if len(h.blk.buf) > c.opts.MaxHeaderBlock {
			t.Fatalf("header block of %d bytes", len(h.blk.buf))
		}
		if h.hp.mem > uint64(c.opts.MaxTableMemory) {
			t.Fatalf("table copy of %d bytes", h.hp.mem)
		}
		if h.keepN > len(h.keep) {
			t.Fatalf("kept %d", h.keepN)
		}
	}
	if len(c.active) > c.opts.MaxStreams || c.recs.Len() > c.opts.MaxStreams || len(c.stalls) > maxConnStalls || len(c.goaways) > maxGoAways {
		t.Fatalf("%d active, %d records, %d stalls", len(c.active), c.recs.Len(), len(c.stalls))
	}
	c.recs.Each(func(r *srec) {
		if len(r.stalls) > maxStreamStalls {
			t.Fatalf("%d stalls on a stream", len(r.stalls))
		}
	})
	for d := range c.send {
		if g := &c.send[d].guess; len(g.cands) > maxConnStalls || g.alone > g.hits {
			t.Fatalf("connection window guess: %d candidates, %d of %d hits alone", len(g.cands), g.alone, g.hits)
		}
	}
	for _, st := range c.active {
		for d := range st.guess {
			if g := &st.guess[d]; len(g.cands) > maxStreamStalls || g.alone > g.hits || len(g.cands) > g.hits {
				t.Fatalf("stream window guess: %d candidates, %d of %d hits alone", len(g.cands), g.alone, g.hits)
			}
		}
	}
}

// fuzzSeeds returns real byte streams to start from.
func fuzzSeeds(t testing.TB) [][]byte {
	cli, srv := conversation(t)
	seed := func(ctl byte, a, b []byte) []byte {
		cut := byte(len(a) * 255 / max(1, len(a)+len(b)))
		return append(append([]byte{ctl, cut}, a...), b...)
	}
	chunks, gc, gs := grpcLike(t, 2, 7)
	_ = chunks
	return [][]byte{
		seed(0, cli.bytes(), srv.bytes()),
		seed(1|4<<2, cli.bytes()[30:], srv.bytes()[5:]),
		seed(2|1<<2, cli.bytes(), srv.bytes()),
		seed(0x20|3<<2, cli.bytes(), srv.bytes()),
		seed(7<<2, gc.bytes()[:min(3000, len(gc.bytes()))], gs.bytes()[:min(3000, len(gs.bytes()))]),
		seed(1, []byte("\x00\x00\x00\x04\x01\x00\x00\x00\x00GET / HTTP/1.1\r\n"), []byte("HTTP/1.1 200 OK\r\n\r\n")),
	}
}

// FuzzFrames feeds arbitrary bytes to both directions, in all three
// start modes, with gaps: no panic, bounded state, and the same events
// whether the bytes come in chunks or one at a time.
func FuzzFrames(f *testing.F) {
	for _, s := range fuzzSeeds(f) {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) > 1<<16 {
			return // larger inputs add time, not new paths
		}
		opts, chunks := fuzzChunks(data)
		if chunks == nil {
			return
		}
		r1 := &recorder{}
		o1 := opts
		o1.Observer = r1
		c := NewConn(1, r1, o1)
		for _, ch := range chunks {
			if ch.gap > 0 {
				c.Gap(ch.dir, ch.gap, ch.ref)
			} else {
				c.Data(ch.dir, ch.b, ch.ref)
			}
			checkBounds(t, c)
		}
		c.Close(event.C2S, false, ref(1<<20))
		c.Close(event.S2C, true, ref(1<<20))
		s1 := c.Summary()
		_ = c.Streams()
		if len(data) > 1<<10 {
			return // the byte-at-a-time oracle is for small inputs
		}
		c2, r2 := run(t, opts, bytewise(chunks))
		if strings.Join(r1.evs, "\n") != strings.Join(r2.evs, "\n") {
			wantLines(t, "bytewise events", r2.evs, r1.evs)
		}
		if strings.Join(r1.obs, "\n") != strings.Join(r2.obs, "\n") {
			wantLines(t, "bytewise observer", r2.obs, r1.obs)
		}
		if a, b := summaryKey(s1), summaryKey(c2.Summary()); a != b {
			t.Errorf("summary differs:\n chunks %s\n bytes  %s", a, b)
		}
	})
}

// hpackBlocks splits fuzz input into header blocks, each prefixed by its
// length byte; at most 64, to bound the work per input.
func hpackBlocks(data []byte) [][]byte {
	var out [][]byte
	for len(data) > 0 && len(out) < 64 {
		n := min(int(data[0]), len(data)-1)
		out = append(out, data[1:1+n])
		data = data[1+n:]
	}
	return out
}

func xfields(hf []hpack.HeaderField) string {
	var parts []string
	for _, f := range hf {
		parts = append(parts, f.Name+"="+f.Value)
	}
	return "[" + strings.Join(parts, " ") + "]"
}

// FuzzHPACK decodes a sequence of header blocks with this package's
// decoder, from the start (its fields and errors must match x/net's
// decoder exactly) and from each later block with an unknown table (every
// field it decodes must match; the others are Unknown).
func FuzzHPACK(f *testing.F) {
	var buf bytes.Buffer
	enc := hpack.NewEncoder(&buf)
	var seed []byte
	for i, l := range [][]string{
		{":method: GET", ":path: /a", "x-a: 1", "cookie: abc"},
		{":method: GET", ":path: /a", "x-a: 1", "x-b: " + strings.Repeat("z", 90)},
		{":status: 200", "x-b: " + strings.Repeat("z", 90), "x-a: 1"},
	} {
		if i == 2 {
			enc.SetMaxDynamicTableSize(100)
		}
		b := encodeBlocks(f, enc, &buf, l)[0]
		seed = append(append(seed, byte(len(b))), b...)
	}
	f.Add(seed)
	for _, s := range []string{
		"8286 8441 0f77 7777 2e65 7861 6d70 6c65 2e63 6f6d",
		"4803 3330 3258 0770 7269 7661 7465 611d 4d6f 6e2c 2032 3120 4f63 7420 3230 3133 2032 303a 3133 3a32 3120 474d 546e 1768 7474 7073 3a2f 2f77 7777 2e65 7861 6d70 6c65 2e63 6f6d",
		"3fe1 1f82 20",
	} {
		b := unhex(f, s)
		f.Add(append([]byte{byte(len(b))}, b...))
	}
	f.Fuzz(fuzzHPACKBody)
}

func fuzzHPACKBody(t *testing.T, data []byte) {
	if len(data) > 1<<14 {
		return // at most 64 blocks of 255 bytes are used
	}
	blocks := hpackBlocks(data)
	const maxStr = 64
	x := hpack.NewDecoder(4096, nil)
	x.SetMaxStringLength(maxStr)
	d := newHDecoder(true, maxStr, DefaultMaxTableMemory)
	var truth [][]hpack.HeaderField // x/net's fields per block, until its first error
	for i, b := range blocks {
		xf, xerr := x.DecodeFull(b)
		got, _, err := d.decode(b, nil, DefaultMaxHeaderList)
		switch {
		case xerr == nil && err != nil:
			t.Fatalf("block %d: x/net decodes %s, we fail: %v", i, xfields(xf), err)
		case xerr != nil && err == nil && d.leadUpdates < 2:
			t.Fatalf("block %d: x/net fails (%v), we decode %s", i, xerr, fmtHeaders(got))
		case xerr == nil:
			if a, b := fmtHeaders(got), xfields(xf); !(a == b || len(xf) == 0 && len(got) == 0) {
				t.Fatalf("block %d: %s, x/net %s", i, a, b)
			}
			truth = append(truth, xf)
			continue
		}
		break
	}
	for k := 1; k < min(len(truth), 16); k++ {
		p := newHDecoder(false, maxStr, DefaultMaxTableMemory)
		for i := k; i < len(truth); i++ {
			got, st, err := p.decode(blocks[i], nil, DefaultMaxHeaderList)
			if err != nil {
				t.Fatalf("from block %d, block %d: x/net decodes %s, we fail: %v", k, i, xfields(truth[i]), err)
			}
			want := truth[i]
			if len(got) != len(want) || st.fields != len(want) {
				t.Fatalf("from block %d, block %d: %s, x/net %s", k, i, fmtHeaders(got), xfields(want))
			}
			for j, h := range got {
				if !h.Unknown && (h.Name != want[j].Name || h.Value != want[j].Value) {
					t.Fatalf("from block %d, block %d: wrong field %q=%q, x/net %s", k, i, h.Name, h.Value, xfields(want))
				}
			}
		}
	}
}
