package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"strings"

	"github.com/apache/beam/sdks/v2/go/container/pool"
	"github.com/apache/beam/sdks/v2/go/container/tools"
	"github.com/apache/beam/sdks/v2/go/pkg/beam"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/util/grpcx"
)

// harness runs the Beam SDK harness when the runner started this binary
// as a worker, and exits; otherwise it returns. Three ways in:
//
//   - --worker=true (with --id, --control_endpoint, --logging_endpoint and
//     the options): the harness itself, as Dataflow's and the Go boot
//     loader's containers run the staged binary; beam.Init runs it.
//   - --provision_endpoint=... without --worker: the boot loader
//     interface of a PROCESS environment (--environment_type=PROCESS
//     --environment_config='{"command":"/path/h2scope-beam"}'), which
//     this binary serves itself: it asks the provision service for the
//     endpoints and options and runs the harness in-process.
//   - --worker_pool: a worker pool for an EXTERNAL environment
//     (--environment_type=EXTERNAL --environment_config=HOST:PORT), which
//     starts this binary through the boot interface for each worker.
func harness(args []string) {
	switch {
	case hasFlag(args, "worker"):
		flag.Parse() // only Beam's flags are defined yet
		beam.Init()  // runs the harness and exits
		os.Exit(0)
	case hasFlag(args, "worker_pool"):
		os.Exit(workerPool(args))
	case hasFlag(args, "provision_endpoint"):
		os.Exit(boot(args))
	}
}

// hasFlag reports whether args set the flag name ("--name", "-name",
// "--name=v"), leaving out "--name=false".
func hasFlag(args []string, name string) bool {
	for _, a := range args {
		if a == "--" {
			return false
		}
		a = strings.TrimPrefix(strings.TrimPrefix(a, "-"), "-")
		if a == name || (strings.HasPrefix(a, name+"=") && a != name+"=false") {
			return true
		}
	}
	return false
}

// boot serves the boot loader interface of a PROCESS or EXTERNAL
// environment: it reads --id and the endpoints, asks the provision
// service for the rest and runs the harness, which exits.
//
// Prism (v2.77, v2.78) starts a PROCESS environment's command with
// --id='ID', quotes included, as if through a shell: a worker that sent
// that back would not be recognised and Prism would wait for it for
// ever. The quotes are removed.
func boot(args []string) int {
	fs := flag.NewFlagSet("h2scope-beam boot", flag.ContinueOnError)
	id := fs.String("id", "", "worker `id`")
	prov := fs.String("provision_endpoint", "", "provision service `address`")
	logging := fs.String("logging_endpoint", "", "logging service `address`")
	control := fs.String("control_endpoint", "", "control service `address`")
	fs.String("artifact_endpoint", "", "artifact service `address` (unused: this binary is the worker)")
	semi := fs.String("semi_persist_dir", "/tmp", "semi-persistent `directory`")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	*id = strings.Trim(*id, `'"`)
	if *id == "" || *prov == "" {
		fmt.Fprintln(os.Stderr, "h2scope-beam: boot: --id and --provision_endpoint are required")
		return 2
	}
	ctx := grpcx.WriteWorkerID(context.Background(), *id)
	info, err := tools.ProvisionInfo(ctx, *prov)
	if err != nil {
		fmt.Fprintf(os.Stderr, "h2scope-beam: boot: %v\n", err)
		return 1
	}
	if u := info.GetLoggingEndpoint().GetUrl(); u != "" {
		*logging = u
	}
	if u := info.GetControlEndpoint().GetUrl(); u != "" {
		*control = u
	}
	if *logging == "" || *control == "" {
		fmt.Fprintln(os.Stderr, "h2scope-beam: boot: no logging or control endpoint provided")
		return 1
	}
	options, err := tools.ProtoToJSON(info.GetPipelineOptions())
	if err != nil {
		fmt.Fprintf(os.Stderr, "h2scope-beam: boot: pipeline options: %v\n", err)
		return 1
	}
	if u := info.GetStatusEndpoint().GetUrl(); u != "" {
		os.Setenv("STATUS_ENDPOINT", u)
	}
	if c := info.GetRunnerCapabilities(); len(c) > 0 {
		os.Setenv("RUNNER_CAPABILITIES", strings.Join(c, " "))
	}
	for name, v := range map[string]string{"worker": "true", "id": *id, "logging_endpoint": *logging,
		"control_endpoint": *control, "semi_persist_dir": *semi, "options": options} {
		if err := flag.Set(name, v); err != nil {
			fmt.Fprintf(os.Stderr, "h2scope-beam: boot: --%s: %v\n", name, err)
			return 1
		}
	}
	beam.Init() // runs the harness and exits
	return 0
}

// workerPool serves the worker pool of an EXTERNAL environment on
// --worker_pool_port until it is killed.
func workerPool(args []string) int {
	fs := flag.NewFlagSet("h2scope-beam worker pool", flag.ContinueOnError)
	fs.Bool("worker_pool", true, "serve a worker pool")
	port := fs.Int("worker_pool_port", 50000, "`port` to serve the worker pool on")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	self, err := os.Executable()
	if err != nil {
		fmt.Fprintf(os.Stderr, "h2scope-beam: worker pool: %v\n", err)
		return 1
	}
	ctx := context.Background()
	srv, err := pool.New(ctx, *port, self)
	if err != nil {
		fmt.Fprintf(os.Stderr, "h2scope-beam: worker pool: %v\n", err)
		return 1
	}
	defer srv.Stop(ctx)
	fmt.Fprintf(os.Stderr, "h2scope-beam: worker pool serving on port %d\n", *port)
	if err := srv.ServeAndWait(); err != nil {
		fmt.Fprintf(os.Stderr, "h2scope-beam: worker pool: %v\n", err)
		return 1
	}
	return 0
}
