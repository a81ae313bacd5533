package layer

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"os"
	"testing"

	"github.com/gopacket/gopacket/layers"
	"github.com/gopacket/gopacket/pcapgo"
)

// corpusDir is the shared capture corpus, relative to this package.
const corpusDir = "../../../shared/corpus"

// frameFunc receives one frame of a capture; data is valid only during the
// call.
type frameFunc func(link layers.LinkType, data []byte, origLen int)

// readCapture calls fn for every frame of the pcap or pcapng file at path,
// with each frame's own link type.
func readCapture(tb testing.TB, path string, fn frameFunc) {
	tb.Helper()
	f, err := os.Open(path)
	if err != nil {
		tb.Fatal(err)
	}
	defer f.Close()
	br := bufio.NewReader(f)
	magic, err := br.Peek(4)
	if err != nil {
		tb.Fatalf("%s: %v", path, err)
	}
	if bytes.Equal(magic, []byte{0x0A, 0x0D, 0x0D, 0x0A}) {
		r, err := pcapgo.NewNgReader(br, pcapgo.NgReaderOptions{WantMixedLinkType: true})
		if err != nil {
			tb.Fatalf("%s: %v", path, err)
		}
		for {
			data, ci, err := r.ZeroCopyReadPacketData()
			if errors.Is(err, io.EOF) {
				return
			}
			if err != nil {
				tb.Fatalf("%s: %v", path, err)
			}
			iface, err := r.Interface(ci.InterfaceIndex)
			if err != nil {
				tb.Fatalf("%s: %v", path, err)
			}
			fn(iface.LinkType, data, ci.Length)
		}
	}
	r, err := pcapgo.NewReader(br)
	if err != nil {
		tb.Fatalf("%s: %v", path, err)
	}
	link := r.LinkType()
	for {
		data, ci, err := r.ZeroCopyReadPacketData()
		if errors.Is(err, io.EOF) {
			return
		}
		if err != nil {
			tb.Fatalf("%s: %v", path, err)
		}
		fn(link, data, ci.Length)
	}
}

// skipWithoutCorpus skips the test when the shared corpus is absent.
func skipWithoutCorpus(tb testing.TB) {
	tb.Helper()
	if _, err := os.Stat(corpusDir); err != nil {
		tb.Skipf("capture corpus not found at %s (%v); skipping conformance against tshark", corpusDir, err)
	}
}
