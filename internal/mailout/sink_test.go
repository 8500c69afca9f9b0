package mailout

import (
	"context"
	"fmt"
	"net"
	"os/exec"
	"strconv"
	"sync"
	"testing"

	"postfach/internal/testpeers"
)

// sinkRoute is the plain route to a running smtp-sink.
func sinkRoute(t testing.TB, sink *testpeers.SMTPSink) Route {
	host, port, err := net.SplitHostPort(sink.Addr)
	if err != nil {
		t.Fatal(err)
	}
	p, _ := strconv.Atoi(port)
	return Route{Host: host, Port: p, Security: SecurityNone, HeloName: "client.test"}
}

// TestDeliverPostfixSink runs the classification against Postfix's
// smtp-sink: acceptance, soft (-r) and hard (-f) rejections, and a
// connection dropped after the final dot (-q).
func TestDeliverPostfixSink(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		args      []string
		delivered bool
		temporary bool
		maybe     bool
		code      int
	}{
		{"accept", nil, true, false, false, 250},
		{"rcpt 4xx", []string{"-r", "RCPT"}, false, true, false, 450},
		{"rcpt 5xx", []string{"-f", "RCPT"}, false, false, false, 500},
		{"mail 4xx", []string{"-r", "MAIL"}, false, true, false, 450},
		{"data 5xx", []string{"-f", "."}, false, false, false, 500},
		{"dropped after dot", []string{"-q", "."}, false, true, true, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			sink := testpeers.StartSMTPSink(t, tc.args...)
			d := &Deliverer{}
			a, _ := d.Deliver(context.Background(), sinkRoute(t, sink), Envelope{From: "p14.out@example.org", To: []string{"bob@example.net"}}, testMessage(2000))
			if a == nil {
				t.Fatal("no attempt")
			}
			r := a.Results[0]
			if r.Delivered() != tc.delivered || r.Code != tc.code || (!r.Delivered() && r.Temporary != tc.temporary) || r.MaybeDelivered != tc.maybe {
				t.Errorf("result %+v, want delivered=%v code=%d temporary=%v maybe=%v", r, tc.delivered, tc.code, tc.temporary, tc.maybe)
			}
		})
	}
}

// BenchmarkDeliverSink measures raw delivery into smtp-sink, next to
// Postfix's own smtp-source doing the same in the same run:
//
//	postfach-session: one Session per worker, messages in turn (RSET-free reuse)
//	source-reuse:     smtp-source -d (same connection for the next message)
//	postfach-deliver: Deliverer.Deliver, a new connection per message
//	source-connect:   smtp-source without -d
func BenchmarkDeliverSink(b *testing.B) {
	for _, size := range []int{1 << 10, 50 << 10} {
		for _, sessions := range []int{1, 20} {
			prefix := fmt.Sprintf("size=%dKB/sessions=%d", size>>10, sessions)
			b.Run(prefix+"/postfach-session", func(b *testing.B) { benchPostfach(b, size, sessions, true) })
			b.Run(prefix+"/source-reuse", func(b *testing.B) { benchSource(b, size, sessions, true) })
			b.Run(prefix+"/postfach-deliver", func(b *testing.B) { benchPostfach(b, size, sessions, false) })
			b.Run(prefix+"/source-connect", func(b *testing.B) { benchSource(b, size, sessions, false) })
		}
	}
}

func benchPostfach(b *testing.B, size, sessions int, reuse bool) {
	sink := testpeers.StartSMTPSink(b)
	route := sinkRoute(b, sink)
	msg := testMessage(size)
	env := Envelope{From: "p14.out@example.org", To: []string{"bob@example.net"}}
	d := &Deliverer{}
	ctx := context.Background()
	b.SetBytes(int64(len(msg)))
	b.ResetTimer()
	var wg sync.WaitGroup
	var mu sync.Mutex
	var firstErr error
	fail := func(err error) {
		mu.Lock()
		if firstErr == nil {
			firstErr = err
		}
		mu.Unlock()
	}
	for w := range sessions {
		n := b.N / sessions
		if w < b.N%sessions {
			n++
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			if !reuse {
				for range n {
					if a, err := d.Deliver(ctx, route, env, msg); err != nil || a.Failed() {
						fail(fmt.Errorf("deliver: %v", err))
						return
					}
				}
				return
			}
			if n == 0 {
				return
			}
			s, err := d.Open(ctx, route)
			if err != nil {
				fail(err)
				return
			}
			defer s.Close()
			for range n {
				if a, err := s.Send(ctx, env, msg); err != nil || a.Failed() {
					fail(fmt.Errorf("send: %v", err))
					return
				}
			}
		}()
	}
	wg.Wait()
	b.StopTimer()
	if firstErr != nil {
		b.Fatal(firstErr)
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
}

func benchSource(b *testing.B, size, sessions int, reuse bool) {
	source := testpeers.SMTPSourcePath(b)
	sink := testpeers.StartSMTPSink(b)
	args := []string{"-s", strconv.Itoa(sessions), "-m", strconv.Itoa(b.N), "-l", strconv.Itoa(size),
		"-M", "client.test", "-f", "p14.out@example.org", "-t", "bob@example.net"}
	if reuse {
		args = append(args, "-d")
	}
	args = append(args, sink.Addr)
	b.SetBytes(int64(size))
	b.ResetTimer()
	out, err := exec.Command(source, args...).CombinedOutput()
	b.StopTimer()
	if err != nil {
		b.Fatalf("smtp-source: %v\n%s", err, out)
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
}
