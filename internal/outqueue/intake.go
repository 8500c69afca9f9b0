package outqueue

import (
	"sync"
	"time"

	"postfach/internal/core"
	"postfach/internal/store"
)

// intake holds rows that sends of this process handed over (core.Intake) until a worker
// takes them. Its room is bounded: a send that finds it full writes its row queued, and a
// worker claims that row from the database as before.
type intake struct {
	mu      sync.Mutex
	running bool
	claims  int           // reservations neither handed over nor given back yet
	room    chan struct{} // one slot per reserved or waiting row
	jobs    chan *job
}

func (in *intake) init(size int) {
	in.room = make(chan struct{}, size)
	in.jobs = make(chan *job, size)
}

func (in *intake) open() {
	in.mu.Lock()
	in.running = true
	in.mu.Unlock()
}

// closeWait bounds how long a stopping queue waits for sends that reserved room and are
// still committing; a row handed over later is claimed again when its lease runs out.
const closeWait = 5 * time.Second

// close stops new reservations, waits for the ones in flight and returns the rows no
// worker took.
func (in *intake) close() []*job {
	in.mu.Lock()
	in.running = false
	in.mu.Unlock()
	for deadline := time.Now().Add(closeWait); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		in.mu.Lock()
		n := in.claims
		in.mu.Unlock()
		if n == 0 {
			break
		}
	}
	return in.take(cap(in.jobs), nil, 0)
}

// take returns first (a row already received from jobs, or nil) and further waiting rows,
// at most max in all. A row whose lease ends before keepUntil (Unix milliseconds; the
// workers were busy for that long) is left to run out and be claimed from the database
// again, so that no other instance can take it over while it is being delivered here.
func (in *intake) take(max int, first *job, keepUntil int64) []*job {
	var jobs []*job
	keep := func(j *job) {
		<-in.room
		if j.e.LeaseUntil < keepUntil {
			return
		}
		jobs = append(jobs, j)
	}
	if first != nil {
		keep(first)
	}
	for len(jobs) < max {
		select {
		case j := <-in.jobs:
			keep(j)
		default:
			return jobs
		}
	}
	return jobs
}

// Claim implements core.Intake.
func (q *Queue) Claim() (core.IntakeClaim, bool) {
	in := &q.handed
	in.mu.Lock()
	defer in.mu.Unlock()
	if !in.running {
		return core.IntakeClaim{}, false
	}
	select {
	case in.room <- struct{}{}:
	default:
		return core.IntakeClaim{}, false
	}
	in.claims++
	now := time.Now()
	retry := q.cfg.Lease
	if next, giveUp := q.cfg.Schedule.Next(1, now, now, nil); !giveUp {
		retry = next.Sub(now)
	}
	return core.IntakeClaim{Owner: q.cfg.Owner, Lease: q.cfg.Lease, Retry: retry}, true
}

// Hand implements core.Intake. It never blocks: Claim reserved the row's room.
func (q *Queue) Hand(e store.QueueEntry, attemptID int64) {
	in := &q.handed
	in.jobs <- &job{e: e, attemptID: attemptID, plannedAt: e.NextAttemptAt}
	in.mu.Lock()
	in.claims--
	in.mu.Unlock()
}

// Unclaim implements core.Intake.
func (q *Queue) Unclaim() {
	in := &q.handed
	<-in.room
	in.mu.Lock()
	in.claims--
	in.mu.Unlock()
}
