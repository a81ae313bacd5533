package http1_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/h2scope/h2scope/dissect"
	"github.com/h2scope/h2scope/dissect/event"
	"github.com/h2scope/h2scope/dissect/http1"
	"github.com/h2scope/h2scope/dissect/tcp"
)

// corpusDir holds the shared corpus of captures written by other people.
const corpusDir = "../../../shared/corpus"

// result is what a capture gave: events as lines, and per connection its
// client address and HTTP/1 summary.
type result struct {
	events  []string
	msgs    []message
	clients map[event.ConnID]string
	convs   map[event.ConnID]*http1.Conn
}

// message is a request or response event, kept for matching.
type message struct {
	conn     event.ConnID
	response bool
	d        event.HTTP1
}

// splitter feeds each Data call to its Conn one byte at a time.
type splitter struct{ *http1.Conn }

func (s splitter) Data(dir event.Dir, b []byte, at event.Ref) {
	for i := range b {
		s.Conn.Data(dir, b[i:i+1], at)
	}
}

// dissectFile runs the project's pipeline over path with an http1.Conn on
// every TCP connection.
func dissectFile(t *testing.T, path string, bytewise bool) *result {
	t.Helper()
	r := &result{clients: map[event.ConnID]string{}, convs: map[event.ConnID]*http1.Conn{}}
	sink := event.SinkFunc(func(e *event.Event) {
		d := *e.HTTP1
		d.Headers = nil
		r.msgs = append(r.msgs, message{conn: e.Conn, response: e.Type == "response", d: d})
		r.events = append(r.events, line(e))
	})
	opts := dissect.Options{TCP: tcp.Options{NewHandler: func(c *tcp.Conn) tcp.StreamHandler {
		hc := http1.NewConn(c.ID, sink, http1.Options{})
		r.clients[c.ID] = c.Client.String()
		r.convs[c.ID] = hc
		if bytewise {
			return splitter{hc}
		}
		return hc
	}}}
	if _, err := dissect.Run(context.Background(), []string{path}, opts); err != nil {
		t.Fatal(err)
	}
	return r
}

// line renders an event with every field the dissector sets.
func line(e *event.Event) string {
	h := e.HTTP1
	var hdr []string
	for _, x := range h.Headers {
		hdr = append(hdr, x.Name+"="+x.Value)
	}
	return fmt.Sprintf("f%d c%d %s %s len=%d %s %s %s %d %q body=%d chunked=%v ka=%v seq=%d head=%d req=%d missed=%d inc=%v kat=%d kam=%d tr=%v hdr=%q",
		e.Ref.Frame, e.Conn, e.Dir, e.Type, e.Len, h.Method, h.Target, h.Version, h.Status, h.Reason, h.BodyLen,
		h.Chunked, h.KeepAlive, h.Seq, h.HeadFrame, h.Request, h.Missed, h.Incomplete, h.KeepAliveTimeout,
		h.KeepAliveMax, h.Trailers, strings.Join(hdr, "|"))
}

// counts returns the requests and responses seen (events plus summaries
// agree, checked).
func (r *result) counts(t *testing.T) (reqs, resps int) {
	t.Helper()
	var sreq, sresp int
	for _, c := range r.convs {
		s := c.Summary()
		sreq += s.Requests
		sresp += s.Responses
	}
	for _, m := range r.msgs {
		if m.response {
			resps++
		} else {
			reqs++
		}
	}
	if reqs != sreq || resps != sresp {
		t.Errorf("events give %d requests %d responses, summaries %d and %d", reqs, resps, sreq, sresp)
	}
	return reqs, resps
}

func (r *result) anomalies() map[string]int {
	all := map[string]int{}
	for _, c := range r.convs {
		for k, v := range c.Summary().Anomalies {
			all[k] += v
		}
	}
	return all
}

// exchange is a request with the status and body of its response, as the
// truth files list them.
type exchange struct {
	Client   string `json:"conn_client"`
	Method   string `json:"method"`
	Path     string `json:"path"`
	Status   int    `json:"status"`
	ReqBytes int64  `json:"req_bytes"`
	RespByte int64  `json:"resp_bytes"`
}

// exchanges pairs the requests with their responses, per connection in
// request order.
func (r *result) exchanges() []exchange {
	type key struct {
		conn event.ConnID
		seq  int
	}
	resp := map[key]event.HTTP1{}
	for _, m := range r.msgs {
		if m.response && m.d.Status >= 200 {
			resp[key{m.conn, m.d.Request}] = m.d
		}
	}
	var out []exchange
	for _, m := range r.msgs {
		if m.response {
			continue
		}
		x := exchange{Client: r.clients[m.conn], Method: m.d.Method, Path: m.d.Target, ReqBytes: m.d.BodyLen}
		if p, ok := resp[key{m.conn, m.d.Seq}]; ok {
			x.Status, x.RespByte = p.Status, p.BodyLen
		}
		out = append(out, x)
	}
	return out
}

// TestTruth checks the generator's captures against their truth files:
// every request, in order per connection, with its method, path, status
// and body sizes.
func TestTruth(t *testing.T) {
	for _, name := range []string{"http1-keepalive", "http1-nokeepalive"} {
		t.Run(name, func(t *testing.T) {
			pcap := filepath.Join("../../testdata/pcaps", name+".pcapng")
			raw, err := os.ReadFile(filepath.Join("../../testdata/pcaps", name+".truth.json"))
			if err != nil {
				t.Fatal(err)
			}
			var truth struct{ Requests []exchange }
			if err := json.Unmarshal(raw, &truth); err != nil {
				t.Fatal(err)
			}
			r := dissectFile(t, pcap, false)
			got := perClient(r.exchanges())
			want := perClient(truth.Requests)
			if len(got) != len(want) {
				t.Errorf("%d connections with requests, want %d", len(got), len(want))
			}
			for client, w := range want {
				g := got[client]
				if fmt.Sprint(g) != fmt.Sprint(w) {
					t.Errorf("client %s:\n got %v\nwant %v", client, g, w)
				}
			}
			if a := r.anomalies(); len(a) != 0 {
				t.Errorf("anomalies %v", a)
			}
			for id, c := range r.convs {
				if s := c.Summary(); s.Unanswered != 0 || s.Requests != s.Responses {
					t.Errorf("conn %d: %+v", id, s)
				}
			}
		})
	}
}

func perClient(xs []exchange) map[string][]exchange {
	m := map[string][]exchange{}
	for _, x := range xs {
		m[x.Client] = append(m[x.Client], x)
	}
	return m
}

// TestCorpusAgainstTshark compares request and response counts with
// tshark 4.0.17's, taken with
//
//	tshark -r F -Y http.request -T fields -e frame.number -e http.request.method
//	tshark -r F -Y http.response -T fields -e frame.number -e http.response.code
//
// counting the methods and codes (a frame may carry several pipelined
// messages). Differences are explained per capture.
func TestCorpusAgainstTshark(t *testing.T) {
	tests := []struct {
		file               string
		tsharkReq, tsharkR int
		req, resp          int
		anomalies          map[string]int
	}{
		{"zeek/http/pipelined-requests.pcap", 5, 5, 5, 5, nil},
		// The dropped response is a hole in the server's stream, which
		// the TCP layer reports as a gap: it falls between responses, one
		// response is assumed lost so the queue stays aligned, and the
		// next status line is found at once.
		{"zeek/http/1000-requests-one-dropped-response.pcap", 1000, 999, 1000, 999,
			map[string]int{"gap_in_header": 1, "resync": 1}},
		{"ndpi/http_ua_splitted_in_two_pkts.pcapng", 37, 37, 37, 37, nil},
		// The capture starts with the end of a response (both count it).
		{"pcapplusplus/http-packets2.pcap", 57, 58, 57, 58, map[string]int{"unmatched_HTTP_reply": 1}},
		// 49 connections, each one request line and one response: 9
		// valid request lines, 35 malformed ones that start with an
		// upper-case token ("OPTIONS", "GET /HTTP/1.1", "GET/ HTTP/1.1",
		// "HEAD / HTTP/1."), 5 whose method is not ASCII. tshark counts
		// only lines starting with a method it knows followed by a space
		// or the line end (27); we count every line a server could take
		// for a request (44, 35 flagged bad_request_line). The server
		// answered all 49, so both undercount: tshark by 22, we by the 5
		// non-ASCII ones, whose responses are unmatched_HTTP_reply.
		{"zeek/http/methods.pcap", 27, 49, 44, 49,
			map[string]int{"bad_request_line": 40, "resync": 5, "unmatched_HTTP_reply": 5}},
		{"arkime/http-wrapped-header.pcap", 1, 1, 1, 1, nil},
		{"zeek/http/get-without-fins.pcap", 1, 1, 1, 1, nil},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			path := filepath.Join(corpusDir, tt.file)
			if _, err := os.Stat(path); err != nil {
				t.Skipf("corpus capture %s not found (%v); the corpus lives in /work/shared/corpus", tt.file, err)
			}
			r := dissectFile(t, path, false)
			req, resp := r.counts(t)
			if req != tt.req || resp != tt.resp {
				t.Errorf("%d requests, %d responses; want %d, %d (tshark %d, %d)", req, resp, tt.req, tt.resp, tt.tsharkReq, tt.tsharkR)
			}
			var lost, unanswered int
			for _, c := range r.convs {
				s := c.Summary()
				lost += s.LostRequests + s.LostResponses
				unanswered += s.Unanswered
			}
			// Every request is answered or its response lost, except in
			// captures that end before the last response or start with one.
			if req-unanswered-lost > resp {
				t.Errorf("%d requests, %d unanswered, %d lost, %d responses", req, unanswered, lost, resp)
			}
			if strings.Contains(tt.file, "1000-requests") && (lost != 1 || unanswered != 0) {
				t.Errorf("lost %d, unanswered %d; want 1, 0", lost, unanswered)
			}
			a := r.anomalies()
			if fmt.Sprint(a) != fmt.Sprint(tt.anomalies) && !(len(a) == 0 && tt.anomalies == nil) {
				t.Errorf("anomalies %v, want %v", a, tt.anomalies)
			}
		})
	}
}

// TestBytewiseCaptures checks that feeding every capture's streams one
// byte at a time gives the same events.
func TestBytewiseCaptures(t *testing.T) {
	files := []string{
		"../../testdata/pcaps/http1-keepalive.pcapng",
		"../../testdata/pcaps/http1-nokeepalive.pcapng",
	}
	for _, f := range []string{"zeek/http/pipelined-requests.pcap", "zeek/http/1000-requests-one-dropped-response.pcap",
		"ndpi/http_ua_splitted_in_two_pkts.pcapng", "pcapplusplus/http-packets2.pcap", "zeek/http/methods.pcap",
		"arkime/http-wrapped-header.pcap", "zeek/http/get-without-fins.pcap"} {
		files = append(files, filepath.Join(corpusDir, f))
	}
	for _, f := range files {
		if _, err := os.Stat(f); err != nil {
			continue
		}
		a := dissectFile(t, f, false)
		b := dissectFile(t, f, true)
		if len(a.events) != len(b.events) {
			t.Errorf("%s: %d events whole, %d byte at a time", f, len(a.events), len(b.events))
			continue
		}
		for i := range a.events {
			if a.events[i] != b.events[i] {
				t.Errorf("%s: event %d:\n whole %s\n bytes %s", f, i, a.events[i], b.events[i])
				break
			}
		}
	}
}
