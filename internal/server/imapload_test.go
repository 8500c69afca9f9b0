package server

import (
	"bufio"
	"crypto/tls"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"postfach/internal/testpeers"
)

// imapLoad drives one IMAP server with clients that each speak raw IMAP over TLS in a loop
// (APPEND, NOOP, SELECT, FETCH flags and headers, UID SEARCH, STORE) for a duration and
// counts tagged completions. The same script runs against Dovecot in the same run.
type loadResult struct {
	commands, appends int64
	elapsed           time.Duration
}

func imapLoad(t *testing.T, addr string, tlsConf *tls.Config, user, pass string, clients int, d time.Duration) loadResult {
	t.Helper()
	var cmds, appends atomic.Int64
	var wg sync.WaitGroup
	start := time.Now()
	deadline := start.Add(d)
	errs := make(chan error, clients)
	for c := 0; c < clients; c++ {
		wg.Add(1)
		go func(c int) {
			defer wg.Done()
			conn, err := tls.Dial("tcp", addr, tlsConf)
			if err != nil {
				errs <- err
				return
			}
			defer conn.Close()
			r := bufio.NewReader(conn)
			if _, err := r.ReadString('\n'); err != nil {
				errs <- err
				return
			}
			n := 0
			do := func(cmd string, literal []byte) error {
				n++
				tag := fmt.Sprintf("a%d", n)
				if literal != nil {
					if _, err := fmt.Fprintf(conn, "%s %s {%d+}\r\n", tag, cmd, len(literal)); err != nil {
						return err
					}
					if _, err := conn.Write(append(literal, '\r', '\n')); err != nil {
						return err
					}
				} else if _, err := fmt.Fprintf(conn, "%s %s\r\n", tag, cmd); err != nil {
					return err
				}
				for {
					line, err := r.ReadString('\n')
					if err != nil {
						return err
					}
					// Skip literal payloads in responses.
					if i := strings.LastIndex(line, "{"); i >= 0 && strings.HasSuffix(line, "}\r\n") {
						var size int
						fmt.Sscanf(line[i:], "{%d}", &size)
						buf := make([]byte, size)
						if _, err := io.ReadFull(r, buf); err != nil {
							return err
						}
						continue
					}
					if strings.HasPrefix(line, tag+" ") {
						if !strings.HasPrefix(line, tag+" OK") {
							return fmt.Errorf("%s: %s", cmd, strings.TrimSpace(line))
						}
						cmds.Add(1)
						return nil
					}
				}
			}
			if err := do(fmt.Sprintf("LOGIN %q %q", user, pass), nil); err != nil {
				errs <- err
				return
			}
			msg := []byte(fmt.Sprintf("From: load@example.org\r\nTo: %s\r\nSubject: load %d\r\nMessage-ID: <load-%d-%%d@example.org>\r\n\r\nbody\r\n", user, c, c))
			for i := 0; time.Now().Before(deadline); i++ {
				m := []byte(strings.Replace(string(msg), "%d", fmt.Sprint(i), 1))
				steps := []struct {
					cmd string
					lit []byte
				}{
					{"APPEND INBOX", m}, {"SELECT INBOX", nil}, {"NOOP", nil},
					{"FETCH 1:* (FLAGS)", nil}, {"UID SEARCH UNSEEN", nil},
					{"FETCH * (UID BODY.PEEK[HEADER.FIELDS (SUBJECT FROM)])", nil},
					{"STORE * +FLAGS (\\Seen)", nil},
				}
				for _, s := range steps {
					if err := do(s.cmd, s.lit); err != nil {
						errs <- err
						return
					}
					if s.lit != nil {
						appends.Add(1)
					}
				}
			}
			_ = do("LOGOUT", nil)
		}(c)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil && !strings.Contains(err.Error(), "LOGOUT") {
			t.Fatalf("load client: %v", err)
		}
	}
	return loadResult{commands: cmds.Load(), appends: appends.Load(), elapsed: time.Since(start)}
}

// TestIMAPLoadAgainstDovecot is the figure in docs/benchmarks/imap.md; it runs only with
// POSTFACH_BENCH_IMAP=1 because it takes half a minute.
func TestIMAPLoadAgainstDovecot(t *testing.T) {
	if os.Getenv("POSTFACH_BENCH_IMAP") == "" {
		t.Skip("set POSTFACH_BENCH_IMAP=1 to run the IMAP load figure")
	}
	const clients = 10
	d := 10 * time.Second
	f := startMail(t)
	ours := imapLoad(t, f.addrs.IMAPTLS, &tls.Config{InsecureSkipVerify: true}, f.box.Address, f.password, clients, d)
	dv := testpeers.StartDovecot(t, map[string]string{"load@example.org": "load-pass"})
	theirs := imapLoad(t, dv.IMAPSAddr, &tls.Config{InsecureSkipVerify: true}, "load@example.org", "load-pass", clients, d)
	rate := func(n int64, e time.Duration) float64 { return float64(n) / e.Seconds() }
	t.Logf("postfach: %.0f commands/s, %.0f APPEND/s (%d clients, %s)", rate(ours.commands, ours.elapsed), rate(ours.appends, ours.elapsed), clients, d)
	t.Logf("dovecot:  %.0f commands/s, %.0f APPEND/s", rate(theirs.commands, theirs.elapsed), rate(theirs.appends, theirs.elapsed))
	t.Logf("ratio postfach/dovecot: %.2f commands, %.2f APPEND", rate(ours.commands, ours.elapsed)/rate(theirs.commands, theirs.elapsed),
		rate(ours.appends, ours.elapsed)/rate(theirs.appends, theirs.elapsed))
}
