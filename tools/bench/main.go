// Command bench compares h2scope's capture pipeline with a bare gopacket
// read-and-decode loop and with tshark on one large capture, from one run,
// and prints the ratios. `make bench` runs it on a capture tiled by capgen.
//
// Usage:
//
//	go run ./tools/bench -h2scope bin/h2scope FILE.pcap
//	go run ./tools/bench -h2scope bin/h2scope -analyze [-h2port P] FILE.pcapng
//	go run ./tools/bench -h2scope bin/h2scope -conns [-grpc FILE.pcapng] FILE.pcap...
//
// -analyze is the comparison of GitHub issue 7: `h2scope analyze --json
// /dev/null` against the bare loop and against tshark printing every
// HTTP/2 frame type with the server port decoded as HTTP/2, by default and
// with its gRPC (and Protobuf) dissectors disabled; it also runs
// BenchmarkAnalyze (go test) for the allocations per packet.
//
// -conns is the comparison of GitHub issue 13 (make bench-conns), on
// captures of many connections: for each, analyze --json and conns --json
// against the bare loop, their max RSS and the JSON report's size, and
// with -grpc the gRPC bench capture's analyze figures; see conns.go.
package main

import (
	"bufio"
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"syscall"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/gopacket/gopacket/pcapgo"
)

func main() {
	bin := flag.String("h2scope", "bin/h2scope", "h2scope binary to measure")
	noTshark := flag.Bool("no-tshark", false, "skip the tshark measurement")
	h2port := flag.Int("h2port", 0, "measure HTTP/2 dissection instead: h2scope frames --json against tshark decoding this TCP port as HTTP/2")
	analyze := flag.Bool("analyze", false, "measure h2scope analyze --json against the bare loop and tshark -T fields -e http2.type (the server port: -h2port, else the first SYN's destination)")
	noGo := flag.Bool("no-gobench", false, "with -analyze, skip BenchmarkAnalyze (allocations per packet)")
	conns := flag.Bool("conns", false, "measure analyze --json and conns --json on each FILE (captures of many connections): time against the bare loop, max RSS, report size")
	grpc := flag.String("grpc", "", "with -conns, also measure analyze --json on this `FILE` (the gRPC bench capture), best of 3")
	flag.Parse()
	if *conns && flag.NArg() > 0 {
		if err := runConns(flag.Args(), *bin, *grpc); err != nil {
			fmt.Fprintln(os.Stderr, "bench:", err)
			os.Exit(1)
		}
		return
	}
	if flag.NArg() != 1 {
		fmt.Fprintln(os.Stderr, "usage: bench [-h2scope BIN] [-no-tshark] [-analyze] [-h2port P] FILE.pcap")
		os.Exit(2)
	}
	var err error
	switch {
	case *analyze:
		err = runAnalyze(flag.Arg(0), *bin, *h2port, !*noTshark, !*noGo)
	case *h2port > 0:
		err = runH2(flag.Arg(0), *bin, *h2port, !*noTshark)
	default:
		err = run(flag.Arg(0), *bin, !*noTshark)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

// result is one measured run.
type result struct {
	name    string
	wall    time.Duration
	maxRSS  int64 // bytes; 0 when not measured
	packets uint64
}

// rss returns r's peak resident memory in MB for a table, "-" when it was
// not measured.
func (r result) rss() string {
	if r.maxRSS <= 0 {
		return "-"
	}
	return fmt.Sprintf("%.1f MB", float64(r.maxRSS)/1e6)
}

// warmCache reads file once so that every measured run finds it in the
// page cache.
func warmCache(file string) {
	if f, err := os.Open(file); err == nil {
		io.Copy(io.Discard, f)
		f.Close()
	}
}

// tsharkTypes measures tshark printing the HTTP/2 frame type of every
// frame of file, with port decoded as HTTP/2 and the arguments extra
// (such as a display filter) before its output options: once with its
// default dissectors, once with gRPC and Protobuf disabled, each the best
// of three runs, named names[0] and names[1]. It also returns the number
// of frame types the last run printed.
func tsharkTypes(file string, port int, names [2]string, extra ...string) ([]result, uint64, error) {
	var rows []result
	var frames uint64
	for i, disable := range [][]string{nil, {"--disable-protocol", "grpc", "--disable-protocol", "protobuf"}} {
		args := append([]string{"-n", "-r", file, "-d", fmt.Sprintf("tcp.port==%d,http2", port)}, extra...)
		args = append(args, "-T", "fields", "-e", "http2.type")
		args = append(args, disable...)
		r, err := best(func() (result, error) {
			tc := &typeCounter{}
			r, err := commandTo(tc, names[i], "tshark", args...)
			frames = tc.n
			return r, err
		})
		if err != nil {
			return nil, 0, err
		}
		rows = append(rows, r)
	}
	return rows, frames, nil
}

func run(file, bin string, withTshark bool) error {
	st, err := os.Stat(file)
	if err != nil {
		return err
	}
	size := st.Size()
	warmCache(file)
	bare, err := best(func() (result, error) { return bareLoop(file) })
	if err != nil {
		return fmt.Errorf("bare loop: %w", err)
	}
	ours, err := best(func() (result, error) { return command("h2scope conns --json", bin, "conns", "--json", file) })
	if err != nil {
		return err
	}
	ours.packets = bare.packets
	rows := []result{bare, ours}
	if withTshark {
		ts, err := best(func() (result, error) { return command("tshark -r FILE -q", "tshark", "-n", "-r", file, "-q") })
		if err != nil {
			return err
		}
		ts.packets = bare.packets
		rows = append(rows, ts)
	}
	fmt.Printf("capture: %s, %.1f MB, %d packets (best of 3 runs each, warm page cache)\n\n", file, float64(size)/1e6, bare.packets)
	fmt.Printf("%-28s %10s %12s %10s %10s %12s\n", "run", "seconds", "packets/s", "MB/s", "max RSS", "vs bare loop")
	for _, r := range rows {
		s := r.wall.Seconds()
		fmt.Printf("%-28s %10.3f %12.0f %10.1f %10s %11.2fx\n", r.name, s, float64(r.packets)/s, float64(size)/1e6/s, r.rss(), s/bare.wall.Seconds())
	}
	if withTshark {
		fmt.Printf("\nh2scope is %.1fx faster than tshark -q\n", rows[2].wall.Seconds()/rows[1].wall.Seconds())
	}
	return nil
}

// runH2 measures HTTP/2 dissection: h2scope frames --json (every HTTP/2
// frame, gRPC message and TCP event as NDJSON) against tshark printing
// every HTTP/2 frame type, and the bare loop as the floor; it reports
// HTTP/2 frames per second.
func runH2(file, bin string, port int, withTshark bool) error {
	st, err := os.Stat(file)
	if err != nil {
		return err
	}
	warmCache(file)
	bare, err := best(func() (result, error) { return bareLoop(file) })
	if err != nil {
		return err
	}
	var frames uint64
	ours, err := best(func() (result, error) {
		cw := &counter{pat: []byte(`"proto":"http2"`)}
		prefaces := &counter{pat: []byte(`"type":"PREFACE"`)}
		r, err := commandTo(multi{cw, prefaces}, "h2scope frames --json", bin, "frames", "--json", file)
		frames = cw.n - prefaces.n // the connection preface is a unit, not a frame
		return r, err
	})
	if err != nil {
		return err
	}
	rows := []result{bare, ours}
	var tsFrames uint64
	if withTshark {
		ts, n, err := tsharkTypes(file, port, [2]string{"tshark -T fields http2.type", "tshark -T fields http2.type (no grpc)"}, "-Y", "http2")
		if err != nil {
			return err
		}
		rows, tsFrames = append(rows, ts...), n
	}
	fmt.Printf("capture: %s, %.1f MB, %d packets, %d HTTP/2 frames (h2scope), %d (tshark)\n\n", file, float64(st.Size())/1e6, bare.packets, frames, tsFrames)
	fmt.Printf("%-36s %10s %14s %10s %10s %12s\n", "run", "seconds", "HTTP/2 frames/s", "MB/s", "max RSS", "vs bare loop")
	for _, r := range rows {
		s := r.wall.Seconds()
		fmt.Printf("%-36s %10.3f %14.0f %10.1f %10s %11.2fx\n", r.name, s, float64(frames)/s, float64(st.Size())/1e6/s, r.rss(), s/bare.wall.Seconds())
	}
	for _, r := range rows[2:] {
		fmt.Printf("h2scope is %.1fx faster than %s\n", r.wall.Seconds()/ours.wall.Seconds(), r.name)
	}
	return nil
}

// counter is a writer that counts occurrences of pat, across writes.
type counter struct {
	pat  []byte
	tail []byte
	n    uint64
}

func (c *counter) Write(p []byte) (int, error) {
	buf := append(c.tail, p...)
	c.n += uint64(bytes.Count(buf, c.pat))
	// Keep the last len(pat)-1 bytes: a match may straddle two writes.
	k := min(len(buf), len(c.pat)-1)
	// Matches entirely inside the kept tail were counted already; drop
	// them by keeping only a tail that cannot hold a whole match.
	c.tail = append(c.tail[:0], buf[len(buf)-k:]...)
	return len(p), nil
}

// typeCounter counts the values in tshark's one-field output: one line per
// packet, values separated by commas; an empty line (the connection
// preface, which has no frame type) counts nothing.
type typeCounter struct {
	n       uint64
	inValue bool
}

func (t *typeCounter) Write(p []byte) (int, error) {
	for _, b := range p {
		switch b {
		case ',', '\n':
			if t.inValue {
				t.n++
			}
			t.inValue = false
		default:
			t.inValue = true
		}
	}
	return len(p), nil
}

// multi writes to several writers.
type multi []io.Writer

func (m multi) Write(p []byte) (int, error) {
	for _, w := range m {
		w.Write(p)
	}
	return len(p), nil
}

// best runs f three times and keeps the fastest run (and the largest RSS),
// so a run disturbed by other work on the machine does not count.
func best(f func() (result, error)) (result, error) {
	var b result
	for i := range 3 {
		r, err := f()
		if err != nil {
			return r, err
		}
		if i == 0 || r.wall < b.wall {
			r.maxRSS = max(r.maxRSS, b.maxRSS)
			b = r
		} else {
			b.maxRSS = max(b.maxRSS, r.maxRSS)
		}
	}
	return b, nil
}

// bareLoop reads file (pcap or pcapng) with pcapgo and decodes every packet with a
// DecodingLayerParser over preallocated Ethernet, IPv4, IPv6 and TCP layers
// (from IPv4 on when the link type is raw IP):
// the floor any Go pipeline on gopacket can reach.
func bareLoop(file string) (result, error) {
	r := result{name: "bare pcapgo+DLP loop"}
	start := time.Now()
	f, err := os.Open(file)
	if err != nil {
		return r, err
	}
	defer f.Close()
	br := bufio.NewReaderSize(f, 1<<20)
	var pr interface {
		ZeroCopyReadPacketData() ([]byte, gopacket.CaptureInfo, error)
		LinkType() layers.LinkType
	}
	if magic, _ := br.Peek(4); bytes.Equal(magic, []byte{0x0a, 0x0d, 0x0d, 0x0a}) {
		pr, err = pcapgo.NewNgReader(br, pcapgo.DefaultNgReaderOptions)
	} else {
		pr, err = pcapgo.NewReader(br)
	}
	if err != nil {
		return r, err
	}
	var (
		eth  layers.Ethernet
		ip4  layers.IPv4
		ip6  layers.IPv6
		tcp  layers.TCP
		pay  gopacket.Payload
		dec  []gopacket.LayerType
		tcps uint64
	)
	first := layers.LayerTypeEthernet
	switch pr.LinkType() {
	case layers.LinkTypeRaw, layers.LinkTypeIPv4, 12, 14: // raw IP (capgen -conns writes raw IPv4)
		first = layers.LayerTypeIPv4
	}
	p := gopacket.NewDecodingLayerParser(first, &eth, &ip4, &ip6, &tcp, &pay)
	p.IgnoreUnsupported = true
	for {
		data, _, err := pr.ZeroCopyReadPacketData()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return r, err
		}
		r.packets++
		if p.DecodeLayers(data, &dec) == nil {
			for _, t := range dec {
				if t == layers.LayerTypeTCP {
					tcps++
				}
			}
		}
	}
	r.wall = time.Since(start)
	if tcps == 0 {
		return r, errors.New("no TCP packets decoded")
	}
	return r, nil
}

// command runs a program with its output discarded and measures its wall
// time and peak resident memory.
func command(name, prog string, args ...string) (result, error) {
	return commandTo(io.Discard, name, prog, args...)
}

// commandTo is command with the output sent to w.
func commandTo(w io.Writer, name, prog string, args ...string) (result, error) {
	r := result{name: name}
	cmd := exec.Command(prog, args...)
	cmd.Stdout = w
	cmd.Stderr = os.Stderr
	start := time.Now()
	if err := cmd.Run(); err != nil {
		return r, fmt.Errorf("%s: %w", name, err)
	}
	r.wall = time.Since(start)
	if ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage); ok {
		r.maxRSS = int64(ru.Maxrss) * 1024 // int32 on 32-bit Linux
	}
	return r, nil
}
