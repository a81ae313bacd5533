package sniff

import (
	"testing"

	"github.com/h2scope/h2scope/dissect/event"
)

func TestDetect(t *testing.T) {
	settings := "\x00\x00\x06\x04\x00\x00\x00\x00\x00\x00\x03\x00\x00\x00\x64"
	ping := "\x00\x00\x08\x06\x00\x00\x00\x00\x00" + "12345678"
	wu := "\x00\x00\x04\x08\x00\x00\x00\x00\x00\x00\x00\xff\xff"
	data := "\x00\x00\x03\x00\x01\x00\x00\x00\x01abc"
	tests := []struct {
		name string
		in   string
		want Verdict
	}{
		{"empty", "", Verdict{More: true}},
		{"preface", Preface + settings, Verdict{Proto: event.ProtoHTTP2, Preface: true}},
		{"preface prefix", Preface[:10], Verdict{More: true}},
		{"h2 frames midstream", settings + ping + wu, Verdict{Proto: event.ProtoHTTP2}},
		{"h2 data then more", data + data + data, Verdict{Proto: event.ProtoHTTP2}},
		{"h2 too few frames", settings, Verdict{More: true}},
		{"h2 DATA on stream 0 is not h2", "\x00\x00\x03\x00\x00\x00\x00\x00\x00abc" + settings + ping, Verdict{}},
		{"GET", "GET / HTTP/1.1\r\nHost: x\r\n\r\n", Verdict{Proto: event.ProtoHTTP1}},
		{"GET without line end yet", "GET /index.ht", Verdict{More: true}},
		{"method prefix", "POS", Verdict{More: true}},
		{"GET but not HTTP", "GET /x\r\nHost: y\r\n", Verdict{}},
		{"status line", "HTTP/1.1 200 OK\r\n", Verdict{Proto: event.ProtoHTTP1}},
		{"status prefix", "HTTP/1", Verdict{More: true}},
		{"TLS ClientHello", "\x16\x03\x01\x02\x00\x01\x00\x01\xfc", Verdict{Proto: event.ProtoTLS}},
		{"TLS prefix", "\x16\x03", Verdict{More: true}},
		{"TLS bad version", "\x16\x05\x01\x02\x00\x01\x00\x01\xfc\x03", Verdict{}},
		{"SSH banner", "SSH-2.0-OpenSSH_9.6\r\n", Verdict{}},
		{"SMTP banner", "220 mail.example.com ESMTP\r\n", Verdict{}},
	}
	for _, tt := range tests {
		if got := Detect([]byte(tt.in)); got != tt.want {
			t.Errorf("%s: Detect(%q) = %+v, want %+v", tt.name, tt.in, got, tt.want)
		}
	}
}

// TestDetectPrefixesNeverDecideWrongly feeds every proper prefix of each
// recognisable input: each says More or gives the final answer.
func TestDetectPrefixesNeverDecideWrongly(t *testing.T) {
	for _, in := range []string{Preface, "GET / HTTP/1.1\r\n", "HTTP/1.1 204 No Content\r\n", "\x16\x03\x01\x00\x05\x01\x00\x00\x01\x00"} {
		final := Detect([]byte(in))
		for i := 0; i < len(in); i++ {
			v := Detect([]byte(in[:i]))
			if !v.More && v != final {
				t.Errorf("prefix %q of %q: %+v, final %+v", in[:i], in, v, final)
			}
		}
	}
}

func FuzzDetect(f *testing.F) {
	f.Add([]byte(Preface))
	f.Add([]byte("GET / HTTP/1.1\r\n"))
	f.Add([]byte("\x16\x03\x01\x00\x05\x01"))
	f.Fuzz(func(t *testing.T, b []byte) {
		v := Detect(b)
		if v.More && v.Proto != event.ProtoUnknown {
			t.Fatalf("More with a protocol: %+v", v)
		}
	})
}

func TestResync(t *testing.T) {
	wu := "\x00\x00\x04\x08\x00\x00\x00\x00\x01\x00\x00\x40\x00"
	data := "\x00\x00\x05\x00\x00\x00\x00\x00\x01hello"
	tail := "...tail of a DATA payload..."
	tests := []struct {
		in   string
		off  int
		want bool
	}{
		{tail + data + wu + data, len(tail), true},
		{wu + wu + wu, 0, true},
		{tail + data + wu, 0, false}, // two frames are not enough
		{tail, 0, false},
		{"\x16\x03\x03\x00\x40" + tail + tail, 0, false},
	}
	for _, tt := range tests {
		off, ok := Resync([]byte(tt.in))
		if ok != tt.want || ok && off != tt.off {
			t.Errorf("Resync(%q) = %d, %v; want %d, %v", tt.in, off, ok, tt.off, tt.want)
		}
	}
}
