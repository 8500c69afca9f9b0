package testpeers

import (
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// ServeConfig says where a "postfach serve" under test keeps its state and
// what it listens on. The mail listeners not named here (submission, IMAP,
// POP3) are off, and only errors are logged.
type ServeConfig struct {
	DataDir     string
	DatabaseURL string // "" is the SQLite database in DataDir
	// HTTPAddr is the web UI and API listener; "" is a port chosen by the
	// kernel that nobody waits for.
	HTTPAddr string
	// SMTPAddr is the inbound SMTP listener; "" is off.
	SMTPAddr string
	// Flags are further flags, such as --smarthost; a flag given twice takes
	// the later value, so these can override the defaults above.
	Flags []string
}

// args is the command line of "postfach serve" for c.
func (c ServeConfig) args() []string {
	orOff := func(addr string) string {
		if addr == "" {
			return "off"
		}
		return addr
	}
	httpAddr := c.HTTPAddr
	if httpAddr == "" {
		httpAddr = "127.0.0.1:0"
	}
	args := []string{"serve", "--data-dir", c.DataDir, "--http-addr", httpAddr, "--smtp-addr", orOff(c.SMTPAddr),
		"--submission-addr", "off", "--submission-tls-addr", "off", "--imap-addr", "off", "--imap-tls-addr", "off",
		"--pop3-addr", "off", "--pop3-tls-addr", "off", "--log-level", "error"}
	if c.DatabaseURL != "" {
		args = append(args, "--database-url", c.DatabaseURL)
	}
	return append(args, c.Flags...)
}

// readyAddrs are the listeners that accept connections once the server is up.
func (c ServeConfig) readyAddrs() []string {
	var addrs []string
	for _, addr := range []string{c.HTTPAddr, c.SMTPAddr} {
		if addr != "" {
			addrs = append(addrs, addr)
		}
	}
	return addrs
}

// ServeProcess is a real "postfach serve" that a test kills with SIGKILL and
// starts again on the same data directory, database and ports, the way a
// power cut and a restart do. It is killed at cleanup.
type ServeProcess struct {
	t     testing.TB
	bin   string
	args  []string
	ready []string

	mu   sync.Mutex
	runs []*process // one per start, the current one last
}

// StartServe builds the postfach command, starts "postfach serve" and returns
// once every address of cfg accepts connections. At least one of HTTPAddr and
// SMTPAddr must be set, or there is nothing to wait for.
func StartServe(t testing.TB, cfg ServeConfig) *ServeProcess {
	t.Helper()
	s := &ServeProcess{t: t, args: cfg.args(), ready: cfg.readyAddrs()}
	if len(s.ready) == 0 {
		t.Fatal("testpeers: StartServe needs HTTPAddr or SMTPAddr to know when the server is up")
	}
	s.bin = BuildPostfach(t)
	t.Cleanup(s.Kill)
	s.start()
	return s
}

// BuildPostfach compiles cmd/postfach into a temporary directory and returns
// the binary's path, so a test runs the code under test, not an installed
// copy.
func BuildPostfach(t testing.TB) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "postfach")
	if out, err := exec.Command("go", "build", "-o", bin, "postfach/cmd/postfach").CombinedOutput(); err != nil {
		t.Fatalf("testpeers: go build: %v\n%s", err, out)
	}
	return bin
}

// Restart kills the server with SIGKILL and starts it again, returning once
// it accepts connections.
func (s *ServeProcess) Restart() {
	s.t.Helper()
	s.Kill()
	s.start()
}

// Kill sends SIGKILL, so no shutdown code runs, and waits until the process is
// gone. Killing a process that is already gone does nothing.
func (s *ServeProcess) Kill() {
	p := s.current()
	if p == nil {
		return
	}
	_ = p.cmd.Process.Kill()
	<-p.exited
}

// Output is what every run of the server printed, oldest first, for failure
// messages.
func (s *ServeProcess) Output() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var b strings.Builder
	for _, p := range s.runs {
		b.WriteString(p.output.String())
	}
	return b.String()
}

func (s *ServeProcess) current() *process {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.runs) == 0 {
		return nil
	}
	return s.runs[len(s.runs)-1]
}

// start runs the binary once more and waits for its listeners. The wait is
// startTimeout: a loaded CI machine restarts slowly, and the crash tests
// fail only on lost or duplicated mail, not on slowness.
func (s *ServeProcess) start() {
	s.t.Helper()
	p, err := startProcess(exec.Command(s.bin, s.args...))
	if err != nil {
		s.t.Fatalf("testpeers: start postfach: %v", err)
	}
	s.mu.Lock()
	s.runs = append(s.runs, p)
	s.mu.Unlock()
	if err := waitForListeners(p.exited, s.ready...); err != nil {
		s.Kill()
		s.t.Fatalf("testpeers: postfach serve did not come up: %v\n%s", err, s.Output())
	}
}
