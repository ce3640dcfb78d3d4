package daemon

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/syncd/syncd/chunkstore/backend"
)

// statDown is a backend whose Stat, the repository probe's call, fails
// while down is set.
type statDown struct {
	backend.Backend
	down atomic.Bool
}

func (s *statDown) Stat(ctx context.Context, name string) (backend.Info, error) {
	if s.down.Load() {
		return backend.Info{}, errDown
	}
	return s.Backend.Stat(ctx, name)
}

// "repository unreachable" from a failed probe ends once a snapshot has
// been saved in the repository after that probe, not only at the next
// probe a minute later; a failed snapshot, or one saved before the probe,
// does not end it.
func TestRepositoryUnreachableEndsWithSnapshot(t *testing.T) {
	repo, f := flakyRepo(t)
	be := &statDown{Backend: f.Backend}
	f.Backend = be
	d, _ := drillDaemon(t, repo, 0)
	ctx := context.Background()
	unreachable := func(now time.Time) bool {
		found := false
		d.snapshotProblems(ctx, now, func(key, name, sev, details string) {
			found = found || key == "repository-unreachable"
		})
		return found
	}
	t0 := time.Now()
	be.down.Store(true)
	if !unreachable(t0) {
		t.Fatal("a probe of a repository that does not answer: no repository-unreachable")
	}
	be.down.Store(false)
	for _, c := range []struct {
		what        string
		at          time.Duration // since the probe
		last        *SnapshotInfo
		unreachable bool
	}{
		{"no snapshot since the probe", 10 * time.Second, nil, true},
		{"a snapshot failed since the probe", 25 * time.Second, &SnapshotInfo{Time: t0.Add(20 * time.Second), Result: "failed"}, true},
		{"a snapshot saved since the probe", 35 * time.Second, &SnapshotInfo{Time: t0.Add(30 * time.Second), Result: "ok"}, false},
		{"a partial snapshot saved since the probe", 45 * time.Second, &SnapshotInfo{Time: t0.Add(40 * time.Second), Result: "partial"}, false},
	} {
		d.chk.probeErr = errDown // as the probe at t0 left it
		if c.last != nil {
			d.last.Store(c.last)
		}
		if got := unreachable(t0.Add(c.at)); got != c.unreachable {
			t.Errorf("%s: repository-unreachable %v, want %v", c.what, got, c.unreachable)
		}
	}
	// a probe that fails after the last snapshot saved is not hidden by it
	be.down.Store(true)
	if !unreachable(t0.Add(2 * time.Minute)) {
		t.Errorf("a probe failing after the last snapshot saved: no repository-unreachable")
	}
}
