package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/gopacket/gopacket/pcapgo"
)

// runAnalyze is the comparison of issue 7: the bare loop, h2scope analyze
// --json to /dev/null, tshark -T fields -e http2.type with port decoded
// as HTTP/2 (by default, and with gRPC and Protobuf disabled), each the
// best of three runs; and, with goBench, BenchmarkAnalyze for the
// allocations per packet.
func runAnalyze(file, bin string, port int, withTshark, goBench bool) error {
	st, err := os.Stat(file)
	if err != nil {
		return err
	}
	if port == 0 {
		if port, err = serverPort(file); err != nil {
			return err
		}
	}
	warmCache(file)
	bare, err := best(func() (result, error) { return bareLoop(file) })
	if err != nil {
		return fmt.Errorf("bare loop: %w", err)
	}
	ours, err := best(func() (result, error) {
		return command("h2scope analyze --json /dev/null", bin, "analyze", "--json", os.DevNull, file)
	})
	if err != nil {
		return err
	}
	rows := []result{bare, ours}
	var tsFrames uint64
	if withTshark {
		ts, n, err := tsharkTypes(file, port, [2]string{"tshark -T fields -e http2.type", "tshark ... --disable-protocol grpc"})
		if err != nil {
			return err
		}
		rows, tsFrames = append(rows, ts...), n
	}
	fmt.Printf("capture: %s, %.1f MB, %d packets, server port %d", file, float64(st.Size())/1e6, bare.packets, port)
	if withTshark {
		fmt.Printf(", %d HTTP/2 frames (tshark)", tsFrames)
	}
	fmt.Printf("\n%s\n(best of 3 runs each, warm page cache; max RSS is the largest of the 3)\n\n", captureComment(file))
	fmt.Printf("%-36s %10s %12s %10s %10s %12s %12s\n", "run", "seconds", "packets/s", "MB/s", "max RSS", "vs bare loop", "vs analyze")
	for _, r := range rows {
		s := r.wall.Seconds()
		fmt.Printf("%-36s %10.3f %12.0f %10.1f %10s %11.2fx %11.2fx\n", r.name, s, float64(bare.packets)/s,
			float64(st.Size())/1e6/s, r.rss(), s/bare.wall.Seconds(), s/ours.wall.Seconds())
	}
	fmt.Printf("\nanalyze / bare loop: %.2fx (target <= 4x)\n", ours.wall.Seconds()/bare.wall.Seconds())
	for _, r := range rows[2:] {
		fmt.Printf("%s / analyze: %.1fx (target >= 50x)\n", r.name, r.wall.Seconds()/ours.wall.Seconds())
	}
	if goBench {
		line, err := benchAnalyze(file)
		if err != nil {
			return err
		}
		fmt.Printf("\ngo test -bench BenchmarkAnalyze -benchmem (in process, no report rendering):\n%s\n", line)
	}
	return nil
}

// benchAnalyze runs BenchmarkAnalyze on file and returns its result line,
// which carries allocs/op, packets/op and allocs/packet.
func benchAnalyze(file string) (string, error) {
	abs, err := filepath.Abs(file)
	if err != nil {
		return "", err
	}
	cmd := exec.Command("go", "test", "-run", "^$", "-bench", "^BenchmarkAnalyze$", "-benchmem", "-benchtime", "3x", "./analyze")
	cmd.Env = append(os.Environ(), "H2SCOPE_BENCH_FILE="+abs)
	cmd.Stderr = os.Stderr
	out, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("BenchmarkAnalyze: %w\n%s", err, out)
	}
	for _, l := range strings.Split(string(out), "\n") {
		if strings.HasPrefix(l, "BenchmarkAnalyze") {
			return l, nil
		}
	}
	return "", fmt.Errorf("BenchmarkAnalyze: no result line in\n%s", out)
}

// serverPort returns the destination port of the first SYN in file (a
// pcap or pcapng): the server port to decode as HTTP/2.
func serverPort(file string) (int, error) {
	f, err := os.Open(file)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	r, err := pcapgo.NewNgReader(bufio.NewReader(f), pcapgo.DefaultNgReaderOptions)
	var src gopacket.PacketDataSource = r
	if err != nil {
		if _, err := f.Seek(0, io.SeekStart); err != nil {
			return 0, err
		}
		pr, err := pcapgo.NewReader(bufio.NewReader(f))
		if err != nil {
			return 0, err
		}
		src = pr
	}
	for range 100_000 {
		data, _, err := src.ReadPacketData()
		if err != nil {
			break
		}
		p := gopacket.NewPacket(data, layers.LayerTypeEthernet, gopacket.NoCopy)
		if t, ok := p.Layer(layers.LayerTypeTCP).(*layers.TCP); ok && t.SYN && !t.ACK {
			return int(t.DstPort), nil
		}
	}
	return 0, errors.New(file + ": no SYN in the first 100000 packets: give -h2port")
}

// captureComment returns the first section's comment of a pcapng file
// (capgen says there how it made the capture: live or tiled), or "".
func captureComment(file string) string {
	f, err := os.Open(file)
	if err != nil {
		return ""
	}
	defer f.Close()
	b := make([]byte, 4096)
	n, _ := io.ReadFull(f, b)
	m := regexp.MustCompile(`capgen [ -~]{8,}`).Find(b[:n])
	return string(m)
}
