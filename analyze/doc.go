// Package analyze turns dissected connections into findings: the answer
// h2scope gives, with the evidence (frames, timestamps, bytes), metrics, a
// confidence that reflects the capture's quality, and the setting to
// change.
//
// A Collector receives the dissectors' units (it is an event.Sink) and
// each finished connection, and keeps per connection the compact facts
// the detectors read (Conn). Analyze runs one detector per finding kind
// over them; each detector lives in its own file, whose doc comment says
// the signal it reads, its thresholds (Config, overridable by CLI flags),
// the false positives it avoids and its metrics.
//
// The finding kinds are fixed by the design (see the Kind constants);
// their names and the fields of Finding are what users and other tools
// rely on, and are extended, never renamed.
package analyze
