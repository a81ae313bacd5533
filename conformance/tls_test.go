//go:build conformance

package conformance

import (
	"context"
	"fmt"
	"os/exec"
	"strings"
	"testing"

	"github.com/h2scope/h2scope/dissect"
	"github.com/h2scope/h2scope/dissect/event"
)

// TestTLSHandshakesAgainstTshark compares the number of ClientHello and
// ServerHello messages (a HelloRetryRequest, type 2 on the wire, counted as
// a ServerHello as tshark does) over TCP that
// h2scope dissects with tshark's, capture by capture, on every capture
// where either finds TLS.
func TestTLSHandshakesAgainstTshark(t *testing.T) {
	requireTshark(t)
	files := captures(t, "../testdata/pcaps")
	if dir := corpusDir(); dir != "" {
		files = append(files, captures(t, dir)...)
	}
	var b strings.Builder
	fmt.Fprintf(&b, "\n%-62s %14s %14s\n", "capture", "h2scope CH/SH", "tshark CH/SH")
	var total, exact int
	for _, f := range files {
		var ch, sh int
		sink := event.SinkFunc(func(e *event.Event) {
			if e.Proto != event.ProtoTLS {
				return
			}
			switch e.Type {
			case "ClientHello":
				ch++
			case "ServerHello", "HelloRetryRequest":
				sh++
			}
		})
		if _, err := dissect.Run(context.Background(), []string{f}, dissect.Options{Dissect: true, Sink: sink}); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		out, err := exec.Command("tshark", "-n", "-r", f, "-Y", "tcp && tls.handshake.type", "-T", "fields", "-e", "tls.handshake.type").Output()
		if err != nil {
			t.Fatalf("tshark %s: %v", f, err)
		}
		var tch, tsh int
		for _, v := range strings.FieldsFunc(string(out), func(r rune) bool { return r == ',' || r == '\n' }) {
			switch v {
			case "1":
				tch++
			case "2":
				tsh++
			}
		}
		if ch+sh+tch+tsh == 0 {
			continue
		}
		total++
		rel := relName(f)
		status := "exact"
		if ch != tch || sh != tsh {
			status = "DIFF"
			if reason, ok := knownTLSDifferences[rel]; ok {
				status = "known: " + reason
			} else {
				t.Errorf("%s: h2scope %d ClientHello / %d ServerHello, tshark %d / %d", rel, ch, sh, tch, tsh)
			}
		} else {
			exact++
		}
		fmt.Fprintf(&b, "%-62s %7d/%-6d %7d/%-6d %s\n", rel, ch, sh, tch, tsh, status)
	}
	fmt.Fprintf(&b, "TOTAL: %d captures with TLS, %d exact\n", total, exact)
	t.Log(b.String())
}
