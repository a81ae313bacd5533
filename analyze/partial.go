package analyze

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"reflect"

	"github.com/h2scope/h2scope/dissect"
	"github.com/h2scope/h2scope/internal/statecodec"
)

// A capture split over runs, possibly on several machines
// (dissect.Options.ShardOf), is analysed by each run into a Partial:
// the State of its connections and its reading statistics. The
// Partials travel as bytes (MarshalBinary) and merge into the Partial
// of the whole capture, whose Result is that of one run over it.
//
// The bytes are statecodec's: every field of every detector, table and
// statistic, by reflection, so that a field added to a detector travels
// without anyone writing code for it (TestPartialEveryCapture fails
// when one does not: it compares the merged report with the whole run's,
// byte for byte, on every capture).

func init() {
	// The detectors, held by the analysis as interface values.
	for _, d := range detectors(DefaultConfig()) {
		statecodec.Register(d)
	}
}

// Partial is the analysis of one run of a capture split by connection:
// its connections' State and its Stats (the reader's counts in shard 0's
// only; see dissect.Options.ShardOf), connection IDs provisional.
type Partial struct {
	State *State
	Stats dissect.Stats
}

// partialWire is a Partial as it is encoded.
type partialWire struct {
	A     *analysis
	Stats dissect.Stats
}

// MarshalBinary encodes p (see statecodec).
func (p *Partial) MarshalBinary() ([]byte, error) {
	if p.State == nil {
		return nil, errors.New("analyze: encoding a partial without a state")
	}
	w := partialWire{A: p.State.a, Stats: p.Stats}
	b := append([]byte(partialMagic+"crc."), partialTypes[:]...)
	b, err := statecodec.Encode(b, &w)
	if err != nil {
		return nil, fmt.Errorf("analyze: encoding a partial: %w", err)
	}
	binary.BigEndian.PutUint32(b[len(partialMagic):], crc32.Checksum(b[len(partialMagic)+4:], crcTable))
	return b, nil
}

// partialMagic starts an encoded Partial; a CRC-32C of the rest follows
// it, so that bytes damaged on their way between machines are refused
// rather than decoded into a state that would report nonsense.
const partialMagic = "h2scope.partial/1\n"

var crcTable = crc32.MakeTable(crc32.Castagnoli)

// partialTypes is a hash of the detectors' types, which the analysis
// holds as interface values (statecodec's fingerprint of partialWire
// stops at the interface): a partial encoded by a build whose detectors
// differ is refused.
var partialTypes = func() (h [8]byte) {
	var x uint64
	for _, d := range detectors(DefaultConfig()) {
		x = x*0x100000001b3 ^ statecodec.Fingerprint(reflect.TypeOf(d))
	}
	binary.BigEndian.PutUint64(h[:], x)
	return h
}()

// UnmarshalBinary decodes a Partial MarshalBinary encoded. It returns
// an error, never panics, on bytes that are not one.
func (p *Partial) UnmarshalBinary(b []byte) error {
	if len(b) < len(partialMagic)+4 || string(b[:len(partialMagic)]) != partialMagic {
		return errors.New("analyze: not an h2scope partial analysis")
	}
	b = b[len(partialMagic):]
	if binary.BigEndian.Uint32(b) != crc32.Checksum(b[4:], crcTable) {
		return errors.New("analyze: partial analysis damaged (checksum mismatch)")
	}
	b = b[4:]
	if len(b) < len(partialTypes) || [8]byte(b[:8]) != partialTypes {
		return errors.New("analyze: the partial analysis was encoded by another build of h2scope (its detectors differ)")
	}
	return p.decode(b[8:])
}

// decode decodes the statecodec bytes of a Partial.
func (p *Partial) decode(b []byte) error {
	// Decoded into a fresh analysis, so that the detectors' types and
	// what they share (the tables read the resumption detector) are
	// there; every field is then overwritten, thresholds included.
	w := partialWire{A: newAnalysis(DefaultConfig())}
	if err := statecodec.Decode(b, &w); err != nil {
		return fmt.Errorf("analyze: decoding a partial: %w", err)
	}
	if w.A == nil || len(w.A.dets) != len(detectors(DefaultConfig())) || w.A.tables == nil {
		return errors.New("analyze: decoding a partial: no analysis in it")
	}
	for i, d := range detectors(DefaultConfig()) {
		if w.A.dets[i] == nil || reflect.TypeOf(w.A.dets[i]) != reflect.TypeOf(d) {
			return fmt.Errorf("analyze: decoding a partial: detector %d is a %T, want a %T", i, w.A.dets[i], d)
		}
	}
	*p = Partial{State: &State{a: w.A}, Stats: w.Stats}
	return nil
}

// Merge adds o, the Partial of another run of the same capture (another
// shard), to p; o must not be used afterwards.
func (p *Partial) Merge(o *Partial) {
	ids := dissect.MergeConnIDs(p.Stats.IDs, o.Stats.IDs)
	p.State.Merge(o.State)
	p.Stats.Add(o.Stats)
	p.Stats.IDs = ids
}

// Result reports the findings and tables of the connections merged in,
// with final connection IDs: once every run's Partial is merged, those
// of one run over the whole capture.
func (p *Partial) Result() Result {
	return p.State.Result(p.Stats)
}

// Input returns the Input a report of the merged partial reads: its
// Stats, no connection.
func (p *Partial) Input() *Input {
	return &Input{Stats: p.Stats}
}

// StreamShard is Stream for one run of a capture split over runs:
// opts.ShardOf names the shard (Count above 0), and opts.Shards may split
// it further over goroutines. sink, when not nil, receives each of the
// shard's connections as Stream's does, with provisional IDs, from
// several goroutines when opts.Shards is above 1.
func StreamShard(ctx context.Context, files []string, opts dissect.Options, cfg Config, sink ConnSink) (*Partial, error) {
	if opts.ShardOf.Count <= 0 {
		return nil, errors.New("analyze: StreamShard needs dissect.Options.ShardOf")
	}
	s, st, err := streamShards(ctx, files, opts, cfg, sink)
	if err != nil {
		return nil, err
	}
	return &Partial{State: s, Stats: st}, nil
}
