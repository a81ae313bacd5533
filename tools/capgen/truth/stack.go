package truth

// Stack describes a capture made by programs of other stacks (Debian's
// nginx, nghttpd and h2load, curl, python3-h2, openssl, haproxy) instead
// of capgen's Go programs. These programs have no Go hooks, so the facts
// in the truth file come from their own reports: curl's -w variables, the
// nginx access log ($remote_port, $connection, $connection_requests,
// $status, $request_time), nghttpd's -v frame log, h2load's summary,
// the python-h2 client's events, openssl s_client's session lines and
// haproxy's log. Each such report is kept verbatim in Reports.
//
// Connection.C2SBytes and S2CBytes cannot come from these programs (none
// reports the bytes it wrote to its socket, least of all under TLS): in
// a stack truth file they are the TCP payload the capture holds per
// direction, which BytesFrom says. The connections (by client port),
// their requests and the statuses come from the reports, and capgen
// checks them against the capture before writing it.
//
// The programs' sockets keep lo's default MSS (their SYNs advertise
// 65495); Capture.MSS is only the size capgen split the loopback
// super-segments at (Capture.Segmented). Capture.Go is empty.
type Stack struct {
	// Programs lists the programs that ran, servers first.
	Programs []Program `json:"programs"`
	// Reports holds what each program reported, verbatim.
	Reports []Report `json:"reports"`
	// BytesFrom is "capture": Connection.C2SBytes and S2CBytes were
	// counted in the capture, not reported by the programs.
	BytesFrom string `json:"bytes_from"`
	// Verdicts are the findings an analyser should report on the
	// capture, with severity and cause, and why; Expect.Findings lists
	// the kinds of those at warning or above. A verdict at info says
	// what may be reported but must not be raised to a warning.
	Verdicts []Verdict `json:"verdicts"`
	// Facts are the scenario's key observations, from the reports, by
	// name ("refused_streams": 8), for tests to assert.
	Facts map[string]int `json:"facts,omitempty"`
}

// Program is one program that took part in a stack capture.
type Program struct {
	// Name is the program's name ("nginx", "curl").
	Name string `json:"name"`
	// Role is "server", "client" or "proxy".
	Role string `json:"role"`
	// Package is the Debian package that provides it.
	Package string `json:"package"`
	// Version is the program's own version line.
	Version string `json:"version"`
	// Args is the command line, with the run's temporary directory
	// written as $DIR.
	Args []string `json:"args"`
}

// Report is one report of a program, verbatim.
type Report struct {
	// Program names the program (Program.Name).
	Program string `json:"program"`
	// What says which report it is ("access log, log_format
	// $remote_port $connection ...", "-w output").
	What string `json:"what"`
	// Lines are the report's lines, in order.
	Lines []string `json:"lines"`
}

// Verdict is a finding an analyser should (or, at info, may) report.
type Verdict struct {
	// Kind is the finding kind ("goaway", "connection_lost").
	Kind string `json:"kind"`
	// Severity is "info", "warning" or "critical".
	Severity string `json:"severity"`
	// Cause names the cause in words of the programs ("client
	// cancelled streams after the response headers").
	Cause string `json:"cause"`
	// Why gives the evidence from the reports.
	Why string `json:"why"`
	// FindingCause, if set, is the finding's cause as h2scope names it
	// (findings[].cause: "session_not_cached"), the one the programs'
	// reports show.
	FindingCause string `json:"finding_cause,omitempty"`
}
