package http2

import (
	"bytes"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/h2scope/h2scope/dissect/event"
	"golang.org/x/net/http2/hpack"
)

func unhex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(strings.Join(strings.Fields(s), ""))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// rfcStep is one header block of an RFC 7541 Appendix C sequence, with the
// fields it decodes to and the dynamic table after it (newest first, as
// the RFC lists it).
type rfcStep struct {
	wire   string
	fields []string // "name: value"
	table  []string
	size   uint64
}

func tableOf(d *hdecoder) []string {
	var out []string
	for i := len(d.ents) - 1; i >= 0; i-- {
		out = append(out, d.ents[i].name+": "+d.ents[i].value)
	}
	return out
}

func fieldsOf(h []event.Header) []string {
	var out []string
	for _, f := range h {
		out = append(out, f.Name+": "+f.Value)
	}
	return out
}

// runRFC decodes a sequence with one decoder of the given table size and
// checks each step, and that x/net's decoder agrees.
func runRFC(t *testing.T, tableSize uint32, steps []rfcStep) {
	t.Helper()
	d := newHDecoder(true, DefaultMaxStringLength, DefaultMaxTableMemory)
	d.max, d.allowed = uint64(tableSize), uint64(tableSize)
	x := hpack.NewDecoder(tableSize, nil)
	for i, s := range steps {
		b := unhex(t, s.wire)
		got, _, err := d.decode(b, nil, DefaultMaxHeaderList)
		if err != nil {
			t.Fatalf("step %d: %v", i+1, err)
		}
		if a, b := strings.Join(fieldsOf(got), "\n"), strings.Join(s.fields, "\n"); a != b {
			t.Errorf("step %d fields:\n%s\nwant\n%s", i+1, a, b)
		}
		if a, b := strings.Join(tableOf(d), "\n"), strings.Join(s.table, "\n"); a != b {
			t.Errorf("step %d table:\n%s\nwant\n%s", i+1, a, b)
		}
		if d.size != s.size || !d.full() {
			t.Errorf("step %d: table size %d (full %v), want %d", i+1, d.size, d.full(), s.size)
		}
		xf, err := x.DecodeFull(b)
		if err != nil {
			t.Fatalf("x/net step %d: %v", i+1, err)
		}
		var xs []string
		for _, f := range xf {
			xs = append(xs, f.Name+": "+f.Value)
		}
		if strings.Join(xs, "\n") != strings.Join(s.fields, "\n") {
			t.Errorf("x/net disagrees with the RFC at step %d: %v", i+1, xs)
		}
	}
}

var rfcRequests = []rfcStep{
	{"", []string{":method: GET", ":scheme: http", ":path: /", ":authority: www.example.com"},
		[]string{":authority: www.example.com"}, 57},
	{"", []string{":method: GET", ":scheme: http", ":path: /", ":authority: www.example.com", "cache-control: no-cache"},
		[]string{"cache-control: no-cache", ":authority: www.example.com"}, 110},
	{"", []string{":method: GET", ":scheme: https", ":path: /index.html", ":authority: www.example.com", "custom-key: custom-value"},
		[]string{"custom-key: custom-value", "cache-control: no-cache", ":authority: www.example.com"}, 164},
}

func withWire(steps []rfcStep, wires ...string) []rfcStep {
	out := append([]rfcStep(nil), steps...)
	for i := range out {
		out[i].wire = wires[i]
	}
	return out
}

// TestHPACK_RFC7541_C3 is RFC 7541 Appendix C.3: requests without Huffman
// coding.
func TestHPACK_RFC7541_C3(t *testing.T) {
	runRFC(t, 4096, withWire(rfcRequests,
		"8286 8441 0f77 7777 2e65 7861 6d70 6c65 2e63 6f6d",
		"8286 84be 5808 6e6f 2d63 6163 6865",
		"8287 85bf 400a 6375 7374 6f6d 2d6b 6579 0c63 7573 746f 6d2d 7661 6c75 65"))
}

// TestHPACK_RFC7541_C4 is RFC 7541 Appendix C.4: requests with Huffman
// coding.
func TestHPACK_RFC7541_C4(t *testing.T) {
	runRFC(t, 4096, withWire(rfcRequests,
		"8286 8441 8cf1 e3c2 e5f2 3a6b a0ab 90f4 ff",
		"8286 84be 5886 a8eb 1064 9cbf",
		"8287 85bf 4088 25a8 49e9 5ba9 7d7f 8925 a849 e95b b8e8 b4bf"))
}

var rfcResponses = []rfcStep{
	{"", []string{":status: 302", "cache-control: private", "date: Mon, 21 Oct 2013 20:13:21 GMT", "location: https://www.example.com"},
		[]string{"location: https://www.example.com", "date: Mon, 21 Oct 2013 20:13:21 GMT", "cache-control: private", ":status: 302"}, 222},
	{"", []string{":status: 307", "cache-control: private", "date: Mon, 21 Oct 2013 20:13:21 GMT", "location: https://www.example.com"},
		[]string{":status: 307", "location: https://www.example.com", "date: Mon, 21 Oct 2013 20:13:21 GMT", "cache-control: private"}, 222},
	{"", []string{":status: 200", "cache-control: private", "date: Mon, 21 Oct 2013 20:13:22 GMT", "location: https://www.example.com",
		"content-encoding: gzip", "set-cookie: foo=ASDJKHQKBZXOQWEOPIUAXQWEOIU; max-age=3600; version=1"},
		[]string{"set-cookie: foo=ASDJKHQKBZXOQWEOPIUAXQWEOIU; max-age=3600; version=1", "content-encoding: gzip", "date: Mon, 21 Oct 2013 20:13:22 GMT"}, 215},
}

// TestHPACK_RFC7541_C5 is RFC 7541 Appendix C.5: responses without
// Huffman coding, with a 256-byte table, so entries are evicted.
func TestHPACK_RFC7541_C5(t *testing.T) {
	runRFC(t, 256, withWire(rfcResponses,
		"4803 3330 3258 0770 7269 7661 7465 611d 4d6f 6e2c 2032 3120 4f63 7420 3230 3133 2032 303a 3133 3a32 3120 474d 546e 1768 7474 7073 3a2f 2f77 7777 2e65 7861 6d70 6c65 2e63 6f6d",
		"4803 3330 37c1 c0bf",
		"88c1 611d 4d6f 6e2c 2032 3120 4f63 7420 3230 3133 2032 303a 3133 3a32 3220 474d 54c0 5a04 677a 6970 7738 666f 6f3d 4153 444a 4b48 514b 425a 584f 5157 454f 5049 5541 5851 5745 4f49 553b 206d 6178 2d61 6765 3d33 3630 303b 2076 6572 7369 6f6e 3d31"))
}

// TestHPACK_RFC7541_C6 is RFC 7541 Appendix C.6: the C.5 responses with
// Huffman coding.
func TestHPACK_RFC7541_C6(t *testing.T) {
	runRFC(t, 256, withWire(rfcResponses,
		"4882 6402 5885 aec3 771a 4b61 96d0 7abe 9410 54d4 44a8 2005 9504 0b81 66e0 82a6 2d1b ff6e 919d 29ad 1718 63c7 8f0b 97c8 e9ae 82ae 43d3",
		"4883 640e ffc1 c0bf",
		"88c1 6196 d07a be94 1054 d444 a820 0595 040b 8166 e084 a62d 1bff c05a 839b d9ab 77ad 94e7 821d d7f2 e6c7 b335 dfdf cd5b 3960 d5af 2708 7f36 72c1 ab27 0fb5 291f 9587 3160 65c0 03ed 4ee5 b106 3d50 07"))
}

// TestHPACKStaticTable checks the static table against x/net's decoder.
func TestHPACKStaticTable(t *testing.T) {
	x := hpack.NewDecoder(4096, nil)
	for i := 1; i <= 61; i++ {
		xf, err := x.DecodeFull([]byte{0x80 | byte(i)})
		if err != nil || len(xf) != 1 {
			t.Fatal(i, err)
		}
		if e := staticTable[i-1]; e.name != xf[0].Name || e.value != xf[0].Value {
			t.Errorf("static %d: %q %q, want %q %q", i, e.name, e.value, xf[0].Name, xf[0].Value)
		}
	}
}

// encodeBlocks encodes header lists with one hpack.Encoder.
func encodeBlocks(t testing.TB, enc *hpack.Encoder, buf *bytes.Buffer, lists ...[]string) [][]byte {
	var out [][]byte
	for _, l := range lists {
		buf.Reset()
		for _, kv := range l {
			k, v, _ := strings.Cut(kv, ": ")
			if err := enc.WriteField(hpack.HeaderField{Name: k, Value: v}); err != nil {
				t.Fatal(err)
			}
		}
		out = append(out, append([]byte(nil), buf.Bytes()...))
	}
	return out
}

// TestHPACKPartialTable starts decoding after some dynamic-table inserts:
// fields referring to the entries inserted before the start are Unknown
// with their index, entries inserted since decode exactly, and no field is
// ever wrong.
func TestHPACKPartialTable(t *testing.T) {
	var buf bytes.Buffer
	enc := hpack.NewEncoder(&buf)
	lists := [][]string{
		{":method: GET", ":path: /a", ":authority: svc", "x-a: 1"},                     // inserts :path /a, :authority svc, x-a 1
		{":method: GET", ":path: /a", ":authority: svc", "x-b: 2"},                     // refs /a, svc; inserts x-b 2
		{":method: GET", ":path: /a", ":authority: svc", "x-b: 2", "x-a: 1", "x-c: 3"}, // refs all; inserts x-c 3
		{":method: GET", ":path: /z", "x-c: 3", "x-b: 2"},                              // inserts :path /z (name static); refs x-c, x-b
	}
	blocks := encodeBlocks(t, enc, &buf, lists...)
	d := newHDecoder(false, DefaultMaxStringLength, DefaultMaxTableMemory)
	want := []string{
		// Block 1 (:path /a is 64, :authority svc 63, x-a 62 after it)
		// is not seen.
		":method=GET ?64 ?63 x-b=2",
		":method=GET ?65 ?64 x-b=2 ?63 x-c=3",
		":method=GET :path=/z x-c=3 x-b=2",
	}
	for i, b := range blocks[1:] {
		got, st, err := d.decode(b, nil, DefaultMaxHeaderList)
		if err != nil {
			t.Fatalf("block %d: %v", i+2, err)
		}
		if s := strings.Trim(fmtHeaders(got), "[]"); s != want[i] {
			t.Errorf("block %d: %s, want %s", i+2, s, want[i])
		}
		for j, f := range got {
			k, v, _ := strings.Cut(lists[i+1][j], ": ")
			if !f.Unknown && (f.Name != k || f.Value != v) {
				t.Errorf("block %d: wrong field %v", i+2, f)
			}
		}
		if st.fields != len(lists[i+1]) {
			t.Errorf("block %d: %d fields", i+2, st.fields)
		}
	}
	if d.full() {
		t.Error("table claimed fully known")
	}
	// A size update to 0 empties the table: it is fully known again.
	enc.SetMaxDynamicTableSize(0)
	enc.SetMaxDynamicTableSize(4096)
	b := encodeBlocks(t, enc, &buf, []string{"x-d: 4"}, []string{"x-d: 4"})
	for _, blk := range b {
		if _, _, err := d.decode(blk, nil, DefaultMaxHeaderList); err != nil {
			t.Fatal(err)
		}
	}
	if !d.full() || len(d.ents) != 1 {
		t.Errorf("after size update to 0: full %v, %d entries", d.full(), len(d.ents))
	}
}

// TestHPACKPartialEviction: once the table's maximum size is known and the
// entries seen fill it, the unknown older entries must have been evicted,
// so the table is fully known.
func TestHPACKPartialEviction(t *testing.T) {
	d := newHDecoder(false, DefaultMaxStringLength, DefaultMaxTableMemory)
	// Size update to 100, then two 50-byte entries (name 8, value 10).
	p := []byte{0x3f, 100 - 31}
	for _, v := range []string{"aaaaaaaaaa", "bbbbbbbbbb"} {
		p = append(p, 0x40, 8)
		p = append(p, "x-header"...)
		p = append(p, 10)
		p = append(p, v...)
	}
	if _, _, err := d.decode(p, nil, DefaultMaxHeaderList); err != nil {
		t.Fatal(err)
	}
	if !d.full() || d.size != 100 {
		t.Errorf("full %v size %d", d.full(), d.size)
	}
	// Index 64 is now past the table: an error, not an unknown field.
	if _, _, err := d.decode([]byte{0x80 | 64}, nil, DefaultMaxHeaderList); !errors.Is(err, ErrHPACKIndex) {
		t.Errorf("index past a full table: %v", err)
	}
}

func TestHPACKErrors(t *testing.T) {
	long := append([]byte{0x00, 0x7f, 0x81, 0x80, 0x04}, make([]byte, 70000)...) // 65665-byte name
	tests := []struct {
		name string
		in   string
		want error
	}{
		{"index 0", "80", ErrHPACKIndex},
		{"index past table", "be", ErrHPACKIndex},
		{"truncated integer", "ff", ErrHPACKTruncated},
		{"integer overflow", "ff ff ff ff ff ff ff ff ff ff ff 01", ErrHPACKInteger},
		{"truncated string", "00 05 61", ErrHPACKTruncated},
		{"bad huffman", "00 81 ff 00", ErrHPACKHuffman},
		{"update too large", "3f e2 1f", ErrHPACKSizeUpdate},
		{"update after field", "40 01 61 01 62 20", ErrHPACKSizeUpdate},
		{"truncated literal", "40", ErrHPACKTruncated},
		{"string too long", hex.EncodeToString(long), ErrHPACKStringLength},
	}
	for _, tc := range tests {
		d := newHDecoder(true, DefaultMaxStringLength, DefaultMaxTableMemory)
		_, _, err := d.decode(unhex(t, tc.in), nil, DefaultMaxHeaderList)
		if !errors.Is(err, tc.want) {
			t.Errorf("%s: %v, want %v", tc.name, err, tc.want)
		}
		x := hpack.NewDecoder(4096, nil)
		x.SetMaxStringLength(DefaultMaxStringLength)
		if _, err := x.DecodeFull(unhex(t, tc.in)); err == nil {
			t.Errorf("%s: x/net accepts it", tc.name)
		}
	}
}

// TestHPACKLists: decoded lists are bounded, the rest counted.
func TestHPACKLists(t *testing.T) {
	var buf bytes.Buffer
	enc := hpack.NewEncoder(&buf)
	var l []string
	for i := range 100 {
		l = append(l, fmt.Sprintf("x-%d: %s", i, strings.Repeat("v", 100)))
	}
	b := encodeBlocks(t, enc, &buf, l)[0]
	d := newHDecoder(true, DefaultMaxStringLength, DefaultMaxTableMemory)
	got, st, err := d.decode(b, nil, 1000)
	if err != nil || len(got) != 7 || st.fields != 100 || st.decoded != 100 || !st.truncated {
		t.Errorf("got %d fields, %+v, %v", len(got), st, err)
	}
	// The table copy is bounded too: entries past the bound become
	// Unknown, not wrong.
	d = newHDecoder(true, DefaultMaxStringLength, 1000)
	d.max, d.allowed = 1<<20, 1<<20
	enc = hpack.NewEncoder(&buf)
	enc.SetMaxDynamicTableSizeLimit(1 << 20)
	enc.SetMaxDynamicTableSize(1 << 20)
	bs := encodeBlocks(t, enc, &buf, l, l)
	if _, _, err := d.decode(bs[0], nil, DefaultMaxHeaderList); err != nil {
		t.Fatal(err)
	}
	got, st, err = d.decode(bs[1], nil, DefaultMaxHeaderList)
	if err != nil || st.decoded != 7 || st.fields != 100 || d.full() {
		t.Errorf("bounded table: %+v %v full=%v", st, err, d.full())
	}
	for i, f := range got {
		if !f.Unknown && f.Name != fmt.Sprintf("x-%d", i) {
			t.Errorf("wrong field %v at %d", f, i)
		}
	}
}

// TestHPACKTableChurn decodes thousands of blocks whose fields keep
// inserting and evicting entries of varied sizes, in tables of several
// sizes, and checks every field and the table's size against x/net's
// encoder and decoder: eviction reslices the table and insertion moves it
// back, which must never shift an index.
func TestHPACKTableChurn(t *testing.T) {
	for _, size := range []uint32{64, 256, 4096} {
		var buf bytes.Buffer
		enc := hpack.NewEncoder(&buf)
		enc.SetMaxDynamicTableSizeLimit(size)
		enc.SetMaxDynamicTableSize(size)
		d := newHDecoder(true, DefaultMaxStringLength, DefaultMaxTableMemory)
		d.allowed = uint64(size)
		x := hpack.NewDecoder(size, nil)
		for i := range 3000 {
			var list []string
			for j := range 1 + i%7 {
				// Some fields repeat (indexed), some are new (inserted).
				k := (i*7 + j*13) % (50 + i%30)
				list = append(list, fmt.Sprintf("x-f%d: %s", k%17, strings.Repeat("v", k%40)))
			}
			b := encodeBlocks(t, enc, &buf, list)[0]
			got, _, err := d.decode(b, nil, DefaultMaxHeaderList)
			if err != nil {
				t.Fatalf("size %d block %d: %v", size, i, err)
			}
			want, err := x.DecodeFull(b)
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != len(want) {
				t.Fatalf("size %d block %d: %d fields, want %d", size, i, len(got), len(want))
			}
			for j := range got {
				if got[j].Unknown || got[j].Name != want[j].Name || got[j].Value != want[j].Value {
					t.Fatalf("size %d block %d field %d: %+v, want %v", size, i, j, got[j], want[j])
				}
			}
			if !d.full() || d.size > uint64(size) {
				t.Fatalf("size %d block %d: full %v, table size %d", size, i, d.full(), d.size)
			}
		}
	}
}
