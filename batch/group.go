package batch

import (
	"context"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/h2scope/h2scope/dissect/capture"
)

// DefaultGap is the default Options.Gap: the most time between the last
// packet of a rotated file and the first packet of the next for the two to
// be one capture.
const DefaultGap = 5 * time.Minute

// tcpdumpName matches a tcpdump -C name: the extension and a counter
// (possibly empty: the first file has none).
var tcpdumpName = regexp.MustCompile(`(?i)^(.+\.(?:pcap|pcapng|cap))([0-9]*)$`)

// counterName matches a stem ending in counters or a timestamp, each field
// after a separator: name-20261122-101500, name_00001_20261122101500,
// name.1, name-2026-11-22T10:15:00.
var counterName = regexp.MustCompile(`^(.+?)((?:[-_.][0-9]+(?:[T:][0-9]+)*)+)$`)

// digits finds the numbers in a counter suffix.
var digits = regexp.MustCompile(`[0-9]+`)

// member is a file of a name series.
type member struct {
	path        string
	nums        []string // counters, compared as numbers field by field
	first, last time.Time
	timed       bool // first and last are known
}

// seriesName splits a file path into the key of its name series and its
// counters. Compression (.gz, .zst) is left out, since old files of a
// rotation are often compressed and the newest not. A tcpdump -C name
// (cap.pcap7) gets a "c" key: its directory and its name without the
// counter; a name with counters after a separator gets an "s" key: its
// directory, stem and extension. ok is false for a name without counters;
// plain is then, for a name ending in a capture extension, the "c" key of
// the tcpdump -C series it would be the first file of.
func seriesName(path string) (key string, nums []string, plain string, ok bool) {
	dir, base := filepath.Split(path)
	for _, z := range []string{".gz", ".zst"} {
		if len(base) > len(z) && strings.EqualFold(base[len(base)-len(z):], z) {
			base = base[:len(base)-len(z)]
			break
		}
	}
	if m := tcpdumpName.FindStringSubmatch(base); m != nil {
		if m[2] != "" {
			return "c\x00" + dir + "\x00" + m[1], []string{m[2]}, "", true
		}
		plain = "c\x00" + dir + "\x00" + m[1]
	}
	stem, ext := base, filepath.Ext(base)
	if ext != "" && digitRun(ext[1:]) != len(ext)-1 {
		stem = base[:len(base)-len(ext)]
	} else {
		ext = ""
	}
	if m := counterName.FindStringSubmatch(stem); m != nil {
		return "s\x00" + dir + "\x00" + m[1] + "\x00" + ext, digits.FindAllString(m[2], -1), plain, true
	}
	return "", nil, plain, false
}

// compareCounters orders counter lists field by field as numbers; a
// shorter list that is a prefix of the other comes first.
func compareCounters(a, b []string) int {
	for i := range min(len(a), len(b)) {
		if c := compareNumbers(a[i], b[i]); c != 0 {
			return c
		}
	}
	return len(a) - len(b)
}

// Group groups files (as Find returns them) into captures: the rotated
// files of one capture together, as the package documentation describes,
// every other file alone. gap is the most time between consecutive files
// of a capture (zero means DefaultGap). Finding the times of the files of
// a name series reads them through, workers files at a time; ctx stops
// that. The captures are ordered by their first file, as Find orders
// paths.
func Group(ctx context.Context, files []string, gap time.Duration, workers int) []Capture {
	if gap <= 0 {
		gap = DefaultGap
	}
	type parsed struct {
		key, plain string
		nums       []string
		ok         bool
	}
	ps := make([]parsed, len(files))
	counted := map[string]bool{} // tcpdump -C series with a counted file
	for i, p := range files {
		key, nums, plain, ok := seriesName(p)
		ps[i] = parsed{key, plain, nums, ok}
		if ok && strings.HasPrefix(key, "c\x00") {
			counted[key] = true
		}
	}
	series := map[string][]*member{}
	var keys []string
	var single []string
	for i, p := range files {
		key, nums := ps[i].key, ps[i].nums
		switch {
		case ps[i].plain != "" && counted[ps[i].plain]:
			// The first file of a tcpdump -C series has no counter.
			key, nums = ps[i].plain, nil
		case !ps[i].ok:
			single = append(single, p)
			continue
		}
		if series[key] == nil {
			keys = append(keys, key)
		}
		series[key] = append(series[key], &member{path: p, nums: nums})
	}
	var caps []Capture
	for _, p := range single {
		caps = append(caps, Capture{Files: []string{p}})
	}
	var timed []*member
	for _, k := range keys {
		ms := series[k]
		if len(ms) == 1 {
			caps = append(caps, Capture{Files: []string{ms[0].path}})
			continue
		}
		slices.SortFunc(ms, func(a, b *member) int {
			if c := compareCounters(a.nums, b.nums); c != 0 {
				return c
			}
			return naturalCompare(a.path, b.path)
		})
		timed = append(timed, ms...)
	}
	readSpans(ctx, timed, workers)
	for _, k := range keys {
		ms := series[k]
		if len(ms) == 1 {
			continue
		}
		cur := Capture{Files: []string{ms[0].path}}
		for i := 1; i < len(ms); i++ {
			prev, m := ms[i-1], ms[i]
			if prev.timed && m.timed && !m.first.Before(prev.last) && m.first.Sub(prev.last) <= gap {
				cur.Files = append(cur.Files, m.path)
				continue
			}
			caps = append(caps, cur)
			cur = Capture{Files: []string{m.path}}
		}
		caps = append(caps, cur)
	}
	slices.SortFunc(caps, func(a, b Capture) int { return naturalCompare(a.Files[0], b.Files[0]) })
	return caps
}

// readSpans finds the first and last packet times of ms, workers files at
// a time.
func readSpans(ctx context.Context, ms []*member, workers int) {
	sem := make(chan struct{}, max(workers, 1))
	var wg sync.WaitGroup
	for _, m := range ms {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			m.first, m.last, m.timed = span(ctx, m.path)
		})
	}
	wg.Wait()
}

// span reads the capture file at path through and returns the time of its
// first packet and the latest time of any packet, up to a fault if there
// is one. ok is false when the file has no packet or cannot be read.
func span(ctx context.Context, path string) (first, last time.Time, ok bool) {
	r, err := capture.Open([]string{path}, capture.Options{})
	if err != nil {
		return first, last, false
	}
	defer r.Close()
	for n := 0; ; n++ {
		if n&4095 == 0 && ctx.Err() != nil {
			return first, last, false
		}
		p, err := r.Next()
		if err != nil { // io.EOF, or a fault: the times so far stand
			return first, last, ok
		}
		if !ok {
			first, last, ok = p.TS, p.TS, true
		} else if p.TS.After(last) {
			last = p.TS
		}
	}
}
