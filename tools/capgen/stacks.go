package main

// Stack scenarios: captures made by other stacks' programs (Debian's
// nginx, nghttpd and h2load, curl, python3-h2, openssl, haproxy) rather
// than capgen's Go programs, so that h2scope meets habits other than Go's.
// The programs run as they are, on 127.0.0.1, on a port capgen captures;
// their own reports (curl -w, nginx's access log, nghttpd -v, h2load's
// summary, the python-h2 client's events, openssl s_client) make the
// truth file, in truth.Stack. They are written to testdata/pcaps/stacks.

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/h2scope/h2scope/tools/capgen/truth"
)

// stacksDir is the subdirectory of -out that receives stack scenarios.
// Their truth files are of another kind (the programs' reports, bytes
// counted in the capture), so they stay apart from the Go scenarios.
const stacksDir = "stacks"

// stackHost is the name the TLS servers' certificate is for; clients
// resolve it to 127.0.0.1 (curl --resolve, openssl -servername).
const stackHost = "h2scope.test"

// A stackTool is a program stack scenarios run, and the Debian package
// it comes from.
type stackTool struct {
	bin     string   // executable, looked up in PATH unless absolute
	pkg     string   // Debian package
	version []string // arguments that print its version
	probe   []string // if set, a command that must succeed (a Python module)
}

// stackTools lists the programs by the name scenarios use.
var stackTools = map[string]stackTool{
	"nginx":      {bin: "nginx", pkg: "nginx", version: []string{"-v"}},
	"h2o":        {bin: "h2o", pkg: "h2o", version: []string{"--version"}},
	"nghttpd":    {bin: "nghttpd", pkg: "nghttp2-server", version: []string{"--version"}},
	"h2load":     {bin: "h2load", pkg: "nghttp2-client", version: []string{"--version"}},
	"curl":       {bin: "curl", pkg: "curl", version: []string{"--version"}},
	"openssl":    {bin: "openssl", pkg: "openssl", version: []string{"version"}},
	"haproxy":    {bin: "haproxy", pkg: "haproxy", version: []string{"-v"}},
	"python3":    {bin: "/usr/bin/python3", pkg: "python3", version: []string{"--version"}},
	"python3-h2": {bin: "/usr/bin/python3", pkg: "python3-h2", version: []string{"-c", "import h2, sys; print('python', sys.version.split()[0], 'h2', h2.__version__)"}, probe: []string{"-c", "import h2"}},
}

// stackInstall is the command that installs every package stack
// scenarios need (as root, on Debian 12).
const stackInstall = "apt-get install -y nginx h2o nghttp2-server nghttp2-client curl openssl haproxy python3-h2 python3-grpcio"

// needTools fails, naming every missing program and its Debian package
// and the command that installs them, unless all of names are there.
func needTools(names []string) error {
	var missing, pkgs []string
	for _, n := range names {
		t, ok := stackTools[n]
		if !ok {
			return fmt.Errorf("unknown tool %q", n)
		}
		path, err := exec.LookPath(t.bin)
		if err == nil && t.probe != nil {
			err = exec.Command(path, t.probe...).Run()
		}
		if err != nil {
			missing = append(missing, fmt.Sprintf("%s (Debian package %s)", n, t.pkg))
			if !slices.Contains(pkgs, t.pkg) {
				pkgs = append(pkgs, t.pkg)
			}
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("missing %s: as root, run apt-get install -y %s (all stack scenarios: %s)",
			strings.Join(missing, ", "), strings.Join(pkgs, " "), stackInstall)
	}
	return nil
}

// toolVersion returns the first line a tool prints for its version.
func toolVersion(name string) string {
	t := stackTools[name]
	out, _ := exec.Command(t.bin, t.version...).CombinedOutput()
	line, _, _ := strings.Cut(strings.TrimSpace(string(out)), "\n")
	return strings.TrimSpace(line)
}

// A stackRun is one run of a stack scenario: its temporary directory,
// the captured port, the programs it started and what they reported.
type stackRun struct {
	dir    string
	port   int
	stderr io.Writer
	st     truth.Stack
	conns  []stackConn
	reqs   []truth.Request
	keylog string // SSLKEYLOGFILE of the clients; "" without TLS
	procs  []*exec.Cmd
	done   []chan error // one per proc: Wait's result
	logs   []string     // one per proc: its output file
	// own is set by a scenario that captures itself (elsewhere than on
	// lo: another network namespace): its packets replace lo's.
	own *ownCapture
	// clientIP is the clients' address when not 127.0.0.1; clientNS,
	// if set, the network namespace runClient runs clients in.
	clientIP, clientNS string
}

// ownCapture is a capture a scenario made itself.
type ownCapture struct {
	pkts   []packet
	iface  string // the interface captured
	server string // the server's address, as addr
}

// stackConn is one connection a program reported.
type stackConn struct {
	port     int // client port
	phase    string
	requests int
	opened   bool   // a report says the client connected here (curl's num_connects)
	failed   int    // requests written here that got no answer (the server had closed it)
	dial     string // truth.DialRefused or truth.DialTimeout when the connect failed
	synRetx  int    // SYNs the client's kernel sent again (TCP_INFO tcpi_total_retrans)
	ip       string // the client's address when not the run's clientIP (a spoofed source)
}

// client returns the address of a client's connection from port.
func (r *stackRun) client(port int) string {
	ip := r.clientIP
	if ip == "" {
		ip = "127.0.0.1"
	}
	return ip + ":" + strconv.Itoa(port)
}

// connClient returns the address of connection c's client.
func (r *stackRun) connClient(c stackConn) string {
	if c.ip != "" {
		return c.ip + ":" + strconv.Itoa(c.port)
	}
	return r.client(c.port)
}

// addr is the captured server's address.
func (r *stackRun) addr() string { return "127.0.0.1:" + strconv.Itoa(r.port) }

// path returns name inside the run's directory.
func (r *stackRun) path(name string) string { return filepath.Join(r.dir, name) }

// conn returns the ID of the connection from client port port in phase,
// adding it if new. A port reused later must use newConn.
func (r *stackRun) conn(port int, phase string) int {
	for i := len(r.conns) - 1; i >= 0; i-- {
		if r.conns[i].port == port {
			return i + 1
		}
	}
	return r.newConn(port, phase)
}

// newConn adds a connection from port.
func (r *stackRun) newConn(port int, phase string) int {
	r.conns = append(r.conns, stackConn{port: port, phase: phase})
	return len(r.conns)
}

// request records a request on connection id.
func (r *stackRun) request(id int, q truth.Request) {
	q.Conn = id
	q.ConnClient = r.client(r.conns[id-1].port)
	r.conns[id-1].requests++
	r.reqs = append(r.reqs, q)
}

// program records a program and its command line.
func (r *stackRun) program(name, role string, args []string) {
	for _, p := range r.st.Programs {
		if p.Name == name && p.Role == role && slices.Equal(p.Args, r.scrub(args)) {
			return
		}
	}
	r.st.Programs = append(r.st.Programs, truth.Program{
		Name: name, Role: role, Package: stackTools[name].pkg, Version: toolVersion(name), Args: r.scrub(args),
	})
}

// scrub writes the run's directory as $DIR in args.
func (r *stackRun) scrub(args []string) []string {
	out := make([]string, len(args))
	for i, a := range args {
		out[i] = a
		if r.dir != "" {
			out[i] = strings.ReplaceAll(a, r.dir, "$DIR")
		}
	}
	return out
}

// report records lines a program reported.
func (r *stackRun) report(program, what string, lines []string) {
	for i, l := range lines {
		if r.dir != "" {
			lines[i] = strings.ReplaceAll(l, r.dir, "$DIR")
		}
	}
	r.st.Reports = append(r.st.Reports, truth.Report{Program: program, What: what, Lines: lines})
}

// fact records a key observation.
func (r *stackRun) fact(name string, n int) {
	if r.st.Facts == nil {
		r.st.Facts = map[string]int{}
	}
	r.st.Facts[name] = n
}

// verdict records an expected finding.
func (r *stackRun) verdict(kind, severity, cause, why string) {
	r.st.Verdicts = append(r.st.Verdicts, truth.Verdict{Kind: kind, Severity: severity, Cause: cause, Why: why})
}

// command builds the command for tool name with args, in its own
// process group.
func (r *stackRun) command(ctx context.Context, name string, args []string, env ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, stackTools[name].bin, args...)
	cmd.Dir = r.dir
	cmd.Env = append(os.Environ(), env...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	return cmd
}

// start starts a server program in the background and waits until
// something listens on port (read from /proc/net/tcp: dialing the
// captured port would put a connection in the capture).
func (r *stackRun) start(ctx context.Context, name, role string, port int, args ...string) (*exec.Cmd, error) {
	r.program(name, role, args)
	cmd := r.command(ctx, name, args)
	log, err := os.Create(r.path(fmt.Sprintf("%s.%d.out", name, len(r.procs))))
	if err != nil {
		return nil, err
	}
	cmd.Stdout, cmd.Stderr = log, log
	if err := cmd.Start(); err != nil {
		log.Close()
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait(); log.Close() }()
	r.procs = append(r.procs, cmd)
	r.done = append(r.done, done)
	r.logs = append(r.logs, log.Name())
	deadline := time.Now().Add(5 * time.Second)
	for !listening(port) {
		select {
		case err := <-done:
			done <- err
			out, _ := os.ReadFile(log.Name())
			return nil, fmt.Errorf("%s exited before listening on %d: %v: %s", name, port, err, bytes.TrimSpace(out))
		default:
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("%s: nothing listens on 127.0.0.1:%d after 5 s", name, port)
		}
		time.Sleep(20 * time.Millisecond)
	}
	return cmd, nil
}

// output returns what a started program wrote so far.
func (r *stackRun) output(cmd *exec.Cmd) []byte {
	b, _ := os.ReadFile(r.logs[slices.Index(r.procs, cmd)])
	return b
}

// signal sends sig to cmd's process group.
func (r *stackRun) signal(cmd *exec.Cmd, sig syscall.Signal) error {
	return syscall.Kill(-cmd.Process.Pid, sig)
}

// wait waits up to d for cmd to exit and returns its Wait error.
func (r *stackRun) wait(cmd *exec.Cmd, d time.Duration) error {
	i := slices.Index(r.procs, cmd)
	select {
	case err := <-r.done[i]:
		r.done[i] <- err
		return err
	case <-time.After(d):
		return fmt.Errorf("%s did not exit within %v", filepath.Base(cmd.Path), d)
	}
}

// stopAll stops every program still running: sig, then SIGKILL after 3 s.
func (r *stackRun) stopAll(sig syscall.Signal) {
	for i, cmd := range r.procs {
		select {
		case err := <-r.done[i]:
			r.done[i] <- err
			continue
		default:
		}
		r.signal(cmd, sig)
		if r.wait(cmd, 3*time.Second) != nil {
			r.signal(cmd, syscall.SIGKILL)
			r.wait(cmd, 3*time.Second)
		}
	}
}

// runClient runs a client program to its end and returns its standard
// output and standard error.
func (r *stackRun) runClient(ctx context.Context, name string, env []string, args ...string) ([]byte, []byte, error) {
	r.program(name, "client", args)
	cmd := r.command(ctx, name, args, env...)
	if r.clientNS != "" {
		cmd = r.command(ctx, "ip", append([]string{"netns", "exec", r.clientNS, stackTools[name].bin}, args...), env...)
	}
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	return out.Bytes(), errb.Bytes(), err
}

// listening reports whether a TCP socket listens on port of 127.0.0.1
// or any address, by /proc/net/tcp, or on an IPv6 socket that takes
// IPv4 (grpc-core listens on ::ffff:127.0.0.1), by /proc/net/tcp6.
func listening(port int) bool {
	want := fmt.Sprintf(":%04X ", port)
	for _, file := range []string{"/proc/net/tcp", "/proc/net/tcp6"} {
		b, err := os.ReadFile(file)
		if err != nil {
			continue
		}
		for _, l := range strings.Split(string(b), "\n")[1:] {
			f := strings.Fields(l)
			if len(f) <= 3 || f[3] != "0A" || !strings.HasSuffix(f[1]+" ", want) {
				continue
			}
			addr := strings.TrimSuffix(f[1]+" ", want)
			if file == "/proc/net/tcp" || addr == strings.Repeat("0", 32) || addr == "0000000000000000FFFF00000100007F" {
				return true
			}
		}
	}
	return false
}

// freePort returns a port of 127.0.0.1 from capgen's server range that
// was free a moment ago, for a program of another stack to listen on.
func freePort() (int, error) {
	s, err := bindLoopback(0)
	if err != nil {
		return 0, err
	}
	unix.Close(s.fd)
	return int(s.port), nil
}

// lines splits b into non-empty lines.
func lines(b []byte) []string {
	var out []string
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		if l := strings.TrimRight(sc.Text(), "\r"); l != "" {
			out = append(out, l)
		}
	}
	return out
}

// captureStack runs a stack scenario under capture, retrying up to 3
// times when the capture and the programs' reports disagree.
func captureStack(ctx context.Context, sc *scenario, o *options) (*result, error) {
	if err := needTools(sc.tools); err != nil {
		return nil, fmt.Errorf("%s: %w", sc.name, err)
	}
	var err error
	for attempt := 1; attempt <= 3; attempt++ {
		var r *result
		r, err = captureStackOnce(ctx, sc, o)
		if err == nil {
			return r, nil
		}
		if errors.Is(err, errNotRoot) || ctx.Err() != nil {
			return nil, err
		}
		fmt.Fprintf(o.stderr, "capgen: %s: attempt %d: %v\n", sc.name, attempt, err)
	}
	return nil, fmt.Errorf("%s: %w", sc.name, err)
}

// captureStackOnce captures one run of sc.stack and builds its truth.
func captureStackOnce(ctx context.Context, sc *scenario, o *options) (*result, error) {
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "capgen-"+sc.name+"-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	// Workers of nginx and haproxy may drop root: let them read it.
	if err := os.Chmod(dir, 0o755); err != nil {
		return nil, err
	}
	rec, err := startCapture(uint16(port))
	if err != nil {
		return nil, err
	}
	r := &stackRun{dir: dir, port: port, stderr: o.stderr}
	runErr := sc.stack(ctx, r)
	r.stopAll(syscall.SIGTERM)
	pkts, capErr := rec.stop(300 * time.Millisecond)
	if err := errors.Join(runErr, capErr); err != nil {
		return nil, err
	}
	server, iface := r.addr(), "lo"
	if o := r.own; o != nil {
		if len(pkts) > 0 {
			return nil, fmt.Errorf("%d packets on lo besides the scenario's own capture", len(pkts))
		}
		pkts, server, iface = o.pkts, o.server, o.iface
	}
	t := &truth.Truth{
		Scenario:    sc.name,
		Description: sc.description,
		Server:      server,
		Capture: truth.Capture{
			Interface: iface,
			LinkType:  "ethernet",
			Snaplen:   snaplen,
			MSS:       o.mss,
			Go:        "", // no Go program took part
		},
		Requests: r.reqs,
	}
	if t.Requests == nil {
		t.Requests = []truth.Request{}
	}
	for i, c := range r.conns {
		t.Connections = append(t.Connections, truth.Connection{
			ID: i + 1, Client: r.connClient(c), Server: server, Phase: c.phase,
			Requests: c.requests, ServerRequests: c.requests, FailedRequests: c.failed,
			Dial: c.dial, SYNRetransmits: c.synRetx,
		})
	}
	st := r.st
	st.BytesFrom = "capture"
	if st.Verdicts == nil {
		st.Verdicts = []truth.Verdict{}
	}
	t.Stack = &st
	if o.segment {
		pkts = segment(pkts, o.mss)
		t.Capture.Segmented = true
	}
	if err := stackCheckCapture(pkts, uint16(port), t); err != nil {
		return nil, fmt.Errorf("capture disagrees with the programs: %w", err)
	}
	t.Expect.Frames = len(pkts)
	t.Expect.TCPConnections = len(t.Connections)
	t.Expect.HTTPRequests = len(t.Requests)
	t.Expect.Findings = sc.findings
	for _, v := range st.Verdicts {
		if v.Severity != "info" && !slices.Contains(sc.findings, v.Kind) {
			return nil, fmt.Errorf("verdict %s %s is not in the scenario's findings %v", v.Severity, v.Kind, sc.findings)
		}
	}
	res := &result{pkts: pkts, truth: t}
	if r.keylog != "" {
		keys, err := os.ReadFile(r.keylog)
		if err != nil {
			return nil, fmt.Errorf("key log: %w", err)
		}
		if len(keys) == 0 {
			return nil, errors.New("key log: the clients logged no secrets")
		}
		res.keys = keys
		t.Capture.KeyLog = sc.name + ".keys"
	}
	return res, nil
}

// stackCheckCapture checks that the capture holds exactly the
// connections the programs reported, with one SYN each and the
// retransmitted ones the client reported, and fills in each
// connection's payload bytes from the capture (truth.Stack.BytesFrom).
func stackCheckCapture(pkts []packet, port uint16, t *truth.Truth) error {
	got, err := flows(pkts, port)
	if err != nil {
		return err
	}
	keys, err := truthKeys(t.Connections)
	if err != nil {
		return err
	}
	for i := range t.Connections {
		c := &t.Connections[i]
		f := got[keys[i]]
		if f == nil {
			return fmt.Errorf("connection %d (%s) reported by the programs is not in the capture", c.ID, c.Client)
		}
		if f.syns != 1+c.SYNRetransmits {
			return fmt.Errorf("connection %d (%s): %d SYNs, the client reported %d retransmissions", c.ID, c.Client, f.syns, c.SYNRetransmits)
		}
		c.C2SBytes, c.S2CBytes = int64(f.payload[0]), int64(f.payload[1])
		t.Expect.C2SBytes += c.C2SBytes
		t.Expect.S2CBytes += c.S2CBytes
		delete(got, keys[i])
	}
	for k, f := range got {
		return fmt.Errorf("client port %d: %d SYNs in the capture, no program reported the connection", k.port, f.syns)
	}
	return nil
}

// sigQuit asks nginx (and haproxy) to stop gracefully; sigTerm stops
// nghttpd.
const (
	sigQuit = syscall.SIGQUIT
	sigTerm = syscall.SIGTERM
)
