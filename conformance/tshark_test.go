//go:build conformance

package conformance

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/h2scope/h2scope/dissect"
	"github.com/h2scope/h2scope/dissect/event"
	"github.com/h2scope/h2scope/dissect/layer"
	"github.com/h2scope/h2scope/dissect/tcp"
	"github.com/h2scope/h2scope/report"
)

// flagFields are the tcp.analysis fields compared frame by frame, in the
// order of the tshark columns after frame.number, tcp.stream, the source
// addresses, tcp.srcport and tcp.len.
var flagFields = []struct {
	field string
	flag  tcp.Analysis
}{
	{"retransmission", tcp.Retransmission | tcp.FastRetransmission | tcp.SpuriousRetransmission},
	{"fast_retransmission", tcp.FastRetransmission},
	{"spurious_retransmission", tcp.SpuriousRetransmission},
	{"out_of_order", tcp.OutOfOrder},
	{"lost_segment", tcp.LostSegment},
	{"ack_lost_segment", tcp.AckLostSegment},
	{"duplicate_ack", tcp.DuplicateACK},
	{"zero_window", tcp.ZeroWindow},
	{"zero_window_probe", tcp.ZeroWindowProbe},
	{"zero_window_probe_ack", tcp.ZeroWindowProbeACK},
	{"window_full", tcp.WindowFull},
	{"window_update", tcp.WindowUpdate},
	{"keep_alive", tcp.KeepAlive},
	{"keep_alive_ack", tcp.KeepAliveACK},
	{"reused_ports", tcp.ReusedPorts},
}

// tsFrame is one TCP frame as tshark dissected it.
type tsFrame struct {
	stream int
	src    string // "ip:port" of the sender
	length int
	flags  []bool // by flagFields index
}

// runTshark returns tshark's view of every TCP frame of path, by frame
// number.
func runTshark(t *testing.T, path string) map[uint64]tsFrame {
	t.Helper()
	args := []string{"-n", "-r", path, "-Y", "tcp && !icmp && !icmpv6", "-T", "fields",
		"-E", "separator=/t", "-E", "occurrence=l",
		"-e", "frame.number", "-e", "tcp.stream", "-e", "ip.src", "-e", "ipv6.src", "-e", "tcp.srcport", "-e", "tcp.len"}
	for _, f := range flagFields {
		args = append(args, "-e", "tcp.analysis."+f.field)
	}
	cmd := exec.Command("tshark", args...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("tshark on %s: %v: %s", path, err, stderr.String())
	}
	frames := map[uint64]tsFrame{}
	sc := bufio.NewScanner(bytes.NewReader(out))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		p := strings.Split(sc.Text(), "\t")
		if len(p) < 6+len(flagFields) || p[1] == "" {
			continue
		}
		n, _ := strconv.ParseUint(p[0], 10, 64)
		stream, _ := strconv.Atoi(p[1])
		ln, _ := strconv.Atoi(p[5])
		ip := p[2]
		if p[3] != "" && (ip == "" || strings.Count(p[3], ":") > 0) {
			// The innermost header wins; with both present (6in4),
			// tshark lists both and IPv6 is the inner one.
			ip = p[3]
		}
		src := ip + ":" + p[4]
		if strings.Contains(ip, ":") {
			src = "[" + ip + "]:" + p[4]
		}
		f := tsFrame{stream: stream, src: src, length: ln, flags: make([]bool, len(flagFields))}
		for i := range flagFields {
			f.flags[i] = p[6+i] != ""
		}
		frames[n] = f
	}
	return frames
}

// ours is h2scope's view of a capture: connections as `conns --json`
// writes them, and each TCP frame's connection, sender and flags.
type ours struct {
	conns  []connJSON
	frames map[uint64]ourFrame
	stats  dissect.Stats
}

type ourFrame struct {
	conn  event.ConnID
	src   string
	flags tcp.Analysis
}

// connJSON mirrors the fields of `h2scope conns --json` that are compared.
type connJSON struct {
	ID              int    `json:"id"`
	Client          string `json:"client"`
	Server          string `json:"server"`
	FirstFrame      uint64 `json:"first_frame"`
	Packets         struct{ C2S, S2C int }
	Bytes           struct{ C2S, S2C int }
	Retransmissions int `json:"retransmissions"`
	ZeroWindows     int `json:"zero_windows"`
	WindowFull      int `json:"window_full"`
	LostSegments    int `json:"lost_segments"`
	MissedBytes     int `json:"missed_bytes"`
}

func runOurs(t *testing.T, path string) ours {
	t.Helper()
	var conns []*tcp.Conn
	o := ours{frames: map[uint64]ourFrame{}}
	opts := dissect.Options{
		TCP: tcp.Options{OnFinish: func(c *tcp.Conn) { conns = append(conns, c) }},
		OnSegment: func(c *tcp.Conn, dir event.Dir, s *layer.Segment, a tcp.Analysis) {
			o.frames[s.Ref.Frame] = ourFrame{conn: c.ID, src: s.Src.String(), flags: a}
		},
	}
	st, err := dissect.Run(context.Background(), []string{path}, opts)
	if err != nil {
		t.Fatalf("h2scope on %s: %v", path, err)
	}
	o.stats = st
	sort.Slice(conns, func(i, j int) bool { return conns[i].ID < conns[j].ID })
	recs := make([]report.ConnRecord, len(conns))
	for i, c := range conns {
		recs[i] = report.NewConnRecord(&c.Summary, nil)
	}
	var buf bytes.Buffer
	if err := report.WriteConnsJSON(&buf, recs); err != nil {
		t.Fatal(err)
	}
	dec := json.NewDecoder(&buf)
	for dec.More() {
		var c connJSON
		if err := dec.Decode(&c); err != nil {
			t.Fatalf("conns --json output does not parse: %v", err)
		}
		o.conns = append(o.conns, c)
	}
	return o
}

// agreement is one capture's comparison.
type agreement struct {
	file                string
	tsConns, ourConns   int
	connsMatched        int // same first frame, packets and bytes each way, same counters
	frames, framesAgree int
	diffs               map[string]int // what differs, counted
	examples            []string
}

func (a *agreement) diff(kind string, format string, args ...any) {
	a.diffs[kind]++
	if len(a.examples) < 6 {
		a.examples = append(a.examples, fmt.Sprintf(format, args...))
	}
}

// compare checks our view of path against tshark's.
func compare(t *testing.T, path string) agreement {
	ts := runTshark(t, path)
	us := runOurs(t, path)
	a := agreement{file: path, ourConns: len(us.conns), diffs: map[string]int{}}

	// Per-stream totals from tshark, keyed by first frame.
	type tot struct {
		first                uint64
		client               string
		pk, by               [2]int
		retr, zw, full, lost int
	}
	streams := map[int]*tot{}
	nums := make([]uint64, 0, len(ts))
	for n := range ts {
		nums = append(nums, n)
	}
	sort.Slice(nums, func(i, j int) bool { return nums[i] < nums[j] })
	ourByFirst := map[uint64]connJSON{}
	for _, c := range us.conns {
		ourByFirst[c.FirstFrame] = c
	}
	for _, n := range nums {
		f := ts[n]
		s := streams[f.stream]
		if s == nil {
			s = &tot{first: n}
			if c, ok := ourByFirst[n]; ok {
				s.client = c.Client
			}
			streams[f.stream] = s
		}
		d := 1
		if f.src == s.client {
			d = 0
		}
		s.pk[d]++
		s.by[d] += f.length
		s.retr += b2i(f.flags[0])
		s.zw += b2i(f.flags[7])
		s.full += b2i(f.flags[10])
		s.lost += b2i(f.flags[4])

		a.frames++
		o, ok := us.frames[n]
		switch {
		case !ok:
			a.diff("frame_missing", "frame %d: tshark has TCP, h2scope decoded none", n)
			continue
		}
		agree := true
		for i, ff := range flagFields {
			got := o.flags&ff.flag != 0
			if got != f.flags[i] {
				agree = false
				a.diff("flag_"+ff.field, "frame %d: %s tshark=%v h2scope=%v", n, ff.field, f.flags[i], got)
			}
		}
		if agree {
			a.framesAgree++
		}
	}
	for n := range us.frames {
		if _, ok := ts[n]; !ok {
			a.diff("frame_extra", "frame %d: h2scope decoded TCP, tshark did not", n)
		}
	}
	a.tsConns = len(streams)
	for _, s := range streams {
		c, ok := ourByFirst[s.first]
		if !ok {
			a.diff("conn_missing", "tshark stream starting at frame %d has no h2scope connection", s.first)
			continue
		}
		same := c.Packets.C2S == s.pk[0] && c.Packets.S2C == s.pk[1] &&
			c.Bytes.C2S == s.by[0] && c.Bytes.S2C == s.by[1]
		if !same {
			a.diff("conn_counts", "connection %d (frame %d): packets %d/%d bytes %d/%d, tshark %d/%d %d/%d",
				c.ID, s.first, c.Packets.C2S, c.Packets.S2C, c.Bytes.C2S, c.Bytes.S2C, s.pk[0], s.pk[1], s.by[0], s.by[1])
		}
		counters := c.Retransmissions == s.retr && c.ZeroWindows == s.zw && c.WindowFull == s.full && c.LostSegments == s.lost
		if !counters {
			a.diff("conn_analysis", "connection %d: retrans/zerowin/full/lost %d/%d/%d/%d, tshark %d/%d/%d/%d",
				c.ID, c.Retransmissions, c.ZeroWindows, c.WindowFull, c.LostSegments, s.retr, s.zw, s.full, s.lost)
		}
		if same && counters {
			a.connsMatched++
		}
	}
	if a.ourConns != a.tsConns {
		a.diff("conn_count", "%d connections, tshark %d", a.ourConns, a.tsConns)
	}
	return a
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}

// corpusDir returns the shared corpus folder, or "" when absent.
func corpusDir() string {
	if d := os.Getenv("H2SCOPE_CORPUS"); d != "" {
		return d
	}
	d, _ := filepath.Abs("../../shared/corpus")
	if st, err := os.Stat(d); err == nil && st.IsDir() {
		return d
	}
	return ""
}

// captures lists the capture files below dir.
func captures(t *testing.T, dir string) []string {
	var files []string
	filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		name := d.Name()
		for _, ext := range []string{".pcap", ".pcapng", ".pcap.gz", ".pcapng.gz", ".pcap.zst", ".pcapng.zst"} {
			if strings.HasSuffix(name, ext) {
				files = append(files, p)
				break
			}
		}
		return nil
	})
	sort.Strings(files)
	return files
}

func requireTshark(t *testing.T) {
	if _, err := exec.LookPath("tshark"); err != nil {
		t.Fatalf("tshark not found: install it (apt-get install tshark); .ci/run does")
	}
}

// TestTCPAgainstTshark compares connections, per-direction packets and
// payload bytes, and every frame's TCP analysis flags with tshark on the
// project's captures and the shared corpus. Differences are allowed only
// where known.go explains them.
func TestTCPAgainstTshark(t *testing.T) {
	requireTshark(t)
	files := captures(t, "../testdata/pcaps")
	if dir := corpusDir(); dir != "" {
		files = append(files, captures(t, dir)...)
	} else {
		t.Log("shared corpus not found at ../../shared/corpus (set H2SCOPE_CORPUS): checking testdata/pcaps only")
	}
	rows := make([]agreement, len(files))
	eachFile(len(files), func(i int) { rows[i] = compare(t, files[i]) })
	printTable(t, rows)
	for _, r := range rows {
		if len(r.diffs) == 0 {
			continue
		}
		rel := relName(r.file)
		reason, known := knownDifferences[rel]
		if known {
			t.Logf("%s: known difference (%s): %v", rel, reason, r.diffs)
			continue
		}
		t.Errorf("%s: differs from tshark: %v\n\t%s", rel, r.diffs, strings.Join(r.examples, "\n\t"))
	}
	for rel := range knownDifferences {
		found := false
		for _, r := range rows {
			if relName(r.file) == rel {
				found = true
				if len(r.diffs) == 0 {
					t.Errorf("%s is listed as a known difference but now agrees with tshark: remove it from known.go and the README", rel)
				}
			}
		}
		if !found && corpusDir() != "" {
			t.Errorf("known difference %s: no such capture", rel)
		}
	}
}

// eachFile calls f with 0 to n-1, on two goroutines: tshark dominates
// the time and the machine has two cores.
func eachFile(n int, f func(i int)) {
	work := make(chan int)
	var wg sync.WaitGroup
	for range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range work {
				f(i)
			}
		}()
	}
	for i := range n {
		work <- i
	}
	close(work)
	wg.Wait()
}

func relName(p string) string {
	if dir := corpusDir(); dir != "" {
		if r, err := filepath.Rel(dir, p); err == nil && !strings.HasPrefix(r, "..") {
			return r
		}
	}
	return filepath.ToSlash(strings.TrimPrefix(p, "../"))
}

func printTable(t *testing.T, rows []agreement) {
	var b strings.Builder
	fmt.Fprintf(&b, "\n%-70s %9s %9s %9s %11s  %s\n", "capture", "conns", "tshark", "matched", "frames ok", "status")
	var files, exact, conns, matched, frames, agree int
	for _, r := range rows {
		status := "exact"
		if len(r.diffs) > 0 {
			status = "DIFF"
			if reason, ok := knownDifferences[relName(r.file)]; ok {
				status = "known: " + reason
			}
		} else {
			exact++
		}
		files++
		conns += r.tsConns
		matched += r.connsMatched
		frames += r.frames
		agree += r.framesAgree
		fmt.Fprintf(&b, "%-70s %9d %9d %9d %5d/%-5d  %s\n", relName(r.file), r.ourConns, r.tsConns, r.connsMatched, r.framesAgree, r.frames, status)
	}
	fmt.Fprintf(&b, "TOTAL: %d captures, %d exact; %d/%d tshark connections matched exactly; %d/%d TCP frames with identical analysis flags\n",
		files, exact, matched, conns, agree, frames)
	t.Log(b.String())
}
