package report

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"strconv"
	"strings"
	"unicode/utf8"
)

// connsHeader is the header of the conns table.
var connsHeader = []string{"ID", "Client", "Server", "Proto", "First", "Dur (ms)", "Pkts c2s/s2c", "Bytes c2s/s2c",
	"State", "History", "Close", "RTT (ms)", "Retr", "ZWin", "Missed"}

// connsCells returns the cells of r's row in the conns table.
func connsCells(r *ConnRecord) []string {
	c := r.Summary
	rtt := "-"
	if c.HandshakeRTTMS != nil {
		rtt = strconv.FormatFloat(*c.HandshakeRTTMS, 'f', 3, 64)
	}
	return []string{
		strconv.Itoa(int(c.ID)), r.clientLabel(), c.Server.String(), r.protoLabel(),
		strconv.FormatUint(c.FirstFrame, 10),
		strconv.FormatFloat(c.DurationMS, 'f', 1, 64),
		fmt.Sprintf("%d/%d", c.Packets.C2S, c.Packets.S2C),
		fmt.Sprintf("%d/%d", c.Bytes.C2S, c.Bytes.S2C),
		c.ConnState, c.History, string(c.Close), rtt,
		strconv.Itoa(c.Retransmissions), strconv.Itoa(c.ZeroWindows),
		strconv.FormatUint(c.MissedBytes, 10),
	}
}

// cellSep separates a row's cells in the encoding a conns table's
// ConnsWriter keeps and spills; no cell holds it or a newline (addresses,
// numbers and the dissectors' own names).
const cellSep = '\x1f'

// appendConnsRow appends r's row, cells separated by cellSep, and a
// newline.
func appendConnsRow(b *bytes.Buffer, r *ConnRecord) {
	for i, c := range connsCells(r) {
		if i > 0 {
			b.WriteByte(cellSep)
		}
		b.WriteString(c)
	}
	b.WriteByte('\n')
}

// NewConnsTableWriter returns a ConnsWriter writing the conns terminal
// table to w in id order, as WriteConnsTable does, without holding every
// row: the column widths are those of the first DefaultTableSample rows
// (the header's at least; the id and first-frame columns, which count
// up, as wide as a uint32). A table that ends within them is byte for
// byte WriteConnsTable's; past them, rows stream, and a later cell wider
// than its column widens its own row only.
func NewConnsTableWriter(w io.Writer) *ConnsWriter {
	return newConnsTableWriter(w, DefaultTableSample)
}

// newConnsTableWriter is NewConnsTableWriter sizing the columns on sample
// rows.
func newConnsTableWriter(w io.Writer, sample int) *ConnsWriter {
	t := &tableStream{out: bufio.NewWriterSize(w, 64<<10), head: connsHeader, sample: sample, growing: []int{0, 4}}
	s := NewConnsWriter(t)
	s.encode = appendConnsRow
	s.closeOut = t.close
	return s
}

// DefaultTableSample is how many rows a streamed table holds to size its
// columns before it starts printing.
const DefaultTableSample = 1000

// growingWidth is the width a streamed table gives its id and frame
// columns: a uint32 in decimal.
const growingWidth = 10

// A tableStream draws a table of rows written to it as lines of cells
// separated by cellSep, in the box style of the other tables.
type tableStream struct {
	out    *bufio.Writer
	head   []string
	sample int        // rows held to size the columns
	rows   [][]string // held until sample rows came
	widths []int      // set when the table starts printing
	// growing are the columns whose values grow along the capture,
	// sized to growingWidth when the table streams.
	growing []int
	part    []byte // a line not yet ended
}

// Write takes whole or partial lines of rows.
func (t *tableStream) Write(p []byte) (int, error) {
	n := len(p)
	for len(p) > 0 {
		i := bytes.IndexByte(p, '\n')
		if i < 0 {
			t.part = append(t.part, p...)
			break
		}
		line := p[:i]
		if len(t.part) > 0 {
			line = append(t.part, line...)
			t.part = t.part[:0]
		}
		if err := t.row(strings.Split(string(line), string(cellSep))); err != nil {
			return 0, err
		}
		p = p[i+1:]
	}
	return n, nil
}

// row holds a row while the columns are being sized, then prints it.
func (t *tableStream) row(cells []string) error {
	if t.widths == nil {
		t.rows = append(t.rows, cells)
		if len(t.rows) <= t.sample {
			return nil
		}
		return t.start(true)
	}
	t.line(cells, false)
	return nil
}

// start sizes the columns from the header and the rows held (with room
// for the growing columns when more rows will stream), and prints the top
// border, the header and those rows.
func (t *tableStream) start(streaming bool) error {
	t.widths = make([]int, len(t.head))
	for i, h := range t.head {
		t.widths[i] = utf8.RuneCountInString(h)
	}
	for _, r := range t.rows {
		for i, c := range r {
			if i < len(t.widths) {
				t.widths[i] = max(t.widths[i], utf8.RuneCountInString(c))
			}
		}
	}
	if streaming {
		// The columns that count up with the capture (the
		// id and the first frame) get room for the largest.
		for _, i := range t.growing {
			t.widths[i] = max(t.widths[i], growingWidth)
		}
	}
	t.border('┌', '┬', '┐')
	t.line(t.head, true)
	if len(t.rows) > 0 {
		t.border('├', '┼', '┤')
	}
	for _, r := range t.rows {
		t.line(r, false)
	}
	t.rows = nil
	return t.out.Flush()
}

// close prints what is held and the bottom border.
func (t *tableStream) close() error {
	if t.widths == nil {
		if err := t.start(false); err != nil {
			return err
		}
	}
	t.border('└', '┴', '┘')
	return t.out.Flush()
}

// border draws a horizontal rule.
func (t *tableStream) border(left, mid, right rune) {
	t.out.WriteRune(left)
	for i, w := range t.widths {
		if i > 0 {
			t.out.WriteRune(mid)
		}
		for range w + 2 {
			t.out.WriteRune('─')
		}
	}
	t.out.WriteRune(right)
	t.out.WriteByte('\n')
}

// line draws a row, left-aligned, or the header, centred.
func (t *tableStream) line(cells []string, centre bool) {
	t.out.WriteString("│")
	for i, w := range t.widths {
		c := ""
		if i < len(cells) {
			c = cells[i]
		}
		pad := max(w-utf8.RuneCountInString(c), 0)
		left := 0
		if centre {
			left = pad / 2
		}
		t.out.WriteByte(' ')
		t.out.WriteString(strings.Repeat(" ", left))
		t.out.WriteString(c)
		t.out.WriteString(strings.Repeat(" ", pad-left))
		t.out.WriteString(" │")
	}
	t.out.WriteByte('\n')
}
