package capture

import (
	"bytes"
	"os"
	"reflect"
	"strings"
	"testing"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
)

// TestOpenStdin reads a capture from standard input, a pipe, as it is and
// compressed, with a file merged in, and checks the packets are those of
// the file.
func TestOpenStdin(t *testing.T) {
	const name = "../../testdata/pcaps/grpc-unary-h2c.pcapng"
	plain, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	var gz, zs bytes.Buffer
	gw := gzip.NewWriter(&gz)
	gw.Write(plain)
	gw.Close()
	zw, _ := zstd.NewWriter(&zs)
	zw.Write(plain)
	zw.Close()

	r, err := Open([]string{name}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	want, errs := drain(t, r)
	r.Close()
	if len(errs) > 0 || len(want) == 0 {
		t.Fatalf("reading %s: %d packets, %v", name, len(want), errs)
	}
	for _, tt := range []struct {
		format string
		data   []byte
	}{{"pcapng", plain}, {"gzip", gz.Bytes()}, {"zstd", zs.Bytes()}} {
		t.Run(tt.format, func(t *testing.T) {
			withStdin(t, tt.data)
			r, err := Open([]string{Stdin}, Options{})
			if err != nil {
				t.Fatal(err)
			}
			got, errs := drain(t, r)
			r.Close()
			if len(errs) > 0 {
				t.Fatal(errs)
			}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("standard input gave %d packets, the file %d, or they differ", len(got), len(want))
			}
		})
	}
	t.Run("twice", func(t *testing.T) {
		withStdin(t, plain)
		_, err := Open([]string{Stdin, name, Stdin}, Options{})
		if err == nil || err.Error() != "capture: standard input (-) given twice" {
			t.Errorf("Open(-, file, -) = %v", err)
		}
	})
	t.Run("not a capture", func(t *testing.T) {
		withStdin(t, []byte("hello, world\n"))
		_, err := Open([]string{Stdin}, Options{})
		if err == nil || !strings.HasPrefix(err.Error(), StdinName+": ") {
			t.Errorf("Open(-) of text = %v, want an error naming %s", err, StdinName)
		}
	})
}

// withStdin makes os.Stdin, until the test ends, a pipe that yields data
// and then ends.
func withStdin(t *testing.T, data []byte) {
	t.Helper()
	pr, pw, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	go func() {
		pw.Write(data)
		pw.Close()
	}()
	old := os.Stdin
	os.Stdin = pr
	t.Cleanup(func() {
		os.Stdin = old
		pr.Close()
	})
}
