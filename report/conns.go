package report

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strconv"

	"github.com/h2scope/h2scope/dissect"
	"github.com/h2scope/h2scope/dissect/event"
	"github.com/h2scope/h2scope/dissect/grpc"
	"github.com/h2scope/h2scope/dissect/http1"
	"github.com/h2scope/h2scope/dissect/http2"
	"github.com/h2scope/h2scope/dissect/tcp"
	"github.com/h2scope/h2scope/dissect/tls"
	"github.com/olekukonko/tablewriter"
	"github.com/olekukonko/tablewriter/tw"
)

// ConnRecord is one line of `h2scope conns --json`: the TCP summary and,
// when the connection's protocol was recognised, what its dissectors found.
type ConnRecord struct {
	*tcp.Summary
	// HTTP1 summarises the HTTP/1.x exchanges.
	HTTP1 *http1.Summary `json:"http1,omitempty"`
	// HTTP2 summarises the HTTP/2 frames, streams, settings and windows.
	HTTP2 *http2.Summary `json:"http2,omitempty"`
	// GRPC counts the gRPC calls and the statuses their clients saw.
	GRPC *GRPCSummary `json:"grpc,omitempty"`
	// TLS summarises the handshake: version, SNI, ALPN, cipher suite,
	// resumption offered and accepted, alerts.
	TLS *tls.Summary `json:"tls,omitempty"`
	// Tunnel names the protocol an HTTP CONNECT tunnel carried;
	// TunnelHTTP1 summarises it when it was HTTP/1.x.
	Tunnel      string         `json:"tunnel,omitempty"`
	TunnelHTTP1 *http1.Summary `json:"tunnel_http1,omitempty"`
	// Decrypted names the protocol found inside TLS when it was
	// decrypted ("http2", "http1"); HTTP1, HTTP2 and GRPC then describe it.
	Decrypted string `json:"decrypted_proto,omitempty"`
}

// GRPCSummary counts a connection's gRPC calls.
type GRPCSummary struct {
	// Calls counts the calls (streams recognised as gRPC).
	Calls int `json:"calls"`
	// Status counts the calls by the status their client ended with
	// ("OK", "CANCELLED", ...; "" when it is unknown).
	Status map[string]int `json:"status"`
	// Anomalies counts what the gRPC framing got wrong, by name
	// (message_too_large, calls_not_recorded, ...).
	Anomalies map[string]int `json:"anomalies,omitempty"`
}

// NewConnRecord combines a finished connection's summary with its
// dissectors' findings (app may be nil). The record shares c unless its
// timestamps need converting to UTC (a copy then has them converted).
func NewConnRecord(c *tcp.Summary, app *dissect.App) ConnRecord {
	if app == nil {
		return connRecord(c, nil, nil, nil)
	}
	var stalls []http2.Stall
	if app.HTTP2 != nil {
		stalls = app.HTTP2.Stalls
	}
	return connRecord(c, app, app.Calls, stalls)
}

// connRecord is NewConnRecord of an App whose gRPC calls and HTTP/2
// connection-window stalls are calls and stalls (an analyze.Conn's
// are in its Records).
func connRecord(c *tcp.Summary, app *dissect.App, calls []grpc.Call, stalls []http2.Stall) ConnRecord {
	r := ConnRecord{Summary: c}
	if c.FirstTS != c.FirstTS.UTC() || c.LastTS != c.LastTS.UTC() {
		cp := *c
		cp.FirstTS, cp.LastTS = c.FirstTS.UTC(), c.LastTS.UTC()
		r.Summary = &cp
	}
	if app == nil {
		return r
	}
	r.HTTP1, r.HTTP2, r.TLS, r.TunnelHTTP1 = app.HTTP1, app.HTTP2, app.TLS, app.TunnelHTTP1
	if h := app.HTTP2; h != nil && len(h.Stalls) == 0 && len(stalls) > 0 {
		cp := *h
		cp.Stalls = stalls
		r.HTTP2 = &cp
	}
	if len(calls) > 0 || len(app.GRPCAnomalies) > 0 {
		g := &GRPCSummary{Calls: len(calls), Status: map[string]int{}, Anomalies: app.GRPCAnomalies}
		for _, call := range calls {
			g.Status[call.ClientStatus]++
		}
		r.GRPC = g
	}
	if app.Tunnel != 0 {
		r.Tunnel = app.Tunnel.String()
	}
	if app.Decrypted != 0 {
		r.Decrypted = app.Decrypted.String()
	}
	return r
}

// WriteConnsJSON writes one JSON object per connection, one per line
// (NDJSON), in the order given, with controls escaped (newJSONEncoder).
func WriteConnsJSON(w io.Writer, conns []ConnRecord) error {
	enc := newJSONEncoder(w)
	for i := range conns {
		if err := enc.Encode(&conns[i]); err != nil {
			return err
		}
	}
	return nil
}

// A ConnsWriter writes `conns --json` records in connection id order as
// the connections finish, which is not id order: each record is written
// as soon as every record of a lower id has been. A record that finishes
// before a lower id is kept, encoded, until that id comes (a reorder
// buffer holding only finished connections that wait for earlier ones
// still open). Past MaxWaiting records or MaxWaitingBytes bytes, the
// waiting records are spilled to a temporary file as a run sorted by id
// and merged back from there in id order, so memory stays bounded
// however long one early connection stays open. The output is byte for
// byte what WriteConnsJSON writes for all the records sorted by id.
//
// Records may come with ids in any order, with gaps (an id never added
// is skipped at Close), but each id once. The output is buffered: Close
// writes what is left and flushes it.
type ConnsWriter struct {
	// MaxWaiting and MaxWaitingBytes cap the records kept in memory
	// waiting for a lower id; 0 means DefaultMaxWaiting and
	// DefaultMaxWaitingBytes.
	MaxWaiting      int
	MaxWaitingBytes int
	// TempDir holds the spill file ("" means os.TempDir).
	TempDir string

	out       *bufio.Writer
	cur       bytes.Buffer  // the record being encoded
	enc       *json.Encoder // to cur
	next      event.ConnID  // the id to write next
	wait      map[event.ConnID][]byte
	waitBytes int
	file      *os.File    // spill file, nil until the first spill
	fileEnd   int64       // its size
	runs      []*connsRun // spilled runs not yet written out
	err       error       // the first error, sticky
	// encode, if set, encodes a record in place of JSON (one line,
	// ending in a newline), and closeOut ends the output after the last
	// record (NewConnsTableWriter).
	encode   func(*bytes.Buffer, *ConnRecord)
	closeOut func() error
}

// DefaultMaxWaiting and DefaultMaxWaitingBytes are ConnsWriter's caps on
// the records waiting in memory.
const (
	DefaultMaxWaiting      = 65536
	DefaultMaxWaitingBytes = 8 << 20
)

// NewConnsWriter returns a ConnsWriter writing to w from id 0.
func NewConnsWriter(w io.Writer) *ConnsWriter {
	s := &ConnsWriter{out: bufio.NewWriterSize(w, 64<<10), wait: map[event.ConnID][]byte{}}
	s.enc = newJSONEncoder(&s.cur)
	return s
}

// Add writes r, or keeps it until the records of lower ids are written.
// It returns the first error met writing or spilling; after one, Add and
// Close write nothing more.
func (s *ConnsWriter) Add(r *ConnRecord) error {
	if s.err != nil {
		return s.err
	}
	s.cur.Reset()
	if s.encode != nil {
		s.encode(&s.cur, r)
	} else if b, ok := appendRecordJSON(s.cur.AvailableBuffer(), r); ok {
		// What the encoder writes (TestRecordJSONFast), without
		// reflection: a SYN flood's records, short HTTP/1.x ones.
		s.cur.Write(append(b, '\n'))
	} else if err := s.enc.Encode(r); err != nil {
		s.err = err
		return err
	}
	id := r.ID
	if id != s.next {
		b := bytes.Clone(s.cur.Bytes())
		s.wait[id] = b
		s.waitBytes += len(b)
		if len(s.wait) > s.maxWaiting() || s.waitBytes > s.maxWaitingBytes() {
			s.spill()
		}
		return s.err
	}
	s.write(s.cur.Bytes())
	s.drain()
	return s.err
}

func (s *ConnsWriter) maxWaiting() int {
	if s.MaxWaiting > 0 {
		return s.MaxWaiting
	}
	return DefaultMaxWaiting
}

func (s *ConnsWriter) maxWaitingBytes() int {
	if s.MaxWaitingBytes > 0 {
		return s.MaxWaitingBytes
	}
	return DefaultMaxWaitingBytes
}

// Empty reports whether no record was added.
func (s *ConnsWriter) Empty() bool { return s.next == 0 && len(s.wait) == 0 && len(s.runs) == 0 }

// Waiting returns the number of records kept in memory and their bytes.
func (s *ConnsWriter) Waiting() (records, size int) { return len(s.wait), s.waitBytes }

// write writes record b (id s.next) and moves on to the next id.
func (s *ConnsWriter) write(b []byte) {
	if s.err == nil {
		_, s.err = s.out.Write(b)
	}
	s.next++
}

// drain writes the records that wait for s.next, in memory or at the
// head of a spilled run, until one is missing.
func (s *ConnsWriter) drain() {
	for s.err == nil {
		if b, ok := s.wait[s.next]; ok {
			delete(s.wait, s.next)
			s.waitBytes -= len(b)
			s.write(b)
			continue
		}
		i := slices.IndexFunc(s.runs, func(r *connsRun) bool { return r.id == s.next })
		if i < 0 {
			return
		}
		s.writeRunHead(i)
	}
}

// writeRunHead writes the head record of run i, then reads its next one.
func (s *ConnsWriter) writeRunHead(i int) {
	r := s.runs[i]
	s.next = r.id
	s.write(r.rec)
	if err := r.advance(); err != nil {
		s.err = err
	}
	if r.done {
		s.runs = slices.Delete(s.runs, i, i+1)
	}
}

// maxConnsRuns bounds the spilled runs read back at once: past it, they
// are merged into one run (each holds a read buffer of connsRunBuffer).
const (
	maxConnsRuns   = 64
	connsRunBuffer = 16 << 10
)

// spill writes the waiting records to the spill file as one run sorted
// by id, each as its id in decimal, a space and the JSON line, and
// forgets them. Past maxConnsRuns runs, it merges them all into one.
func (s *ConnsWriter) spill() {
	if s.file == nil {
		f, err := os.CreateTemp(s.TempDir, "h2scope-conns-*.spill")
		if err != nil {
			s.err = fmt.Errorf("conns: spill file: %w", err)
			return
		}
		s.file = f
	}
	ids := make([]event.ConnID, 0, len(s.wait))
	for id := range s.wait {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	i := 0
	s.writeRun(func() (event.ConnID, []byte, bool) {
		if i == len(ids) {
			return 0, nil, false
		}
		id := ids[i]
		i++
		return id, s.wait[id], true
	})
	clear(s.wait)
	s.waitBytes = 0
	if len(s.runs) > maxConnsRuns && s.err == nil {
		runs := s.runs
		s.runs = nil
		last := -1 // the run whose head was returned last: advanced on the next call
		s.writeRun(func() (event.ConnID, []byte, bool) {
			if last >= 0 {
				r := runs[last]
				if err := r.advance(); err != nil {
					s.err = err
				}
				if r.done {
					runs = slices.Delete(runs, last, last+1)
				}
			}
			last = minRun(runs)
			if last < 0 || s.err != nil {
				return 0, nil, false
			}
			return runs[last].id, runs[last].rec, true
		})
	}
}

// writeRun appends the records next returns, in increasing id order, to
// the spill file as a new run. A record next returns is valid until the
// next call.
func (s *ConnsWriter) writeRun(next func() (event.ConnID, []byte, bool)) {
	start := s.fileEnd
	w := bufio.NewWriterSize(io.NewOffsetWriter(s.file, start), 64<<10)
	var n int64
	var line []byte
	for {
		id, rec, ok := next()
		if !ok {
			break
		}
		line = strconv.AppendUint(line[:0], uint64(id), 10)
		line = append(line, ' ')
		k, _ := w.Write(line)
		m, _ := w.Write(rec)
		n += int64(k + m)
	}
	if err := w.Flush(); err != nil && s.err == nil {
		s.err = fmt.Errorf("conns: spill file: %w", err)
	}
	if s.err != nil {
		return
	}
	s.fileEnd += n
	r := &connsRun{r: bufio.NewReaderSize(io.NewSectionReader(s.file, start, n), connsRunBuffer)}
	if err := r.advance(); err != nil {
		s.err = err
		return
	}
	if !r.done {
		s.runs = append(s.runs, r)
	}
}

// minRun returns the index of the run whose head has the lowest id, or
// -1 when there is none.
func minRun(runs []*connsRun) int {
	i := -1
	for j, r := range runs {
		if i < 0 || r.id < runs[i].id {
			i = j
		}
	}
	return i
}

// Close writes the records still waiting, in id order, skipping the ids
// never added, flushes the output and removes the spill file.
func (s *ConnsWriter) Close() error {
	ids := make([]event.ConnID, 0, len(s.wait))
	for id := range s.wait {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	for s.err == nil && (len(ids) > 0 || len(s.runs) > 0) {
		// The lowest id left: the first waiting in memory or a run's head.
		i := minRun(s.runs)
		if i < 0 || len(ids) > 0 && ids[0] < s.runs[i].id {
			s.next = ids[0]
			b := s.wait[ids[0]]
			delete(s.wait, ids[0])
			s.waitBytes -= len(b)
			ids = ids[1:]
			s.write(b)
			continue
		}
		s.writeRunHead(i)
	}
	err := s.err
	if err == nil {
		err = s.out.Flush()
	}
	if err == nil && s.closeOut != nil {
		err = s.closeOut()
	}
	if s.file != nil {
		err = errors.Join(err, s.file.Close(), os.Remove(s.file.Name()))
		s.file = nil
	}
	if s.err == nil {
		s.err = errors.New("conns: writer closed")
	}
	return err
}

// A connsRun reads back one spilled run of a ConnsWriter: rec is the
// record of id id at its head, until done.
type connsRun struct {
	r    *bufio.Reader
	id   event.ConnID
	rec  []byte
	done bool
}

// advance reads the run's next record into id and rec, or sets done.
func (r *connsRun) advance() error {
	line, err := r.r.ReadSlice('\n')
	if errors.Is(err, bufio.ErrBufferFull) {
		line = bytes.Clone(line)
		var rest []byte
		rest, err = r.r.ReadBytes('\n')
		line = append(line, rest...)
	}
	if errors.Is(err, io.EOF) && len(line) == 0 {
		r.done, r.rec = true, nil
		return nil
	}
	if err != nil {
		return fmt.Errorf("conns: reading the spill file: %w", err)
	}
	num, rec, ok := bytes.Cut(line, []byte{' '})
	id, perr := strconv.ParseUint(string(num), 10, 32)
	if !ok || perr != nil {
		return errors.New("conns: spill file: malformed record")
	}
	r.id, r.rec = event.ConnID(id), rec
	return nil
}

// WriteConnsTable writes a terminal table with one row per connection.
func WriteConnsTable(w io.Writer, conns []ConnRecord) error {
	t := newTable(w)
	t.Header(connsHeader)
	for i := range conns {
		if err := t.Append(connsCells(&conns[i])); err != nil {
			return err
		}
	}
	return t.Render()
}

// clientLabel is the client's address, marked " ?" when which side is
// the client was guessed.
func (r *ConnRecord) clientLabel() string {
	if r.ClientGuessed {
		return r.Client.String() + " ?"
	}
	return r.Client.String()
}

// protoLabel names a connection's protocols for the tables: the TCP
// payload's, then the tunnelled and decrypted ones ("tls>http2"), "-" when
// none was recognised.
func (r *ConnRecord) protoLabel() string {
	proto := r.Proto
	if r.Tunnel != "" {
		proto += ">" + r.Tunnel
	}
	if r.Decrypted != "" {
		proto += ">" + r.Decrypted
	}
	if proto == "" {
		proto = "-"
	}
	return proto
}

// newTable returns a table writer with headers printed as given.
func newTable(w io.Writer) *tablewriter.Table {
	return tablewriter.NewTable(w, tablewriter.WithHeaderAutoFormat(tw.Off))
}
