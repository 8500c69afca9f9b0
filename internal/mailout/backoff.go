package mailout

import (
	"math/rand/v2"
	"time"
)

// Schedule decides when a temporarily failed message is tried again and
// when the queue gives up and bounces it (feature X2).
//
// The delay after attempt n is Steps[n-1] while there are steps, then the
// last delay (Initial without steps) multiplied by Factor each time, never
// above Max; each delay is spread by ±Jitter so that messages deferred
// together do not return together.
type Schedule struct {
	// Steps are explicit delays for the first attempts.
	Steps   []time.Duration
	Initial time.Duration
	Max     time.Duration
	Factor  float64
	// Jitter is the relative spread, 0.2 meaning ±20%.
	Jitter float64
	// GiveUpAfter is measured from the first attempt. RFC 5321 §4.5.4.1
	// asks for at least 4-5 days.
	GiveUpAfter time.Duration
}

// DefaultSchedule retries after about 1m, 5m, 15m, 30m, 1h, 2h, then every
// 4h, with ±20% jitter, and gives up after 4 days.
func DefaultSchedule() Schedule {
	return Schedule{
		Steps:       []time.Duration{time.Minute, 5 * time.Minute, 15 * time.Minute, 30 * time.Minute, time.Hour, 2 * time.Hour},
		Initial:     time.Minute,
		Max:         4 * time.Hour,
		Factor:      2,
		Jitter:      0.2,
		GiveUpAfter: 96 * time.Hour,
	}
}

// Delay is the nominal delay after the given attempt (1 = the first), before
// jitter.
func (s Schedule) Delay(attempt int) time.Duration {
	attempt = max(attempt, 1)
	var d time.Duration
	var extra int
	switch {
	case attempt <= len(s.Steps):
		d = s.Steps[attempt-1]
	case len(s.Steps) > 0:
		d, extra = s.Steps[len(s.Steps)-1], attempt-len(s.Steps)
	default:
		d, extra = s.Initial, attempt-1
	}
	if d <= 0 {
		d = time.Minute
	}
	factor := s.Factor
	if factor < 1 {
		factor = 1
	}
	for range extra {
		if s.Max > 0 && d >= s.Max {
			break
		}
		d = time.Duration(float64(d) * factor)
	}
	if s.Max > 0 && d > s.Max {
		d = s.Max
	}
	return d
}

// Next returns when to try again after attempt number attempt (1 = the
// first attempt) failed at now. giveUp is true once GiveUpAfter has passed
// since firstAttempt; the last retry is placed at that deadline rather than
// beyond it. rnd makes jitter reproducible in tests; nil uses the
// process-wide source.
func (s Schedule) Next(attempt int, firstAttempt, now time.Time, rnd *rand.Rand) (next time.Time, giveUp bool) {
	giveUpAfter := s.GiveUpAfter
	if giveUpAfter <= 0 {
		giveUpAfter = 96 * time.Hour
	}
	deadline := firstAttempt.Add(giveUpAfter)
	if !now.Before(deadline) {
		return time.Time{}, true
	}
	d := s.Delay(attempt)
	if s.Jitter > 0 {
		f := rand.Float64
		if rnd != nil {
			f = rnd.Float64
		}
		d = time.Duration(float64(d) * (1 + s.Jitter*(2*f()-1)))
	}
	next = now.Add(d)
	if next.After(deadline) {
		next = deadline
	}
	return next, false
}
