package slice

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/h2scope/h2scope/analyze"
	"github.com/h2scope/h2scope/dissect"
	"github.com/h2scope/h2scope/dissect/capture"
	"github.com/h2scope/h2scope/dissect/event"
	"github.com/h2scope/h2scope/dissect/layer"
	"github.com/h2scope/h2scope/dissect/tcp"
	"github.com/h2scope/h2scope/dissect/tls"
)

// Options say what to slice. The zero value selects nothing: at least
// one of Finding, Conns or a time bound must be set.
type Options struct {
	// Dissect configures the reading and dissection of the captures; its
	// Keys hold the --keylog secrets (the captures' own Decryption
	// Secrets Blocks are added as they are read). Its hooks are replaced.
	Dissect dissect.Options
	// Config configures the analysis that finds Finding.
	Config analyze.Config
	// Finding, if set, selects a finding's connections and HTTP/2
	// streams, and comments its evidence frames; Write analyses the
	// captures to find it.
	Finding string
	// Found, if set, is the finding to slice, as an analysis of the same
	// captures made it: Finding is then ignored, and no analysis is run.
	Found *analyze.Finding
	// Conns selects whole connections (Wireshark's tcp.stream numbers).
	Conns []event.ConnID
	// Stream, when above 0, narrows Conns to that HTTP/2 stream and what
	// decoding it needs.
	Stream uint32
	// From and To, when not zero, keep only packets captured in [From, To].
	From, To time.Time
	// NoSecrets leaves the Decryption Secrets Block out.
	NoSecrets bool
	// Redact, if set, rewrites the finding's summary and evidence lines
	// before they go into comments (the CLI passes report.Redaction's
	// Text, hiding URL tokens unless --no-redact). The packets always
	// hold the bytes as captured.
	Redact func(string) string
	// Names are the captures as the user named them, for the section
	// comment; Version is the h2scope version written beside them.
	Names   []string
	Version string
}

// Result says what a slice holds.
type Result struct {
	// Packets were written, of Total read.
	Packets, Total int
	// Conns counts the connections with packets in the slice.
	Conns int
	// Sessions counts the TLS sessions of the slice whose secrets were
	// written, Missing those of its TLS connections with no secrets.
	Sessions, Missing int
	// Finding is the finding sliced, when Options.Finding was set.
	Finding *analyze.Finding
	// Selection describes what was selected, as the section comment says.
	Selection string
}

// ErrNoSelection is returned when Options select nothing.
var ErrNoSelection = errors.New("slice: nothing selected: give a finding, connections or a time range")

// streamPkt is what the selection pass keeps of a packet of a
// connection sliced by stream, until the streams' last frame is known.
type streamPkt struct {
	frame uint64
	conn  event.ConnID
	bits  uint8
}

// streamPkt bits.
const (
	pktControl   = 1 << iota // SYN, FIN or RST
	pktPayload               // carries payload
	pktEarly                 // no payload, before the connection's first (the handshake)
	pktDroppable             // a stream slice may leave it out (see framer)
)

// connSel is how one connection is selected.
type connSel struct {
	streams map[uint32]bool // nil: the whole connection
	last    uint64          // frame of the selected streams' last unit
	found   map[uint32]bool // selected streams seen
	payload bool            // a payload segment was seen
	fr      [2]framer
}

// Write writes to w a pcapng of the packets of files that opts select,
// in capture order with their original bytes, timestamps and interfaces.
func Write(ctx context.Context, files []string, w io.Writer, opts Options) (Result, error) {
	var res Result
	if opts.Dissect.Keys == nil {
		opts.Dissect.Keys = tls.NewKeyLog()
	}
	sel := map[event.ConnID]*connSel{}
	notes := map[uint64][]string{} // evidence comments by frame
	var desc []string
	if opts.Finding != "" || opts.Found != nil {
		f := opts.Found
		if f == nil {
			var err error
			if f, err = findFinding(ctx, files, opts); err != nil {
				return res, err
			}
		}
		res.Finding = f
		desc = append(desc, "finding "+f.ID)
		for _, c := range f.Connections {
			sel[c] = &connSel{}
		}
		for _, s := range f.Streams {
			cs := sel[s.Conn]
			if cs == nil {
				cs = &connSel{}
				sel[s.Conn] = cs
			}
			if cs.streams == nil {
				cs.streams = map[uint32]bool{}
			}
			cs.streams[s.Stream] = true
		}
		for _, e := range f.Evidence {
			if sel[e.Conn] == nil {
				sel[e.Conn] = &connSel{}
			}
			notes[e.Frame] = append(notes[e.Frame], findingComment(f, e, opts.Redact))
		}
	}
	for _, c := range opts.Conns {
		cs := &connSel{}
		if opts.Stream > 0 {
			cs.streams = map[uint32]bool{opts.Stream: true}
		}
		sel[c] = cs
	}
	if len(opts.Conns) > 0 {
		ids := make([]string, len(opts.Conns))
		for i, c := range opts.Conns {
			ids[i] = fmt.Sprint(c)
		}
		d := "connection " + strings.Join(ids, ",")
		if opts.Stream > 0 {
			d += fmt.Sprintf(" stream %d", opts.Stream)
		}
		desc = append(desc, d)
	}
	if !opts.From.IsZero() || !opts.To.IsZero() {
		desc = append(desc, "time "+timeRange(opts.From, opts.To))
	}
	if len(desc) == 0 {
		return res, ErrNoSelection
	}
	res.Selection = strings.Join(desc, "; ")
	byConn := len(sel) > 0

	// The selection pass: the frames of the selected connections a
	// slice keeps, and each TLS connection's client random. Memory: 8
	// bytes a packet kept, 16 a packet of a connection sliced by stream.
	inWindow := func(ts time.Time) bool {
		return (opts.From.IsZero() || !ts.Before(opts.From)) && (opts.To.IsZero() || !ts.After(opts.To))
	}
	var kept []uint64                    // frames kept, when selecting by connection
	var pending []streamPkt              // packets of connections sliced by stream
	conns := map[event.ConnID]bool{}     // connections with packets in the slice
	randoms := map[event.ConnID][]byte{} // their ClientHello randoms
	nconns := 0                          // connections seen: ids count from 0 in order of first frame
	dopts := opts.Dissect
	dopts.Dissect = true
	dopts.Shards = 0
	dopts.OnApp, dopts.OnConn = nil, nil
	resumed := newResumptions() // every connection's: a sliced one may resume an unsliced one's session
	dopts.OnSegment = func(c *tcp.Conn, dir event.Dir, s *layer.Segment, _ tcp.Analysis) {
		nconns = max(nconns, int(c.ID)+1)
		if !opts.NoSecrets {
			resumed.segment(c.ID, dir, s.Seq, s.Payload, s.PayloadLen)
		}
		cs := sel[c.ID]
		if byConn && cs == nil {
			return
		}
		if dir == event.C2S && randoms[c.ID] == nil && s.PayloadLen > 0 {
			randoms[c.ID] = clientRandom(s.Payload)
		}
		in := inWindow(s.Ref.TS)
		switch {
		case !byConn:
			if in {
				conns[c.ID] = true
			}
		case cs.streams == nil:
			if in {
				kept = append(kept, s.Ref.Frame)
				conns[c.ID] = true
			}
		default:
			p := streamPkt{frame: s.Ref.Frame, conn: c.ID}
			if s.Flags&(layer.SYN|layer.FIN|layer.RST) != 0 {
				p.bits |= pktControl
			}
			if s.PayloadLen > 0 {
				p.bits |= pktPayload
			} else if !cs.payload {
				p.bits |= pktEarly
			}
			if cs.fr[dir].segment(s.Seq, s.Payload, s.PayloadLen, dir == event.C2S, func(id uint32) bool { return cs.streams[id] }) {
				p.bits |= pktDroppable
			}
			cs.payload = cs.payload || s.PayloadLen > 0
			if in {
				pending = append(pending, p)
			}
		}
	}
	dopts.Sink = event.SinkFunc(func(e *event.Event) {
		cs := sel[e.Conn]
		if cs == nil || cs.streams == nil || (e.Proto != event.ProtoHTTP2 && e.Proto != event.ProtoGRPC) || !cs.streams[e.Stream] {
			return
		}
		cs.last = max(cs.last, e.Ref.Frame)
		if cs.found == nil {
			cs.found = map[uint32]bool{}
		}
		cs.found[e.Stream] = true
	})
	st, err := dissect.Run(ctx, files, dopts)
	if err != nil {
		return res, err
	}
	if len(st.Faults) > 0 {
		return res, st.Faults[0]
	}
	for _, c := range opts.Conns {
		if int(c) >= nconns {
			return res, fmt.Errorf("slice: no connection %d: %s", c, connRange(nconns))
		}
	}
	if opts.Stream > 0 {
		for _, c := range opts.Conns {
			if !sel[c].found[opts.Stream] {
				return res, fmt.Errorf("slice: connection %d has no HTTP/2 stream %d", c, opts.Stream)
			}
		}
	}
	// A stream's packets: the handshake, control segments, evidence, and
	// payload up to the streams' last frame that cannot be left out.
	for _, p := range pending {
		cs := sel[p.conn]
		if p.bits&(pktControl|pktEarly) != 0 || notes[p.frame] != nil ||
			p.bits&pktPayload != 0 && p.frame <= cs.last && p.bits&pktDroppable == 0 {
			kept = append(kept, p.frame)
			conns[p.conn] = true
		}
	}
	pending = nil
	slices.Sort(kept)
	kept = slices.Compact(kept)
	keep := func(frame uint64, ts time.Time) bool {
		if !byConn {
			return inWindow(ts)
		}
		i, ok := slices.BinarySearch(kept, frame)
		kept = kept[i:] // frames are asked in increasing order
		return ok
	}
	res.Conns = len(conns)
	var keylog []byte
	if !opts.NoSecrets {
		keylog, res.Sessions, res.Missing = secretsOf(opts.Dissect.Keys, conns, randoms, resumed)
	}

	// The writing pass.
	r, err := capture.Open(files, opts.Dissect.Capture)
	if err != nil {
		return res, err
	}
	defer r.Close()
	srcs := make([]*source, len(files))
	defer func() {
		for _, s := range srcs {
			if s != nil {
				s.close()
			}
		}
	}()
	out := newWriter(w)
	out.shb(sectionComments(opts, res.Selection), "h2scope "+opts.Version)
	if len(keylog) > 0 {
		out.dsb(keylog)
	}
	for {
		p, err := r.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return res, err
		}
		res.Total++
		if !keep(p.Frame, p.TS) {
			continue
		}
		if srcs[p.File] == nil {
			if srcs[p.File], err = openSource(files[p.File], p.File); err != nil {
				return res, err
			}
		}
		src := srcs[p.File]
		raw, err := src.packet(p.Offset)
		if err != nil {
			return res, err
		}
		ts := raw.ts
		if !src.pcapng {
			ts = pcapUnits(p.TS, src.pcapNanos)
		}
		ifc := out.iface(raw.key, src.iface(raw.key))
		comments := append([]string{fmt.Sprintf("h2scope: frame %d of the full capture", p.Frame)}, notes[p.Frame]...)
		out.packet(ifc, ts, p.Data, p.OrigLen, commentOptions(raw.options, comments))
		res.Packets++
	}
	if err := out.flush(); err != nil {
		return res, err
	}
	return res, nil
}

// WriteFindings writes one slice per finding of fs, as an analysis of
// files made them, to DIR/ID.pcapng (each written under a temporary name
// and renamed), and returns the paths written. opts select no finding,
// connection or time of their own; NoSecrets, Dissect, Names and Version
// apply to every slice. It stops at the first error.
func WriteFindings(ctx context.Context, files []string, dir string, opts Options, fs []analyze.Finding) ([]string, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	var paths []string
	for i := range fs {
		o := opts
		o.Found, o.Finding, o.Conns, o.Stream = &fs[i], "", nil, 0
		path := filepath.Join(dir, fs[i].ID+".pcapng")
		if err := writeFile(path, func(w io.Writer) error {
			_, err := Write(ctx, files, w, o)
			return err
		}); err != nil {
			return paths, fmt.Errorf("slice %s: %w", fs[i].ID, err)
		}
		paths = append(paths, path)
	}
	return paths, nil
}

// writeFile writes path under a temporary name in its directory, then
// renames it.
func writeFile(path string, write func(io.Writer) error) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if err := write(tmp); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Chmod(0o644); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}

// connRange says which connections a capture of n has.
func connRange(n int) string {
	switch n {
	case 0:
		return "the capture has no TCP connections"
	case 1:
		return "the capture has connection 0"
	}
	return fmt.Sprintf("the capture has connections 0–%d", n-1)
}

// findFinding analyses files and returns the finding opts name.
func findFinding(ctx context.Context, files []string, opts Options) (*analyze.Finding, error) {
	do := opts.Dissect
	do.Keys = do.Keys.Clone()
	do.OnSegment = nil
	r, _, err := analyze.Stream(ctx, files, do, opts.Config, nil)
	if err != nil {
		return nil, err
	}
	var ids []string
	for i := range r.Findings {
		if r.Findings[i].ID == opts.Finding {
			return &r.Findings[i], nil
		}
		ids = append(ids, r.Findings[i].ID)
	}
	if len(ids) == 0 {
		return nil, fmt.Errorf("slice: no finding %s: the capture has no findings", opts.Finding)
	}
	return nil, fmt.Errorf("slice: no finding %s: the capture has %s", opts.Finding, strings.Join(ids, ", "))
}

// findingComment is the comment of one evidence frame: the finding's
// id, severity and cause, its summary and the evidence line, the text
// passed through redact when set.
func findingComment(f *analyze.Finding, e analyze.Evidence, redact func(string) string) string {
	summary, what := f.Summary, e.What
	if redact != nil {
		summary, what = redact(summary), redact(what)
	}
	sev := f.Severity.String()
	if f.Cause != "" {
		sev += ", cause " + f.Cause
	}
	return fmt.Sprintf("h2scope finding %s (%s): %s | evidence: %s", f.ID, sev, summary, what)
}

// sectionComments are the section header's comments: the sources, the
// selection and the version.
func sectionComments(opts Options, selection string) []string {
	names := opts.Names
	if len(names) == 0 {
		names = []string{"(unnamed)"}
	}
	return []string{
		"h2scope slice of " + strings.Join(names, ", "),
		"selection: " + selection,
		"h2scope version: " + opts.Version,
	}
}

// timeRange says a --from/--to window.
func timeRange(from, to time.Time) string {
	f, t := "start", "end"
	if !from.IsZero() {
		f = from.UTC().Format(time.RFC3339Nano)
	}
	if !to.IsZero() {
		t = to.UTC().Format(time.RFC3339Nano)
	}
	return f + " to " + t
}

// pcapUnits is a pcap record's timestamp in its file's units
// (microseconds, or nanoseconds for a nanosecond pcap).
func pcapUnits(ts time.Time, nanos bool) uint64 {
	if nanos {
		return uint64(ts.UnixNano())
	}
	return uint64(ts.UnixMicro())
}

// clientRandom returns the random of a ClientHello that starts payload
// (a TLS handshake record holding a ClientHello), or nil.
func clientRandom(b []byte) []byte {
	// record header (5), handshake type and length (4), version (2), random (32)
	if len(b) < 43 || b[0] != 0x16 || b[1] != 3 || b[5] != 1 {
		return []byte{} // looked at: not TLS
	}
	return b[11:43:43]
}

// secretsOf returns the NSS key log lines of the sessions of conns, in
// client random order, with the number of sessions that had secrets and
// of those that had none. A resumed TLS 1.2 session without secrets of
// its own gets a CLIENT_RANDOM line with the master secret of the
// session it resumed (see resumptions).
func secretsOf(keys *tls.KeyLog, conns map[event.ConnID]bool, randoms map[event.ConnID][]byte, resumed *resumptions) (keylog []byte, found, missing int) {
	seen := map[string]bool{}
	var crs []string
	for c := range conns {
		if cr := randoms[c]; len(cr) == 32 && !seen[string(cr)] {
			seen[string(cr)] = true
			crs = append(crs, string(cr))
		}
	}
	slices.Sort(crs)
	master := func(cr [32]byte) []byte {
		if s := keys.Lookup(cr[:]); s != nil {
			return s.Master
		}
		return nil
	}
	var b strings.Builder
	for _, cr := range crs {
		h := hex.EncodeToString([]byte(cr))
		s := keys.Lookup([]byte(cr))
		if s == nil {
			from, ok := resumed.origin([32]byte([]byte(cr)), func(f [32]byte) bool { return master(f) != nil })
			if m := master(from); ok && m != nil {
				found++
				fmt.Fprintf(&b, "CLIENT_RANDOM %s %x\n", h, m)
				continue
			}
			missing++
			continue
		}
		found++
		for _, l := range []struct {
			label  string
			secret []byte
		}{
			{"CLIENT_RANDOM", s.Master},
			{"CLIENT_EARLY_TRAFFIC_SECRET", s.ClientEarly},
			{"CLIENT_HANDSHAKE_TRAFFIC_SECRET", s.ClientHandshake},
			{"SERVER_HANDSHAKE_TRAFFIC_SECRET", s.ServerHandshake},
			{"CLIENT_TRAFFIC_SECRET_0", s.ClientTraffic},
			{"SERVER_TRAFFIC_SECRET_0", s.ServerTraffic},
		} {
			if l.secret != nil {
				fmt.Fprintf(&b, "%s %s %x\n", l.label, h, l.secret)
			}
		}
	}
	return []byte(b.String()), found, missing
}
