package grpc

import (
	"testing"

	"github.com/h2scope/h2scope/internal/pack/packtest"
)

// FuzzCallRoundTrip fills every field of call records from the input and
// checks that a finished call's record reads back exactly from its
// encoded form.
func FuzzCallRoundTrip(f *testing.F) {
	f.Add([]byte{}, []byte{})
	f.Add([]byte("\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff"), []byte("/helloworld.Greeter/SayHello"))
	f.Add([]byte("\x80\x00\x00\x00\x00\x00\x00\x00\x01\x02\x03\x04\x05\x06\x07\x08\x09\x0a\x0b\x0c\x0d\x0e\x0f"), []byte{9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9})
	f.Fuzz(func(t *testing.T, a, b []byte) {
		packtest.RoundTrip[callRec](t, a, b, a)
	})
}
