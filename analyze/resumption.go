package analyze

import (
	"cmp"
	"flag"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/h2scope/h2scope/dissect/event"
	"github.com/h2scope/h2scope/dissect/tls"
)

// ResumptionConfig holds the resumption_failure thresholds.
type ResumptionConfig struct {
	// MinFailures is the fewest failed resumptions (offered, answered
	// with a full handshake) in one (client, SNI, server) group that make
	// a finding; MinFailRatio the smallest share of failed offers.
	MinFailures  int
	MinFailRatio float64
}

func defaultResumption() ResumptionConfig {
	return ResumptionConfig{MinFailures: 2, MinFailRatio: 0.5}
}

func (c *ResumptionConfig) flags(fs *flag.FlagSet) {
	fs.IntVar(&c.MinFailures, "resumption-min-failures", c.MinFailures, "resumption_failure: failed resumptions in one client/SNI/server group that make a finding")
	fs.Float64Var(&c.MinFailRatio, "resumption-fail-ratio", c.MinFailRatio, "resumption_failure: smallest share of resumption offers that failed")
}

// Why a resumption failed, as the metrics name it.
const (
	causeCertChanged   = "certificate_changed"
	causeTicketExpired = "ticket_expired"
	causeTicketsOff    = "tickets_disabled"
	causeKeysRotated   = "ticket_keys_rotated"
	causeSessionMiss   = "session_cache_miss"
	causeUnknown       = "unknown"
	offerStrong        = "strong"
	offerWeak          = "weak"
	offerNone          = "none"
	offerAmbiguousWeak = "ambiguous"
)

// tlsHandshake is one connection's handshake as the funnel sees it.
type tlsHandshake struct {
	c     *Conn
	s     *tls.Summary
	ts    time.Time
	ch    *event.Ref // ClientHello
	sh    *event.Ref // ServerHello
	tls13 bool
	// offer is offerStrong (ticket or PSK), offerWeak (a TLS 1.2 session
	// id alone, which may be a random one), offerAmbiguousWeak (a weak
	// offer not counted) or offerNone.
	offer            string
	accepted, failed bool
	cause            string
}

// ticketsVisible reports whether the handshake shows whether the server
// sent NewSessionTicket: always in TLS 1.2 (cleartext), in TLS 1.3 only
// when decrypted.
func (h *tlsHandshake) ticketsVisible() bool { return !h.tls13 || h.s.Decrypted }

// full reports whether the handshake was a full one, as known.
func (h *tlsHandshake) full() bool { return h.s.Resumption.Known && !h.s.Resumption.Accepted }

// tlsGroup is one (client, SNI, server) funnel.
type tlsGroup struct {
	client netip.Addr
	sni    string
	server netip.AddrPort
	hs     []*tlsHandshake
}

// tlsGroups builds the funnels of in, in key order, each handshake
// classified.
func tlsGroups(in *Input) []*tlsGroup {
	type key struct {
		client netip.Addr
		sni    string
		server netip.AddrPort
	}
	idx := map[key]*tlsGroup{}
	var gs []*tlsGroup
	for _, c := range in.Conns {
		if c.TCP == nil || c.App == nil || c.App.TLS == nil {
			continue
		}
		s := c.App.TLS
		if s.Timing.ClientHello == nil && len(s.Resumption.Offered) == 0 {
			continue
		}
		k := key{c.Client(), s.SNI, c.Server()}
		g := idx[k]
		if g == nil {
			g = &tlsGroup{client: k.client, sni: k.sni, server: k.server}
			idx[k] = g
			gs = append(gs, g)
		}
		h := &tlsHandshake{c: c, s: s, ts: c.TCP.FirstTS, ch: s.Timing.ClientHello, sh: s.Timing.ServerHello, tls13: s.Version == "TLS 1.3"}
		if h.ch != nil {
			h.ts = h.ch.TS
		}
		g.hs = append(g.hs, h)
	}
	for _, g := range gs {
		slices.SortStableFunc(g.hs, func(a, b *tlsHandshake) int {
			return cmp.Or(a.ts.Compare(b.ts), cmp.Compare(a.c.ID(), b.c.ID()))
		})
		g.classify()
	}
	slices.SortFunc(gs, func(a, b *tlsGroup) int {
		return cmp.Or(a.client.Compare(b.client), strings.Compare(a.sni, b.sni), a.server.Compare(b.server))
	})
	return gs
}

// classify sets each handshake's offer, outcome and cause.
func (g *tlsGroup) classify() {
	for i, h := range g.hs {
		r := h.s.Resumption
		strong := slices.Contains(r.Offered, "ticket") || slices.Contains(r.Offered, "psk")
		weak := slices.Contains(r.Offered, "session_id")
		switch {
		case strong:
			h.offer = offerStrong
		case weak:
			// Many TLS 1.3-capable clients (Go always) send a random
			// session id: count it as an offer when it was accepted, or
			// when an earlier full handshake showed the server issuing no
			// ticket, so that session ids are the only way to resume.
			h.offer = offerAmbiguousWeak
			if r.Accepted || g.noTicketsBefore(i) {
				h.offer = offerWeak
			}
		default:
			h.offer = offerNone
		}
		if h.offer != offerStrong && h.offer != offerWeak {
			continue
		}
		h.accepted = r.Accepted
		h.failed = r.Known && !r.Accepted
		if h.failed {
			h.cause = g.cause(i)
		}
	}
}

// noTicketsBefore reports whether a full handshake before hs[i] visibly
// carried no NewSessionTicket.
func (g *tlsGroup) noTicketsBefore(i int) bool {
	for _, p := range g.hs[:i] {
		if p.full() && p.ticketsVisible() && p.s.Tickets == 0 {
			return true
		}
	}
	return false
}

// cause explains why hs[i], a failed offer, got a full handshake.
func (g *tlsGroup) cause(i int) string {
	h := g.hs[i]
	// The previous handshake that showed a certificate, and the latest
	// one that issued a ticket.
	var prevCert, prevTicket *tlsHandshake
	for j := i - 1; j >= 0; j-- {
		p := g.hs[j]
		if prevCert == nil && p.s.Certificate != nil && p.s.Certificate.Subject != "" {
			prevCert = p
		}
		if prevTicket == nil && p.s.Tickets > 0 {
			prevTicket = p
		}
	}
	if cert := h.s.Certificate; cert != nil && cert.Subject != "" && prevCert != nil && !sameCert(cert, prevCert.s.Certificate) {
		return causeCertChanged
	}
	if prevTicket != nil && prevTicket.s.TicketLifetime > 0 &&
		h.ts.Sub(prevTicket.ts) > time.Duration(prevTicket.s.TicketLifetime)*time.Second {
		return causeTicketExpired
	}
	if h.ticketsVisible() {
		if h.s.Tickets == 0 {
			if h.offer == offerWeak {
				return causeSessionMiss
			}
			return causeTicketsOff
		}
		return causeKeysRotated
	}
	return causeUnknown
}

// sameCert reports whether two leaf certificates look the same.
func sameCert(a, b *tls.Certificate) bool {
	return a.Subject == b.Subject && a.Issuer == b.Issuer && a.NotAfter.Equal(b.NotAfter) && slices.Equal(a.SANs, b.SANs)
}

// funnel counts a group's handshakes.
type funnel struct {
	handshakes, offered, accepted, failed, ambiguous, full int
	mechanisms, causes                                     map[string]int
	certs                                                  int
}

func (g *tlsGroup) funnel() funnel {
	f := funnel{mechanisms: map[string]int{}, causes: map[string]int{}}
	var certs []*tls.Certificate
	for _, h := range g.hs {
		f.handshakes++
		if h.full() {
			f.full++
		}
		switch h.offer {
		case offerStrong, offerWeak:
			f.offered++
		case offerAmbiguousWeak:
			f.ambiguous++
		}
		if h.s.Resumption.Accepted {
			f.mechanisms[h.s.Resumption.Mechanism]++
		}
		if h.accepted {
			f.accepted++
		}
		if h.failed {
			f.failed++
			f.causes[h.cause]++
		}
		if c := h.s.Certificate; c != nil && c.Subject != "" && !slices.ContainsFunc(certs, func(x *tls.Certificate) bool { return sameCert(x, c) }) {
			certs = append(certs, c)
		}
	}
	f.certs = len(certs)
	return f
}

// detectResumptionFailure reports clients whose TLS resumption offers
// are answered with full handshakes.
//
// Signal: per (client IP, SNI, server IP:port), the funnel of TLS
// handshakes: resumption offered (a ticket, a TLS 1.3 PSK, or a TLS 1.2
// session id) → accepted (abbreviated handshake, PSK selected) or failed
// (a full handshake answered the offer). Each failure gets a cause when
// the capture shows one: the server's certificate changed since the
// previous handshake (another backend), the previous ticket's lifetime
// had passed (ticket expired), the server issued no NewSessionTicket
// (tickets disabled; for a session id: the server's session cache missed),
// or it issued new tickets while refusing the offered one (ticket keys
// rotated or not shared between replicas). NewSessionTicket and the TLS
// 1.3 certificate are only visible when decrypted; the cause is then
// "unknown".
//
// Thresholds: at least MinFailures (2) failed offers making at least
// MinFailRatio (0.5) of the offers is a warning.
//
// False positives avoided: a TLS 1.2 session id alone is not counted as
// an offer unless it was accepted or the server visibly issues no
// tickets (Go and most TLS 1.3-capable clients send a random one);
// groups where most offers are accepted; handshakes whose ServerHello was
// not captured.
//
// Metrics: handshakes, offered, accepted, failed, full_handshakes,
// fail_ratio, ambiguous_session_ids, mechanisms, causes, certificates,
// ticket_lifetime_s, reconnect_gap_{median,max}_ms.
func detectResumptionFailure(in *Input, cfg ResumptionConfig) []Finding {
	var out []Finding
	for _, g := range tlsGroups(in) {
		fn := g.funnel()
		if fn.offered == 0 || fn.failed < max(cfg.MinFailures, 1) || float64(fn.failed)/float64(fn.offered) < cfg.MinFailRatio {
			continue
		}
		out = append(out, resumptionFinding(in, g, fn))
	}
	return out
}

func resumptionFinding(in *Input, g *tlsGroup, fn funnel) Finding {
	f := Finding{Kind: KindResumptionFailure, Severity: Warning}
	dest := g.server.String()
	if g.sni != "" {
		dest += " (" + g.sni + ")"
	}
	var b strings.Builder
	fmt.Fprintf(&b, "Client %s offered TLS resumption to %s %d times and got %d full handshakes (%d resumed)", g.client, dest, fn.offered, fn.failed, fn.accepted)
	causes := sortedKeys(fn.causes)
	slices.SortStableFunc(causes, func(a, b string) int { return cmp.Compare(fn.causes[b], fn.causes[a]) })
	var parts []string
	for _, c := range causes {
		parts = append(parts, fmt.Sprintf("%s on %d", causeText[c], fn.causes[c]))
	}
	if len(parts) > 0 {
		b.WriteString(": " + strings.Join(parts, ", "))
	}
	f.Summary = b.String()

	var gaps []time.Duration
	var lifetime uint32
	shown := 0
	var reasons []string
	var involved []*Conn
	for i, h := range g.hs {
		if i > 0 {
			gaps = append(gaps, h.ts.Sub(g.hs[i-1].ts))
		}
		if h.s.TicketLifetime > 0 {
			lifetime = h.s.TicketLifetime
		}
		if !h.failed {
			continue
		}
		involved = append(involved, h.c)
		if h.cause == causeUnknown && h.tls13 && !h.s.Decrypted {
			reasons = append(reasons, "TLS 1.3 not decrypted: tickets and certificates invisible, cause unknown")
		}
		if shown >= 8 {
			continue
		}
		shown++
		if h.ch != nil {
			f.Evidence = append(f.Evidence, evidence(h.c.ID(), 0, *h.ch, fmt.Sprintf("ClientHello offers resumption (%s)", strings.Join(h.s.Resumption.Offered, ", "))))
		}
		if h.sh != nil {
			f.Evidence = append(f.Evidence, evidence(h.c.ID(), 0, *h.sh, "ServerHello starts a full handshake: "+causeText[h.cause]))
		}
	}
	for _, h := range g.hs {
		f.Connections = append(f.Connections, h.c.ID())
	}
	m := map[string]any{
		"handshakes":            fn.handshakes,
		"offered":               fn.offered,
		"accepted":              fn.accepted,
		"failed":                fn.failed,
		"full_handshakes":       fn.full,
		"fail_ratio":            roundTo(float64(fn.failed)/float64(fn.offered), 3),
		"ambiguous_session_ids": fn.ambiguous,
		"mechanisms":            fn.mechanisms,
		"causes":                fn.causes,
		"certificates":          fn.certs,
	}
	if lifetime > 0 {
		m["ticket_lifetime_s"] = int(lifetime)
	}
	if len(gaps) > 0 {
		_, mid, hi := durationStats(gaps)
		m["reconnect_gap_median_ms"], m["reconnect_gap_max_ms"] = ms(mid), ms(hi)
	}
	f.Metrics = m
	f.Confidence = confidence(in.capture(), involved...).with(reasons...)
	f.Remedy = resumptionRemedy(fn)
	return f
}

var causeText = map[string]string{
	causeCertChanged:   "a different server certificate (another backend)",
	causeTicketExpired: "the ticket's lifetime had passed",
	causeTicketsOff:    "the server issued no session ticket (tickets disabled)",
	causeKeysRotated:   "the server issued new tickets but refused the offered one (ticket keys rotated or not shared)",
	causeSessionMiss:   "the server's session cache did not know the session id",
	causeUnknown:       "cause unknown",
}

func resumptionRemedy(fn funnel) string {
	var b strings.Builder
	if fn.causes[causeKeysRotated] > 0 || fn.causes[causeCertChanged] > 0 || fn.causes[causeUnknown] > 0 {
		b.WriteString("Share session-ticket keys across every server behind the name and rotate them with overlap: Go tls.Config.SetSessionTicketKeys with the same keys on every replica (new key first, old keys kept for decryption); nginx ssl_session_ticket_key files shared by all nodes and ssl_session_cache shared:SSL:10m; Envoy DownstreamTlsContext session_ticket_keys (or session_ticket_keys_sds_secret_config) identical on every instance. ")
	}
	if fn.causes[causeTicketsOff] > 0 {
		b.WriteString("Enable session tickets on the server: Go tls.Config.SessionTicketsDisabled=false; nginx ssl_session_tickets on. ")
	}
	if fn.causes[causeSessionMiss] > 0 {
		b.WriteString("For session-id resumption the server needs a shared session cache (nginx ssl_session_cache shared:...; a load balancer with sticky sessions), or enable tickets. ")
	}
	if fn.causes[causeTicketExpired] > 0 {
		b.WriteString("Tickets expire before clients reconnect: raise the ticket lifetime (nginx ssl_session_timeout) or reconnect sooner. ")
	}
	b.WriteString("On the client keep one session cache for all connections: Go tls.Config.ClientSessionCache = tls.NewLRUClientSessionCache(n), shared by one http.Transport.")
	return b.String()
}
