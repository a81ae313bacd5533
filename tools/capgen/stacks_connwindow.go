package main

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"

	"github.com/h2scope/h2scope/tools/capgen/truth"
)

// A client whose HTTP/2 connection window, not its stream windows,
// holds the server back (window_stall, cause h2_connection_window),
// played by python-h2 against nghttpd.

func init() {
	addStackScenarios(&scenario{
		name: "nghttpd-python-conn-window",
		description: "nghttpd over h2c and a python-h2 4.1 client (prior knowledge) downloading 4 files of 80,000 bytes " +
			"on 4 parallel streams, with a 1 MiB stream window (SETTINGS_INITIAL_WINDOW_SIZE, larger than any file: the " +
			"streams never block) and the connection window left at the default 65,535, which it returns (WINDOW_UPDATE " +
			"on stream 0) only every 200 ms with what it has read: nghttpd fills the connection window within a " +
			"millisecond and waits for each WINDOW_UPDATE, 4 times over about 0.8 s. nghttpd -v logs every frame.",
		findings: []string{"window_stall"},
		commit:   true,
		tools:    []string{"nghttpd", "python3-h2"},
		stack:    runNghttpdConnWindow,
	})
}

// pythonConnWindowClient is the client of nghttpd-python-conn-window:
// N parallel GETs of PATH over h2c with a stream window of SWIN bytes,
// returning the connection window only every PAUSE seconds. One JSON
// object a line.
const pythonConnWindowClient = `import json, socket, sys, time
import h2, h2.config, h2.connection, h2.events, h2.settings
host, port, path, n, swin, pause = sys.argv[1], int(sys.argv[2]), sys.argv[3], int(sys.argv[4]), int(sys.argv[5]), float(sys.argv[6])
t0 = time.monotonic()
def log(**kw):
    kw["t"] = round(time.monotonic() - t0, 6)
    print(json.dumps(kw), flush=True)
sock = socket.create_connection((host, port))
log(event="Connected", local_port=sock.getsockname()[1], h2=h2.__version__)
conn = h2.connection.H2Connection(config=h2.config.H2Configuration(client_side=True, header_encoding="utf-8"))
conn.local_settings = h2.settings.Settings(client=True, initial_values={h2.settings.SettingCodes.INITIAL_WINDOW_SIZE: swin, h2.settings.SettingCodes.ENABLE_PUSH: 0})
conn.initiate_connection()
sids = []
for i in range(n):
    sid = conn.get_next_available_stream_id()
    conn.send_headers(sid, [(":method", "GET"), (":scheme", "http"), (":authority", "%s:%d" % (host, port)), (":path", path), ("user-agent", "python-h2/" + h2.__version__)], end_stream=True)
    sids.append(sid)
sock.sendall(conn.data_to_send())
for sid in sids:
    log(event="SentRequest", stream=sid, path=path)
sock.settimeout(0.01)
got, status, ended = {}, {}, set()
unacked, last, closed = 0, time.monotonic(), False
while len(ended) < n and not closed:
    try:
        data = sock.recv(65536)
    except socket.timeout:
        data = None
    if data == b"":
        log(event="ConnectionClosed")
        closed = True
        break
    for ev in conn.receive_data(data or b""):
        name = type(ev).__name__
        if isinstance(ev, h2.events.ResponseReceived):
            status[ev.stream_id] = dict(ev.headers).get(":status")
            log(event=name, stream=ev.stream_id, status=status[ev.stream_id])
        elif isinstance(ev, h2.events.DataReceived):
            got[ev.stream_id] = got.get(ev.stream_id, 0) + len(ev.data)
            unacked += ev.flow_controlled_length
            log(event=name, stream=ev.stream_id, bytes=len(ev.data), total=got[ev.stream_id], conn_unacked=unacked)
        elif isinstance(ev, h2.events.StreamEnded):
            ended.add(ev.stream_id)
            log(event=name, stream=ev.stream_id, total=got.get(ev.stream_id, 0))
        elif isinstance(ev, h2.events.ConnectionTerminated):
            log(event=name, code=ev.error_code.name, last_stream=ev.last_stream_id)
        elif isinstance(ev, h2.events.SettingsAcknowledged) or isinstance(ev, h2.events.RemoteSettingsChanged):
            log(event=name)
    if unacked and time.monotonic() - last >= pause:
        conn.increment_flow_control_window(unacked)
        log(event="SentWindowUpdate", stream=0, increment=unacked)
        unacked, last = 0, time.monotonic()
    d = conn.data_to_send()
    if d:
        sock.sendall(d)
conn.close_connection()
sock.sendall(conn.data_to_send())
log(event="SentGoAway", code="NO_ERROR")
sock.shutdown(socket.SHUT_WR)
sock.settimeout(2)
try:
    while sock.recv(65536):
        pass
except OSError:
    pass
sock.close()
log(event="Closed", received=sum(got.values()), streams_ended=len(ended))
`

// runNghttpdConnWindow is nghttpd-python-conn-window.
func runNghttpdConnWindow(ctx context.Context, r *stackRun) error {
	const size, streams, swin = 80000, 4, 1 << 20
	if err := r.writeWWW(size); err != nil {
		return err
	}
	srv, err := r.startNghttpd(ctx)
	if err != nil {
		return err
	}
	path := "/" + strconv.Itoa(size)
	out, err := r.pythonH2(ctx, "connwin.py", pythonConnWindowClient, "client events (h2 events and the client's actions), one JSON object a line",
		path, strconv.Itoa(streams), strconv.Itoa(swin), "0.2")
	if err != nil {
		return err
	}
	r.stopAll(sigTerm)
	srvOut := r.output(srv)
	frames := r.nghttpdFrames(srvOut)
	// Connection-level WINDOW_UPDATEs nghttpd received, and stream-level
	// ones (there must be none: the streams never block).
	var connUpdates, streamUpdates int
	for _, l := range lines(srvOut) {
		m := nghttpdFrame.FindStringSubmatch(l)
		if m == nil || m[2] != "recv" || m[3] != "WINDOW_UPDATE" {
			continue
		}
		if m[4] == "0" {
			connUpdates++
		} else {
			streamUpdates++
		}
	}
	var id, updates int
	got, status := map[int]int64{}, map[int]int{}
	ended := 0
	for _, l := range lines(out) {
		var ev struct {
			Event     string `json:"event"`
			LocalPort int    `json:"local_port"`
			Stream    int    `json:"stream"`
			Status    string `json:"status"`
			Total     int64  `json:"total"`
		}
		if err := json.Unmarshal([]byte(l), &ev); err != nil {
			return fmt.Errorf("python-h2 client line %q: %v", l, err)
		}
		switch ev.Event {
		case "Connected":
			id = r.newConn(ev.LocalPort, "download")
		case "ResponseReceived":
			status[ev.Stream], _ = strconv.Atoi(ev.Status)
		case "StreamEnded":
			got[ev.Stream] = ev.Total
			ended++
		case "SentWindowUpdate":
			updates++
		case "ConnectionClosed":
			return fmt.Errorf("python-h2 client: the server closed the connection first")
		}
	}
	if ended != streams {
		return fmt.Errorf("python-h2 client: %d streams ended, want %d", ended, streams)
	}
	for sid := 1; sid < 2*streams; sid += 2 {
		if status[sid] != 200 || got[sid] != size {
			return fmt.Errorf("stream %d: status %d, %d bytes; want 200, %d", sid, status[sid], got[sid], size)
		}
		r.request(id, truth.Request{Phase: "download", Method: "GET", Path: path, Status: 200, RespBytes: got[sid],
			Proto: "HTTP/2.0", Stream: uint32(sid)})
	}
	if connUpdates != updates || streamUpdates != 0 || updates < 4 {
		return fmt.Errorf("nghttpd received %d connection and %d stream WINDOW_UPDATEs, the client sent %d connection ones; "+
			"want the same, none and at least 4", connUpdates, streamUpdates, updates)
	}
	if !strings.Contains(string(srvOut), "recv SETTINGS frame") {
		return fmt.Errorf("nghttpd -v logged no SETTINGS from the client")
	}
	r.fact("streams", streams)
	r.fact("bytes_received", streams*size)
	r.fact("connection_window_updates", updates)
	r.fact("stream_window_updates", streamUpdates)
	r.fact("server_sent_data_frames", frames["send DATA"])
	r.verdictCause("window_stall", "warning", "h2_connection_window",
		"the client returns its HTTP/2 connection window slowly: the server waits on the connection window, not the stream windows",
		fmt.Sprintf("python-h2 advertised a 1 MiB stream window (more than each 80,000-byte file) and kept the connection "+
			"window at 65,535, returning it only every 200 ms (%d SentWindowUpdate events on stream 0); nghttpd -v logged %d "+
			"connection WINDOW_UPDATEs received and none for a stream, so each pause in its DATA was the connection window", updates, connUpdates))
	return nil
}
