package analyze

import (
	"context"
	"reflect"
	"strings"
	"testing"

	"github.com/h2scope/h2scope/dissect"
	"github.com/h2scope/h2scope/internal/statecodec"
)

// FuzzPartial checks that no bytes make the decoding of a Partial panic
// (past its checksum, which TestPartialChecksum covers); it is seeded
// with a real capture's partial.
func FuzzPartial(f *testing.F) {
	opts := dissect.Options{ShardOf: dissect.ShardOf{Index: 0, Count: 2}}
	p, err := StreamShard(context.Background(), []string{"../testdata/pcaps/grpc-goaway.pcapng"}, opts, DefaultConfig(), nil)
	if err != nil {
		f.Fatal(err)
	}
	b, err := p.MarshalBinary()
	if err != nil {
		f.Fatal(err)
	}
	f.Add(b[len(partialMagic)+4+len(partialTypes):])
	f.Fuzz(func(t *testing.T, b []byte) {
		var q Partial
		q.decode(b)
	})
}

// TestPartialChecksum checks that a partial damaged anywhere is refused
// with a clear error.
func TestPartialChecksum(t *testing.T) {
	opts := dissect.Options{ShardOf: dissect.ShardOf{Index: 1, Count: 2}}
	p, err := StreamShard(context.Background(), []string{"../testdata/pcaps/grpc-goaway.pcapng"}, opts, DefaultConfig(), nil)
	if err != nil {
		t.Fatal(err)
	}
	b, err := p.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < len(b); i += 1 + len(b)/200 {
		c := []byte(string(b))
		c[i] ^= 0x10
		var q Partial
		err := q.UnmarshalBinary(c)
		if err == nil || !strings.Contains(err.Error(), "partial") {
			t.Errorf("byte %d of %d flipped: %v", i, len(b), err)
		}
	}
	for _, n := range []int{0, 5, len(partialMagic) + 3, len(b) - 1} {
		var q Partial
		if err := q.UnmarshalBinary(b[:n]); err == nil {
			t.Errorf("the first %d bytes decoded", n)
		}
	}
}

// TestPartialTypesEncodable checks from the types alone that every
// detector, the tables and the statistics can be encoded: a func or a
// channel added to one fails here, naming the field.
func TestPartialTypesEncodable(t *testing.T) {
	types := []reflect.Type{reflect.TypeFor[partialWire]()}
	for _, d := range detectors(DefaultConfig()) {
		types = append(types, reflect.TypeOf(d))
	}
	for _, typ := range types {
		if err := statecodec.Check(typ); err != nil {
			t.Error(err)
		}
	}
}
