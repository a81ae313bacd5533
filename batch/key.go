package batch

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"time"

	"github.com/h2scope/h2scope/analyze"
	"github.com/h2scope/h2scope/dissect/capture"
	"github.com/h2scope/h2scope/internal/safeio"
	"github.com/h2scope/h2scope/internal/version"
	"github.com/h2scope/h2scope/report"
)

// resumeKeyVersion prefixes every resume key; it changes when what the key
// covers changes, so that an older output is re-analysed.
const resumeKeyVersion = "v1:"

// filePrint identifies one capture file's content without reading it
// all: its size, modification time and a hash of its first and last MiB.
type filePrint struct {
	Size  int64  `json:"size"`
	MTime int64  `json:"mtime_ns"`
	Hash  string `json:"hash"`
}

// fingerprint reads the print of the file name.
func fingerprint(name string) (filePrint, error) {
	f, err := os.Open(name)
	if err != nil {
		return filePrint{}, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return filePrint{}, err
	}
	size := fi.Size()
	sum, err := safeio.SampleHash(f, size)
	if err != nil {
		return filePrint{}, err
	}
	return filePrint{Size: size, MTime: fi.ModTime().UnixNano(), Hash: hex.EncodeToString(sum[:])}, nil
}

// contentHash is the hex SHA-256 of b (a key log, in resume keys).
func contentHash(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// resumeKey is the key of one capture's result: everything that decides
// it. files are the prints of the capture's files in order, keyLogs the
// content hashes of the key logs read for it, in the order read.
func resumeKey(files []filePrint, keyLogs []string, options, version string) string {
	v := struct {
		Version string      `json:"version"`
		Options string      `json:"options"`
		Files   []filePrint `json:"files"`
		KeyLogs []string    `json:"key_logs"`
	}{version, options, files, keyLogs}
	b, err := json.Marshal(v)
	if err != nil {
		panic(err) // strings and numbers only
	}
	return resumeKeyVersion + contentHash(b)
}

// optionsKey is the canonical encoding of the options that decide a
// capture's report: the detectors' thresholds, redaction, the timeline
// limits, the connections the report holds, and the capture reading
// and TCP tracking limits. (Workers, Gap and callbacks change no report;
// Gap decides which files make a capture, which the key covers by its
// files.)
func optionsKey(o *Options) string {
	t := o.Dissect.TCP
	v := struct {
		Config    analyze.Config   `json:"config"`
		Redaction report.Redaction `json:"redaction"`
		Limits    report.Limits    `json:"limits"`
		// Connections is the connection selection (named, all, none).
		Connections string          `json:"connections"`
		Capture     capture.Options `json:"capture"`
		TCP         struct {
			IdleTimeout, ClosedTimeout, StreamGrace    time.Duration
			MaxConns, MaxBufferPerConn, MaxBufferTotal int
		} `json:"tcp"`
		Dissect bool `json:"dissect"`
	}{Config: *o.Config, Redaction: o.Redaction, Limits: o.limits(), Connections: o.connections(), Capture: o.Dissect.Capture, Dissect: true}
	v.TCP.IdleTimeout, v.TCP.ClosedTimeout, v.TCP.StreamGrace = t.IdleTimeout, t.ClosedTimeout, t.StreamGrace
	v.TCP.MaxConns, v.TCP.MaxBufferPerConn, v.TCP.MaxBufferTotal = t.MaxConns, t.MaxBufferPerConn, t.MaxBufferTotal
	b, err := json.Marshal(v)
	if err != nil {
		panic(fmt.Sprintf("batch: encoding the options: %v", err))
	}
	return string(b)
}

// Version returns the h2scope version as the Go toolchain stamped it in the
// binary, as h2scope --version shows it: the module version, and the VCS
// revision with "(modified)" when the work tree had changes.
func Version() string { return version.Read().String() }

// captureExt matches what keyLogName strips from a capture file's name.
var captureExt = regexp.MustCompile(`(?i)(\.(pcapng|pcap|cap)[0-9]*)?(\.gz|\.zst)?$`)

// keyLogNames lists the key logs that may lie beside a capture's files,
// in the order they are read: NAME.keylog, NAME.keys and NAME.sslkeylog
// for each file (NAME: the file's name without its .pcap, .pcapng, .cap,
// .gz or .zst ending), then sslkeylog.txt and keylog.txt in each
// directory.
func keyLogNames(files []string) []string {
	var names, dirs []string
	seen := map[string]bool{}
	add := func(p string) {
		if !seen[p] {
			seen[p] = true
			names = append(names, p)
		}
	}
	for _, f := range files {
		dir := filepath.Dir(f)
		base := captureExt.ReplaceAllString(filepath.Base(f), "")
		if base != "" {
			for _, ext := range []string{".keylog", ".keys", ".sslkeylog"} {
				add(filepath.Join(dir, base+ext))
			}
		}
		if !seen["dir\x00"+dir] {
			seen["dir\x00"+dir] = true
			dirs = append(dirs, dir)
		}
	}
	for _, dir := range dirs {
		add(filepath.Join(dir, "sslkeylog.txt"))
		add(filepath.Join(dir, "keylog.txt"))
	}
	return names
}

// besideKeyLogs returns the key logs that exist beside a capture's files
// (keyLogNames), leaving out those given by global (--keylog), compared
// by absolute path.
func besideKeyLogs(files []string, global []KeyLogFile) []string {
	given := map[string]bool{}
	for _, k := range global {
		if a, err := filepath.Abs(k.Name); err == nil {
			given[a] = true
		}
	}
	var out []string
	for _, n := range keyLogNames(files) {
		fi, err := os.Stat(n)
		if err != nil || !fi.Mode().IsRegular() {
			continue
		}
		if a, err := filepath.Abs(n); err == nil && given[a] {
			continue
		}
		out = append(out, n)
	}
	return out
}
