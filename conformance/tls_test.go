//go:build conformance

package conformance

import (
	"context"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/h2scope/h2scope/dissect"
	"github.com/h2scope/h2scope/dissect/event"
	"github.com/h2scope/h2scope/dissect/tls"
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
		// Without its keys tshark dissects encrypted handshakes in part;
		// the decrypted ones are compared by TestTLSDecryptedAgainstTshark.
		out, err := exec.Command("tshark", "-n", "-r", f, "-o", "tls.keylog_file:", "-Y", "tcp && tls.handshake.type", "-T", "fields", "-e", "tls.handshake.type").Output()
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

// handshakeTypes names TLS handshake message types by their code.
var handshakeTypes = map[string]string{
	"0": "HelloRequest", "1": "ClientHello", "2": "ServerHello", "4": "NewSessionTicket",
	"5": "EndOfEarlyData", "8": "EncryptedExtensions", "11": "Certificate",
	"12": "ServerKeyExchange", "13": "CertificateRequest", "14": "ServerHelloDone",
	"15": "CertificateVerify", "16": "ClientKeyExchange", "20": "Finished",
	"22": "CertificateStatus", "24": "KeyUpdate",
}

// TestTLSDecryptedAgainstTshark compares, on every capture with a key
// log, the handshake messages (decrypted ones included) and alerts
// h2scope reads with tshark's given the same key log.
func TestTLSDecryptedAgainstTshark(t *testing.T) {
	requireTshark(t)
	files := captures(t, "../testdata/pcaps")
	if dir := corpusDir(); dir != "" {
		files = append(files, captures(t, dir)...)
	}
	var b strings.Builder
	checked := 0
	for _, f := range files {
		k := keylogFor(f)
		embedded := strings.HasSuffix(f, "-dsb.pcapng") || strings.HasSuffix(f, "ja4/http2-with-cookies.pcapng")
		if k == "" && !embedded {
			continue
		}
		keys := tls.NewKeyLog()
		args := []string{"-n", "-r", f, "-Y", "tcp && (tls.handshake.type || tls.alert_message)", "-T", "fields",
			"-e", "tls.handshake.type", "-e", "tls.alert_message.desc"}
		if k != "" {
			raw, err := os.ReadFile(k)
			if err != nil {
				t.Fatal(err)
			}
			keys.Add(raw, k)
			args = append(args, "-o", "tls.keylog_file:"+k)
		}
		ours := map[string]int{}
		sink := event.SinkFunc(func(e *event.Event) {
			if e.Proto != event.ProtoTLS || e.Type == "ChangeCipherSpec" {
				return
			}
			name := e.Type
			if name == "HelloRetryRequest" {
				name = "ServerHello"
			}
			ours[name]++
		})
		if _, err := dissect.Run(context.Background(), []string{f}, dissect.Options{Dissect: true, Sink: sink, Keys: keys}); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		out, err := exec.Command("tshark", args...).Output()
		if err != nil {
			t.Fatalf("tshark %s: %v", f, err)
		}
		theirs := map[string]int{}
		for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
			cols := strings.Split(line, "\t")
			for _, v := range strings.Split(cols[0], ",") {
				if v != "" {
					theirs[handshakeTypes[v]]++
				}
			}
			if len(cols) > 1 && cols[1] != "" {
				theirs["Alert"] += len(strings.Split(cols[1], ","))
			}
		}
		checked++
		rel := relName(f)
		status := "exact"
		if !maps.Equal(ours, theirs) {
			status = "DIFF"
			if reason, ok := knownTLSDecryptDifferences[rel]; ok {
				status = "known: " + reason
			} else {
				t.Errorf("%s: h2scope %v, tshark %v", rel, ours, theirs)
			}
		}
		fmt.Fprintf(&b, "%-48s %s\n\th2scope %v\n\ttshark  %v\n", rel, status, ours, theirs)
	}
	t.Log("\n" + b.String())
	if checked == 0 {
		t.Fatal("no capture with a key log")
	}
}
