package diff

import (
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"

	"github.com/h2scope/h2scope/report"
	"github.com/olekukonko/tablewriter"
	"github.com/olekukonko/tablewriter/tw"
)

// WriteJSON writes r as one indented JSON object (schema
// "h2scope.diff/v1").
func (r *Result) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	return enc.Encode(r)
}

// severityOf says a finding's severity on each side ("warning → -").
func severityOf(d *FindingDiff) string {
	b, a := "-", "-"
	if d.Before != nil {
		b = d.Before.Severity.String()
	}
	if d.After != nil {
		a = d.After.Severity.String()
	}
	if b == a {
		return a
	}
	return b + " → " + a
}

// summaryOf is the finding's summary after, or before when resolved,
// with what changed.
func summaryOf(d *FindingDiff) string {
	s := d.Before
	if d.After != nil {
		s = d.After
	}
	text := s.Summary
	if len(d.Changes) > 0 {
		text = strings.Join(d.Changes, "; ") + ". " + text
	}
	return text
}

// ids says the finding's id on each side.
func ids(d *FindingDiff) string {
	b, a := "-", "-"
	if d.Before != nil {
		b = d.Before.ID
	}
	if d.After != nil {
		a = d.After.ID
	}
	return b + " / " + a
}

// fval formats an optional figure.
func fval(v *float64) string {
	if v == nil {
		return "-"
	}
	return num(*v)
}

// poolCells returns a pool's figures on both sides, "before → after"
// or one value when alike: connections, requests per connection, new
// connections per second, resumption rate.
func poolCells(p PoolDiff) []string {
	pick := func(s *PoolStats, f func(*PoolStats) string) string {
		if s == nil {
			return "-"
		}
		return f(s)
	}
	cell := func(f func(*PoolStats) string) string {
		b, a := pick(p.Before, f), pick(p.After, f)
		if b == a {
			return a
		}
		return b + " → " + a
	}
	return []string{
		cell(func(s *PoolStats) string { return num(float64(s.Connections)) }),
		cell(func(s *PoolStats) string { return fval(s.RequestsPerConn) }),
		cell(func(s *PoolStats) string { return fval(s.ConnsPerSecond) }),
		cell(func(s *PoolStats) string { return fval(s.ResumptionRate) }),
		cell(func(s *PoolStats) string { return fval(s.HandshakeP50MS) + " / " + fval(s.HandshakeP99MS) }),
		cell(func(s *PoolStats) string { return fval(s.TLSHandshakeP50MS) + " / " + fval(s.TLSHandshakeP99MS) }),
		cell(func(s *PoolStats) string { return or(s.TimeWait, "-") }),
		cell(func(s *PoolStats) string { return fval(s.ErrorRate) }),
		cell(func(s *PoolStats) string { return resets(s.ResetsPer1000) }),
		cell(func(s *PoolStats) string { return fval(s.StalledMS) }),
	}
}

var poolHeader = []string{"Pool", "Conns", "Reqs/conn", "New conns/s", "Resumption rate", "TCP handshake p50/p99 ms", "TLS handshake p50/p99 ms", "TIME_WAIT", "Error rate", "Resets/1k reqs", "Stalled ms"}

// or returns s, or def when s is empty.
func or(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// resets renders resets per 1,000 requests by cause: "client_cancel 12".
func resets(m map[string]float64) string {
	if len(m) == 0 {
		return "-"
	}
	var parts []string
	for _, c := range slices.Sorted(maps.Keys(m)) {
		parts = append(parts, c+" "+num(m[c]))
	}
	return strings.Join(parts, ", ")
}

// methodCells returns a gRPC method's figures on both sides, as
// poolCells does: calls, failed calls, p50 and p99 duration (ms).
func methodCells(m MethodDiff) []string {
	cell := func(f func(*MethodStats) float64) string {
		b, a := "-", "-"
		if m.Before != nil {
			b = num(f(m.Before))
		}
		if m.After != nil {
			a = num(f(m.After))
		}
		if b == a {
			return a
		}
		return b + " → " + a
	}
	return []string{
		cell(func(s *MethodStats) float64 { return float64(s.Calls) }),
		cell(func(s *MethodStats) float64 { return float64(s.Failed) }),
		cell(func(s *MethodStats) float64 { return s.P50MS }),
		cell(func(s *MethodStats) float64 { return s.P99MS }),
	}
}

var methodHeader = []string{"gRPC method", "Calls", "Failed", "p50 ms", "p99 ms"}

// routeCells returns a route's figures on both sides, as poolCells
// does: requests, answered requests, p50 and p99 latency (ms).
func routeCells(d RouteDiff) []string {
	cell := func(f func(*RouteStats) string) string {
		b, a := "-", "-"
		if d.Before != nil {
			b = f(d.Before)
		}
		if d.After != nil {
			a = f(d.After)
		}
		if b == a {
			return a
		}
		return b + " → " + a
	}
	return []string{
		d.Pool, d.Method, d.Path,
		cell(func(s *RouteStats) string { return num(float64(s.Requests)) }),
		cell(func(s *RouteStats) string { return num(float64(s.Answered)) }),
		cell(func(s *RouteStats) string { return fval(s.P50MS) }),
		cell(func(s *RouteStats) string { return fval(s.P99MS) }),
	}
}

var routeHeader = []string{"Pool", "Method", "Path class", "Requests", "Answered", "p50 ms", "p99 ms"}

// methodName shows a method, "(unknown)" for calls without headers.
func methodName(m string) string {
	if m == "" {
		return "(unknown)"
	}
	return m
}

// WriteTable writes r as terminal tables: the findings, then the pools.
func (r *Result) WriteTable(w io.Writer) error {
	fmt.Fprintf(w, "before: %s\nafter:  %s\n\n", r.Before, r.After)
	if len(r.Findings) == 0 {
		fmt.Fprintln(w, "No findings on either side.")
	} else {
		t := tablewriter.NewTable(w, tablewriter.WithHeaderAutoFormat(tw.Off),
			tablewriter.WithColumnWidths(tw.NewMapper[int, int]().Set(4, 60)))
		t.Header("Status", "Severity", "Kind", "Pool", "Summary", "IDs before / after")
		for i := range r.Findings {
			d := &r.Findings[i]
			if err := t.Append(d.Status, severityOf(d), d.Kind, dash(d.Pool), clip(summaryOf(d), 240), ids(d)); err != nil {
				return err
			}
		}
		if err := t.Render(); err != nil {
			return err
		}
	}
	if len(r.Pools) == 0 {
		return nil
	}
	fmt.Fprintln(w)
	t := tablewriter.NewTable(w, tablewriter.WithHeaderAutoFormat(tw.Off))
	h := make([]any, len(poolHeader))
	for i, s := range poolHeader {
		h[i] = s
	}
	t.Header(h...)
	for _, p := range r.Pools {
		if err := t.Append(append([]string{p.Pool}, poolCells(p)...)); err != nil {
			return err
		}
	}
	if err := t.Render(); err != nil {
		return err
	}
	if len(r.Routes) > 0 {
		fmt.Fprintln(w)
		fmt.Fprintln(w, "HTTP request latency by method and path class (p50/p99 estimated within 1%):")
		t = tablewriter.NewTable(w, tablewriter.WithHeaderAutoFormat(tw.Off))
		h = make([]any, len(routeHeader))
		for i, s := range routeHeader {
			h[i] = s
		}
		t.Header(h...)
		for _, d := range r.Routes {
			if err := t.Append(routeCells(d)); err != nil {
				return err
			}
		}
		if err := t.Render(); err != nil {
			return err
		}
	}
	if len(r.Methods) == 0 {
		return nil
	}
	fmt.Fprintln(w)
	t = tablewriter.NewTable(w, tablewriter.WithHeaderAutoFormat(tw.Off))
	h = make([]any, len(methodHeader))
	for i, s := range methodHeader {
		h[i] = s
	}
	t.Header(h...)
	for _, m := range r.Methods {
		if err := t.Append(append([]string{methodName(m.Method)}, methodCells(m)...)); err != nil {
			return err
		}
	}
	return t.Render()
}

// WriteMarkdown writes r as Markdown, for a ticket.
func (r *Result) WriteMarkdown(w io.Writer) error {
	var b strings.Builder
	fmt.Fprintf(&b, "# h2scope diff\n\n- before: `%s`\n- after: `%s`\n\n## Findings\n\n", mdCode(r.Before), mdCode(r.After))
	if len(r.Findings) == 0 {
		b.WriteString("No findings on either side.\n")
	} else {
		b.WriteString("| Status | Severity | Kind | Pool | Summary | IDs before / after |\n|---|---|---|---|---|---|\n")
		for i := range r.Findings {
			d := &r.Findings[i]
			fmt.Fprintf(&b, "| %s | %s | `%s` | %s | %s | %s |\n", d.Status, severityOf(d), d.Kind, mdCell(dash(d.Pool)), mdCell(summaryOf(d)), mdCell(ids(d)))
		}
	}
	r.writeMermaid(&b)
	if len(r.Pools) > 0 {
		b.WriteString("\n## Pools\n\n| " + strings.Join(poolHeader, " | ") + " |\n|" + strings.Repeat("---|", len(poolHeader)) + "\n")
		for _, p := range r.Pools {
			cells := append([]string{p.Pool}, poolCells(p)...)
			for i := range cells {
				cells[i] = mdCell(cells[i])
			}
			fmt.Fprintf(&b, "| %s |\n", strings.Join(cells, " | "))
		}
	}
	if len(r.Routes) > 0 {
		b.WriteString("\n## HTTP request latency\n\nBy method and path class; p50 and p99 are estimated within 1%.\n\n| " + strings.Join(routeHeader, " | ") + " |\n|" + strings.Repeat("---|", len(routeHeader)) + "\n")
		for _, d := range r.Routes {
			cells := routeCells(d)
			for i := range cells {
				cells[i] = mdCell(cells[i])
			}
			fmt.Fprintf(&b, "| %s |\n", strings.Join(cells, " | "))
		}
	}
	if len(r.Methods) > 0 {
		b.WriteString("\n## gRPC methods\n\n| " + strings.Join(methodHeader, " | ") + " |\n|---|---|---|---|---|\n")
		for _, m := range r.Methods {
			cells := append([]string{methodName(m.Method)}, methodCells(m)...)
			for i := range cells {
				cells[i] = mdCell(cells[i])
			}
			fmt.Fprintf(&b, "| %s |\n", strings.Join(cells, " | "))
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// mdCell escapes text for a Markdown table cell: pipes, and line breaks
// as spaces; HTML is neutralised.
func mdCell(s string) string {
	r := strings.NewReplacer("|", `\|`, "\n", " ", "\r", " ", "<", "&lt;", ">", "&gt;", "`", "'")
	return r.Replace(s)
}

// mdCode makes s safe inside a code span.
func mdCode(s string) string { return strings.ReplaceAll(s, "`", "'") }

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// clip cuts s to n runes, with an ellipsis.
func clip(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n-1]) + "…"
}

// mdMaxDiagrams bounds the before-and-after diagrams of a Markdown diff.
const mdMaxDiagrams = 10

// writeMermaid draws each finding that is resolved, new or changed as a
// Mermaid sequence diagram of its evidence before and after, side by
// side (report.WriteMermaidPair); the findings table above stays for
// trackers that do not render Mermaid.
func (r *Result) writeMermaid(b *strings.Builder) {
	n := 0
	for i := range r.Findings {
		d := &r.Findings[i]
		if d.Status == Unchanged || (d.Before == nil || d.Before.seq == nil) && (d.After == nil || d.After.seq == nil) {
			continue
		}
		if n == 0 {
			b.WriteString("\n## Before and after\n")
		}
		if n++; n > mdMaxDiagrams {
			fmt.Fprintf(b, "\n_More findings differ; the table above lists them all._\n")
			break
		}
		title := "`" + d.Kind + "`"
		if d.Cause != "" {
			title += " (" + d.Cause + ")"
		}
		fmt.Fprintf(b, "\n### %s %s %s\n\n", d.Status, title, mdCell(dash(d.Pool)))
		side := func(f *Finding, absent string) *report.Sequence {
			if f == nil || f.seq == nil {
				return report.AbsentSequence(absent)
			}
			return f.seq
		}
		report.WriteMermaidPair(b, side(d.Before, "no such finding before"), side(d.After, "no such finding after: resolved"), "Before", "After")
	}
}
