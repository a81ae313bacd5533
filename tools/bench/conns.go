package main

import (
	"fmt"
	"os"
	"path/filepath"
)

// connsRow is one capture's measurements in -conns mode.
type connsRow struct {
	file    string
	size    int64
	packets uint64
	conns   uint64 // lines of conns --json
	bare    result
	analyze result
	report  int64 // bytes of the --json report
	list    result
}

// runConns is the comparison of GitHub issue 13 (make bench-conns): for
// each capture, the bare loop, then `h2scope analyze --json F` with F a
// temporary file (its size is the report's), then `h2scope conns --json`
// with the output counted and discarded: the loop and analyze best of
// connsRuns, alternating (loopAndAnalyze), conns --json once (it is slow on
// these captures), the ratio taken within the same run. grpc, when not "",
// is measured as -analyze does, without tshark and conns.
func runConns(files []string, bin, grpc string) error {
	tmp, err := os.MkdirTemp("", "h2scope-bench-conns")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	var rows []connsRow
	for _, file := range files {
		row, err := measureConns(file, bin, tmp, true)
		if err != nil {
			return err
		}
		rows = append(rows, row)
		fmt.Fprintf(os.Stderr, "bench: %s: analyze %.1f s (%.1fx), %s\n", filepath.Base(file), row.analyze.wall.Seconds(),
			row.analyze.wall.Seconds()/row.bare.wall.Seconds(), row.analyze.rss())
	}
	if grpc != "" {
		row, err := measureConns(grpc, bin, tmp, false)
		if err != nil {
			return err
		}
		rows = append(rows, row) // without conns --json: "-"
	}
	fmt.Printf("h2scope analyze --json F and conns --json against the bare gopacket read+decode loop (same run; warm page cache)\n\n")
	fmt.Printf("| capture | MB | packets | connections | bare loop | analyze --json | vs loop | max RSS | JSON report | conns --json | conns max RSS |\n")
	fmt.Printf("|---|---|---|---|---|---|---|---|---|---|---|\n")
	for _, r := range rows {
		conns, list, listRSS := fmt.Sprint(r.conns), fmt.Sprintf("%.2f s", r.list.wall.Seconds()), r.list.rss()
		if r.list.wall == 0 {
			conns, list, listRSS = "-", "-", "-"
		}
		fmt.Printf("| %s | %.1f | %d | %s | %.2f s | %.2f s | %.1fx | %s | %s | %s | %s |\n",
			filepath.Base(r.file), float64(r.size)/1e6, r.packets, conns, r.bare.wall.Seconds(), r.analyze.wall.Seconds(),
			r.analyze.wall.Seconds()/r.bare.wall.Seconds(), r.analyze.rss(), mb(r.report), list, listRSS)
	}
	fmt.Printf("\n(bare loop and analyze --json: best of %d runs each, alternating; conns --json: one run)\n", connsRuns)
	return nil
}

// mb formats a byte count in MB.
func mb(n int64) string {
	return fmt.Sprintf("%.1f MB", float64(n)/1e6)
}

// newConnsRow starts the row of a capture: its size, and the file in the
// page cache.
func newConnsRow(file string) (connsRow, error) {
	row := connsRow{file: file}
	var err error
	if row.size, err = fileSize(file); err != nil {
		return row, err
	}
	warmCache(file)
	return row, nil
}

// measureConns measures one capture for runConns; conns --json only when
// list is set (the gRPC capture is measured as -analyze does, without it).
func measureConns(file, bin, tmp string, list bool) (connsRow, error) {
	row, err := newConnsRow(file)
	if err != nil {
		return row, err
	}
	out := filepath.Join(tmp, "report.json")
	if row.bare, row.analyze, err = loopAndAnalyze(file, bin, out); err != nil {
		return row, err
	}
	row.packets = row.bare.packets
	if row.report, err = fileSize(out); err != nil || !list {
		return row, err
	}
	os.Remove(out)
	lines := &counter{pat: []byte("\n")}
	if row.list, err = commandTo(lines, "h2scope conns --json", bin, "conns", "--json", file); err != nil {
		return row, err
	}
	row.conns = lines.n
	return row, nil
}

// loopAndAnalyze measures the bare loop and `h2scope analyze --json out`
// on file connsRuns times each, alternating so that both see the same
// machine, and keeps the fastest run of each (and the largest RSS): the
// loop takes a tenth of a second on some of these captures, so one run's
// noise would move the ratio by a third.
func loopAndAnalyze(file, bin, out string) (bare, ours result, err error) {
	for i := range connsRuns {
		b, err := bareLoop(file)
		if err != nil {
			return bare, ours, fmt.Errorf("bare loop: %w", err)
		}
		a, err := command("h2scope analyze --json F", bin, "analyze", "--json", out, file)
		if err != nil {
			return bare, ours, err
		}
		if i == 0 || b.wall < bare.wall {
			bare = b
		}
		if i == 0 || a.wall < ours.wall {
			a.maxRSS = max(a.maxRSS, ours.maxRSS)
			ours = a
		} else {
			ours.maxRSS = max(ours.maxRSS, a.maxRSS)
		}
	}
	return bare, ours, nil
}

// connsRuns is how many times loopAndAnalyze runs each: on this shared
// machine a run now and then takes a third longer than the others, the
// bare loop's too.
const connsRuns = 5

func fileSize(path string) (int64, error) {
	st, err := os.Stat(path)
	if err != nil {
		return 0, err
	}
	return st.Size(), nil
}
