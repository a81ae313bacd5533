package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strings"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/gopacket/gopacket/pcapgo"

	"github.com/h2scope/h2scope/tools/capgen/truth"
)

// newNgWriter starts a pcapng file on w: one section, one Ethernet
// interface "lo" with nanosecond timestamps.
func newNgWriter(w io.Writer, comment string) (*pcapgo.NgWriter, error) {
	return pcapgo.NewNgWriterInterface(w, pcapgo.NgInterface{
		Name:                "lo",
		OS:                  runtime.GOOS,
		LinkType:            layers.LinkTypeEthernet,
		SnapLength:          snaplen,
		TimestampResolution: 9,
	}, pcapgo.NgWriterOptions{SectionInfo: pcapgo.NgSectionInfo{
		OS:          runtime.GOOS,
		Application: "h2scope capgen",
		Comment:     comment,
	}})
}

// capInfo is the CaptureInfo of a whole, untruncated frame.
func capInfo(p packet) gopacket.CaptureInfo {
	return gopacket.CaptureInfo{Timestamp: p.ts, CaptureLength: len(p.data), Length: len(p.data)}
}

// writeScenario writes dir/NAME.pcapng and dir/NAME.truth.json, and for
// TLS scenarios the key log dir/NAME.keys (or a Decryption Secrets Block
// in the capture), each through a temporary file renamed into place.
func writeScenario(dir string, r *result) error {
	name := r.truth.Scenario
	var embedded []byte
	if r.embed {
		embedded = r.keys
	}
	err := writeAtomic(filepath.Join(dir, name+".pcapng"), func(w io.Writer) error {
		return writeNg(w, "capgen scenario "+name, embedded, r.pkts)
	})
	if err != nil {
		return err
	}
	if r.keys != nil && !r.embed {
		err := writeAtomic(filepath.Join(dir, name+".keys"), func(w io.Writer) error {
			_, err := w.Write(r.keys)
			return err
		})
		if err != nil {
			return err
		}
	}
	return writeAtomic(filepath.Join(dir, name+".truth.json"), func(w io.Writer) error {
		return writeTruth(w, r.truth)
	})
}

// readScenario reads a capture NAME.pcapng and its NAME.truth.json.
func readScenario(pcapng string) (*result, error) {
	tr, err := truth.Load(strings.TrimSuffix(pcapng, ".pcapng") + ".truth.json")
	if err != nil {
		return nil, err
	}
	f, err := os.Open(pcapng)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	r, err := pcapgo.NewNgReader(bufio.NewReader(f), pcapgo.DefaultNgReaderOptions)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", pcapng, err)
	}
	if r.LinkType() != layers.LinkTypeEthernet {
		return nil, fmt.Errorf("%s: link type %v, want Ethernet", pcapng, r.LinkType())
	}
	res := &result{truth: tr}
	for {
		data, ci, err := r.ReadPacketData()
		if errors.Is(err, io.EOF) {
			return res, nil
		}
		if err != nil {
			return nil, fmt.Errorf("%s: frame %d: %w", pcapng, len(res.pkts)+1, err)
		}
		res.pkts = append(res.pkts, packet{ts: ci.Timestamp, data: data})
	}
}

// writeTruth writes t as indented JSON with a final newline.
func writeTruth(w io.Writer, t *truth.Truth) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(t)
}

// writeAtomic writes path through fill, via a temporary file in the same
// directory renamed over path once complete.
func writeAtomic(path string, fill func(io.Writer) error) error {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return err
	}
	defer os.Remove(f.Name())
	bw := bufio.NewWriterSize(f, 1<<20)
	if err := fill(bw); err != nil {
		f.Close()
		return fmt.Errorf("%s: %w", path, err)
	}
	if err := bw.Flush(); err != nil {
		f.Close()
		return fmt.Errorf("%s: %w", path, err)
	}
	if err := f.Chmod(0o644); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	return os.Rename(f.Name(), path)
}
