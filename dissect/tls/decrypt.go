package tls

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/hmac"
	"crypto/md5"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/binary"
	"errors"
	"hash"

	"golang.org/x/crypto/chacha20poly1305"
)

// cipherKind is how a suite protects records.
type cipherKind uint8

const (
	kindGCM cipherKind = iota + 1
	kindChaCha
	kindCBC
)

// suite holds what decryption needs to know about a cipher suite.
type suite struct {
	kind   cipherKind
	keyLen int
	// ivLen is the fixed IV length of the key block (TLS 1.2: 4 for GCM,
	// 12 for ChaCha20-Poly1305, 16 for CBC) or the TLS 1.3 IV length.
	ivLen int
	// mac is the record MAC hash of CBC suites.
	mac func() hash.Hash
	// hash is the PRF hash (TLS 1.2) or the HKDF hash (TLS 1.3).
	hash func() hash.Hash
}

var suites = map[uint16]suite{
	// TLS 1.3 (RFC 8446 B.4).
	0x1301: {kindGCM, 16, 12, nil, sha256.New},
	0x1302: {kindGCM, 32, 12, nil, sha512.New384},
	0x1303: {kindChaCha, 32, 12, nil, sha256.New},
	// TLS 1.2 AES-GCM (RFC 5288, RFC 5289).
	0x009c: {kindGCM, 16, 4, nil, sha256.New},
	0x009d: {kindGCM, 32, 4, nil, sha512.New384},
	0x009e: {kindGCM, 16, 4, nil, sha256.New},
	0x009f: {kindGCM, 32, 4, nil, sha512.New384},
	0xc02b: {kindGCM, 16, 4, nil, sha256.New},
	0xc02c: {kindGCM, 32, 4, nil, sha512.New384},
	0xc02f: {kindGCM, 16, 4, nil, sha256.New},
	0xc030: {kindGCM, 32, 4, nil, sha512.New384},
	// TLS 1.2 ChaCha20-Poly1305 (RFC 7905).
	0xcca8: {kindChaCha, 32, 12, nil, sha256.New},
	0xcca9: {kindChaCha, 32, 12, nil, sha256.New},
	0xccaa: {kindChaCha, 32, 12, nil, sha256.New},
	// CBC suites (RFC 5246, RFC 5289): the PRF hash applies to TLS 1.2
	// only; earlier versions use the MD5/SHA-1 PRF.
	0x002f: {kindCBC, 16, 16, sha1.New, sha256.New},
	0x0033: {kindCBC, 16, 16, sha1.New, sha256.New},
	0x0035: {kindCBC, 32, 16, sha1.New, sha256.New},
	0x0039: {kindCBC, 32, 16, sha1.New, sha256.New},
	0x003c: {kindCBC, 16, 16, sha256.New, sha256.New},
	0x003d: {kindCBC, 32, 16, sha256.New, sha256.New},
	0x0067: {kindCBC, 16, 16, sha256.New, sha256.New},
	0x006b: {kindCBC, 32, 16, sha256.New, sha256.New},
	0xc009: {kindCBC, 16, 16, sha1.New, sha256.New},
	0xc00a: {kindCBC, 32, 16, sha1.New, sha256.New},
	0xc013: {kindCBC, 16, 16, sha1.New, sha256.New},
	0xc014: {kindCBC, 32, 16, sha1.New, sha256.New},
	0xc023: {kindCBC, 16, 16, sha256.New, sha256.New},
	0xc024: {kindCBC, 32, 16, sha512.New384, sha512.New384},
	0xc027: {kindCBC, 16, 16, sha256.New, sha256.New},
	0xc028: {kindCBC, 32, 16, sha512.New384, sha512.New384},
}

func (s suite) macLen() int {
	if s.mac == nil {
		return 0
	}
	return s.mac().Size()
}

// Decryption failure causes.
var (
	errShort = errors.New("record too short")
	errAuth  = errors.New("record authentication failed")
)

// protector removes the protection of one direction's records under one
// set of keys.
type protector struct {
	s       suite
	tls13   bool
	version uint16 // record-layer version, TLS 1.2 and earlier
	aead    cipher.AEAD
	block   cipher.Block
	iv      []byte
	macKey  []byte
	mac     hash.Hash
	etm     bool // encrypt_then_mac (RFC 7366)
	early   bool // 0-RTT keys (client_early_traffic_secret)
	seq     uint64
	secret  []byte // TLS 1.3 traffic secret, for KeyUpdate
	nonce   [12]byte
	scratch [8 + 5]byte
}

func newAEAD(s suite, key []byte) (cipher.AEAD, error) {
	if s.kind == kindChaCha {
		return chacha20poly1305.New(key)
	}
	b, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	return cipher.NewGCM(b)
}

// hkdfExpandLabel is HKDF-Expand-Label of RFC 8446 section 7.1 with an
// empty context.
func hkdfExpandLabel(h func() hash.Hash, secret []byte, label string, n int) []byte {
	full := "tls13 " + label
	info := make([]byte, 0, 4+len(full))
	info = append(info, byte(n>>8), byte(n), byte(len(full)))
	info = append(info, full...)
	info = append(info, 0)
	out, err := hkdf.Expand(h, secret, string(info), n)
	if err != nil {
		// Only an impossible length makes Expand fail.
		panic("tls: HKDF-Expand-Label: " + err.Error())
	}
	return out
}

// newProtector13 returns the protector for a TLS 1.3 traffic secret.
func newProtector13(s suite, secret []byte) (*protector, error) {
	if len(secret) != s.hash().Size() {
		return nil, errors.New("secret length does not match the cipher suite's hash")
	}
	p := &protector{s: s, tls13: true, secret: secret}
	var err error
	p.aead, err = newAEAD(s, hkdfExpandLabel(s.hash, secret, "key", s.keyLen))
	if err != nil {
		return nil, err
	}
	p.iv = hkdfExpandLabel(s.hash, secret, "iv", 12)
	return p, nil
}

// next returns the protector after a KeyUpdate (RFC 8446 section 7.2).
func (p *protector) next() *protector {
	n, err := newProtector13(p.s, hkdfExpandLabel(p.s.hash, p.secret, "traffic upd", p.s.hash().Size()))
	if err != nil {
		return nil
	}
	return n
}

// prf12 is the TLS 1.2 PRF (RFC 5246 section 5) with hash h, or for
// versions before TLS 1.2 the MD5/SHA-1 PRF of RFC 2246 (h nil).
func prf12(h func() hash.Hash, secret []byte, label string, seed []byte, n int) []byte {
	ls := append([]byte(label), seed...)
	if h != nil {
		return pHash(h, secret, ls, n)
	}
	half := (len(secret) + 1) / 2
	a := pHash(md5.New, secret[:half], ls, n)
	b := pHash(sha1.New, secret[len(secret)-half:], ls, n)
	for i := range a {
		a[i] ^= b[i]
	}
	return a
}

func pHash(h func() hash.Hash, secret, seed []byte, n int) []byte {
	out := make([]byte, 0, n+64)
	m := hmac.New(h, secret)
	m.Write(seed)
	a := m.Sum(nil)
	for len(out) < n {
		m.Reset()
		m.Write(a)
		m.Write(seed)
		out = m.Sum(out)
		m.Reset()
		m.Write(a)
		a = m.Sum(a[:0])
	}
	return out[:n]
}

// keys12 derives the client and server protectors of a TLS 1.0-1.2
// session from its master secret (RFC 5246 section 6.3).
func keys12(s suite, version uint16, master, clientRandom, serverRandom []byte, etm bool) (client, server *protector, err error) {
	prfHash := s.hash
	if version < 0x0303 {
		prfHash = nil
	}
	macLen := s.macLen()
	seed := append(append([]byte(nil), serverRandom...), clientRandom...)
	kb := prf12(prfHash, master, "key expansion", seed, 2*(macLen+s.keyLen+s.ivLen))
	take := func(n int) []byte {
		b := kb[:n:n]
		kb = kb[n:]
		return b
	}
	cmac, smac := take(macLen), take(macLen)
	ckey, skey := take(s.keyLen), take(s.keyLen)
	civ, siv := take(s.ivLen), take(s.ivLen)
	mk := func(key, iv, mac []byte) (*protector, error) {
		p := &protector{s: s, version: version, iv: iv, macKey: mac, etm: etm && s.kind == kindCBC}
		var err error
		if s.kind == kindCBC {
			p.block, err = aes.NewCipher(key)
			p.mac = hmac.New(s.mac, mac)
		} else {
			p.aead, err = newAEAD(s, key)
		}
		return p, err
	}
	if client, err = mk(ckey, civ, cmac); err != nil {
		return nil, nil, err
	}
	server, err = mk(skey, siv, smac)
	return client, server, err
}

// open decrypts and authenticates one record in place: typ and payload
// are its header's content type and its body. It returns the plaintext
// (aliasing payload) and its content type (the inner type in TLS 1.3).
func (p *protector) open(typ uint8, payload []byte) ([]byte, uint8, error) {
	var b []byte
	var err error
	inner := typ
	switch {
	case p.tls13:
		b, inner, err = p.open13(payload)
	case p.s.kind == kindCBC:
		b, err = p.openCBC(typ, payload)
	default:
		b, err = p.openAEAD12(typ, payload)
	}
	if err == nil {
		p.seq++
	}
	return b, inner, err
}

func (p *protector) seqNonce() []byte {
	n := p.nonce[:12]
	copy(n, p.iv)
	var s [8]byte
	binary.BigEndian.PutUint64(s[:], p.seq)
	for i := range 8 {
		n[4+i] ^= s[i]
	}
	return n
}

func (p *protector) open13(payload []byte) ([]byte, uint8, error) {
	if len(payload) < p.aead.Overhead()+1 {
		return nil, 0, errShort
	}
	hdr := p.scratch[:5]
	hdr[0], hdr[1], hdr[2] = recordAppData, 3, 3
	binary.BigEndian.PutUint16(hdr[3:], uint16(len(payload)))
	// hdr is copied before payload is overwritten: Open reads the
	// additional data first, but p.scratch does not alias payload anyway.
	pt, err := p.aead.Open(payload[:0], p.seqNonce(), payload, hdr)
	if err != nil {
		return nil, 0, errAuth
	}
	// The inner plaintext ends with the content type then zero padding.
	i := len(pt) - 1
	for i >= 0 && pt[i] == 0 {
		i--
	}
	if i < 0 {
		return nil, 0, errAuth
	}
	return pt[:i], pt[i], nil
}

// additional builds the TLS 1.2 MAC/AEAD additional data.
func (p *protector) additional(typ uint8, n int) []byte {
	ad := p.scratch[:13]
	binary.BigEndian.PutUint64(ad, p.seq)
	ad[8] = typ
	binary.BigEndian.PutUint16(ad[9:], p.version)
	binary.BigEndian.PutUint16(ad[11:], uint16(n))
	return ad
}

func (p *protector) openAEAD12(typ uint8, payload []byte) ([]byte, error) {
	var nonce []byte
	if p.s.kind == kindGCM {
		if len(payload) < 8+p.aead.Overhead() {
			return nil, errShort
		}
		nonce = p.nonce[:12]
		copy(nonce, p.iv[:4])
		copy(nonce[4:], payload[:8])
		payload = payload[8:]
	} else {
		if len(payload) < p.aead.Overhead() {
			return nil, errShort
		}
		nonce = p.seqNonce()
	}
	ad := p.additional(typ, len(payload)-p.aead.Overhead())
	pt, err := p.aead.Open(payload[:0], nonce, payload, ad)
	if err != nil {
		return nil, errAuth
	}
	return pt, nil
}

func (p *protector) openCBC(typ uint8, payload []byte) ([]byte, error) {
	bs := p.block.BlockSize()
	macLen := p.mac.Size()
	var tag []byte
	if p.etm {
		if len(payload) < macLen {
			return nil, errShort
		}
		tag = payload[len(payload)-macLen:]
		payload = payload[:len(payload)-macLen]
		p.mac.Reset()
		p.mac.Write(p.additional(typ, len(payload)))
		p.mac.Write(payload)
		if !hmac.Equal(p.mac.Sum(nil), tag) {
			return nil, errAuth
		}
	}
	iv := p.iv
	if p.version >= 0x0302 {
		// TLS 1.1 and later: an explicit IV opens each record.
		if len(payload) < bs {
			return nil, errShort
		}
		iv, payload = payload[:bs], payload[bs:]
	}
	if len(payload) == 0 || len(payload)%bs != 0 {
		return nil, errShort
	}
	next := append([]byte(nil), payload[len(payload)-bs:]...)
	cipher.NewCBCDecrypter(p.block, iv).CryptBlocks(payload, payload)
	if p.version < 0x0302 {
		p.iv = next // TLS 1.0 chains the IV across records
	}
	pad := int(payload[len(payload)-1])
	if pad+1 > len(payload) {
		return nil, errAuth
	}
	for _, b := range payload[len(payload)-pad-1:] {
		if int(b) != pad {
			return nil, errAuth
		}
	}
	payload = payload[:len(payload)-pad-1]
	if p.etm {
		return payload, nil
	}
	if len(payload) < macLen {
		return nil, errAuth
	}
	pt, tag := payload[:len(payload)-macLen], payload[len(payload)-macLen:]
	p.mac.Reset()
	p.mac.Write(p.additional(typ, len(pt)))
	p.mac.Write(pt)
	if !hmac.Equal(p.mac.Sum(nil), tag) {
		return nil, errAuth
	}
	return pt, nil
}
