package outqueue_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/emersion/go-smtp"

	"postfach/internal/api"
	"postfach/internal/core"
	"postfach/internal/httpx"
	"postfach/internal/mailout"
	"postfach/internal/outqueue"
	"postfach/internal/store"
	"postfach/internal/testpeers"
)

// TestSendFigure measures end to end: HTTP POST /api/v1/messages (stored and queued before
// the 202) until every message is delivered into smtp-sink by the queue, against
// smtp-source → smtp-sink with the same sizes in the same run. It runs only when
// POSTFACH_BENCH_OUTBOUND is set (bench/outbound.sh). POSTFACH_BENCH_CONFIGS lists
// size/messages/failpercent triples.
func TestSendFigure(t *testing.T) {
	if os.Getenv("POSTFACH_BENCH_OUTBOUND") == "" {
		t.Skip("benchmark: run bench/outbound.sh")
	}
	configs := os.Getenv("POSTFACH_BENCH_CONFIGS")
	if configs == "" {
		configs = "1024/5000/0 51200/2000/0 1024/5000/10"
	}
	const sessions = 8
	source := testpeers.SMTPSourcePath(t)
	for _, c := range strings.Fields(configs) {
		var size, messages, failPct int
		if _, err := fmt.Sscanf(c, "%d/%d/%d", &size, &messages, &failPct); err != nil {
			t.Fatalf("config %q: %v", c, err)
		}
		sink := testpeers.StartSMTPSink(t)
		start := time.Now()
		out, err := exec.Command(source, "-s", strconv.Itoa(sessions), "-m", strconv.Itoa(messages), "-l", strconv.Itoa(size),
			"-f", "load@client.test", "-t", "x@sink.test", sink.Addr).CombinedOutput()
		if err != nil {
			t.Fatalf("smtp-source: %v\n%s", err, out)
		}
		sourceRate := float64(messages) / time.Since(start).Seconds()

		addr := sink.Addr
		if failPct > 0 {
			addr = failingPeer(t, 100/failPct)
		}
		rate, attempts := runEndToEnd(t, addr, size, messages)
		fmt.Printf("outbound figure (%s): %d B x %d, %d%% transient failures: API→peer %.0f msg/s (%d attempts), smtp-source→smtp-sink %.0f msg/s, ratio %.0f%%\n",
			dialectName(), size, messages, failPct, rate, attempts, sourceRate, 100*rate/sourceRate)
	}
}

func dialectName() string {
	if os.Getenv("POSTFACH_TEST_POSTGRES") != "" {
		return "postgres"
	}
	return "sqlite"
}

func runEndToEnd(t *testing.T, sinkAddr string, size, messages int) (rate float64, attempts int) {
	f := newFixture(t)
	f.db.SetClock(time.Now)
	f.svc.Now = time.Now
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	tokenAdmin := f.admin
	tokenAdmin.Kind = core.ActorAdmin
	tok, err := f.svc.CreateAPIToken(ctx, tokenAdmin, "bench")
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	api.New(f.svc, discardLog()).Register(mux)
	srv := httptest.NewServer((&httpx.Auth{Core: f.svc, Log: discardLog()}).Middleware(mux))
	defer srv.Close()

	host, port := testpeers.HostPort(t, sinkAddr)
	s := mailout.Schedule{Steps: []time.Duration{100 * time.Millisecond}, Max: time.Second, Factor: 2, GiveUpAfter: time.Hour}
	q := f.queue(mailout.Route{Host: host, Port: port, Security: mailout.SecurityNone}, func(c *outqueue.Config) {
		c.Schedule = &s
		c.Poll = 20 * time.Millisecond
	})
	f.svc.SetIntake(q) // as the server wires it
	body := strings.Repeat("Lorem ipsum dolor sit amet, consectetur adipiscing elit. ", size/50+1)[:max(size-400, 10)]
	// Quoted once: smtp-source does not build its messages per send either, and quoting 50 KB
	// per request cost the load client a tenth of the machine's CPU.
	quotedBody, _ := json.Marshal(body)
	start := time.Now()
	var wg sync.WaitGroup
	wg.Go(func() { q.Run(ctx) })
	var next atomic.Int64
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 32}}
	var posted sync.WaitGroup
	for range benchClients() {
		posted.Go(func() {
			for {
				i := next.Add(1)
				if i > int64(messages) {
					return
				}
				in := fmt.Sprintf(`{"user_id":%d,"sender":"system","to":[{"address":"kunde%d@example.org"}],"subject":"Bench %d","text":%s}`,
					f.user.UserID, i, i, quotedBody)
				req, _ := http.NewRequest("POST", srv.URL+"/api/v1/messages", strings.NewReader(in))
				req.Header.Set("Authorization", "Bearer "+tok.Token)
				req.Header.Set("Idempotency-Key", "bench-"+strconv.FormatInt(i, 10))
				resp, err := client.Do(req)
				if err != nil {
					t.Error(err)
					return
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != http.StatusAccepted {
					t.Errorf("POST: %d", resp.StatusCode)
					return
				}
			}
		})
	}
	posted.Wait()
	enqueued := time.Since(start)
	for {
		counts, err := f.db.Read().OutboundStateCounts(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if counts[store.QueueSent] == messages {
			break
		}
		if time.Since(start) > 5*time.Minute {
			t.Fatalf("not drained: %v", counts)
		}
		time.Sleep(5 * time.Millisecond)
	}
	elapsed := time.Since(start)
	cancel()
	wg.Wait()
	if err := f.db.SQL().QueryRow(`SELECT COALESCE(SUM(attempts), 0) FROM outbound_queue`).Scan(&attempts); err != nil {
		t.Fatal(err)
	}
	fmt.Printf("  all %d accepted (202) after %s: %.0f msg/s enqueued while delivering\n", messages, enqueued.Round(time.Millisecond), float64(messages)/enqueued.Seconds())
	return float64(messages) / elapsed.Seconds(), attempts
}

// failingPeer is an in-process go-smtp server that answers 451 to every n-th message and
// accepts the rest (smtp-sink cannot fail a share of messages).
func failingPeer(t *testing.T, every int) string {
	var count atomic.Int64
	ts := startServer(t, plain, nil, func(s *smtpServer) {
		s.onData = func(int, received) error {
			if count.Add(1)%int64(every) == 0 {
				return &smtp.SMTPError{Code: 451, EnhancedCode: smtp.EnhancedCode{4, 3, 0}, Message: "try again"}
			}
			return nil
		}
	})
	return fmt.Sprintf("%s:%d", ts.host, ts.port)
}

func benchClients() int {
	if n, err := strconv.Atoi(os.Getenv("POSTFACH_BENCH_CLIENTS")); err == nil && n > 0 {
		return n
	}
	return 16
}
