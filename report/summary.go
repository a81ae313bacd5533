package report

import (
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"

	"github.com/h2scope/h2scope/analyze"
)

// WriteSummary writes the terminal summary: a headline, then one line per
// finding (most severe first) with its first evidence and the Wireshark
// filter that opens it, and its remedy; then the connection pool, TLS
// resumption and gRPC tables that have rows. o controls colour.
func WriteSummary(w io.Writer, r *Report, o TermOptions) error {
	ew := &errWriter{w: w}
	sev := r.severityCounts()
	c := r.Captures[0]
	ew.printf("%s: %s, %s; %s (%d critical, %d warning, %d info)\n",
		strings.Join(c.Files, " + "), plural(int(c.Packets), "packet"), plural(c.Connections, "connection"),
		plural(len(r.Findings), "finding"), sev[analyze.Critical], sev[analyze.Warning], sev[analyze.Info])
	if len(c.TLSUndecrypted) > 0 {
		total, why := c.undecrypted(nil)
		ew.printf("TLS: %d of %d connections not decrypted (%s); %s\n",
			total, c.TLSConnections, why, keyLogNote(c.KeyLog))
	}
	for _, f := range r.Findings {
		word := fmt.Sprintf("%-8s", strings.ToUpper(f.Severity.String()))
		ew.printf("\n%s %s: %s\n", o.severity(f.Severity, word), f.Kind, printable(f.Summary))
		if len(f.Evidence) > 0 {
			e := f.Evidence[0]
			more := ""
			if n := len(f.Evidence) - 1; n > 0 {
				more = fmt.Sprintf(" (+%d more)", n)
			}
			ew.printf("         evidence: frame %d, %s%s  [%s]\n", e.Frame, printable(e.What), more, e.Filter)
		}
		ew.printf("         confidence: %s", f.Confidence.Level)
		if len(f.Confidence.Reasons) > 0 {
			ew.printf(" (%s)", strings.Join(f.Confidence.Reasons, "; "))
		}
		ew.printf("\n         remedy: %s\n", f.Remedy)
	}
	if len(r.Findings) == 0 {
		ew.printf("no findings: the connections look healthy\n")
	}
	if len(r.Tables.Pools) > 0 {
		ew.printf("\nConnection pools:\n")
		ew.do(func() error { return WritePoolsTable(w, r.Tables.Pools) })
	}
	if len(r.Tables.Resumption) > 0 {
		ew.printf("\nTLS resumption:\n")
		ew.do(func() error { return WriteResumptionTable(w, r.Tables.Resumption) })
	}
	if len(r.Tables.GRPCMethods) > 0 {
		ew.printf("\ngRPC methods:\n")
		ew.do(func() error { return WriteGRPCMethodsTable(w, r.Tables.GRPCMethods) })
	}
	if len(r.Tables.GRPCCalls) > 0 {
		ew.printf("\ngRPC calls:\n")
		ew.do(func() error { return WriteGRPCCallsTable(w, r.Tables.GRPCCalls, r.Tables.GRPCCallsOmitted) })
	}
	return ew.err
}

// undecrypted counts the capture's TLS connections left encrypted and
// lists them by reason, "3 no_key_log, 1 no_keys_for_session"; esc, when
// not nil, escapes the reasons.
func (c *Capture) undecrypted(esc func(string) string) (total int, text string) {
	var parts []string
	for _, reason := range slices.Sorted(maps.Keys(c.TLSUndecrypted)) {
		n := c.TLSUndecrypted[reason]
		if esc != nil {
			reason = esc(reason)
		}
		parts = append(parts, fmt.Sprintf("%d %s", n, reason))
		total += n
	}
	return total, strings.Join(parts, ", ")
}

// severityCounts counts the findings by severity (indexed by
// analyze.Severity).
func (r *Report) severityCounts() [3]int {
	var sev [3]int
	for _, f := range r.Findings {
		if f.Severity >= 0 && int(f.Severity) < len(sev) {
			sev[f.Severity]++
		}
	}
	return sev
}

// errWriter remembers the first write error.
type errWriter struct {
	w   io.Writer
	err error
}

// do runs write unless a write has failed, and remembers its error.
func (e *errWriter) do(write func() error) {
	if e.err == nil {
		e.err = write()
	}
}

func (e *errWriter) printf(format string, args ...any) {
	if e.err == nil {
		_, e.err = fmt.Fprintf(e.w, format, args...)
	}
}
