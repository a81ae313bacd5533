package capture

import (
	"bytes"
	"strconv"
	"testing"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/gopacket/gopacket/pcapgo"
)

// manyPackets returns a pcap and a pcapng file of n packets of assorted
// sizes, written by pcapgo.
func manyPackets(n int) (pcap, pcapng []byte) {
	var a, b bytes.Buffer
	w := pcapgo.NewWriterNanos(&a)
	w.WriteFileHeader(65535, layers.LinkTypeEthernet)
	nw, _ := pcapgo.NewNgWriter(&b, layers.LinkTypeEthernet)
	for i := range n {
		data := payload(60+i%1500, byte(i))
		ci := gopacket.CaptureInfo{Timestamp: time.Unix(t0, int64(i)*1000), CaptureLength: len(data), Length: len(data)}
		w.WritePacket(ci, data)
		nw.WritePacket(ci, data)
	}
	nw.Flush()
	return a.Bytes(), b.Bytes()
}

// TestNextAllocs checks that Next allocates nothing per packet once warmed
// up: for a pcap and a pcapng file, for a merge of the two, and through
// the gzip and zstd decompressors.
func TestNextAllocs(t *testing.T) {
	pcap, pcapng := manyPackets(2000)
	gz, zs := gzipped(pcap), zstded(pcapng)
	for _, c := range []struct {
		name  string
		files [][]byte
	}{
		{"pcap", [][]byte{pcap}},
		{"pcapng", [][]byte{pcapng}},
		{"merge", [][]byte{pcap, pcapng}},
		{"gzip", [][]byte{gz}},
		{"zstd", [][]byte{zs}},
	} {
		t.Run(c.name, func(t *testing.T) {
			var paths []string
			for i, data := range c.files {
				paths = append(paths, writeTemp(t, strconv.Itoa(i), data))
			}
			r, err := Open(paths, Options{})
			if err != nil {
				t.Fatal(err)
			}
			defer r.Close()
			for range 10 {
				if _, err := r.Next(); err != nil {
					t.Fatal(err)
				}
			}
			var err2 error
			allocs := testing.AllocsPerRun(1000, func() {
				if _, err := r.Next(); err != nil {
					err2 = err
				}
			})
			if err2 != nil {
				t.Fatal(err2)
			}
			if allocs != 0 {
				t.Errorf("Next allocates %v times per packet, want 0", allocs)
			}
		})
	}
}
