package report

import (
	"strings"
	"testing"

	"github.com/h2scope/h2scope/dissect/event"
)

func TestRedactHeader(t *testing.T) {
	red := Redaction{}
	tests := []struct {
		name, value string
		hidden      bool
		want        string
	}{
		{"Authorization", "Bearer abc.def.ghi", true, ""},
		{"proxy-authorization", "Basic Zm9vOmJhcg==", true, ""},
		{"cookie", "sid=1; theme=dark", true, ""},
		{"Set-Cookie", "sid=1; HttpOnly", true, ""},
		{"x-api-key", "k-123", true, ""},
		{"x-goog-api-key", "AIza", true, ""},
		{"x-amz-security-token", "FQoG", true, ""},
		{"grpc-trace-bin", "\x00\x01", true, ""},
		{"custom-session-id", "s1", true, ""},
		{":authority", "api.example.com", false, "api.example.com"},
		{"content-type", "application/grpc", false, "application/grpc"},
		{"user-agent", "curl/8", false, "curl/8"},
		{":path", "/v1/items?id=7&access_token=XYZ&sig=abc#frag", false, "/v1/items?id=7&access_token=[redacted 3 bytes]&sig=[redacted 3 bytes]#frag"},
		{"location", "https://user:pw@host/x?api_key=s3cr3t", false, "https://[redacted 7 bytes]@host/x?api_key=[redacted 6 bytes]"},
	}
	for _, tt := range tests {
		got := red.Header(tt.name, tt.value)
		if tt.hidden {
			if strings.Contains(got, tt.value) || !strings.HasPrefix(got, "[redacted ") {
				t.Errorf("%s: %q not hidden: %q", tt.name, tt.value, got)
			}
		} else if got != tt.want {
			t.Errorf("%s: %q, want %q", tt.name, got, tt.want)
		}
		if off := (Redaction{Off: true}).Header(tt.name, tt.value); off != tt.value {
			t.Errorf("%s with redaction off: %q", tt.name, off)
		}
	}
}

func TestRedactFrameAndTimeline(t *testing.T) {
	hs := []event.Header{{Name: ":method", Value: "GET"}, {Name: ":path", Value: "/a?token=T0K3N"},
		{Name: "authorization", Value: "Bearer SECRET"}, {Name: "accept", Value: "*/*"}}
	orig := append([]event.Header(nil), hs...)
	e := &event.Event{Proto: event.ProtoHTTP2, Type: "HEADERS", HTTP2: &event.HTTP2{Headers: hs}}
	f := NewFrame(e, Redaction{})
	for _, h := range f.Headers {
		if strings.Contains(h.Value, "SECRET") || strings.Contains(h.Value, "T0K3N") {
			t.Errorf("frame leaks %s=%s", h.Name, h.Value)
		}
	}
	for i := range hs {
		if hs[i] != orig[i] {
			t.Fatalf("the event's headers were modified: %v", hs)
		}
	}
	if line := TimelineBody(e, Redaction{}); strings.Contains(line, "T0K3N") {
		t.Errorf("timeline leaks: %s", line)
	}
	if line := TimelineBody(e, Redaction{Off: true}); !strings.Contains(line, "T0K3N") {
		t.Errorf("--no-redact still redacts: %s", line)
	}
	h1 := &event.Event{Proto: event.ProtoHTTP1, Type: "request", HTTP1: &event.HTTP1{Method: "GET", Target: "/x?password=hunter2",
		Headers: []event.Header{{Name: "Cookie", Value: "a=b"}}}}
	f = NewFrame(h1, Redaction{})
	if strings.Contains(f.http1Fields.Target, "hunter2") || f.Headers[0].Value == "a=b" {
		t.Errorf("HTTP/1 frame leaks: %s %v", f.http1Fields.Target, f.Headers)
	}
}

func TestRedactText(t *testing.T) {
	got := Redaction{}.Text("request GET /login?user=bob&password=pw1 crossed the server FIN")
	if strings.Contains(got, "pw1") || !strings.Contains(got, "user=bob") {
		t.Errorf("%q", got)
	}
}

func TestRedactGRPCMethod(t *testing.T) {
	e := &event.Event{Proto: event.ProtoGRPC, Type: "message", GRPC: &event.GRPC{Method: "/svc/M?access_token=SECRET\x1b]0;pwned\x07"}}
	line := TimelineBody(e, Redaction{})
	if strings.Contains(line, "SECRET") || strings.ContainsRune(line, 0x1b) {
		t.Errorf("timeline: %q", line)
	}
	if f := NewFrame(e, Redaction{}); strings.Contains(f.grpcFields.GRPCMethod, "SECRET") {
		t.Errorf("frame: %q", f.grpcFields.GRPCMethod)
	}
}
