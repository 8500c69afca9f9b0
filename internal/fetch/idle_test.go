package fetch

import (
	"context"
	"testing"
	"time"
)

// TestIdlePush: with polling set to an hour, new mail still arrives at once, because the
// fetcher waits in IMAP IDLE (X6); "fetch now" reaches a source that is idling.
func TestIdlePush(t *testing.T) {
	t.Parallel()
	dv, fx, id := dovecotAccount(t, "iris", "starttls", true)
	dv.Append(t, "iris", "INBOX", message(1, "idle"))
	f := fx.f
	f.NoIdle, f.PollInterval, f.Tick, f.Lease = false, time.Hour, 20*time.Millisecond, 3*time.Second
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); f.Run(ctx) }()
	defer func() { cancel(); <-done }()

	waitStored := func(n int) {
		t.Helper()
		deadline := time.Now().Add(20 * time.Second)
		for len(storedHashes(t, fx.db, id)) < n {
			if time.Now().After(deadline) {
				t.Fatalf("only %d of %d messages arrived", len(storedHashes(t, fx.db, id)), n)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	waitStored(1)
	dv.Append(t, "iris", "INBOX", message(2, "idle"))
	waitStored(2)
	dv.Append(t, "iris", "INBOX", message(3, "idle"))
	waitStored(3)
	src, err := fx.db.Read().FetchSource(context.Background(), id)
	if err != nil || src.LeaseHolder != f.Holder {
		t.Fatalf("source while idling: %+v, %v", src, err)
	}
	if n := serverCount(t, dv, "iris", "INBOX"); n != 0 {
		t.Fatalf("%d messages left on the server with delete-on-server", n)
	}
}
