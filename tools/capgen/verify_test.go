package main

import (
	"strings"
	"testing"
	"time"

	"github.com/h2scope/h2scope/tools/capgen/truth"
)

// TestVerifyPortReuse checks that two connections from the same client
// port, one after the other, are told apart (a new SYN starts a new
// connection) both by verifyLive and in the truth.
func TestVerifyPortReuse(t *testing.T) {
	second := newSynthConn(t, 40000, 8080, synthStart.Add(time.Second))
	second.cseq, second.sseq = 777777, 888888
	pkts := append(newSynthConn(t, 40000, 8080, synthStart).exchange(2, 100), second.exchange(1, 50)...)
	conn := func(id int, c2s, s2c int64) truth.Connection {
		return truth.Connection{ID: id, Client: "127.0.0.1:40000", Server: "127.0.0.1:8080",
			C2SBytes: c2s, S2CBytes: s2c, ClosedBy: "client"}
	}
	tr := &truth.Truth{Connections: []truth.Connection{conn(1, 200, 200), conn(2, 50, 50)}}
	if err := verifyLive(pkts, 8080, tr); err != nil {
		t.Errorf("two connections on one port: %v", err)
	}
	tr.Connections = tr.Connections[:1]
	err := verifyLive(pkts, 8080, tr)
	if err == nil || !strings.Contains(err.Error(), "connection 2 from client port 40000, which no program dialed") {
		t.Errorf("one connection listed, two captured: %v", err)
	}
}
