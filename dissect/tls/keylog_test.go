package tls_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"
	"testing/iotest"

	"github.com/h2scope/h2scope/dissect"
	"github.com/h2scope/h2scope/dissect/tcp"
	"github.com/h2scope/h2scope/dissect/tls"
)

const pcaps = "../../testdata/pcaps/"

// TestKeyLogLongLines is the regression test for a key log with one line
// over the scanner's cap, which lost every secret after it ("after line
// 0: bufio.Scanner: token too long"): an over-long line is one malformed
// line, named by its 1-based number, and every other line is kept.
func TestKeyLogLongLines(t *testing.T) {
	good, err := os.ReadFile(pcaps + "h2-tls.keys")
	if err != nil {
		t.Fatal(err)
	}
	goodLines := strings.SplitAfter(strings.TrimSuffix(string(good), "\n"), "\n")
	long := func(n int) string { return "CLIENT_RANDOM " + strings.Repeat("ab", n/2) + "\n" }
	tests := []struct {
		name      string
		log       string
		wantLines []int // lines named in errors
	}{
		{"long first line", long(5000) + string(good), []int{1}},
		{"long line in the middle", goodLines[0] + goodLines[1] + long(70000) + goodLines[2] + goodLines[3] + "\n", []int{3}},
		{"just over the limit", long(1030) + string(good), []int{1}},
		{"long last line without newline", string(good) + strings.TrimSuffix(long(9000), "\n"), []int{5}},
		{"two long lines and a bad one", long(4097) + goodLines[0] + long(20000) + "CLIENT_RANDOM 00\n" + strings.Join(goodLines[1:], ""), []int{1, 3, 4}},
		{"long comment", "# " + strings.Repeat("x", 100000) + "\n" + strings.ReplaceAll(string(good), "\n", "\r\n"), nil},
		{"good log only", string(good), nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, one := range []bool{false, true} {
				k := tls.NewKeyLog()
				var n int
				var errs []error
				if one { // a byte at a time
					n, errs = k.Read(iotest.OneByteReader(strings.NewReader(tt.log)), "keys")
				} else {
					n, errs = k.Add([]byte(tt.log), "keys")
				}
				if n != 4 || k.Len() != 1 {
					t.Errorf("one byte at a time %v: %d secrets for %d sessions, want 4 for 1 (errors %v)", one, n, k.Len(), errs)
				}
				var lines []int
				for _, e := range errs {
					var ke *tls.KeyLogError
					if !errors.As(e, &ke) {
						t.Fatalf("error %v is not a *KeyLogError", e)
					}
					lines = append(lines, ke.Line)
				}
				if !equal(lines, tt.wantLines) {
					t.Errorf("errors on lines %v, want %v: %v", lines, tt.wantLines, errs)
				}
				if st := k.Stats(); st.Secrets != 4 || st.Sources != 1 || st.Sessions != 1 {
					t.Errorf("stats %+v", st)
				}
			}
		})
	}
}

// TestKeyLogLongLineDecrypts reads h2-tls.pcapng with its key log behind
// a 5000-byte line: every connection is decrypted.
func TestKeyLogLongLineDecrypts(t *testing.T) {
	good, err := os.ReadFile(pcaps + "h2-tls.keys")
	if err != nil {
		t.Fatal(err)
	}
	k := tls.NewKeyLog()
	k.Add(append([]byte("CLIENT_RANDOM "+strings.Repeat("0", 5000)+"\n"), good...), "long.keys")
	decrypted, tlsConns := 0, 0
	_, err = dissect.Run(context.Background(), []string{pcaps + "h2-tls.pcapng"}, dissect.Options{
		Dissect: true, Keys: k,
		OnConn: func(_ *tcp.Conn, app *dissect.App) {
			if app != nil && app.TLS != nil {
				tlsConns++
				if app.TLS.Decrypted {
					decrypted++
				}
			}
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	if tlsConns == 0 || decrypted != tlsConns {
		t.Errorf("%d of %d TLS connections decrypted", decrypted, tlsConns)
	}
	if st := k.Stats(); st.Matched != tlsConns || st.Missing != 0 {
		t.Errorf("stats %+v, want %d matched", st, tlsConns)
	}
}

// TestKeyLogStats checks the counts a KeyLog keeps: secrets and sources
// read, and the client randoms looked up that it has or lacks.
func TestKeyLogStats(t *testing.T) {
	k := tls.NewKeyLog()
	k.Add([]byte("CLIENT_RANDOM "+strings.Repeat("01", 32)+" "+strings.Repeat("02", 48)+"\n"), "a")
	k.Add([]byte("CLIENT_RANDOM "+strings.Repeat("03", 32)+" "+strings.Repeat("02", 48)+"\n"+
		"CLIENT_TRAFFIC_SECRET_0 "+strings.Repeat("03", 32)+" "+strings.Repeat("02", 32)+"\n"), "b")
	k.Add(nil, "a") // the same source again
	k.Lookup(bytes.Repeat([]byte{1}, 32))
	k.Lookup(bytes.Repeat([]byte{9}, 32))
	k.Lookup(bytes.Repeat([]byte{8}, 32))
	want := tls.KeyLogStats{Secrets: 3, Sources: 2, Sessions: 2, Matched: 1, Missing: 2}
	if got := k.Stats(); got != want {
		t.Errorf("stats %+v, want %+v", got, want)
	}
	var nilLog *tls.KeyLog
	if got := nilLog.Stats(); got != (tls.KeyLogStats{}) {
		t.Errorf("nil key log: %+v", got)
	}
}

func equal(a, b []int) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// FuzzKeyLog reads arbitrary key logs whole and one byte at a time: never
// a panic, the same secrets and the same complaints either way, and no
// secret from a line longer than the longest line a key log can hold.
func FuzzKeyLog(f *testing.F) {
	random := strings.Repeat("ab", 32)
	f.Add("CLIENT_RANDOM " + random + " " + strings.Repeat("cd", 48) + "\n")
	f.Add("# comment\n\nCLIENT_TRAFFIC_SECRET_0 " + random + " " + strings.Repeat("0f", 32) + "\r\nSERVER_TRAFFIC_SECRET_0 " + random + " 00\n")
	f.Add(strings.Repeat("x", 5000) + "\nCLIENT_RANDOM " + random + " " + strings.Repeat("cd", 48))
	f.Add("CLIENT_RANDOM zz 00\nBOGUS a b\nCLIENT_RANDOM " + random + "\n")
	f.Fuzz(func(t *testing.T, log string) {
		whole, bytewise := tls.NewKeyLog(), tls.NewKeyLog()
		n1, errs1 := whole.Read(strings.NewReader(log), "keys")
		n2, errs2 := bytewise.Read(iotest.OneByteReader(strings.NewReader(log)), "keys")
		if n1 != n2 || whole.Len() != bytewise.Len() || fmt.Sprint(errs1) != fmt.Sprint(errs2) {
			t.Fatalf("whole: %d secrets %v; byte at a time: %d secrets %v", n1, errs1, n2, errs2)
		}
		if n1 < 0 || n1 > strings.Count(log, "\n")+1 {
			t.Fatalf("%d secrets from %d lines", n1, strings.Count(log, "\n")+1)
		}
		if whole.Len() > n1 {
			t.Fatalf("%d sessions from %d secrets", whole.Len(), n1)
		}
	})
}
