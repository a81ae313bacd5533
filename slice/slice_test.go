package slice

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/hex"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/h2scope/h2scope/analyze"
	"github.com/h2scope/h2scope/dissect"
	"github.com/h2scope/h2scope/dissect/capture"
	"github.com/h2scope/h2scope/dissect/event"
	"github.com/h2scope/h2scope/dissect/tls"
)

const pcaps = "../testdata/pcaps/"

// tshark runs tshark over file with args and returns its output lines;
// it skips the test when tshark is not installed.
func tshark(t *testing.T, file string, args ...string) []string {
	t.Helper()
	path, err := exec.LookPath("tshark")
	if err != nil {
		t.Skip("tshark not installed")
	}
	cmd := exec.Command(path, append([]string{"-r", file}, args...)...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("tshark %s: %v\n%s", strings.Join(args, " "), err, stderr.String())
	}
	s := strings.TrimRight(string(out), "\n")
	if s == "" {
		return nil
	}
	return strings.Split(s, "\n")
}

// h2c makes tshark read every TCP connection as HTTP/2, for cleartext
// HTTP/2 on any port.
var h2c = []string{"-d", "tcp.port==1-65535,http2"}

// keyOption is tshark's option to read a key log.
func keyOption(keys string) []string {
	if keys == "" {
		return nil
	}
	return []string{"-o", "tls.keylog_file:" + keys}
}

// write slices files with opts into a temporary file and returns its name.
func write(t *testing.T, files []string, keys string, opts Options) (string, Result) {
	t.Helper()
	kl := tls.NewKeyLog()
	if keys != "" {
		f, err := os.Open(keys)
		if err != nil {
			t.Fatal(err)
		}
		kl.Read(f, keys)
		f.Close()
	}
	opts.Dissect.Keys = kl
	if opts.Config == (analyze.Config{}) {
		opts.Config = analyze.DefaultConfig()
	}
	opts.Names, opts.Version = files, "test"
	var b bytes.Buffer
	res, err := Write(context.Background(), files, &b, opts)
	if err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(t.TempDir(), "slice.pcapng")
	if err := os.WriteFile(out, b.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	return out, res
}

// secretsIn returns the key log lines of a file's Decryption Secrets Blocks.
func secretsIn(t *testing.T, file string) []string {
	t.Helper()
	r, err := capture.Open([]string{file}, capture.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	for {
		if _, err := r.Next(); err != nil {
			break
		}
	}
	var lines []string
	for _, s := range r.Secrets() {
		lines = append(lines, strings.Split(strings.TrimSpace(string(s.Data)), "\n")...)
	}
	return lines
}

func TestSlice(t *testing.T) {
	for _, tt := range []struct {
		name, file, keys string
		conn             event.ConnID
		stream           uint32
		fewer            bool // a stream slice that leaves packets out
	}{
		{name: "tls-conn", file: "h2-tls", keys: "h2-tls.keys"},
		{name: "tls-stream", file: "h2-tls", keys: "h2-tls.keys", stream: 13},
		{name: "h2c-stream", file: "h2-max-streams", stream: 101, fewer: true},
		{name: "h2c-large-stream", file: "h2c-large-slow", stream: 3, fewer: true},
		{name: "grpc-stream", file: "grpc-cancel-storm", stream: 51, fewer: true},
		{name: "http1-conn", file: "http1-keepalive", conn: 2},
	} {
		t.Run(tt.name, func(t *testing.T) {
			full := pcaps + tt.file + ".pcapng"
			keys := ""
			if tt.keys != "" {
				keys = pcaps + tt.keys
			}
			out, res := write(t, []string{full}, keys, Options{Conns: []event.ConnID{tt.conn}, Stream: tt.stream})
			conn := strconv.Itoa(int(tt.conn))
			// Packet count: the whole connection, or fewer for a stream.
			want := tshark(t, full, "-Y", "tcp.stream eq "+conn, "-T", "fields", "-e", "frame.number")
			got := tshark(t, out, "-T", "fields", "-e", "frame.comment")
			if len(got) != res.Packets {
				t.Errorf("tshark reads %d packets, Write says %d", len(got), res.Packets)
			}
			switch {
			case tt.stream == 0 && len(got) != len(want):
				t.Errorf("%d packets, want the connection's %d", len(got), len(want))
			case tt.fewer && len(got) >= len(want):
				t.Errorf("%d packets, want fewer than the connection's %d", len(got), len(want))
			}
			// Every packet names its original frame, in capture order, and
			// it is one of the connection's frames.
			last := 0
			for i, c := range got {
				var n int
				if _, err := fmtSscanf(c, &n); err != nil || n <= last || !slices.Contains(want, strconv.Itoa(n)) {
					t.Fatalf("packet %d comment %q: want the next frame of connection %s", i+1, c, conn)
				}
				last = n
			}
			// Decodes as the full capture, with only the slice's own
			// secrets: the stream's (or every) HTTP/2 and HTTP/1 header
			// value is the same.
			filter := "tcp.stream eq " + conn + " && (http2.header || http.request || http.response)"
			fields := []string{"-T", "fields", "-e", "http2.streamid", "-e", "http2.header.name", "-e", "http2.header.value", "-e", "http.request.uri", "-e", "http.response.code"}
			if tt.stream > 0 {
				filter = "http2.streamid == " + strconv.Itoa(int(tt.stream))
			}
			var dec []string
			if tt.stream > 0 && keys == "" {
				dec = h2c
			}
			wantH := tshark(t, full, slices.Concat(dec, keyOption(keys), []string{"-Y", filter}, fields)...)
			// In the slice, the connection is the first (tcp.stream 0).
			gotH := tshark(t, out, slices.Concat(dec, []string{"-Y", strings.Replace(filter, "tcp.stream eq "+conn, "tcp.stream eq 0", 1)}, fields)...)
			if len(wantH) == 0 {
				t.Fatal("the full capture shows no headers")
			}
			if !slices.Equal(gotH, wantH) {
				t.Errorf("headers differ from the full capture's:\ngot  %q\nwant %q", gotH, wantH)
			}
			if tt.keys != "" && res.Sessions != 1 {
				t.Errorf("secrets of %d sessions, want 1", res.Sessions)
			}
		})
	}
}

// fmtSscanf reads the frame number of a packet's first comment.
func fmtSscanf(comment string, n *int) (int, error) {
	first, _, _ := strings.Cut(comment, ",")
	v, err := strconv.Atoi(strings.TrimSuffix(strings.TrimPrefix(first, "h2scope: frame "), " of the full capture"))
	*n = v
	return 1, err
}

// TestSliceSecretsOnlySliced slices one TLS 1.3 connection of several:
// the slice holds exactly that session's secrets, decrypts with them
// alone, and with --no-secrets holds none.
func TestSliceSecretsOnlySliced(t *testing.T) {
	full, keys := pcaps+"tls13-resume.pcapng", pcaps+"tls13-resume.keys"
	randoms := tshark(t, full, "-Y", "tls.handshake.type == 1", "-T", "fields", "-e", "tcp.stream", "-e", "tls.handshake.random")
	if len(randoms) < 2 {
		t.Fatalf("want several TLS sessions, have %d", len(randoms))
	}
	stream, random, _ := strings.Cut(randoms[1], "\t")
	conn, _ := strconv.Atoi(stream)
	out, res := write(t, []string{full}, keys, Options{Conns: []event.ConnID{event.ConnID(conn)}})
	lines := secretsIn(t, out)
	if len(lines) == 0 || res.Sessions != 1 {
		t.Fatalf("%d secret lines, %d sessions; want one session's", len(lines), res.Sessions)
	}
	for _, l := range lines {
		if f := strings.Fields(l); len(f) != 3 || f[1] != random {
			t.Errorf("secret line %q is not of client random %s", l, random)
		}
	}
	// Every one of the session's lines in the key log is there.
	kb, _ := os.ReadFile(keys)
	var want []string
	for _, l := range strings.Split(string(kb), "\n") {
		if f := strings.Fields(l); len(f) == 3 && f[1] == random && !strings.HasPrefix(f[0], "EXPORTER") {
			want = append(want, l)
		}
	}
	slices.Sort(want)
	got := slices.Clone(lines)
	slices.Sort(got)
	if !slices.Equal(got, want) {
		t.Errorf("secrets:\ngot  %q\nwant %q", got, want)
	}
	// Decrypts alone.
	if n := tshark(t, out, "-Y", "http", "-T", "fields", "-e", "frame.number"); len(n) == 0 {
		t.Error("the slice does not decrypt with its own secrets")
	}
	if _, err := hex.DecodeString(random); err != nil {
		t.Fatal(err)
	}

	out, res = write(t, []string{full}, keys, Options{Conns: []event.ConnID{event.ConnID(conn)}, NoSecrets: true})
	if lines := secretsIn(t, out); len(lines) != 0 || res.Sessions != 0 {
		t.Errorf("--no-secrets: %d secret lines", len(lines))
	}
}

// TestSliceFinding slices a finding: its connections, each evidence
// frame commented with the finding and the evidence line, and the
// section comment naming the source, the selection and the version.
func TestSliceFinding(t *testing.T) {
	full := pcaps + "http1-nokeepalive.pcapng"
	out, res := write(t, []string{full}, "", Options{Finding: "reconnect_churn-1"})
	if res.Finding == nil || res.Finding.Kind != analyze.KindReconnectChurn {
		t.Fatalf("finding %+v", res.Finding)
	}
	var want []string
	for _, c := range res.Finding.Connections {
		want = append(want, tshark(t, full, "-Y", "tcp.stream eq "+strconv.Itoa(int(c)), "-T", "fields", "-e", "frame.number")...)
	}
	if res.Packets != len(want) {
		t.Errorf("%d packets, want the finding's connections' %d", res.Packets, len(want))
	}
	commented := tshark(t, out, "-Y", `frame.comment contains "reconnect_churn-1"`, "-T", "fields", "-e", "frame.comment")
	if len(commented) != len(res.Finding.Evidence) {
		t.Errorf("%d packets commented with the finding, want its %d evidence frames", len(commented), len(res.Finding.Evidence))
	}
	for i, c := range commented {
		e := res.Finding.Evidence[i]
		if !strings.Contains(c, "frame "+strconv.FormatUint(e.Frame, 10)+" of") || !strings.Contains(c, e.What) {
			t.Errorf("comment %q: want frame %d and %q", c, e.Frame, e.What)
		}
	}
	b, _ := os.ReadFile(out)
	for _, s := range []string{"h2scope slice of " + full, "selection: finding reconnect_churn-1", "h2scope version: test"} {
		if !bytes.Contains(b, []byte(s)) {
			t.Errorf("section header lacks %q", s)
		}
	}
	if _, err := Write(context.Background(), []string{full}, &bytes.Buffer{}, Options{Finding: "goaway-9", Config: analyze.DefaultConfig()}); err == nil || !strings.Contains(err.Error(), "reconnect_churn-1") {
		t.Errorf("unknown finding: %v, want the ids there are", err)
	}
}

// TestSlicePcapSource slices a classic pcap: the slice keeps each
// packet's time to the microsecond and its bytes.
func TestSlicePcapSource(t *testing.T) {
	if _, err := exec.LookPath("editcap"); err != nil {
		t.Skip("editcap not installed")
	}
	src := filepath.Join(t.TempDir(), "src.pcap")
	if out, err := exec.Command("editcap", "-F", "pcap", pcaps+"http1-keepalive.pcapng", src).CombinedOutput(); err != nil {
		t.Fatalf("editcap: %v\n%s", err, out)
	}
	out, _ := write(t, []string{src}, "", Options{Conns: []event.ConnID{1}})
	fields := []string{"-T", "fields", "-e", "frame.time_epoch", "-e", "frame.len", "-e", "frame.cap_len", "-e", "tcp.seq_raw"}
	want := tshark(t, src, append([]string{"-Y", "tcp.stream eq 1"}, fields...)...)
	got := tshark(t, out, fields...)
	if !slices.Equal(got, want) {
		t.Errorf("packets differ:\ngot  %q\nwant %q", got[:min(3, len(got))], want[:min(3, len(want))])
	}
}

// TestSliceNothing refuses an empty selection and a stream that is not there.
func TestSliceNothing(t *testing.T) {
	full := []string{pcaps + "h2-max-streams.pcapng"}
	if _, err := Write(context.Background(), full, &bytes.Buffer{}, Options{}); err != ErrNoSelection {
		t.Errorf("no selection: %v", err)
	}
	_, err := Write(context.Background(), full, &bytes.Buffer{}, Options{Dissect: dissect.Options{}, Conns: []event.ConnID{0}, Stream: 2})
	if err == nil || err.Error() != "slice: connection 0 has no HTTP/2 stream 2" {
		t.Errorf("missing stream: %v", err)
	}
	_, err = Write(context.Background(), full, &bytes.Buffer{}, Options{Conns: []event.ConnID{0, 1}})
	if err == nil || err.Error() != "slice: no connection 1: the capture has connection 0" {
		t.Errorf("missing connection: %v", err)
	}
}

// TestWriteFindings writes one slice per finding of an analysis, the
// same as slicing each finding by id.
func TestWriteFindings(t *testing.T) {
	full := []string{pcaps + "http1-nokeepalive.pcapng"}
	res, _, err := analyze.Run(context.Background(), full, dissect.Options{}, analyze.DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	paths, err := WriteFindings(context.Background(), full, dir, Options{Names: full, Version: "test"}, res.Findings)
	if err != nil {
		t.Fatal(err)
	}
	if len(paths) != len(res.Findings) || len(paths) == 0 {
		t.Fatalf("%d slices for %d findings", len(paths), len(res.Findings))
	}
	for i, p := range paths {
		if filepath.Base(p) != res.Findings[i].ID+".pcapng" {
			t.Errorf("slice %s, want it named for %s", p, res.Findings[i].ID)
		}
		got, _ := os.ReadFile(p)
		var want bytes.Buffer
		if _, err := Write(context.Background(), full, &want, Options{Finding: res.Findings[i].ID, Config: analyze.DefaultConfig(), Names: full, Version: "test"}); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want.Bytes()) {
			t.Errorf("%s differs from slice --finding %s", p, res.Findings[i].ID)
		}
	}
}

// TestSliceMerged slices two captures merged by time, one gzipped pcapng
// and one classic pcap: the packets, times and protocols are mergecap's.
func TestSliceMerged(t *testing.T) {
	for _, tool := range []string{"editcap", "mergecap"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skip(tool + " not installed")
		}
	}
	dir := t.TempDir()
	gz, pcap, ref := filepath.Join(dir, "a.pcapng.gz"), filepath.Join(dir, "b.pcap"), filepath.Join(dir, "ref.pcapng")
	raw, err := os.ReadFile(pcaps + "h2-tls.pcapng")
	if err != nil {
		t.Fatal(err)
	}
	var zb bytes.Buffer
	zw := gzip.NewWriter(&zb)
	zw.Write(raw)
	zw.Close()
	if err := os.WriteFile(gz, zb.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, c := range [][]string{{"editcap", "-F", "pcap", pcaps + "http1-keepalive.pcapng", pcap}, {"mergecap", "-w", ref, gz, pcap}} {
		if out, err := exec.Command(c[0], c[1:]...).CombinedOutput(); err != nil {
			t.Fatalf("%s: %v\n%s", c[0], err, out)
		}
	}
	out, res := write(t, []string{gz, pcap}, "", Options{From: time.Unix(1, 0)})
	fields := []string{"-T", "fields", "-e", "frame.time_epoch", "-e", "frame.len", "-e", "frame.cap_len", "-e", "tcp.seq_raw", "-e", "frame.protocols"}
	got, want := tshark(t, out, fields...), tshark(t, ref, fields...)
	if res.Packets != len(want) || !slices.Equal(got, want) {
		t.Errorf("%d packets, differing from mergecap's %d", len(got), len(want))
	}
}

func TestFindingComment(t *testing.T) {
	f := &analyze.Finding{ID: "request_errors-1", Severity: analyze.Critical, Summary: "GET /x?token=s3cret failed"}
	e := analyze.Evidence{What: "500 to GET /x?token=s3cret"}
	if got, want := findingComment(f, e, nil), "h2scope finding request_errors-1 (critical): GET /x?token=s3cret failed | evidence: 500 to GET /x?token=s3cret"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
	f.Cause = "server_errors"
	if got, want := findingComment(f, e, nil), "h2scope finding request_errors-1 (critical, cause server_errors): GET /x?token=s3cret failed | evidence: 500 to GET /x?token=s3cret"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
	redact := func(s string) string { return strings.ReplaceAll(s, "s3cret", "[redacted 6 bytes]") }
	if got := findingComment(f, e, redact); strings.Contains(got, "s3cret") {
		t.Errorf("redacted comment %q holds the token", got)
	}
}

// TestSliceResumedTLS12 slices each connection of a capture whose TLS 1.2
// clients resume sessions (by ticket), writing no key log line for the
// resumed ones: every slice holds one CLIENT_RANDOM line, of its own
// client random, and decrypts in Wireshark alone — the resumed ones too,
// which tshark 4.0 leaves encrypted in the full capture.
func TestSliceResumedTLS12(t *testing.T) {
	full, keys := pcaps+"tls12-resume.pcapng", pcaps+"tls12-resume.keys"
	randoms := tshark(t, full, "-Y", "tls.handshake.type == 1", "-T", "fields", "-e", "tcp.stream", "-e", "tls.handshake.random")
	kb, _ := os.ReadFile(keys)
	resumed := 0
	for _, l := range randoms {
		stream, random, _ := strings.Cut(l, "\t")
		conn, _ := strconv.Atoi(stream)
		if !strings.Contains(string(kb), random) {
			resumed++
		}
		out, res := write(t, []string{full}, keys, Options{Conns: []event.ConnID{event.ConnID(conn)}})
		lines := secretsIn(t, out)
		if res.Sessions != 1 || len(lines) != 1 || !strings.HasPrefix(lines[0], "CLIENT_RANDOM "+random+" ") {
			t.Errorf("connection %d: secrets %q, want one CLIENT_RANDOM line of %s", conn, lines, random)
		}
		if n := tshark(t, out, "-Y", "http.response", "-T", "fields", "-e", "http.response.code"); len(n) == 0 {
			t.Errorf("connection %d: the slice does not decrypt", conn)
		}
	}
	if resumed == 0 {
		t.Fatal("no resumed connection without a key log line of its own")
	}
}
