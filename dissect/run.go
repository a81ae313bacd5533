package dissect

import (
	"context"
	"errors"
	"io"

	"github.com/h2scope/h2scope/dissect/capture"
	"github.com/h2scope/h2scope/dissect/event"
	"github.com/h2scope/h2scope/dissect/layer"
	"github.com/h2scope/h2scope/dissect/tcp"
)

// Options configure Run. The zero value reads the captures and tracks TCP
// connections with default limits.
type Options struct {
	// Capture configures capture reading.
	Capture capture.Options
	// TCP configures connection tracking: its NewHandler receives each
	// connection's bytes and its OnFinish each finished connection.
	TCP tcp.Options
	// OnSegment, if set, is called for every TCP segment once the tracker
	// has classified it. s and its payload are valid only during the call.
	OnSegment func(c *tcp.Conn, dir event.Dir, s *layer.Segment, a tcp.Analysis)
}

// Stats summarises a run.
type Stats struct {
	// Packets counts frames read from all captures.
	Packets uint64
	// Bytes counts captured bytes of those frames.
	Bytes uint64
	// Layer holds the link-layer decoder's counters.
	Layer layer.Stats
	// TCP holds the connection tracker's counters.
	TCP tcp.Stats
	// Faults lists the located faults that ended a file early; the packets
	// before each fault were analysed.
	Faults []*Error
}

// Run reads files as one capture merged by time and feeds every TCP segment
// to a connection tracker configured by opts. It returns once all input is
// read (every connection has then been finished), ctx is done, or the
// captures cannot be opened. Faults inside files do not stop it: they are
// listed in Stats.Faults.
func Run(ctx context.Context, files []string, opts Options) (Stats, error) {
	var st Stats
	r, err := capture.Open(files, opts.Capture)
	if err != nil {
		return st, err
	}
	defer r.Close()
	dec := layer.NewDecoder()
	tr := tcp.NewTracker(opts.TCP)
	var seg layer.Segment
	for {
		if st.Packets&1023 == 0 && ctx.Err() != nil {
			return st, ctx.Err()
		}
		p, err := r.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			var e *Error
			if errors.As(err, &e) {
				st.Faults = append(st.Faults, e)
				continue
			}
			return st, err
		}
		st.Packets++
		st.Bytes += uint64(len(p.Data))
		res, _ := dec.Decode(p.LinkType, p.Data, p.OrigLen, &seg)
		if res.Kind != layer.KindTCP {
			continue
		}
		seg.Ref = p.Ref
		c, dir, a := tr.Add(&seg)
		if opts.OnSegment != nil {
			opts.OnSegment(c, dir, &seg, a)
		}
	}
	tr.Flush()
	st.Layer = dec.Stats
	st.TCP = tr.Stats()
	return st, nil
}
