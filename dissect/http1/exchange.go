package http1

import "github.com/h2scope/h2scope/dissect/event"

// MaxExchanges bounds the exchanges a Conn keeps (Options.Exchanges);
// past it, requests are counted, not kept.
const MaxExchanges = 4096

// Exchange is one request a Conn read and the final response that
// answered it: the record of an HTTP/1.x exchange that the analysis
// reads once the connection is over, as it reads an HTTP/2 stream's.
// It holds what the request and response events carried of it.
type Exchange struct {
	// Seq is the request's 1-based number on its connection.
	Seq int
	// Method, Target and Host describe the request: Host is its first
	// Host field's value, "" when none.
	Method, Target, Host string
	// Request is the frame that completed the request's head, with the
	// time of RequestEnd, the frame that completed the request (the
	// request event's Ref and HTTP1.HeadFrame).
	Request, RequestEnd event.Ref
	// Answered is set once a final (or 101) response with the request's
	// number was read: Status, KeepAlive and Response (the frame that
	// completed it) describe it, and Complete says whether it ended
	// rather than being cut short (HTTP1.Incomplete).
	Answered  bool
	Status    int
	KeepAlive bool
	Response  event.Ref
	Complete  bool
}

// record adds to c's exchanges the message m that direction dir just
// finished at at, incomplete when cut short: a request as a new
// exchange, a final response to the exchange of the request it answers
// (in FIFO order: HTTP1.Request). An interim response answers nothing.
func (c *Conn) record(dir event.Dir, m *message, at event.Ref, incomplete bool) {
	if dir == event.C2S {
		if len(c.exch) >= MaxExchanges {
			c.exchDropped++
			return
		}
		x := Exchange{Seq: m.seq, Method: m.method, Target: m.target,
			Request: event.Ref{File: at.File, Frame: m.head.Frame, TS: at.TS}, RequestEnd: at}
		for _, f := range m.headers {
			if isHost(f.Name) {
				x.Host = f.Value
				break
			}
		}
		c.exch = append(c.exch, x)
		return
	}
	if m.req == 0 || m.status < 200 && m.status != 101 {
		return // unmatched, or interim: the exchange goes on
	}
	for i := len(c.exch) - 1; i >= 0; i-- {
		if x := &c.exch[i]; x.Seq == m.req {
			x.Answered, x.Status, x.KeepAlive = true, m.status, m.keepAlive
			x.Response, x.Complete = at, !incomplete
			return
		}
	}
}

// isHost reports whether name is "Host" in any case, without the
// Unicode folding strings.EqualFold does.
func isHost(name string) bool {
	const host = "host"
	if len(name) != len(host) {
		return false
	}
	for i := range len(host) {
		if name[i]|0x20 != host[i] {
			return false
		}
	}
	return true
}

// Exchanges returns the exchanges c kept (with Options.Exchanges), in
// request order, and how many requests it read past MaxExchanges. The
// slice is the caller's: c keeps none of it.
func (c *Conn) Exchanges() (xs []Exchange, dropped int) {
	xs, dropped = c.exch, c.exchDropped
	c.exch, c.exchDropped = nil, 0
	return xs, dropped
}
