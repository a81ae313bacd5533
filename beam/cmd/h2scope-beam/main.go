// Command h2scope-beam is `h2scope batch` on Apache Beam: the same
// inputs, flags and output lines, analysed by the Prism runner in-process
// (the default) or by Dataflow, Flink or Spark workers. See beam/README.md.
package main

import (
	"context"
	"os"
)

func main() {
	// A worker started by a runner (--worker=true, or the boot or worker
	// pool interface) runs the Beam harness here and never returns:
	// before any of h2scope's flags are defined or parsed.
	harness(os.Args[1:])
	os.Exit(run(context.Background(), os.Args[1:], os.Stdout, os.Stderr))
}
