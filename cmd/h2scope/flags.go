package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"runtime"
	"slices"
	"strings"
	"time"

	"github.com/h2scope/h2scope/analyze"
	"github.com/h2scope/h2scope/internal/version"
)

// A commandDoc is what `h2scope CMD -h` prints before the flags.
type commandDoc struct {
	args     string // after the command's name: "[flags] CAPTURE..."
	what     string // one sentence
	examples []string
}

// docs holds each command's help.
var docs = map[string]commandDoc{
	"analyze": {
		args: "[flags] CAPTURE...",
		what: "Finds what went wrong (RST_STREAM storms, reconnect churn, stalls, TLS resumption failures, ...)\n" +
			"and prints each finding with its evidence and remedy; --json, --html and --md write the report.",
		examples: []string{
			"h2scope analyze capture.pcapng",
			"h2scope analyze --keylog keys.log --html report.html --fail-on warning rotated-*.pcap.gz",
			"tcpdump -i any -w - port 443 | h2scope analyze --json - - | jq .findings",
		},
	},
	"conns": {
		args: "[flags] CAPTURE...",
		what: "Prints one row per TCP connection (--json: NDJSON, one object per connection).",
		examples: []string{
			"h2scope conns capture.pcapng",
			"h2scope conns --json capture.pcapng.zst --keylog keys.log | jq 'select(.close == \"rst_server\")'",
		},
	},
	"frames": {
		args: "[flags] CAPTURE...",
		what: "Prints every dissected unit (TCP events, HTTP/1 messages, HTTP/2 frames, gRPC messages,\n" +
			"TLS handshake messages) as it completes (--json: NDJSON).",
		examples: []string{
			"h2scope frames capture.pcapng | less",
			"h2scope frames --json capture.pcapng | jq 'select(.type == \"RST_STREAM\")'",
		},
	},
	"timeline": {
		args: "--conn ID [flags] CAPTURE...",
		what: "Prints one connection, or one HTTP/2 stream of it and the connection's TCP events, in frame order.",
		examples: []string{
			"h2scope timeline --conn 0 capture.pcapng",
			"h2scope timeline --conn 3 --stream 5 --keylog keys.log capture.pcapng",
		},
	},
	"batch": {
		args: "--out F.ndjson [flags] DIR|GLOB...",
		what: "Analyses many captures (rotated files grouped) and writes one JSON report per capture and line;\n" +
			"re-running resumes F.",
		examples: []string{
			"h2scope batch --out reports.ndjson /var/captures",
			"h2scope batch --workers 4 --out - 'archive/*.pcap.gz' | jq .findings",
		},
	},
}

// commandOrder is the order of the commands in the top-level help.
var commandOrder = []string{"analyze", "conns", "frames", "timeline", "batch"}

// newFlags returns a flag set for a subcommand that reports to stderr,
// with the flags every command that reads captures takes. Its usage is
// printed by parse.
func newFlags(name string, stderr io.Writer) (*flag.FlagSet, *input) {
	fs := flag.NewFlagSet("h2scope "+name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {} // parse prints the usage
	in := &input{}
	fs.Var(&in.keylogs, "keylog", "TLS key log `file` (SSLKEYLOGFILE, NSS format) to decrypt TLS with; repeat it to merge several")
	fs.BoolVar(&in.red.Off, "no-redact", false, "show credentials, cookies, API keys and URL tokens as captured")
	return fs, in
}

// parse parses args, whose flags may come before, between and after the
// captures ("--" ends the flags), checks the values of the flags every
// command shares the meaning of, and checks that captures were given. On
// -h it prints the command's help and returns false; on an error, the
// error and a usage line.
func parse(fs *flag.FlagSet, args []string, stderr io.Writer) ([]string, bool) {
	// The flag package's own message and usage are replaced by one line
	// naming the command, with flags spelt as the help spells them.
	out, usage := fs.Output(), fs.Usage
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	files, err := parseArgs(fs, args)
	fs.SetOutput(out)
	fs.Usage = usage
	if errors.Is(err, flag.ErrHelp) {
		printHelp(fs.Output(), fs)
		return nil, false
	}
	if err != nil {
		fmt.Fprintf(stderr, "%s: %s\n", fs.Name(), flagError(err))
		printUsageLine(stderr, fs)
		return nil, false
	}
	if err := checkCommonFlags(fs); err != nil {
		fmt.Fprintf(stderr, "%s: %v\n", fs.Name(), err)
		return nil, false
	}
	if len(files) == 0 {
		fmt.Fprintf(stderr, "%s: no capture files given\n", fs.Name())
		printUsageLine(stderr, fs)
		return nil, false
	}
	return files, true
}

// flagError is the flag package's message for err with the flag it names
// written "--name", as usage and help write flags.
func flagError(err error) string {
	msg := err.Error()
	for _, after := range []string{"for flag -", "not defined: -", "needs an argument: -", "\" for -"} {
		if i := strings.Index(msg, after); i >= 0 {
			j := i + len(after)
			if !strings.HasPrefix(msg[j:], "-") {
				msg = msg[:j] + "-" + msg[j:]
			}
			break
		}
	}
	return msg
}

// parseArgs parses the flags of args wherever they are, and returns the
// other arguments in order. Everything after a "--" that is not a flag's
// value is an argument; "-" is an argument (standard input).
func parseArgs(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		rest := fs.Args()
		used := args[:len(args)-len(rest)]
		if n := len(used); n > 0 && used[n-1] == "--" && !(n > 1 && takesValue(fs, used[n-2])) {
			return append(pos, rest...), nil
		}
		if len(rest) == 0 {
			return pos, nil
		}
		pos = append(pos, rest[0])
		args = rest[1:]
	}
}

// takesValue reports whether arg is a flag that takes the next argument
// as its value ("--json" in analyze, not "--json=F" nor a boolean flag).
func takesValue(fs *flag.FlagSet, arg string) bool {
	name, ok := strings.CutPrefix(arg, "-")
	if !ok || strings.Contains(name, "=") {
		return false
	}
	f := fs.Lookup(strings.TrimPrefix(name, "-"))
	if f == nil {
		return false
	}
	b, ok := f.Value.(interface{ IsBoolFlag() bool })
	return !ok || !b.IsBoolFlag()
}

// wantsHelp reports whether args, a command's arguments, ask for its help.
func wantsHelp(args []string) bool {
	for _, a := range args {
		switch a {
		case "--":
			return false
		case "-h", "-help", "--help":
			return true
		}
	}
	return false
}

// checkCommonFlags checks, among the flags set, those several commands
// share: counts that must be positive or not negative, and durations that
// must be positive.
func checkCommonFlags(fs *flag.FlagSet) error {
	var errs []error
	fs.Visit(func(f *flag.Flag) {
		g, ok := f.Value.(flag.Getter)
		if !ok {
			return
		}
		switch v := g.Get().(type) {
		case int:
			least, ok := map[string]int{"workers": 1, "max": 1, "timeline-events": 0, "timeline-spans": 0}[f.Name]
			if ok && v < least {
				if least == 0 {
					errs = append(errs, fmt.Errorf("--%s %d: must not be negative", f.Name, v))
				} else {
					errs = append(errs, fmt.Errorf("--%s %d: must be at least %d", f.Name, v, least))
				}
			}
		case time.Duration:
			if f.Name == "gap" && v <= 0 {
				errs = append(errs, fmt.Errorf("--%s %v: must be positive", f.Name, v))
			}
		}
	})
	return errors.Join(errs...)
}

// command returns the name of the command fs parses ("analyze").
func command(fs *flag.FlagSet) string {
	return strings.TrimPrefix(fs.Name(), "h2scope ")
}

// printUsageLine prints the command's usage line and where its help is.
func printUsageLine(w io.Writer, fs *flag.FlagSet) {
	name := command(fs)
	fmt.Fprintf(w, "usage: h2scope %s %s  (h2scope %s -h lists the flags)\n", name, docs[name].args, name)
}

// printHelp prints the command's usage line, what it does, examples, its
// own flags and then the detector thresholds, grouped by detector.
func printHelp(w io.Writer, fs *flag.FlagSet) {
	name := command(fs)
	d := docs[name]
	fmt.Fprintf(w, "usage: h2scope %s %s\n\n%s\n\nexamples:\n", name, d.args, d.what)
	for _, e := range d.examples {
		fmt.Fprintf(w, "  %s\n", e)
	}
	threshold := map[string]bool{}
	groups := analyze.FlagGroups()
	for _, g := range groups {
		for _, f := range g.Flags {
			threshold[f] = true
		}
	}
	fmt.Fprintf(w, "\nflags:\n")
	var hasThresholds bool
	fs.VisitAll(func(f *flag.Flag) {
		if threshold[f.Name] {
			hasThresholds = true
			return
		}
		printFlag(w, "  ", "", f)
	})
	if !hasThresholds {
		return
	}
	fmt.Fprintf(w, "\ndetector thresholds (a finding is reported when they are reached):\n")
	for _, g := range groups {
		fmt.Fprintf(w, "  %s:\n", g.Kind)
		for _, n := range g.Flags {
			if f := fs.Lookup(n); f != nil {
				printFlag(w, "    ", g.Kind+": ", f)
			}
		}
	}
}

// printFlag prints one flag as flag.PrintDefaults does, with two dashes
// (one for a one-letter flag), its usage without the prefix that the
// heading above it says.
func printFlag(w io.Writer, indent, prefix string, f *flag.Flag) {
	arg, usage := flag.UnquoteUsage(f)
	usage = strings.TrimPrefix(usage, prefix)
	if g, ok := f.Value.(flag.Getter); ok && arg == "value" {
		switch g.Get().(type) {
		case int:
			arg = "int"
		case float64:
			arg = "float"
		case time.Duration:
			arg = "duration"
		}
	}
	dashes := "--"
	if len(f.Name) == 1 {
		dashes = "-" // -o, as the usage line writes it
	}
	line := indent + dashes + f.Name
	if arg != "" {
		line += " " + arg
	}
	if !slices.Contains([]string{"", "0", "-1", "false", "0s"}, f.DefValue) {
		usage += fmt.Sprintf(" (default %s)", f.DefValue)
	}
	fmt.Fprintf(w, "%s\n%s      %s\n", line, indent, strings.ReplaceAll(usage, "\n", "\n"+indent+"      "))
}

// printVersion prints the module version and the VCS revision, time and
// modified flag h2scope was built from, as the Go toolchain stamped them.
func printVersion(w io.Writer) {
	v := version.Read()
	fmt.Fprintf(w, "h2scope %s", v.Module)
	if v.Revision != "" {
		fmt.Fprintf(w, " revision %s", v.Revision)
		if v.Time != "" {
			fmt.Fprintf(w, " of %s", v.Time)
		}
		if v.Modified {
			fmt.Fprint(w, " (modified)")
		}
	}
	fmt.Fprintf(w, ", %s %s/%s\n", runtime.Version(), runtime.GOOS, runtime.GOARCH)
}
