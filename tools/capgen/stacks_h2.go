package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/h2scope/h2scope/tools/capgen/truth"
)

// pythonCancelClient is the python-h2 client of nghttpd-python-cancel:
// over h2c with prior knowledge, with a small initial window, it sends N
// GETs one at a time and resets each stream with RST_STREAM(CANCEL) as
// soon as the response HEADERS arrive, then waits GAP seconds. It prints
// one JSON object per event (h2's events and its own actions), the
// first being its local port.
const pythonCancelClient = `import json, socket, sys, time
import h2, h2.config, h2.connection, h2.events, h2.errors, h2.settings
host, port, n, path, gap, window = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4], float(sys.argv[5]), int(sys.argv[6])
t0 = time.monotonic()
def log(**kw):
    kw["t"] = round(time.monotonic() - t0, 6)
    print(json.dumps(kw), flush=True)
sock = socket.create_connection((host, port))
log(event="Connected", local_port=sock.getsockname()[1], h2=h2.__version__)
conn = h2.connection.H2Connection(config=h2.config.H2Configuration(client_side=True, header_encoding="utf-8"))
conn.local_settings = h2.settings.Settings(client=True, initial_values={h2.settings.SettingCodes.INITIAL_WINDOW_SIZE: window, h2.settings.SettingCodes.ENABLE_PUSH: 0})
conn.initiate_connection()
sock.sendall(conn.data_to_send())
cancelled = set()
def pump(until):
    while not until():
        data = sock.recv(65536)
        if not data:
            log(event="ConnectionClosed")
            return
        for ev in conn.receive_data(data):
            name, sid = type(ev).__name__, getattr(ev, "stream_id", None)
            if isinstance(ev, h2.events.ResponseReceived):
                log(event=name, stream=sid, status=dict(ev.headers).get(":status"))
                conn.reset_stream(sid, error_code=h2.errors.ErrorCodes.CANCEL)
                log(event="SentRstStream", stream=sid, code="CANCEL")
                cancelled.add(sid)
            elif isinstance(ev, h2.events.DataReceived):
                conn.acknowledge_received_data(ev.flow_controlled_length, sid)
                log(event=name, stream=sid, bytes=len(ev.data))
            elif isinstance(ev, h2.events.StreamReset):
                log(event=name, stream=sid, code=ev.error_code.name, remote=ev.remote_reset)
            elif isinstance(ev, h2.events.ConnectionTerminated):
                log(event=name, code=ev.error_code.name, last_stream=ev.last_stream_id)
            else:
                log(event=name, stream=sid) if sid else log(event=name)
        d = conn.data_to_send()
        if d:
            sock.sendall(d)
for i in range(n):
    sid = conn.get_next_available_stream_id()
    conn.send_headers(sid, [(":method", "GET"), (":scheme", "http"), (":authority", "%s:%d" % (host, port)), (":path", path), ("user-agent", "python-h2/" + h2.__version__)], end_stream=True)
    sock.sendall(conn.data_to_send())
    log(event="SentRequest", stream=sid, path=path)
    pump(lambda: sid in cancelled)
    time.sleep(gap)
conn.close_connection()
sock.sendall(conn.data_to_send())
log(event="SentGoAway", code="NO_ERROR")
sock.shutdown(socket.SHUT_WR)
try:
    while sock.recv(65536):
        pass
except OSError:
    pass
sock.close()
log(event="Closed")
`

// nghttpdFrame matches a frame line of nghttpd -v: direction, type and
// stream ("[id=1] [  0.314] send RST_STREAM frame <length=4, flags=0x00, stream_id=5>").
var nghttpdFrame = regexp.MustCompile(`\[id=(\d+)\] \[ *[0-9.]+\] (send|recv) (\w+) frame <length=\d+, flags=0x[0-9a-f]+, stream_id=(\d+)>`)

// nghttpdErrorCode matches the line after an RST_STREAM or GOAWAY.
var nghttpdErrorCode = regexp.MustCompile(`error_code=(\w+)\(`)

// nghttpdFrames reads nghttpd -v output: it records it as a report and
// counts frames by "send TYPE"/"recv TYPE", and RST_STREAM and GOAWAY by
// "send RST_STREAM CODE".
func (r *stackRun) nghttpdFrames(out []byte) map[string]int {
	ls := lines(out)
	r.report("nghttpd", "-v frame log", ls)
	n := map[string]int{}
	for i, l := range ls {
		m := nghttpdFrame.FindStringSubmatch(l)
		if m == nil {
			continue
		}
		n[m[2]+" "+m[3]]++
		if (m[3] == "RST_STREAM" || m[3] == "GOAWAY") && i+1 < len(ls) {
			if c := nghttpdErrorCode.FindStringSubmatch(ls[i+1]); c != nil {
				n[m[2]+" "+m[3]+" "+c[1]]++
			}
		}
	}
	return n
}

// startNghttpd starts nghttpd over h2c (--no-tls) on the captured port,
// serving DIR/www, verbose, with more options.
func (r *stackRun) startNghttpd(ctx context.Context, opts ...string) (*exec.Cmd, error) {
	args := append([]string{"--no-tls", "-v", "-d", r.path("www"), "--address=127.0.0.1"}, opts...)
	args = append(args, strconv.Itoa(r.port))
	return r.start(ctx, "nghttpd", "server", r.port, args...)
}

// pythonH2 writes script to DIR/file and runs it with python3-h2, its
// arguments the captured server's address, its port and args; it keeps
// the client's output as a report described by what, and returns it.
func (r *stackRun) pythonH2(ctx context.Context, file, script, what string, args ...string) ([]byte, error) {
	if err := os.WriteFile(r.path(file), []byte(script), 0o644); err != nil {
		return nil, err
	}
	out, errb, err := r.runClient(ctx, "python3-h2", nil, append([]string{r.path(file), "127.0.0.1", strconv.Itoa(r.port)}, args...)...)
	r.report("python3-h2", what, lines(out))
	if err != nil {
		return nil, fmt.Errorf("python-h2 client: %v: %s", err, errb)
	}
	return out, nil
}

// runPythonCancel returns nghttpd-python-cancel (gap 150 ms) or its
// -burst variant (gap 20 ms): n GETs, each cancelled as its response
// HEADERS arrive, gap apart.
func runPythonCancel(n int, gap time.Duration) func(ctx context.Context, r *stackRun) error {
	return func(ctx context.Context, r *stackRun) error { return pythonCancel(ctx, r, n, gap) }
}

func pythonCancel(ctx context.Context, r *stackRun, n int, gap time.Duration) error {
	const size, window = 40000, 8192
	if err := r.writeWWW(size); err != nil {
		return err
	}
	srv, err := r.startNghttpd(ctx)
	if err != nil {
		return err
	}
	out, err := r.pythonH2(ctx, "cancel.py", pythonCancelClient, "client events (h2 events and the client's actions), one JSON object a line",
		strconv.Itoa(n), "/"+strconv.Itoa(size), strconv.FormatFloat(gap.Seconds(), 'f', 3, 64), strconv.Itoa(window))
	if err != nil {
		return err
	}
	r.stopAll(sigTerm)
	frames := r.nghttpdFrames(r.output(srv))

	var id int
	cancels := 0
	var first, last float64 // times of the first and last cancel, from the client's start
	for _, l := range lines(out) {
		var ev struct {
			Event     string  `json:"event"`
			LocalPort int     `json:"local_port"`
			Stream    uint32  `json:"stream"`
			Status    string  `json:"status"`
			Code      string  `json:"code"`
			Path      string  `json:"path"`
			T         float64 `json:"t"`
		}
		if err := json.Unmarshal([]byte(l), &ev); err != nil {
			return fmt.Errorf("python-h2 client line %q: %v", l, err)
		}
		switch ev.Event {
		case "Connected":
			id = r.newConn(ev.LocalPort, "cancel")
		case "ResponseReceived":
			st, _ := strconv.Atoi(ev.Status)
			r.request(id, truth.Request{Phase: "cancel", Method: "GET", Path: "/" + strconv.Itoa(size), Status: st,
				Proto: "HTTP/2.0", Stream: ev.Stream, Error: "cancelled by the client after the response headers (RST_STREAM CANCEL)"})
		case "SentRstStream":
			if cancels == 0 {
				first = ev.T
			}
			cancels++
			last = ev.T
		}
	}
	if cancels != n || frames["recv RST_STREAM CANCEL"] != n {
		return fmt.Errorf("the client cancelled %d streams, nghttpd received %d RST_STREAM CANCEL; want %d", cancels, frames["recv RST_STREAM CANCEL"], n)
	}
	r.fact("client_cancels", cancels)
	r.fact("server_recv_rst_stream_cancel", frames["recv RST_STREAM CANCEL"])
	r.fact("server_sent_rst_stream", frames["send RST_STREAM"])
	r.fact("server_sent_data_frames", frames["send DATA"])
	r.fact("server_recv_goaway", frames["recv GOAWAY"])
	span := time.Duration((last - first) * float64(time.Second)).Round(time.Millisecond)
	r.fact("cancel_span_ms", int(span/time.Millisecond))
	why := fmt.Sprintf("python-h2 sent RST_STREAM CANCEL on each of %d streams right after their response HEADERS, "+
		"sleeping %v between requests, %v from the first cancel to the last (its SentRstStream events; nghttpd -v: %d "+
		"recv RST_STREAM CANCEL, each after its send HEADERS and DATA): the server had answered every request, so this "+
		"is an application stopping reading, not rapid reset (CVE-2023-44487 resets streams before the server answers, "+
		"to make it work for nothing) and not a server fault", n, gap, span, frames["recv RST_STREAM CANCEL"])
	if span < time.Second {
		r.verdictCause("rst_storm", "warning", "client_cancel", "client cancelled many streams after their responses began (CANCEL): not rapid reset",
			why+fmt.Sprintf("; %d cancels within 1 s is a burst by h2scope's own rst_storm threshold (10 in 1 s), so a "+
				"warning, but never critical: no request failed and no server worked on a request reset before it answered", n))
	} else {
		r.verdictCause("rst_storm", "info", "client_cancel", "client cancelled streams after their responses began (CANCEL), one at a time", why)
	}
	return nil
}

// h2loadSummary matches h2load's "requests:" summary line.
var h2loadSummary = regexp.MustCompile(`requests: (\d+) total, (\d+) started, (\d+) done, (\d+) succeeded, (\d+) failed, (\d+) errored`)

// runH2loadRefused is h2load-nghttpd-refused.
func runH2loadRefused(ctx context.Context, r *stackRun) error {
	const n, streams, limit, size = 60, 40, 4, 5000
	if err := r.writeWWW(size); err != nil {
		return err
	}
	srv, err := r.startNghttpd(ctx, "--max-concurrent-streams="+strconv.Itoa(limit))
	if err != nil {
		return err
	}
	// nghttpd is stopped (SIGSTOP) while h2load connects: the kernel
	// completes the handshake, h2load writes its preface, SETTINGS and
	// 40 HEADERS, and only then does nghttpd accept and send its SETTINGS.
	// Otherwise h2load usually reads them first and keeps within the limit.
	if err := r.signal(srv, syscall.SIGSTOP); err != nil {
		return err
	}
	type res struct {
		out, errb []byte
		err       error
	}
	ch := make(chan res, 1)
	go func() {
		out, errb, err := r.runClient(ctx, "h2load", nil, "-n", strconv.Itoa(n), "-c", "1", "-m", strconv.Itoa(streams),
			r.url(false, "/"+strconv.Itoa(size)))
		ch <- res{out, errb, err}
	}()
	sleepCtx(ctx, 300*time.Millisecond)
	if err := r.signal(srv, syscall.SIGCONT); err != nil {
		return err
	}
	h := <-ch
	out, errb, err := h.out, h.errb, h.err
	r.report("h2load", "summary", lines(out))
	if err != nil {
		return fmt.Errorf("h2load: %v: %s", err, errb)
	}
	// h2load reports no client port: the one connection's is in the
	// kernel's socket table (nghttpd -v numbers it id=1).
	port, err := onlyClientPort(r)
	if err != nil {
		return err
	}
	r.stopAll(sigTerm)
	frames := r.nghttpdFrames(r.output(srv))
	m := h2loadSummary.FindStringSubmatch(string(out))
	if m == nil {
		return fmt.Errorf("h2load printed no requests summary: %s", out)
	}
	var v [6]int
	for i := range v {
		v[i], _ = strconv.Atoi(m[i+1])
	}
	refused := frames["send RST_STREAM REFUSED_STREAM"]
	if refused == 0 || v[4] != refused || v[3]+v[4] != n {
		return fmt.Errorf("h2load: %d succeeded, %d failed; nghttpd sent %d RST_STREAM REFUSED_STREAM", v[3], v[4], refused)
	}
	id := r.newConn(port, "load")
	for range v[3] {
		r.request(id, truth.Request{Phase: "load", Method: "GET", Path: "/" + strconv.Itoa(size), Status: 200, RespBytes: size, Proto: "HTTP/2.0"})
	}
	r.fact("requests", n)
	r.fact("succeeded", v[3])
	r.fact("failed", v[4])
	r.fact("refused_streams", refused)
	r.fact("server_sent_headers", frames["send HEADERS"])
	r.verdictCause("rst_storm", "warning", "refused_stream", "server refused streams beyond SETTINGS_MAX_CONCURRENT_STREAMS (REFUSED_STREAM)",
		fmt.Sprintf("nghttpd --max-concurrent-streams=%d sent %d RST_STREAM REFUSED_STREAM (its -v log) to h2load -m %d, which "+
			"opened %d streams before reading the server's SETTINGS and counted %d of %d requests failed; "+
			"h2load does not retry them", limit, refused, streams, streams, v[4], n))
	return nil
}

// onlyClientPort returns the client port of the one established
// connection to the captured port, from ss (the kernel's socket table):
// for clients that report none. It must run while the client's socket is
// open or in TIME_WAIT.
func onlyClientPort(r *stackRun) (int, error) {
	srv := "127.0.0.1:" + strconv.Itoa(r.port)
	out, err := exec.Command("ss", "-tanH", "( sport = :"+strconv.Itoa(r.port)+" or dport = :"+strconv.Itoa(r.port)+" )").Output()
	if err != nil {
		return 0, fmt.Errorf("ss: %v", err)
	}
	var ports []int
	for _, l := range lines(out) {
		f := strings.Fields(l)
		if len(f) < 5 || f[0] == "LISTEN" {
			continue
		}
		local, peer := f[len(f)-2], f[len(f)-1]
		if local == srv {
			local = peer
		}
		_, p, ok := strings.Cut(local, "127.0.0.1:")
		if n, err := strconv.Atoi(p); ok && err == nil && !containsInt(ports, n) {
			ports = append(ports, n)
		}
	}
	if len(ports) != 1 {
		return 0, fmt.Errorf("ss shows %d client sockets to port %d, want 1: %s", len(ports), r.port, out)
	}
	r.report("ss", "ss -tanH '( sport = :PORT or dport = :PORT )' after the run (h2load names no client port)", lines(out))
	return ports[0], nil
}

func containsInt(s []int, n int) bool {
	for _, v := range s {
		if v == n {
			return true
		}
	}
	return false
}

// pythonSlowClient is the python-h2 client of nghttpd-killed-midstream:
// over h2c with prior knowledge and a stream window of WINDOW bytes, it
// GETs PATH and returns the window (WINDOW_UPDATE) only every PAUSE
// seconds, so the download takes a while; it reports every event and,
// when the server goes away, how much it got.
const pythonSlowClient = `import json, socket, sys, time
import h2, h2.config, h2.connection, h2.events, h2.settings
host, port, path, window, pause = sys.argv[1], int(sys.argv[2]), sys.argv[3], int(sys.argv[4]), float(sys.argv[5])
t0 = time.monotonic()
def log(**kw):
    kw["t"] = round(time.monotonic() - t0, 6)
    print(json.dumps(kw), flush=True)
sock = socket.create_connection((host, port))
log(event="Connected", local_port=sock.getsockname()[1], h2=h2.__version__)
conn = h2.connection.H2Connection(config=h2.config.H2Configuration(client_side=True, header_encoding="utf-8"))
conn.local_settings = h2.settings.Settings(client=True, initial_values={h2.settings.SettingCodes.INITIAL_WINDOW_SIZE: window, h2.settings.SettingCodes.ENABLE_PUSH: 0})
conn.initiate_connection()
sid = conn.get_next_available_stream_id()
conn.send_headers(sid, [(":method", "GET"), (":scheme", "http"), (":authority", "%s:%d" % (host, port)), (":path", path), ("user-agent", "python-h2/" + h2.__version__)], end_stream=True)
sock.sendall(conn.data_to_send())
log(event="SentRequest", stream=sid, path=path)
sock.settimeout(0.02)
got, unacked, ended, last = 0, 0, False, time.monotonic()
while True:
    try:
        data = sock.recv(65536)
    except socket.timeout:
        data = None
    except ConnectionResetError as e:
        log(event="ConnectionReset", error=str(e), received=got, stream_ended=ended)
        break
    if data == b"":
        log(event="ConnectionClosed", received=got, stream_ended=ended)
        break
    for ev in conn.receive_data(data or b""):
        name = type(ev).__name__
        if isinstance(ev, h2.events.ResponseReceived):
            log(event=name, stream=ev.stream_id, status=dict(ev.headers).get(":status"), content_length=dict(ev.headers).get("content-length"))
        elif isinstance(ev, h2.events.DataReceived):
            got += len(ev.data)
            unacked += ev.flow_controlled_length
            log(event=name, stream=ev.stream_id, bytes=len(ev.data), total=got)
        elif isinstance(ev, h2.events.StreamEnded):
            ended = True
            log(event=name, stream=ev.stream_id, total=got)
        elif isinstance(ev, h2.events.ConnectionTerminated):
            log(event=name, code=ev.error_code.name, last_stream=ev.last_stream_id)
        else:
            log(event=name)
    if unacked and time.monotonic() - last >= pause:
        conn.acknowledge_received_data(unacked, sid)
        log(event="SentWindowUpdate", stream=sid, increment=unacked)
        unacked, last = 0, time.monotonic()
    d = conn.data_to_send()
    if d:
        sock.sendall(d)
    if ended:
        break
sock.close()
`

// runNghttpdKilled is nghttpd-killed-midstream.
func runNghttpdKilled(ctx context.Context, r *stackRun) error {
	const size, window = 300000, 16384
	if err := r.writeWWW(size); err != nil {
		return err
	}
	srv, err := r.startNghttpd(ctx)
	if err != nil {
		return err
	}
	if err := os.WriteFile(r.path("slow.py"), []byte(pythonSlowClient), 0o644); err != nil {
		return err
	}
	// nghttpd is killed as soon as the client has read 3 windows
	// (49,152 bytes): it is then waiting for the next WINDOW_UPDATE.
	const killAt = 3 * window
	args := []string{r.path("slow.py"), "127.0.0.1", strconv.Itoa(r.port), "/" + strconv.Itoa(size), strconv.Itoa(window), "0.2"}
	r.program("python3-h2", "client", args)
	cmd := r.command(ctx, "python3-h2", args)
	var errb bytes.Buffer
	cmd.Stderr = &errb
	pipe, err := cmd.StdoutPipe()
	if err != nil {
		return err
	}
	if err := cmd.Start(); err != nil {
		return err
	}
	var out []byte
	killed := false
	sc := bufio.NewScanner(pipe)
	for sc.Scan() {
		out = append(append(out, sc.Bytes()...), '\n')
		var ev struct {
			Event string `json:"event"`
			Total int    `json:"total"`
		}
		json.Unmarshal(sc.Bytes(), &ev)
		if !killed && ev.Event == "DataReceived" && ev.Total >= killAt {
			if err := r.signal(srv, syscall.SIGKILL); err != nil {
				cmd.Process.Kill()
				cmd.Wait()
				return err
			}
			killed = true
			r.report("capgen", "signals capgen sent", []string{fmt.Sprintf("when the client reported %d bytes received: SIGKILL to nghttpd", ev.Total)})
		}
	}
	err = cmd.Wait()
	r.report("python3-h2", "client events (h2 events and the client's actions), one JSON object a line", lines(out))
	if err != nil || !killed {
		return fmt.Errorf("python-h2 client: killed %v, %v: %s", killed, err, errb.Bytes())
	}
	r.wait(srv, 3*time.Second)
	frames := r.nghttpdFrames(r.output(srv))
	var id, status int
	var received int64
	lost := false
	for _, l := range lines(out) {
		var ev struct {
			Event       string `json:"event"`
			LocalPort   int    `json:"local_port"`
			Status      string `json:"status"`
			Received    int64  `json:"received"`
			StreamEnded bool   `json:"stream_ended"`
		}
		if err := json.Unmarshal([]byte(l), &ev); err != nil {
			return fmt.Errorf("python-h2 client line %q: %v", l, err)
		}
		switch ev.Event {
		case "Connected":
			id = r.newConn(ev.LocalPort, "download")
		case "ResponseReceived":
			status, _ = strconv.Atoi(ev.Status)
		case "ConnectionClosed", "ConnectionReset":
			received, lost = ev.Received, !ev.StreamEnded
		}
	}
	if !lost || status != 200 || received == 0 || received >= size || frames["send GOAWAY"] != 0 {
		return fmt.Errorf("client: status %d, %d of %d bytes, lost %v; nghttpd sent %d GOAWAY", status, received, size, lost, frames["send GOAWAY"])
	}
	r.request(id, truth.Request{Phase: "download", Method: "GET", Path: "/" + strconv.Itoa(size), Status: status, RespBytes: received,
		Proto: "HTTP/2.0", Stream: 1, Error: "connection closed before END_STREAM (server killed)"})
	r.fact("bytes_received", int(received))
	r.fact("bytes_expected", size)
	r.fact("server_sent_data_frames", frames["send DATA"])
	r.verdictCause("connection_lost", "critical", "server_abort", "server process killed mid-stream: connection closed with a stream in flight, no GOAWAY",
		fmt.Sprintf("nghttpd was killed with SIGKILL once python-h2 had read 49,152 bytes of a 300,000-byte download it "+
			"throttled by returning its 16 KB stream window every 200 ms; the kernel closed the socket: no GOAWAY, no END_STREAM on "+
			"stream 1, and the client got %d of 300,000 bytes (its ConnectionClosed event, stream_ended false)", received))
	r.verdictCause("window_stall", "warning", "h2_stream_window", "client reads slowly: the server waits on the client's HTTP/2 stream window",
		"python-h2 advertised a 16,384-byte stream window and sent WINDOW_UPDATE only every 200 ms (its SentWindowUpdate "+
			"events), so nghttpd spent most of the download with the stream window at 0")
	return nil
}
