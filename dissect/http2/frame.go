package http2

import (
	"encoding/binary"
	"fmt"
	"strings"
)

// frameHeaderLen is the size of an HTTP/2 frame header (RFC 9113 §4.1).
const frameHeaderLen = 9

// Frame-size limits of RFC 9113 §4.2 and §6.5.2.
const (
	// defaultMaxFrameSize is SETTINGS_MAX_FRAME_SIZE's initial value.
	defaultMaxFrameSize = 1 << 14
	// maxFrameSizeLimit is the largest SETTINGS_MAX_FRAME_SIZE a peer may
	// announce, and the largest length the 24-bit field can carry.
	maxFrameSizeLimit = 1<<24 - 1
	// maxWindow is the largest legal flow-control window.
	maxWindow = 1<<31 - 1
	// defaultWindow is the initial flow-control window.
	defaultWindow = 65535
)

// FrameType is an HTTP/2 frame type (RFC 9113 §6 and the IANA registry).
type FrameType uint8

// Frame types. ALTSVC is RFC 7838, ORIGIN RFC 8336, PRIORITY_UPDATE RFC 9218.
const (
	FrameData           FrameType = 0x0
	FrameHeaders        FrameType = 0x1
	FramePriority       FrameType = 0x2
	FrameRSTStream      FrameType = 0x3
	FrameSettings       FrameType = 0x4
	FramePushPromise    FrameType = 0x5
	FramePing           FrameType = 0x6
	FrameGoAway         FrameType = 0x7
	FrameWindowUpdate   FrameType = 0x8
	FrameContinuation   FrameType = 0x9
	FrameAltSvc         FrameType = 0xa
	FrameOrigin         FrameType = 0xc
	FramePriorityUpdate FrameType = 0x10
)

var frameTypeNames = map[FrameType]string{
	FrameData:           "DATA",
	FrameHeaders:        "HEADERS",
	FramePriority:       "PRIORITY",
	FrameRSTStream:      "RST_STREAM",
	FrameSettings:       "SETTINGS",
	FramePushPromise:    "PUSH_PROMISE",
	FramePing:           "PING",
	FrameGoAway:         "GOAWAY",
	FrameWindowUpdate:   "WINDOW_UPDATE",
	FrameContinuation:   "CONTINUATION",
	FrameAltSvc:         "ALTSVC",
	FrameOrigin:         "ORIGIN",
	FramePriorityUpdate: "PRIORITY_UPDATE",
}

// typeNames holds every FrameType's name so that String never allocates;
// knownTypes marks the types of frameTypeNames.
var (
	typeNames  [256]string
	knownTypes [256]bool
)

func init() {
	for i := range typeNames {
		t := FrameType(i)
		if n, ok := frameTypeNames[t]; ok {
			typeNames[i], knownTypes[i] = n, true
		} else {
			typeNames[i] = fmt.Sprintf("UNKNOWN_0x%02x", i)
		}
	}
	initFlagNames()
}

// String returns the RFC name ("DATA", "RST_STREAM"), or "UNKNOWN_0x0b"
// for a type this package does not know.
func (t FrameType) String() string { return typeNames[t] }

// Known reports whether t is a type this package parses (rather than
// skipping it as RFC 9113 §4.1 requires of unknown types).
func (t FrameType) Known() bool { return knownTypes[t] }

// Flags is a frame header's flags byte. Bit meanings depend on the frame
// type: 0x1 is END_STREAM on DATA and HEADERS but ACK on SETTINGS and PING.
type Flags uint8

// Frame flags (RFC 9113 §6).
const (
	FlagEndStream  Flags = 0x1
	FlagAck        Flags = 0x1
	FlagEndHeaders Flags = 0x4
	FlagPadded     Flags = 0x8
	FlagPriority   Flags = 0x20
)

// Has reports whether every bit of v is set in f.
func (f Flags) Has(v Flags) bool { return f&v == v }

// definedFlags lists, per frame type, the flags RFC 9113 defines for it,
// in bit order, with their names.
var definedFlags = map[FrameType][]struct {
	f    Flags
	name string
}{
	FrameData:         {{FlagEndStream, "END_STREAM"}, {FlagPadded, "PADDED"}},
	FrameHeaders:      {{FlagEndStream, "END_STREAM"}, {FlagEndHeaders, "END_HEADERS"}, {FlagPadded, "PADDED"}, {FlagPriority, "PRIORITY"}},
	FrameSettings:     {{FlagAck, "ACK"}},
	FramePushPromise:  {{FlagEndHeaders, "END_HEADERS"}, {FlagPadded, "PADDED"}},
	FramePing:         {{FlagAck, "ACK"}},
	FrameContinuation: {{FlagEndHeaders, "END_HEADERS"}},
}

// flagNames caches the name of every combination of defined flags per
// type, so that naming a frame's flags never allocates: flagNames[t][f]
// for a type t with defined flags (else nil) and f without undefined
// bits (flagMasks[t] holds the defined ones). Arrays rather than maps:
// every frame is named.
var (
	flagNames [256]*[256]string
	flagMasks [256]Flags
)

func initFlagNames() {
	for t, defs := range definedFlags {
		var mask Flags
		for _, d := range defs {
			mask |= d.f
		}
		names := new([256]string)
		for f := 0; f < 256; f++ {
			if Flags(f)&^mask == 0 {
				names[f] = flagString(t, Flags(f))
			}
		}
		flagNames[t], flagMasks[t] = names, mask
	}
}

// flagString names f as frame type t defines its bits; undefined set bits
// are appended in hex ("END_STREAM|0x40").
func flagString(t FrameType, f Flags) string {
	var parts []string
	rest := f
	for _, d := range definedFlags[t] {
		if f&d.f != 0 {
			parts = append(parts, d.name)
			rest &^= d.f
		}
	}
	if rest != 0 {
		parts = append(parts, fmt.Sprintf("0x%02x", uint8(rest)))
	}
	return strings.Join(parts, "|")
}

// FlagNames names the flags set in f as frame type t defines them, joined
// by "|" in bit order ("END_STREAM|END_HEADERS"); set bits the type does
// not define are appended in hex. It is empty when no flag is set.
func (t FrameType) FlagNames(f Flags) string {
	if names := flagNames[t]; names != nil && f&^flagMasks[t] == 0 {
		return names[f]
	}
	if f == 0 {
		return ""
	}
	return flagString(t, f)
}

// KindPreface is the event.Event Kind of the client's connection
// preface, which is no frame: frame types take the values below it.
const KindPreface = 0x100

// ErrCode is an HTTP/2 error code (RFC 9113 §7), carried by RST_STREAM and
// GOAWAY.
type ErrCode uint32

// Error codes.
const (
	ErrCodeNo                 ErrCode = 0x0
	ErrCodeProtocol           ErrCode = 0x1
	ErrCodeInternal           ErrCode = 0x2
	ErrCodeFlowControl        ErrCode = 0x3
	ErrCodeSettingsTimeout    ErrCode = 0x4
	ErrCodeStreamClosed       ErrCode = 0x5
	ErrCodeFrameSize          ErrCode = 0x6
	ErrCodeRefusedStream      ErrCode = 0x7
	ErrCodeCancel             ErrCode = 0x8
	ErrCodeCompression        ErrCode = 0x9
	ErrCodeConnect            ErrCode = 0xa
	ErrCodeEnhanceYourCalm    ErrCode = 0xb
	ErrCodeInadequateSecurity ErrCode = 0xc
	ErrCodeHTTP11Required     ErrCode = 0xd
)

var errCodeNames = [...]string{
	"NO_ERROR", "PROTOCOL_ERROR", "INTERNAL_ERROR", "FLOW_CONTROL_ERROR",
	"SETTINGS_TIMEOUT", "STREAM_CLOSED", "FRAME_SIZE_ERROR", "REFUSED_STREAM",
	"CANCEL", "COMPRESSION_ERROR", "CONNECT_ERROR", "ENHANCE_YOUR_CALM",
	"INADEQUATE_SECURITY", "HTTP_1_1_REQUIRED",
}

// MarshalText encodes the code by name (String), as records and
// reports show it.
func (e ErrCode) MarshalText() ([]byte, error) { return []byte(e.String()), nil }

// String returns the RFC name ("CANCEL"), or "UNKNOWN_0x.." for a code
// RFC 9113 does not define.
func (e ErrCode) String() string {
	if int(e) < len(errCodeNames) {
		return errCodeNames[e]
	}
	return fmt.Sprintf("UNKNOWN_0x%x", uint32(e))
}

// SettingID is an HTTP/2 SETTINGS parameter identifier (RFC 9113 §6.5.2,
// RFC 8441, RFC 9218).
type SettingID uint16

// Settings parameters.
const (
	SettingHeaderTableSize       SettingID = 0x1
	SettingEnablePush            SettingID = 0x2
	SettingMaxConcurrentStreams  SettingID = 0x3
	SettingInitialWindowSize     SettingID = 0x4
	SettingMaxFrameSize          SettingID = 0x5
	SettingMaxHeaderListSize     SettingID = 0x6
	SettingEnableConnectProtocol SettingID = 0x8
	SettingNoRFC7540Priorities   SettingID = 0x9
)

var settingNames = map[SettingID]string{
	SettingHeaderTableSize:       "SETTINGS_HEADER_TABLE_SIZE",
	SettingEnablePush:            "SETTINGS_ENABLE_PUSH",
	SettingMaxConcurrentStreams:  "SETTINGS_MAX_CONCURRENT_STREAMS",
	SettingInitialWindowSize:     "SETTINGS_INITIAL_WINDOW_SIZE",
	SettingMaxFrameSize:          "SETTINGS_MAX_FRAME_SIZE",
	SettingMaxHeaderListSize:     "SETTINGS_MAX_HEADER_LIST_SIZE",
	SettingEnableConnectProtocol: "SETTINGS_ENABLE_CONNECT_PROTOCOL",
	SettingNoRFC7540Priorities:   "SETTINGS_NO_RFC7540_PRIORITIES",
}

// String returns the RFC name ("SETTINGS_INITIAL_WINDOW_SIZE"), or
// "UNKNOWN_0x.." for an unassigned identifier.
func (s SettingID) String() string {
	if n, ok := settingNames[s]; ok {
		return n
	}
	return fmt.Sprintf("UNKNOWN_0x%x", uint16(s))
}

// FrameHeader is the fixed 9-byte header of an HTTP/2 frame.
type FrameHeader struct {
	// Length is the payload length.
	Length uint32
	// Type is the frame type.
	Type FrameType
	// Flags is the flags byte.
	Flags Flags
	// Reserved is the reserved bit before the stream identifier, which
	// senders must leave unset.
	Reserved bool
	// StreamID is the stream identifier (31 bits).
	StreamID uint32
}

// ParseFrameHeader decodes the frame header at the start of b. It reports
// false when b holds fewer than 9 bytes.
func ParseFrameHeader(b []byte) (FrameHeader, bool) {
	if len(b) < frameHeaderLen {
		return FrameHeader{}, false
	}
	sid := binary.BigEndian.Uint32(b[5:9])
	return FrameHeader{
		Length:   uint32(b[0])<<16 | uint32(b[1])<<8 | uint32(b[2]),
		Type:     FrameType(b[3]),
		Flags:    Flags(b[4]),
		Reserved: sid>>31 != 0,
		StreamID: sid & (1<<31 - 1),
	}, true
}

// String formats the header as "HEADERS stream=1 len=12 flags=END_HEADERS".
func (h FrameHeader) String() string {
	return fmt.Sprintf("%v stream=%d len=%d flags=%s", h.Type, h.StreamID, h.Length, h.Type.FlagNames(h.Flags))
}

// streamRule says on which streams a frame type may travel.
type streamRule uint8

const (
	onAny     streamRule = iota
	onZero               // connection frames: SETTINGS, PING, GOAWAY, ORIGIN, PRIORITY_UPDATE
	onNonZero            // stream frames: DATA, HEADERS, PRIORITY, RST_STREAM, ...
)

// payloadKind says how a frame's payload is consumed as it arrives.
type payloadKind uint8

const (
	// kindKeep keeps up to frameSpec.keep payload bytes for the finish
	// function; the rest is counted and dropped.
	kindKeep payloadKind = iota
	// kindData streams the payload (pad length, data, padding) through
	// to the observer without buffering it.
	kindData
	// kindBlock parses a small prefix (pad length, priority, promised
	// stream), appends the header block fragment to the direction's
	// header block and drops the padding.
	kindBlock
)

// frameSpec is the parser table entry of one frame type.
type frameSpec struct {
	// kind is how the payload is consumed.
	kind payloadKind
	// keep bounds the payload bytes kept for finish (kindKeep).
	keep int
	// fixedLen is the only legal payload length, or -1.
	fixedLen int
	// minLen is the smallest legal payload length.
	minLen int
	// stream is the stream-identifier rule.
	stream streamRule
	// flags are the flags the type defines.
	flags Flags
	// lenAnomaly is counted when the length is illegal.
	lenAnomaly string
	// streamAnomaly is counted when the stream identifier breaks stream.
	streamAnomaly string
	// finish parses the kept payload once the frame is complete and fills
	// the event detail. It runs with c.ev prepared for the frame.
	finish func(c *Conn, h *half)
}

// specs is the parser table, indexed by frame type. Types without an
// entry fall back to unknownSpec: see specFor.
var specs [256]*frameSpec

// unknownSpec skips an unknown type's payload (RFC 9113 §4.1, §5.5).
var unknownSpec = &frameSpec{kind: kindKeep, fixedLen: -1, finish: (*Conn).finishUnknown}

func init() {
	specs[FrameData] = &frameSpec{kind: kindData, fixedLen: -1, stream: onNonZero,
		flags: FlagEndStream | FlagPadded, streamAnomaly: "data_on_stream_0", finish: (*Conn).finishData}
	specs[FrameHeaders] = &frameSpec{kind: kindBlock, fixedLen: -1, stream: onNonZero,
		flags: FlagEndStream | FlagEndHeaders | FlagPadded | FlagPriority, streamAnomaly: "headers_on_stream_0", finish: (*Conn).finishHeaders}
	specs[FramePriority] = &frameSpec{kind: kindKeep, keep: 5, fixedLen: 5, stream: onNonZero,
		lenAnomaly: "priority_bad_length", streamAnomaly: "priority_on_stream_0", finish: (*Conn).finishPriority}
	specs[FrameRSTStream] = &frameSpec{kind: kindKeep, keep: 4, fixedLen: 4, stream: onNonZero,
		lenAnomaly: "rst_stream_bad_length", streamAnomaly: "rst_stream_on_stream_0", finish: (*Conn).finishRSTStream}
	specs[FrameSettings] = &frameSpec{kind: kindKeep, keep: maxSettingsBytes, fixedLen: -1, stream: onZero, flags: FlagAck,
		lenAnomaly: "settings_bad_length", streamAnomaly: "settings_on_stream", finish: (*Conn).finishSettings}
	specs[FramePushPromise] = &frameSpec{kind: kindBlock, fixedLen: -1, minLen: 4, stream: onNonZero, flags: FlagEndHeaders | FlagPadded,
		lenAnomaly: "push_promise_bad_length", streamAnomaly: "push_promise_on_stream_0", finish: (*Conn).finishHeaders}
	specs[FramePing] = &frameSpec{kind: kindKeep, keep: 8, fixedLen: 8, stream: onZero, flags: FlagAck,
		lenAnomaly: "ping_bad_length", streamAnomaly: "ping_on_stream", finish: (*Conn).finishPing}
	specs[FrameGoAway] = &frameSpec{kind: kindKeep, keep: 8 + maxDebug, fixedLen: -1, minLen: 8, stream: onZero,
		lenAnomaly: "goaway_bad_length", streamAnomaly: "goaway_on_stream", finish: (*Conn).finishGoAway}
	specs[FrameWindowUpdate] = &frameSpec{kind: kindKeep, keep: 4, fixedLen: 4, stream: onAny,
		lenAnomaly: "window_update_bad_length", finish: (*Conn).finishWindowUpdate}
	specs[FrameContinuation] = &frameSpec{kind: kindBlock, fixedLen: -1, stream: onNonZero, flags: FlagEndHeaders,
		streamAnomaly: "continuation_on_stream_0", finish: (*Conn).finishHeaders}
	specs[FrameAltSvc] = &frameSpec{kind: kindKeep, fixedLen: -1, minLen: 2, stream: onAny,
		lenAnomaly: "altsvc_bad_length", finish: (*Conn).finishUnknown}
	specs[FrameOrigin] = &frameSpec{kind: kindKeep, fixedLen: -1, stream: onZero,
		streamAnomaly: "origin_on_stream", finish: (*Conn).finishUnknown}
	specs[FramePriorityUpdate] = &frameSpec{kind: kindKeep, keep: 4, fixedLen: -1, minLen: 4, stream: onZero,
		lenAnomaly: "priority_update_bad_length", streamAnomaly: "priority_update_on_stream", finish: (*Conn).finishPriorityUpdate}
}

// specFor returns t's parser table entry, or the unknown-type fallback.
func specFor(t FrameType) *frameSpec {
	if s := specs[t]; s != nil {
		return s
	}
	return unknownSpec
}

// lengthOK reports whether length is legal for the type; flags matter for
// SETTINGS (an ACK is empty) and the padded or prioritised HEADERS prefix.
func (s *frameSpec) lengthOK(t FrameType, f Flags, length uint32) bool {
	if s.fixedLen >= 0 && int64(length) != int64(s.fixedLen) {
		return false
	}
	if int64(length) < int64(s.minLen) {
		return false
	}
	if t == FrameSettings && (length%6 != 0 || f.Has(FlagAck) && length != 0) {
		return false
	}
	return true
}

// streamOK reports whether the stream identifier suits the type.
func (s *frameSpec) streamOK(id uint32) bool {
	switch s.stream {
	case onZero:
		return id == 0
	case onNonZero:
		return id != 0
	}
	return true
}

// plausible reports whether h looks like a real frame header rather than
// payload bytes, for resynchronisation: a known type, a length within
// maxLen and legal for the type (room for the padding and priority
// fields; empty only for SETTINGS and a DATA with END_STREAM), no flags
// the type does not define, the reserved bit clear, and a stream
// identifier the type allows. It is stricter than the RFC requires of
// receivers, because it must tell frames from arbitrary bytes.
func plausible(h FrameHeader, maxLen uint32) bool {
	s := specs[h.Type]
	if s == nil || h.Reserved || h.Length > maxLen {
		return false
	}
	if h.Flags&^s.flags != 0 || !s.lengthOK(h.Type, h.Flags, h.Length) || !s.streamOK(h.StreamID) {
		return false
	}
	if h.Length == 0 && !(h.Type == FrameSettings || h.Type == FrameData && h.Flags.Has(FlagEndStream)) {
		// Legal, but no stack sends an empty frame other than a SETTINGS
		// (ACK) or a DATA ending its stream, while runs of zero bytes in
		// payloads would otherwise read as empty DATA frames.
		return false
	}
	if h.Type == FrameHeaders || h.Type == FramePushPromise || h.Type == FrameData {
		var pre uint32
		if h.Flags.Has(FlagPadded) {
			pre++
		}
		if h.Type == FrameHeaders && h.Flags.Has(FlagPriority) {
			pre += 5
		}
		if h.Type == FramePushPromise {
			pre += 4
		}
		if h.Length < pre {
			return false
		}
	}
	return true
}

// plausibleFrom is plausible with the rules that depend on the sender: a
// client sends DATA, HEADERS and CONTINUATION only on the streams it opens
// (odd), and no PUSH_PROMISE; a server promises only on client streams.
func plausibleFrom(h FrameHeader, maxLen uint32, client bool) bool {
	if !plausible(h, maxLen) {
		return false
	}
	switch h.Type {
	case FrameData, FrameHeaders, FrameContinuation:
		return !client || h.StreamID%2 == 1
	case FramePushPromise:
		return !client && h.StreamID%2 == 1
	}
	return true
}

// maxSettingsBytes bounds the SETTINGS payload kept: 64 parameters.
const maxSettingsBytes = 64 * 6

// maxDebug bounds the GOAWAY debug data kept.
const maxDebug = 256
