package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/h2scope/h2scope/analyze"
	"github.com/h2scope/h2scope/dissect/capture"
	"github.com/h2scope/h2scope/dissect/event"
	"github.com/h2scope/h2scope/internal/version"
	"github.com/h2scope/h2scope/slice"
)

func init() {
	docs["slice"] = commandDoc{
		args: "-o OUT.pcapng [flags] CAPTURE...",
		what: "Writes a pcapng of just the packets of a finding, connections or one HTTP/2 stream (and what\n" +
			"Wireshark needs to decode it), each commented with its frame number and evidence, with the\n" +
			"TLS secrets of the sliced sessions only.",
		examples: []string{
			"h2scope slice -o churn.pcapng --finding reconnect_churn-1 capture.pcapng",
			"h2scope slice -o s5.pcapng --conn 3 --stream 5 --keylog keys.log capture.pcapng",
		},
	}
}

// connList is a repeatable --conn flag whose values may also be
// comma-separated lists of connection ids.
type connList []event.ConnID

func (l *connList) String() string {
	s := make([]string, len(*l))
	for i, c := range *l {
		s[i] = fmt.Sprint(c)
	}
	return strings.Join(s, ",")
}

// Set appends the ids of v ("3" or "3,7").
func (l *connList) Set(v string) error {
	for _, f := range strings.Split(v, ",") {
		n, err := strconv.ParseUint(strings.TrimSpace(f), 10, 32)
		if err != nil {
			return fmt.Errorf("%q: not a connection id (they count from 0)", f)
		}
		*l = append(*l, event.ConnID(n))
	}
	return nil
}

// timeFlag is a --from or --to time: RFC 3339 or seconds since the Unix
// epoch (as Wireshark's frame.time_epoch shows).
type timeFlag struct{ t time.Time }

func (f *timeFlag) String() string {
	if f.t.IsZero() {
		return ""
	}
	return f.t.Format(time.RFC3339Nano)
}

// Set parses v.
func (f *timeFlag) Set(v string) error {
	if t, err := time.Parse(time.RFC3339Nano, v); err == nil {
		f.t = t
		return nil
	}
	sec, err := strconv.ParseFloat(v, 64)
	if err != nil || sec < 0 {
		return fmt.Errorf("%q: want an RFC 3339 time or seconds since the epoch", v)
	}
	whole := int64(sec)
	f.t = time.Unix(whole, int64((sec-float64(whole))*1e9)).UTC()
	return nil
}

func runSlice(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs, in := newFlags("slice", stderr)
	out := fs.String("o", "", "write the slice to `file` (pcapng; \"-\": standard output) (required)")
	finding := fs.String("finding", "", "slice the connections, streams and evidence of finding `id` (as analyze --json names it: reconnect_churn-1)")
	var conns connList
	fs.Var(&conns, "conn", "slice connection `id` (as conns shows it); repeat it or give a comma-separated list")
	stream := fs.Int("stream", 0, "only this HTTP/2 `stream` of --conn, with the handshake, SETTINGS and header blocks decoding it needs")
	var from, to timeFlag
	fs.Var(&from, "from", "keep packets captured at or after `time` (RFC 3339, or seconds since the epoch)")
	fs.Var(&to, "to", "keep packets captured at or before `time`")
	noSecrets := fs.Bool("no-secrets", false, "write no Decryption Secrets Block (by default it holds the TLS secrets of the sliced sessions only)")
	cfg := analyze.DefaultConfig()
	cfg.RegisterFlags(fs)
	files, ok := parse(fs, args, stderr)
	if !ok {
		return exitUsage
	}
	switch {
	case *out == "":
		fmt.Fprintln(stderr, "h2scope slice: -o OUT.pcapng is required")
		printUsageLine(stderr, fs)
		return exitUsage
	case *stream < 0:
		fmt.Fprintf(stderr, "h2scope slice: --stream %d: not an HTTP/2 stream id\n", *stream)
		return exitUsage
	case *stream > 0 && len(conns) == 0:
		fmt.Fprintln(stderr, "h2scope slice: --stream needs --conn ID (the connection it belongs to)")
		return exitUsage
	case *finding == "" && len(conns) == 0 && from.t.IsZero() && to.t.IsZero():
		fmt.Fprintln(stderr, "h2scope slice: nothing selected: give --finding ID, --conn ID or --from/--to")
		printUsageLine(stderr, fs)
		return exitUsage
	case !from.t.IsZero() && !to.t.IsZero() && to.t.Before(from.t):
		fmt.Fprintln(stderr, "h2scope slice: --to is before --from")
		return exitUsage
	}
	if err := cfg.Validate(); err != nil {
		fmt.Fprintf(stderr, "h2scope slice: %v\n", err)
		return exitUsage
	}
	if files, ok = inputs("slice", files, stderr); !ok {
		return exitUsage
	}
	if err := checkSliceFiles(files, *out); err != nil {
		fmt.Fprintf(stderr, "h2scope slice: %v\n", err)
		return exitUsage
	}
	opts, ok := in.options(stderr)
	if !ok {
		return exitUsage
	}
	sopts := slice.Options{
		Dissect: opts, Config: cfg, Finding: *finding, Conns: conns, Stream: uint32(*stream),
		From: from.t, To: to.t, NoSecrets: *noSecrets, Redact: in.red.Text, Names: files, Version: version.Read().String(),
	}
	var res slice.Result
	var serr error // the slice's own error, said without the output's name
	err := writeOutput(*out, stdout, func(w io.Writer) error {
		res, serr = slice.Write(ctx, files, w, sopts)
		return serr
	})
	if serr != nil {
		fmt.Fprintf(stderr, "h2scope slice: %s\n", strings.TrimPrefix(serr.Error(), "slice: "))
		return exitUsage
	}
	if err != nil {
		fmt.Fprintf(stderr, "h2scope slice: %v\n", err)
		return exitUsage
	}
	msg := fmt.Sprintf("h2scope slice: %s: %s of %d (%s", *out, plural(res.Packets, "packet", "packets"), res.Total, plural(res.Conns, "connection", "connections"))
	switch {
	case *noSecrets:
		msg += ", no secrets"
	case res.Sessions > 0 || res.Missing > 0:
		msg += fmt.Sprintf(", secrets of %s", plural(res.Sessions, "TLS session", "TLS sessions"))
		if res.Missing > 0 {
			msg += fmt.Sprintf(", %d without secrets", res.Missing)
		}
	}
	fmt.Fprintf(stderr, "%s): %s\n", msg, res.Selection)
	return exitOK
}

// checkSliceFiles refuses standard input (a slice reads its captures
// more than once) and an output that is one of the inputs.
func checkSliceFiles(files []string, out string) error {
	ofi, oerr := os.Stat(out)
	for _, f := range files {
		if f == capture.Stdin {
			return errors.New("standard input (-) cannot be sliced: the capture is read more than once; save it to a file")
		}
		if oerr != nil {
			continue
		}
		if fi, err := os.Stat(f); err == nil && os.SameFile(fi, ofi) {
			return fmt.Errorf("-o %s: is the input %s", out, f)
		}
	}
	return nil
}
