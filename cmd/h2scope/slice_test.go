package main

import (
	"bytes"
	"context"
	"path/filepath"
	"strings"
	"testing"

	"github.com/h2scope/h2scope/dissect/capture"
)

// runCmd runs one h2scope command line and returns its exit code and
// what it printed.
func runCmd(args ...string) (code int, stdout, stderr string) {
	var o, e bytes.Buffer
	code = run(context.Background(), args, &o, &e)
	return code, o.String(), e.String()
}

func TestSliceCommand(t *testing.T) {
	dir := t.TempDir()
	out := filepath.Join(dir, "s.pcapng")
	cap := "../../testdata/pcaps/h2-tls.pcapng"
	keys := "../../testdata/pcaps/h2-tls.keys"
	for _, tt := range []struct {
		args     []string
		code     int
		stderr   string
		contains bool
	}{
		{[]string{"slice", cap}, exitUsage, "h2scope slice: -o OUT.pcapng is required\n", true},
		{[]string{"slice", "-o", out, cap}, exitUsage, "h2scope slice: nothing selected: give --finding ID, --conn ID or --from/--to\n", true},
		{[]string{"slice", "-o", out, "--stream", "3", cap}, exitUsage, "h2scope slice: --stream needs --conn ID (the connection it belongs to)\n", false},
		{[]string{"slice", "-o", out, "--conn", "x", cap}, exitUsage, "invalid value \"x\" for flag --conn", true},
		{[]string{"slice", "-o", cap, "--conn", "0", cap}, exitUsage, "h2scope slice: -o " + cap + ": is the input " + cap + "\n", false},
		{[]string{"slice", "-o", out, "--conn", "0", "-"}, exitUsage, "standard input (-) cannot be sliced", true},
		{[]string{"slice", "-o", out, "--conn", "0", "--stream", "2", cap, "--keylog", keys}, exitUsage, "h2scope slice: connection 0 has no HTTP/2 stream 2\n", false},
		{[]string{"slice", "-o", out, "--finding", "goaway-1", cap}, exitUsage, "no finding goaway-1", true},
		{[]string{"slice", "-o", out, "--conn", "0", "--stream", "13", cap, "--keylog", keys}, exitOK,
			"h2scope slice: " + out + ": 191 packets of 228 (1 connection, secrets of 1 TLS session): connection 0 stream 13\n", false},
	} {
		code, _, stderr := runCmd(tt.args...)
		if code != tt.code || (tt.contains && !strings.Contains(stderr, tt.stderr)) || (!tt.contains && stderr != tt.stderr) {
			t.Errorf("%q: exit %d, stderr %q; want %d, %q", tt.args, code, stderr, tt.code, tt.stderr)
		}
	}
	// The last slice is a capture h2scope reads.
	r, err := capture.Open([]string{out}, capture.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	n := 0
	for {
		if _, err := r.Next(); err != nil {
			break
		}
		n++
	}
	if n != 191 || len(r.Secrets()) != 1 {
		t.Errorf("%d packets, %d secrets blocks; want 191, 1", n, len(r.Secrets()))
	}
}
