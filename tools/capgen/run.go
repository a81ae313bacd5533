package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// options are capgen's settings. The zero value is not usable: run fills
// it from flags.
type options struct {
	out     string // directory for NAME.pcapng and NAME.truth.json
	only    string // one scenario, or "" for all committed ones
	big     string // -big output file
	size    int64  // -big target size in bytes
	base    string // scenario tiled by -big
	from    string // capture tiled by -big instead of a live base
	mss     int    // TCP_MAXSEG for the programs' sockets, 0 for the kernel's
	segment bool   // split loopback super-segments at mss after capture
	bench   string // -grpc-bench output file
	calls   int    // -grpc-bench unary calls
	conns   string // -conns output file
	kind    string // -conns kind: short or syn-flood
	n       string // -conns count
	seed    uint64 // -conns seed
	stderr  io.Writer
}

// run is capgen without the process: it returns the exit code, 0 on
// success, 1 on failure, 2 on bad usage.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("capgen", flag.ContinueOnError)
	fs.SetOutput(stderr)
	o := &options{stderr: stderr}
	var size string
	var list bool
	fs.StringVar(&o.out, "out", "", "write every committed scenario (or -only) to `DIR`")
	fs.StringVar(&o.only, "only", "", "with -out, write only scenario `NAME` (with its committed base or derivatives)")
	fs.StringVar(&o.big, "big", "", "write a large tiled capture to `FILE` (.pcap, or .pcapng)")
	fs.StringVar(&size, "size", "500MB", "with -big, the least `SIZE` of the file (500MB, 2GiB)")
	fs.StringVar(&o.base, "base", "http1-keepalive", "with -big, the live scenario to tile")
	fs.StringVar(&o.from, "from", "", "with -big, tile `NAME.pcapng` (next to NAME.truth.json) instead of capturing -base; needs no root")
	fs.IntVar(&o.mss, "mss", 1460, "TCP_MAXSEG of the programs' sockets, 0 for lo's default (about 65483)")
	fs.BoolVar(&o.segment, "segment", true, "split loopback's GSO super-segments into MSS-sized segments after capture (needs -mss > 0)")
	fs.StringVar(&o.bench, "grpc-bench", "", "write the benchmark capture to `FILE` (.pcapng): -calls grpc-go unary calls on 4 h2c connections (needs root), tiled up to -size when given and larger; see bench.go")
	fs.IntVar(&o.calls, "calls", 40000, "with -grpc-bench, the number of live unary calls")
	fs.StringVar(&o.conns, "conns", "", "write a synthetic capture of many connections to `FILE` (.pcap, raw IPv4), for make bench-conns; see conns.go")
	fs.StringVar(&o.kind, "kind", "short", "with -conns: short (one-request HTTP/1.1 connections) or syn-flood (unanswered SYNs from spoofed sources, and a few short connections)")
	fs.StringVar(&o.n, "n", "250k", "with -conns, the `COUNT` of short connections or flood SYNs (250k, 1M)")
	fs.Uint64Var(&o.seed, "seed", 1, "with -conns, the random seed")
	fs.BoolVar(&list, "list", false, "list the scenarios and exit")
	attack := fs.String("attack", "", "write the synthetic attack capture `KIND` (or all) to -out, with -n as its count; see attack.go")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: capgen -out DIR [-only NAME] | -big FILE [-size SIZE] [-from NAME.pcapng] | -conns FILE [-kind short|syn-flood] [-n COUNT] [-seed N] | -list")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *attack != "" {
		return runAttack(*attack, o, fs, stdout, stderr)
	}
	if list {
		for _, s := range scenarios {
			kind := "live"
			if s.stack != nil {
				kind = "live, stacks/, programs: " + strings.Join(s.tools, " ")
			}
			if s.derive != nil {
				kind = "derived from " + s.base
			}
			if !s.commit {
				kind += ", in memory only"
			}
			fmt.Fprintf(stdout, "%-28s %s\n%-28s %s\n", s.name, kind, "", s.description)
		}
		return 0
	}
	usage := func(msg string) int {
		fmt.Fprintln(stderr, "capgen:", msg)
		fs.Usage()
		return 2
	}
	if o.conns != "" {
		n, err := parseCount(o.n)
		switch {
		case err != nil:
			return usage(err.Error())
		case fs.NArg() > 0 || o.out != "" || o.big != "" || o.bench != "":
			return usage("-conns goes alone, with -kind, -n and -seed")
		case o.kind != "short" && o.kind != "syn-flood":
			return usage(fmt.Sprintf("-kind %q: want short or syn-flood", o.kind))
		}
		start := time.Now()
		st, err := writeConns(o.conns, connsSpec{kind: o.kind, n: n, seed: o.seed})
		if err != nil {
			fmt.Fprintln(stderr, "capgen:", err)
			return 1
		}
		d := time.Since(start)
		fmt.Fprintf(stdout, "%s: %d bytes, %d frames, %d connections (%d SYNs, %d of them an unanswered flood), %d HTTP requests %v, written in %v (%.0f MB/s)\n",
			o.conns, st.Bytes, st.Frames, st.Conns, st.SYNs, st.Flood, st.Requests, st.Status, d.Round(time.Millisecond), float64(st.Bytes)/1e6/d.Seconds())
		return 0
	}
	if o.bench != "" {
		// Without -size, the live capture is written as it is.
		var n int64
		var err error
		fs.Visit(func(f *flag.Flag) {
			if f.Name == "size" {
				n, err = parseSize(size)
			}
		})
		switch {
		case err != nil:
			return usage(err.Error())
		case fs.NArg() > 0 || o.out != "" || o.big != "" || o.calls <= 0 || o.mss <= 0:
			return usage("-grpc-bench goes alone, with -calls > 0, -mss > 0 and -size")
		}
		o.size = n
		if err := canCapture(); err != nil {
			fmt.Fprintln(stderr, "capgen:", err)
			return 1
		}
		if err := runGRPCBench(ctx, o, stdout); err != nil {
			fmt.Fprintln(stderr, "capgen:", err)
			return 1
		}
		return 0
	}
	switch {
	case fs.NArg() > 0:
		return usage("unexpected arguments")
	case (o.out == "") == (o.big == ""):
		return usage("give exactly one of -out and -big")
	case o.only != "" && o.out == "":
		return usage("-only goes with -out")
	case o.from != "" && o.big == "":
		return usage("-from goes with -big")
	case o.mss < 0 || o.mss > 65535:
		return usage("-mss must be 0..65535")
	case o.segment && o.mss == 0:
		return usage("-segment needs -mss > 0 (or give -segment=false)")
	}
	if o.only != "" {
		if s := findScenario(o.only); s == nil || !s.commit {
			return usage(fmt.Sprintf("no committed scenario %q (see -list)", o.only))
		}
	}
	if o.big != "" {
		n, err := parseSize(size)
		if err != nil {
			return usage(err.Error())
		}
		o.size = n
		if s := findScenario(o.base); s == nil || s.run == nil {
			return usage(fmt.Sprintf("-base %q is not a live scenario", o.base))
		}
	}
	if o.big != "" && o.from != "" {
		if err := runBig(ctx, o, stdout); err != nil {
			fmt.Fprintln(stderr, "capgen:", err)
			return 1
		}
		return 0
	}
	if err := canCapture(); err != nil {
		fmt.Fprintln(stderr, "capgen:", err)
		return 1
	}
	var err error
	if o.big != "" {
		err = runBig(ctx, o, stdout)
	} else {
		err = runOut(ctx, o, stdout)
	}
	if err != nil {
		fmt.Fprintln(stderr, "capgen:", err)
		return 1
	}
	return 0
}

// canCapture fails with errNotRoot unless a packet socket can be opened.
func canCapture() error {
	if os.Geteuid() != 0 {
		return errNotRoot
	}
	r, err := startCapture(0)
	if err != nil {
		return err
	}
	_, err = r.stop(0)
	return err
}

// runOut writes the committed scenarios (or o.only) to o.out.
func runOut(ctx context.Context, o *options, stdout io.Writer) error {
	if err := os.MkdirAll(o.out, 0o755); err != nil {
		return err
	}
	done := make(map[string]*result)
	for _, sc := range scenarios {
		if !sc.commit || !selected(sc, o.only) {
			continue
		}
		r, err := produce(ctx, sc, o, done)
		if err != nil {
			return err
		}
		dir := o.out
		if sc.stack != nil {
			dir = filepath.Join(o.out, stacksDir)
			if err := os.MkdirAll(dir, 0o755); err != nil {
				return err
			}
		}
		if err := writeScenario(dir, r); err != nil {
			return err
		}
		var bytes int
		for _, p := range r.pkts {
			bytes += len(p.data)
		}
		e := r.truth.Expect
		fmt.Fprintf(stdout, "%s: %d frames (%d bytes), %d connections, %d requests, payload %d c2s %d s2c\n",
			filepath.Join(dir, sc.name+".pcapng"), len(r.pkts), bytes, e.TCPConnections, e.HTTPRequests, e.C2SBytes, e.S2CBytes)
		if e.HTTP2Frames != nil {
			fmt.Fprintf(stdout, "\tHTTP/2: %d streams, frames %v", e.HTTP2Streams, e.HTTP2Frames)
			if e.GRPCMessages != nil {
				fmt.Fprintf(stdout, ", %d gRPC calls, messages %d c2s %d s2c, status %v", e.GRPCCalls, e.GRPCMessages.C2S, e.GRPCMessages.S2C, e.GRPCStatus)
			}
			fmt.Fprintf(stdout, ", RST_STREAM %v, window zero %d c2s %d s2c\n", e.RSTStreamCodes, e.WindowZero.C2S, e.WindowZero.S2C)
		}
	}
	return nil
}

// selected reports whether -only only selects sc: all committed scenarios
// if only is empty, else only's family: the scenario called only, the
// committed scenarios derived from it, and its base if committed, so that
// a derived capture and its base always come from the same run.
func selected(sc *scenario, only string) bool {
	if only == "" || sc.name == only || sc.base == only {
		return true
	}
	o := findScenario(only)
	return o != nil && o.base == sc.name
}

// runBig captures o.base once (or reads o.from) and tiles it into o.big.
func runBig(ctx context.Context, o *options, stdout io.Writer) error {
	var base *result
	var err error
	if o.from != "" {
		base, err = readScenario(o.from)
	} else {
		base, err = produce(ctx, findScenario(o.base), o, nil)
	}
	if err != nil {
		return err
	}
	start := time.Now()
	tiles, frames, err := writeBig(o.big, o.size, base)
	if err != nil {
		return errors.Join(fmt.Errorf("%s: %w", o.big, err), os.Remove(o.big))
	}
	st, err := os.Stat(o.big)
	if err != nil {
		return err
	}
	d := time.Since(start)
	fmt.Fprintf(stdout, "%s: %d bytes, %d frames, %d tiles of %d connections (%s), written in %v (%.0f MB/s)\n",
		o.big, st.Size(), frames, tiles, base.truth.Expect.TCPConnections, base.truth.Scenario, d.Round(time.Millisecond),
		float64(st.Size())/1e6/d.Seconds())
	return nil
}
