package analyze

import (
	"net/netip"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/h2scope/h2scope/dissect"
	"github.com/h2scope/h2scope/dissect/event"
	"github.com/h2scope/h2scope/dissect/tcp"
	"github.com/h2scope/h2scope/dissect/tls"
)

// synTLS describes a synthetic TLS connection.
type synTLS struct {
	id       event.ConnID
	at       time.Duration
	version  string
	offered  []string
	accepted bool
	tickets  int
	lifetime uint32
	subject  string
}

func (s synTLS) build() *Conn {
	ch := event.Ref{Frame: uint64(s.id)*100 + 4, TS: t0.Add(s.at)}
	sh := event.Ref{Frame: uint64(s.id)*100 + 6, TS: t0.Add(s.at + time.Millisecond)}
	sum := &tls.Summary{Version: s.version, SNI: "api.test", Tickets: s.tickets, TicketLifetime: s.lifetime, Decrypted: true,
		Resumption: tls.Resumption{Offered: s.offered, Known: true, Accepted: s.accepted}}
	if s.accepted {
		sum.Resumption.Mechanism = "ticket"
	}
	if s.subject != "" {
		sum.Certificate = &tls.Certificate{Count: 1, Subject: s.subject, Issuer: "CN=ca"}
	}
	sum.Timing.ClientHello, sum.Timing.ServerHello = &ch, &sh
	ws := 7
	tc := &tcp.Summary{ID: s.id, Client: netip.MustParseAddrPort("10.0.0.5:40000"), Server: netip.MustParseAddrPort("10.0.0.9:443"),
		FirstTS: t0.Add(s.at), LastTS: t0.Add(s.at + time.Second), SYNs: 1, SYNACKs: 1, WindowScale: tcp.WindowScale{C2S: &ws, S2C: &ws}}
	return &Conn{TCP: tc, App: &dissect.App{Proto: event.ProtoTLS, TLS: sum}}
}

func TestResumptionSynthetic(t *testing.T) {
	detect := func(in *Input) []Finding { return detectResumptionFailure(in, defaultResumption()) }
	const v12, v13 = "TLS 1.2", "TLS 1.3"
	ticket := []string{"session_id", "ticket"}
	full := func(id event.ConnID, at time.Duration, subject string) synTLS {
		return synTLS{id: id, at: at, version: v12, offered: []string{"none"}, tickets: 1, lifetime: 3600, subject: subject}
	}
	tests := []struct {
		name  string
		hs    []synTLS
		cause string // "" when nothing may fire
		fails int
	}{
		{"resumed", []synTLS{full(0, 0, "CN=a"), {id: 1, at: time.Second, version: v12, offered: ticket, accepted: true}, {id: 2, at: 2 * time.Second, version: v12, offered: ticket, accepted: true}}, "", 0},
		{"ticket keys rotated", []synTLS{full(0, 0, "CN=a"), {id: 1, at: time.Second, version: v12, offered: ticket, tickets: 1, subject: "CN=a"}, {id: 2, at: 2 * time.Second, version: v12, offered: ticket, tickets: 1, subject: "CN=a"}}, causeKeysRotated, 2},
		{"tickets disabled", []synTLS{full(0, 0, "CN=a"), {id: 1, at: time.Second, version: v13, offered: []string{"psk"}, subject: "CN=a"}, {id: 2, at: 2 * time.Second, version: v13, offered: []string{"psk"}, subject: "CN=a"}}, causeTicketsOff, 2},
		{"another backend", []synTLS{full(0, 0, "CN=a"), {id: 1, at: time.Second, version: v12, offered: ticket, tickets: 1, subject: "CN=b"}, {id: 2, at: 2 * time.Second, version: v12, offered: ticket, tickets: 1, subject: "CN=a"}}, causeCertChanged, 2},
		{"ticket expired", []synTLS{{id: 0, version: v12, offered: []string{"none"}, tickets: 1, lifetime: 10, subject: "CN=a"}, {id: 1, at: time.Minute, version: v12, offered: ticket, tickets: 1, lifetime: 10, subject: "CN=a"}, {id: 2, at: 2 * time.Minute, version: v12, offered: ticket, tickets: 1, lifetime: 10, subject: "CN=a"}}, causeTicketExpired, 2},
		{"random session ids are no offer", []synTLS{full(0, 0, "CN=a"), {id: 1, at: time.Second, version: v12, offered: []string{"session_id"}, tickets: 1, subject: "CN=a"}, {id: 2, at: 2 * time.Second, version: v12, offered: []string{"session_id"}, tickets: 1, subject: "CN=a"}}, "", 0},
		{"one failure", []synTLS{full(0, 0, "CN=a"), {id: 1, at: time.Second, version: v12, offered: ticket, tickets: 1, subject: "CN=a"}}, "", 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var cs []*Conn
			for _, h := range tt.hs {
				cs = append(cs, h.build())
			}
			var want *findingWant
			if tt.cause != "" {
				want = &findingWant{sev: Warning, metrics: map[string]float64{"failed": float64(tt.fails)}}
			}
			f := checkFindings(t, run(detect, cs...), KindResumptionFailure, want)
			if tt.cause == "" {
				return
			}
			if c := f.Metrics["causes"].(map[string]int); c[tt.cause] == 0 {
				t.Errorf("causes = %v, want %s", c, tt.cause)
			}
			// Evidence: the failed handshakes' ClientHello and ServerHello.
			if len(f.Evidence) != 2*tt.fails || f.Evidence[0].Frame != 104 || f.Evidence[1].Frame != 106 {
				t.Errorf("evidence = %+v", f.Evidence)
			}
		})
	}
}

func TestResumptionCaptures(t *testing.T) {
	tests := []struct {
		name   string
		fire   bool
		failed int
		causes map[string]int
	}{
		{"tls12-resume", false, 0, nil},
		{"tls13-resume", false, 0, nil},
		{"tls12-resume-fail", true, 5, map[string]int{causeKeysRotated: 3, causeTicketsOff: 2}},
		{"tls13-resume-fail", true, 4, map[string]int{causeKeysRotated: 2, causeTicketsOff: 2}},
		{"h2-tls", false, 0, nil},
		{"grpc-tls", false, 0, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := os.Stat(filepath.Join(pcaps, tt.name+".pcapng")); err != nil {
				t.Skipf("%s not generated yet", tt.name)
			}
			res, _ := analyzeCapture(t, tt.name)
			f := findKind(res.Findings, KindResumptionFailure)
			if !tt.fire {
				if f != nil {
					t.Fatalf("unexpected finding: %s", f.Summary)
				}
				return
			}
			if f == nil || f.Severity < Warning {
				t.Fatalf("no resumption_failure at warning+: %+v", res.Findings)
			}
			if f.Metrics["failed"] != tt.failed || f.Metrics["accepted"] != 0 {
				t.Errorf("metrics = %v", f.Metrics)
			}
			got := f.Metrics["causes"].(map[string]int)
			for k, v := range tt.causes {
				if got[k] != v {
					t.Errorf("causes = %v, want %v", got, tt.causes)
				}
			}
		})
	}
}

func TestResumptionCorpus(t *testing.T) {
	t.Run("tls-subjectaltname", func(t *testing.T) {
		// A browser's session ids refused by mc.yandex.ru, which issues
		// no tickets; one session id accepted elsewhere.
		res := analyzeFile(t, corpus(t, "sv/tls-subjectaltname/input.pcap"), "")
		fs := only(res, KindResumptionFailure)
		if len(fs) != 1 || fs[0].Metrics["failed"] != 2 || fs[0].Metrics["causes"].(map[string]int)[causeSessionMiss] != 2 {
			t.Fatalf("findings = %+v", fs)
		}
		accepted := 0
		for _, r := range res.Tables.Resumption {
			accepted += r.Accepted
		}
		if accepted != 1 {
			t.Errorf("accepted resumptions in the funnel = %d, want 1", accepted)
		}
	})
	for _, name := range []string{"ja4/tls3.pcapng", "ja4/latest.pcapng"} {
		t.Run(name, func(t *testing.T) {
			res := analyzeFile(t, corpus(t, name), "")
			if f := findKind(res.Findings, KindResumptionFailure); f != nil {
				t.Errorf("unexpected finding: %s", f.Summary)
			}
		})
	}
}

// TestClientNotOffering: a client issued tickets that reconnects without
// offering them keeps no session cache; connections opened before any
// ticket could have come do not count.
func TestClientNotOffering(t *testing.T) {
	none := []string{"none"}
	detect := func(in *Input) []Finding { return detectResumptionFailure(in, defaultResumption()) }
	later := []*Conn{
		synTLS{id: 0, at: 0, version: "TLS 1.2", offered: none, tickets: 1}.build(),
		synTLS{id: 1, at: time.Second, version: "TLS 1.2", offered: none, tickets: 1}.build(),
		synTLS{id: 2, at: 2 * time.Second, version: "TLS 1.2", offered: none, tickets: 1}.build(),
	}
	checkFindings(t, run(detect, later...), KindResumptionFailure, &findingWant{sev: Warning, cause: CauseClientNotOffering,
		summary: "Client 10.0.0.5 made 2 full TLS handshakes to 10.0.0.9:443 (api.test) without offering to resume",
		frames:  []uint64{104, 204}, metrics: map[string]float64{"not_offering": 2}, remedyHas: "ClientSessionCache"})
	concurrent := []*Conn{ // all within the first one's round trip
		synTLS{id: 0, at: 0, version: "TLS 1.2", offered: none, tickets: 1}.build(),
		synTLS{id: 1, at: time.Millisecond / 2, version: "TLS 1.2", offered: none, tickets: 1}.build(),
		synTLS{id: 2, at: time.Millisecond, version: "TLS 1.2", offered: none, tickets: 1}.build(),
	}
	checkFindings(t, run(detect, concurrent...), KindResumptionFailure, nil)
}
