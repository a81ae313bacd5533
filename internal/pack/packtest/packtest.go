// Package packtest checks that record types round-trip through a
// pack.Store exactly: it fills every field of a record, exported or not,
// with values drawn from fuzz input, and compares the record read back.
package packtest

import (
	"encoding/binary"
	"reflect"
	"testing"
	"time"
	"unsafe"

	"github.com/h2scope/h2scope/dissect/event"
	"github.com/h2scope/h2scope/internal/pack"
)

// source hands out values from fuzz bytes (zeros once they run out).
type source struct{ b []byte }

func (s *source) next(n int) uint64 {
	var buf [8]byte
	k := copy(buf[:n], s.b)
	s.b = s.b[k:]
	return binary.LittleEndian.Uint64(buf[:])
}

var (
	timeType = reflect.TypeFor[time.Time]()
	refType  = reflect.TypeFor[event.Ref]()
)

// Fill sets every field reachable from v (a pointer to a struct) from
// data: integers of any size and sign, strings of up to 300 bytes (longer
// than the Store's shared ones), slices of up to 3 elements (nil when
// empty), pointers nil or set, UTC times (as capture readers make them,
// from year 1 to past 9999, or zero), and refs with non-negative files.
func Fill(v any, data []byte) {
	fill(reflect.ValueOf(v).Elem(), &source{b: data})
}

func fill(v reflect.Value, s *source) {
	if !v.CanSet() {
		v = reflect.NewAt(v.Type(), unsafe.Pointer(v.UnsafeAddr())).Elem()
	}
	switch {
	case v.Type() == timeType:
		if s.next(1)%4 == 0 {
			v.Set(reflect.ValueOf(time.Time{}))
			return
		}
		sec := int64(s.next(5)) - 1<<39 + 1_700_000_000
		v.Set(reflect.ValueOf(time.Unix(sec, int64(s.next(4)%1e9)).UTC()))
		return
	case v.Type() == refType:
		v.Set(reflect.ValueOf(event.Ref{File: int(s.next(1) % 4), Frame: s.next(4), TS: timeOf(s)}))
		return
	}
	switch v.Kind() {
	case reflect.Bool:
		v.SetBool(s.next(1)&1 == 1)
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		v.SetInt(int64(s.next(int(v.Type().Size()))))
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		v.SetUint(s.next(int(v.Type().Size())))
	case reflect.String:
		n := int(s.next(2) % 300)
		b := make([]byte, n)
		for i := range b {
			b[i] = byte(s.next(1))
		}
		v.SetString(string(b))
	case reflect.Struct:
		for i := range v.NumField() {
			fill(v.Field(i), s)
		}
	case reflect.Array:
		for i := range v.Len() {
			fill(v.Index(i), s)
		}
	case reflect.Pointer:
		if s.next(1)&1 == 0 {
			return
		}
		p := reflect.New(v.Type().Elem())
		fill(p.Elem(), s)
		v.Set(p)
	case reflect.Slice:
		n := int(s.next(1) % 4)
		if n == 0 {
			return
		}
		sl := reflect.MakeSlice(v.Type(), n, n)
		for i := range n {
			fill(sl.Index(i), s)
		}
		v.Set(sl)
	default:
		panic("packtest: cannot fill a " + v.Type().String())
	}
}

func timeOf(s *source) time.Time {
	var t time.Time
	fill(reflect.ValueOf(&t).Elem(), s)
	return t
}

// RoundTrip fills records of type T from each of inputs, stores them all
// in one Store (so that they share its string table), reads them back and
// fails t unless each equals what was stored.
func RoundTrip[T any, P pack.Record[T]](t testing.TB, inputs ...[]byte) {
	t.Helper()
	var l pack.List[T, P]
	want := make([]T, len(inputs))
	for i, in := range inputs {
		Fill(&want[i], in)
		j, p := l.Add(want[i])
		l.Freeze(j)
		l.Settle()
		if !l.Frozen(j) {
			t.Fatalf("record %d (%+v) was not stored", j, *p)
		}
	}
	i := 0
	l.Each(func(got *T) {
		if !reflect.DeepEqual(*got, want[i]) {
			t.Errorf("record %d read back as\n%+v\nwant\n%+v", i, *got, want[i])
		}
		i++
	})
	// Reopened, changed in place (a late frame), settled: still exact.
	for i := range want {
		p := l.At(i)
		if !reflect.DeepEqual(*p, want[i]) {
			t.Errorf("record %d reopened as\n%+v\nwant\n%+v", i, *p, want[i])
		}
	}
	l.Settle()
	i = 0
	l.Each(func(got *T) {
		if !reflect.DeepEqual(*got, want[i]) {
			t.Errorf("record %d read back after reopening as\n%+v\nwant\n%+v", i, *got, want[i])
		}
		i++
	})
}
