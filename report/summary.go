package report

import (
	"cmp"
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
	groups := map[findingGroup]*groupSeen{}
	for _, f := range r.Findings {
		g := findingGroup{f.Severity, f.Kind, f.Cause}
		seen := groups[g]
		if seen == nil {
			seen = &groupSeen{first: f.ID}
			groups[g] = seen
		}
		seen.n++
		if seen.n > termFindingsPerGroup {
			continue
		}
		word := fmt.Sprintf("%-8s", strings.ToUpper(f.Severity.String()))
		ew.printf("\n%s %s: %s\n", o.severity(f.Severity, word), kindCause(cmp.Or(f.ID, f.Kind), f.Cause), printable(f.Summary))
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
		if seen.n == 1 || f.Remedy != seen.remedy {
			ew.printf("\n         remedy: %s\n", f.Remedy)
			seen.remedy, seen.remedyOf = f.Remedy, cmp.Or(f.ID, f.Kind)
		} else {
			ew.printf("\n         remedy: as for %s above\n", seen.remedyOf)
		}
	}
	// The findings of a group past termFindingsPerGroup (a churn finding
	// per client of a busy server) are counted, not printed: the report
	// files hold them all.
	for _, f := range r.Findings {
		g := findingGroup{f.Severity, f.Kind, f.Cause}
		seen := groups[g]
		if seen == nil || seen.n <= termFindingsPerGroup {
			continue
		}
		word := fmt.Sprintf("%-8s", strings.ToUpper(f.Severity.String()))
		ew.printf("\n%s %s: %d more like %s, on other pools (--json, --md and --html list them all)\n",
			o.severity(f.Severity, word), kindCause(f.Kind, f.Cause), seen.n-termFindingsPerGroup, seen.first)
		delete(groups, g)
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
	if len(r.Tables.Routes) > 0 {
		ew.printf("\nHTTP request latency by method and path class:\n")
		ew.do(func() error { return WriteRoutesTable(w, r.Tables.Routes) })
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

// termFindingsPerGroup is how many findings of one severity, kind and
// cause the terminal summary prints in full; it counts the rest.
const termFindingsPerGroup = 5

// findingGroup is the severity, kind and cause the terminal summary
// groups findings by.
type findingGroup struct {
	sev         analyze.Severity
	kind, cause string
}

// groupSeen is what the terminal summary has printed of a findingGroup.
type groupSeen struct {
	n        int    // findings seen
	first    string // the first one's id
	remedy   string // the last remedy printed
	remedyOf string // the finding it was printed for
}

// kindCause names a finding (its id, else its kind) and, when it has
// one, its cause: "reconnect_churn-2 (server_connection_close)".
func kindCause(kind, cause string) string {
	if cause == "" {
		return kind
	}
	return kind + " (" + cause + ")"
}
