//go:build conformance

package conformance

import (
	"context"
	"fmt"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/h2scope/h2scope/analyze"
	"github.com/h2scope/h2scope/dissect"
	"github.com/h2scope/h2scope/dissect/event"
)

// pairingDifferences lists the captures whose HTTP/1 request-response
// pairing differs from tshark's on purpose, and why (the README's "Where
// we differ from Wireshark").
var pairingDifferences = map[string]string{
	"zeek/http/206_example_b.pcap":          bodyGap,
	"zeek/http/bro.org.pcap":                bodyGap,
	"sv/tls-subjectaltname/input.pcap":      bodyGap,
	"testdata/pcaps/tcp-impaired.pcapng":    bodyGap,
	"testdata/pcaps/hostile-strings.pcapng": "a request head of 73,728 bytes is past MaxHeader: counted lost (header_too_large), where tshark reads it",
}

// bodyGap is why a response whose body the capture missed segments of is
// paired by h2scope and not by tshark.
const bodyGap = "the capture missed segments of a response body of known length: h2scope ends it by its length, tshark cannot reassemble it"

// tsharkPairs returns, for each frame tshark shows HTTP/1 requests on,
// the frames of the responses it pairs them with (http.response_in; ""
// for a request it saw no response to), in the order it lists them.
func tsharkPairs(path string) (map[uint64][]string, error) {
	out, err := exec.Command("tshark", "-n", "-2", "-r", path, "-o", "tls.keylog_file:", "-Y", "http.request && tcp && !http2 && !tls",
		"-T", "fields", "-E", "occurrence=a", "-E", "aggregator=,", "-e", "frame.number", "-e", "http.request.method",
		"-e", "http.response_in").Output()
	if err != nil {
		return nil, fmt.Errorf("tshark on %s: %v", path, err)
	}
	pairs := map[uint64][]string{}
	for line := range strings.Lines(string(out)) {
		p := strings.Split(strings.TrimRight(line, "\n"), "\t")
		if len(p) < 3 {
			continue
		}
		n, err := strconv.ParseUint(p[0], 10, 64)
		if err != nil {
			continue
		}
		methods := strings.Split(p[1], ",")
		resp := strings.Split(p[2], ",")
		for i := range methods {
			r := ""
			if i < len(resp) {
				r = resp[i]
			}
			pairs[n] = append(pairs[n], r)
		}
	}
	return pairs, nil
}

// ourPairs returns, for each frame that completed HTTP/1 requests, the
// frames of the final responses the analysis paired them with (the
// HTTP/1 exchanges its detectors read, built from the dissector's
// records), "" for none or one cut short (which tshark never completes,
// so never shows).
func ourPairs(path string) (map[uint64][]string, error) {
	pairs := map[uint64][]string{}
	var mu sync.Mutex
	sink := connSink{add: func(c *analyze.Conn) {
		mu.Lock()
		defer mu.Unlock()
		seen := map[uint64]bool{}
		for _, x := range c.Records.Exchanges {
			if x.Proto != event.ProtoHTTP1 || x.RequestEnd == nil {
				continue
			}
			r := ""
			if x.ResponseEnd != nil {
				r = strconv.FormatUint(x.ResponseEnd.Frame, 10)
			}
			pairs[x.RequestEnd.Frame] = append(pairs[x.RequestEnd.Frame], r)
			seen[x.RequestEnd.Frame] = true
		}
		// An h2c upgrade's request is HTTP/2 stream 1 to the analysis
		// (answered by that stream's response); tshark pairs it with the
		// 101, as the dissector's record does.
		for _, h := range c.Records.HTTP1 {
			if h.Status == 101 && !seen[h.RequestEnd.Frame] {
				pairs[h.RequestEnd.Frame] = append(pairs[h.RequestEnd.Frame], strconv.FormatUint(h.Response.Frame, 10))
			}
		}
	}}
	if _, _, err := analyze.Stream(context.Background(), []string{path}, dissect.Options{}, analyze.DefaultConfig(), sink); err != nil {
		return nil, fmt.Errorf("h2scope on %s: %v", path, err)
	}
	return pairs, nil
}

// connSink is an analyze.ConnSink of functions.
type connSink struct{ add func(*analyze.Conn) }

func (s connSink) Add(c *analyze.Conn) { s.add(c) }
func (s connSink) Done(*analyze.Conn)  {}

// TestHTTP1PairingAgainstTshark checks that every HTTP/1 request tshark
// shows (on the ports it dissects as HTTP, in clear text) is paired with
// the response tshark pairs it with, on the project's captures and the
// shared corpus, in the exchanges the analysis reads for latencies, spans
// and requests in flight. A response tshark marks for a frame whose
// request was answered by an interim response alone is compared as the
// final one. Requests h2scope finds on ports tshark does not dissect are
// not compared.
func TestHTTP1PairingAgainstTshark(t *testing.T) {
	requireTshark(t)
	files := captures(t, "../testdata/pcaps")
	if dir := corpusDir(); dir != "" {
		files = append(files, captures(t, dir)...)
	}
	type result struct {
		file           string
		requests, same int
		diffs          []string
		err            error
	}
	rows := make([]result, len(files))
	eachFile(len(files), func(i int) {
		r := result{file: files[i]}
		ts, err := tsharkPairs(files[i])
		if err != nil || len(ts) == 0 {
			rows[i] = result{file: files[i], err: err}
			return
		}
		ours, err := ourPairs(files[i])
		if err != nil {
			rows[i] = result{file: files[i], err: err}
			return
		}
		frames := make([]uint64, 0, len(ts))
		for f := range ts {
			frames = append(frames, f)
		}
		slices.Sort(frames)
		for _, f := range frames {
			want, got := ts[f], ours[f]
			r.requests += len(want)
			if slices.Equal(sorted(want), sorted(got)) {
				r.same += len(want)
				continue
			}
			if len(r.diffs) < 5 {
				r.diffs = append(r.diffs, fmt.Sprintf("request frame %d: responses %q, tshark %q", f, got, want))
			}
		}
		rows[i] = r
	})
	var requests, same, files1 int
	for _, r := range rows {
		if r.err != nil {
			t.Error(r.err)
		}
		if r.requests == 0 {
			continue
		}
		files1++
		requests += r.requests
		same += r.same
		rel := relName(r.file)
		reason, known := pairingDifferences[rel]
		switch {
		case len(r.diffs) > 0 && known:
			t.Logf("%s: known difference (%s): %s", rel, reason, strings.Join(r.diffs, "; "))
		case len(r.diffs) > 0:
			t.Errorf("%s: %d of %d requests paired as tshark pairs them:\n\t%s", rel, r.same, r.requests, strings.Join(r.diffs, "\n\t"))
		case known:
			t.Errorf("%s is listed in pairingDifferences but now agrees with tshark: remove it", rel)
		}
	}
	t.Logf("HTTP/1 pairing: %d of %d requests on %d captures paired as tshark pairs them", same, requests, files1)
	if requests == 0 {
		t.Error("no HTTP/1 request found by tshark in any capture")
	}
}

func sorted(s []string) []string {
	s = slices.Clone(s)
	slices.Sort(s)
	return s
}
