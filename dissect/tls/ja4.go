package tls

import (
	"crypto/md5"
	"crypto/sha256"
	"encoding/hex"
	"slices"
	"strconv"
)

// Client fingerprints computed from a ClientHello:
//
//   - JA4, the TLS client fingerprint of FoxIO's JA4+ suite
//     (github.com/FoxIO-LLC/ja4, technical_details/JA4.md), for TLS over
//     TCP;
//   - JA3 (github.com/salesforce/ja3), with GREASE values left out as the
//     reference scripts and Wireshark do.
//
// Both run once per connection and allocate only the returned strings
// and a few small scratch slices.

// isGREASE reports whether v is one of the 16 GREASE code points of
// RFC 8701 §2 (0x0a0a, 0x1a1a, …, 0xfafa), which both fingerprints ignore
// wherever they appear.
func isGREASE(v uint16) bool {
	return v&0x0f0f == 0x0a0a && v>>8 == v&0xff
}

// ja4 returns the JA4 fingerprint of ch for TLS over TCP, such as
// "t13d1516h2_8daaf6152771_e5627efa2ab1":
//
//   - "t", then the version: the highest non-GREASE supported_versions
//     entry, else the legacy version, as "13" … "10", "s3", "s2", or "00"
//     when unknown;
//   - "d" when a server_name extension is present, else "i";
//   - the counts of non-GREASE cipher suites and of non-GREASE extensions
//     (server_name and ALPN included), two decimal digits each, capped at
//     99;
//   - the first and last characters of the first ALPN protocol, or of its
//     hex form when either end is not an ASCII letter or digit; "00"
//     without ALPN;
//   - "_", the first 12 hex digits of the SHA-256 of the sorted cipher
//     suites as comma-separated 4-digit lower-case hex;
//   - "_", likewise of the sorted extensions without server_name (0x0000)
//     and ALPN (0x0010), followed, when there are any, by "_" and the
//     signature algorithms in their original order.
//
// GREASE values are left out everywhere, signature algorithms included. An
// empty list hashes to "000000000000".
func (ch *clientHello) ja4() string {
	ciphers := withoutGREASE(ch.cipherSuites, nil)
	var exts []uint16
	sni := byte('i')
	nExt := 0
	for _, e := range ch.extensions {
		if isGREASE(e) {
			continue
		}
		nExt++
		switch e {
		case extServerName:
			sni = 'd'
		case extALPN:
		default:
			exts = append(exts, e)
		}
	}
	slices.Sort(ciphers)
	slices.Sort(exts)

	b := make([]byte, 0, len("t13d1516h2_8daaf6152771_e5627efa2ab1"))
	b = append(b, 't')
	b = append(b, ja4Version(ch.ja4VersionNumber())...)
	b = append(b, sni)
	b = appendCount(b, len(ciphers))
	b = appendCount(b, nExt)
	b = appendALPN(b, ch.alpn)
	b = append(b, '_')
	b = appendHash12(b, hexList(nil, ciphers))
	b = append(b, '_')
	var c []byte
	if len(exts) > 0 {
		c = hexList(nil, exts)
		if sigs := withoutGREASE(ch.sigAlgs, nil); len(sigs) > 0 {
			c = append(c, '_')
			c = hexList(c, sigs)
		}
	}
	b = appendHash12(b, c)
	return string(b)
}

// ja4VersionNumber returns the version JA4 reports: the highest
// non-GREASE supported_versions entry, or the legacy ClientHello version
// when there is none.
func (ch *clientHello) ja4VersionNumber() uint16 {
	var v uint16
	for _, sv := range ch.supportedVersions {
		if !isGREASE(sv) && sv > v {
			v = sv
		}
	}
	if v == 0 {
		v = ch.version
	}
	return v
}

// ja4Version returns the two-character JA4 code of protocol version v.
func ja4Version(v uint16) string {
	switch v {
	case 0x0304:
		return "13"
	case 0x0303:
		return "12"
	case 0x0302:
		return "11"
	case 0x0301:
		return "10"
	case 0x0300:
		return "s3"
	case 0x0002:
		return "s2"
	case 0xfeff:
		return "d1"
	case 0xfefd:
		return "d2"
	case 0xfefc:
		return "d3"
	}
	return "00"
}

// appendCount appends n as two decimal digits, capped at 99.
func appendCount(b []byte, n int) []byte {
	n = min(n, 99)
	return append(b, byte('0'+n/10), byte('0'+n%10))
}

const hexDigits = "0123456789abcdef"

// appendALPN appends JA4's two ALPN characters for the first protocol of
// alpn.
func appendALPN(b []byte, alpn []string) []byte {
	if len(alpn) == 0 || alpn[0] == "" {
		return append(b, '0', '0')
	}
	p := alpn[0]
	first, last := p[0], p[len(p)-1]
	if isAlnum(first) && isAlnum(last) {
		return append(b, first, last)
	}
	// The first and last digits of the protocol's hex form.
	return append(b, hexDigits[first>>4], hexDigits[last&0xf])
}

func isAlnum(c byte) bool {
	return '0' <= c && c <= '9' || 'A' <= c && c <= 'Z' || 'a' <= c && c <= 'z'
}

// hexList appends vs as comma-separated 4-digit lower-case hex.
func hexList(b []byte, vs []uint16) []byte {
	for i, v := range vs {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, hexDigits[v>>12], hexDigits[v>>8&0xf], hexDigits[v>>4&0xf], hexDigits[v&0xf])
	}
	return b
}

// appendHash12 appends the first 12 hex digits of the SHA-256 of s, or
// "000000000000" when s is empty.
func appendHash12(b, s []byte) []byte {
	if len(s) == 0 {
		return append(b, "000000000000"...)
	}
	sum := sha256.Sum256(s)
	return hex.AppendEncode(b, sum[:6])
}

// withoutGREASE appends the non-GREASE values of vs to dst.
func withoutGREASE(vs, dst []uint16) []uint16 {
	for _, v := range vs {
		if !isGREASE(v) {
			dst = append(dst, v)
		}
	}
	return dst
}

// ja3 returns the JA3 string of ch,
// "SSLVersion,Ciphers,Extensions,EllipticCurves,EllipticCurvePointFormats"
// (the legacy ClientHello version, the cipher suites, the extension types
// in wire order, supported_groups and ec_point_formats, each as decimal
// values joined by "-", a field empty when its list is), and the
// lower-case hex MD5 of that string. GREASE values are left out of every
// list.
func (ch *clientHello) ja3() (text, md5hex string) {
	b := make([]byte, 0, 256)
	b = strconv.AppendUint(b, uint64(ch.version), 10)
	b = append(b, ',')
	b = decList(b, ch.cipherSuites)
	b = append(b, ',')
	b = decList(b, ch.extensions)
	b = append(b, ',')
	b = decList(b, ch.supportedGroups)
	b = append(b, ',')
	for i, f := range ch.pointFormats {
		if i > 0 {
			b = append(b, '-')
		}
		b = strconv.AppendUint(b, uint64(f), 10)
	}
	sum := md5.Sum(b)
	return string(b), hex.EncodeToString(sum[:])
}

// decList appends the non-GREASE values of vs in decimal, joined by "-".
func decList(b []byte, vs []uint16) []byte {
	sep := false
	for _, v := range vs {
		if isGREASE(v) {
			continue
		}
		if sep {
			b = append(b, '-')
		}
		sep = true
		b = strconv.AppendUint(b, uint64(v), 10)
	}
	return b
}
