package report

import (
	"cmp"
	"fmt"
	"io"
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
// and the server (see NewSequence).
func writeMermaid(ew *errWriter, f *analyze.Finding, tli map[event.ConnID]*Timeline, conns map[event.ConnID]*tcp.Summary) {
	evs := f.Evidence[:min(mdMaxEvidence, len(f.Evidence))]
	if len(evs) == 0 {
		return
	}
	se := make([]SequenceEvidence, len(evs))
	for i, e := range evs {
		se[i].Evidence = e
		se[i].Dir, se[i].DirKnown = evidenceDir(tli[e.Conn], e)
		if s := conns[e.Conn]; s != nil {
			se[i].Client, se[i].Server = s.Client, s.Server
		}
	}
	seq := NewSequence(f, se)
	ew.printf("\n```mermaid\nsequenceDiagram\n")
	ew.printf("    participant C as %s\n", seq.client)
	ew.printf("    participant S as %s\n", seq.server)
	ew.printf("    Note over C,S: %s\n", seq.note)
	for _, st := range seq.steps {
		st.write(ew, "C", "S")
	}
	ew.printf("```\n")
}

// A Sequence is a finding's decisive events ready to be drawn as a
// Mermaid sequence diagram between its client and its server: the
// finding as a note, then one arrow per evidence frame in the direction
// its packet went (a note across both when that is not known), labelled
// with the frame number, the time relative to the first evidence, the
// connection (when the evidence spans several) and HTTP/2 stream, and
// what it shows. Its texts are escaped for Mermaid and Markdown.
type Sequence struct {
	client, server string // the participants' labels
	note           string
	steps          []seqStep
}

// seqStep is one arrow, or a note where the direction is not known.
type seqStep struct {
	dir   event.Dir
	known bool
	text  string
}

// write draws st between participants c and s.
func (st seqStep) write(ew *errWriter, c, s string) {
	switch {
	case !st.known:
		ew.printf("    Note over %s,%s: %s\n", c, s, st.text)
	case st.dir == event.C2S:
		ew.printf("    %s->>%s: %s\n", c, s, st.text)
	default:
		ew.printf("    %s->>%s: %s\n", s, c, st.text)
	}
}

// SequenceEvidence is one evidence frame of a Sequence: the direction
// of its packet (when DirKnown) and its connection's client and server
// (invalid when not known), which name the participants.
type SequenceEvidence struct {
	analyze.Evidence
	Dir            event.Dir
	DirKnown       bool
	Client, Server netip.AddrPort
}

// NewSequence returns the Sequence of finding f with its first evidence
// frames evs (at most mdMaxEvidence are drawn).
func NewSequence(f *analyze.Finding, evs []SequenceEvidence) *Sequence {
	evs = evs[:min(mdMaxEvidence, len(evs))]
	var clients, servers []netip.AddrPort
	multi := false
	for _, e := range evs {
		if e.Client.IsValid() {
			clients, servers = append(clients, e.Client), append(servers, e.Server)
		}
		multi = multi || e.Conn != evs[0].Conn
	}
	sev := f.Severity.String()
	if f.Cause != "" {
		sev += ", " + f.Cause
	}
	seq := &Sequence{
		client: mermaidText(participant("Client", clients)),
		server: mermaidText(participant("Server", servers)),
		note:   mermaidNote(fmt.Sprintf("%s (%s): %s", cmp.Or(f.ID, f.Kind), sev, f.Summary)),
	}
	for _, e := range evs {
		label := fmt.Sprintf("frame %d, %s", e.Frame, mermaidRel(e.TS.Sub(evs[0].TS)))
		if multi {
			label += fmt.Sprintf(", conn %d", e.Conn)
		}
		if e.Stream != 0 {
			label += fmt.Sprintf(", stream %d", e.Stream)
		}
		label += ": " + e.What
		seq.steps = append(seq.steps, seqStep{dir: e.Dir, known: e.DirKnown, text: mermaidText(label)})
	}
	return seq
}

// AbsentSequence stands for a finding one side of a comparison does not
// have: a note saying so between a bare client and server.
func AbsentSequence(note string) *Sequence {
	return &Sequence{client: "Client", server: "Server", note: mermaidNote(note)}
}

// WriteMermaidPair writes two Sequences side by side as one Mermaid
// sequence diagram, for a before-and-after comparison: each pair of
// participants in a box titled by its title, both notes, then their
// arrows, the first of each side, then the second of each, and so on.
func WriteMermaidPair(w io.Writer, before, after *Sequence, beforeTitle, afterTitle string) error {
	ew := &errWriter{w: w}
	ew.printf("```mermaid\nsequenceDiagram\n")
	for _, p := range []struct {
		seq         *Sequence
		title, c, s string
	}{{before, beforeTitle, "C1", "S1"}, {after, afterTitle, "C2", "S2"}} {
		ew.printf("    box %s\n", mermaidText(p.title))
		ew.printf("        participant %s as %s\n", p.c, p.seq.client)
		ew.printf("        participant %s as %s\n", p.s, p.seq.server)
		ew.printf("    end\n")
	}
	ew.printf("    Note over C1,S1: %s\n", before.note)
	ew.printf("    Note over C2,S2: %s\n", after.note)
	for i := range max(len(before.steps), len(after.steps)) {
		if i < len(before.steps) {
			before.steps[i].write(ew, "C1", "S1")
		}
		if i < len(after.steps) {
			after.steps[i].write(ew, "C2", "S2")
		}
	}
	ew.printf("```\n")
	return ew.err
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
