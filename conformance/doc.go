// Package conformance checks h2scope against Wireshark's tshark, the oracle
// for exactness, and against the truth files of the project's own
// captures. Its tests are slow and need tshark, so they only build with the
// "conformance" tag: run them with `make conformance`.
//
// The corpus of other people's captures is read in place from
// ../../shared/corpus (override with H2SCOPE_CORPUS); when it is absent that
// part is skipped with a message.
package conformance
