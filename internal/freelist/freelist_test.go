package freelist

import "testing"

func TestList(t *testing.T) {
	l := List[int]{Max: 2}
	if v := l.Get(); v == nil || *v != 0 {
		t.Fatalf("Get on an empty list: %v, want a new zero value", v)
	}
	a, b, c := new(int), new(int), new(int)
	*a, *b, *c = 1, 2, 3
	l.Put(a)
	if l.Full() {
		t.Fatal("full with 1 of 2")
	}
	l.Put(b)
	if !l.Full() {
		t.Fatal("not full with 2 of 2")
	}
	l.Put(c) // dropped
	if l.Len() != 2 {
		t.Fatalf("Len %d after 3 puts, want 2", l.Len())
	}
	if v := l.Get(); v != b {
		t.Errorf("first Get: %v, want the last kept (%v)", v, b)
	}
	if v := l.Get(); v != a {
		t.Errorf("second Get: %v, want %v", v, a)
	}
	if v := l.Get(); v == a || v == b || v == c || *v != 0 {
		t.Errorf("Get on the emptied list: %v, want a new zero value", v)
	}
	var zero List[int]
	zero.Put(a)
	if zero.Len() != 0 {
		t.Error("the zero List kept a value")
	}
}

// TestChunk checks that a List with Chunk hands out distinct zero values,
// a chunk's worth per allocation, and still reuses what is put first.
func TestChunk(t *testing.T) {
	l := List[[4]int]{Max: 8, Chunk: 16}
	got := make([]*[4]int, 0, 64)
	allocs := testing.AllocsPerRun(1, func() { // run twice: 64 values
		for range 32 {
			v := l.Get()
			if *v != ([4]int{}) {
				t.Fatalf("Get: %v, not zero", *v)
			}
			v[0] = 1
			got = append(got, v)
		}
	})
	if allocs != 2 {
		t.Errorf("%v allocations for 32 values in chunks of 16, want 2", allocs)
	}
	seen := map[*[4]int]bool{}
	for _, v := range got {
		if seen[v] {
			t.Fatalf("%p handed out twice", v)
		}
		seen[v] = true
	}
	p := new([4]int)
	l.Put(p)
	if v := l.Get(); v != p {
		t.Errorf("Get after Put: %p, want %p", v, p)
	}
}
