package analyze

import (
	"cmp"
	"fmt"
	"math"
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/h2scope/h2scope/dissect/event"
)

// Helpers shared by the detectors and the tables.

// Numbers.

// ms converts a duration to float milliseconds, rounded to microseconds.
func ms(d time.Duration) float64 {
	return float64(d.Round(time.Microsecond)) / float64(time.Millisecond)
}

// roundTo rounds x to d decimals, halves away from zero.
func roundTo(x float64, d int) float64 {
	p := 1.0
	for range d {
		p *= 10
	}
	return math.Round(x*p) / p
}

// medianOf returns the median of v, the mean of the middle two for an
// even count (0 for none); v is reordered.
func medianOf(v []float64) float64 {
	if len(v) == 0 {
		return 0
	}
	slices.Sort(v)
	n := len(v)
	if n%2 == 1 {
		return v[n/2]
	}
	return (v[n/2-1] + v[n/2]) / 2
}

// durationStats returns the minimum, median and maximum of ds (sorted in
// place); the median is the upper middle one for an even count, unlike
// medianOf's. Zero when ds is empty.
func durationStats(ds []time.Duration) (lo, mid, hi time.Duration) {
	if len(ds) == 0 {
		return 0, 0, 0
	}
	slices.Sort(ds)
	return ds[0], ds[len(ds)/2], ds[len(ds)-1]
}

// Text.

// fmtDur renders a duration briefly: "1 s", "250 ms", "3.2 ms".
func fmtDur(d time.Duration) string {
	switch {
	case d >= time.Second:
		return strings.TrimSuffix(strings.TrimSuffix(fmt.Sprintf("%.2f", d.Seconds()), "0"), ".0") + " s"
	case d >= 10*time.Millisecond:
		return fmt.Sprintf("%d ms", d.Round(time.Millisecond)/time.Millisecond)
	default:
		return fmt.Sprintf("%.1f ms", ms(d))
	}
}

// fmtMS renders milliseconds briefly, as fmtDur does.
func fmtMS(v float64) string {
	return fmtDur(time.Duration(v * float64(time.Millisecond)))
}

// dirWho names the sender of d: "client" or "server".
func dirWho(d event.Dir) string {
	if d == event.C2S {
		return "client"
	}
	return "server"
}

// capital returns s with its first letter in upper case (ASCII).
func capital(s string) string {
	if s == "" || s[0] < 'a' || s[0] > 'z' {
		return s
	}
	return string(s[0]-'a'+'A') + s[1:]
}

// Maps.

// sortedKeys returns m's keys in increasing order.
func sortedKeys[K cmp.Ordered, V any](m map[K]V) []K {
	keys := make([]K, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// sortedAddrPorts returns m's keys in increasing order.
func sortedAddrPorts[V any](m map[netip.AddrPort]V) []netip.AddrPort {
	keys := make([]netip.AddrPort, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, netip.AddrPort.Compare)
	return keys
}

// Connections.

// requests returns the requests a connection carried (HTTP/1.x requests,
// HTTP/2 client streams) and whether that number is known: it is not for
// undecrypted TLS or unrecognised payload. It counts the exchanges past
// the Collector's bound and the HTTP/2 streams past the dissector's
// (http2.Summary.StreamsDropped, which have no record and so no
// exchange) — those are taken as client streams: a server opens streams
// only by PUSH_PROMISE.
func requests(c *Conn) (int, bool) { return c.sum.requests, c.sum.requestsKnown }

// countRequests is requests from c's records r, for summarize.
func countRequests(c *Conn, r *Records) (int, bool) {
	n := len(r.Exchanges) + r.ExchangesDropped
	if c.App != nil && c.App.HTTP2 != nil {
		n += c.App.HTTP2.StreamsDropped
	}
	if n > 0 {
		return n, true
	}
	if c.App != nil {
		if c.App.HTTP1 != nil && c.App.HTTP1.Requests > 0 {
			return c.App.HTTP1.Requests, true
		}
		if c.App.HTTP1 != nil || c.App.HTTP2 != nil {
			return 0, true
		}
	}
	if c.TCP.StreamBytes.C2S == 0 && c.TCP.StreamBytes.S2C == 0 {
		return 0, true
	}
	return 0, false
}

// peakOpen returns the most of spans (first and last frame times) open
// at once.
func peakOpen(spans [][2]time.Time) int {
	type edge struct {
		t time.Time
		d int
	}
	es := make([]edge, 0, 2*len(spans))
	for _, s := range spans {
		es = append(es, edge{s[0], 1}, edge{s[1], -1})
	}
	slices.SortFunc(es, func(a, b edge) int { return cmp.Or(a.t.Compare(b.t), cmp.Compare(a.d, b.d)) })
	n, peak := 0, 0
	for _, e := range es {
		n += e.d
		peak = max(peak, n)
	}
	return peak
}
