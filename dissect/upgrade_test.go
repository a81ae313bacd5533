package dissect

import (
	"context"
	"os"
	"testing"

	"github.com/h2scope/h2scope/dissect/tcp"
)

// TestH2CUpgradeEndToEnd: after an HTTP/1.1 Upgrade: h2c, the upgrade
// request is the HTTP/2 connection's stream 1 (method, path, authority)
// and its HTTP2-Settings are applied, as RFC 7540 §3.2 has it. Suricata's
// http2-range capture: GET /eicar, Upgrade: h2c, 101, then a 206 on
// stream 1.
func TestH2CUpgradeEndToEnd(t *testing.T) {
	const f = "../../shared/corpus/sv/http2-range/http2-range.pcap"
	if _, err := os.Stat(f); err != nil {
		t.Skip("../shared/corpus is absent")
	}
	var first *App
	_, err := Run(context.Background(), []string{f}, Options{Dissect: true, OnConn: func(c *tcp.Conn, app *App) {
		if c.ID == 0 {
			first = app
		}
	}})
	if err != nil {
		t.Fatal(err)
	}
	if first == nil || first.HTTP2 == nil || !first.HTTP2.Upgrade || len(first.Streams) == 0 {
		t.Fatalf("connection 0: %+v", first)
	}
	s := first.Streams[0]
	if s.ID != 1 || !s.Upgrade || s.Method != "GET" || s.Path != "/eicar" || s.Scheme != "http" || s.Authority == "" || s.Status != 206 {
		t.Errorf("stream 1: %+v", s)
	}
	if s.FirstHeaders == nil || s.FirstHeaders.Frame != 5 || s.ClientEnd == nil || s.ClientEnd.Frame != 5 {
		t.Errorf("stream 1 opened by %v, request ended by %v; want the upgrade request's frame 5", s.FirstHeaders, s.ClientEnd)
	}
	if a := first.HTTP2.Anomalies["upgrade_settings_bad"]; a != 0 {
		t.Errorf("HTTP2-Settings refused %d times", a)
	}
}
