package report

import (
	"github.com/h2scope/h2scope/dissect/event"
	"github.com/h2scope/h2scope/internal/pack"
)

// timelineStore keeps the timelines a Builder made encoded until Report
// needs them: a busy connection's timeline holds thousands of events and
// spans, a few hundred bytes each in Go form and a few dozen encoded.
type timelineStore struct {
	store pack.Store
	enc   pack.Encoder
}

// put stores tl; ok is false when it cannot be stored exactly (the
// caller keeps it as it is).
func (s *timelineStore) put(tl *Timeline) (pack.Loc, bool) {
	e := &s.enc
	e.Reset(&s.store)
	e.Uint(uint64(tl.Conn))
	e.Int(int64(tl.EventsOmitted))
	e.Int(int64(tl.SpansOmitted))
	e.Uint(uint64(len(tl.Events)))
	for i := range tl.Events {
		x := &tl.Events[i]
		e.Uint(x.Frame)
		e.Time(x.TS)
		e.String(x.Lane)
		e.Uint(uint64(x.Dir))
		e.Uint(uint64(x.Stream))
		e.String(x.What)
		e.Uint(x.EndFrame)
		e.Time(x.EndTS)
	}
	e.Uint(uint64(len(tl.Spans)))
	for i := range tl.Spans {
		x := &tl.Spans[i]
		e.Uint(uint64(x.Stream))
		e.Int(int64(x.Seq))
		e.Uint(x.StartFrame)
		e.Time(x.StartTS)
		e.Uint(x.EndFrame)
		e.Time(x.EndTS)
		for _, v := range [...]string{x.Method, x.Path, x.GRPC, x.Reset, x.Outcome} {
			e.String(v)
		}
		e.Int(int64(x.Status))
	}
	return s.store.Put(e)
}

// get returns the timeline stored at loc.
func (s *timelineStore) get(loc pack.Loc) Timeline {
	d := s.store.Get(loc)
	tl := Timeline{Conn: event.ConnID(d.Uint()), EventsOmitted: int(d.Int()), SpansOmitted: int(d.Int())}
	tl.Events = make([]TimelineEvent, d.Uint())
	for i := range tl.Events {
		x := &tl.Events[i]
		x.Frame = d.Uint()
		x.TS = d.Time()
		x.Lane = d.String()
		x.Dir = event.Dir(d.Uint())
		x.Stream = uint32(d.Uint())
		x.What = d.String()
		x.EndFrame = d.Uint()
		x.EndTS = d.Time()
	}
	tl.Spans = make([]Span, d.Uint())
	for i := range tl.Spans {
		x := &tl.Spans[i]
		x.Stream = uint32(d.Uint())
		x.Seq = int(d.Int())
		x.StartFrame = d.Uint()
		x.StartTS = d.Time()
		x.EndFrame = d.Uint()
		x.EndTS = d.Time()
		for _, p := range [...]*string{&x.Method, &x.Path, &x.GRPC, &x.Reset, &x.Outcome} {
			*p = d.String()
		}
		x.Status = int(d.Int())
	}
	return tl
}
