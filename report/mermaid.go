package report

import (
	"cmp"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"time"
	"unicode"

	"github.com/h2scope/h2scope/analyze"
	"github.com/h2scope/h2scope/dissect/event"
	"github.com/h2scope/h2scope/dissect/tcp"
)

// mdMaxMermaidText bounds the text of one diagram message or note, in
// runes.
const mdMaxMermaidText = 120

// mdConnIndex maps the ids of the report's connections to their TCP
// summaries, for the participants of the diagrams.
func (r *Report) mdConnIndex() map[event.ConnID]*tcp.Summary {
	m := make(map[event.ConnID]*tcp.Summary, len(r.Connections))
	for i := range r.Connections {
		if s := r.Connections[i].Summary; s != nil {
			m[s.ID] = s
		}
	}
	return m
}

// writeMermaid writes a finding's decisive events — its evidence, at
// most mdMaxEvidence — as a Mermaid sequence diagram between the client
// and the server: the finding as a note, then one arrow per evidence
// frame in the direction its timeline event went (a note across both
// when the timeline does not say), labelled with the frame number, the
// time relative to the first evidence, the connection (when the
// evidence spans several) and HTTP/2 stream, and what it shows.
func writeMermaid(ew *errWriter, f *analyze.Finding, tli map[event.ConnID]*Timeline, conns map[event.ConnID]*tcp.Summary) {
	evs := f.Evidence[:min(mdMaxEvidence, len(f.Evidence))]
	if len(evs) == 0 {
		return
	}
	var clients, servers []netip.AddrPort
	multi := false
	for _, e := range evs {
		if s := conns[e.Conn]; s != nil {
			clients, servers = append(clients, s.Client), append(servers, s.Server)
		}
		multi = multi || e.Conn != evs[0].Conn
	}
	ew.printf("\n```mermaid\nsequenceDiagram\n")
	ew.printf("    participant C as %s\n", mermaidText(participant("Client", clients)))
	ew.printf("    participant S as %s\n", mermaidText(participant("Server", servers)))
	sev := f.Severity.String()
	if f.Cause != "" {
		sev += ", " + f.Cause
	}
	ew.printf("    Note over C,S: %s\n", mermaidNote(fmt.Sprintf("%s (%s): %s", cmp.Or(f.ID, f.Kind), sev, f.Summary)))
	first := evs[0].TS
	for _, e := range evs {
		label := fmt.Sprintf("frame %d, %s", e.Frame, mermaidRel(e.TS.Sub(first)))
		if multi {
			label += fmt.Sprintf(", conn %d", e.Conn)
		}
		if e.Stream != 0 {
			label += fmt.Sprintf(", stream %d", e.Stream)
		}
		label += ": " + e.What
		switch dir, ok := evidenceDir(tli[e.Conn], e); {
		case !ok:
			ew.printf("    Note over C,S: %s\n", mermaidText(label))
		case dir == event.C2S:
			ew.printf("    C->>S: %s\n", mermaidText(label))
		default:
			ew.printf("    S->>C: %s\n", mermaidText(label))
		}
	}
	ew.printf("```\n")
}

// participant names one side of a diagram: "Client 10.0.0.1:5000" when
// every connection has that address, "Client 10.0.0.1" when they share
// the IP, else the bare role.
func participant(role string, addrs []netip.AddrPort) string {
	if len(addrs) == 0 {
		return role
	}
	sameAddr, sameIP := true, true
	for _, a := range addrs[1:] {
		sameAddr = sameAddr && a == addrs[0]
		sameIP = sameIP && a.Addr() == addrs[0].Addr()
	}
	switch {
	case sameAddr:
		return role + " " + addrs[0].String()
	case sameIP:
		return role + " " + addrs[0].Addr().String()
	}
	return role + "s"
}

// evidenceDir returns the direction of the timeline event at an
// evidence frame (the one on the evidence's stream when several are
// there); ok is false when the timeline has none.
func evidenceDir(tl *Timeline, e analyze.Evidence) (dir event.Dir, ok bool) {
	if tl == nil {
		return 0, false
	}
	i, _ := slices.BinarySearchFunc(tl.Events, e.Frame, func(ev TimelineEvent, f uint64) int { return cmp.Compare(ev.Frame, f) })
	for ; i < len(tl.Events) && tl.Events[i].Frame == e.Frame; i++ {
		ev := &tl.Events[i]
		if !ok || ev.Stream == e.Stream {
			dir, ok = ev.Dir, true
		}
	}
	return dir, ok
}

// mdMermaidNoteLine is the width at which a diagram's note is broken
// into lines, and mdMaxMermaidNote bounds its text, in runes.
const (
	mdMermaidNoteLine = 60
	mdMaxMermaidNote  = 360
)

// mermaidNote is mermaidText for the finding's note: longer, and broken
// into lines between words.
func mermaidNote(s string) string {
	s = printable(s)
	if r := []rune(s); len(r) > mdMaxMermaidNote {
		s = string(r[:mdMaxMermaidNote-1]) + "…"
	}
	var lines []string
	line := ""
	for _, w := range strings.Fields(s) {
		if line != "" && len([]rune(line))+1+len([]rune(w)) > mdMermaidNoteLine {
			lines = append(lines, line)
			line = ""
		}
		if line != "" {
			line += " "
		}
		line += w
	}
	lines = append(lines, line)
	for i := range lines {
		lines[i] = mermaidEscape(lines[i])
	}
	return strings.Join(lines, "<br/>")
}

// mermaidRel formats a time relative to the first evidence.
func mermaidRel(d time.Duration) string {
	return fmt.Sprintf("%+.6f s", d.Seconds())
}

// mermaidText makes a captured or free string safe as the text of a
// Mermaid message, note or participant alias: non-printable characters
// quoted, the characters Mermaid reads as syntax (statement separators,
// entity codes, HTML) and backticks (which would end the Markdown
// fence) written as Mermaid entity codes, and the text cut to
// mdMaxMermaidText runes.
func mermaidText(s string) string {
	s = printable(s)
	if r := []rune(s); len(r) > mdMaxMermaidText {
		s = string(r[:mdMaxMermaidText-1]) + "…"
	}
	return mermaidEscape(s)
}

// mermaidEscape writes the characters Mermaid reads as syntax as entity
// codes, and those Markdown reads as emphasis or links ('*', '[', ']',
// and '_' at a word boundary, where it can open or close emphasis), so
// that a renderer that ignores the fence shows no markup either.
func mermaidEscape(s string) string {
	rs := []rune(s)
	var b strings.Builder
	for i, r := range rs {
		switch r {
		case '#', ';', '<', '>', '`', '{', '}', '"', '&', '\\', '|', '*', '[', ']':
			fmt.Fprintf(&b, "#%d;", r)
		case '_':
			if i == 0 || i == len(rs)-1 || !wordRune(rs[i-1]) || !wordRune(rs[i+1]) {
				fmt.Fprintf(&b, "#%d;", r)
			} else {
				b.WriteRune(r)
			}
		default:
			b.WriteRune(r)
		}
	}
	return b.String()
}

// wordRune reports whether r is a letter or digit.
func wordRune(r rune) bool { return unicode.IsLetter(r) || unicode.IsDigit(r) }
