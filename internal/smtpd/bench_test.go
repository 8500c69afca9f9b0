package smtpd

import (
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"postfach/internal/store"
	"postfach/internal/testpeers"
)

// TestIngestFigure measures durable inbound ingest against Postfix's smtp-sink, with
// smtp-source as the load tool for both, in the same run. It runs only when
// POSTFACH_BENCH_INBOUND is set (bench/inbound.sh sets it and adds the fsync count).
// POSTFACH_BENCH_CONFIGS lists size/sessions/messages triples, e.g. "1024/20/5000".
func TestIngestFigure(t *testing.T) {
	if os.Getenv("POSTFACH_BENCH_INBOUND") == "" {
		t.Skip("benchmark: run bench/inbound.sh")
	}
	configs := os.Getenv("POSTFACH_BENCH_CONFIGS")
	if configs == "" {
		configs = "1024/1/2000 1024/20/5000 51200/1/1000 51200/20/3000"
	}
	source := testpeers.SMTPSourcePath(t)
	run := func(addr, rcpt string, size, sessions, messages int) time.Duration {
		t.Helper()
		start := time.Now()
		out, err := exec.Command(source, "-s", strconv.Itoa(sessions), "-m", strconv.Itoa(messages), "-l", strconv.Itoa(size),
			"-f", "load@client.test", "-t", rcpt, addr).CombinedOutput()
		if err != nil {
			t.Fatalf("smtp-source: %v\n%s", err, out)
		}
		return time.Since(start)
	}
	for _, c := range strings.Fields(configs) {
		var size, sessions, messages int
		if _, err := fmt.Sscanf(c, "%d/%d/%d", &size, &sessions, &messages); err != nil {
			t.Fatalf("config %q: %v", c, err)
		}
		sink := testpeers.StartSMTPSink(t)
		sinkTime := run(sink.Addr, "x@sink.test", size, sessions, messages)

		linger, _ := time.ParseDuration(os.Getenv("POSTFACH_BENCH_LINGER"))
		e := startEnv(t, Config{Linger: linger})
		pfTime := run(e.addr, store.InboundAddress(e.account.ID, inboundDomain), size, sessions, messages)
		if n := e.count(); n != messages {
			t.Fatalf("%s: stored %d of %d", c, n, messages)
		}
		st := e.srv.Stats()
		sinkRate := float64(messages) / sinkTime.Seconds()
		pfRate := float64(messages) / pfTime.Seconds()
		fmt.Printf("ingest db=%s size=%d sessions=%d messages=%d smtp-sink=%.0f/s postfach=%.0f/s ratio=%.2f transactions=%d msgs/tx=%.1f\n",
			e.db.Dialect(), size, sessions, messages, sinkRate, pfRate, pfRate/sinkRate, st.Transactions, float64(st.Deliveries)/float64(st.Transactions))
	}
}
