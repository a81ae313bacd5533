package report

import (
	"bytes"
	"strings"
	"testing"

	"github.com/h2scope/h2scope/analyze"
)

// TestTablePlurals checks the counts the terminal tables print agree with
// their nouns: "1 more pool", "2 more pools", "+1 conn unknown".
func TestTablePlurals(t *testing.T) {
	tests := []struct {
		rows    int
		unknown int
		want    []string
	}{
		{maxTableRows + 1, 1, []string{"(1 more pool not shown; --json has them)", "(+1 conn unknown)"}},
		{maxTableRows + 2, 2, []string{"(2 more pools not shown; --json has them)", "(+2 conns unknown)"}},
	}
	for _, tt := range tests {
		rows := make([]analyze.PoolRow, tt.rows)
		for i := range rows {
			rows[i] = analyze.PoolRow{Client: "10.0.0.1", Server: "10.0.0.2:443", Connections: 1, UnknownConns: tt.unknown}
		}
		var b bytes.Buffer
		if err := WritePoolsTable(&b, rows); err != nil {
			t.Fatal(err)
		}
		for _, w := range tt.want {
			if !strings.Contains(b.String(), w) {
				t.Errorf("%d rows: output lacks %q:\n%s", tt.rows, w, b.String())
			}
		}
	}
}
