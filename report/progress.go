package report

import (
	"fmt"
	"io"
	"os"
	"strings"
	"time"
)

// progressEvery is the least time between two redraws of the progress
// line; none is drawn before it has passed since the start, so short runs
// show nothing.
const progressEvery = 200 * time.Millisecond

// progressBar is the width of the bar, in characters.
const progressBar = 24

// Progress draws a one-line progress bar (bytes read of total, percent,
// rate, time left) on a terminal while captures are read, redrawn in place
// with \r at most five times a second and cleared by Done. Its methods do
// nothing when it was not given a terminal, or on a nil *Progress. It must
// be used from one goroutine.
type Progress struct {
	w     io.Writer
	on    bool
	now   func() time.Time
	start time.Time
	last  time.Time // the last redraw, or start
	width int       // characters of the line on screen, 0 when none
}

// NewProgress returns a Progress drawing on f (normally os.Stderr) when f
// is a terminal, and doing nothing otherwise.
func NewProgress(f *os.File) *Progress {
	return newProgress(f, isTerminal(f), time.Now)
}

// NewProgressWriter returns a Progress drawing on w whether or not it is
// a terminal (a --progress flag forces it), reading the time from now
// (nil: time.Now).
func NewProgressWriter(w io.Writer, now func() time.Time) *Progress {
	if now == nil {
		now = time.Now
	}
	return newProgress(w, true, now)
}

func newProgress(w io.Writer, on bool, now func() time.Time) *Progress {
	p := &Progress{w: w, on: on, now: now}
	if on {
		p.start = now()
		p.last = p.start
	}
	return p
}

// Update records that read of total bytes are read (total 0: unknown),
// redrawing the line unless it was drawn less than 200 ms ago. Its
// signature is that of dissect.Options.Progress.
func (p *Progress) Update(read, total int64) {
	p.draw(func(elapsed time.Duration) string { return progressLine(read, total, elapsed) })
}

// UpdateFiles records, for a run over many files, that done of files
// files are finished and read of total bytes are read (total 0:
// unknown), redrawing as Update does with the files after the percentage:
// "[#####...]  20%  3/15 files  20.0/100.0 MB  5.0 MB/s  ETA 16s".
func (p *Progress) UpdateFiles(done, files int, read, total int64) {
	p.draw(func(elapsed time.Duration) string {
		return progressText(read, total, elapsed, fmt.Sprintf("%d/%d files", done, files))
	})
}

// draw redraws the line that line renders for the time elapsed since the
// start, unless it was drawn less than 200 ms ago.
func (p *Progress) draw(line func(elapsed time.Duration) string) {
	if p == nil || !p.on {
		return
	}
	t := p.now()
	if t.Sub(p.last) < progressEvery {
		return
	}
	p.last = t
	p.show(line(t.Sub(p.start)))
}

// show draws line over the one on screen.
func (p *Progress) show(line string) {
	n := len([]rune(line))
	pad := ""
	if n < p.width {
		pad = strings.Repeat(" ", p.width-n)
	}
	fmt.Fprintf(p.w, "\r%s%s", line, pad)
	p.width = max(n, p.width)
}

// Done clears the progress line, if one is shown.
func (p *Progress) Done() {
	if p == nil || !p.on || p.width == 0 {
		return
	}
	fmt.Fprintf(p.w, "\r%s\r", strings.Repeat(" ", p.width))
	p.width = 0
}

// progressLine renders the progress after elapsed time.
func progressLine(read, total int64, elapsed time.Duration) string {
	return progressText(read, total, elapsed, "")
}

// progressText renders the progress after elapsed time, with count (if
// not empty) after the percentage.
func progressText(read, total int64, elapsed time.Duration, count string) string {
	var b strings.Builder
	rate := 0.0
	if s := elapsed.Seconds(); s > 0 {
		rate = float64(read) / s
	}
	if total > 0 {
		frac := min(max(float64(read)/float64(total), 0), 1)
		fill := int(frac * progressBar)
		fmt.Fprintf(&b, "[%s%s] %3d%%  ", strings.Repeat("#", fill), strings.Repeat(".", progressBar-fill), int(frac*100))
		if count != "" {
			b.WriteString(count + "  ")
		}
		fmt.Fprintf(&b, "%s/%s MB", mb(read), mb(total))
	} else {
		if count != "" {
			b.WriteString(count + "  ")
		}
		fmt.Fprintf(&b, "%s MB", mb(read))
	}
	if rate > 0 {
		fmt.Fprintf(&b, "  %s MB/s", mb(int64(rate)))
		if total > read {
			eta := time.Duration(float64(total-read) / rate * float64(time.Second))
			fmt.Fprintf(&b, "  ETA %s", eta.Round(time.Second))
		}
	}
	return b.String()
}

// mb formats a byte count in megabytes (10^6 bytes), one decimal.
func mb(n int64) string { return fmt.Sprintf("%.1f", float64(n)/1e6) }
