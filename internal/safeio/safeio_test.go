package safeio

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestHasCaptureMagic(t *testing.T) {
	tests := []struct {
		b    []byte
		want bool
	}{
		{[]byte{0xa1, 0xb2, 0xc3, 0xd4, 0}, true}, // pcap, µs, big endian
		{[]byte{0xd4, 0xc3, 0xb2, 0xa1}, true},    // pcap, µs, little endian
		{[]byte{0xa1, 0xb2, 0x3c, 0x4d}, true},    // pcap, ns
		{[]byte{0x4d, 0x3c, 0xb2, 0xa1}, true},
		{[]byte{0x0a, 0x0d, 0x0d, 0x0a}, true}, // pcapng
		{[]byte{0x1f, 0x8b, 0x08}, true},       // gzip
		{[]byte{0x28, 0xb5, 0x2f, 0xfd}, true}, // zstd
		{[]byte("{\"schema\""), false},
		{[]byte("<!doctype html>"), false},
		{[]byte{0xa1, 0xb2}, false}, // a prefix of a magic is not one
		{nil, false},
	}
	for _, tt := range tests {
		if got := HasCaptureMagic(tt.b); got != tt.want {
			t.Errorf("HasCaptureMagic(% x) = %v, want %v", tt.b, got, tt.want)
		}
	}
}

// testDir makes a directory with a capture a.pcapng, a second capture
// b.pcap, a report r.json, a symbolic link to a and a hard link to b.
func testDir(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	write(t, filepath.Join(dir, "a.pcapng"), []byte{0x0a, 0x0d, 0x0d, 0x0a, 1, 2, 3})
	write(t, filepath.Join(dir, "b.pcap"), []byte{0xd4, 0xc3, 0xb2, 0xa1, 9, 9})
	write(t, filepath.Join(dir, "r.json"), []byte("{}\n"))
	if err := os.Symlink("a.pcapng", filepath.Join(dir, "link")); err != nil {
		t.Fatal(err)
	}
	if err := os.Link(filepath.Join(dir, "b.pcap"), filepath.Join(dir, "hard")); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(filepath.Join(dir, "sub"), 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

func write(t *testing.T, name string, b []byte) {
	t.Helper()
	if err := os.WriteFile(name, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestCheckOutputs(t *testing.T) {
	dir := testDir(t)
	t.Chdir(dir)
	tests := []struct {
		name    string
		inputs  []string
		outputs []string
		wantErr string // "" for none
	}{
		{"new file", []string{"a.pcapng"}, []string{"new.json"}, ""},
		{"existing report", []string{"a.pcapng"}, []string{"r.json"}, ""},
		{"stdout and empty", []string{"a.pcapng"}, []string{"-", ""}, ""},
		{"stdin input", []string{"-"}, []string{"r.json"}, ""},
		{"output is an input", []string{"a.pcapng", "b.pcap"}, []string{"a.pcapng"},
			"refusing to write a.pcapng: it is the input a.pcapng"},
		{"./ spelling", []string{"a.pcapng"}, []string{"./a.pcapng"},
			"refusing to write ./a.pcapng: it is the input a.pcapng"},
		{"absolute spelling", []string{"a.pcapng"}, []string{filepath.Join(dir, "a.pcapng")},
			"refusing to write " + filepath.Join(dir, "a.pcapng") + ": it is the input a.pcapng"},
		{"symbolic link to an input", []string{"a.pcapng"}, []string{"link"},
			"refusing to write link (a link to a.pcapng): it is the input a.pcapng"},
		{"hard link to an input", []string{"b.pcap"}, []string{"hard"},
			"refusing to write hard: it is the input b.pcap"},
		{"input not yet existing, same name", []string{"gone.pcap"}, []string{"gone.pcap"},
			"refusing to write gone.pcap: it is the input gone.pcap"},
		{"a capture that is not an input", []string{"a.pcapng"}, []string{"b.pcap"},
			"refusing to write b.pcap: it holds a capture; remove it first to overwrite it"},
		{"symbolic link to a capture", nil, []string{"link"},
			"refusing to write link (a link to a.pcapng): it holds a capture; remove it first to overwrite it"},
		{"two outputs, one file", []string{"a.pcapng"}, []string{"x.json", "./x.json"},
			"refusing to write ./x.json: it is also the output x.json"},
		{"a directory", []string{"a.pcapng"}, []string{"sub"},
			"refusing to write sub: it is a directory"},
		{"missing directory", []string{"a.pcapng"}, []string{"nodir/r.json"},
			"cannot write nodir/r.json: cannot create a file in nodir: no such file or directory"},
		{"device", []string{"a.pcapng"}, []string{os.DevNull}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := CheckOutputs(tt.inputs, tt.outputs)
			got := ""
			if err != nil {
				got = err.Error()
			}
			if got != tt.wantErr {
				t.Errorf("CheckOutputs(%q, %q) = %q, want %q", tt.inputs, tt.outputs, got, tt.wantErr)
			}
		})
	}
	// The check leaves nothing behind.
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
	}
	if got, want := strings.Join(names, " "), "a.pcapng b.pcap hard link r.json sub"; got != want {
		t.Errorf("directory holds %s after the checks, want %s", got, want)
	}
}

func TestCheckOutputsReadOnlyDir(t *testing.T) {
	if os.Geteuid() == 0 {
		t.Skip("root writes into read-only directories")
	}
	dir := t.TempDir()
	ro := filepath.Join(dir, "ro")
	if err := os.Mkdir(ro, 0o555); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(ro, "r.json")
	err := CheckOutputs(nil, []string{out})
	want := "cannot write " + out + ": cannot create a file in " + ro + ": permission denied"
	if err == nil || err.Error() != want {
		t.Errorf("CheckOutputs = %v, want %s", err, want)
	}
}

func TestIsCapture(t *testing.T) {
	dir := testDir(t)
	tests := []struct {
		name string
		want bool
	}{
		{"a.pcapng", true},
		{"b.pcap", true},
		{"link", true},
		{"r.json", false},
		{"sub", false},
		{"missing", false},
	}
	for _, tt := range tests {
		got, err := IsCapture(filepath.Join(dir, tt.name))
		if err != nil || got != tt.want {
			t.Errorf("IsCapture(%s) = %v, %v; want %v", tt.name, got, err, tt.want)
		}
	}
}

func TestDedupInputs(t *testing.T) {
	dir := testDir(t)
	t.Chdir(dir)
	big := bytes.Repeat([]byte("0123456789abcdef"), 3*SampleSize/16) // 3 MiB: the middle is not sampled
	write(t, "big1", big)
	write(t, "big2", big)
	other := bytes.Clone(big)
	other[len(other)/2] ^= 1 // same size, same sampled ends, different middle
	write(t, "big3", other)
	write(t, "copy.pcapng", readAll(t, "a.pcapng"))
	tests := []struct {
		name     string
		inputs   []string
		kept     []string
		warnings []string
	}{
		{"distinct", []string{"a.pcapng", "b.pcap"}, []string{"a.pcapng", "b.pcap"}, nil},
		{"same name twice", []string{"a.pcapng", "a.pcapng"}, []string{"a.pcapng"},
			[]string{"a.pcapng is given twice; reading it once"}},
		{"./ spelling", []string{"a.pcapng", "./a.pcapng"}, []string{"a.pcapng"},
			[]string{"./a.pcapng is the same file as a.pcapng; reading it once"}},
		{"symbolic link", []string{"link", "a.pcapng"}, []string{"link"},
			[]string{"a.pcapng is the same file as link; reading it once"}},
		{"hard link", []string{"b.pcap", "hard"}, []string{"b.pcap"},
			[]string{"hard is the same file as b.pcap; reading it once"}},
		{"copy", []string{"a.pcapng", "b.pcap", "copy.pcapng"}, []string{"a.pcapng", "b.pcap"},
			[]string{"copy.pcapng has the same content as a.pcapng; reading it once"}},
		{"big copy", []string{"big1", "big2"}, []string{"big1"},
			[]string{"big2 has the same content as big1; reading it once"}},
		{"same ends, different middle", []string{"big1", "big3"}, []string{"big1", "big3"}, nil},
		{"many copies", []string{"a.pcapng", "copy.pcapng", "a.pcapng", "link", "a.pcapng", "link"}, []string{"a.pcapng"},
			[]string{
				"copy.pcapng has the same content as a.pcapng; reading it once",
				"a.pcapng is given 3 times; reading it once",
				"link is the same file as a.pcapng; reading it once",
			}},
		{"stdin, missing and directories kept", []string{"-", "missing", "sub", "missing", "sub"},
			[]string{"-", "missing", "sub", "missing", "sub"}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			kept, warnings, err := DedupInputs(tt.inputs)
			if err != nil {
				t.Fatal(err)
			}
			if strings.Join(kept, "|") != strings.Join(tt.kept, "|") {
				t.Errorf("kept %q, want %q", kept, tt.kept)
			}
			if strings.Join(warnings, "|") != strings.Join(tt.warnings, "|") {
				t.Errorf("warnings %q, want %q", warnings, tt.warnings)
			}
		})
	}
}

func readAll(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
