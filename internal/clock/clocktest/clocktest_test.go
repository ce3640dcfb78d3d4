package clocktest

import (
	"testing"
	"time"
)

var t0 = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

// fired reports whether c has a value, taking it.
func fired(c <-chan time.Time) (time.Time, bool) {
	select {
	case at := <-c:
		return at, true
	default:
		return time.Time{}, false
	}
}

// Timers fire when the time reaches theirs, with their own time, and not
// before; a stopped one never does; Skip goes to the earliest one.
func TestFake(t *testing.T) {
	f := New(t0)
	a, b, c := f.NewTimer(2*time.Second), f.NewTimer(time.Second), f.NewTimer(3*time.Second)
	if _, ok := fired(f.NewTimer(0).C()); !ok {
		t.Error("a timer of 0 did not fire at once")
	}
	f.Advance(999 * time.Millisecond)
	if _, ok := fired(b.C()); ok {
		t.Error("a timer fired early")
	}
	f.Advance(1500 * time.Millisecond)
	if at, ok := fired(b.C()); !ok || !at.Equal(t0.Add(time.Second)) {
		t.Errorf("1 s timer: fired %v at %v, want at %v", ok, at, t0.Add(time.Second))
	}
	if at, ok := fired(a.C()); !ok || !at.Equal(t0.Add(2*time.Second)) {
		t.Errorf("2 s timer: fired %v at %v, want at %v", ok, at, t0.Add(2*time.Second))
	}
	if a.Stop() {
		t.Error("Stop of a fired timer reported it pending")
	}
	dAt := f.Now().Add(time.Hour)
	d, e := f.NewTimer(time.Hour), f.NewTimer(time.Minute)
	if at := f.Now().Add(time.Minute); !f.Pending(at) || f.Pending(at.Add(time.Nanosecond)) {
		t.Errorf("Pending(%v) = %v, Pending a moment later = %v; want true, false", at, f.Pending(at), f.Pending(at.Add(time.Nanosecond)))
	}
	if !f.Pending(dAt) {
		t.Error("the 1 h timer is not pending")
	}
	if !d.Stop() {
		t.Error("Stop of a pending timer reported it fired")
	}
	if !f.Skip() || !f.Now().Equal(t0.Add(3*time.Second)) {
		t.Errorf("Skip: now %v, want the 3 s timer's %v", f.Now(), t0.Add(3*time.Second))
	}
	if _, ok := fired(c.C()); !ok {
		t.Error("Skip did not fire the timer it went to")
	}
	if _, ok := fired(e.C()); ok {
		t.Error("Skip fired a later timer")
	}
	if !f.Skip() {
		t.Error("Skip found no timer with one pending")
	}
	if _, ok := fired(e.C()); !ok {
		t.Error("the second Skip did not fire the last timer")
	}
	if f.Skip() {
		t.Errorf("Skip with only a stopped timer left moved to %v", f.Now())
	}
	if f.Pending(dAt) {
		t.Error("a stopped timer is pending")
	}
	if _, ok := fired(d.C()); ok {
		t.Error("a stopped timer fired")
	}
}

// A timer fired but not yet received from delivers nothing once stopped.
func TestStopDrains(t *testing.T) {
	f := New(t0)
	tm := f.NewTimer(time.Second)
	f.Advance(time.Second)
	tm.Stop()
	if _, ok := fired(tm.C()); ok {
		t.Error("a stopped timer delivered its value")
	}
}
