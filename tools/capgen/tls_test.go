package main

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/h2scope/h2scope/dissect/capture"
	"github.com/h2scope/h2scope/tools/capgen/truth"
)

// TestDSB writes a capture with a Decryption Secrets Block, key logs of
// every padding, and reads it back with h2scope's own reader.
func TestDSB(t *testing.T) {
	pkts := newSynthConn(t, 40000, 8080, synthStart).exchange(2, 100)
	for _, n := range []int{0, 1, 2, 3, 4, 5, 176} {
		t.Run(fmt.Sprint(n), func(t *testing.T) {
			keys := bytes.Repeat([]byte("k"), n)
			if n > 0 {
				keys[n-1] = '\n'
			}
			path := filepath.Join(t.TempDir(), "dsb.pcapng")
			if err := writeAtomic(path, func(w io.Writer) error { return writeNg(w, "test", keys, pkts) }); err != nil {
				t.Fatal(err)
			}
			r, err := capture.Open([]string{path}, capture.Options{})
			if err != nil {
				t.Fatal(err)
			}
			defer r.Close()
			frames := 0
			for {
				p, err := r.Next()
				if errors.Is(err, io.EOF) {
					break
				}
				if err != nil {
					t.Fatal(err)
				}
				if !bytes.Equal(p.Data, pkts[frames].data) {
					t.Errorf("frame %d differs", frames+1)
				}
				frames++
			}
			if frames != len(pkts) {
				t.Errorf("%d frames, wrote %d", frames, len(pkts))
			}
			s := r.Secrets()
			if len(s) != 1 || s[0].Type != capture.SecretsTLSKeyLog || !bytes.Equal(s[0].Data, keys) {
				t.Fatalf("secrets %+v, want one TLSK block of %q", s, keys)
			}
		})
	}
}

// TestCommittedTLS checks the TLS parts of every TLS truth file against
// its capture: the key log is there (beside the capture, or in it); each
// connection's client bytes start with a ClientHello that offers
// resumption exactly when the truth says so and whose client random is in
// the key log exactly when the truth says so; a resumed TLS 1.2
// connection offered a ticket its ResumedFrom connection was issued; an
// alert is the last record its sender wrote; and the expect counts.
func TestCommittedTLS(t *testing.T) {
	files, err := filepath.Glob(filepath.Join(pcapsDir, "*.truth.json"))
	if err != nil {
		t.Fatal(err)
	}
	for _, file := range files {
		tr, err := truth.Load(file)
		if err != nil {
			t.Fatal(err)
		}
		if tr.Capture.KeyLog == "" {
			continue
		}
		t.Run(tr.Scenario, func(t *testing.T) {
			pcap := filepath.Join(pcapsDir, tr.Scenario+".pcapng")
			keys := committedKeys(t, tr, pcap)
			res, err := readScenario(pcap)
			if err != nil {
				t.Fatal(err)
			}
			ap, err := netip.ParseAddrPort(tr.Server)
			if err != nil {
				t.Fatal(err)
			}
			flows, err := connFlows(res.pkts, ap.Port(), tr.Connections)
			if err != nil {
				t.Fatal(err)
			}
			var e truth.Expect
			alerts := map[string]int{}
			for i, c := range tr.Connections {
				r := c.TLS
				if r == nil {
					t.Fatalf("connection %d: no tls record", c.ID)
				}
				f := flows[i]
				h, err := parseHello(f.data[0])
				if err != nil {
					t.Fatalf("connection %d: %v", c.ID, err)
				}
				logged := bytes.Contains(keys, []byte(fmt.Sprintf(" %x ", h.random)))
				if h.offered != r.OfferedResumption || logged != r.KeyLogged {
					t.Errorf("connection %d: capture: offered %v, key logged %v; truth %v, %v", c.ID, h.offered, logged, r.OfferedResumption, r.KeyLogged)
				}
				if r.ResumedFrom != 0 {
					found := false
					for _, tk := range newTickets(flows[r.ResumedFrom-1].data[1]) {
						found = found || bytes.Equal(tk, h.ticket)
					}
					if !found {
						t.Errorf("connection %d: offered ticket not issued on connection %d", c.ID, r.ResumedFrom)
					}
				}
				if a := r.Alert; a != nil {
					alerts[a.Description]++
					typ, body := lastRecord(f.data[dirIndex(map[string]string{"client": "c2s", "server": "s2c"}[a.From])])
					if a.Encrypted != (typ == 23) || !a.Encrypted && (len(body) != 2 || int(body[1]) != a.Code) {
						t.Errorf("connection %d: alert %+v, last record type %d % x", c.ID, a, typ, body)
					}
				}
				if r.HandshakeComplete {
					e.TLSHandshakes++
				}
				if r.DidResume {
					e.TLSResumed++
				}
				if r.OfferedResumption && !r.DidResume && r.HandshakeComplete {
					e.TLSResumptionRejected++
				}
			}
			x := tr.Expect
			if e.TLSHandshakes != x.TLSHandshakes || e.TLSResumed != x.TLSResumed || e.TLSResumptionRejected != x.TLSResumptionRejected ||
				fmt.Sprint(alerts) != fmt.Sprint(x.TLSAlerts) && len(alerts)+len(x.TLSAlerts) > 0 {
				t.Errorf("counted %d handshakes, %d resumed, %d refused, alerts %v; expect says %d, %d, %d, %v",
					e.TLSHandshakes, e.TLSResumed, e.TLSResumptionRejected, alerts, x.TLSHandshakes, x.TLSResumed, x.TLSResumptionRejected, x.TLSAlerts)
			}
			refused := x.TLSResumptionRejected > 0
			wants := strings.Contains(strings.Join(x.Findings, " "), "resumption_failure")
			if refused != wants {
				t.Errorf("%d refused resumptions, findings %v", x.TLSResumptionRejected, x.Findings)
			}
		})
	}
}

// committedKeys returns the key log of a TLS capture: NAME.keys, or the
// capture's Decryption Secrets Block, which must come before any packet.
func committedKeys(t *testing.T, tr *truth.Truth, pcap string) []byte {
	t.Helper()
	if tr.Capture.KeyLog != truth.KeyLogEmbedded {
		if tr.Capture.KeyLog != tr.Scenario+".keys" {
			t.Fatalf("keylog %q", tr.Capture.KeyLog)
		}
		b, err := os.ReadFile(filepath.Join(pcapsDir, tr.Capture.KeyLog))
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	r, err := capture.Open([]string{pcap}, capture.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if _, err := r.Next(); err != nil {
		t.Fatal(err)
	}
	s := r.Secrets()
	if len(s) != 1 || s[0].Type != capture.SecretsTLSKeyLog {
		t.Fatalf("%d secrets blocks before the first packet, want one TLSK block", len(s))
	}
	if d := tr.DerivedFrom; d != nil {
		if b, err := os.ReadFile(filepath.Join(pcapsDir, d.Scenario+".keys")); err == nil && !bytes.Equal(b, s[0].Data) {
			t.Errorf("embedded key log differs from %s.keys", d.Scenario)
		}
	}
	return s[0].Data
}
