package webhooks

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"net/http"
	"strconv"
	"sync"
	"time"

	"postfach/internal/netguard"
	"postfach/internal/secrets"
	"postfach/internal/store"
)

// DefaultBackoff is the wait after the 1st, 2nd, … failed attempt; the last value repeats
// until MaxAttempts. With the default 12 attempts a receiver may be down about 28 hours.
func DefaultBackoff() []time.Duration {
	return []time.Duration{
		10 * time.Second, 30 * time.Second, time.Minute, 5 * time.Minute, 15 * time.Minute, 30 * time.Minute,
		time.Hour, 2 * time.Hour, 4 * time.Hour, 8 * time.Hour, 12 * time.Hour,
	}
}

// Worker delivers due events. Any number of workers, in one process or on several
// instances sharing one database, may run at once: a row is claimed with a lease, and
// only the lease holder records the outcome.
type Worker struct {
	DB      *store.DB
	Secrets *secrets.Box
	// Policy is what endpoints may resolve to: the operator's allowed private ranges
	// (core.Service.ConnTest.Policy). The zero value allows only public addresses.
	Policy netguard.Policy
	Log    *slog.Logger
	Now    func() time.Time // nil: time.Now

	Owner       string          // lease holder name; empty: random per worker
	Backoff     []time.Duration // nil: DefaultBackoff
	MaxAttempts int             // 0: 12
	Timeout     time.Duration   // one HTTP request, connect included; 0: 15 s
	Lease       time.Duration   // how long a claim is held; 0: Timeout + 30 s
	Poll        time.Duration   // wait when nothing is due; 0: 1 s
	Batch       int             // rows claimed at once; 0: 16

	once   sync.Once
	client *http.Client
}

func (w *Worker) init() {
	w.once.Do(func() {
		if w.Log == nil {
			w.Log = slog.Default()
		}
		if w.Now == nil {
			w.Now = time.Now
		}
		if w.Owner == "" {
			var b [6]byte
			_, _ = rand.Read(b[:])
			w.Owner = "worker-" + hex.EncodeToString(b[:])
		}
		if len(w.Backoff) == 0 {
			w.Backoff = DefaultBackoff()
		}
		if w.MaxAttempts <= 0 {
			w.MaxAttempts = 12
		}
		if w.Timeout <= 0 {
			w.Timeout = 15 * time.Second
		}
		if w.Lease <= 0 {
			w.Lease = w.Timeout + 30*time.Second
		}
		if w.Poll <= 0 {
			w.Poll = time.Second
		}
		if w.Batch <= 0 {
			w.Batch = 16
		}
		dialer := &netguard.Dialer{Policy: w.Policy, Timeout: w.Timeout}
		w.client = &http.Client{
			Timeout: w.Timeout,
			Transport: &http.Transport{
				Proxy:               nil, // never an environment proxy: the guard must see the real peer
				DialContext:         dialer.DialContext,
				TLSHandshakeTimeout: w.Timeout,
				MaxIdleConnsPerHost: 4,
				IdleConnTimeout:     90 * time.Second,
			},
			// A redirect is a failure: following it would send the signed event somewhere
			// the tenant did not register.
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		}
	})
}

// Run delivers until ctx ends.
func (w *Worker) Run(ctx context.Context) {
	w.init()
	for {
		n, err := w.RunOnce(ctx)
		if err != nil && ctx.Err() == nil {
			w.Log.Error("webhooks: run", "err", err)
		}
		if n > 0 && err == nil {
			continue
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(w.Poll):
		}
	}
}

// claimed is a delivery row this worker holds the lease of.
type claimed struct {
	id, tenantID, endpointID int64
	eventID, event, body     string
	attempt                  int
}

// RunOnce claims the due deliveries (up to Batch), sends them concurrently and records the
// outcomes. It returns how many it claimed.
func (w *Worker) RunOnce(ctx context.Context) (int, error) {
	w.init()
	rows, err := w.claim(ctx)
	if err != nil {
		return 0, err
	}
	var wg sync.WaitGroup
	for _, c := range rows {
		wg.Add(1)
		go func() {
			defer wg.Done()
			w.deliver(ctx, c)
		}()
	}
	wg.Wait()
	return len(rows), nil
}

// claim takes due rows whose lease is free, counts the attempt and writes the lease before
// anything is sent: a crash mid-request leaves a row that is retried once the lease ends.
func (w *Worker) claim(ctx context.Context) ([]claimed, error) {
	now := w.Now().UnixMilli()
	lock := ""
	if w.DB.Dialect() == store.Postgres {
		lock = " FOR UPDATE SKIP LOCKED"
	}
	var out []claimed
	err := w.DB.InTx(ctx, func(tx *store.Tx) error {
		out = out[:0]
		rows, err := tx.Query(ctx, `UPDATE webhook_deliveries SET lease_owner = ?, lease_until = ?, attempts = attempts + 1
			WHERE id IN (SELECT id FROM webhook_deliveries WHERE state = 'pending' AND next_attempt_at <= ? AND lease_until <= ?
				ORDER BY next_attempt_at, id LIMIT `+strconv.Itoa(w.Batch)+lock+`)
			RETURNING id, tenant_id, endpoint_id, event_id, event, body, attempts`,
			w.Owner, now+w.Lease.Milliseconds(), now, now)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var c claimed
			if err := rows.Scan(&c.id, &c.tenantID, &c.endpointID, &c.eventID, &c.event, &c.body, &c.attempt); err != nil {
				return err
			}
			out = append(out, c)
		}
		return rows.Err()
	})
	if err != nil {
		return nil, fmt.Errorf("webhooks: claim: %w", err)
	}
	return out, nil
}

// deliver sends one claimed row and records the outcome.
func (w *Worker) deliver(ctx context.Context, c claimed) {
	status, err := w.send(ctx, c)
	if ctx.Err() != nil {
		return // shutting down: the lease runs out and another attempt follows
	}
	if err := w.finish(context.WithoutCancel(ctx), c, status, err); err != nil {
		w.Log.Error("webhooks: record outcome", "delivery", c.id, "err", err)
	}
}

// errEndpointGone ends a delivery whose endpoint was switched off.
var errEndpointGone = errors.New("endpoint deactivated")

func (w *Worker) send(ctx context.Context, c claimed) (int, error) {
	var ep Endpoint
	err := w.DB.InTx(ctx, func(tx *store.Tx) error {
		var err error
		ep, err = GetEndpoint(ctx, tx, c.tenantID, c.endpointID)
		return err
	})
	if err != nil {
		return 0, err
	}
	if !ep.Active {
		return 0, errEndpointGone
	}
	secret, err := w.Secrets.OpenString(SecretContext(c.tenantID), ep.SecretSealed)
	if err != nil {
		return 0, fmt.Errorf("open secret: %w", err)
	}
	body := []byte(c.body)
	ts := w.Now().Unix()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, ep.URL, bytes.NewReader(body))
	if err != nil {
		return 0, fmt.Errorf("request: %w", err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "Postfach-Webhooks/1")
	req.Header.Set(HeaderEvent, c.event)
	req.Header.Set(HeaderEventID, c.eventID)
	req.Header.Set(HeaderAttempt, strconv.Itoa(c.attempt))
	req.Header.Set(HeaderTimestamp, strconv.FormatInt(ts, 10))
	req.Header.Set(HeaderSignature, Sign(secret, ts, body))
	resp, err := w.client.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return resp.StatusCode, fmt.Errorf("HTTP %d", resp.StatusCode)
	}
	return resp.StatusCode, nil
}

// finish records success, the next attempt (with backoff and jitter) or the final failure.
// Only the lease holder may: a worker whose lease ran out must not overwrite a newer try.
func (w *Worker) finish(ctx context.Context, c claimed, status int, sendErr error) error {
	now := w.Now().UnixMilli()
	return w.DB.InTx(ctx, func(tx *store.Tx) error {
		var err error
		switch {
		case sendErr == nil:
			_, err = tx.Exec(ctx, `UPDATE webhook_deliveries SET state = ?, last_status = ?, last_error = '', finished_at = ?, lease_owner = '', lease_until = 0
				WHERE id = ? AND lease_owner = ?`, StateDelivered, status, now, c.id, w.Owner)
		case c.attempt >= w.MaxAttempts || errors.Is(sendErr, errEndpointGone) || errors.Is(sendErr, store.ErrNotFound):
			w.Log.Warn("webhooks: giving up", "delivery", c.id, "event", c.eventID, "attempts", c.attempt, "err", sendErr)
			_, err = tx.Exec(ctx, `UPDATE webhook_deliveries SET state = ?, last_status = ?, last_error = ?, finished_at = ?, lease_owner = '', lease_until = 0
				WHERE id = ? AND lease_owner = ?`, StateFailed, status, errText(sendErr), now, c.id, w.Owner)
		default:
			next := now + w.backoff(c.attempt).Milliseconds()
			_, err = tx.Exec(ctx, `UPDATE webhook_deliveries SET last_status = ?, last_error = ?, next_attempt_at = ?, lease_owner = '', lease_until = 0
				WHERE id = ? AND lease_owner = ?`, status, errText(sendErr), next, c.id, w.Owner)
		}
		return err
	})
}

// backoff is the wait after failed attempt n (1-based), with up to 10 % jitter so that
// many events that failed together do not retry together.
func (w *Worker) backoff(n int) time.Duration {
	i := min(max(n-1, 0), len(w.Backoff)-1)
	d := w.Backoff[i]
	if span := int64(d / 10); span > 0 {
		j, err := rand.Int(rand.Reader, big.NewInt(span))
		if err == nil {
			d += time.Duration(j.Int64())
		}
	}
	return d
}

func errText(err error) string {
	if err == nil {
		return ""
	}
	s := err.Error()
	if len(s) > 500 {
		s = s[:500]
	}
	return s
}
