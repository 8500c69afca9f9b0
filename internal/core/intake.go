package core

import (
	"time"

	"postfach/internal/store"
)

// Intake is this process's delivery side taking a message straight from the send that
// queued it (the outbound queue implements it). Without it, a queued row waits until a
// worker's next poll finds it, and the worker then spends a transaction on the writer lane
// claiming it and reading its body back. With it, the send writes its row already claimed
// (state "sending", this instance's lease, attempt 1 started) in the same transaction as the
// message, and after the commit hands the row with its body to a worker in memory.
//
// Nothing changes for durability: the row is committed before the 202 like any other, and
// if the process dies before the worker is done, the lease runs out and any instance claims
// the row again, as after a crash during a claimed delivery.
type Intake interface {
	// Claim reserves room for one message. ok is false when the workers' room is taken or
	// they are not running; the row is then written queued for the next claim.
	Claim() (c IntakeClaim, ok bool)
	// Hand passes a committed row, claimed with Claim, to the workers. attemptID is its
	// "attempt 1 started" log row.
	Hand(e store.QueueEntry, attemptID int64)
	// Unclaim gives back a reservation whose row did not commit.
	Unclaim()
}

// IntakeClaim is what a send writes into a row it hands over.
type IntakeClaim struct {
	Owner string        // the lease owner (the queue's instance name)
	Lease time.Duration // how long the lease holds before another instance may take the row
	Retry time.Duration // when the attempt's retry is due if the process dies during it
}

// claimed fills e as a row claimed by c at now (Unix milliseconds).
func (c IntakeClaim) claimed(e *store.QueueEntry, now int64) {
	e.State = store.QueueSending
	e.Attempts = 1
	e.FirstAttemptAt = now
	e.NextAttemptAt = now + c.Retry.Milliseconds()
	e.LeaseOwner = c.Owner
	e.LeaseUntil = now + c.Lease.Milliseconds()
}

// intakeRef holds the Intake; the HTTP server may already serve sends when the queue starts.
type intakeRef struct{ Intake }

// SetIntake lets sends hand their rows to in; nil stops it.
func (s *Service) SetIntake(in Intake) {
	if in == nil {
		s.intake.Store(nil)
		return
	}
	s.intake.Store(&intakeRef{in})
}

func (s *Service) currentIntake() Intake {
	if r := s.intake.Load(); r != nil {
		return r.Intake
	}
	return nil
}
