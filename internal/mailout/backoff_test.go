package mailout

import (
	"math/rand/v2"
	"testing"
	"time"
)

func TestScheduleDelays(t *testing.T) {
	t.Parallel()
	s := DefaultSchedule()
	want := []time.Duration{time.Minute, 5 * time.Minute, 15 * time.Minute, 30 * time.Minute, time.Hour, 2 * time.Hour, 4 * time.Hour, 4 * time.Hour, 4 * time.Hour}
	for i, w := range want {
		if got := s.Delay(i + 1); got != w {
			t.Errorf("Delay(%d) = %v, want %v", i+1, got, w)
		}
	}
	geometric := Schedule{Initial: 10 * time.Second, Factor: 3, Max: time.Minute}
	for i, w := range []time.Duration{10 * time.Second, 30 * time.Second, time.Minute, time.Minute} {
		if got := geometric.Delay(i + 1); got != w {
			t.Errorf("geometric Delay(%d) = %v, want %v", i+1, got, w)
		}
	}
}

func TestScheduleNext(t *testing.T) {
	t.Parallel()
	s := DefaultSchedule()
	first := time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
	rnd := rand.New(rand.NewPCG(1, 2))

	// Replay a message that always fails: attempts stay within the jitter
	// band, the last one lands on the deadline, then the queue gives up.
	now := first
	attempts := 0
	for {
		attempts++
		next, giveUp := s.Next(attempts, first, now, rnd)
		if giveUp {
			break
		}
		d := next.Sub(now)
		nominal := s.Delay(attempts)
		lo, hi := time.Duration(float64(nominal)*0.8), time.Duration(float64(nominal)*1.2)
		if next != first.Add(96*time.Hour) && (d < lo || d > hi) {
			t.Fatalf("attempt %d: delay %v outside [%v, %v]", attempts, d, lo, hi)
		}
		now = next
		if attempts > 100 {
			t.Fatal("never gave up")
		}
	}
	if !now.Equal(first.Add(96 * time.Hour)) {
		t.Errorf("last attempt at %v, want the deadline", now.Sub(first))
	}
	if attempts < 25 || attempts > 35 {
		t.Errorf("%d attempts in 4 days, expected about 29", attempts)
	}

	// The same seed gives the same schedule.
	a, _ := s.Next(3, first, first, rand.New(rand.NewPCG(7, 7)))
	b, _ := s.Next(3, first, first, rand.New(rand.NewPCG(7, 7)))
	if !a.Equal(b) {
		t.Error("seeded schedule not deterministic")
	}
}
