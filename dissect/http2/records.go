package http2

import (
	"github.com/h2scope/h2scope/dissect/event"
	"github.com/h2scope/h2scope/internal/pack"
)

// recList holds a connection's stream records: in Go form while their
// stream is open, encoded once it closed (see pack.List).
type recList = pack.List[srec, *srec]

// Encode writes r into e (for pack.List); Decode reads it back exactly.
func (r *srec) Encode(e *pack.Encoder) {
	hasFirst, hasPromise, hasReply := r.first != event.Ref{}, r.promise != event.Ref{}, r.reply != event.Ref{}
	hasEnd := [2]bool{r.end[0] != event.Ref{}, r.end[1] != event.Ref{}}
	e.Bools(r.midstream, r.upgrade, r.closed, r.hasFirst, r.ended[0], r.ended[1], r.trailers[0], r.trailers[1],
		r.finalResp, r.pushed, r.reset != nil, len(r.stalls) > 0, hasFirst, hasPromise, hasEnd[0], hasEnd[1], hasReply)
	e.Uint(uint64(r.id))
	e.String(r.method)
	e.String(r.scheme)
	e.String(r.authority)
	e.String(r.path)
	e.String(r.contentType)
	e.String(r.grpcMessage)
	for _, v := range [...]int{r.status, r.grpcStatus, r.blocks[0], r.blocks[1], r.informational, r.undecodable, r.pushes, r.stallsDropped} {
		e.Int(int64(v))
	}
	e.Uint(r.dataBytes.C2S)
	e.Uint(r.dataBytes.S2C)
	e.Uint(r.dataFrames.C2S)
	e.Uint(r.dataFrames.S2C)
	e.Uint(uint64(r.pushedBy))
	if hasFirst {
		e.Ref(r.first)
	}
	if hasPromise {
		e.Ref(r.promise)
	}
	if hasReply {
		e.Ref(r.reply)
	}
	for d := range hasEnd {
		if hasEnd[d] {
			e.Ref(r.end[d])
		}
	}
	if r.reset != nil {
		e.Uint(uint64(r.reset.Dir))
		e.Uint(uint64(r.reset.Code))
		e.Ref(r.reset.Ref)
	}
	if len(r.stalls) > 0 {
		e.Uint(uint64(len(r.stalls)))
		for _, s := range r.stalls {
			e.Bools(s.open, s.inferred)
			e.Uint(uint64(s.dir))
			e.Uint(uint64(s.stream))
			e.Ref(s.start)
			e.Ref(s.end)
			e.Int(s.min)
			e.String(s.by)
		}
	}
}

// Decode reads what Encode wrote.
func (r *srec) Decode(d *pack.Decoder) {
	var hasReset, hasStalls, hasFirst, hasPromise, hasReply bool
	var hasEnd [2]bool
	d.Bools(&r.midstream, &r.upgrade, &r.closed, &r.hasFirst, &r.ended[0], &r.ended[1], &r.trailers[0], &r.trailers[1],
		&r.finalResp, &r.pushed, &hasReset, &hasStalls, &hasFirst, &hasPromise, &hasEnd[0], &hasEnd[1], &hasReply)
	r.id = uint32(d.Uint())
	r.method = d.String()
	r.scheme = d.String()
	r.authority = d.String()
	r.path = d.String()
	r.contentType = d.String()
	r.grpcMessage = d.String()
	for _, p := range [...]*int{&r.status, &r.grpcStatus, &r.blocks[0], &r.blocks[1], &r.informational, &r.undecodable, &r.pushes, &r.stallsDropped} {
		*p = int(d.Int())
	}
	r.dataBytes.C2S = d.Uint()
	r.dataBytes.S2C = d.Uint()
	r.dataFrames.C2S = d.Uint()
	r.dataFrames.S2C = d.Uint()
	r.pushedBy = uint32(d.Uint())
	if hasFirst {
		r.first = d.Ref()
	}
	if hasPromise {
		r.promise = d.Ref()
	}
	if hasReply {
		r.reply = d.Ref()
	}
	for i := range hasEnd {
		if hasEnd[i] {
			r.end[i] = d.Ref()
		}
	}
	if hasReset {
		r.reset = &Reset{Dir: event.Dir(d.Uint()), Code: ErrCode(d.Uint()), Ref: d.Ref()}
	}
	if hasStalls {
		r.stalls = make([]stallRec, d.Uint())
		for i := range r.stalls {
			s := &r.stalls[i]
			d.Bools(&s.open, &s.inferred)
			s.dir = event.Dir(d.Uint())
			s.stream = uint32(d.Uint())
			s.start = d.Ref()
			s.end = d.Ref()
			s.min = d.Int()
			s.by = d.String()
		}
	}
}
