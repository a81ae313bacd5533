// Package statecodec encodes Go values of any type built from the
// ordinary kinds, unexported fields included, to bytes and back: the
// analysis state a shard of a capture hands to the machine that merges
// the shards (analyze.Partial, report.Partial).
//
// It is generic on purpose. The state is dozens of unexported detector
// structs, and fields are added to them all the time: a hand-written
// codec per struct drifts the day someone adds a field and forgets it,
// whereas this one carries every field of every struct reachable from the
// value, by reflection, in declaration order.
//
// # What it encodes
//
//   - booleans, integers, floats, complex numbers and strings;
//   - arrays, slices and maps (a nil slice or map stays nil; map entries
//     are written in the order of their encoded keys, so that equal
//     values give equal bytes);
//   - structs, field by field, exported or not;
//   - pointers, by identity: two pointers to one value decode as two
//     pointers to one value (a detector the tables also point at stays
//     shared), cycles included;
//   - interfaces holding a type given to Register (the builtin kinds, and
//     slices and maps of them, are registered already); an error is
//     encoded as its message and decodes as errors.New of it;
//   - types that implement encoding.BinaryMarshaler and whose pointer
//     implements encoding.BinaryUnmarshaler, through those methods:
//     time.Time (location offset kept), netip.Addr, netip.AddrPort,
//     netip.Prefix.
//
// Funcs, channels and unsafe pointers are refused with an error naming
// the field (Check finds them from the type alone), as are interface
// values of unregistered types.
//
// Aliasing is kept only between pointers: two slices sharing an array, or
// a pointer into another value's field, decode as separate copies.
//
// # Decoding into a value
//
// Decode writes into a value that may already hold pointers and
// interfaces (a freshly constructed state): a pointer or an interface
// holding the type the bytes hold is decoded into the value it already
// points at, so that the sharing a constructor set up is kept. Maps and
// slices are replaced.
//
// The bytes start with a fingerprint of the type (every type's name,
// kind and fields, recursively), so that a value encoded by another build
// of the program whose types differ is refused rather than misread.
// Decoding bytes that are not an encoding of the type returns an error,
// never panics, and allocates in proportion to the input's length.
package statecodec

import (
	"bytes"
	"encoding"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/fnv"
	"math"
	"reflect"
	"slices"
	"sync"
	"unsafe"
)

var (
	registry   sync.Map // type name -> reflect.Type
	errorType  = reflect.TypeFor[error]()
	marshalerT = reflect.TypeFor[encoding.BinaryMarshaler]()
	unmarshalT = reflect.TypeFor[encoding.BinaryUnmarshaler]()
)

func init() {
	Register(false, true, 0, int8(0), int16(0), int32(0), int64(0), uint(0), uint8(0), uint16(0), uint32(0), uint64(0),
		float32(0), float64(0), "", []string(nil), []int(nil), []int64(nil), []uint64(nil), []uint32(nil), []float64(nil),
		[]any(nil), map[string]any(nil), map[string]int(nil), map[string]int64(nil), map[string]float64(nil),
		map[string]string(nil), map[string]uint64(nil))
}

// Register makes the types of values encodable inside interfaces. It
// panics if two distinct types have the same name.
func Register(values ...any) {
	for _, v := range values {
		t := reflect.TypeOf(v)
		if prev, loaded := registry.LoadOrStore(typeName(t), t); loaded && prev.(reflect.Type) != t {
			panic("statecodec: two types named " + typeName(t))
		}
	}
}

// typeName names t by its package path and name.
func typeName(t reflect.Type) string {
	if t.Name() != "" {
		return t.PkgPath() + "." + t.Name()
	}
	switch t.Kind() {
	case reflect.Pointer:
		return "*" + typeName(t.Elem())
	case reflect.Slice:
		return "[]" + typeName(t.Elem())
	case reflect.Array:
		return fmt.Sprintf("[%d]%s", t.Len(), typeName(t.Elem()))
	case reflect.Map:
		return "map[" + typeName(t.Key()) + "]" + typeName(t.Elem())
	}
	return t.String()
}

// binaryCoded reports whether t is encoded by its own MarshalBinary and
// UnmarshalBinary.
func binaryCoded(t reflect.Type) bool {
	return t.Kind() != reflect.Pointer && t.Kind() != reflect.Interface &&
		t.Implements(marshalerT) && reflect.PointerTo(t).Implements(unmarshalT)
}

// Check reports the first part of type t that cannot be encoded (a func,
// a channel, an unsafe pointer), naming the path to it.
func Check(t reflect.Type) error {
	return check(t, typeName(t), map[reflect.Type]bool{})
}

func check(t reflect.Type, path string, seen map[reflect.Type]bool) error {
	if seen[t] {
		return nil
	}
	seen[t] = true
	if binaryCoded(t) {
		return nil
	}
	switch t.Kind() {
	case reflect.Func, reflect.Chan, reflect.UnsafePointer, reflect.Uintptr:
		return fmt.Errorf("statecodec: %s is a %s, which cannot be encoded", path, t.Kind())
	case reflect.Pointer, reflect.Slice, reflect.Array:
		return check(t.Elem(), path+"[]", seen)
	case reflect.Map:
		if err := check(t.Key(), path+"{key}", seen); err != nil {
			return err
		}
		return check(t.Elem(), path+"{}", seen)
	case reflect.Struct:
		for i := range t.NumField() {
			f := t.Field(i)
			if err := check(f.Type, path+"."+f.Name, seen); err != nil {
				return err
			}
		}
	}
	return nil
}

// Fingerprint returns a hash of t's shape: the names, kinds and fields
// of every type reachable from it.
func Fingerprint(t reflect.Type) uint64 {
	if x, ok := fingerprints.Load(t); ok {
		return x.(uint64)
	}
	h := fnv.New64a()
	fingerprint(h, t, map[reflect.Type]int{})
	fingerprints.Store(t, h.Sum64())
	return h.Sum64()
}

var fingerprints sync.Map // reflect.Type -> uint64

func fingerprint(w interface{ Write([]byte) (int, error) }, t reflect.Type, seen map[reflect.Type]int) {
	if n, ok := seen[t]; ok {
		fmt.Fprintf(w, "@%d;", n)
		return
	}
	seen[t] = len(seen)
	fmt.Fprintf(w, "%s:%s(", typeName(t), t.Kind())
	defer w.Write([]byte(")"))
	if binaryCoded(t) {
		return
	}
	switch t.Kind() {
	case reflect.Pointer, reflect.Slice:
		fingerprint(w, t.Elem(), seen)
	case reflect.Array:
		fmt.Fprintf(w, "%d,", t.Len())
		fingerprint(w, t.Elem(), seen)
	case reflect.Map:
		fingerprint(w, t.Key(), seen)
		fingerprint(w, t.Elem(), seen)
	case reflect.Struct:
		for i := range t.NumField() {
			f := t.Field(i)
			fmt.Fprintf(w, "%s ", f.Name)
			fingerprint(w, f.Type, seen)
		}
	}
}

// Encode appends the encoding of *p (p a non-nil pointer) to b.
func Encode(b []byte, p any) (out []byte, err error) {
	v := reflect.ValueOf(p)
	if v.Kind() != reflect.Pointer || v.IsNil() {
		return b, errors.New("statecodec: Encode needs a non-nil pointer")
	}
	v = v.Elem()
	e := &encoder{b: b, ptrs: map[ptrKey]uint64{}}
	e.b = binary.BigEndian.AppendUint64(e.b, Fingerprint(v.Type()))
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("statecodec: encoding %s: %v", typeName(v.Type()), r)
		}
	}()
	if err := e.value(v, typeName(v.Type())); err != nil {
		return b, err
	}
	return e.b, nil
}

type ptrKey struct {
	p unsafe.Pointer
	t reflect.Type
}

type encoder struct {
	b    []byte
	ptrs map[ptrKey]uint64 // pointer -> its id (1-based)
}

func (e *encoder) uint(x uint64) { e.b = binary.AppendUvarint(e.b, x) }
func (e *encoder) int(x int64)   { e.b = binary.AppendVarint(e.b, x) }
func (e *encoder) bytes(s []byte) {
	e.uint(uint64(len(s)))
	e.b = append(e.b, s...)
}

// exported returns v, which must be addressable or not read-only, as a
// value whose unexported fields may be read and set.
func exported(v reflect.Value) reflect.Value {
	if v.CanAddr() {
		return reflect.NewAt(v.Type(), unsafe.Pointer(v.UnsafeAddr())).Elem()
	}
	c := reflect.New(v.Type()).Elem()
	c.Set(v)
	return c
}

func (e *encoder) value(v reflect.Value, path string) error {
	if v.CanAddr() && !v.CanInterface() {
		v = exported(v)
	}
	t := v.Type()
	if binaryCoded(t) {
		b, err := exported(v).Interface().(encoding.BinaryMarshaler).MarshalBinary()
		if err != nil {
			return fmt.Errorf("statecodec: %s: %w", path, err)
		}
		e.bytes(b)
		return nil
	}
	switch t.Kind() {
	case reflect.Bool:
		if v.Bool() {
			e.b = append(e.b, 1)
		} else {
			e.b = append(e.b, 0)
		}
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		e.int(v.Int())
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		e.uint(v.Uint())
	case reflect.Float32, reflect.Float64:
		e.b = binary.BigEndian.AppendUint64(e.b, math.Float64bits(v.Float()))
	case reflect.Complex64, reflect.Complex128:
		c := v.Complex()
		e.b = binary.BigEndian.AppendUint64(e.b, math.Float64bits(real(c)))
		e.b = binary.BigEndian.AppendUint64(e.b, math.Float64bits(imag(c)))
	case reflect.String:
		e.uint(uint64(v.Len()))
		e.b = append(e.b, v.String()...)
	case reflect.Slice:
		if v.IsNil() {
			e.uint(0)
			return nil
		}
		e.uint(uint64(v.Len()) + 1)
		if t.Elem().Kind() == reflect.Uint8 && !binaryCoded(t.Elem()) {
			e.b = append(e.b, v.Bytes()...)
			return nil
		}
		for i := range v.Len() {
			if err := e.value(v.Index(i), path+"[]"); err != nil {
				return err
			}
		}
	case reflect.Array:
		for i := range v.Len() {
			if err := e.value(v.Index(i), path+"[]"); err != nil {
				return err
			}
		}
	case reflect.Map:
		return e.mapValue(v, path)
	case reflect.Struct:
		if !v.CanAddr() {
			v = exported(v)
		}
		for i := range v.NumField() {
			if err := e.value(v.Field(i), path+"."+t.Field(i).Name); err != nil {
				return err
			}
		}
	case reflect.Pointer:
		if v.IsNil() {
			e.uint(0)
			return nil
		}
		k := ptrKey{v.UnsafePointer(), t}
		if id, ok := e.ptrs[k]; ok {
			e.uint(id << 1)
			return nil
		}
		id := uint64(len(e.ptrs) + 1)
		e.ptrs[k] = id
		e.uint(id<<1 | 1)
		return e.value(v.Elem(), path)
	case reflect.Interface:
		if v.IsNil() {
			e.uint(0)
			return nil
		}
		if t == errorType {
			e.uint(1)
			msg := exported(v).Interface().(error).Error()
			e.uint(uint64(len(msg)))
			e.b = append(e.b, msg...)
			return nil
		}
		dyn := v.Elem()
		name := typeName(dyn.Type())
		if rt, ok := registry.Load(name); !ok || rt.(reflect.Type) != dyn.Type() {
			return fmt.Errorf("statecodec: %s holds a %s, a type not registered (statecodec.Register)", path, name)
		}
		e.uint(2)
		e.uint(uint64(len(name)))
		e.b = append(e.b, name...)
		return e.value(dyn, path)
	default:
		return fmt.Errorf("statecodec: %s is a %s, which cannot be encoded", path, t.Kind())
	}
	return nil
}

// mapValue encodes a map's entries in the order of their encoded keys.
func (e *encoder) mapValue(v reflect.Value, path string) error {
	if v.IsNil() {
		e.uint(0)
		return nil
	}
	e.uint(uint64(v.Len()) + 1)
	type entry struct {
		key []byte
		val reflect.Value
	}
	entries := make([]entry, 0, v.Len())
	ke := &encoder{ptrs: map[ptrKey]uint64{}}
	for it := v.MapRange(); it.Next(); {
		ke.b = ke.b[len(ke.b):]
		if err := ke.value(it.Key(), path+"{key}"); err != nil {
			return err
		}
		if len(ke.ptrs) > 0 {
			return fmt.Errorf("statecodec: %s has pointer keys, which cannot be encoded", path)
		}
		entries = append(entries, entry{ke.b, it.Value()})
	}
	slices.SortFunc(entries, func(a, b entry) int { return bytes.Compare(a.key, b.key) })
	for _, en := range entries {
		e.b = append(e.b, en.key...)
		if err := e.value(en.val, path+"{}"); err != nil {
			return err
		}
	}
	return nil
}

// ErrCorrupt is returned for bytes that are not an encoding of the type
// decoded (wrapped with where decoding stopped).
var ErrCorrupt = errors.New("statecodec: corrupt encoding")

// maxDepth bounds the nesting of pointers and interfaces a decoding
// follows.
const maxDepth = 10000

// Decode decodes b, an encoding of a value of *p's type, into *p (p a
// non-nil pointer); see "Decoding into a value". Bytes left over are an
// error.
func Decode(b []byte, p any) (err error) {
	v := reflect.ValueOf(p)
	if v.Kind() != reflect.Pointer || v.IsNil() {
		return errors.New("statecodec: Decode needs a non-nil pointer")
	}
	v = v.Elem()
	if len(b) < 8 {
		return fmt.Errorf("%w: too short", ErrCorrupt)
	}
	if binary.BigEndian.Uint64(b) != Fingerprint(v.Type()) {
		return fmt.Errorf("statecodec: the bytes hold another version of %s (encoded by another build of the program)", typeName(v.Type()))
	}
	d := &decoder{b: b[8:], n: len(b)}
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("%w: at byte %d: %v", ErrCorrupt, d.n-len(d.b), r)
		}
	}()
	if err := d.value(v, 0); err != nil {
		return err
	}
	if len(d.b) > 0 {
		return fmt.Errorf("%w: %d bytes left over", ErrCorrupt, len(d.b))
	}
	return nil
}

type decoder struct {
	b    []byte
	n    int // the input's length
	ptrs []reflect.Value
}

func (d *decoder) fail(what string) error {
	return fmt.Errorf("%w: at byte %d: %s", ErrCorrupt, d.n-len(d.b), what)
}

func (d *decoder) uint() (uint64, error) {
	x, n := binary.Uvarint(d.b)
	if n <= 0 {
		return 0, d.fail("bad varint")
	}
	d.b = d.b[n:]
	return x, nil
}

func (d *decoder) int() (int64, error) {
	x, n := binary.Varint(d.b)
	if n <= 0 {
		return 0, d.fail("bad varint")
	}
	d.b = d.b[n:]
	return x, nil
}

func (d *decoder) bytes() ([]byte, error) {
	n, err := d.uint()
	if err != nil {
		return nil, err
	}
	if n > uint64(len(d.b)) {
		return nil, d.fail("length past the end")
	}
	s := d.b[:n:n]
	d.b = d.b[n:]
	return s, nil
}

func (d *decoder) u64() (uint64, error) {
	if len(d.b) < 8 {
		return 0, d.fail("cut short")
	}
	x := binary.BigEndian.Uint64(d.b)
	d.b = d.b[8:]
	return x, nil
}

// count reads a nil-or-length prefix (0 nil, n+1 length n) whose
// elements of type et each take at least one byte, unless et has size 0.
func (d *decoder) count(et reflect.Type) (n int, isNil bool, err error) {
	x, err := d.uint()
	if err != nil {
		return 0, false, err
	}
	if x == 0 {
		return 0, true, nil
	}
	x--
	limit := uint64(len(d.b))
	if et.Size() == 0 {
		limit = 1 << 20
	}
	if x > limit {
		return 0, false, d.fail("length past the end")
	}
	return int(x), false, nil
}

// value decodes into v, which is settable.
func (d *decoder) value(v reflect.Value, depth int) error {
	if depth > maxDepth {
		return d.fail("nested too deep")
	}
	t := v.Type()
	if binaryCoded(t) {
		b, err := d.bytes()
		if err != nil {
			return err
		}
		if err := v.Addr().Interface().(encoding.BinaryUnmarshaler).UnmarshalBinary(b); err != nil {
			return d.fail(err.Error())
		}
		return nil
	}
	switch t.Kind() {
	case reflect.Bool:
		if len(d.b) == 0 || d.b[0] > 1 {
			return d.fail("bad bool")
		}
		v.SetBool(d.b[0] == 1)
		d.b = d.b[1:]
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		x, err := d.int()
		if err != nil {
			return err
		}
		if v.OverflowInt(x) {
			return d.fail("integer out of range")
		}
		v.SetInt(x)
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		x, err := d.uint()
		if err != nil {
			return err
		}
		if v.OverflowUint(x) {
			return d.fail("integer out of range")
		}
		v.SetUint(x)
	case reflect.Float32, reflect.Float64:
		x, err := d.u64()
		if err != nil {
			return err
		}
		v.SetFloat(math.Float64frombits(x))
	case reflect.Complex64, reflect.Complex128:
		re, err := d.u64()
		if err != nil {
			return err
		}
		im, err := d.u64()
		if err != nil {
			return err
		}
		v.SetComplex(complex(math.Float64frombits(re), math.Float64frombits(im)))
	case reflect.String:
		b, err := d.bytes()
		if err != nil {
			return err
		}
		v.SetString(string(b))
	case reflect.Slice:
		n, isNil, err := d.count(t.Elem())
		if err != nil {
			return err
		}
		if isNil {
			v.SetZero()
			return nil
		}
		if t.Elem().Kind() == reflect.Uint8 && !binaryCoded(t.Elem()) {
			s := reflect.MakeSlice(t, n, n)
			copy(s.Bytes(), d.b[:n])
			d.b = d.b[n:]
			v.Set(s)
			return nil
		}
		s := reflect.MakeSlice(t, n, n)
		for i := range n {
			if err := d.value(s.Index(i), depth); err != nil {
				return err
			}
		}
		v.Set(s)
	case reflect.Array:
		for i := range v.Len() {
			if err := d.value(v.Index(i), depth); err != nil {
				return err
			}
		}
	case reflect.Map:
		n, isNil, err := d.count(t.Key())
		if err != nil {
			return err
		}
		if isNil {
			v.SetZero()
			return nil
		}
		m := reflect.MakeMapWithSize(t, min(n, 1<<16))
		for range n {
			k := reflect.New(t.Key()).Elem()
			if err := d.value(k, depth); err != nil {
				return err
			}
			e := reflect.New(t.Elem()).Elem()
			if err := d.value(e, depth); err != nil {
				return err
			}
			m.SetMapIndex(k, e)
		}
		v.Set(m)
	case reflect.Struct:
		for i := range v.NumField() {
			f := v.Field(i)
			if !f.CanSet() {
				f = reflect.NewAt(f.Type(), unsafe.Pointer(f.UnsafeAddr())).Elem()
			}
			if err := d.value(f, depth); err != nil {
				return err
			}
		}
	case reflect.Pointer:
		x, err := d.uint()
		if err != nil {
			return err
		}
		switch {
		case x == 0:
			v.SetZero()
		case x&1 == 0: // a pointer decoded before
			i := x>>1 - 1
			if x>>1 == 0 || i >= uint64(len(d.ptrs)) {
				return d.fail("pointer to nothing decoded")
			}
			if p := d.ptrs[i]; p.Type() != t {
				return d.fail("pointer of another type")
			} else {
				v.Set(p)
			}
		default:
			if x>>1 != uint64(len(d.ptrs))+1 {
				return d.fail("pointers out of order")
			}
			if v.IsNil() {
				v.Set(reflect.New(t.Elem()))
			}
			p := reflect.New(t).Elem()
			p.Set(v)
			d.ptrs = append(d.ptrs, p)
			return d.value(v.Elem(), depth+1)
		}
	case reflect.Interface:
		x, err := d.uint()
		if err != nil {
			return err
		}
		switch {
		case x == 0:
			v.SetZero()
		case x == 1 && t == errorType:
			msg, err := d.bytes()
			if err != nil {
				return err
			}
			v.Set(reflect.ValueOf(errors.New(string(msg))))
		case x == 2:
			name, err := d.bytes()
			if err != nil {
				return err
			}
			rt, ok := registry.Load(string(name))
			if !ok {
				return d.fail(fmt.Sprintf("interface holds unregistered type %q", name))
			}
			dt := rt.(reflect.Type)
			if !dt.Implements(t) {
				return d.fail(fmt.Sprintf("%s does not implement %s", dt, t))
			}
			tmp := reflect.New(dt).Elem()
			if !v.IsNil() && v.Elem().Type() == dt {
				tmp.Set(v.Elem())
			}
			if err := d.value(tmp, depth+1); err != nil {
				return err
			}
			v.Set(tmp)
		default:
			return d.fail("bad interface tag")
		}
	default:
		return d.fail("type " + t.String() + " cannot be decoded")
	}
	return nil
}
