package localfolder

import (
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/syncd/syncd/internal/clock"
	"github.com/syncd/syncd/state"
)

// newTestFolder returns a local folder over a new directory and a new
// state database, on clk (nil: the system's).
func newTestFolder(t *testing.T, clk clock.Clock) *Folder {
	t.Helper()
	base := t.TempDir()
	db, err := state.Open(filepath.Join(base, "state.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return New(t.TempDir(), db.Folder("www"), clk)
}

func closed(ch <-chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}

// The lock keeps batches apart: goroutines that change shared data only
// under it never race (the race detector watches) and lose no update.
func TestLockExcludes(t *testing.T) {
	f := newTestFolder(t, nil)
	const workers, rounds = 8, 200
	n := 0
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range rounds {
				f.Lock()
				v := n
				n = v + 1
				f.Unlock()
			}
		}()
	}
	wg.Wait()
	if n != workers*rounds {
		t.Errorf("%d increments under the lock, want %d", n, workers*rounds)
	}
}

// Changed is closed by the next Notify, and by nothing else: not the
// lock, not a write of the index without it.
func TestChanged(t *testing.T) {
	f := newTestFolder(t, nil)
	ch := f.Changed()
	f.Lock()
	if err := f.Index().Update(func(tx *state.Tx) error {
		return tx.Put("a.txt", state.Entry{Type: "file", Size: 1})
	}); err != nil {
		t.Fatal(err)
	}
	f.Unlock()
	if closed(ch) {
		t.Fatal("Changed is closed before Notify")
	}
	f.Notify()
	if !closed(ch) {
		t.Fatal("Changed is still open after Notify")
	}
	next := f.Changed()
	if closed(next) {
		t.Fatal("Changed taken after a Notify is already closed")
	}
	f.Notify()
	if !closed(next) {
		t.Error("Changed is still open after the second Notify")
	}
}

// Every waiter wakes at one change, from other goroutines too.
func TestChangedWakesAll(t *testing.T) {
	f := newTestFolder(t, nil)
	const waiters = 4
	var ready, woke sync.WaitGroup
	for range waiters {
		ready.Add(1)
		woke.Add(1)
		go func() {
			defer woke.Done()
			ch := f.Changed()
			ready.Done()
			<-ch
		}()
	}
	ready.Wait()
	f.Notify()
	done := make(chan struct{})
	go func() { woke.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("a waiter still sleeps 10 s after Notify")
	}
}
