package analyze

import (
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/h2scope/h2scope/dissect"
	"github.com/h2scope/h2scope/dissect/event"
)

// A sharded run (dissect.Options.Shards) numbers each connection
// provisionally, by its first frame, because no shard knows how many
// connections the others saw first; the final ID, its rank in order of
// first frame, is known once the run is over (dissect.Stats.IDs). Both
// numberings order connections the same way, so the detectors fold and
// sort by provisional IDs unchanged, and result maps the IDs of its
// findings and tables to final ones. Text that names a connection holds
// connText's marker rather than the number, resolved then too: a
// finding built as a connection finished reads the same however the
// capture was split.

// Markers around a connection ID in finding text: runes of Unicode's
// private use area, which nothing h2scope writes uses.
const (
	connOpen  = '\uE000'
	connClose = '\uE001'
)

// connText returns the text that names connection id in a finding's
// summary or evidence; result replaces it with the final ID.
func connText(id event.ConnID) string {
	var b [24]byte
	s := utf8.AppendRune(b[:0], connOpen)
	s = strconv.AppendUint(s, uint64(id), 10)
	return string(utf8.AppendRune(s, connClose))
}

// resolveText returns s with each connText marker replaced by the final
// ID of the connection it names. Markers are recognised only whole (a
// rune, decimal digits, a rune); other uses of the runes are left as
// they are. (A captured string that spells a whole marker, which only a
// hostile capture would, is renumbered like one: a wrong number in a
// sentence, nothing worse.)
func resolveText(s string, ids *dissect.ConnIDs) string {
	i := strings.IndexRune(s, connOpen)
	if i < 0 {
		return s
	}
	var b strings.Builder
	for i >= 0 {
		b.WriteString(s[:i])
		rest := s[i+utf8.RuneLen(connOpen):]
		n := 0
		for n < len(rest) && n < 10 && rest[n] >= '0' && rest[n] <= '9' {
			n++
		}
		id, err := strconv.ParseUint(rest[:n], 10, 32)
		if r, size := utf8.DecodeRuneInString(rest[n:]); n == 0 || err != nil || r != connClose {
			b.WriteRune(connOpen) // not a marker
			s = rest
		} else {
			b.WriteString(strconv.FormatUint(uint64(ids.Final(event.ConnID(id))), 10))
			s = rest[n+size:]
		}
		i = strings.IndexRune(s, connOpen)
	}
	b.WriteString(s)
	return b.String()
}

// finalIDs maps every connection ID of f, provisional in a sharded run,
// to its final ID (ids.Final; a nil ids keeps them), and resolves the
// connText markers of its text.
func (f *Finding) finalIDs(ids *dissect.ConnIDs) {
	f.Summary = resolveText(f.Summary, ids)
	f.Remedy = resolveText(f.Remedy, ids)
	for i, id := range f.Connections {
		f.Connections[i] = ids.Final(id)
	}
	for i := range f.Streams {
		f.Streams[i].Conn = ids.Final(f.Streams[i].Conn)
	}
	for i := range f.Evidence {
		e := &f.Evidence[i]
		if ids != nil {
			e.Conn = ids.Final(e.Conn)
			e.Filter = Filter(e.Conn, e.Stream)
		}
		e.What = resolveText(e.What, ids)
	}
}

// finalIDs maps the connection IDs of t's rows to final ones (see
// Finding.finalIDs).
func (t *Tables) finalIDs(ids *dissect.ConnIDs) {
	if ids == nil {
		return
	}
	for i := range t.GRPCCalls {
		t.GRPCCalls[i].Conn = ids.Final(t.GRPCCalls[i].Conn)
	}
}
