// Package version reads what the Go toolchain stamped into the h2scope
// binary: the module version and the VCS revision it was built from.
package version

import "runtime/debug"

// Info is the build's version stamp. Fields the toolchain did not stamp
// (a build with -buildvcs=false, a test binary) are empty.
type Info struct {
	// Module is the main module's version, "(devel)" for a build from a
	// work tree.
	Module string
	// Revision and Time are the VCS revision and its commit time.
	Revision, Time string
	// Modified reports a work tree with uncommitted changes.
	Modified bool
}

// Read returns the running binary's version stamp.
func Read() Info {
	var v Info
	if bi, ok := debug.ReadBuildInfo(); ok {
		v.Module = bi.Main.Version
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				v.Revision = s.Value
			case "vcs.time":
				v.Time = s.Value
			case "vcs.modified":
				v.Modified = s.Value == "true"
			}
		}
	}
	if v.Module == "" {
		v.Module = "(devel)"
	}
	return v
}

// String is the module version, then " revision R" and " (modified)"
// when known: what decides a result, without the commit time.
func (v Info) String() string {
	s := v.Module
	if v.Revision != "" {
		s += " revision " + v.Revision
		if v.Modified {
			s += " (modified)"
		}
	}
	return s
}
