package dissect

import (
	"context"
	"os"
	"reflect"
	"testing"

	"github.com/h2scope/h2scope/dissect/event"
	"github.com/h2scope/h2scope/dissect/tcp"
	"github.com/h2scope/h2scope/dissect/tls"
)

// benchFile is the capture BenchmarkRun reads: H2SCOPE_BENCH_FILE, or the
// largest committed test capture.
func benchFile() string {
	if f := os.Getenv("H2SCOPE_BENCH_FILE"); f != "" {
		return f
	}
	return "../testdata/pcaps/http1-keepalive.pcapng"
}

// benchRun runs opts over benchFile b.N times, reporting MB/s of capture
// file and allocations, and returns the last run's Stats.
func benchRun(b *testing.B, opts Options) Stats {
	f := benchFile()
	st, err := os.Stat(f)
	if err != nil {
		b.Skip(err)
	}
	b.SetBytes(st.Size())
	b.ReportAllocs()
	var s Stats
	for b.Loop() {
		if s, err = Run(context.Background(), []string{f}, opts); err != nil {
			b.Fatal(err)
		}
	}
	return s
}

// BenchmarkRun measures read+decode+TCP tracking and reassembly over a
// whole capture.
func BenchmarkRun(b *testing.B) {
	s := benchRun(b, Options{TCP: tcp.Options{OnFinish: func(*tcp.Conn) {}}})
	b.ReportMetric(float64(s.Packets)*float64(b.N)/b.Elapsed().Seconds(), "packets/s")
}

// BenchmarkRunDissect is BenchmarkRun with the application dissectors
// (HTTP/1, HTTP/2 with HPACK, gRPC, TLS) and an event sink that counts units.
func BenchmarkRunDissect(b *testing.B) {
	var units uint64
	benchRun(b, Options{Dissect: true, Sink: event.SinkFunc(func(*event.Event) { units++ })})
	b.ReportMetric(float64(units)/b.Elapsed().Seconds(), "units/s")
}

// BenchmarkRunDissectQuiet is BenchmarkRunDissect with no event sink, as
// `conns` runs: the dissectors skip building units.
func BenchmarkRunDissectQuiet(b *testing.B) {
	benchRun(b, Options{Dissect: true, OnConn: func(*tcp.Conn, *App) {}})
}

func TestRunCountsTestdata(t *testing.T) {
	var conns int
	st, err := Run(context.Background(), []string{"../testdata/pcaps/http1-nokeepalive.pcapng"},
		Options{TCP: tcp.Options{OnFinish: func(*tcp.Conn) { conns++ }}})
	if err != nil {
		t.Fatal(err)
	}
	// 15 requests, one connection each (truth file); 158 frames (tshark).
	if conns != 15 || st.Packets != 158 || st.Layer.TCP != 158 || len(st.Faults) != 0 {
		t.Errorf("got %d connections, %d packets, %d TCP, faults %v; want 15, 158, 158, none", conns, st.Packets, st.Layer.TCP, st.Faults)
	}
}

// BenchmarkRunTLSDecrypt dissects HTTP/2 over TLS 1.3 with its key log:
// reading, TCP, record decryption and HTTP/2, per capture byte.
func BenchmarkRunTLSDecrypt(b *testing.B) {
	for _, name := range []string{"h2-tls", "h2-tls12"} {
		b.Run(name, func(b *testing.B) {
			f := "../testdata/pcaps/" + name + ".pcapng"
			raw, err := os.ReadFile("../testdata/pcaps/" + name + ".keys")
			if err != nil {
				b.Skip(err)
			}
			keys := tls.NewKeyLog()
			keys.Add(raw, name)
			st, _ := os.Stat(f)
			b.SetBytes(st.Size())
			b.ReportAllocs()
			var frames int
			for b.Loop() {
				frames = 0
				_, err := Run(context.Background(), []string{f}, Options{Dissect: true, Keys: keys,
					Sink: event.SinkFunc(func(e *event.Event) {
						if e.Proto == event.ProtoHTTP2 && e.Type != "PREFACE" {
							frames++
						}
					})})
				if err != nil {
					b.Fatal(err)
				}
			}
			if frames != 81 {
				b.Fatalf("%d HTTP/2 frames, want 81", frames)
			}
		})
	}
}

// TestOnAppDeliversEachAppOnce: with OnApp set, every connection's App goes
// to OnApp, once and before OnConn, which then gets nil; without it, OnConn
// gets the same App.
func TestOnAppDeliversEachAppOnce(t *testing.T) {
	files := []string{"../testdata/pcaps/grpc-cancel-storm.pcapng", "../testdata/pcaps/http1-nokeepalive.pcapng", "../testdata/pcaps/tls13-resume.pcapng"}
	for _, f := range files {
		handed := map[event.ConnID]*App{}
		finished := map[event.ConnID]bool{}
		opts := Options{Dissect: true, Sequential: true}
		opts.OnApp = func(c *tcp.Conn, app *App) {
			if _, ok := handed[c.ID]; ok || finished[c.ID] {
				t.Errorf("%s: connection %d: OnApp again or after OnConn", f, c.ID)
			}
			handed[c.ID] = app
		}
		opts.OnConn = func(c *tcp.Conn, app *App) {
			if _, ok := handed[c.ID]; !ok || app != nil {
				t.Errorf("%s: connection %d: OnConn before OnApp, or with an App (%v)", f, c.ID, app != nil)
			}
			finished[c.ID] = true
		}
		if _, err := Run(context.Background(), []string{f}, opts); err != nil {
			t.Fatal(err)
		}
		kept := map[event.ConnID]*App{}
		opts.OnApp = nil
		opts.OnConn = func(c *tcp.Conn, app *App) { kept[c.ID] = app }
		if _, err := Run(context.Background(), []string{f}, opts); err != nil {
			t.Fatal(err)
		}
		if len(kept) == 0 || !reflect.DeepEqual(kept, handed) {
			t.Errorf("%s: OnConn alone got the Apps of %d connections, not those OnApp got (%d)", f, len(kept), len(handed))
		}
	}
}
