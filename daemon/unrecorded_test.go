package daemon

import (
	"context"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/syncd/syncd/internal/ownname"
)

// A file the receiver placed as announced is not reported by the watcher;
// if the receiver's commit then fails, it hands the path over, and the
// folder's loop indexes it as the watcher's report would have been.
func TestUnrecordedIndexed(t *testing.T) {
	d := metricsDaemon(t, false)
	f := d.folders[0]
	if f.cfg.ID != "www" {
		t.Fatalf("first folder %s, want www", f.cfg.ID)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- d.watchFolder(ctx, f) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("watchFolder: %v", err)
		}
	})
	indexed := func(rel string) bool {
		e, ok, err := f.local.Index().Get(rel)
		return err == nil && ok && !e.Deleted
	}
	waitFor(t, f, "the first scan", f.scanned.Load)

	tmp := filepath.Join(f.cfg.Path, ownname.Temp())
	if err := os.WriteFile(tmp, []byte("placed by the receiver"), 0o644); err != nil {
		t.Fatal(err)
	}
	var st syscall.Stat_t
	if err := syscall.Lstat(tmp, &st); err != nil {
		t.Fatal(err)
	}
	f.local.Arriving("placed.txt", st.Ino)
	if err := os.Rename(tmp, filepath.Join(f.cfg.Path, "placed.txt")); err != nil {
		t.Fatal(err)
	}
	// written after it: once this one is indexed, placed.txt's event has
	// been read (and dropped)
	if err := os.WriteFile(filepath.Join(f.cfg.Path, "after.txt"), []byte("local"), 0o644); err != nil {
		t.Fatal(err)
	}
	waitFor(t, f, "after.txt indexed", func() bool { return indexed("after.txt") })
	if indexed("placed.txt") {
		t.Fatal("the announced arrival was indexed: the watcher reported it")
	}
	f.local.Unrecorded([]string{"placed.txt"})
	waitFor(t, f, "placed.txt indexed once handed over", func() bool { return indexed("placed.txt") })
}

// waitFor waits up to 30 s for cond, looking again whenever the folder's
// index changes (f.local.Changed) and every 20 ms for what does not ring
// it (the scanned flag is set just after the ring).
func waitFor(t *testing.T, f *folder, what string, cond func() bool) {
	t.Helper()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	deadline := time.After(30 * time.Second)
	for {
		changed := f.local.Changed()
		if cond() {
			return
		}
		select {
		case <-changed:
		case <-tick.C:
		case <-deadline:
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}
