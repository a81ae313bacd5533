package main

import (
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/gopacket/gopacket/pcapgo"

	"github.com/h2scope/h2scope/tools/capgen/truth"
)

func decodeTCP(t *testing.T, data []byte) (*layers.IPv4, *layers.TCP) {
	t.Helper()
	p := gopacket.NewPacket(data, layers.LayerTypeEthernet, gopacket.Default)
	ip, _ := p.Layer(layers.LayerTypeIPv4).(*layers.IPv4)
	tcp, _ := p.Layer(layers.LayerTypeTCP).(*layers.TCP)
	if ip == nil || tcp == nil {
		t.Fatalf("not IPv4 TCP: %v", p)
	}
	return ip, tcp
}

// TestTile tiles a two-connection synthetic capture three times and
// checks that every tile is new connections with the same shape: fresh
// client ports, sequence numbers shifted consistently in both directions,
// the same payload, right IPv4 lengths and advancing time.
func TestTile(t *testing.T) {
	const server = 8080
	base := append(newSynthConn(t, 40000, server, synthStart).exchange(3, 100),
		newSynthConn(t, 40001, server, synthStart.Add(time.Millisecond)).exchange(2, 1448)...)
	tl, err := newTiler(base, server)
	if err != nil {
		t.Fatal(err)
	}
	type key struct{ tile, conn int }
	ports := make(map[uint16]key)
	var lastTS time.Time
	for k := range 3 {
		i := 0
		isn := map[uint16]uint32{} // rewritten client port -> client ISN
		err := tl.tile(k, func(ts time.Time, data []byte) error {
			orig := base[i]
			if !ts.After(lastTS) {
				t.Errorf("tile %d frame %d: time %v not after %v", k, i+1, ts, lastTS)
			}
			if want := orig.ts.Add(time.Duration(k) * tl.period); !ts.Equal(want) {
				t.Errorf("tile %d frame %d: time %v, want %v", k, i+1, ts, want)
			}
			lastTS = ts
			if len(data) != len(orig.data) {
				t.Fatalf("tile %d frame %d: %d bytes, base has %d", k, i+1, len(data), len(orig.data))
			}
			ip, tcp := decodeTCP(t, data)
			oip, otcp := decodeTCP(t, orig.data)
			if int(ip.Length) != len(data)-14 || ip.Length != oip.Length {
				t.Errorf("tile %d frame %d: IPv4 length %d", k, i+1, ip.Length)
			}
			if !bytes.Equal(tcp.Payload, otcp.Payload) {
				t.Errorf("tile %d frame %d: payload changed", k, i+1)
			}
			client, oclient := tcp.SrcPort, otcp.SrcPort
			if otcp.SrcPort == server {
				client, oclient = tcp.DstPort, otcp.DstPort
				if tcp.SrcPort != server {
					t.Errorf("tile %d frame %d: server port %d", k, i+1, tcp.SrcPort)
				}
			}
			conn := key{k, int(oclient)}
			if prev, ok := ports[uint16(client)]; ok && prev != conn {
				t.Errorf("tile %d frame %d: port %d already used by %v", k, i+1, client, prev)
			}
			ports[uint16(client)] = conn
			// Offsets from the base are the same within a connection.
			if otcp.SYN && !otcp.ACK {
				isn[uint16(client)] = tcp.Seq - otcp.Seq
			}
			if otcp.SrcPort != server && tcp.Seq-otcp.Seq != isn[uint16(client)] {
				t.Errorf("tile %d frame %d: c2s seq shift %d, SYN had %d", k, i+1, tcp.Seq-otcp.Seq, isn[uint16(client)])
			}
			if otcp.SrcPort == server && otcp.ACK && tcp.Ack-otcp.Ack != isn[uint16(client)] {
				t.Errorf("tile %d frame %d: s2c ack shift %d, want %d", k, i+1, tcp.Ack-otcp.Ack, isn[uint16(client)])
			}
			if k > 0 && tcp.Seq == otcp.Seq {
				t.Errorf("tile %d frame %d: seq not shifted", k, i+1)
			}
			i++
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		if i != len(base) {
			t.Fatalf("tile %d: %d frames, want %d", k, i, len(base))
		}
	}
	if len(ports) != 6 {
		t.Errorf("%d client ports over 3 tiles of 2 connections, want 6", len(ports))
	}
}

// TestTilePortsSkipServer checks the client port sequence never yields
// the server's port and wraps within 1024-65535.
func TestTilePortsSkipServer(t *testing.T) {
	tl := &tiler{serverPort: 5000, clientIdx: map[uint16]int{1: 0}}
	seen := make(map[uint16]bool)
	for k := range 64511 {
		p := tl.port(k, 0)
		if p < 1024 || p == 5000 || seen[p] {
			t.Fatalf("tile %d: port %d", k, p)
		}
		seen[p] = true
	}
	if p := tl.port(64511, 0); p != 1024 {
		t.Errorf("after every port, got %d, want 1024 again", p)
	}
}

// TestWriteBig writes a small tiled pcap and reads it back.
func TestWriteBig(t *testing.T) {
	base := newSynthConn(t, 40000, 8080, synthStart).exchange(4, 1000)
	r := &result{pkts: base, truth: &truth.Truth{Scenario: "synthetic", Server: "127.0.0.1:8080"}}
	for _, name := range []string{"big.pcap", "big.pcapng"} {
		t.Run(name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), name)
			const size = 100_000
			tiles, frames, err := writeBig(path, size, r)
			if err != nil {
				t.Fatal(err)
			}
			if frames != tiles*len(base) {
				t.Errorf("%d frames in %d tiles of %d", frames, tiles, len(base))
			}
			st, err := os.Stat(path)
			if err != nil {
				t.Fatal(err)
			}
			if st.Size() < size || st.Size() > size+10_000 {
				t.Errorf("file is %d bytes, want a little over %d", st.Size(), size)
			}
			f, err := os.Open(path)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			var src gopacket.PacketDataSource
			if name == "big.pcapng" {
				src, err = pcapgo.NewNgReader(f, pcapgo.DefaultNgReaderOptions)
			} else {
				src, err = pcapgo.NewReader(f)
			}
			if err != nil {
				t.Fatal(err)
			}
			n, syns := 0, 0
			for {
				data, _, err := src.ReadPacketData()
				if errors.Is(err, io.EOF) {
					break
				}
				if err != nil {
					t.Fatal(err)
				}
				if _, tcp := decodeTCP(t, data); tcp.SYN && !tcp.ACK {
					syns++
				}
				n++
			}
			if n != frames || syns != tiles {
				t.Errorf("read %d frames, %d SYNs; wrote %d frames, %d tiles", n, syns, frames, tiles)
			}
		})
	}
}

func TestParseSize(t *testing.T) {
	tests := []struct {
		in   string
		want int64
		err  bool
	}{
		{"500MB", 500e6, false}, {"300mb", 300e6, false}, {"2GiB", 2 << 30, false}, {"1.5GB", 1.5e9, false},
		{"64KiB", 64 << 10, false}, {"1048576", 1048576, false}, {"10B", 10, false},
		{"", 0, true}, {"MB", 0, true}, {"-5MB", 0, true}, {"5XB", 0, true},
	}
	for _, tt := range tests {
		got, err := parseSize(tt.in)
		if (err != nil) != tt.err || got != tt.want {
			t.Errorf("parseSize(%q) = %d, %v; want %d, error %v", tt.in, got, err, tt.want, tt.err)
		}
	}
}
