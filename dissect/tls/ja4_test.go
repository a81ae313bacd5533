package tls

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/h2scope/h2scope/dissect/capture"
	"github.com/h2scope/h2scope/dissect/event"
	"github.com/h2scope/h2scope/dissect/layer"
	"github.com/h2scope/h2scope/dissect/tcp"
)

// specHello is the ClientHello of the worked example in FoxIO-LLC/ja4
// technical_details/JA4.md (commit d8f731ce0f194896f03261f333040cd8a80a2345),
// "Example" and "Raw Output", with GREASE values added in every list JA4
// reads; they must not change the result.
func specHello() *clientHello {
	return &clientHello{
		version: 0x0303,
		cipherSuites: []uint16{0x2a2a, 0x1301, 0x1302, 0x1303, 0xc02b, 0xc02f, 0xc02c, 0xc030,
			0xcca9, 0xcca8, 0xc013, 0xc014, 0x009c, 0x009d, 0x002f, 0x0035},
		extensions: []uint16{0xdada, 0x001b, 0x0000, 0x0033, 0x0010, 0x4469, 0x0017, 0x002d,
			0x000d, 0x0005, 0x0023, 0x0012, 0x002b, 0xff01, 0x000b, 0x000a, 0x0015, 0x3a3a},
		sni:               "example.com",
		alpn:              []string{"h2", "http/1.1"},
		supportedVersions: []uint16{0x8a8a, 0x0304, 0x0303},
		sigAlgs:           []uint16{0x0403, 0x0804, 0x0401, 0x0503, 0x0805, 0x0501, 0x0806, 0x0601},
	}
}

// TestJA4_Spec checks the worked examples of JA4.md: the full fingerprint,
// and the extension hash without signature algorithms ("ends without an
// underscore": 6d807ffa2a79).
func TestJA4_Spec(t *testing.T) {
	if got, want := specHello().ja4(), "t13d1516h2_8daaf6152771_e5627efa2ab1"; got != want {
		t.Errorf("ja4 = %s, want %s", got, want)
	}
	ch := specHello()
	ch.sigAlgs = nil
	if got, want := ch.ja4(), "t13d1516h2_8daaf6152771_6d807ffa2a79"; got != want {
		t.Errorf("ja4 without signature algorithms = %s, want %s", got, want)
	}
	// GREASE in signature_algorithms is ignored too (RFC 8701 §3.1 allows
	// it; FoxIO-LLC/ja4 issue #305).
	ch = specHello()
	ch.sigAlgs = append([]uint16{0xfafa}, ch.sigAlgs...)
	if got, want := ch.ja4(), "t13d1516h2_8daaf6152771_e5627efa2ab1"; got != want {
		t.Errorf("ja4 with GREASE signature algorithm = %s, want %s", got, want)
	}
}

// TestJA4_Rules checks each rule of JA4.md on variations of the spec
// example. Only the parts named are compared; the cipher and extension
// hashes of the example are 8daaf6152771 and e5627efa2ab1.
func TestJA4_Rules(t *testing.T) {
	many := make([]uint16, 120)
	for i := range many {
		many[i] = uint16(0x0100 + i)
	}
	tests := []struct {
		name  string
		edit  func(ch *clientHello)
		wantA string // the part before the first '_'
		wantB string // the cipher hash; "" to skip
		wantC string // the extension hash; "" to skip
	}{
		{name: "example", edit: func(*clientHello) {}, wantA: "t13d1516h2", wantB: "8daaf6152771", wantC: "e5627efa2ab1"},
		// SNI: the extension's presence decides, not the name.
		{name: "no SNI", edit: func(ch *clientHello) {
			ch.extensions = remove(ch.extensions, extServerName)
			ch.sni = ""
		}, wantA: "t13i1515h2", wantB: "8daaf6152771", wantC: "e5627efa2ab1"},
		{name: "no ALPN", edit: func(ch *clientHello) {
			ch.extensions = remove(ch.extensions, extALPN)
			ch.alpn = nil
		}, wantA: "t13d151500", wantC: "e5627efa2ab1"},
		{name: "ALPN http/1.1", edit: func(ch *clientHello) { ch.alpn = []string{"http/1.1", "h2"} }, wantA: "t13d1516h1"},
		{name: "ALPN one character", edit: func(ch *clientHello) { ch.alpn = []string{"x"} }, wantA: "t13d1516xx"},
		// The hex examples of JA4.md "ALPN Extension Value".
		{name: "ALPN 0xab", edit: func(ch *clientHello) { ch.alpn = []string{"\xab"} }, wantA: "t13d1516ab"},
		{name: "ALPN 0xab 0xcd", edit: func(ch *clientHello) { ch.alpn = []string{"\xab\xcd"} }, wantA: "t13d1516ad"},
		{name: "ALPN 0x30 0xab", edit: func(ch *clientHello) { ch.alpn = []string{"0\xab"} }, wantA: "t13d15163b"},
		{name: "ALPN 0x30 0x31 0xab 0xcd", edit: func(ch *clientHello) { ch.alpn = []string{"01\xab\xcd"} }, wantA: "t13d15163d"},
		{name: "ALPN 0x30 0xab 0xcd 0x31", edit: func(ch *clientHello) { ch.alpn = []string{"0\xab\xcd1"} }, wantA: "t13d151601"},
		{name: "ALPN punctuation", edit: func(ch *clientHello) { ch.alpn = []string{"-h2"} }, wantA: "t13d151622"},
		// Version: supported_versions, highest non-GREASE, whatever its
		// order; else the legacy version.
		{name: "supported_versions unordered", edit: func(ch *clientHello) {
			ch.supportedVersions = []uint16{0x0303, 0xfafa, 0x0304, 0x0302}
		}, wantA: "t13d1516h2"},
		{name: "legacy TLS 1.2", edit: func(ch *clientHello) {
			ch.extensions = remove(ch.extensions, extSupportedVersions)
			ch.supportedVersions = nil
		}, wantA: "t12d1515h2"},
		{name: "legacy TLS 1.0", edit: func(ch *clientHello) { ch.version, ch.supportedVersions = 0x0301, nil }, wantA: "t10d1516h2"},
		{name: "legacy TLS 1.1", edit: func(ch *clientHello) { ch.version, ch.supportedVersions = 0x0302, nil }, wantA: "t11d1516h2"},
		{name: "SSL 3.0", edit: func(ch *clientHello) { ch.version, ch.supportedVersions = 0x0300, nil }, wantA: "ts3d1516h2"},
		{name: "SSL 2.0", edit: func(ch *clientHello) { ch.version, ch.supportedVersions = 0x0002, nil }, wantA: "ts2d1516h2"},
		{name: "unknown version", edit: func(ch *clientHello) { ch.supportedVersions = []uint16{0x7f1c} }, wantA: "t00d1516h2"},
		{name: "supported_versions only GREASE", edit: func(ch *clientHello) { ch.supportedVersions = []uint16{0x0a0a} }, wantA: "t12d1516h2"},
		// Counts are capped at 99 and ignore GREASE only.
		{name: "120 ciphers", edit: func(ch *clientHello) { ch.cipherSuites = many }, wantA: "t13d9916h2"},
		{name: "120 extensions", edit: func(ch *clientHello) { ch.extensions = append(ch.extensions, many...) }, wantA: "t13d1599h2"},
		{name: "near-GREASE values count", edit: func(ch *clientHello) {
			ch.cipherSuites = append(ch.cipherSuites, 0x1a2a, 0x0a0b)
		}, wantA: "t13d1716h2"},
		// Empty lists hash to twelve zeros.
		{name: "only GREASE ciphers", edit: func(ch *clientHello) { ch.cipherSuites = []uint16{0x0a0a, 0x1a1a} }, wantA: "t13d0016h2", wantB: "000000000000"},
		{name: "no extensions", edit: func(ch *clientHello) {
			ch.extensions, ch.sni, ch.alpn, ch.supportedVersions, ch.sigAlgs = nil, "", nil, nil, nil
		}, wantA: "t12i150000", wantB: "8daaf6152771", wantC: "000000000000"},
		{name: "only SNI and ALPN", edit: func(ch *clientHello) {
			ch.extensions, ch.supportedVersions, ch.sigAlgs = []uint16{0x0000, 0x0010}, nil, nil
		}, wantA: "t12d1502h2", wantC: "000000000000"},
		// Sorting: cipher and extension order do not matter.
		{name: "reordered", edit: func(ch *clientHello) {
			slicesReverse(ch.cipherSuites)
			slicesReverse(ch.extensions)
		}, wantA: "t13d1516h2", wantB: "8daaf6152771", wantC: "e5627efa2ab1"},
		// Signature algorithm order does.
		{name: "sigalgs reordered", edit: func(ch *clientHello) { slicesReverse(ch.sigAlgs) }, wantA: "t13d1516h2", wantB: "8daaf6152771"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ch := specHello()
			tt.edit(ch)
			got := ch.ja4()
			parts := strings.Split(got, "_")
			if len(parts) != 3 || len(got) != 36 {
				t.Fatalf("ja4 = %q: not a_b_c of 10, 12 and 12 characters", got)
			}
			if parts[0] != tt.wantA || tt.wantB != "" && parts[1] != tt.wantB || tt.wantC != "" && parts[2] != tt.wantC {
				t.Errorf("ja4 = %s, want %s_%s_%s", got, tt.wantA, or(tt.wantB, "*"), or(tt.wantC, "*"))
			}
			if tt.name == "sigalgs reordered" && parts[2] == "e5627efa2ab1" {
				t.Errorf("ja4 = %s: signature algorithms were sorted", got)
			}
		})
	}
}

func remove(vs []uint16, v uint16) []uint16 {
	var out []uint16
	for _, x := range vs {
		if x != v {
			out = append(out, x)
		}
	}
	return out
}

func slicesReverse(vs []uint16) {
	for i, j := 0, len(vs)-1; i < j; i, j = i+1, j-1 {
		vs[i], vs[j] = vs[j], vs[i]
	}
}

func or(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

func TestIsGREASE(t *testing.T) {
	n := 0
	for v := 0; v <= 0xffff; v++ {
		if isGREASE(uint16(v)) {
			n++
			if v>>8 != v&0xff || v&0x0f != 0x0a {
				t.Errorf("isGREASE(%#04x)", v)
			}
		}
	}
	if n != 16 {
		t.Errorf("%d GREASE values, want 16", n)
	}
}

// TestJA3_Spec checks the two examples of the salesforce/ja3 README
// (commit c21b7e063e97b62f7cde34489608828bfa3a39c8), the first again with
// GREASE values added, which JA3 ignores.
func TestJA3_Spec(t *testing.T) {
	tests := []struct {
		name     string
		ch       clientHello
		wantText string
		wantMD5  string
	}{
		{
			name: "README example",
			ch: clientHello{
				version:         769,
				cipherSuites:    []uint16{47, 53, 5, 10, 49161, 49162, 49171, 49172, 50, 56, 19, 4},
				extensions:      []uint16{0, 10, 11},
				supportedGroups: []uint16{23, 24, 25},
				pointFormats:    []uint8{0},
			},
			wantText: "769,47-53-5-10-49161-49162-49171-49172-50-56-19-4,0-10-11,23-24-25,0",
			wantMD5:  "ada70206e40642a3e4461f35503241d5",
		},
		{
			name: "README example with GREASE",
			ch: clientHello{
				version:         769,
				cipherSuites:    []uint16{0x0a0a, 47, 53, 5, 10, 49161, 49162, 49171, 49172, 50, 56, 19, 4},
				extensions:      []uint16{0xfafa, 0, 10, 0x1a1a, 11},
				supportedGroups: []uint16{0x4a4a, 23, 24, 25},
				pointFormats:    []uint8{0},
			},
			wantText: "769,47-53-5-10-49161-49162-49171-49172-50-56-19-4,0-10-11,23-24-25,0",
			wantMD5:  "ada70206e40642a3e4461f35503241d5",
		},
		{
			name: "README example without extensions",
			ch: clientHello{
				version:      769,
				cipherSuites: []uint16{4, 5, 10, 9, 100, 98, 3, 6, 19, 18, 99},
			},
			wantText: "769,4-5-10-9-100-98-3-6-19-18-99,,,",
			wantMD5:  "de350869b8c85de67a350c8d186f11e6",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			text, sum := tt.ch.ja3()
			if text != tt.wantText || sum != tt.wantMD5 {
				t.Errorf("ja3 = %q %s, want %q %s", text, sum, tt.wantText, tt.wantMD5)
			}
		})
	}
}

// TestECPointFormats checks that parseClientHello records ec_point_formats
// for JA3 and, as before it did, accepts a malformed one.
func TestECPointFormats(t *testing.T) {
	hello := func(ext ...byte) []byte {
		b := []byte{3, 3}
		b = append(b, make([]byte, 32)...)
		b = append(b, 0, 0, 2, 0x13, 0x01, 1, 0) // session ID, ciphers, compression
		b = append(b, 0, byte(4+len(ext)), 0, 11, 0, byte(len(ext)))
		return append(b, ext...)
	}
	tests := []struct {
		name string
		ext  []byte
		want []uint8
	}{
		{"uncompressed", []byte{1, 0}, []uint8{0}},
		{"three", []byte{3, 0, 1, 2}, []uint8{0, 1, 2}},
		{"empty list", []byte{0}, nil},
		{"short", []byte{2, 0}, nil},
		{"trailing", []byte{1, 0, 0}, nil},
		{"no data", nil, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ch, err := parseClientHello(hello(tt.ext...))
			if err != nil {
				t.Fatalf("parseClientHello: %v", err)
			}
			if !bytes.Equal(ch.pointFormats, tt.want) {
				t.Errorf("pointFormats = %v, want %v", ch.pointFormats, tt.want)
			}
		})
	}
}

// TestJA4_GoClient fingerprints crypto/tls's own ClientHello: it must
// parse, and its JA4 must have the shape Go's defaults give (TLS 1.3, SNI,
// ALPN h2).
func TestJA4_GoClient(t *testing.T) {
	ch, err := parseClientHello(firstClientHello(t))
	if err != nil {
		t.Fatal(err)
	}
	got := ch.ja4()
	if !strings.HasPrefix(got, "t13d") || got[8:10] != "h2" || len(got) != 36 {
		t.Errorf("ja4 = %s, want t13d….h2_…", got)
	}
	if text, _ := ch.ja3(); !strings.HasPrefix(text, "771,") || strings.Count(text, ",") != 4 {
		t.Errorf("ja3 = %s", text)
	}
}

// corpusRoot is the shared capture corpus, $H2SCOPE_CORPUS or
// ../../../shared/corpus; tests over it skip when it is absent.
func corpusRoot(t *testing.T) string {
	t.Helper()
	dir := os.Getenv("H2SCOPE_CORPUS")
	if dir == "" {
		dir = "../../../shared/corpus"
	}
	if st, err := os.Stat(filepath.Join(dir, "ja4")); err != nil || !st.IsDir() {
		t.Skipf("shared corpus not found at %s/ja4 (set H2SCOPE_CORPUS): skipping", dir)
	}
	return dir
}

// chrome is the JA4 of the Chrome build in most of these captures.
const chrome = "t13d1516h2_8daaf6152771_e5627efa2ab1"

// ja4Corpus lists the first ClientHello of every TCP connection of the
// FoxIO-LLC/ja4 test captures, copied to the shared corpus under ja4/, by
// client port. The JA4 values are FoxIO's, from the Rust implementation's
// snapshots rust/ja4/src/snapshots/ja4__insta@FILE.snap (tls-handshake at
// commit fe727a5aa707b8e870d2f89ef7afac7229170a36, the others at
// 10ee511b7b6da7921812da4bf91751ef3c55b0fc). The JA3 hashes are tshark
// 4.0.17's tls.handshake.ja3:
//
//	tshark -r FILE -Y 'tls.handshake.type==1 && tcp' -T fields -e tcp.srcport -e tls.handshake.ja3
var ja4Corpus = []struct {
	file string
	port uint16
	ja4  string
	ja3  string
}{
	// tls-handshake.pcapng
	{"tls-handshake", 50112, chrome, "1c258ebef8eee2dfa3df6d8d07285af9"},
	{"tls-handshake", 50113, chrome, "ad2a7e01e9f29003049caf16aff3bb3f"},
	{"tls-handshake", 50114, chrome, "c000e2caf3a25423f9de6c8a4b12a975"},
	{"tls-handshake", 50115, chrome, "1bccb2b91a10b95869211da3ffb9f9b9"},
	{"tls-handshake", 50116, chrome, "13f182bd0d6a75502b8257b9b67903c8"},
	{"tls-handshake", 50122, "t13d1516h1_8daaf6152771_e5627efa2ab1", "bee6dc22161d532d945e0daa64213c43"},
	{"tls-handshake", 50123, "t13d151400_8daaf6152771_de4a06bb82e3", "bfc66ad4d55e0c1a1847863d4d5c301a"},
	{"tls-handshake", 50126, chrome, "7dd92d64e5330b38759b11d06eec847e"},
	{"tls-handshake", 50127, chrome, "3088beaba10fa4a8eaa1104c5f465a04"},
	{"tls-handshake", 50128, chrome, "fb06bb7a2ea3835f46267ee89f36a53f"},
	{"tls-handshake", 50130, chrome, "62b07341a153169e8d682fd2e43e7238"},
	{"tls-handshake", 50131, chrome, "84b48bf0e11a394c6fc8a7050a0d6d3f"},
	{"tls-handshake", 50134, chrome, "52e722ea7b866770bb2b6a0b72b79933"},
	{"tls-handshake", 50132, chrome, "ac99a5fc150fbc98748b1a0fff226c3a"},
	{"tls-handshake", 50135, chrome, "dc7c9a852aff8a28133c946221507c46"},
	{"tls-handshake", 50133, chrome, "9cc996a23d3a45b4c765792677276beb"},
	{"tls-handshake", 50136, chrome, "0ea7623a5c244ff2cc5c11ac116df3e1"},
	{"tls-handshake", 50137, chrome, "2eeeb92882a8854bc1b9358b01a86a5d"},
	{"tls-handshake", 50139, chrome, "fa6d27053e6ddb1c4de7007d9911ae49"},
	{"tls-handshake", 50140, "t13d1516h1_8daaf6152771_e5627efa2ab1", "63143140411df79bf05f2067ab8df018"},
	{"tls-handshake", 50142, chrome, "d2cf7159b7fe3a887da5137439d0c5d1"},
	{"tls-handshake", 50141, chrome, "a448b57700a789a0b953b354d72e9193"},
	{"tls-handshake", 50143, chrome, "a51e9e386da6c70a01ea147663aad14d"},
	{"tls-handshake", 50145, chrome, "fae0cf9e62c06eb84f44fefb835970ab"},
	{"tls-handshake", 50146, chrome, "77050fe01f9a0f476a42e1f939d94be4"},
	{"tls-handshake", 50144, chrome, "6c12488d6320cffa4d37382d01e17374"},
	{"tls-handshake", 50147, chrome, "52f8d29cc9d011facd705db0e88a9ac9"},
	{"tls-handshake", 50148, chrome, "c8dbd36861796d33a8cbe8cc52f0dfbe"},
	{"tls-handshake", 50149, chrome, "586c5d4a9863ba55ffa25866552f25ec"},
	{"tls-handshake", 50151, chrome, "d70132d118b235374665dc79a4aab8c5"},
	{"tls-handshake", 50152, "t13d1516h1_8daaf6152771_e5627efa2ab1", "1b47ffd92968605ba9d0d891156ef032"},
	{"tls-handshake", 50153, "t13d1517h1_8daaf6152771_6cdcb247c39b", "e2ce5351e791ab3c3f63764919302aca"},
	{"tls-handshake", 50155, chrome, "552250b1ea3cbe7be605d3d641c74e18"},
	{"tls-handshake", 50157, chrome, "913f7e7be85f056507d225af7cd0ae39"},
	{"tls-handshake", 50158, chrome, "e24f9177e54dde01a6d95ca564d79eb8"},
	{"tls-handshake", 50160, chrome, "61b95e2e1a7761e2abd0a9bb9e33e389"},
	{"tls-handshake", 50162, chrome, "724e372a0730e4d18085485dbbfe0f65"},
	{"tls-handshake", 50161, chrome, "052f6a94d04216433441a50dd74f1203"},
	{"tls-handshake", 50159, chrome, "9e7fd085859af4550bd92586d02652e2"},
	{"tls-handshake", 50163, chrome, "78b83b118db3e5b7f07f89175df5130a"},
	{"tls-handshake", 50164, chrome, "1999e4c17bc59eb46abc0b321115db8c"},
	{"tls-handshake", 50165, chrome, "a344a44961275e65e50908ff6f17371d"},
	{"tls-handshake", 50166, chrome, "46fff60c1cb3cbf6314d3b7111296d9f"},
	{"tls-handshake", 50167, chrome, "d7e73d2ab5bbdc5a19b9f15412bf507e"},
	{"tls-handshake", 50168, chrome, "3eef31606882511b3f957414e52506ef"},
	{"tls-handshake", 50169, chrome, "222e07daddc89ed3b29aec7bf63ddd76"},
	{"tls-handshake", 50170, chrome, "917e934708c794f723490fad58d35fc7"},
	{"tls-handshake", 50172, chrome, "5f788144dcfe9e3b9d69cc7ba2854180"},
	{"tls-handshake", 50175, chrome, "aefb0f2cef6c88cad5a472f4e513cd84"},
	{"tls-handshake", 50174, chrome, "9dadc9d52e0e4eee453750463764f59c"},
	{"tls-handshake", 50177, chrome, "2125b4896a1c295e6690e9af76ebc3f0"},
	{"tls-handshake", 50176, chrome, "34d2d4dab52e80b6ff1f5cb26e3afb6b"},
	{"tls-handshake", 50178, chrome, "341609e1d4f669221b17438bd7da537c"},
	{"tls-handshake", 50180, chrome, "86a50f1baca0ab27f25a27d5f4d6f6ad"},
	{"tls-handshake", 50182, chrome, "96294acde0e2f8652c7ee75abeba5ae0"},
	{"tls-handshake", 50181, chrome, "fb5defd89c6171461f982280079d28ea"},
	{"tls-handshake", 50179, chrome, "ac14aa13ce497291a69a8683b33e14ab"},
	{"tls-handshake", 50183, chrome, "e8baa5510e25a97dd331b373c88a3f9f"},
	{"tls-handshake", 50184, chrome, "83d028d5b4366d9ac26e9ea6424d793e"},
	// latest.pcapng: port 52937 is a TLS 1.2-only client without ALPN.
	{"latest", 52936, chrome, "8883b2acda8ceb1a4f416c16d9b6c42f"},
	{"latest", 52937, "t12d190800_d83cc789557e_7af1ed941c26", "a0e9f5d64349fb13191bc781f81f42e1"},
	{"latest", 52938, "t13d1516h2_8daaf6152771_9b887d9acb53", "d81fcba3f82df97ae9971d938da5caa6"},
	{"latest", 52940, chrome, "2adc50eda4c71832c5aa9062850e0180"},
	{"latest", 52941, chrome, "ce7b86965aaa85032ad3da178bf354d9"},
	// tls3.pcapng (its QUIC connections are not fingerprinted here)
	{"tls3", 63248, chrome, "b4c783785c9d8ca60b7713f36e48c407"},
	{"tls3", 63252, "t13d1516h2_8daaf6152771_9b887d9acb53", "4c1f65b9802b2736a09026e141c24104"},
	{"tls3", 63251, "t13d1516h2_8daaf6152771_9b887d9acb53", "1cf970df8829a2bf8123498777677b95"},
	{"tls3", 63250, "t13d1516h2_8daaf6152771_9b887d9acb53", "92ae070786af3064544724ce44703477"},
	{"tls3", 63254, chrome, "b451195a86a8fad3801fb7782d4f1e46"},
	{"tls3", 63255, chrome, "c87068dcaff600cab34e0d667e0b2355"},
	{"tls3", 63253, chrome, "b99319fc585892b70289faa816d76fe9"},
	// browsers-x509.pcapng
	{"browsers-x509", 54524, chrome, "34fcb8e0ef812f18e760b52314a54fd0"},
	{"browsers-x509", 54525, chrome, "6c320c139f0efe4d20c19f81dc01bbd8"},
	{"browsers-x509", 54603, chrome, "7ceefd5eac15d9ed26735e1267acf4e7"},
	// http2-with-cookies.pcapng
	{"http2-with-cookies", 58847, chrome, "30362dc08b66392ffc0fd6d6e9e77ed9"},
}

// TestJA4_Corpus fingerprints the first ClientHello of every connection
// of the FoxIO test captures and compares with ja4Corpus: every listed
// connection must be found with the listed JA4 and JA3, and every
// connection with a ClientHello must be listed.
func TestJA4_Corpus(t *testing.T) {
	root := corpusRoot(t)
	byFile := map[string]map[uint16]int{}
	for i, c := range ja4Corpus {
		if byFile[c.file] == nil {
			byFile[c.file] = map[uint16]int{}
		}
		byFile[c.file][c.port] = i
	}
	matched := 0
	for file, want := range byFile {
		conns := clientHellos(t, filepath.Join(root, "ja4", file+".pcapng"))
		seen := map[uint16]bool{}
		for _, c := range conns {
			if len(c.hellos) == 0 {
				continue
			}
			i, ok := want[c.client.Port()]
			if !ok {
				t.Errorf("%s: connection from %v has a ClientHello but is not listed", file, c.client)
				continue
			}
			seen[c.client.Port()] = true
			ch, err := parseClientHello(c.hellos[0])
			if err != nil {
				t.Errorf("%s %v: parseClientHello: %v", file, c.client, err)
				continue
			}
			w := ja4Corpus[i]
			_, ja3 := ch.ja3()
			if got := ch.ja4(); got != w.ja4 || ja3 != w.ja3 {
				t.Errorf("%s %v: ja4 %s ja3 %s, want %s %s", file, c.client, got, ja3, w.ja4, w.ja3)
				continue
			}
			matched++
		}
		for port := range want {
			if !seen[port] {
				t.Errorf("%s: no ClientHello from port %d", file, port)
			}
		}
	}
	t.Logf("%d of %d ClientHellos match", matched, len(ja4Corpus))
}

// TestJA3_Tshark compares the JA3 string and hash of every ClientHello in
// the FoxIO captures, second ClientHellos after a HelloRetryRequest
// included, with tshark's tls.handshake.ja3_full and tls.handshake.ja3.
func TestJA3_Tshark(t *testing.T) {
	root := corpusRoot(t)
	if _, err := exec.LookPath("tshark"); err != nil {
		t.Skip("tshark not found")
	}
	total := 0
	for _, file := range []string{"tls-handshake", "latest", "tls3", "browsers-x509", "http2-with-cookies"} {
		path := filepath.Join(root, "ja4", file+".pcapng")
		out, err := exec.Command("tshark", "-r", path, "-Y", "tls.handshake.type==1 && tcp",
			"-T", "fields", "-E", "separator=/t", "-e", "tcp.srcport", "-e", "tls.handshake.ja3_full", "-e", "tls.handshake.ja3").Output()
		if err != nil {
			t.Fatalf("tshark %s: %v", file, err)
		}
		want := map[uint16][]string{}
		for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
			f := strings.Split(line, "\t")
			var port uint16
			if len(f) != 3 {
				t.Fatalf("tshark line %q", line)
			}
			fmt.Sscan(f[0], &port)
			want[port] = append(want[port], f[1]+" "+f[2])
		}
		got := map[uint16][]string{}
		for _, c := range clientHellos(t, path) {
			for _, body := range c.hellos {
				ch, err := parseClientHello(body)
				if err != nil {
					t.Errorf("%s %v: parseClientHello: %v", file, c.client, err)
					continue
				}
				text, sum := ch.ja3()
				got[c.client.Port()] = append(got[c.client.Port()], text+" "+sum)
			}
		}
		for port, w := range want {
			total += len(w)
			if g := got[port]; strings.Join(g, "\n") != strings.Join(w, "\n") {
				t.Errorf("%s port %d:\n got %q\nwant %q", file, port, g, w)
			}
		}
		for port := range got {
			if want[port] == nil {
				t.Errorf("%s port %d: ClientHello tshark does not see", file, port)
			}
		}
	}
	t.Logf("%d ClientHellos compared", total)
}

// helloConn is one TCP connection of a capture and the bodies of the
// ClientHello messages its client sent.
type helloConn struct {
	client netip.AddrPort
	hellos [][]byte
	// buf holds the client's unparsed bytes; done is set once its
	// plaintext hellos are over.
	buf, hs []byte
	done    bool
}

// clientHellos reassembles the capture at path with the project's
// capture, layer and tcp packages and returns its connections in order of
// first packet, each with the ClientHellos its client sent in plaintext:
// the first, and a second one after a HelloRetryRequest.
func clientHellos(t *testing.T, path string) []*helloConn {
	t.Helper()
	r, err := capture.Open([]string{path}, capture.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	var conns []*helloConn
	tr := tcp.NewTracker(tcp.Options{NewHandler: func(c *tcp.Conn) tcp.StreamHandler {
		h := &helloConn{client: c.Client}
		conns = append(conns, h)
		return h
	}})
	dec := layer.NewDecoder()
	var seg layer.Segment
	for {
		p, err := r.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		res, _ := dec.Decode(p.LinkType, p.Data, p.OrigLen, &seg)
		if res.Kind != layer.KindTCP {
			continue
		}
		seg.Ref = p.Ref
		tr.Add(&seg)
	}
	tr.Flush()
	return conns
}

// Data splits the client's bytes into records and its handshake records
// into messages, keeping ClientHellos. It stops at the first other
// handshake message or record type, past which records may be encrypted;
// ChangeCipherSpec is skipped, as TLS 1.3 clients send one before the
// second ClientHello.
func (h *helloConn) Data(dir event.Dir, b []byte, _ event.Ref) {
	if dir != event.C2S || h.done {
		return
	}
	h.buf = append(h.buf, b...)
	for len(h.buf) >= 5 && !h.done {
		n := int(h.buf[3])<<8 | int(h.buf[4])
		if len(h.buf) < 5+n {
			return
		}
		typ, p := h.buf[0], h.buf[5:5+n]
		h.buf = h.buf[5+n:]
		switch typ {
		case 20: // change_cipher_spec
		case 22: // handshake
			h.hs = append(h.hs, p...)
			for len(h.hs) >= 4 && !h.done {
				m := int(h.hs[1])<<16 | int(h.hs[2])<<8 | int(h.hs[3])
				if len(h.hs) < 4+m {
					break
				}
				if h.hs[0] != typeClientHello {
					h.done = true
					break
				}
				h.hellos = append(h.hellos, bytes.Clone(h.hs[4:4+m]))
				h.hs = h.hs[4+m:]
			}
		default:
			h.done = true
		}
	}
}

func (h *helloConn) Gap(dir event.Dir, _ int, _ event.Ref) {
	if dir == event.C2S {
		h.done = true
	}
}

func (h *helloConn) Close(event.Dir, bool, event.Ref) {}
