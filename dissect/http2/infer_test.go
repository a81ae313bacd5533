package http2

import (
	"fmt"
	"strings"
	"testing"

	xhttp2 "golang.org/x/net/http2"
)

// warmUp writes eight PING frames (136 bytes) as one packet, so that a
// direction captured mid-connection finds its frame boundary at once.
func warmUp(w *wire) *wire {
	w.mark()
	for range 8 {
		w.check(w.fr.WritePing(false, [8]byte{}))
	}
	return w
}

// fmtStalls renders stalls as "dir s=N @start-@end by [inferred] min=M".
func fmtStalls(ss []Stall) string {
	var parts []string
	for _, x := range ss {
		s := fmt.Sprintf("%v s=%d @%d-", x.Dir, x.Stream, x.Start.Frame)
		if x.End != nil {
			s += fmt.Sprintf("@%d %s", x.End.Frame, x.EndedBy)
		} else {
			s += "open"
		}
		if x.Inferred {
			s += " inferred"
		}
		parts = append(parts, s+fmt.Sprintf(" min=%d", x.MinWindow))
	}
	return strings.Join(parts, "; ")
}

// stallsOf renders the connection's stalls, then each stream's, with the
// counts dropped past the bounds.
func stallsOf(c *Conn) []string {
	s := c.Summary()
	out := []string{fmt.Sprintf("conn: %s dropped=%d", fmtStalls(s.Stalls), s.StallsDropped)}
	for _, st := range c.Streams() {
		if len(st.Stalls) > 0 || st.StallsDropped > 0 {
			out = append(out, fmt.Sprintf("stream %d: %s dropped=%d", st.ID, fmtStalls(st.Stalls), st.StallsDropped))
		}
	}
	return out
}

// TestInferredStalls scripts senders whose windows' starting values the
// capture did not show (MidConnection, both directions starting with
// PINGs at a frame boundary, refs numbered by chunk from 1) and checks
// the stalls inferred from the deficit: a sender pinned at the same
// level at least twice was held there by its window, which under the
// tightest estimate of its start was zero each time.
func TestInferredStalls(t *testing.T) {
	// round: the server sends n bytes on stream 1, the client returns
	// them to stream 1 and the connection.
	round := func(cli, srv *wire, n int) string {
		srv.data(1, false, n)
		cli.windowUpdate(1, uint32(n))
		cli.windowUpdate(0, uint32(n))
		return "scc"
	}
	tests := []struct {
		name string
		opts Options
		// build writes both directions after their warm-up and returns
		// the order of the chunks after it.
		build func(cli, srv *wire) string
		want  []string
	}{{
		// The server stops at the same deficit three times, each
		// time until a WINDOW_UPDATE: three stream stalls. The
		// connection's deficit peaks on the same frames, which the
		// stream's window explains: nothing is inferred for it.
		name: "pinned three times",
		opts: Options{MidConnection: true},
		build: func(cli, srv *wire) string {
			o := round(cli, srv, 1000) + round(cli, srv, 1000) + round(cli, srv, 1000)
			srv.data(1, true, 10)
			return o + "s"
		},
		want: []string{
			"conn:  dropped=0",
			"stream 1: s2c s=1 @3-@4 WINDOW_UPDATE inferred min=0; s2c s=1 @6-@7 WINDOW_UPDATE inferred min=0; s2c s=1 @9-@10 WINDOW_UPDATE inferred min=0 dropped=0",
		},
	}, {
		// The deficit peaks once (1000, then 500 and 300 after the
		// window was returned): the end of the data, not a window.
		name: "maximum once",
		opts: Options{MidConnection: true},
		build: func(cli, srv *wire) string {
			o := round(cli, srv, 1000) + round(cli, srv, 500) + round(cli, srv, 300)
			srv.data(1, true, 0)
			return o + "s"
		},
		want: []string{"conn:  dropped=0"},
	}, {
		// A higher peak later drops the candidates at the lower one.
		name: "higher peak later",
		opts: Options{MidConnection: true},
		build: func(cli, srv *wire) string {
			o := round(cli, srv, 1000) + round(cli, srv, 1000) + round(cli, srv, 1500)
			return o
		},
		want: []string{"conn:  dropped=0"},
	}, {
		// Pinned twice, then the last frame reaches the same level
		// with END_STREAM: it ends no stall, the two before stand.
		name: "pinned twice then end at the ceiling",
		opts: Options{MidConnection: true},
		build: func(cli, srv *wire) string {
			o := round(cli, srv, 1000) + round(cli, srv, 1000)
			srv.data(1, true, 1000)
			return o + "s"
		},
		want: []string{
			"conn:  dropped=0",
			"stream 1: s2c s=1 @3-@4 WINDOW_UPDATE inferred min=0; s2c s=1 @6-@7 WINDOW_UPDATE inferred min=0 dropped=0",
		},
	}, {
		// Once at the ceiling, then at it again with END_STREAM: only
		// once as evidence.
		name: "once then end at the ceiling",
		opts: Options{MidConnection: true},
		build: func(cli, srv *wire) string {
			o := round(cli, srv, 1000)
			srv.data(1, true, 1000)
			return o + "s"
		},
		want: []string{"conn:  dropped=0"},
	}, {
		// The streams were given plenty, the connection's window
		// holds the server back: connection stalls, none on streams.
		// The last is still open when the capture ends.
		name: "connection pinned",
		opts: Options{MidConnection: true},
		build: func(cli, srv *wire) string {
			cli.windowUpdate(1, 100000)
			cli.windowUpdate(3, 100000)
			o := "cc"
			for i := range 3 {
				srv.data(1, false, 600)
				srv.data(3, false, 400)
				o += "ss"
				if i < 2 {
					cli.windowUpdate(0, 1000)
					o += "c"
				}
			}
			return o
		},
		want: []string{"conn: s2c s=0 @6-@7 WINDOW_UPDATE inferred min=0; s2c s=0 @9-@10 WINDOW_UPDATE inferred min=0; s2c s=0 @12-open inferred min=0 dropped=0"},
	}, {
		// RST_STREAM ends the stall in progress, as for a known window.
		name: "reset",
		opts: Options{MidConnection: true},
		build: func(cli, srv *wire) string {
			o := round(cli, srv, 1000) + round(cli, srv, 1000)
			srv.data(1, false, 1000)
			cli.mark()
			cli.check(cli.fr.WriteRSTStream(1, xhttp2.ErrCodeCancel))
			return o + "sc"
		},
		want: []string{
			"conn:  dropped=0",
			"stream 1: s2c s=1 @3-@4 WINDOW_UPDATE inferred min=0; s2c s=1 @6-@7 WINDOW_UPDATE inferred min=0; s2c s=1 @9-@10 RST_STREAM inferred min=0 dropped=0",
		},
	}, {
		// Past the per-stream bound, stalls are counted, not kept.
		name: "bounded",
		opts: Options{MidConnection: true},
		build: func(cli, srv *wire) string {
			var o string
			for range maxStreamStalls + 6 {
				o += round(cli, srv, 100)
			}
			return o
		},
		want: func() []string {
			var ss []string
			for i := range maxStreamStalls {
				ss = append(ss, fmt.Sprintf("s2c s=1 @%d-@%d WINDOW_UPDATE inferred min=0", 3+3*i, 4+3*i))
			}
			return []string{"conn:  dropped=0", "stream 1: " + strings.Join(ss, "; ") + " dropped=6"}
		}(),
	}, {
		// A SETTINGS_INITIAL_WINDOW_SIZE seen mid-capture: stream 3,
		// opened after it, has a known window and its stalls are
		// measured; stream 1, opened before, is still inferred, and
		// its inference starts over at the SETTINGS since its
		// window moved by an amount the capture did not show.
		name: "settings mid-capture",
		opts: Options{MidConnection: true},
		build: func(cli, srv *wire) string {
			o := round(cli, srv, 1000) + round(cli, srv, 1000)
			cli.settings(xhttp2.Setting{ID: xhttp2.SettingInitialWindowSize, Val: 500})
			cli.headers(3, true, ":method", "GET", ":scheme", "http", ":authority", "x", ":path", "/")
			o += "cc"
			for range 2 {
				srv.data(3, false, 500)
				cli.windowUpdate(3, 500)
				o += "sc"
			}
			o += round(cli, srv, 700) + round(cli, srv, 700)
			return o
		},
		want: []string{
			"conn:  dropped=0",
			"stream 1: s2c s=1 @3-@4 WINDOW_UPDATE inferred min=0; s2c s=1 @6-@7 WINDOW_UPDATE inferred min=0; s2c s=1 @15-@16 WINDOW_UPDATE inferred min=0; s2c s=1 @18-@19 WINDOW_UPDATE inferred min=0 dropped=0",
			"stream 3: s2c s=3 @11-@12 WINDOW_UPDATE min=0; s2c s=3 @13-@14 WINDOW_UPDATE min=0 dropped=0",
		},
	}, {
		// Known windows are measured as before, and nothing is
		// inferred.
		name: "known windows",
		opts: Options{},
		build: func(cli, srv *wire) string {
			cli.settings(xhttp2.Setting{ID: xhttp2.SettingInitialWindowSize, Val: 1000})
			srv.settings()
			cli.headers(1, true, ":method", "GET", ":scheme", "http", ":authority", "x", ":path", "/")
			o := "csc"
			o += round(cli, srv, 1000) + round(cli, srv, 1000) + round(cli, srv, 1000)
			return o
		},
		want: []string{
			"conn:  dropped=0",
			"stream 1: s2c s=1 @5-@6 WINDOW_UPDATE min=0; s2c s=1 @8-@9 WINDOW_UPDATE min=0; s2c s=1 @11-@12 WINDOW_UPDATE min=0 dropped=0",
		},
	}}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cli, srv := newWire(t, !tc.opts.MidConnection), newWire(t, false)
			order := tc.build(cli, srv)
			if tc.opts.MidConnection {
				// Put the warm-up first.
				cli, srv = prepend(t, warmUp(newWire(t, false)), cli), prepend(t, warmUp(newWire(t, false)), srv)
				order = "cs" + order
			} else {
				order = "c" + order // the preface
			}
			c, _ := run(t, tc.opts, interleave(cli, srv, order))
			wantLines(t, "stalls", stallsOf(c), tc.want)
			if a := c.Summary().Anomalies; a["flow_control_exceeded"] != 0 {
				t.Errorf("anomalies %v", a)
			}
		})
	}
}

// prepend returns a wire holding a's frames, then b's.
func prepend(t testing.TB, a, b *wire) *wire {
	w := newWire(t, false)
	w.buf.Write(a.bytes())
	w.buf.Write(b.bytes())
	w.starts = append(w.starts, a.starts...)
	for _, s := range b.starts {
		w.starts = append(w.starts, a.buf.Len()+s)
	}
	return w
}
