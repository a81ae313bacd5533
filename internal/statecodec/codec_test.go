package statecodec

import (
	"errors"
	"net/netip"
	"reflect"
	"strings"
	"testing"
	"time"
)

type inner struct {
	n    int
	name string
	at   time.Time
	addr netip.AddrPort
}

type holder interface{ get() int }

func (i *inner) get() int { return i.n }

type sample struct {
	a, b   *inner // may alias
	self   *sample
	m      map[netip.Addr]*inner
	keyed  map[string][]uint16
	arr    [3]float64
	h      holder
	any    map[string]any
	err    error
	empty  []struct{}
	nilMap map[int]int
	bs     []byte
}

func init() { Register(&inner{}) }

func TestRoundTripKeepsAliasing(t *testing.T) {
	in := &inner{n: 7, name: "x", at: time.Date(2026, 12, 7, 10, 0, 0, 5, time.UTC), addr: netip.MustParseAddrPort("[::1]:443")}
	s := &sample{a: in, b: in, keyed: map[string][]uint16{"k": {1, 2}, "j": nil}, arr: [3]float64{1.5, -2, 0},
		m:   map[netip.Addr]*inner{netip.MustParseAddr("10.0.0.1"): in, {}: nil},
		any: map[string]any{"n": 3, "f": 2.5, "s": "t", "l": []string{"a"}}, err: errors.New("boom"),
		empty: []struct{}{{}, {}}, bs: []byte("xyz")}
	s.self = s
	s.h = in
	b, err := Encode(nil, s)
	if err != nil {
		t.Fatal(err)
	}
	var out sample
	if err := Decode(b, &out); err != nil {
		t.Fatal(err)
	}
	if out.a != out.b || out.a != out.h.(*inner) || out.m[netip.MustParseAddr("10.0.0.1")] != out.a || out.self != out.self.self {
		t.Error("pointers to one value decoded as several")
	}
	if out.a.n != 7 || out.a.name != "x" || !out.a.at.Equal(in.at) || out.a.at.Location() != time.UTC || out.a.addr != in.addr {
		t.Errorf("decoded %+v, want %+v", *out.a, *in)
	}
	if !reflect.DeepEqual(out.keyed, s.keyed) || out.arr != s.arr || !reflect.DeepEqual(out.any, s.any) ||
		out.err.Error() != "boom" || len(out.empty) != 2 || out.nilMap != nil || string(out.bs) != "xyz" {
		t.Errorf("decoded %+v", out)
	}
	// Equal values give equal bytes, whatever the maps' order.
	b2, _ := Encode(nil, &out)
	if string(b) != string(b2) {
		t.Error("re-encoding gives other bytes")
	}
}

func TestRefusesFuncs(t *testing.T) {
	type withFunc struct {
		ok int
		fn func()
	}
	if err := Check(reflect.TypeFor[withFunc]()); err == nil || !strings.Contains(err.Error(), "withFunc.fn is a func") {
		t.Errorf("Check: %v", err)
	}
	if _, err := Encode(nil, &withFunc{}); err == nil || !strings.Contains(err.Error(), "fn is a func") {
		t.Errorf("Encode: %v", err)
	}
	type unregistered struct{ x any }
	if _, err := Encode(nil, &unregistered{x: struct{ y int }{}}); err == nil || !strings.Contains(err.Error(), "not registered") {
		t.Errorf("Encode: %v", err)
	}
}

func TestRefusesOtherTypes(t *testing.T) {
	b, _ := Encode(nil, &sample{})
	var other inner
	if err := Decode(b, &other); err == nil || !strings.Contains(err.Error(), "another version") {
		t.Errorf("Decode into another type: %v", err)
	}
	for i := range len(b) {
		var s sample
		if err := Decode(b[:i], &s); err == nil {
			t.Errorf("Decode of the first %d of %d bytes succeeded", i, len(b))
		}
	}
}

// FuzzDecode checks that no input makes Decode panic, and that what it
// decodes encodes and decodes again to the same.
func FuzzDecode(f *testing.F) {
	in := &inner{n: 7, name: "x", at: time.Unix(5, 6), addr: netip.MustParseAddrPort("1.2.3.4:5")}
	s := &sample{a: in, b: in, m: map[netip.Addr]*inner{netip.MustParseAddr("10.0.0.1"): in},
		keyed: map[string][]uint16{"k": {1}}, h: in, any: map[string]any{"n": 1, "l": []int{2}}, err: errors.New("e")}
	s.self = s
	b, err := Encode(nil, s)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(b)
	f.Add(b[:8])
	f.Fuzz(func(t *testing.T, b []byte) {
		var s sample
		if Decode(b, &s) != nil {
			return
		}
		b2, err := Encode(nil, &s)
		if err != nil {
			t.Fatalf("decoded value does not encode: %v", err)
		}
		var s2 sample
		if err := Decode(b2, &s2); err != nil {
			t.Fatalf("re-encoded value does not decode: %v", err)
		}
	})
}
