package capture

import (
	"bytes"
	"io"
	"strconv"
	"testing"
)

// TestBytesRead checks that BytesRead counts the bytes of the files as
// stored, compressed or not: it never decreases, stays within the files'
// sizes, reaches their sum at the end, and survives Close.
func TestBytesRead(t *testing.T) {
	pcap, pcapng := manyPackets(20000)
	gz, zs := gzipped(pcapng), zstded(pcap)
	for _, c := range []struct {
		name  string
		files [][]byte
	}{
		{"pcap", [][]byte{pcap}},
		{"pcapng", [][]byte{pcapng}},
		{"gzip", [][]byte{gz}},
		{"zstd", [][]byte{zs}},
		{"merge", [][]byte{pcap, gz}},
	} {
		t.Run(c.name, func(t *testing.T) {
			var paths []string
			var size int64
			for i, data := range c.files {
				paths = append(paths, writeTemp(t, strconv.Itoa(i), data))
				size += int64(len(data))
			}
			r, err := Open(paths, Options{})
			if err != nil {
				t.Fatal(err)
			}
			prev, rose := r.BytesRead(), 0
			for {
				_, err := r.Next()
				if err == io.EOF {
					break
				}
				if err != nil {
					t.Fatal(err)
				}
				n := r.BytesRead()
				if n < prev || n > size {
					t.Fatalf("BytesRead %d after %d, file size %d", n, prev, size)
				}
				if n > prev {
					rose++
				}
				prev = n
			}
			if prev != size {
				t.Errorf("BytesRead at the end = %d, want the file size %d", prev, size)
			}
			if c.name == "pcap" && rose < 2 {
				t.Errorf("BytesRead rose %d times over the file, want it to track the reading", rose)
			}
			r.Close()
			if n := r.BytesRead(); n != size {
				t.Errorf("BytesRead after Close = %d, want %d", n, size)
			}
		})
	}
}

// TestBytesReadAllocs checks that BytesRead allocates nothing.
func TestBytesReadAllocs(t *testing.T) {
	pcap, _ := manyPackets(100)
	r, err := Open([]string{writeTemp(t, "a", pcap)}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if allocs := testing.AllocsPerRun(100, func() { _ = r.BytesRead() }); allocs != 0 {
		t.Errorf("BytesRead allocates %v times, want 0", allocs)
	}
}

// TestBytesReadStreams checks that readers over streams (no file) count
// nothing rather than fail.
func TestBytesReadStreams(t *testing.T) {
	pcap, _ := manyPackets(10)
	r, err := openReaders([]io.Reader{bytes.NewReader(pcap)}, []string{"s"}, Options{}, limits{})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	drain(t, r)
	if n := r.BytesRead(); n != 0 {
		t.Errorf("BytesRead over a stream = %d, want 0", n)
	}
}
