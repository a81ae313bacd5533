package analyze

import (
	"context"
	"flag"
	"fmt"
	"io"
	"path/filepath"
	"strings"
	"testing"

	"github.com/h2scope/h2scope/dissect"
)

// TestZeroConfig runs the detectors with every threshold zero (a Config
// built by hand without DefaultConfig): degenerate verdicts are allowed,
// a panic is not.
func TestZeroConfig(t *testing.T) {
	for _, name := range []string{"http1-small-pool", "grpc-cancel-storm", "h2-slow-reader"} {
		path := filepath.Join(pcaps, name+".pcapng")
		if _, _, err := Run(context.Background(), []string{path}, dissect.Options{}, Config{}); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
	}
}

func TestValidate(t *testing.T) {
	def := DefaultConfig()
	if err := def.Validate(); err != nil {
		t.Fatalf("DefaultConfig().Validate() = %v", err)
	}
	tests := []struct {
		args    []string
		wantErr string
	}{
		{[]string{"--rst-min", "-3"}, "--rst-min -3: must be at least 1"},
		{[]string{"--rst-min", "0"}, "--rst-min 0: must be at least 1"},
		{[]string{"--rst-window", "-5s"}, "--rst-window -5s: must be positive"},
		{[]string{"--rst-window", "0s"}, "--rst-window 0s: must be positive"},
		{[]string{"--resumption-fail-ratio", "1.5"}, "--resumption-fail-ratio 1.5: must be a share from 0 to 1"},
		{[]string{"--stall-min-share", "NaN"}, "--stall-min-share NaN: must be a share from 0 to 1"},
		{[]string{"--handshake-factor", "-1"}, "--handshake-factor -1: must not be negative"},
		{[]string{"--syn-min-retry", "-1ms"}, "--syn-min-retry -1ms: must not be negative"},
		{[]string{"--churn-min-conns", "-1", "--keepalive-race", "0s"},
			"--churn-min-conns -1: must be at least 1\n--keepalive-race 0s: must be positive"},
		// Zero switches some tests off and is allowed.
		{[]string{"--syn-min-retry", "0s", "--handshake-min", "0s", "--stall-min", "0s", "--syn-fallback", "0s"}, ""},
		{[]string{"--resumption-fail-ratio", "1", "--churn-one-req-share", "0"}, ""},
	}
	for _, tt := range tests {
		// Set by hand, Validate refuses the values.
		c := DefaultConfig()
		fs := flag.NewFlagSet("test", flag.ContinueOnError)
		fs.SetOutput(io.Discard)
		c.RegisterFlags(fs)
		for i := 0; i < len(tt.args); i += 2 {
			if err := fs.Lookup(tt.args[i][2:]).Value.(checkedValue).Getter.Set(tt.args[i+1]); err != nil {
				t.Fatal(err)
			}
		}
		got := ""
		if err := c.Validate(); err != nil {
			got = err.Error()
		}
		if got != tt.wantErr {
			t.Errorf("%q: Validate() = %q, want %q", tt.args, got, tt.wantErr)
		}
		// From the command line, the first one fails parsing, naming its flag.
		c = DefaultConfig()
		fs = flag.NewFlagSet("test", flag.ContinueOnError)
		fs.SetOutput(io.Discard)
		c.RegisterFlags(fs)
		got = ""
		if err := fs.Parse(tt.args); err != nil {
			got = err.Error()
		}
		want := ""
		if tt.wantErr != "" {
			first, _, _ := strings.Cut(tt.wantErr, "\n")
			name, reason, _ := strings.Cut(first, ": ")
			name, value, _ := strings.Cut(name, " ")
			want = fmt.Sprintf("invalid value %q for flag -%s: %s", value, name[2:], reason)
		}
		if got != want {
			t.Errorf("%q: Parse = %q, want %q", tt.args, got, want)
		}
	}
}

// TestFlagGroups checks that the groups list every threshold flag once,
// each under the detector its usage names.
func TestFlagGroups(t *testing.T) {
	c := DefaultConfig()
	fs := flag.NewFlagSet("test", flag.ContinueOnError)
	c.RegisterFlags(fs)
	seen := map[string]bool{}
	for _, g := range FlagGroups() {
		if len(g.Flags) == 0 {
			t.Errorf("%s: no flags", g.Kind)
		}
		for _, name := range g.Flags {
			f := fs.Lookup(name)
			if f == nil {
				t.Errorf("%s: flag %s not registered", g.Kind, name)
				continue
			}
			if seen[name] {
				t.Errorf("flag %s in two groups", name)
			}
			seen[name] = true
			if !strings.HasPrefix(f.Usage, g.Kind+": ") {
				t.Errorf("flag %s in group %s: usage %q", name, g.Kind, f.Usage)
			}
		}
	}
	fs.VisitAll(func(f *flag.Flag) {
		if !seen[f.Name] {
			t.Errorf("flag %s in no group", f.Name)
		}
	})
}

func TestParseSeverity(t *testing.T) {
	tests := []struct {
		in   string
		want Severity
		ok   bool
	}{
		{"info", Info, true}, {"warning", Warning, true}, {"critical", Critical, true},
		{"WARNING", Warning, true}, {"Critical", Critical, true}, {"iNfO", Info, true},
		{"warn", 0, false}, {"", 0, false},
	}
	for _, tt := range tests {
		got, err := ParseSeverity(tt.in)
		if (err == nil) != tt.ok || got != tt.want {
			t.Errorf("ParseSeverity(%q) = %v, %v; want %v, ok %v", tt.in, got, err, tt.want, tt.ok)
		}
	}
}
