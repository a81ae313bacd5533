package http2_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/h2scope/h2scope/dissect"
	"github.com/h2scope/h2scope/dissect/event"
	"github.com/h2scope/h2scope/dissect/http2"
	"github.com/h2scope/h2scope/dissect/tcp"
)

// corpusDir is the shared capture corpus; tests over it skip when it is
// absent.
const corpusDir = "../../../shared/corpus"

// typeNumbers maps frame type names back to their numbers, as tshark
// prints http2.type.
var typeNumbers = func() map[string]int {
	m := make(map[string]int)
	for i := 0; i < 256; i++ {
		m[http2.FrameType(i).String()] = i
	}
	return m
}()

// dissectCapture runs the project's pipeline over file, giving every
// connection to or from port an http2.Conn, and returns the frames as
// "packet:type/stream/length" in event order, with the Conns.
func dissectCapture(t *testing.T, file string, port uint16, opts http2.Options) ([]string, []*http2.Conn, []event.Event) {
	t.Helper()
	path := filepath.Join(corpusDir, file)
	if _, err := os.Stat(path); err != nil {
		t.Skipf("corpus capture absent: %v", err)
	}
	var frames []string
	var evs []event.Event
	var conns []*http2.Conn
	sink := event.SinkFunc(func(e *event.Event) {
		x := *e
		if e.HTTP2 != nil {
			d := *e.HTTP2
			d.Headers = append([]event.Header(nil), d.Headers...)
			x.HTTP2 = &d
		}
		evs = append(evs, x)
		if e.Type != "PREFACE" {
			frames = append(frames, fmt.Sprintf("%d:%d/%d/%d", e.Ref.Frame, typeNumbers[e.Type], e.Stream, e.Len))
		}
	})
	_, err := dissect.Run(context.Background(), []string{path}, dissect.Options{TCP: tcp.Options{
		NewHandler: func(c *tcp.Conn) tcp.StreamHandler {
			if c.Server.Port() != port && c.Client.Port() != port {
				return nil
			}
			h := http2.NewConn(c.ID, sink, opts)
			conns = append(conns, h)
			return h
		},
	}})
	if err != nil {
		t.Fatal(err)
	}
	return frames, conns, evs
}

// The want strings below list every HTTP/2 frame as "packet:type/stream/
// length", from
//
//	tshark -r F --disable-protocol grpc -d tcp.port==P,http2 -Y http2 \
//	  -T fields -e frame.number -e http2.type -e http2.streamid -e http2.length
//
// (tshark 4.0.17; one packet may carry several frames, listed in order;
// the output is the same with the gRPC dissector enabled for these
// captures). h2scope gives each frame the packet that completed it, as
// tshark does for frames reassembled across segments.
var corpus = []struct {
	file string
	port uint16
	want string
	// startOnly skips the mid-connection run.
	startOnly bool
	check     func(t *testing.T, c *http2.Conn, evs []event.Event)
}{
	{
		// nghttp2 client with prior knowledge: RFC 7540 PRIORITY frames on
		// idle streams 3-11 (which open no stream), a 18576-byte request
		// header block over HEADERS and CONTINUATION spread over several
		// segments, a pushed stream 2.
		file: "arkime/http2-nghttp2.pcap", port: 80,
		want: "4:4/0/12 4:2/3/5 4:2/5/5 4:2/7/5 4:2/9/5 4:2/11/5 10:4/0/24 10:4/0/0 22:1/13/16384 24:9/13/2192 24:4/0/0 26:5/13/47 28:1/13/224 28:1/2/62 35:0/13/6616 58:0/2/16384 73:0/2/9437 77:8/0/4 85:8/2/4 92:0/2/13261 95:7/0/8",
		check: func(t *testing.T, c *http2.Conn, evs []event.Event) {
			st := c.Streams()
			if len(st) != 2 || st[0].ID != 2 || st[0].PushedBy != 13 || st[0].Status != 200 || st[0].DataBytes.S2C != 16384+9437+13261 ||
				st[1].ID != 13 || st[1].Method != "GET" || st[1].Path != "/" || st[1].Authority != "nghttp2.org" || st[1].Status != 200 || st[1].Pushes != 1 {
				t.Errorf("streams %+v", st)
			}
			s := c.Summary()
			if s.HeaderBlocks != 4 || s.HeaderFields != s.HeaderFieldsDecoded || s.HeaderBlocksUndecodable != 0 || len(s.Anomalies) != 0 {
				t.Errorf("summary %+v", s)
			}
		},
	},
	{
		// No SYN in the capture, but the client's first segment holds the
		// connection preface.
		file: "ndpi/http2.pcapng", port: 29518,
		want: "1:4/0/18 1:8/0/4 2:1/3/93 3:0/3/135 4:4/0/24 5:4/0/0 5:8/0/4 6:8/0/4 7:1/3/83 8:0/3/86 9:4/0/0 10:7/0/8",
	},
	{
		// The server's SETTINGS precede the client's preface; packet 9
		// carries the response HEADERS, DATA and an empty END_STREAM DATA.
		file: "sv/bug-5929-02/http2_multiple_headers.pcap", port: 80,
		want: "4:4/0/18 4:8/0/4 5:4/0/18 5:8/0/4 6:1/1/93 7:4/0/0 8:4/0/0 9:1/1/443 9:0/1/185 9:0/1/0",
	},
	{
		// grpc-go unary call; an unrelated loopback connection is not
		// given to the dissector.
		file: "grpc-go-pro/Unary.pcapng", port: 50051,
		want: "29:4/0/6 32:4/0/0 35:4/0/0 37:4/0/0 37:1/1/82 39:0/1/14 41:8/0/4 41:6/0/8 43:1/1/14 43:0/1/20 43:1/1/24 45:6/0/8 47:8/0/4 47:6/0/8 49:6/0/8",
		check: func(t *testing.T, c *http2.Conn, evs []event.Event) {
			st := c.Streams()
			if len(st) != 1 || st[0].Method != "POST" || st[0].ContentType != "application/grpc" || st[0].GRPCStatus == nil ||
				*st[0].GRPCStatus != 0 || !st[0].ServerTrailers || st[0].ServerEnd == nil || st[0].ServerEnd.Frame != 43 ||
				st[0].ClientEnd == nil || st[0].ClientEnd.Frame != 39 || !strings.HasPrefix(st[0].Path, "/") {
				t.Errorf("streams %+v", st)
			}
			// grpc-go's window: its BDP estimator PINGs and WINDOW_UPDATEs
			// keep the windows known throughout.
			for _, e := range evs {
				if e.Type == "DATA" && (e.HTTP2 == nil || e.HTTP2.StreamWindowAfter == nil || e.HTTP2.ConnWindowAfter == nil) {
					t.Errorf("DATA without windows: %+v", e)
				}
			}
		},
	},
	{
		file: "grpc-go-pro/Bidi Streaming.pcapng", port: 50051,
		want: "7:4/0/0 8:4/0/6 11:4/0/0 12:4/0/0 15:1/1/77 17:0/1/14 19:8/0/4 19:6/0/8 21:6/0/8 23:1/1/14 23:0/1/21 25:8/0/4 25:6/0/8 27:6/0/8 29:0/1/12 31:8/0/4 31:6/0/8 31:0/1/19 33:6/0/8 33:8/0/4 33:6/0/8 35:6/0/8 37:0/1/11 39:8/0/4 39:6/0/8 39:0/1/18 41:6/0/8 41:8/0/4 41:6/0/8 43:6/0/8 45:0/1/0 47:6/0/8 49:6/0/8 51:1/1/24",
	},
	{
		file: "grpc-go-pro/Client Streaming.pcapng", port: 50051,
		want: "6:4/0/0 9:4/0/6 11:4/0/0 12:4/0/0 15:1/1/74 17:0/1/14 19:8/0/4 19:6/0/8 21:6/0/8 23:0/1/12 25:8/0/4 25:6/0/8 27:6/0/8 29:0/1/11 31:8/0/4 31:6/0/8 33:6/0/8 35:0/1/0 37:6/0/8 39:6/0/8 41:1/1/14 41:0/1/47 43:1/1/24 45:8/0/4 45:6/0/8 47:6/0/8",
	},
	{
		// Ten DATA frames in one packet; the connection ends with a RST.
		file: "grpc-go-pro/Server Streaming.pcapng", port: 50051,
		want: "6:4/0/0 9:4/0/6 11:4/0/0 13:1/1/78 15:4/0/0 17:0/1/14 19:8/0/4 19:6/0/8 21:6/0/8 23:1/1/14 23:0/1/30 23:0/1/30 23:0/1/30 23:0/1/30 23:0/1/30 23:0/1/30 23:0/1/30 23:0/1/30 23:0/1/30 23:0/1/30 25:1/1/24 27:8/0/4 27:6/0/8 29:6/0/8",
	},
	{
		// DoH with prior knowledge: the server answers stream 7 after the client's
		// RST_STREAM (frames in flight), which is not counted as an anomaly.
		file: "sv/dns-over-http2/dns_over_https.pcap", port: 80,
		want: "4:4/0/30 4:8/0/4 4:1/1/197 4:1/3/157 5:4/0/18 5:8/0/4 6:4/0/0 7:4/0/0 8:1/1/350 9:0/1/468 9:0/1/0 " +
			"9:6/0/8 10:1/3/37 10:0/3/468 11:0/3/0 12:6/0/8 13:1/5/158 14:1/7/159 15:1/5/75 16:0/5/468 17:0/5/0 " +
			"17:6/0/8 18:8/0/4 19:6/0/8 20:3/7/4 21:1/7/37 21:0/7/468 22:0/7/0",
	},
	{
		// 40 DoH POST streams, PRIORITY frames on idle streams, GOAWAY.
		file: "sv/dns-over-http2-post/dns_over_https_POST.pcap", port: 80,
		want: "4:4/0/18 4:8/0/4 4:2/3/5 4:2/5/5 4:2/7/5 4:2/9/5 4:2/11/5 4:2/13/5 5:4/0/18 5:8/0/4 6:1/15/185 " +
			"7:0/15/48 8:4/0/0 9:4/0/0 10:1/15/181 10:0/15/128 11:0/15/0 12:1/17/30 13:0/17/51 14:1/17/59 " +
			"14:0/17/128 15:0/17/0 16:1/19/30 17:0/19/55 18:1/21/30 19:0/21/52 20:1/23/26 21:1/19/36 21:0/19/128 " +
			"22:0/23/51 23:0/19/0 24:1/21/36 24:0/21/128 25:0/21/0 26:1/23/27 26:0/23/128 27:0/23/0 28:1/25/30 " +
			"29:0/25/50 30:1/25/36 30:0/25/128 31:0/25/0 32:1/27/26 33:0/27/52 34:1/29/26 35:0/29/51 36:1/27/35 " +
			"36:0/27/128 37:0/27/0 38:1/29/27 38:0/29/128 39:0/29/0 40:1/31/26 41:0/31/51 42:1/31/27 42:0/31/128 " +
			"43:0/31/0 44:1/33/26 45:0/33/51 46:1/33/27 46:0/33/128 47:0/33/0 48:1/35/26 49:0/35/52 50:1/35/59 " +
			"50:0/35/128 51:0/35/0 52:1/37/26 53:0/37/52 54:1/37/35 54:0/37/128 55:0/37/0 56:1/39/26 57:0/39/51 " +
			"58:1/39/35 58:0/39/128 59:0/39/0 60:1/41/30 61:0/41/57 62:1/43/26 63:0/43/51 64:1/41/36 64:0/41/128 " +
			"65:0/41/0 66:1/43/36 66:0/43/128 67:0/43/0 68:1/45/30 69:0/45/56 70:1/45/36 70:0/45/128 71:0/45/0 " +
			"72:1/47/30 73:0/47/64 74:1/47/35 74:0/47/128 75:0/47/0 76:1/49/26 77:0/49/57 78:1/49/27 78:0/49/128 " +
			"79:0/49/0 80:1/51/26 81:0/51/56 82:1/51/59 82:0/51/128 83:0/51/0 84:1/53/26 85:0/53/64 86:1/53/36 " +
			"86:0/53/128 87:0/53/0 88:1/55/26 89:0/55/51 90:1/55/59 90:0/55/128 91:0/55/0 92:1/57/26 93:0/57/55 " +
			"94:1/59/26 95:0/59/52 96:1/59/36 96:0/59/128 97:0/59/0 98:1/57/36 98:0/57/128 99:1/61/26 100:0/57/0 " +
			"101:0/61/51 102:1/61/27 102:0/61/128 103:0/61/0 104:1/63/26 105:0/63/52 106:1/65/26 107:0/65/51 " +
			"108:1/65/27 108:0/65/128 109:0/65/0 110:1/63/35 110:0/63/128 111:0/63/0 112:1/67/26 113:0/67/51 " +
			"114:1/67/27 114:0/67/128 115:0/67/0 116:1/69/26 117:0/69/57 118:1/69/59 118:0/69/128 119:0/69/0 " +
			"120:1/71/26 121:0/71/56 122:1/71/36 122:0/71/128 123:0/71/0 124:1/73/26 125:0/73/64 126:1/73/36 " +
			"126:0/73/128 127:0/73/0 128:1/75/26 129:0/75/57 130:1/75/59 130:0/75/128 131:0/75/0 132:1/77/26 " +
			"133:0/77/56 134:1/77/37 134:0/77/128 135:0/77/0 136:1/79/26 137:0/79/64 138:1/79/39 138:0/79/128 " +
			"139:0/79/0 140:1/81/30 141:0/81/61 142:1/81/174 142:0/81/256 143:0/81/0 144:7/0/8",
	},
	{
		// 16 KiB DATA frames over many segments, 9 RST_STREAM.
		file: "sv/dns-over-http2-limit/input.pcap", port: 8080,
		want: "5:4/0/18 5:8/0/4 7:1/1/59 9:0/1/16384 13:0/1/16384 18:0/1/16384 19:0/1/16242 23:0/1/141 25:4/0/36 " +
			"27:4/0/0 27:8/0/4 29:4/0/0 31:0/1/16384 33:0/1/16384 36:0/1/16384 36:0/1/16243 39:0/1/142 43:1/1/53 " +
			"43:0/1/16 43:3/1/4 43:8/0/4 45:8/0/4 45:3/1/4 45:8/0/4 45:3/1/4 45:3/1/4 45:8/0/4 45:3/1/4 45:8/0/4 " +
			"45:3/1/4 45:8/0/4 45:3/1/4 45:8/0/4 45:3/1/4 45:3/1/4",
	},
	{
		// IPv6 loopback, 114 DATA frames, several per packet.
		file: "sv/http2-keywords/input.pcap", port: 3000,
		want: "4:4/0/6 6:4/0/12 6:1/1/57 8:4/0/0 10:4/0/0 10:1/1/88 10:0/1/4096 10:0/1/4096 10:0/1/4096 10:0/1/4096 " +
			"10:0/1/4096 11:0/1/2137 11:0/1/0 13:4/0/12 13:1/3/39 14:1/5/38 14:1/7/40 14:1/9/38 14:1/11/39 " +
			"16:4/0/0 16:1/3/92 16:1/5/36 16:1/7/35 16:1/9/34 16:1/11/11 16:0/3/4096 16:0/3/4096 16:0/3/4096 " +
			"16:0/3/4096 16:0/3/4096 16:0/3/4096 16:0/3/4096 16:0/3/4096 16:0/3/4096 16:0/3/4096 16:0/3/1958 " +
			"17:8/0/4 18:8/3/4 19:0/3/4096 19:0/3/4096 19:0/3/4096 19:0/3/4096 19:0/3/4096 19:0/3/2137 " +
			"19:0/5/4096 19:0/7/4096 19:0/9/3807 20:8/0/4 21:8/3/4 22:0/3/4096 22:0/3/4096 22:0/3/4096 " +
			"22:0/3/4096 22:0/3/3673 22:0/3/0 22:0/11/1675 22:0/5/4096 22:0/7/4096 22:0/9/2873 22:0/5/2209 " +
			"23:8/0/4 24:0/11/0 24:0/7/4096 24:0/9/0 24:0/5/4096 24:0/7/4096 24:0/5/4096 24:0/7/4096 24:0/5/4096 " +
			"24:0/7/4096 24:0/5/4096 24:0/7/1848 25:8/0/4 26:0/5/4096 26:0/7/4096 26:0/5/4096 26:0/7/4096 " +
			"26:0/5/4096 26:0/7/4096 26:0/5/4096 26:0/7/2705 26:0/5/3638 27:8/0/4 28:8/5/4 29:8/7/4 31:0/7/0 " +
			"31:0/5/4096 31:0/5/4096 31:0/5/4096 31:0/5/4096 31:0/5/4096 31:0/5/4096 31:0/5/4096 31:0/5/4096 " +
			"31:0/5/1839 32:8/0/4 33:0/5/4096 33:0/5/4096 33:0/5/4096 33:0/5/4096 33:0/5/2687 34:8/5/4 35:8/0/4 " +
			"36:0/5/4096 36:0/5/4096 36:0/5/4096 36:0/5/3647 37:8/5/4 38:0/5/4096 38:0/5/4096 38:0/5/4096 " +
			"38:0/5/4096 38:0/5/4096 38:0/5/4096 38:0/5/4096 38:0/5/4096 38:0/5/1857 39:8/0/4 40:8/5/4 " +
			"41:0/5/4096 41:0/5/4096 41:0/5/4096 41:0/5/4096 41:0/5/2687 42:8/0/4 43:0/5/4096 43:0/5/4096 " +
			"43:0/5/4096 43:0/5/3638 44:8/5/4 45:0/5/4096 45:0/5/4096 45:0/5/4096 45:0/5/4096 45:0/5/4096 " +
			"45:0/5/4096 45:0/5/4096 45:0/5/4096 45:0/5/1866 46:8/0/4 47:8/5/4 48:0/5/4096 48:0/5/4096 " +
			"48:0/5/4096 48:0/5/4096 48:0/5/2687 49:8/0/4 50:0/5/4096 50:0/5/4096 50:0/5/4096 50:0/5/844 50:0/5/0 " +
			"51:8/5/4 52:7/0/8",
	},
	{
		// Cleartext HTTP/2 on port 443 stressing the HPACK dynamic table.
		file: "sv/http2-compression-bug/input.pcap", port: 443,
		want: "4:4/0/30 4:8/0/4 5:1/1/652 6:4/0/18 6:8/0/4 7:4/0/0 8:4/0/0 9:1/3/177 11:0/3/1736 12:1/1/1106 " +
			"20:0/1/9820 22:0/1/1823 23:0/1/207 24:0/1/197 25:6/0/8 26:6/0/8 27:1/3/433 28:0/3/256 29:0/3/102 " +
			"30:1/5/214 31:0/5/1198 32:1/7/89 34:0/7/2195 35:1/5/38 36:0/5/347 37:0/5/38 38:6/0/8 39:6/0/8 " +
			"40:1/7/55 41:0/7/366 42:0/7/174 43:6/0/8 44:6/0/8 45:1/9/76 46:0/9/317 47:1/9/38 48:0/9/211 " +
			"49:0/9/87 50:6/0/8 51:6/0/8",
	},
	{
		// Cleartext HTTP/2 on port 443 (TLS stripped), Google server.
		file: "sv/http2-bugfixes/input.pcap", port: 443,
		want: "4:4/0/24 4:8/0/4 5:1/1/483 6:1/3/766 7:0/3/1284 8:4/0/18 8:8/0/4 9:4/0/0 10:4/0/0 11:1/1/356 " +
			"12:0/1/331 13:6/0/8 14:6/0/8 15:1/3/113 16:0/3/31 17:0/3/0 18:1/5/100 19:1/5/122 20:0/5/180 21:6/0/8 " +
			"22:6/0/8 23:1/7/97 24:1/7/109 25:0/7/460 26:0/7/1 27:0/7/0 28:6/0/8 29:6/0/8",
	},
	{
		// A 70000-byte DATA frame although the client never raised
		// SETTINGS_MAX_FRAME_SIZE from 16384: frame_too_large is counted, and the
		// frame kept by its length, as tshark does.
		file: "sv/http2-long-frame/input.pcap", port: 8443,
		want:  "4:4/0/0 4:8/0/4 4:1/1/60 6:4/0/0 6:4/0/0 6:1/1/37 57:0/1/70000 59:4/0/0 59:1/3/77",
		check: longFrame,
	},
	{
		// HEADERS and CONTINUATION frames, one with an undefined flag (0x1);
		// from the start they parse as tshark's. Mid-connection the frames
		// with undefined flags are not taken for frame boundaries (see
		// plausible), so the client's first frames are skipped.
		file: "sv/http2-continuation/input.pcap", port: 8080, startOnly: true,
		want: "6:4/0/18 9:4/0/30 11:4/0/0 11:8/0/4 13:4/0/0 14:1/1/35 16:9/1/52 19:9/1/52 25:1/1/49 25:0/1/13 " +
			"25:3/1/4",
	},
}

func longFrame(t *testing.T, c *http2.Conn, evs []event.Event) {
	if a := c.Summary().Anomalies; a["frame_too_large"] != 1 {
		t.Errorf("anomalies %v", a)
	}
}

// TestCorpusAgainstTshark dissects the shared corpus's cleartext HTTP/2
// captures and compares every frame with tshark's: from the connection's
// start the frames and their order must be tshark's; dissected as if the
// capture had started mid-connection (MidConnection, so the client's
// preface is skipped and every table and window is unknown), the same
// frames must be found, though a direction's first frames come out once
// its boundary is settled, after later frames of the other direction.
func TestCorpusAgainstTshark(t *testing.T) {
	for _, tc := range corpus {
		for _, mid := range []bool{false, true} {
			if mid && tc.startOnly {
				continue
			}
			name := tc.file
			if mid {
				name += "/mid"
			}
			t.Run(name, func(t *testing.T) {
				got, conns, evs := dissectCapture(t, tc.file, tc.port, http2.Options{MidConnection: mid})
				if len(conns) != 1 {
					t.Fatalf("%d HTTP/2 connections", len(conns))
				}
				want := strings.Fields(tc.want)
				if mid {
					got = append([]string(nil), got...)
					sort.Strings(got)
					sort.Strings(want)
				}
				if g, w := strings.Join(got, " "), strings.Join(want, " "); g != w {
					t.Errorf("frames differ from tshark:\n got  %s\n want %s", g, w)
				}
				s := conns[0].Summary()
				var n uint64
				for _, m := range []map[string]uint64{s.Frames.C2S, s.Frames.S2C} {
					for _, v := range m {
						n += v
					}
				}
				if int(n) != len(want) {
					t.Errorf("summary counts %d frames, want %d", n, len(want))
				}
				if s.HeaderFields != s.HeaderFieldsDecoded || s.HeaderBlocksUndecodable != 0 {
					t.Errorf("header coverage %d/%d, %d undecodable", s.HeaderFieldsDecoded, s.HeaderFields, s.HeaderBlocksUndecodable)
				}
				if mid {
					if s.SkippedBytes.C2S < 24 || s.Preface {
						t.Errorf("mid-connection: skipped %v, preface %v", s.SkippedBytes, s.Preface)
					}
					for _, e := range evs {
						if e.HTTP2 != nil && e.HTTP2.ConnWindowBefore != nil {
							t.Errorf("connection window known mid-connection: %+v", e)
						}
					}
				} else if tc.check != nil {
					tc.check(t, conns[0], evs)
				}
				t.Logf("%s: %s", name, countsByType(s))
			})
		}
	}
}

func countsByType(s http2.Summary) string {
	var parts []string
	for _, d := range []struct {
		name string
		m    map[string]uint64
	}{{"c2s", s.Frames.C2S}, {"s2c", s.Frames.S2C}} {
		var keys []string
		for k := range d.m {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			parts = append(parts, fmt.Sprintf("%s %s=%d", d.name, k, d.m[k]))
		}
	}
	return strings.Join(parts, " ")
}
