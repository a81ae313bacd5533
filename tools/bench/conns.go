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
// with the output counted and discarded; each once (these captures are
// slow to analyse and the machine is shared), the ratio taken within the
// same run. grpc, when not "", is measured as -analyze does, without
// tshark: the bare loop and analyze --json, best of three.
func runConns(files []string, bin, grpc string) error {
	tmp, err := os.MkdirTemp("", "h2scope-bench-conns")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	var rows []connsRow
	for _, file := range files {
		row, err := measureConns(file, bin, tmp)
		if err != nil {
			return err
		}
		rows = append(rows, row)
		fmt.Fprintf(os.Stderr, "bench: %s: analyze %.1f s (%.1fx), %s\n", filepath.Base(file), row.analyze.wall.Seconds(),
			row.analyze.wall.Seconds()/row.bare.wall.Seconds(), row.analyze.rss())
	}
	var g *connsRow
	if grpc != "" {
		row, err := measureGRPC(grpc, bin, tmp)
		if err != nil {
			return err
		}
		g = &row
	}
	fmt.Printf("h2scope analyze --json F and conns --json against the bare gopacket read+decode loop (same run; warm page cache)\n\n")
	fmt.Printf("| capture | MB | packets | connections | bare loop | analyze --json | vs loop | max RSS | JSON report | conns --json | conns max RSS |\n")
	fmt.Printf("|---|---|---|---|---|---|---|---|---|---|---|\n")
	for _, r := range append(rows, deref(g)...) {
		conns, list, listRSS := fmt.Sprint(r.conns), fmt.Sprintf("%.2f s", r.list.wall.Seconds()), r.list.rss()
		if r.list.wall == 0 {
			conns, list, listRSS = "-", "-", "-"
		}
		fmt.Printf("| %s | %.1f | %d | %s | %.2f s | %.2f s | %.1fx | %s | %s | %s | %s |\n",
			filepath.Base(r.file), float64(r.size)/1e6, r.packets, conns, r.bare.wall.Seconds(), r.analyze.wall.Seconds(),
			r.analyze.wall.Seconds()/r.bare.wall.Seconds(), r.analyze.rss(), mb(r.report), list, listRSS)
	}
	if g != nil {
		fmt.Printf("\n(%s: best of 3 runs each; the others one run each)\n", filepath.Base(g.file))
	}
	return nil
}

func deref(r *connsRow) []connsRow {
	if r == nil {
		return nil
	}
	return []connsRow{*r}
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

// measureConns measures one capture for runConns.
func measureConns(file, bin, tmp string) (connsRow, error) {
	row, err := newConnsRow(file)
	if err != nil {
		return row, err
	}
	if row.bare, err = bareLoop(file); err != nil {
		return row, fmt.Errorf("bare loop: %w", err)
	}
	row.packets = row.bare.packets
	out := filepath.Join(tmp, "report.json")
	if row.analyze, err = command("h2scope analyze --json F", bin, "analyze", "--json", out, file); err != nil {
		return row, err
	}
	if row.report, err = fileSize(out); err != nil {
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

// measureGRPC measures the gRPC bench capture as -analyze does, without
// tshark and conns: best of three.
func measureGRPC(file, bin, tmp string) (connsRow, error) {
	row, err := newConnsRow(file)
	if err != nil {
		return row, err
	}
	out := filepath.Join(tmp, "report.json")
	// Loop and analyze alternate, so that both see the same machine.
	var bare, ours result
	for i := range 3 {
		b, err := bareLoop(file)
		if err != nil {
			return row, fmt.Errorf("bare loop: %w", err)
		}
		a, err := command("h2scope analyze --json F", bin, "analyze", "--json", out, file)
		if err != nil {
			return row, err
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
	row.bare, row.analyze, row.packets = bare, ours, bare.packets
	row.report, err = fileSize(out)
	return row, err
}

func fileSize(path string) (int64, error) {
	st, err := os.Stat(path)
	if err != nil {
		return 0, err
	}
	return st.Size(), nil
}
