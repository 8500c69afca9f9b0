// Package outqueue owns the delivery side of the durable outbound queue (X2): workers that
// claim due rows from the database, ask the policy engine again (a grant removed while a
// message waited stops it), deliver through the mailbox's own SMTP server or the system
// transport, and record every attempt with the server's answers.
//
// On-database rules: a claim leases rows (lease_owner, lease_until) and, in the same
// transaction, writes "attempt N started, next attempt at T" before anything is dialled, so a
// crash during delivery leaves a plan behind. A send of this process may write its row
// already claimed that way and hand it to the workers in memory (intake.go). A lease that
// runs out (its instance died) makes the row claimable again; the retry carries the same
// bytes and the same Message-ID, so a message that was in flight at the crash can arrive
// twice but is recognisable, and no message is lost. Outcomes are written only while the
// lease is still ours. 4xx answers and network trouble are retried on the mailout.Schedule;
// 5xx answers and giving up are final and queue a delivery status notification (RFC 3464)
// to the sender through the same queue with an empty envelope sender.
package outqueue

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"postfach/internal/core"
	"postfach/internal/mailout"
	"postfach/internal/policy"
	"postfach/internal/store"
)

// Config tunes the queue. The zero value of each field takes the default noted.
type Config struct {
	// Owner names this instance in leases; default a random id per process.
	Owner string
	// Workers deliver in parallel, each with its own SMTP session; default 8.
	Workers int
	// Batch is how many rows a worker claims at once; default 20.
	Batch int
	// Lease is how long a claim is held without renewal; renewed every Lease/3 while a
	// worker delivers. Default 2m.
	Lease time.Duration
	// Poll is how often idle workers look for due rows; default 250ms.
	Poll time.Duration
	// Schedule decides retries and when to give up; default mailout.DefaultSchedule().
	Schedule *mailout.Schedule
	// Smarthost is the system transport's relay; nil delivers directly to the recipients'
	// MX hosts with opportunistic TLS.
	Smarthost *mailout.Route
	// System carries the system transport (a plain dialer: the operator's smarthost or MX
	// hosts). Mailboxes carries mail through the mailboxes' own servers, which users
	// configure: give it the dialer that refuses private addresses.
	System    *mailout.Deliverer
	Mailboxes *mailout.Deliverer
	// Hostname is the reporting MTA in bounces; bounces come from MAILER-DAEMON@Hostname.
	Hostname string
	// SentCopy appends a delivered message to the mailbox's Sent folder (C9); nil disables it.
	SentCopy SentCopier
	// Event records a webhook event ("message.sent", "message.bounced") inside the
	// transaction that records the outcome; nil records none.
	Event func(ctx context.Context, tx *store.Tx, tenantID int64, event string, payload any) error
	Log   *slog.Logger
}

// SentCopier files a copy of a sent message on the mailbox's own IMAP server.
type SentCopier interface {
	CopyToSent(ctx context.Context, m store.Mailbox, raw []byte) (done bool, err error)
}

// Queue runs the delivery workers.
type Queue struct {
	db   *store.DB
	core *core.Service
	cfg  Config
	wake chan struct{}
	// signers caches the DKIM key per tenant and From: domain across batches.
	signers signerCache
	// handed takes rows from sends of this process (core.Intake, intake.go).
	handed intake
	// outcomes writes every worker's outcomes.
	outcomes outcomeWriter
	// lastClaim is when a worker last claimed rows from the database (Unix milliseconds).
	lastClaim atomic.Int64
}

// New prepares a queue over db; svc supplies the policy engine and opens SMTP passwords.
func New(db *store.DB, svc *core.Service, cfg Config) *Queue {
	if cfg.Owner == "" {
		var b [6]byte
		_, _ = rand.Read(b[:])
		cfg.Owner = "q-" + hex.EncodeToString(b[:])
	}
	if cfg.Workers <= 0 {
		cfg.Workers = 8
	}
	if cfg.Batch <= 0 {
		cfg.Batch = 20
	}
	if cfg.Lease <= 0 {
		cfg.Lease = 2 * time.Minute
	}
	if cfg.Poll <= 0 {
		cfg.Poll = 250 * time.Millisecond
	}
	if cfg.Schedule == nil {
		s := mailout.DefaultSchedule()
		cfg.Schedule = &s
	}
	if cfg.System == nil {
		cfg.System = &mailout.Deliverer{HeloName: cfg.Hostname}
	}
	if cfg.Mailboxes == nil {
		cfg.Mailboxes = cfg.System
	}
	if cfg.Hostname == "" {
		cfg.Hostname = "localhost"
	}
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	q := &Queue{db: db, core: svc, cfg: cfg, wake: make(chan struct{}, 1)}
	q.handed.init(cfg.Workers * cfg.Batch)
	q.outcomes.q = q
	return q
}

// Owner is the lease owner name of this instance.
func (q *Queue) Owner() string { return q.cfg.Owner }

// Wake makes an idle worker look for due rows now (after an enqueue in this process).
func (q *Queue) Wake() {
	select {
	case q.wake <- struct{}{}:
	default:
	}
}

// Run delivers until ctx ends, then waits for the workers' batches in flight. While it
// runs, sends of this process may hand their rows to it (core.Service.SetIntake).
func (q *Queue) Run(ctx context.Context) {
	q.handed.open()
	var wg sync.WaitGroup
	for range q.cfg.Workers {
		wg.Go(func() { q.worker(ctx) })
	}
	wg.Wait()
	// Rows handed over but not reached: recorded like a claimed batch's rest at shutdown
	// (deferred to their retry time), so a restart does not wait for their leases.
	if left := q.handed.close(); len(left) > 0 {
		w := &worker{q: q, sessions: map[string]*mailout.Session{}}
		rec := newOutcomes(w)
		rec.record(ctx, left...)
		if err := rec.wait(); err != nil {
			q.cfg.Log.Warn("outbound queue: record rows not reached at shutdown", "err", err)
		}
	}
}

func (q *Queue) worker(ctx context.Context) {
	w := &worker{q: q, sessions: map[string]*mailout.Session{}}
	defer w.closeSessions()
	idle := time.NewTimer(0)
	defer idle.Stop()
	for ctx.Err() == nil {
		if q.claimDue() {
			n, err := w.runBatch(ctx)
			if err != nil && ctx.Err() == nil {
				q.cfg.Log.Warn("outbound queue: batch failed", "err", err)
			}
			if n >= q.cfg.Batch && err == nil {
				q.lastClaim.Store(0) // a full batch: more rows are likely due
				continue
			}
		}
		if jobs := q.handed.take(q.cfg.Batch, nil, q.keepHandedUntil()); len(jobs) > 0 {
			w.deliverHanded(ctx, jobs)
			continue
		}
		// Nothing to do: wait for a handed row, the next poll or a wake-up rather than
		// claim again at once, which would compete with the senders' commits for the
		// database's writer lane.
		idle.Reset(q.cfg.Poll)
		select {
		case <-ctx.Done():
		case <-q.wake:
			q.lastClaim.Store(0)
		case <-idle.C:
			w.closeSessions() // idle for a while: do not keep servers' connections open
		case j := <-q.handed.jobs:
			w.deliverHanded(ctx, q.handed.take(q.cfg.Batch, j, q.keepHandedUntil()))
		}
	}
}

// keepHandedUntil is the earliest lease end of a handed row a worker still delivers: half
// a lease from now, so the renewal (every third of a lease) keeps it ours.
func (q *Queue) keepHandedUntil() int64 {
	return q.db.Now() + q.cfg.Lease.Milliseconds()/2
}

// claimDue says whether this worker should claim rows from the database now: one worker
// per poll interval does, so rows that nobody handed over (retries, bounces, rows queued
// while the intake was full, other instances' rows whose lease ran out) are found while
// the workers are busy with handed rows, and idle workers do not each spend a transaction
// on the writer lane finding nothing.
func (q *Queue) claimDue() bool {
	last := q.lastClaim.Load()
	now := time.Now().UnixMilli()
	return now-last >= q.cfg.Poll.Milliseconds() && q.lastClaim.CompareAndSwap(last, now)
}

func (w *worker) deliverHanded(ctx context.Context, jobs []*job) {
	if err := w.deliverJobs(ctx, jobs); err != nil && ctx.Err() == nil {
		w.q.cfg.Log.Warn("outbound queue: batch failed", "err", err)
	}
}

// RunOnce claims and delivers one batch in the caller's goroutine and reports how many rows
// it handled. Tests drive the queue with it under a compressed clock.
func (q *Queue) RunOnce(ctx context.Context) (int, error) {
	w := &worker{q: q, sessions: map[string]*mailout.Session{}}
	defer w.closeSessions()
	return w.runBatch(ctx)
}

// Drain runs batches until nothing is due.
func (q *Queue) Drain(ctx context.Context) (int, error) {
	total := 0
	for {
		n, err := q.RunOnce(ctx)
		total += n
		if err != nil || n == 0 {
			return total, err
		}
	}
}

// job is one claimed row on its way through a batch.
type job struct {
	e         store.QueueEntry
	attemptID int64
	plannedAt int64 // the "next attempt at" written before dialling
	outcome   store.OutboundOutcome
	done      bool
	results   []mailout.Result
	host      string
	trans     []string
	sendErr   error
	sender    *store.Mailbox // the From mailbox, for the Sent copy
	recorded  bool           // its outcome went to the database right after its delivery
	rec       *outcomes      // the batch whose outcomes it is part of
}

type worker struct {
	q        *Queue
	sessions map[string]*mailout.Session
}

func (w *worker) closeSessions() {
	for k, s := range w.sessions {
		_ = s.Close()
		delete(w.sessions, k)
	}
}

// runBatch is one claim → deliver → record round.
func (w *worker) runBatch(ctx context.Context) (int, error) {
	q := w.q
	var jobs []*job
	err := q.db.InTx(ctx, func(tx *store.Tx) error {
		jobs = jobs[:0]
		leaseUntil := tx.Now() + q.cfg.Lease.Milliseconds()
		entries, err := tx.ClaimOutbound(ctx, q.cfg.Owner, leaseUntil, q.cfg.Batch)
		if err != nil {
			return err
		}
		now := time.UnixMilli(tx.Now())
		for _, e := range entries {
			next, giveUp := q.cfg.Schedule.Next(e.Attempts, time.UnixMilli(e.FirstAttemptAt), now, nil)
			if giveUp {
				next = now.Add(q.cfg.Lease)
			}
			id, err := tx.StartOutboundAttempt(ctx, e, next.UnixMilli())
			if err != nil {
				return err
			}
			jobs = append(jobs, &job{e: e, attemptID: id, plannedAt: next.UnixMilli()})
		}
		return nil
	})
	if err != nil || len(jobs) == 0 {
		return 0, err
	}
	return len(jobs), w.deliverJobs(ctx, jobs)
}

// deliverJobs delivers claimed rows and records their outcomes.
func (w *worker) deliverJobs(ctx context.Context, jobs []*job) error {
	// Keep the lease while delivering takes long (slow servers, big messages).
	stopRenew := w.renewLeases(ctx, jobs)
	w.checkPolicy(ctx, jobs)
	w.sign(ctx, jobs)
	rec := newOutcomes(w)
	w.deliver(ctx, jobs, rec)
	// The rest (refused by policy, failed before delivery, not reached before shutdown)
	// in one transaction.
	var rest []*job
	for _, j := range jobs {
		if !j.recorded {
			rest = append(rest, j)
		}
	}
	rec.record(ctx, rest...)
	err := rec.wait()
	stopRenew()
	if err != nil {
		return fmt.Errorf("outbound queue: record outcome: %w", err)
	}
	w.copyToSent(ctx, rec.copies)
	return nil
}

// outcomeWriter writes the outcomes of delivered messages while the workers go on with
// their next messages: one write in flight for the whole queue, and whatever any worker
// finished meanwhile goes into the next one (the store's group commit shares its fsync with
// other writers). A crash then sends again only the few messages whose outcome had not
// reached the disk yet, not whole claimed batches; a slow disk makes the writes larger, not
// the workers slower. On SQLite one writer rather than one per worker keeps the database's
// single writer lane free for the sends; PostgreSQL runs transactions side by side and pays
// a round trip per statement, so there one write per worker may be in flight.
type outcomeWriter struct {
	q       *Queue
	mu      sync.Mutex
	pending []*job
	writing int // write loops running
}

func (ow *outcomeWriter) maxWriting() int {
	if ow.q.db.Dialect() == store.Postgres {
		return ow.q.cfg.Workers
	}
	return 1
}

// outcomes is one batch's share of the writer: it knows when its jobs are written.
type outcomes struct {
	w      *worker
	mu     sync.Mutex
	left   int // jobs recorded and not yet written
	idle   *sync.Cond
	err    error
	copies []*job // delivered messages whose Sent copy is still to make
}

func newOutcomes(w *worker) *outcomes {
	o := &outcomes{w: w}
	o.idle = sync.NewCond(&o.mu)
	return o
}

// record decides the jobs' outcomes now and has them written soon.
func (o *outcomes) record(ctx context.Context, jobs ...*job) {
	if len(jobs) == 0 {
		return
	}
	q := o.w.q
	now := time.UnixMilli(q.db.Now())
	for _, j := range jobs {
		if !j.done {
			q.decide(j, now)
		}
		j.recorded = true
		j.rec = o
	}
	o.mu.Lock()
	o.left += len(jobs)
	o.mu.Unlock()
	q.outcomes.add(ctx, jobs)
}

// written is told by the writer that j's outcome is stored (err nil) or not.
func (o *outcomes) written(j *job, err error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if err != nil && o.err == nil {
		o.err = err
	}
	if err == nil && j.outcome.SentCopy == "pending" {
		o.copies = append(o.copies, j)
	}
	o.left--
	if o.left == 0 {
		o.idle.Broadcast()
	}
}

// wait returns when every outcome recorded here is written, with the first error.
func (o *outcomes) wait() error {
	o.mu.Lock()
	defer o.mu.Unlock()
	for o.left > 0 {
		o.idle.Wait()
	}
	return o.err
}

func (ow *outcomeWriter) add(ctx context.Context, jobs []*job) {
	ow.mu.Lock()
	defer ow.mu.Unlock()
	ow.pending = append(ow.pending, jobs...)
	if ow.writing < ow.maxWriting() {
		ow.writing++
		go ow.writeLoop(context.WithoutCancel(ctx))
	}
}

// writeLoop writes what is pending until nothing is.
func (ow *outcomeWriter) writeLoop(ctx context.Context) {
	for {
		ow.mu.Lock()
		jobs := ow.pending
		ow.pending = nil
		if len(jobs) == 0 {
			ow.writing--
			ow.mu.Unlock()
			return
		}
		ow.mu.Unlock()
		err := ow.write(ctx, jobs)
		if err != nil && len(jobs) > 1 {
			// One job's failure must not cost the others their record: each alone.
			for _, j := range jobs {
				j.rec.written(j, ow.write(ctx, []*job{j}))
			}
			continue
		}
		for _, j := range jobs {
			j.rec.written(j, err)
		}
	}
}

// write records finished jobs in one transaction.
func (ow *outcomeWriter) write(ctx context.Context, jobs []*job) error {
	q := ow.q
	now := time.UnixMilli(q.db.Now())
	return q.db.InTx(ctx, func(tx *store.Tx) error {
		for _, j := range jobs {
			if err := tx.FinishOutbound(ctx, j.outcome); err != nil {
				if errors.Is(err, store.ErrNotFound) {
					q.cfg.Log.Warn("outbound queue: lease lost, another instance owns the row", "queue_id", j.e.ID)
					j.outcome.SentCopy = "" // not ours to copy
					continue
				}
				return err
			}
			if err := q.afterFinish(ctx, tx, j, now); err != nil {
				return err
			}
		}
		return nil
	})
}

func (w *worker) renewLeases(ctx context.Context, jobs []*job) (stop func()) {
	q := w.q
	ids := make([]int64, len(jobs))
	for i, j := range jobs {
		ids[i] = j.e.ID
	}
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		t := time.NewTicker(q.cfg.Lease / 3)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				err := q.db.InTx(ctx, func(tx *store.Tx) error {
					return tx.RenewOutboundLease(ctx, q.cfg.Owner, ids, tx.Now()+q.cfg.Lease.Milliseconds())
				})
				if err != nil && ctx.Err() == nil {
					q.cfg.Log.Warn("outbound queue: renew lease", "err", err)
				}
			}
		}
	}()
	return func() { cancel(); <-done }
}

// checkPolicy asks the policy engine again at dequeue (M1): a grant ended, a mailbox
// deactivated or a flag removed while the message waited stops it with the rule that
// decided.
func (w *worker) checkPolicy(ctx context.Context, jobs []*job) {
	q := w.q
	type key struct {
		tid, uid int64
		key      string
		role     policy.Role
	}
	cache := map[key]*policy.Decision{}
	for _, j := range jobs {
		e := j.e
		if e.Kind == store.QueueKindMessage && e.UserID == nil && core.IsSubmitted(e) {
			w.checkSubmitted(ctx, j)
			continue
		}
		if e.Kind != store.QueueKindMessage || e.UserID == nil {
			continue
		}
		for _, c := range []key{{e.TenantID, *e.UserID, e.SenderKey, policy.RoleSender}, {e.TenantID, *e.UserID, e.ReplyKey, policy.RoleReply}} {
			if c.key == "" {
				continue
			}
			d, seen := cache[c]
			if !seen {
				_, dec, err := q.core.Policy.Resolve(ctx, c.tid, c.uid, c.key, c.role)
				if err != nil {
					// The user is gone (deleted) or the database failed: refuse
					// rather than send unchecked; a database failure is retried.
					if errors.Is(err, store.ErrNotFound) {
						dec = &policy.Decision{Rule: "policy.user_inactive", Params: map[string]string{"address": c.key}}
					} else {
						j.fail(true, fmt.Sprintf("policy check failed: %v", err), j.plannedAt)
						break
					}
				}
				d = dec
				cache[c] = d
			}
			if d != nil {
				j.refuse(d, string(c.role), c.key)
				break
			}
		}
	}
}

// checkSubmitted asks the submission policy again for mail a hosted mailbox submitted.
func (w *worker) checkSubmitted(ctx context.Context, j *job) {
	d, err := w.q.core.RecheckSubmitted(ctx, j.e)
	if err != nil {
		j.fail(true, fmt.Sprintf("policy check failed: %v", err), j.plannedAt)
		return
	}
	if d != nil {
		j.refuse(d, "submission", j.e.EnvelopeFrom)
	}
}

// refuse ends a job the policy no longer allows, naming the rule that decided.
func (j *job) refuse(d *policy.Decision, role, key string) {
	j.done = true
	j.outcome = store.OutboundOutcome{Entry: j.e, State: store.QueueRefused, Recipients: j.e.Recipients,
		RefusedRule: d.Rule, LastError: d.Params["address"], AttemptID: j.attemptID,
		AttemptResult: "refused by policy: " + d.Rule, AttemptDetail: fmt.Sprintf("%s %s %v", role, key, d.Params)}
}

// fail marks a job as failed before delivery for a local reason.
func (j *job) fail(temporary bool, reason string, next int64) {
	j.done = true
	state := store.QueueFailed
	if temporary {
		state = store.QueueDeferred
	}
	j.outcome = store.OutboundOutcome{Entry: j.e, State: state, Recipients: j.e.Recipients, NextAttemptAt: next,
		LastError: reason, AttemptID: j.attemptID, AttemptResult: reason}
}

// pending lists the recipients still to deliver.
func pending(e store.QueueEntry) []string {
	var out []string
	for _, r := range e.Recipients {
		if r.State == store.QueueQueued || r.State == store.QueueDeferred || r.State == "" {
			out = append(out, r.Address)
		}
	}
	return out
}

// deliver sends every job still open: through the mailbox's own server, the smarthost, or
// to each recipient domain's MX hosts.
func (w *worker) deliver(ctx context.Context, jobs []*job, rec *outcomes) {
	senders := map[int64]*store.Mailbox{}
	for _, j := range jobs {
		if j.done || ctx.Err() != nil {
			continue
		}
		if w.q.cfg.SentCopy != nil {
			j.sender = w.senderMailbox(ctx, j.e, senders)
		}
		rcpts := pending(j.e)
		if len(rcpts) == 0 {
			continue
		}
		w.deliverOne(ctx, j, rcpts)
		rec.record(ctx, j)
	}
}

// deliverOne sends one message to its pending recipients.
func (w *worker) deliverOne(ctx context.Context, j *job, rcpts []string) {
	env := mailout.Envelope{From: j.e.EnvelopeFrom, To: rcpts}
	if j.e.Transport == string(policy.TransportMailbox) && j.e.TransportMailboxID != nil {
		route, err := w.mailboxRoute(ctx, j.e)
		if err != nil {
			// A route that cannot be built (an OAuth2 grant to renew, a password that
			// cannot be opened) is a failed attempt like any other: the retry schedule
			// applies and the sender gets a DSN when it gives up.
			j.collect(nil, err, rcpts)
			return
		}
		w.sendRoute(ctx, w.q.cfg.Mailboxes, route, j, env)
		return
	}
	if w.q.cfg.Smarthost != nil {
		w.sendRoute(ctx, w.q.cfg.System, *w.q.cfg.Smarthost, j, env)
		return
	}
	// Direct delivery: one transaction per recipient domain.
	byDomain := map[string][]string{}
	var order []string
	for _, r := range rcpts {
		d := strings.ToLower(r[strings.LastIndex(r, "@")+1:])
		if _, ok := byDomain[d]; !ok {
			order = append(order, d)
		}
		byDomain[d] = append(byDomain[d], r)
	}
	for _, d := range order {
		a, err := w.q.cfg.System.DeliverMX(ctx, mailout.Envelope{From: env.From, To: byDomain[d]}, d, j.e.Raw)
		j.collect(a, err, byDomain[d])
	}
}

// sendRoute sends over a session kept per route for the whole batch (connect, TLS and login
// happen once for many messages).
func (w *worker) sendRoute(ctx context.Context, d *mailout.Deliverer, r mailout.Route, j *job, env mailout.Envelope) {
	key := fmt.Sprintf("%s|%d|%s|%s", r.Host, r.Port, r.Security, r.Username)
	s := w.sessions[key]
	if s == nil {
		var err error
		s, err = d.Open(ctx, r)
		if err != nil {
			j.collect(nil, err, env.To)
			var oe *mailout.OpenError
			if errors.As(err, &oe) {
				j.trans = append(j.trans, oe.Transcript...)
			}
			return
		}
		w.sessions[key] = s
	}
	a, err := s.Send(ctx, env, j.e.Raw)
	j.collect(a, err, env.To)
	if err != nil && a != nil && len(a.Results) > 0 && a.Results[0].Code == 0 {
		// No server answer: the connection is gone; the next message reconnects.
		_ = s.Close()
		delete(w.sessions, key)
	}
}

// collect merges an attempt's per-recipient results into the job.
func (j *job) collect(a *mailout.Attempt, err error, rcpts []string) {
	if err != nil {
		j.sendErr = err
	}
	if a == nil {
		for _, r := range rcpts {
			j.results = append(j.results, failureOf(r, err))
		}
		return
	}
	if a.Host != "" {
		j.host = a.Host
	}
	j.trans = append(j.trans, a.Transcript...)
	j.results = append(j.results, a.Results...)
}

// failureOf classifies an error that produced no Attempt (the route failed before a
// transaction): a 5xx answer or a local permanent error is final, anything else temporary.
func failureOf(rcpt string, err error) mailout.Result {
	res := mailout.Result{Recipient: rcpt, Temporary: true, Err: err, Enhanced: "4.4.1"}
	if err == nil {
		res.Err = errors.New("not attempted")
		return res
	}
	res.Text = err.Error()
	var pe *mailout.PermanentError
	if errors.As(err, &pe) {
		res.Temporary, res.Enhanced = false, pe.Enhanced
	}
	if c := smtpCode(err); c >= 500 {
		res.Code, res.Temporary, res.Enhanced = c, false, "5.0.0"
	} else if c >= 400 {
		res.Code, res.Enhanced = c, "4.0.0"
	}
	return res
}

// decide turns the results into the row's next state (per recipient and overall).
func (q *Queue) decide(j *job, now time.Time) {
	e := j.e
	byAddr := map[string]mailout.Result{}
	for _, r := range j.results {
		byAddr[strings.ToLower(r.Recipient)] = r
	}
	next, giveUp := q.cfg.Schedule.Next(e.Attempts, time.UnixMilli(e.FirstAttemptAt), now, nil)
	rcpts := make([]store.QueueRecipient, len(e.Recipients))
	copy(rcpts, e.Recipients)
	var deferred, failed, sent int
	var lastErr string
	for i, r := range rcpts {
		if r.State == store.QueueSent || r.State == store.QueueFailed {
			if r.State == store.QueueSent {
				sent++
			}
			continue
		}
		res, ok := byAddr[strings.ToLower(r.Address)]
		if !ok {
			res = failureOf(r.Address, errors.New("not attempted (shutting down)"))
		}
		r.Code, r.Enhanced, r.Text, r.MaybeDelivered = res.Code, res.Enhanced, res.Text, res.MaybeDelivered
		switch {
		case res.Delivered():
			r.State = store.QueueSent
			sent++
		case res.Temporary && !giveUp:
			r.State = store.QueueDeferred
			deferred++
		default:
			r.State = store.QueueFailed
			failed++
		}
		if !res.Delivered() && lastErr == "" {
			lastErr = describe(res)
		}
		rcpts[i] = r
	}
	state := store.QueueSent
	switch {
	case deferred > 0:
		state = store.QueueDeferred
	case failed > 0:
		state = store.QueueFailed
	}
	o := store.OutboundOutcome{Entry: e, State: state, Recipients: rcpts, LastError: lastErr, AttemptID: j.attemptID}
	if state == store.QueueDeferred {
		o.NextAttemptAt = next.UnixMilli()
	}
	if state == store.QueueSent && e.Kind == store.QueueKindMessage && wantsSentCopy(j.sender) && q.cfg.SentCopy != nil {
		o.SentCopy = "pending"
	}
	o.AttemptResult = fmt.Sprintf("%s: %d sent, %d deferred, %d failed", state, sent, deferred, failed)
	o.AttemptDetail = attemptDetail(j)
	j.outcome = o
}

func describe(r mailout.Result) string {
	switch {
	case r.Code != 0:
		return strings.TrimSpace(fmt.Sprintf("%d %s %s", r.Code, r.Enhanced, r.Text))
	case r.Err != nil:
		return r.Err.Error()
	}
	return r.Text
}

// attemptDetail is the log line of an attempt: each recipient's answer, then the transcript.
func attemptDetail(j *job) string {
	var b strings.Builder
	if j.host != "" {
		fmt.Fprintf(&b, "host %s\n", j.host)
	}
	for _, r := range j.results {
		status := "delivered"
		switch {
		case !r.Delivered() && r.Temporary:
			status = "temporary failure"
		case !r.Delivered():
			status = "permanent failure"
		}
		if r.MaybeDelivered {
			status += " (may have been delivered)"
		}
		fmt.Fprintf(&b, "%s: %s: %s\n", r.Recipient, status, describe(r))
	}
	for _, l := range j.trans {
		if b.Len() > 16<<10 {
			b.WriteString("…\n")
			break
		}
		b.WriteString(l)
		b.WriteByte('\n')
	}
	return b.String()
}
