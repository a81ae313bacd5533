package main

import (
	"testing"
	"time"

	"golang.org/x/net/bpf"
)

// TestPortFilter runs the capture filter (less the packet type check,
// which bpf.VM cannot run) over frames to and from other ports and
// addresses.
func TestPortFilter(t *testing.T) {
	vm, err := bpf.NewVM(portFilter(8080))
	if err != nil {
		t.Fatal(err)
	}
	frame := func(src, dst uint16) []byte {
		s := newSynthConn(t, src, dst, time.Unix(0, 0))
		s.frame(true, false, true, false, []byte("x"))
		return s.pkts[0].data
	}
	other := frame(40000, 8080)
	other[14+15] = 2 // source 127.0.0.2
	arp := frame(40000, 8080)
	arp[12], arp[13] = 0x08, 0x06
	frag := frame(40000, 8080)
	frag[14+7] = 1 // fragment offset 8
	tests := []struct {
		name string
		data []byte
		want bool
	}{
		{"to server", frame(40000, 8080), true},
		{"from server", frame(8080, 40000), true},
		{"other ports", frame(40000, 8081), false},
		{"other address", other, false},
		{"not IPv4", arp, false},
		{"fragment", frag, false},
	}
	for _, tt := range tests {
		n, err := vm.Run(tt.data)
		if err != nil {
			t.Fatalf("%s: %v", tt.name, err)
		}
		if got := n > 0; got != tt.want {
			t.Errorf("%s: accepted %v, want %v", tt.name, got, tt.want)
		}
	}
	if _, err := loopbackFilter(8080); err != nil {
		t.Errorf("loopbackFilter: %v", err)
	}
}
