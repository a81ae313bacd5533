// Package batch analyses many captures at once, as `h2scope batch` does:
// it finds the captures under directories and glob patterns, groups the
// rotated files of one capture, analyses the captures in parallel and
// writes one JSON report per line (NDJSON), in a deterministic order, to an
// output that a killed run can resume.
//
// # Finding captures
//
// A directory is walked recursively (hidden files and directories, whose
// names start with a dot, are left out); a glob pattern is expanded with
// filepath.Glob, and each match is taken as a file or walked as a
// directory. A file found this way is a capture when its name ends in
// .pcap, .pcapng or .cap, optionally followed by a tcpdump -C counter
// (name.pcap7) and by .gz or .zst; any other file is a capture when its
// content is one (the pcap or pcapng magic number, also inside a gzip or
// zstd stream). A file named explicitly on the command line is always
// taken, so that a damaged capture with an unusual name is reported rather
// than silently left out. Paths are sorted, with runs of digits compared
// as numbers (name.pcap2 before name.pcap10).
//
// # Rotated files
//
// Files in the same directory whose names differ only in a trailing
// counter or timestamp are one series:
//
//   - tcpdump -C: name.pcap, name.pcap1, name.pcap2, ... (also with -W's
//     zero padding, and .gz or .zst after the counter);
//   - tcpdump -G with strftime names, and other counters after a
//     separator: name-20261122-101500.pcap, name.1.pcap, name_7.pcapng;
//   - dumpcap ring buffers: name_00001_20261122101500.pcapng.
//
// Compression does not count in the name: name.pcap1.gz follows name.pcap,
// since rotated files are often compressed all but the newest.
//
// The files of a series are ordered by their counters, compared as numbers
// field by field, and a file joins the capture of the file before it when
// its first packet is no earlier than that file's last packet and at most
// Options.Gap (five minutes by default) later. Two unrelated captures with
// look-alike names therefore stay apart: their times overlap or are far
// apart. Finding the times reads the files of a series once through; a
// capture that is a single file is read only by its analysis.
//
// A group is analysed as one capture, its files merged by time, so that
// connections crossing a rotation stay whole.
//
// # Key logs
//
// Each capture is analysed with a key log of its own: the key logs given
// for every capture (Options.KeyLogs, --keylog), then those found beside
// its files, then the secrets of its pcapng Decryption Secrets Blocks.
// Beside a file NAME.pcap (NAME being the file's name without its .pcap,
// .pcapng or .cap ending, a tcpdump -C counter after it, and .gz or .zst)
// are taken NAME.keylog, NAME.keys and NAME.sslkeylog, and in its
// directory sslkeylog.txt and keylog.txt. The report's captures[0].key_log
// says what they held and how the sessions fitted them.
//
// # Output
//
// Each line is either a report (report.Report, as its WriteJSON writes it
// but without indentation) or, for a capture that could not be read at
// all, an ErrorRecord. Either names the capture's files in
// captures[0].files. A capture cut short part-way still yields its
// partial report, with captures[0].faults saying where it was cut.
//
// Lines come in the order of the captures, whatever the number of
// workers: a reorder buffer holds the reports that are ready before an
// earlier one, and no more captures are started than there are workers
// past the oldest one not yet written, so a slow capture stalls the
// others rather than letting memory grow.
//
// # Resuming
//
// A report carries a resume key (captures[0].resume_key) covering
// everything that decides it: each file's size, modification time and a
// SHA-256 of its first and last MiB; the content of the key logs read for
// it; the options (thresholds, redaction, timeline limits, reading and
// tracking limits, in a canonical encoding); and the h2scope version
// (module version and VCS revision from the build information). A run
// that finds its output file already there reads it first. A capture
// whose line has the key this run computes is reused; a capture whose
// key differs, or whose line is an error record, is analysed again and
// its old line replaced; lines for captures this run was not given are
// kept. Replacing lines rewrites the file: the lines kept are copied to a
// new file beside it, which is synced and renamed over it, before any
// capture is analysed; the new lines are then appended, each with a
// single write followed by an fsync, so a killed run leaves at most one
// torn last line (no newline at the end, or not valid JSON), which the
// next run cuts away. Once every capture is written, the file is put in
// the order a clean run writes (by the first file's path, numbers
// compared as numbers), again through a new file, when appending left it
// out of order; a resumed output is then byte for byte a clean run's. A
// complete line that is not an h2scope report makes the run stop with
// the file left alone. A capture is recognised by its list of files, so a
// resumed run must be given the paths spelled as the first run was.
//
// The Summary counts the whole output, old and new lines: reports, those
// cut short, error records and findings; and what this run did: analysed
// (again, for changed or failed captures), reused, kept.
package batch
