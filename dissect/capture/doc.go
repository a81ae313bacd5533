// Package capture reads packet capture files — classic pcap and pcapng,
// plain or compressed with gzip or zstd — and merges several of them by
// time into one numbered sequence of packets, as mergecap and Wireshark do.
//
// # Formats
//
// The format is detected from the first bytes of the file, never from its
// name:
//
//   - pcap with microsecond (0xa1b2c3d4) or nanosecond (0xa1b23c4d)
//     timestamps, in either byte order, and the "modified" pcap variant
//     (0xa1b2cd34) that tcpdump patches wrote; versions 2.x, with the
//     swapped length fields of versions before 2.4 handled as libpcap does.
//   - pcapng with any number of sections (each with its own byte order) and
//     interfaces (each with its own link type, if_tsresol and if_tsoffset);
//     Enhanced, Simple and obsolete Packet Blocks carry packets. Decryption
//     Secrets Blocks are kept (see Reader.Secrets); other blocks are checked
//     for a consistent length and skipped.
//   - either of the above inside a gzip (.gz) or zstd (.zst) stream.
//
// # Merging and numbering
//
// Several files are merged into one sequence by timestamp with a k-way
// merge, exactly as mergecap merges them: the next packet is the earliest
// of the files' next packets, and when timestamps are equal the file given
// later goes first (mergecap's rule, which its is_earlier comparison makes
// so). A file is never reordered: when its timestamps go backwards, its
// packets still come out in file order. Frame numbers are 1-based over the
// merged sequence, so they are the numbers Wireshark shows for the output
// of mergecap over the same files in the same order, and for a single file
// the numbers Wireshark shows for that file. Like Wireshark, the numbering
// counts the pcapng blocks Wireshark shows as frames without a packet in
// them (custom, systemd journal and Sysdig event blocks): Next skips them,
// and their numbers go unused.
//
// # Errors
//
// Every fault in the input is an *event.Error naming the file (the path as
// given to Open), the frame number the faulty record would have had, the
// byte offset of the record in the decompressed stream, and the layer that
// found it ("pcap", "pcapng", "gzip", "zstd", or "capture" when the file is
// not a capture at all). Causes match event.ErrTruncated (the file ends
// inside a record), event.ErrFormat (not a capture format this package
// reads) or ErrCorrupt (a record's fields are impossible) with errors.Is.
//
// Lengths read from the file are checked before they are used: a record's
// captured length is capped (Options.MaxCaptureLen), pcapng blocks are
// capped at 128 MiB and must repeat their length in their trailer, a
// Decryption Secrets Block at 16 MiB and all of them together at 64 MiB,
// and nothing is allocated from a length field before the bytes it
// announces have been read.
//
// # Memory
//
// Each file of a merge stays open until its last packet has been returned,
// and holds one read buffer of Options.MaxCaptureLen plus 64 KiB (320 KiB
// by default); Packet.Data points into it, so reading a packet neither
// copies nor allocates. A gzip stream adds about 50 KiB; a zstd stream adds
// the window its header asks for, up to 128 MiB (zstd's own default limit;
// a larger window is refused).
package capture
