package http2

import (
	"maps"

	"github.com/h2scope/h2scope/dissect/event"
)

// FrameCounts counts frames by type name, per direction.
type FrameCounts struct {
	// C2S counts the client's frames by type ("HEADERS": 3).
	C2S map[string]uint64 `json:"c2s"`
	// S2C counts the server's frames by type.
	S2C map[string]uint64 `json:"s2c"`
}

// Settings holds the SETTINGS parameters each side announced last, in
// order of first announcement.
type Settings struct {
	// C2S holds the client's.
	C2S []event.Setting `json:"c2s,omitempty"`
	// S2C holds the server's.
	S2C []event.Setting `json:"s2c,omitempty"`
}

// Summary describes what a Conn dissected. Its fields are copies.
type Summary struct {
	// Preface is set when the client connection preface was seen.
	Preface bool `json:"preface"`
	// MidConnection and Upgrade echo the Options the Conn ran with.
	MidConnection bool `json:"mid_connection,omitempty"`
	Upgrade       bool `json:"upgrade,omitempty"`
	// Frames counts the complete frames dissected, by type and direction.
	Frames FrameCounts `json:"frames"`
	// StreamsReset counts the streams each side reset while they were
	// open (their first RST_STREAM; more on a closed stream are frames,
	// not streams), exactly however many there are.
	StreamsReset Counts `json:"streams_reset"`
	// Streams counts the streams seen; StreamsDropped those seen past
	// Options.MaxStreams, which have no record.
	Streams        int `json:"streams"`
	StreamsDropped int `json:"streams_dropped,omitempty"`
	// HeaderBlocks counts complete or abandoned header blocks, and
	// HeaderBlocksUndecodable those that could not be decoded at all
	// (HPACK error, lost bytes, over the size bound).
	HeaderBlocks            int `json:"header_blocks"`
	HeaderBlocksUndecodable int `json:"header_blocks_undecodable"`
	// HeaderFields counts the fields of the decodable blocks, and
	// HeaderFieldsDecoded those whose name and value are known (the rest
	// referred to HPACK table entries the capture did not show).
	HeaderFields        int `json:"header_fields"`
	HeaderFieldsDecoded int `json:"header_fields_decoded"`
	// LostBytes counts bytes the capture lost (gaps), per direction.
	LostBytes Counts `json:"lost_bytes"`
	// SkippedBytes counts bytes skipped while looking for a frame
	// boundary, per direction.
	SkippedBytes Counts `json:"skipped_bytes"`
	// Resyncs counts the times a direction lost its frame boundaries
	// (after a gap, a bad preface or an oversized frame).
	Resyncs int `json:"resyncs"`
	// Settings holds each side's SETTINGS parameters.
	Settings Settings `json:"settings"`
	// GoAways lists the GOAWAY frames (at most 16).
	GoAways []GoAway `json:"goaways,omitempty"`
	// Stalls lists the intervals a sender's connection window sat at or
	// below zero (at most 1024; StallsDropped counts the rest); stream
	// windows' stalls are in each Stream.
	Stalls        []Stall `json:"stalls,omitempty"`
	StallsDropped int     `json:"stalls_dropped,omitempty"`
	// Anomalies counts protocol violations and dissection trouble by
	// stable snake_case token; resync_skipped_bytes counts bytes.
	Anomalies map[string]int `json:"anomalies,omitempty"`
}

// HeaderCoverage returns the share of header fields decoded, 1 when there
// were none.
func (s *Summary) HeaderCoverage() float64 {
	if s.HeaderFields == 0 {
		return 1
	}
	return float64(s.HeaderFieldsDecoded) / float64(s.HeaderFields)
}

// Summary returns what the Conn has dissected so far. Stalls still in
// progress are included with a nil End.
func (c *Conn) Summary() Summary {
	s := Summary{
		Preface:                 c.preface,
		MidConnection:           c.opts.MidConnection,
		Upgrade:                 c.opts.Upgrade,
		Frames:                  FrameCounts{C2S: map[string]uint64{}, S2C: map[string]uint64{}},
		StreamsReset:            Counts{C2S: c.resets[0], S2C: c.resets[1]},
		Streams:                 c.seen,
		StreamsDropped:          c.dropped,
		HeaderBlocks:            c.blocks,
		HeaderBlocksUndecodable: c.undecodable,
		HeaderFields:            c.fields,
		HeaderFieldsDecoded:     c.decoded,
		LostBytes:               Counts{C2S: c.lostBytes[0], S2C: c.lostBytes[1]},
		SkippedBytes:            Counts{C2S: c.skipped[0], S2C: c.skipped[1]},
		Resyncs:                 c.resyncs,
		Settings: Settings{
			C2S: append([]event.Setting(nil), c.peer[event.C2S].values...),
			S2C: append([]event.Setting(nil), c.peer[event.S2C].values...),
		},
		GoAways:       append([]GoAway(nil), c.goaways...),
		StallsDropped: c.stallsDropped,
		Anomalies:     maps.Clone(c.anomalies),
	}
	for t, n := range c.frames[event.C2S] {
		if n > 0 {
			s.Frames.C2S[FrameType(t).String()] = n
		}
	}
	for t, n := range c.frames[event.S2C] {
		if n > 0 {
			s.Frames.S2C[FrameType(t).String()] = n
		}
	}
	for _, x := range c.stalls {
		s.Stalls = append(s.Stalls, x.export())
	}
	for d := range c.send {
		if o := c.send[d].stall; o.open {
			s.Stalls = append(s.Stalls, stallRec{dir: event.Dir(d), start: o.start, open: true, min: o.min}.export())
		}
	}
	for d := range c.send {
		if !c.send[d].known {
			exportGuess(&c.send[d].guess, &s.Stalls, &s.StallsDropped, maxConnStalls)
		}
	}
	return s
}
