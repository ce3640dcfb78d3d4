package chunkstore

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"
)

// fakeClock is a clock the test moves by hand.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func lockNames(t *testing.T, r *Repository) []string {
	t.Helper()
	locks, err := r.ReadLocks(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, l := range locks {
		out = append(out, l.Name)
	}
	return out
}

// A lock of a node that died is reported, kept until its expiry, and
// broken after it.
func TestStaleLockBrokenAfterExpiry(t *testing.T) {
	ctx := context.Background()
	tr := initLocal(t, InitOptions{})
	clock := &fakeClock{t: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)}
	alive := func(int) bool { return true }
	// web1 takes a shared lock and dies: nobody refreshes or removes it.
	dead := tr.open(t, false)
	if _, err := dead.Lock(ctx, LockOptions{Host: "web1", PID: 100, Now: clock.Now, Refresh: -1, Alive: alive}); err != nil {
		t.Fatal(err)
	}
	pruner := tr.open(t, false)
	var stale []string
	opts := LockOptions{Exclusive: true, Program: "syncd prune", Host: "web3", PID: 300, Now: clock.Now,
		Refresh: -1, Poll: time.Millisecond, Alive: alive,
		OnStale: func(name string, l LockInfo, why string) { stale = append(stale, l.Host+": "+why) }}

	// Before the expiry the lock holds: prune is refused and names it.
	clock.Add(DefaultLockExpiry - time.Minute)
	_, err := pruner.Lock(ctx, opts)
	var le *LockedError
	if !errors.As(err, &le) || len(le.Holders) != 1 || le.Holders[0].Host != "web1" {
		t.Fatalf("Lock before expiry = %v, want a LockedError naming web1", err)
	}
	if !strings.Contains(err.Error(), "shared lock of syncd (pid 100 on web1") {
		t.Errorf("error %q does not describe the holder", err)
	}
	if len(stale) != 0 {
		t.Errorf("stale reported before the expiry: %v", stale)
	}
	if n := len(lockNames(t, pruner)); n != 1 {
		t.Errorf("%d locks after the refused attempt, want only the dead node's", n)
	}

	// After it: reported, removed, and prune gets its lock.
	clock.Add(2 * time.Minute)
	l, err := pruner.Lock(ctx, opts)
	if err != nil {
		t.Fatalf("Lock after expiry: %v", err)
	}
	if len(stale) != 1 || !strings.HasPrefix(stale[0], "web1: expired at 2026-03-01T12:30:00Z") {
		t.Errorf("stale reports = %q, want one for web1 expired at 12:30", stale)
	}
	if names := lockNames(t, pruner); len(names) != 1 {
		t.Errorf("locks after breaking = %v, want only prune's", names)
	}
	l.Unlock()
	if names := lockNames(t, pruner); len(names) != 0 {
		t.Errorf("locks after Unlock = %v", names)
	}
}

// A lock of a process of this host that no longer runs is stale at once.
func TestStaleLockDeadProcess(t *testing.T) {
	ctx := context.Background()
	tr := initLocal(t, InitOptions{})
	r := tr.open(t, false)
	if _, err := r.Lock(ctx, LockOptions{Exclusive: true, Host: "web1", PID: 100, Refresh: -1}); err != nil {
		t.Fatal(err)
	}
	var why string
	_, err := r.Lock(ctx, LockOptions{Host: "web1", PID: 200, Refresh: -1,
		Alive:   func(pid int) bool { return pid != 100 },
		OnStale: func(_ string, _ LockInfo, w string) { why = w }})
	if err != nil {
		t.Fatalf("Lock: %v", err)
	}
	if why != "process 100 no longer runs on web1" {
		t.Errorf("stale reason %q", why)
	}
}

// Shared locks coexist; an exclusive one excludes them both ways.
func TestLockConflicts(t *testing.T) {
	ctx := context.Background()
	tr := initLocal(t, InitOptions{})
	r := tr.open(t, false)
	base := LockOptions{Host: "h", Refresh: -1, Alive: func(int) bool { return true }}
	w1 := base
	w1.PID = 1
	w2 := base
	w2.PID = 2
	p := base
	p.PID, p.Exclusive = 3, true
	l1, err := r.Lock(ctx, w1)
	if err != nil {
		t.Fatal(err)
	}
	l2, err := r.Lock(ctx, w2)
	if err != nil {
		t.Fatalf("second shared lock: %v", err)
	}
	if _, err := r.Lock(ctx, p); err == nil {
		t.Fatal("exclusive lock granted beside shared ones")
	}
	l1.Unlock()
	l2.Unlock()
	lp, err := r.Lock(ctx, p)
	if err != nil {
		t.Fatalf("exclusive lock on a free repository: %v", err)
	}
	if _, err := r.Lock(ctx, w1); err == nil {
		t.Fatal("shared lock granted beside an exclusive one")
	}
	if n := len(lockNames(t, r)); n != 1 {
		t.Errorf("%d lock objects, want 1 (a refused locker removes its own)", n)
	}
	lp.Unlock()
}

// A snapshot whose lock another node broke is not written.
func TestSaveSnapshotRefusedAfterLockLost(t *testing.T) {
	ctx := context.Background()
	tr := initLocal(t, InitOptions{})
	r := tr.open(t, false)
	clock := &fakeClock{t: time.Now()}
	l, err := r.Lock(ctx, LockOptions{Now: clock.Now, Refresh: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Unlock()
	// another node breaks it
	for _, n := range lockNames(t, r) {
		if err := r.Backend().Remove(ctx, n); err != nil {
			t.Fatal(err)
		}
	}
	if err := l.Refresh(ctx); !errors.Is(err, ErrLockLost) {
		t.Fatalf("Refresh = %v, want ErrLockLost", err)
	}
	if _, err := r.SaveSnapshot(ctx, &Snapshot{Time: time.Now(), Host: "h"}); !errors.Is(err, ErrLockLost) {
		t.Fatalf("SaveSnapshot = %v, want ErrLockLost", err)
	}

	// A lock not refreshed before its expiry is lost by its own clock too.
	r2 := tr.open(t, false)
	l2, err := r2.Lock(ctx, LockOptions{Now: clock.Now, Refresh: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer l2.Unlock()
	clock.Add(DefaultLockExpiry + time.Second)
	if err := l2.Check(); !errors.Is(err, ErrLockLost) {
		t.Fatalf("Check after expiry = %v, want ErrLockLost", err)
	}
}

// Refresh moves the expiry and keeps one object.
func TestLockRefresh(t *testing.T) {
	ctx := context.Background()
	tr := initLocal(t, InitOptions{})
	r := tr.open(t, false)
	clock := &fakeClock{t: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	l, err := r.Lock(ctx, LockOptions{Now: clock.Now, Refresh: -1})
	if err != nil {
		t.Fatal(err)
	}
	clock.Add(10 * time.Minute)
	if err := l.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	locks, err := r.ReadLocks(ctx)
	if err != nil || len(locks) != 1 {
		t.Fatalf("ReadLocks = %v, %v; want one lock", locks, err)
	}
	if want := clock.Now().Add(DefaultLockExpiry); !locks[0].Info.Expires.Equal(want) {
		t.Errorf("expires %s, want %s", locks[0].Info.Expires, want)
	}
	l.Unlock()
}

func FuzzDecodeLock(f *testing.F) {
	f.Add([]byte(`{"version":1,"exclusive":true,"host":"web1","pid":42,"program":"syncd prune","created":"2026-01-01T00:00:00Z","expires":"2026-01-01T00:30:00Z"}`))
	f.Add([]byte(`{"version":1,"host":"","pid":1,"created":"2026-01-01T00:00:00Z","expires":"2026-01-01T00:30:00Z"}`))
	f.Add([]byte(`{"version":2}`))
	f.Add([]byte(`{"version":1,"host":"h","pid":-1,"created":"2026-01-01T00:00:00Z","expires":"2025-01-01T00:30:00Z"} x`))
	f.Fuzz(func(t *testing.T, data []byte) {
		l, err := DecodeLock(data)
		if err != nil {
			return
		}
		if l.Version != 1 || l.Host == "" || l.PID < 0 || l.Expires.Before(l.Created) {
			t.Fatalf("DecodeLock accepted an invalid lock: %+v", l)
		}
		_ = l.String()
	})
}
