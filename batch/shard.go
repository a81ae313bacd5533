package batch

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"

	"github.com/h2scope/h2scope/analyze"
	"github.com/h2scope/h2scope/dissect"
	"github.com/h2scope/h2scope/report"
)

// A capture too big for one machine is analysed in shards, possibly on
// as many machines: AnalyseShard runs shard k of K (each reads the whole
// capture and analyses the connections whose address-pair hash falls in
// its shard, see dissect.Options.ShardOf) into a partial, small bytes,
// and a stream of its connections' records; MergeShards takes every
// shard's partial and records and returns the line AnalyseCapture writes
// for the capture, byte for byte, resume key included. The partials
// merge as they come (MergePartials), so that a driver may combine them
// pairwise, in any order and grouping.

// ShardsFor returns the shards a capture of size bytes is analysed in by
// drivers that split captures across machines when shards is 0 (auto): 1
// below autoBytes, else as many as the capture holds autoBytes, at most
// maxShards; a shards above 0 is kept.
func ShardsFor(shards int, size, autoBytes int64, maxShards int) int {
	if shards > 0 {
		return shards
	}
	if autoBytes <= 0 || size < autoBytes {
		return 1
	}
	return int(min(size/autoBytes+1, int64(max(maxShards, 1))))
}

// shardMagic starts the partial of a shard.
const shardMagic = "h2scope.shard/1\n"

// shardPartial is the partial of one or several shards of a capture.
type shardPartial struct {
	// shards counts the shards merged in, of count.
	shards, count int
	// errText is the error record's of a capture that could not be
	// read; the other fields are then empty.
	errText string
	// resumeKey is the capture's, as every shard computed it from the
	// files it read (they must agree).
	resumeKey string
	analysis  *analyze.Partial
	report    *report.Partial
}

// marshal encodes p: shardMagic, a CRC-32C of the rest, then the rest.
func (p *shardPartial) marshal() ([]byte, error) {
	b, err := p.appendBody([]byte(shardMagic + "crc."))
	if err != nil {
		return nil, err
	}
	binary.BigEndian.PutUint32(b[len(shardMagic):], crc32.Checksum(b[len(shardMagic)+4:], crcTable))
	return b, nil
}

var crcTable = crc32.MakeTable(crc32.Castagnoli)

func (p *shardPartial) appendBody(b []byte) ([]byte, error) {
	b = binary.AppendUvarint(b, uint64(p.shards))
	b = binary.AppendUvarint(b, uint64(p.count))
	b = appendBytes(b, []byte(p.errText))
	if p.errText != "" {
		return b, nil
	}
	b = appendBytes(b, []byte(p.resumeKey))
	a, err := p.analysis.MarshalBinary()
	if err != nil {
		return nil, err
	}
	r, err := p.report.MarshalBinary()
	if err != nil {
		return nil, err
	}
	return appendBytes(appendBytes(b, a), r), nil
}

func appendBytes(b, s []byte) []byte {
	return append(binary.AppendUvarint(b, uint64(len(s))), s...)
}

var errNotShard = errors.New("batch: not the partial analysis of a capture's shard")

func unmarshalShard(b []byte) (*shardPartial, error) {
	if !bytes.HasPrefix(b, []byte(shardMagic)) || len(b) < len(shardMagic)+4 {
		return nil, errNotShard
	}
	b = b[len(shardMagic):]
	if binary.BigEndian.Uint32(b) != crc32.Checksum(b[4:], crcTable) {
		return nil, errors.New("batch: a shard's partial analysis is damaged (checksum mismatch)")
	}
	b = b[4:]
	next := func() (uint64, bool) {
		x, n := binary.Uvarint(b)
		if n <= 0 {
			return 0, false
		}
		b = b[n:]
		return x, true
	}
	chunk := func() ([]byte, bool) {
		n, ok := next()
		if !ok || n > uint64(len(b)) {
			return nil, false
		}
		s := b[:n]
		b = b[n:]
		return s, true
	}
	shards, ok1 := next()
	count, ok2 := next()
	errText, ok3 := chunk()
	if !ok1 || !ok2 || !ok3 || shards == 0 || count == 0 || shards > count || count > 1<<20 {
		return nil, errNotShard
	}
	p := &shardPartial{shards: int(shards), count: int(count), errText: string(errText)}
	if p.errText != "" {
		if len(b) != 0 {
			return nil, errNotShard
		}
		return p, nil
	}
	key, ok0 := chunk()
	a, ok1 := chunk()
	r, ok2 := chunk()
	if !ok0 || !ok1 || !ok2 || len(b) != 0 {
		return nil, errNotShard
	}
	p.resumeKey = string(key)
	p.analysis, p.report = &analyze.Partial{}, &report.Partial{}
	if err := p.analysis.UnmarshalBinary(a); err != nil {
		return nil, err
	}
	if err := p.report.UnmarshalBinary(r); err != nil {
		return nil, err
	}
	return p, nil
}

// ShardRecords reports whether the shards of a capture analysed with
// opts write records (AnalyseShard's records): not when the reports
// hold no connection.
func ShardRecords(opts Options) bool { return opts.connections() != report.ConnsNone }

// AnalyseShard analyses shard.Index of shard.Count of capture c, with
// opts as AnalyseCapture takes them, and returns its partial; it writes
// the records of the shard's connections to records, which MergeShards
// reads back (nothing when ShardRecords(opts) is false; records may then
// be nil). A capture that cannot be read gives a partial that
// MergeShards turns into its error record. err is set only when ctx is
// done or the partial cannot be encoded.
func AnalyseShard(ctx context.Context, c Capture, shard dissect.ShardOf, opts Options, records io.Writer) (partial []byte, err error) {
	if shard.Count <= 0 || shard.Index < 0 || shard.Index >= shard.Count {
		return nil, fmt.Errorf("batch: shard %d of %d does not exist", shard.Index, shard.Count)
	}
	r := newRunner(opts)
	p := &shardPartial{shards: 1, count: shard.Count}
	defer func() {
		if x := recover(); x != nil {
			p = &shardPartial{shards: 1, count: shard.Count, errText: ErrorText(internalError(c, x))}
			partial, err = p.marshal()
		}
	}()
	if ctx.Err() != nil {
		return nil, ctx.Err()
	}
	j := r.prepare(ctx, []Capture{c})[0]
	switch {
	case c.Err != nil:
		p.errText = ErrorText(c.Err)
		return p.marshal()
	case j.printErr != nil:
		p.errText = ErrorText(j.printErr)
		return p.marshal()
	}
	do := r.opts.Dissect
	var keyHashes []string
	do.Keys, keyHashes = r.keyLog(j)
	p.resumeKey = resumeKey(j.prints, keyHashes, r.optionsKey, r.version)
	do.ShardOf = shard
	rb := r.builder(&do)
	defer rb.Close()
	ap, err := analyze.StreamShard(ctx, c.Files, do, *r.opts.Config, rb)
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		p.errText = ErrorText(err)
		return p.marshal()
	}
	if !ShardRecords(r.opts) {
		records = nil
	}
	rp, err := rb.Partial(records)
	if err != nil {
		return nil, err
	}
	p.analysis, p.report = ap, rp
	return p.marshal()
}

// MergePartials merges the partials of shards of one capture (as
// AnalyseShard or MergePartials returned them) into one, in any order
// and grouping.
func MergePartials(a, b []byte) ([]byte, error) {
	p, err := unmarshalShard(a)
	if err != nil {
		return nil, err
	}
	q, err := unmarshalShard(b)
	if err != nil {
		return nil, err
	}
	if p.count != q.count {
		return nil, fmt.Errorf("batch: merging a shard of %d with a shard of %d", p.count, q.count)
	}
	p.shards += q.shards
	if p.shards > p.count {
		return nil, fmt.Errorf("batch: %d shards merged of %d", p.shards, p.count)
	}
	switch {
	case p.errText != "":
	case q.errText != "":
		p.errText, p.analysis, p.report = q.errText, nil, nil
	case p.resumeKey != q.resumeKey:
		return nil, errors.New("batch: the shards of a capture read different files (changed while they were read, or other key logs)")
	default:
		p.analysis.Merge(q.analysis)
		p.report.Merge(q.report)
	}
	return p.marshal()
}

// MergeShards returns the output line of capture c (as AnalyseCapture
// returns it) from the partial of all its shards (every AnalyseShard's
// merged by MergePartials, or the only one) and their records, in any
// order. opts must be those the shards were analysed with. It does not
// read c's files: the resume key is the one the shards computed, and
// c.Files only names them in the report.
func MergeShards(ctx context.Context, c Capture, partial []byte, records []io.Reader, opts Options) (line []byte, failed bool, err error) {
	p, err := unmarshalShard(partial)
	if err != nil {
		return nil, false, err
	}
	if p.shards != p.count {
		return nil, false, fmt.Errorf("batch: %s: %d shards of %d merged", c.Files[0], p.shards, p.count)
	}
	if p.errText != "" {
		res := errorResult(c, errors.New(p.errText))
		return res.line, res.failed, res.err
	}
	if ctx.Err() != nil {
		return nil, false, ctx.Err()
	}
	r := newRunner(opts)
	rb := r.builder(nil)
	defer rb.Close()
	if !ShardRecords(r.opts) {
		records = nil
	}
	res := p.analysis.Result()
	if err := rb.AddPartial(p.report, res, p.analysis.Stats.IDs, records...); err != nil {
		return nil, false, fmt.Errorf("%s: %w", c.Files[0], err)
	}
	rep := rb.Report(c.Files, p.analysis.Input(), res)
	rep.Captures[0].ResumeKey = p.resumeKey
	var buf bytes.Buffer
	if err := rep.WriteJSONLine(&buf); err != nil {
		return nil, false, fmt.Errorf("encoding the report of %s: %w", c.Files[0], err)
	}
	return buf.Bytes(), false, nil
}
