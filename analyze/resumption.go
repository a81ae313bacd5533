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

// tlsHandshake is one connection's handshake as the funnel sees it: what
// resumption_failure and the resumption table keep of the connection.
type tlsHandshake struct {
	id     event.ConnID
	ts     time.Time
	ch, sh *event.Ref // ClientHello, ServerHello
	tls13  bool
	// What the TLS summary says: the resumption offered and its outcome,
	// the tickets the server issued (and the last one's lifetime), its
	// leaf certificate, whether the session was decrypted.
	res       tls.Resumption
	tickets   int
	lifetime  uint32
	ticketLen int
	cert      *tls.Certificate
	decrypted bool
	reasons   connReasons
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
func (h *tlsHandshake) ticketsVisible() bool { return !h.tls13 || h.decrypted }

// full reports whether the handshake was a full one, as known.
func (h *tlsHandshake) full() bool { return h.res.Known && !h.res.Accepted }

// tlsKey identifies a funnel: one client IP, server name and server.
type tlsKey struct {
	client netip.Addr
	sni    string
	server netip.AddrPort
}

// folded returns k with its client folded into anyClient.
func (k tlsKey) folded() tlsKey {
	k.client = anyClient
	return k
}

func (k tlsKey) compare(o tlsKey) int {
	return cmp.Or(k.client.Compare(o.client), strings.Compare(k.sni, o.sni), k.server.Compare(o.server))
}

// tlsGroup is one (client, SNI, server) funnel: its first tlsKeep
// handshakes (by ClientHello time) in hs, every one while over is empty;
// over tallies the later ones, classified when they were added against
// the group's history (see tlsOverflow).
type tlsGroup struct {
	client netip.Addr
	sni    string
	server netip.AddrPort
	hs     []*tlsHandshake
	over   *tlsOverflow
}

// tlsKeep is how many handshakes of one funnel are kept: the funnel is
// exact up to that size.
const tlsKeep = 4096

// tlsOverflow is what a funnel keeps of the handshakes past its first
// tlsKeep: their funnel counts, the reasons to doubt them, and the
// history the next one is classified against (the last certificate and
// ticket seen, whether a full handshake showed no ticket).
type tlsOverflow struct {
	fn          funnel
	failReasons connReasons
	unknown13   bool
	lastCert    *tlsHandshake
	lastTicket  *tlsHandshake
	noTickets   bool
}

// resumptionFold is the resumption_failure detector; the resumption
// table reads its funnels too.
type resumptionFold struct {
	cfg    ResumptionConfig
	groups map[tlsKey]*tlsGroup
}

func newResumptionFold(cfg ResumptionConfig) *resumptionFold {
	return &resumptionFold{cfg: cfg, groups: map[tlsKey]*tlsGroup{}}
}

func (d *resumptionFold) observe(*Conn) {}

// final adds c's handshake to its funnel.
func (d *resumptionFold) final(c *Conn) {
	if c.TCP == nil || c.App == nil || c.App.TLS == nil {
		return
	}
	s := c.App.TLS
	if s.Timing.ClientHello == nil && len(s.Resumption.Offered) == 0 {
		return
	}
	k := tlsKey{c.Client(), s.SNI, c.Server()}
	g := d.groups[k]
	if g == nil && len(d.groups) >= maxPools {
		// Past maxPools, new clients share one funnel per server: "*".
		k = k.folded()
		g = d.groups[k]
	}
	if g == nil {
		g = newTLSGroup(k)
		d.groups[k] = g
	}
	h := &tlsHandshake{id: c.ID(), ts: c.TCP.FirstTS, ch: s.Timing.ClientHello, sh: s.Timing.ServerHello, tls13: s.Version == "TLS 1.3",
		res: s.Resumption, tickets: s.Tickets, lifetime: s.TicketLifetime, ticketLen: s.TicketLen, cert: s.Certificate, decrypted: s.Decrypted, reasons: reasonsOf(c)}
	if h.ch != nil {
		h.ts = h.ch.TS
	}
	g.add(h)
}

// add adds h to the funnel.
func (g *tlsGroup) add(hs ...*tlsHandshake) {
	g.hs = append(g.hs, hs...)
	if len(g.hs) >= 2*tlsKeep {
		g.trim()
	}
}

// trim orders the handshakes kept and, past 2×tlsKeep, tallies the
// latest ones into over.
func (g *tlsGroup) trim() {
	slices.SortStableFunc(g.hs, func(a, b *tlsHandshake) int {
		return cmp.Or(a.ts.Compare(b.ts), cmp.Compare(a.id, b.id))
	})
	if len(g.hs) < 2*tlsKeep && g.over == nil {
		return
	}
	if len(g.hs) <= tlsKeep {
		return
	}
	g.classify()
	if g.over == nil {
		g.over = &tlsOverflow{fn: newFunnel()}
		for _, h := range g.hs[:tlsKeep] {
			g.over.remember(h)
		}
	}
	for _, h := range g.hs[tlsKeep:] {
		g.over.add(h)
	}
	g.hs = slices.Clip(g.hs[:tlsKeep])
}

// remember updates the history with h, an earlier handshake.
func (o *tlsOverflow) remember(h *tlsHandshake) {
	if h.cert != nil && h.cert.Subject != "" && (o.lastCert == nil || !h.ts.Before(o.lastCert.ts)) {
		o.lastCert = h
	}
	if h.tickets > 0 && (o.lastTicket == nil || !h.ts.Before(o.lastTicket.ts)) {
		o.lastTicket = h
	}
	if h.full() && h.ticketsVisible() && h.tickets == 0 {
		o.noTickets = true
	}
}

// add classifies h against the history and tallies it.
func (o *tlsOverflow) add(h *tlsHandshake) {
	g := &tlsGroup{hs: []*tlsHandshake{h}}
	if o.lastCert != nil {
		g.hs = append([]*tlsHandshake{o.lastCert}, g.hs...)
	}
	if o.lastTicket != nil && o.lastTicket != o.lastCert {
		g.hs = append([]*tlsHandshake{o.lastTicket}, g.hs...)
	}
	classifyOne(g, len(g.hs)-1, o.noTickets)
	o.fn.add(h)
	if h.failed {
		o.failReasons |= h.reasons
		o.unknown13 = o.unknown13 || h.cause == causeUnknown && h.tls13 && !h.decrypted
	}
	o.remember(h)
}

func newTLSGroup(k tlsKey) *tlsGroup {
	return &tlsGroup{client: k.client, sni: k.sni, server: k.server}
}

func (d *resumptionFold) merge(o detector) {
	mergePools(&d.groups, o.(*resumptionFold).groups, nil, tlsKey.compare, newTLSGroup, (*tlsGroup).merge)
}

// merge adds og's handshakes, og being over other connections.
func (g *tlsGroup) merge(og *tlsGroup, _ tlsKey, _ bool) {
	if og.over != nil {
		// Not exact past tlsKeep: the other's overflow is added as it
		// was classified.
		if g.over == nil {
			g.over = &tlsOverflow{fn: newFunnel()}
		}
		g.over.fn.merge(og.over.fn)
		g.over.failReasons |= og.over.failReasons
		g.over.unknown13 = g.over.unknown13 || og.over.unknown13
	}
	g.add(og.hs...)
}

// sortedGroups returns the funnels in key order, each ordered and
// classified.
func (d *resumptionFold) sortedGroups() []*tlsGroup {
	keys := make([]tlsKey, 0, len(d.groups))
	for k := range d.groups {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, tlsKey.compare)
	gs := make([]*tlsGroup, len(keys))
	for i, k := range keys {
		g := d.groups[k]
		g.trim()
		g.classify()
		gs[i] = g
	}
	return gs
}

// classify sets each handshake's offer, outcome and cause.
func (g *tlsGroup) classify() {
	for i := range g.hs {
		classifyOne(g, i, false)
	}
}

// classifyOne classifies hs[i] after hs[:i]; noTickets reports that a
// full handshake before those visibly carried no NewSessionTicket.
func classifyOne(g *tlsGroup, i int, noTickets bool) {
	{
		h := g.hs[i]
		r := h.res
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
			if r.Accepted || noTickets || g.noTicketsBefore(i) {
				h.offer = offerWeak
			}
		default:
			h.offer = offerNone
		}
		if h.offer != offerStrong && h.offer != offerWeak {
			return
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
		if p.full() && p.ticketsVisible() && p.tickets == 0 {
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
		if prevCert == nil && p.cert != nil && p.cert.Subject != "" {
			prevCert = p
		}
		if prevTicket == nil && p.tickets > 0 {
			prevTicket = p
		}
	}
	if cert := h.cert; cert != nil && cert.Subject != "" && prevCert != nil && !sameCert(cert, prevCert.cert) {
		return causeCertChanged
	}
	if prevTicket != nil && prevTicket.lifetime > 0 &&
		h.ts.Sub(prevTicket.ts) > time.Duration(prevTicket.lifetime)*time.Second {
		return causeTicketExpired
	}
	if h.ticketsVisible() {
		if h.tickets == 0 {
			if h.offer == offerWeak {
				return causeSessionMiss
			}
			return causeTicketsOff
		}
		// New tickets, the offered one refused: a stateful ticket is a
		// key into the server's session cache, which did not hold it; a
		// stateless one was sealed with a key the server no longer has.
		if prevTicket != nil && prevTicket.ticketLen > 0 && prevTicket.ticketLen <= maxStatefulTicket {
			return causeSessionMiss
		}
		return causeKeysRotated
	}
	return causeUnknown
}

// maxStatefulTicket is the longest ticket taken for a stateful one, a
// session cache key (OpenSSL's are 32 bytes); stateless tickets carry
// the sealed session, over 100 bytes in every common server.
const maxStatefulTicket = 64

// sameCert reports whether two leaf certificates look the same.
func sameCert(a, b *tls.Certificate) bool {
	return a.Subject == b.Subject && a.Issuer == b.Issuer && a.NotAfter.Equal(b.NotAfter) && slices.Equal(a.SANs, b.SANs)
}

// funnel counts a group's handshakes.
type funnel struct {
	handshakes, offered, accepted, failed, ambiguous, full int
	mechanisms, causes                                     map[string]int
	certs                                                  []*tls.Certificate // distinct
}

func newFunnel() funnel {
	return funnel{mechanisms: map[string]int{}, causes: map[string]int{}}
}

// funnel counts the group's handshakes, classified.
func (g *tlsGroup) funnel() funnel {
	f := newFunnel()
	for _, h := range g.hs {
		f.add(h)
	}
	if g.over != nil {
		f.merge(g.over.fn)
	}
	return f
}

// add counts h, classified.
func (f *funnel) add(h *tlsHandshake) {
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
	if h.res.Accepted {
		f.mechanisms[h.res.Mechanism]++
	}
	if h.accepted {
		f.accepted++
	}
	if h.failed {
		f.failed++
		f.causes[h.cause]++
	}
	f.addCert(h.cert)
}

func (f *funnel) addCert(c *tls.Certificate) {
	if c != nil && c.Subject != "" && !slices.ContainsFunc(f.certs, func(x *tls.Certificate) bool { return sameCert(x, c) }) {
		f.certs = append(f.certs, c)
	}
}

// merge adds o's counts.
func (f *funnel) merge(o funnel) {
	f.handshakes += o.handshakes
	f.offered += o.offered
	f.accepted += o.accepted
	f.failed += o.failed
	f.ambiguous += o.ambiguous
	f.full += o.full
	for k, n := range o.mechanisms {
		f.mechanisms[k] += n
	}
	for k, n := range o.causes {
		f.causes[k] += n
	}
	for _, c := range o.certs {
		f.addCert(c)
	}
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
func (d *resumptionFold) findings(in *capture) []Finding {
	cfg := d.cfg
	var out []Finding
	for _, g := range d.sortedGroups() {
		fn := g.funnel()
		if fn.offered == 0 {
			if hs := g.notOffering(); len(hs) >= max(cfg.MinFailures, 1) {
				out = append(out, notOfferingFinding(in, g, fn, hs))
			}
			continue
		}
		if fn.failed < max(cfg.MinFailures, 1) || float64(fn.failed)/float64(fn.offered) < cfg.MinFailRatio {
			continue
		}
		out = append(out, resumptionFinding(in, g, fn))
	}
	return out
}

func resumptionFinding(in *capture, g *tlsGroup, fn funnel) Finding {
	f := Finding{Kind: KindResumptionFailure, Severity: Warning, Cause: resumptionCause(fn)}
	dest := g.server.String()
	if g.sni != "" {
		dest += " (" + g.sni + ")"
	}
	var b strings.Builder
	fmt.Fprintf(&b, "Client %s offered TLS resumption to %s %d times and got %d full handshakes (%d resumed)", clientString(g.client), dest, fn.offered, fn.failed, fn.accepted)
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
	var involved []connReasons
	for i, h := range g.hs {
		if i > 0 {
			gaps = append(gaps, h.ts.Sub(g.hs[i-1].ts))
		}
		if h.lifetime > 0 {
			lifetime = h.lifetime
		}
		if !h.failed {
			continue
		}
		involved = append(involved, h.reasons)
		if h.cause == causeUnknown && h.tls13 && !h.decrypted {
			reasons = append(reasons, "TLS 1.3 not decrypted: tickets and certificates invisible, cause unknown")
		}
		if shown >= 8 {
			continue
		}
		shown++
		if h.ch != nil {
			f.Evidence = append(f.Evidence, evidence(h.id, 0, *h.ch, fmt.Sprintf("ClientHello offers resumption (%s)", strings.Join(h.res.Offered, ", "))))
		}
		if h.sh != nil {
			f.Evidence = append(f.Evidence, evidence(h.id, 0, *h.sh, "ServerHello starts a full handshake: "+causeText[h.cause]))
		}
	}
	for _, h := range g.hs {
		f.Connections = append(f.Connections, h.id)
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
		"certificates":          len(fn.certs),
	}
	if lifetime > 0 {
		m["ticket_lifetime_s"] = int(lifetime)
	}
	if len(gaps) > 0 {
		_, mid, hi := durationStats(gaps)
		m["reconnect_gap_median_ms"], m["reconnect_gap_max_ms"] = ms(mid), ms(hi)
	}
	f.Metrics = m
	if o := g.over; o != nil {
		involved = append(involved, o.failReasons)
		if o.unknown13 {
			reasons = append(reasons, "TLS 1.3 not decrypted: tickets and certificates invisible, cause unknown")
		}
		m["connections_listed"] = len(g.hs)
		m["estimated"] = fmt.Sprintf("past the first %d handshakes, each was classified against the group's latest certificate and ticket; reconnect gaps are over the first %d", len(g.hs), len(g.hs))
	}
	f.Confidence = confidenceOf(in, involved...).with(reasons...)
	f.Remedy = resumptionRemedy(fn)
	return f
}

var causeText = map[string]string{
	causeCertChanged:   "a different server certificate (another backend)",
	causeTicketExpired: "the ticket's lifetime had passed",
	causeTicketsOff:    "the server issued no session ticket (tickets disabled)",
	causeKeysRotated:   "the server issued new tickets but refused the offered one (ticket keys rotated or not shared)",
	causeSessionMiss:   "the server's session cache did not know the session (id or stateful ticket)",
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

// findingCauses maps the causes of single failures to the finding's
// (Finding.Cause).
var findingCauses = map[string]string{
	causeTicketsOff:    CauseTicketsDisabled,
	causeKeysRotated:   CauseTicketKeyMismatch,
	causeCertChanged:   CauseTicketKeyMismatch, // another backend: keys not shared
	causeSessionMiss:   CauseSessionNotCached,
	causeTicketExpired: CauseTicketExpired,
	causeUnknown:       CauseResumptionUnknown,
}

// resumptionCause returns the finding's cause: that of most failures;
// among equals, a refusal of tickets the server did issue comes before
// "no tickets", which some handshakes show only because the client left
// before the server's NewSessionTicket.
func resumptionCause(fn funnel) string {
	counts := map[string]int{}
	for c, n := range fn.causes {
		counts[findingCauses[c]] += n
	}
	best, n := CauseResumptionUnknown, 0
	for _, c := range []string{CauseTicketKeyMismatch, CauseSessionNotCached, CauseTicketsDisabled, CauseTicketExpired, CauseResumptionUnknown} {
		if counts[c] > n {
			best, n = c, counts[c]
		}
	}
	return best
}

// notOffering returns the full handshakes of a group that offered
// nothing to resume although an earlier connection of the same client to
// the same server had visibly been issued a session ticket in time: the
// ClientHello came a round trip after that connection's ServerHello or
// later, when the ticket had arrived (TLS 1.3 sends it after the
// client's Finished). Concurrent connections opened before any ticket
// came are not counted. Only the handshakes kept one by one are read.
func (g *tlsGroup) notOffering() []*tlsHandshake {
	var out []*tlsHandshake
	var ticketAt time.Time // when the first ticket was surely there
	for _, h := range g.hs {
		if h.ch == nil || h.sh == nil {
			continue
		}
		if !ticketAt.IsZero() && h.full() && h.offer == offerNone && h.ch.TS.After(ticketAt) {
			out = append(out, h)
		}
		if h.tickets > 0 && h.ticketsVisible() {
			at := h.sh.TS.Add(h.sh.TS.Sub(h.ch.TS))
			if ticketAt.IsZero() || at.Before(ticketAt) {
				ticketAt = at
			}
		}
	}
	return out
}

// notOfferingFinding reports a client that does not offer the tickets it
// was issued: hs are its full handshakes that could have resumed.
func notOfferingFinding(in *capture, g *tlsGroup, fn funnel, hs []*tlsHandshake) Finding {
	f := Finding{Kind: KindResumptionFailure, Severity: Warning, Cause: CauseClientNotOffering}
	dest := g.server.String()
	if g.sni != "" {
		dest += " (" + g.sni + ")"
	}
	f.Summary = fmt.Sprintf("Client %s made %d full TLS handshakes to %s without offering to resume, though the server had issued it session tickets on an earlier connection: the client keeps no session cache",
		clientString(g.client), len(hs), dest)
	f.Metrics = map[string]any{"handshakes": fn.handshakes, "full_handshakes": fn.full, "not_offering": len(hs), "offered": 0}
	var involved []connReasons
	for i, h := range hs {
		f.Connections = append(f.Connections, h.id)
		involved = append(involved, h.reasons)
		if i < 8 {
			f.Evidence = append(f.Evidence, evidence(h.id, 0, *h.ch, "ClientHello offers no ticket, PSK or known session id"))
		}
	}
	f.Confidence = confidenceOf(in, involved...)
	f.Remedy = "Give the client a session cache: Go tls.Config.ClientSessionCache = tls.NewLRUClientSessionCache(n) (nil, the " +
		"default, disables resumption; share the tls.Config across connections); curl resumes only within one process " +
		"(one run with several URLs or --parallel); OpenSSL clients need SSL_SESS_CACHE_CLIENT or SSL_set_session; " +
		"Python reuses an SSLSession only when passed to wrap_socket(session=...)."
	return f
}
