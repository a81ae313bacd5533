package main

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/apache/beam/sdks/v2/go/pkg/beam/runners/prism"

	"github.com/h2scope/h2scope/analyze"
	"github.com/h2scope/h2scope/batch"
	"github.com/h2scope/h2scope/dissect"
)

// pcaps is the project's testdata captures, seen from here.
const pcaps = "../../../testdata/pcaps"

// jobTimeout bounds one pipeline run against the job server: Prism
// (v2.77, v2.78) waits for ever, rather than failing, when a worker
// cannot start or dies in some ways, so a broken worker shows as this
// timeout.
const jobTimeout = 90 * time.Second

// freePort returns a TCP port nothing listens on now.
func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "localhost:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// buildBinary builds h2scope-beam into a temporary directory.
func buildBinary(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "h2scope-beam")
	cmd := exec.Command("go", "build", "-o", bin, ".")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// batchLines is h2scope batch's output for patterns, with the key log
// keys for every capture and the detector threshold flags thresholds.
func batchLines(t *testing.T, patterns []string, keys string, thresholds []string) []byte {
	t.Helper()
	out := filepath.Join(t.TempDir(), "batch.ndjson")
	cfg := analyze.DefaultConfig()
	fs := flag.NewFlagSet("thresholds", flag.ContinueOnError)
	cfg.RegisterFlags(fs)
	if err := fs.Parse(thresholds); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(keys)
	if err != nil {
		t.Fatal(err)
	}
	opts := batch.Options{Workers: 2, Version: "test", Config: &cfg, Dissect: dissect.Options{Dissect: true},
		KeyLogs: []batch.KeyLogFile{{Name: keys, Data: data}}}
	if _, err := batch.Run(context.Background(), patterns, out, io.Discard, opts); err != nil {
		t.Fatalf("batch: %v", err)
	}
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestJobServer runs the binary against a Prism job server started apart
// from it (here, in the test process), with its workers in a PROCESS
// environment (the binary started by Prism through its boot interface)
// and in an EXTERNAL one (a worker pool served by the binary), as on a
// cluster: the DoFns, their settings (a --keylog's content, a threshold)
// and the registrations must cross to another process. Each run's lines
// must be h2scope batch's.
func TestJobServer(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary and runs a job server")
	}
	bin := buildBinary(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	jobPort := freePort(t)
	if _, err := prism.CreateJobServer(ctx, prism.Options{Port: jobPort}); err != nil {
		t.Fatalf("job server: %v", err)
	}
	poolPort := freePort(t)
	pool := exec.CommandContext(ctx, bin, "--worker_pool", fmt.Sprintf("--worker_pool_port=%d", poolPort))
	var poolLog bytes.Buffer
	pool.Stdout, pool.Stderr = &poolLog, &poolLog
	if err := pool.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		pool.Process.Kill()
		pool.Wait()
	}()
	keys := filepath.Join(pcaps, "h2-tls.keys")
	thresholds := []string{"--rst-critical", "3"}
	// The project's captures are on loopback, each between one pair of
	// addresses (one shard); the SYN flood's many sources spread it over
	// every shard, so that partials of several connections each merge
	// across processes.
	patterns := []string{pcaps, filepath.Join(pcaps, "attacks", "syn-flood.pcapng")}
	want := batchLines(t, patterns, keys, thresholds)
	if !bytes.Contains(want, []byte("syn-flood.pcapng")) {
		t.Fatal("no line for the SYN flood")
	}
	if bytes.Equal(want, batchLines(t, patterns, keys, nil)) {
		t.Fatalf("%v changes no line: pick a threshold that does", thresholds)
	}
	for _, env := range []struct {
		typ, config string
		shards      int
	}{
		{"PROCESS", fmt.Sprintf(`{"command": %q}`, bin), 0},
		{"EXTERNAL", fmt.Sprintf("localhost:%d", poolPort), 0},
		// Each capture split across 3 workers, the partials combined
		// per capture (CombinePerKey) as on a cluster: encoded between
		// the worker processes.
		{"PROCESS", fmt.Sprintf(`{"command": %q}`, bin), 3},
		{"EXTERNAL", fmt.Sprintf("localhost:%d", poolPort), 3},
	} {
		t.Run(fmt.Sprintf("%s/shards=%d", env.typ, env.shards), func(t *testing.T) {
			out := filepath.Join(t.TempDir(), "beam.ndjson")
			rctx, cancel := context.WithTimeout(ctx, jobTimeout)
			defer cancel()
			cmd := exec.CommandContext(rctx, bin, "--runner=universal",
				fmt.Sprintf("--endpoint=localhost:%d", jobPort),
				"--environment_type="+env.typ, "--environment_config="+env.config,
				"--h2scope_version=test", "--keylog", keys, thresholds[0], thresholds[1], fmt.Sprintf("--shards=%d", env.shards),
				"--out", out, patterns[0], patterns[1])
			var log bytes.Buffer
			cmd.Stdout, cmd.Stderr = &log, &log
			err := cmd.Run()
			if rctx.Err() != nil {
				t.Fatalf("no result after %v (Prism waits for ever on some worker failures):\n%s\nworker pool:\n%s", jobTimeout, log.String(), poolLog.String())
			}
			if err != nil {
				t.Fatalf("h2scope-beam: %v\n%s", err, log.String())
			}
			got, err := os.ReadFile(out)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, want) {
				t.Fatalf("lines differ from batch's:\n%s", firstDiff(got, want))
			}
			if !strings.Contains(log.String(), "h2scope-beam: "+out+" holds") {
				t.Errorf("no summary:\n%s", log.String())
			}
		})
	}
}

// firstDiff describes the first line where got and want differ.
func firstDiff(got, want []byte) string {
	g, w := strings.Split(string(got), "\n"), strings.Split(string(want), "\n")
	for i := range max(len(g), len(w)) {
		var a, b string
		if i < len(g) {
			a = g[i]
		}
		if i < len(w) {
			b = w[i]
		}
		if a != b {
			return fmt.Sprintf("line %d:\n got: %.600s\nwant: %.600s", i+1, a, b)
		}
	}
	return "(same lines)"
}
