package report

import (
	"bytes"
	"os"
	"strings"
	"testing"
	"time"
)

// fakeClock is a clock the test moves by hand.
type fakeClock struct{ t time.Time }

func (c *fakeClock) now() time.Time          { return c.t }
func (c *fakeClock) advance(d time.Duration) { c.t = c.t.Add(d) }
func newFakeClock() *fakeClock               { return &fakeClock{t: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)} }

func TestProgressLine(t *testing.T) {
	tests := []struct {
		read, total int64
		elapsed     time.Duration
		want        string
	}{
		{50e6, 100e6, 10 * time.Second, "[############............]  50%  50.0/100.0 MB  5.0 MB/s  ETA 10s"},
		{100e6, 100e6, 4 * time.Second, "[########################] 100%  100.0/100.0 MB  25.0 MB/s"},
		{0, 100e6, 0, "[........................]   0%  0.0/100.0 MB"},
		{3e6, 0, 2 * time.Second, "3.0 MB  1.5 MB/s"},
		{150e6, 100e6, time.Second, "[########################] 100%  150.0/100.0 MB  150.0 MB/s"},
	}
	for _, tt := range tests {
		if got := progressLine(tt.read, tt.total, tt.elapsed); got != tt.want {
			t.Errorf("progressLine(%d, %d, %s)\n got %q\nwant %q", tt.read, tt.total, tt.elapsed, got, tt.want)
		}
	}
}

// TestProgressThrottle checks that the line is drawn only once 200 ms have
// passed since the start and the last redraw, each time over the last.
func TestProgressThrottle(t *testing.T) {
	clk := newFakeClock()
	var b bytes.Buffer
	p := newProgress(&b, true, clk.now)
	p.Update(1e6, 100e6)
	clk.advance(100 * time.Millisecond)
	p.Update(2e6, 100e6)
	if b.Len() != 0 {
		t.Fatalf("drawn before 200 ms: %q", b.String())
	}
	clk.advance(100 * time.Millisecond)
	p.Update(20e6, 100e6)
	if got, want := b.String(), "\r[####....................]  20%  20.0/100.0 MB  100.0 MB/s  ETA 1s"; got != want {
		t.Fatalf("first draw\n got %q\nwant %q", got, want)
	}
	for range 10 { // 150 ms in 15 ms steps: no redraw
		clk.advance(15 * time.Millisecond)
		p.Update(21e6, 100e6)
	}
	if n := strings.Count(b.String(), "\r"); n != 1 {
		t.Fatalf("%d draws within 200 ms of the first, want 1: %q", n, b.String())
	}
	clk.advance(50 * time.Millisecond)
	p.Update(40e6, 100e6)
	if n := strings.Count(b.String(), "\r"); n != 2 {
		t.Fatalf("%d draws after 200 ms, want 2: %q", n, b.String())
	}
}

// TestProgressClears checks that a shorter line is padded over the longer
// one, and that Done blanks the line and returns the cursor.
func TestProgressClears(t *testing.T) {
	clk := newFakeClock()
	var b bytes.Buffer
	p := newProgress(&b, true, clk.now)
	clk.advance(time.Second)
	p.Update(12_345_678, 0) // "12.3 MB  12.3 MB/s"
	first := len("12.3 MB  12.3 MB/s")
	clk.advance(time.Second)
	p.Update(1, 0) // shorter, padded
	short := "0.0 MB  0.0 MB/s"
	if got := b.String(); !strings.HasSuffix(got, "\r"+short+strings.Repeat(" ", first-len(short))) {
		t.Errorf("shorter line not padded: %q", got)
	}
	b.Reset()
	p.Done()
	if got, want := b.String(), "\r"+strings.Repeat(" ", first)+"\r"; got != want {
		t.Errorf("Done wrote %q, want %q", got, want)
	}
	b.Reset()
	p.Done()
	if b.Len() != 0 {
		t.Errorf("second Done wrote %q", b.String())
	}
}

// TestProgressOff checks that a Progress off a terminal, a nil one, or one
// that never drew writes nothing.
func TestProgressOff(t *testing.T) {
	clk := newFakeClock()
	var b bytes.Buffer
	p := newProgress(&b, false, clk.now)
	clk.advance(time.Second)
	p.Update(1, 2)
	p.Done()
	var nilp *Progress
	nilp.Update(1, 2)
	nilp.Done()
	quick := newProgress(&b, true, clk.now)
	quick.Update(2, 2)
	quick.Done()
	if b.Len() != 0 {
		t.Errorf("wrote %q", b.String())
	}

	pr, pw, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer pr.Close()
	defer pw.Close()
	if p := NewProgress(pw); p.on {
		t.Error("NewProgress on a pipe is on")
	}
}

// TestProgressFiles checks the line of a run over many files (batch):
// files done of all after the percentage, then bytes, rate and time left;
// NewProgressWriter draws on anything, with the clock it is given.
func TestProgressFiles(t *testing.T) {
	tests := []struct {
		done, files int
		read, total int64
		want        string
	}{
		{3, 15, 20e6, 100e6, "\r[####....................]  20%  3/15 files  20.0/100.0 MB  10.0 MB/s  ETA 8s"},
		{15, 15, 100e6, 100e6, "\r[########################] 100%  15/15 files  100.0/100.0 MB  50.0 MB/s"},
		{0, 4, 0, 0, "\r0/4 files  0.0 MB"},
	}
	for _, tt := range tests {
		clk := newFakeClock()
		var b bytes.Buffer
		p := NewProgressWriter(&b, clk.now)
		clk.advance(2 * time.Second)
		p.UpdateFiles(tt.done, tt.files, tt.read, tt.total)
		if b.String() != tt.want {
			t.Errorf("UpdateFiles(%d, %d, %d, %d)\n got %q\nwant %q", tt.done, tt.files, tt.read, tt.total, b.String(), tt.want)
		}
	}
	var nilp *Progress
	nilp.UpdateFiles(1, 2, 3, 4)
}
