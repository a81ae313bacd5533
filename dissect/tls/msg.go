package tls

import (
	"bytes"
	"errors"
	"fmt"
)

// Handshake message types (RFC 8446 §4, RFC 5246 §7.4).
const (
	typeHelloRequest        = 0
	typeClientHello         = 1
	typeServerHello         = 2
	typeNewSessionTicket    = 4
	typeEndOfEarlyData      = 5
	typeEncryptedExtensions = 8
	typeCertificate         = 11
	typeServerKeyExchange   = 12
	typeCertificateRequest  = 13
	typeServerHelloDone     = 14
	typeCertificateVerify   = 15
	typeClientKeyExchange   = 16
	typeFinished            = 20
	typeCertificateStatus   = 22
	typeKeyUpdate           = 24
	typeMessageHash         = 254
)

var handshakeNames = map[uint8]string{
	typeHelloRequest:        "HelloRequest",
	typeClientHello:         "ClientHello",
	typeServerHello:         "ServerHello",
	typeNewSessionTicket:    "NewSessionTicket",
	typeEndOfEarlyData:      "EndOfEarlyData",
	typeEncryptedExtensions: "EncryptedExtensions",
	typeCertificate:         "Certificate",
	typeServerKeyExchange:   "ServerKeyExchange",
	typeCertificateRequest:  "CertificateRequest",
	typeServerHelloDone:     "ServerHelloDone",
	typeCertificateVerify:   "CertificateVerify",
	typeClientKeyExchange:   "ClientKeyExchange",
	typeFinished:            "Finished",
	typeCertificateStatus:   "CertificateStatus",
	typeKeyUpdate:           "KeyUpdate",
	typeMessageHash:         "MessageHash",
}

func handshakeName(t uint8) string {
	if n, ok := handshakeNames[t]; ok {
		return n
	}
	return fmt.Sprintf("Unknown(%d)", t)
}

// maxSNI is the most of a server_name kept: a DNS name's 253 bytes
// (RFC 1035) and room to spare.
const maxSNI = 255

// Extension code points.
const (
	extServerName          = 0
	extSupportedGroups     = 10
	extECPointFormats      = 11
	extSignatureAlgorithms = 13
	extALPN                = 16
	extSessionTicket       = 35
	extPreSharedKey        = 41
	extEarlyData           = 42
	extSupportedVersions   = 43
	extPSKModes            = 45
	extKeyShare            = 51
)

// helloRetryRandom is the ServerHello.random that marks a
// HelloRetryRequest (RFC 8446 §4.1.3).
var helloRetryRandom = []byte{
	0xCF, 0x21, 0xAD, 0x74, 0xE5, 0x9A, 0x61, 0x11,
	0xBE, 0x1D, 0x8C, 0x02, 0x1E, 0x65, 0xB8, 0x91,
	0xC2, 0xA2, 0x11, 0x16, 0x7A, 0xBB, 0x8C, 0x5E,
	0x07, 0x9E, 0x09, 0xE2, 0xC8, 0xA8, 0x33, 0x9C,
}

var errMalformed = errors.New("malformed")

// clientHello holds the fields of a ClientHello that the summary uses.
type clientHello struct {
	version           uint16
	random            []byte
	sessionID         []byte
	cipherSuites      []uint16
	compression       []uint8
	extensions        []uint16
	sni               string
	alpn              []string
	supportedVersions []uint16
	ticketPresent     bool
	ticketLen         int
	ticket            []byte
	sslv2             bool // sent in SSL 2.0 format
	pskPresent        bool
	pskIdentities     int
	pskFirstAge       uint32
	pskNotLast        bool
	pskModes          []uint8
	earlyData         bool
	keyShareGroups    []uint16
	supportedGroups   []uint16
	sigAlgs           []uint16
	// pointFormats is the ec_point_formats list (RFC 8422 §5.1.2), for
	// JA3; nil when the extension is absent or malformed (a malformed one
	// does not fail the parse).
	pointFormats []uint8
}

func readU16List(r *reader, out *[]uint16) bool {
	if len(*r)%2 != 0 {
		return false
	}
	for !r.empty() {
		var v uint16
		r.u16(&v)
		*out = append(*out, v)
	}
	return true
}

func parseClientHello(b []byte) (*clientHello, error) {
	ch := &clientHello{}
	r := reader(b)
	var sid, cs, comp reader
	var random []byte
	var ok bool
	if !r.u16(&ch.version) {
		return nil, errMalformed
	}
	if random, ok = r.read(32); !ok {
		return nil, errMalformed
	}
	ch.random = bytes.Clone(random)
	if !r.lp8(&sid) || len(sid) > 32 || !r.lp16(&cs) || !r.lp8(&comp) {
		return nil, errMalformed
	}
	ch.sessionID = bytes.Clone(sid)
	if len(cs) == 0 || !readU16List(&cs, &ch.cipherSuites) || len(comp) == 0 {
		return nil, errMalformed
	}
	ch.compression = bytes.Clone(comp)
	if r.empty() {
		return ch, nil
	}
	err := extensions(&r, func(typ uint16, data reader) error {
		ch.extensions = append(ch.extensions, typ)
		if ch.pskPresent {
			ch.pskNotLast = true
		}
		return ch.parseExtension(typ, data)
	})
	if err != nil {
		return nil, err
	}
	return ch, nil
}

func (ch *clientHello) parseExtension(typ uint16, data reader) error {
	bad := fmt.Errorf("malformed extension %d", typ)
	switch typ {
	case extServerName:
		var list reader
		if !data.lp16(&list) || !data.empty() || list.empty() {
			return bad
		}
		for !list.empty() {
			var nt uint8
			var name reader
			if !list.u8(&nt) || !list.lp16(&name) {
				return bad
			}
			if nt == 0 && ch.sni == "" {
				// A host name is at most 253 bytes (RFC 1035); a
				// longer one is hostile and only its start is kept.
				ch.sni = string(name[:min(len(name), maxSNI)])
			}
		}
	case extALPN:
		var list reader
		if !data.lp16(&list) || !data.empty() || list.empty() {
			return bad
		}
		for !list.empty() {
			var p reader
			if !list.lp8(&p) || p.empty() {
				return bad
			}
			ch.alpn = append(ch.alpn, string(p))
		}
	case extSupportedVersions:
		var list reader
		if !data.lp8(&list) || !data.empty() || list.empty() || !readU16List(&list, &ch.supportedVersions) {
			return bad
		}
	case extSessionTicket:
		ch.ticketPresent = true
		ch.ticketLen = len(data)
		ch.ticket = bytes.Clone(data)
	case extPreSharedKey:
		var ids, binders reader
		if !data.lp16(&ids) || !data.lp16(&binders) || !data.empty() || ids.empty() || binders.empty() {
			return bad
		}
		ch.pskPresent = true
		for !ids.empty() {
			var id reader
			var age uint32
			if !ids.lp16(&id) || id.empty() || !ids.u32(&age) {
				return bad
			}
			if ch.pskIdentities == 0 {
				ch.pskFirstAge = age
			}
			ch.pskIdentities++
		}
		for !binders.empty() {
			var bd reader
			if !binders.lp8(&bd) || len(bd) < 32 {
				return bad
			}
		}
	case extPSKModes:
		var list reader
		if !data.lp8(&list) || !data.empty() || list.empty() {
			return bad
		}
		ch.pskModes = bytes.Clone(list)
	case extEarlyData:
		if !data.empty() {
			return bad
		}
		ch.earlyData = true
	case extKeyShare:
		var list reader
		if !data.lp16(&list) || !data.empty() {
			return bad
		}
		for !list.empty() {
			var g uint16
			var key reader
			if !list.u16(&g) || !list.lp16(&key) || key.empty() {
				return bad
			}
			ch.keyShareGroups = append(ch.keyShareGroups, g)
		}
	case extSupportedGroups:
		var list reader
		if !data.lp16(&list) || !data.empty() || list.empty() || !readU16List(&list, &ch.supportedGroups) {
			return bad
		}
	case extSignatureAlgorithms:
		var list reader
		if !data.lp16(&list) || !data.empty() || list.empty() || !readU16List(&list, &ch.sigAlgs) {
			return bad
		}
	case extECPointFormats:
		var list reader
		if data.lp8(&list) && data.empty() && !list.empty() {
			ch.pointFormats = bytes.Clone(list)
		}
	}
	return nil
}

// serverHello holds the fields of a ServerHello or HelloRetryRequest.
type serverHello struct {
	version         uint16
	random          []byte
	sessionID       []byte
	cipherSuite     uint16
	compression     uint8
	hrr             bool
	selectedVersion uint16 // 0 when no supported_versions
	pskSelected     bool
	pskIdentity     uint16
	keyShareGroup   uint16
	keyShare        bool
	alpn            string
	ticketSupported bool
	extensions      []uint16
}

func parseServerHello(b []byte) (*serverHello, error) {
	sh := &serverHello{}
	r := reader(b)
	var sid reader
	var random []byte
	var ok bool
	if !r.u16(&sh.version) {
		return nil, errMalformed
	}
	if random, ok = r.read(32); !ok {
		return nil, errMalformed
	}
	sh.random = bytes.Clone(random)
	sh.hrr = bytes.Equal(random, helloRetryRandom)
	if !r.lp8(&sid) || len(sid) > 32 || !r.u16(&sh.cipherSuite) || !r.u8(&sh.compression) {
		return nil, errMalformed
	}
	sh.sessionID = bytes.Clone(sid)
	if r.empty() {
		return sh, nil
	}
	err := extensions(&r, func(typ uint16, data reader) error {
		sh.extensions = append(sh.extensions, typ)
		bad := fmt.Errorf("malformed extension %d", typ)
		switch typ {
		case extSupportedVersions:
			if !data.u16(&sh.selectedVersion) || !data.empty() {
				return bad
			}
		case extPreSharedKey:
			if !data.u16(&sh.pskIdentity) || !data.empty() {
				return bad
			}
			sh.pskSelected = true
		case extKeyShare:
			if !data.u16(&sh.keyShareGroup) {
				return bad
			}
			if !sh.hrr {
				var key reader
				if !data.lp16(&key) || key.empty() {
					return bad
				}
			}
			if !data.empty() {
				return bad
			}
			sh.keyShare = true
		case extALPN:
			var list, p reader
			if !data.lp16(&list) || !data.empty() || !list.lp8(&p) || p.empty() || !list.empty() {
				return bad
			}
			sh.alpn = string(p)
		case extSessionTicket:
			if !data.empty() {
				return bad
			}
			sh.ticketSupported = true
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return sh, nil
}

// negotiated returns the version the ServerHello selects.
func (sh *serverHello) negotiated() uint16 {
	if sh.selectedVersion != 0 {
		return sh.selectedVersion
	}
	return sh.version
}

// versionName names a protocol version as "TLS 1.2".
func versionName(v uint16) string {
	switch v {
	case 0x0300:
		return "SSL 3.0"
	case 0x0301:
		return "TLS 1.0"
	case 0x0302:
		return "TLS 1.1"
	case 0x0303:
		return "TLS 1.2"
	case 0x0304:
		return "TLS 1.3"
	}
	return fmt.Sprintf("0x%04x", v)
}

var alertNames = map[uint8]string{
	0: "close_notify", 10: "unexpected_message", 20: "bad_record_mac",
	21: "decryption_failed", 22: "record_overflow", 30: "decompression_failure",
	40: "handshake_failure", 41: "no_certificate", 42: "bad_certificate",
	43: "unsupported_certificate", 44: "certificate_revoked", 45: "certificate_expired",
	46: "certificate_unknown", 47: "illegal_parameter", 48: "unknown_ca",
	49: "access_denied", 50: "decode_error", 51: "decrypt_error",
	60: "export_restriction", 70: "protocol_version", 71: "insufficient_security",
	80: "internal_error", 86: "inappropriate_fallback", 90: "user_canceled",
	100: "no_renegotiation", 109: "missing_extension", 110: "unsupported_extension",
	111: "certificate_unobtainable", 112: "unrecognized_name",
	113: "bad_certificate_status_response", 114: "bad_certificate_hash_value",
	115: "unknown_psk_identity", 116: "certificate_required",
	120: "no_application_protocol", 121: "ech_required",
}

func alertName(d uint8) string {
	if n, ok := alertNames[d]; ok {
		return n
	}
	return fmt.Sprintf("unknown_%d", d)
}

// extensions walks an extensions block: its 2-byte length prefix, which
// must end r, then each extension's type and data in order, rejecting
// duplicates; fn sees each extension.
func extensions(r *reader, fn func(typ uint16, data reader) error) error {
	var exts reader
	if !r.lp16(&exts) || !r.empty() {
		return errMalformed
	}
	seen := map[uint16]bool{}
	for !exts.empty() {
		var typ uint16
		var data reader
		if !exts.u16(&typ) || !exts.lp16(&data) {
			return errMalformed
		}
		if seen[typ] {
			return fmt.Errorf("duplicate extension %d", typ)
		}
		seen[typ] = true
		if err := fn(typ, data); err != nil {
			return err
		}
	}
	return nil
}
