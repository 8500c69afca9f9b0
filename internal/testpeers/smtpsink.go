package testpeers

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"
)

// SMTPSink is Postfix's smtp-sink: an SMTP server that accepts and discards
// mail as fast as it can, or dumps it to files with -d, or rejects chosen
// commands with -r/-f. It is the real-peer counterpart for outbound delivery
// tests and the reference figure for delivery benchmarks.
type SMTPSink struct {
	// Addr is the "127.0.0.1:N" the sink listens on.
	Addr string

	proc *process
}

// StartSMTPSink starts smtp-sink on a free loopback port with the extra
// flags args (see smtp-sink(1): -c counters, -d dump template, -r/-f
// commands to reject, -M message count, -w delay, ...). When the tests run
// as root, "-u root" is added unless args has -u, because smtp-sink refuses
// to run as root otherwise. The sink is stopped at cleanup.
func StartSMTPSink(t testing.TB, args ...string) *SMTPSink {
	t.Helper()
	bin := Binary(t, "smtp-sink", "postfix")
	if os.Geteuid() == 0 && !slices.Contains(args, "-u") {
		args = append([]string{"-u", "root"}, args...)
	}
	const attempts = 3
	for attempt := 1; ; attempt++ {
		port := FreePort(t)
		addr := loopback(port)
		cmdArgs := append(slices.Clone(args), addr, "256")
		proc, err := startProcess(exec.Command(bin, cmdArgs...))
		if err != nil {
			t.Fatalf("testpeers: start smtp-sink: %v", err)
		}
		// Waiting by connecting would count as a session for -c, -n and -M,
		// so watch the kernel's socket table instead.
		err = waitForListeningPort(proc.exited, port)
		if err == nil {
			s := &SMTPSink{Addr: addr, proc: proc}
			t.Cleanup(func() {
				proc.stop()
				if t.Failed() {
					t.Logf("smtp-sink %s output:\n%s", strings.Join(cmdArgs, " "), proc.output.String())
				}
			})
			return s
		}
		proc.stop()
		out := proc.output.String()
		if attempt < attempts && strings.Contains(out, "in use") {
			continue
		}
		t.Fatalf("testpeers: smtp-sink %s did not start: %v\n%s", strings.Join(cmdArgs, " "), err, out)
	}
}

// Output returns what smtp-sink printed so far (counters with -c,
// conversations with -v, errors).
func (s *SMTPSink) Output() string { return s.proc.output.String() }

// Done is closed when smtp-sink exits, for example after -M or -n counts.
func (s *SMTPSink) Done() <-chan struct{} { return s.proc.exited }

// SMTPSourcePath returns the path of Postfix's smtp-source, the SMTP load
// generator that is the reference client for submission benchmarks.
func SMTPSourcePath(t testing.TB) string {
	t.Helper()
	return Binary(t, "smtp-source", "postfix")
}

// waitForListeningPort polls /proc/net/tcp until a socket listens on port.
// Where that table is unavailable it falls back to connecting.
func waitForListeningPort(exited <-chan struct{}, port int) error {
	if _, err := os.Stat("/proc/net/tcp"); err != nil {
		return waitForListeners(exited, loopback(port))
	}
	deadline := time.Now().Add(startTimeout)
	for {
		listening, err := portListening("/proc/net/tcp", port)
		if err != nil {
			return err
		}
		if listening {
			return nil
		}
		select {
		case <-exited:
			return fmt.Errorf("process exited before port %d was listening", port)
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("port %d not listening within %s", port, startTimeout)
		}
	}
}

func portListening(path string, port int) (bool, error) {
	f, err := os.Open(path)
	if err != nil {
		return false, fmt.Errorf("socket table: %w", err)
	}
	defer f.Close()
	return listeningIn(f, port)
}

// listeningIn reports whether a Linux socket table (the format of
// /proc/net/tcp) has a socket in state LISTEN (0A) on port. Lines look like
// "0: 0100007F:1F90 00000000:0000 0A ...".
func listeningIn(table io.Reader, port int) (bool, error) {
	want := fmt.Sprintf(":%04X", port)
	sc := bufio.NewScanner(table)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 4 || fields[3] != "0A" {
			continue
		}
		if strings.HasSuffix(fields[1], want) {
			return true, nil
		}
	}
	if err := sc.Err(); err != nil {
		return false, fmt.Errorf("socket table: %w", err)
	}
	return false, nil
}
