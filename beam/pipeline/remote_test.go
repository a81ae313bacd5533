package pipeline

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"testing"

	"github.com/apache/beam/sdks/v2/go/pkg/beam/io/filesystem"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/io/filesystem/memfs"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/runners/prism"
)

// TestRemoteEqualsLocal runs the pipeline over captures in a Beam file
// system other than the local one (memfs://, standing for gs:// and
// s3://): listed, a rotation grouped, copied to the worker with the key
// logs beside them, and named by their URLs in lines that are otherwise
// batch's over local copies (but for the resume keys, which cover the
// copies' modification times).
func TestRemoteEqualsLocal(t *testing.T) {
	local := filepath.Join(t.TempDir(), "caps")
	if err := os.Mkdir(local, 0o755); err != nil {
		t.Fatal(err)
	}
	put := func(src, name string) {
		b, err := os.ReadFile(src)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(local, name), b, 0o644); err != nil {
			t.Fatal(err)
		}
		memfs.Write("memfs://caps/"+name, b)
	}
	for _, name := range []string{"grpc-tls.pcapng", "grpc-tls.keys", "http1-keepalive.pcapng", "syn-refused.pcapng"} {
		put(filepath.Join(pcaps, name), name)
	}
	// Its many sources spread its connections over every shard.
	put(filepath.Join(pcaps, "attacks", "syn-flood.pcapng"), "syn-flood.pcapng")
	rot := rotated(t)
	for _, name := range []string{"stream.pcap", "stream.pcap1"} {
		put(filepath.Join(rot, name), name)
	}
	want := runBatch(t, []string{local}, "test")
	want = bytes.ReplaceAll(want, []byte(local+"/"), []byte("memfs://caps/"))
	for _, shards := range []int{1, 3} {
		t.Run(fmt.Sprintf("shards=%d", shards), func(t *testing.T) { remoteRun(t, shards, want) })
	}
}

// remoteRun runs the pipeline over memfs://caps with shards and checks
// its lines against want.
func remoteRun(t *testing.T, shards int, want []byte) {
	out := fmt.Sprintf("memfs://out%d/beam.ndjson", shards)
	p, err := Build(Job{Patterns: []string{"memfs://caps"}, Out: out, Settings: Settings{Version: "test", Shards: shards}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := prism.Execute(context.Background(), p); err != nil {
		t.Fatalf("prism: %v", err)
	}
	ctx := context.Background()
	fs, err := filesystem.New(ctx, out)
	if err != nil {
		t.Fatal(err)
	}
	got, err := filesystem.Read(ctx, fs, out)
	if err != nil {
		t.Fatal(err)
	}
	const captures = 5 // the rotation is one
	if lines, _ := fs.List(ctx, PartsDir(out)+"*.ndjson"); len(lines) != captures {
		t.Errorf("%d line part files, want %d", len(lines), captures)
	}
	if recs, _ := fs.List(ctx, PartsDir(out)+"*.records.gz"); shards > 1 && len(recs) != captures*shards {
		t.Errorf("%d record part files, want %d", len(recs), captures*shards)
	}
	if err := RemoveParts(ctx, out); err != nil {
		t.Error(err)
	}
	if left, _ := fs.List(ctx, PartsDir(out)+"*"); len(left) > 0 {
		t.Errorf("parts left: %v", left)
	}
	resume := regexp.MustCompile(`"resume_key":"[^"]*"`)
	got, want = resume.ReplaceAll(got, nil), resume.ReplaceAll(want, nil)
	if !bytes.Equal(got, want) {
		t.Fatalf("memfs:// lines differ from batch's over local copies:\n%s", firstDiff(got, want))
	}
	if n := bytes.Count(got, []byte("\n")); n != captures {
		t.Errorf("%d lines, want %d (the rotation as one)", n, captures)
	}
	if !regexp.MustCompile(`"key_log":\{"secrets":[1-9]`).Match(got) {
		t.Errorf("the key log beside grpc-tls.pcapng was not used")
	}
}
