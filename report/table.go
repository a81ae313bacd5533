package report

import (
	"fmt"
	"io"
	"maps"
	"os"
	"slices"
	"strconv"
	"strings"

	"github.com/h2scope/h2scope/analyze"
	"github.com/olekukonko/tablewriter"
	"github.com/olekukonko/tablewriter/tw"
)

// maxTableRows bounds the rows of each terminal table; the JSON report has
// them all, and the table says how many it left out.
const maxTableRows = 20

// TermOptions control terminal output. The zero value writes plain text.
type TermOptions struct {
	// Color colours severity words with ANSI escapes (critical red,
	// warning yellow). Set it from ColorEnabled.
	Color bool
}

// ANSI escapes for the severities.
const (
	ansiRed    = "\x1b[31m"
	ansiYellow = "\x1b[33m"
	ansiReset  = "\x1b[0m"
)

// severity returns a severity word, coloured if opts say so.
func (o TermOptions) severity(s analyze.Severity, word string) string {
	if !o.Color {
		return word
	}
	switch s {
	case analyze.Critical:
		return ansiRed + word + ansiReset
	case analyze.Warning:
		return ansiYellow + word + ansiReset
	}
	return word
}

// ColorEnabled reports whether output to f may be coloured: f is a
// terminal, NO_COLOR is unset or empty (https://no-color.org), and TERM is
// not "dumb".
func ColorEnabled(f *os.File) bool {
	if os.Getenv("NO_COLOR") != "" || os.Getenv("TERM") == "dumb" {
		return false
	}
	return isTerminal(f)
}

// isTerminal reports whether f is a character device (a terminal; also
// /dev/null, where the difference does not matter).
func isTerminal(f *os.File) bool {
	if f == nil {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}

// WriteFindingsTable writes one row per finding: severity, kind, summary,
// first evidence frame and its Wireshark filter.
func WriteFindingsTable(w io.Writer, fs []analyze.Finding, opts TermOptions) error {
	t := tablewriter.NewTable(w, tablewriter.WithHeaderAutoFormat(tw.Off),
		tablewriter.WithColumnWidths(tw.NewMapper[int, int]().Set(2, 60)))
	t.Header("Severity", "Kind", "Summary", "Frame", "Filter")
	for i, f := range fs {
		if i == maxTableRows {
			break
		}
		frame, filter := "-", "-"
		if len(f.Evidence) > 0 {
			frame, filter = strconv.FormatUint(f.Evidence[0].Frame, 10), f.Evidence[0].Filter
		}
		if err := t.Append(opts.severity(f.Severity, f.Severity.String()), f.Kind, termClip(printable(f.Summary), 240), frame, filter); err != nil {
			return err
		}
	}
	if err := t.Render(); err != nil {
		return err
	}
	return termOmitted(w, len(fs), "finding")
}

// WritePoolsTable writes one row per connection pool (client, server,
// name): connections, requests, reuse, how connections ended, and the
// TCP and TLS handshake times' p50/p99 (estimates within 1%).
func WritePoolsTable(w io.Writer, rows []analyze.PoolRow) error {
	t := newTable(w)
	t.Header("Client", "Server", "Name", "Proto", "Conns", "Reqs", "Reqs/conn", "1-req conns",
		"Closed c/s", "Reset", "Open", "Max open", "TCP hs p50/p99 ms ±1%", "TLS hs p50/p99 ms ±1%")
	for i, r := range rows {
		if i == maxTableRows {
			break
		}
		reqs := strconv.Itoa(r.Requests)
		if r.UnknownConns > 0 {
			reqs += fmt.Sprintf(" (+%s unknown)", plural(r.UnknownConns, "conn"))
		}
		if err := t.Append(r.Client, r.Server, termDash(printable(r.Name)), termDash(r.Proto), strconv.Itoa(r.Connections), reqs,
			strconv.FormatFloat(r.RequestsPerConn, 'f', 2, 64), strconv.Itoa(r.OneRequestConns),
			fmt.Sprintf("%d/%d", r.ClosedByClient, r.ClosedByServer), strconv.Itoa(r.Reset), strconv.Itoa(r.Open),
			strconv.Itoa(r.MaxConcurrent), percentiles(r.HandshakeP50MS, r.HandshakeP99MS),
			percentiles(r.TLSHandshakeP50MS, r.TLSHandshakeP99MS)); err != nil {
			return err
		}
	}
	if err := t.Render(); err != nil {
		return err
	}
	if err := termOmitted(w, len(rows), "pool"); err != nil {
		return err
	}
	for _, line := range foldedClients(rows[:min(len(rows), maxTableRows)], 3) {
		if _, err := fmt.Fprintln(w, line); err != nil {
			return err
		}
	}
	return nil
}

// groupDigits writes n with a comma between groups of three digits.
func groupDigits(n int) string {
	s := strconv.Itoa(n)
	for i := len(s) - 3; i > 0 && s[i-1] != '-'; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	return s
}

// foldedClients says, for each "*" row of rows, whom it stands for: the
// clients past the first pools, and the busiest of them, at most top,
// each with its estimated connections, those whose count the sketch
// knows within a factor of two (of a flood from spoofed addresses, each
// with a connection or two, none stands out).
func foldedClients(rows []analyze.PoolRow, top int) []string {
	var out []string
	for _, r := range rows {
		if r.Client != "*" {
			continue
		}
		dest := r.Server
		if r.Name != "" {
			dest += " (" + printable(r.Name) + ")"
		}
		line := "* → " + dest + ": " + plural(r.Connections, "connection") + " of clients past the first " + groupDigits(analyze.MaxPools) + " pools"
		var busy []string
		for _, h := range r.Heaviest {
			if len(busy) == top || h.Min*2 <= h.Max {
				continue
			}
			n := strconv.Itoa(h.Min)
			if h.Max > h.Min {
				n += "–" + strconv.Itoa(h.Max)
			}
			busy = append(busy, h.Client+" "+n)
		}
		switch {
		case len(busy) > 0:
			line += "; the busiest: " + strings.Join(busy, ", ")
		case len(r.Heaviest) > 0:
			line += "; none stands out"
		}
		out = append(out, line)
	}
	return out
}

// percentiles renders a p50/p99 pair of milliseconds, "-" when absent
// (both 0).
func percentiles(p50, p99 float64) string {
	if p50 == 0 && p99 == 0 {
		return "-"
	}
	return strconv.FormatFloat(p50, 'f', -1, 64) + " / " + strconv.FormatFloat(p99, 'f', -1, 64)
}

// WriteRoutesTable writes the HTTP request latency of each pool by
// method and path class: requests, those answered, and the latency's
// p50 and p99 (estimates within 1%) and maximum.
func WriteRoutesTable(w io.Writer, rows []analyze.RouteRow) error {
	t := newTable(w)
	t.Header("Client", "Server", "Name", "Method", "Path class", "Reqs", "Answered", "p50 (ms) ±1%", "p99 (ms) ±1%", "Max (ms)")
	for i, r := range rows {
		if i == maxTableRows {
			break
		}
		p50, p99, hi := "-", "-", "-"
		if r.Answered > 0 {
			p50, p99, hi = strconv.FormatFloat(r.P50MS, 'f', -1, 64), strconv.FormatFloat(r.P99MS, 'f', -1, 64), strconv.FormatFloat(r.MaxMS, 'f', -1, 64)
		}
		if err := t.Append(r.Client, r.Server, termDash(printable(r.Name)), printable(r.Method), termClip(printable(r.Path), 60),
			strconv.Itoa(r.Requests), strconv.Itoa(r.Answered), p50, p99, hi); err != nil {
			return err
		}
	}
	if err := t.Render(); err != nil {
		return err
	}
	return termOmitted(w, len(rows), "route")
}

// WriteResumptionTable writes the TLS resumption funnel, one row per
// client, SNI and server.
func WriteResumptionTable(w io.Writer, rows []analyze.ResumptionRow) error {
	t := newTable(w)
	t.Header("Client", "SNI", "Server", "Handshakes", "Offered", "Accepted", "Failed", "Full", "Resumed by")
	for i, r := range rows {
		if i == maxTableRows {
			break
		}
		if err := t.Append(r.Client, termDash(printable(r.SNI)), r.Server, strconv.Itoa(r.Handshakes), strconv.Itoa(r.Offered),
			strconv.Itoa(r.Accepted), strconv.Itoa(r.Failed), strconv.Itoa(r.FullHandshakes), termDash(countsText(r.Mechanisms, printable))); err != nil {
			return err
		}
	}
	if err := t.Render(); err != nil {
		return err
	}
	return termOmitted(w, len(rows), "funnel")
}

// WriteGRPCMethodsTable writes one row per gRPC method: calls, statuses,
// duration percentiles and calls over their deadline.
func WriteGRPCMethodsTable(w io.Writer, rows []analyze.GRPCMethodRow) error {
	t := tablewriter.NewTable(w, tablewriter.WithHeaderAutoFormat(tw.Off),
		tablewriter.WithColumnWidths(tw.NewMapper[int, int]().Set(2, 50)))
	t.Header("Method", "Calls", "Statuses", "p50 (ms)", "p99 (ms)", "Max (ms)", "Over timeout")
	for i, m := range rows {
		if i == maxTableRows {
			break
		}
		if err := t.Append(termDash(printable(m.Method)), strconv.Itoa(m.Calls), countsText(m.Statuses, printable),
			termMS(m.P50MS), termMS(m.P99MS), termMS(m.MaxMS), strconv.Itoa(m.OverTimeout)); err != nil {
			return err
		}
	}
	if err := t.Render(); err != nil {
		return err
	}
	return termOmitted(w, len(rows), "method")
}

// WriteGRPCCallsTable writes one row per gRPC call; omitted counts the
// calls the analysis already left out of rows.
func WriteGRPCCallsTable(w io.Writer, rows []analyze.GRPCCallRow, omitted int) error {
	t := newTable(w)
	t.Header("Conn", "Stream", "Method", "Status", "Timeout (ms)", "Dur (ms)", "Msgs req/resp", "Bytes req/resp", "Ended")
	for i, c := range rows {
		if i == maxTableRows {
			break
		}
		timeout := "-"
		if c.TimeoutMS != nil {
			timeout = termMS(*c.TimeoutMS)
		}
		dur := termMS(c.DurationMS)
		if c.OverTimeout {
			dur += " (over)"
		}
		ended := "yes"
		if !c.Ended {
			ended = "no"
		}
		if err := t.Append(strconv.FormatUint(uint64(c.Conn), 10), strconv.FormatUint(uint64(c.Stream), 10),
			termDash(printable(c.Method)), termDash(printable(c.Status)), timeout, dur,
			fmt.Sprintf("%d/%d", c.RequestMessages, c.ResponseMessages), fmt.Sprintf("%d/%d", c.RequestBytes, c.ResponseBytes),
			ended); err != nil {
			return err
		}
	}
	if err := t.Render(); err != nil {
		return err
	}
	return termOmitted(w, len(rows)+omitted, "call")
}

// termOmitted says how many of n rows a table left out, if any; what is
// the singular of what a row is.
func termOmitted(w io.Writer, n int, what string) error {
	if n <= maxTableRows {
		return nil
	}
	_, err := fmt.Fprintf(w, "(%s not shown; --json has them)\n", plural(n-maxTableRows, "more "+what))
	return err
}

// countsText formats a count map as "OK 10, UNAVAILABLE 2", by name; esc,
// when not nil, escapes the names.
func countsText(m map[string]int, esc func(string) string) string {
	parts := make([]string, 0, len(m))
	for _, k := range slices.Sorted(maps.Keys(m)) {
		name := k
		if esc != nil {
			name = esc(k)
		}
		parts = append(parts, fmt.Sprintf("%s %d", name, m[k]))
	}
	return strings.Join(parts, ", ")
}

func termMS(ms float64) string { return strconv.FormatFloat(ms, 'f', 1, 64) }

func termDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// termClip shortens s to at most n runes, marking the cut with "…".
func termClip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n-1]) + "…"
}
