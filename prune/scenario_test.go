package prune

import (
	"bytes"
	"context"
	"crypto/sha256"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"filippo.io/age"

	"github.com/syncd/syncd/archiver"
	"github.com/syncd/syncd/checker"
	"github.com/syncd/syncd/chunkstore"
	"github.com/syncd/syncd/chunkstore/backend"
	"github.com/syncd/syncd/chunkstore/local"
	"github.com/syncd/syncd/crypto"
	"github.com/syncd/syncd/restorer"
	"github.com/syncd/syncd/retention"
)

// keys are a repository's index key and data identity.
type keys struct {
	index *crypto.IndexKey
	data  *age.X25519Identity
}

func newKeys(t testing.TB) keys {
	t.Helper()
	idx, err := age.GenerateX25519Identity()
	if err != nil {
		t.Fatal(err)
	}
	data, err := age.GenerateX25519Identity()
	if err != nil {
		t.Fatal(err)
	}
	return keys{index: crypto.NewIndexKey(idx), data: data}
}

// initRepo initializes a repository in be.
func initRepo(t testing.TB, be backend.Backend, k keys, packSize int) {
	t.Helper()
	opts := chunkstore.InitOptions{DataRecipients: []string{k.data.Recipient().String()}, PackSize: packSize}
	if _, err := chunkstore.Init(context.Background(), be, k.index, opts); err != nil {
		t.Fatal(err)
	}
}

// open opens the repository in be as a node would: with the index key, and
// with the data identity when data is set.
func open(t testing.TB, be backend.Backend, k keys, data bool) *chunkstore.Repository {
	t.Helper()
	r, err := chunkstore.Open(context.Background(), be, k.index)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(r.Close)
	if data {
		r.SetDataIdentities([]age.Identity{k.data})
	}
	// Writes need a write session; the scenario's nodes take locked ones
	// (snapshot, forgetAndPrune), the other tests use the repository alone.
	sess, err := r.BeginWrite(context.Background(), chunkstore.WriteOptions{NoLock: true, NoIndex: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(sess.Close)
	return r
}

func localBackend(t testing.TB, dir string) backend.Backend {
	t.Helper()
	be, err := local.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	return be
}

// site is the content writer w has at its snapshot i: file k changes every
// k+1 snapshots, and one file is the same on every writer (deduplicated
// across nodes).
func site(w, i int) map[string][]byte {
	out := map[string][]byte{}
	for k := range 6 {
		v := i / (k + 1)
		out[fmt.Sprintf("f%d.bin", k)] = pseudo(fmt.Sprint(w, k, v), 2000+(w*7919+k*104729+v*1299709)%30000)
	}
	out["common/shared.bin"] = pseudo(fmt.Sprint("common", i/10), 20000)
	return out
}

// pseudo returns n deterministic random bytes for seed.
func pseudo(seed string, n int) []byte {
	s := sha256.Sum256([]byte(seed))
	rng := rand.NewChaCha8(s)
	b := make([]byte, n)
	rng.Read(b)
	return b
}

// writeSite makes dir hold exactly files.
func writeSite(t testing.TB, dir string, files map[string][]byte) {
	t.Helper()
	if err := os.RemoveAll(dir); err != nil {
		t.Fatal(err)
	}
	for name, data := range files {
		p := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// scenario runs writers that snapshot into one repository while a pruner
// forgets and prunes, then checks the result.
type scenario struct {
	writers   int
	snapshots int // per writer
	be        func(t testing.TB) backend.Backend
	fresh     func(t testing.TB) backend.Backend // an empty location for the fresh backup
	sizeOf    func(t testing.TB, be backend.Backend) int64
}

var policy = retention.Policy{Last: 3, Weekly: 4, Monthly: 6}

// snapTime is the time of writer w's snapshot i: a year, evenly.
func (s scenario) snapTime(w, i int) time.Time {
	start := time.Date(2026, 1, 1, 3, 0, 0, 0, time.UTC)
	return start.Add(time.Duration(i) * 365 * 24 * time.Hour / time.Duration(s.snapshots)).Add(time.Duration(w) * time.Minute)
}

func (s scenario) run(t *testing.T) {
	ctx := context.Background()
	k := newKeys(t)
	initRepo(t, s.be(t), k, 1<<20)
	lockOpts := lockOptsTest
	base := t.TempDir()

	var wg sync.WaitGroup
	errs := make(chan error, s.writers+1)
	done := make(chan struct{})
	for w := range s.writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			repo := open(t, s.be(t), k, false) // a node: its own index, no data identity
			dir := filepath.Join(base, fmt.Sprintf("web%d", w), "site")
			for i := range s.snapshots {
				writeSite(t, dir, site(w, i))
				if err := snapshot(ctx, repo, dir, fmt.Sprintf("web%d", w), s.snapTime(w, i), lockOpts); err != nil {
					errs <- fmt.Errorf("writer %d snapshot %d: %w", w, i, err)
					return
				}
			}
		}()
	}
	prunes := 0
	var pwg sync.WaitGroup
	pwg.Add(1)
	go func() { // the third node: forget and prune while the writers run
		defer pwg.Done()
		repo := open(t, s.be(t), k, false)
		for {
			select {
			case <-done:
				return
			default:
			}
			if err := forgetAndPrune(ctx, repo, Options{}, lockOpts); err != nil {
				errs <- fmt.Errorf("prune %d: %w", prunes, err)
				return
			}
			prunes++
		}
	}()
	wg.Wait()
	close(done)
	pwg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	t.Logf("%d writers wrote %d snapshots; %d prunes ran meanwhile", s.writers, s.writers*s.snapshots, prunes)

	// The operator's final prune, with the data identity, repacks.
	op := open(t, s.be(t), k, true)
	if err := forgetAndPrune(ctx, op, Options{Repack: true}, lockOpts); err != nil {
		t.Fatal(err)
	}

	// verify --read-data
	rep, err := checker.Check(ctx, op, checker.Options{ReadData: true})
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range rep.Problems {
		t.Errorf("verify: %s", p)
	}
	if rep.Unused != 0 {
		t.Errorf("verify: %d unreferenced packs after the final prune", rep.Unused)
	}

	// Every kept snapshot restores to what its writer had.
	snaps, bad, err := op.Snapshots(ctx)
	if err != nil || len(bad) > 0 {
		t.Fatalf("Snapshots: %v %v", bad, err)
	}
	freshBE := s.fresh(t)
	initRepo(t, freshBE, k, 1<<20)
	fresh := open(t, freshBE, k, false)
	for _, sn := range snaps {
		w, i := s.identify(t, sn)
		target := filepath.Join(base, "restore", sn.ID().Short())
		res, err := restorer.Restore(ctx, op, sn, restorer.Options{Target: target})
		if err != nil || len(res.Errors) > 0 {
			t.Fatalf("restore %s: %v %v", sn.ID().Short(), res, err)
		}
		dir := filepath.Join(base, fmt.Sprintf("web%d", w), "site")
		for name, want := range site(w, i) {
			got, err := os.ReadFile(filepath.Join(target, dir, filepath.FromSlash(name)))
			if err != nil || !bytes.Equal(got, want) {
				t.Errorf("snapshot %s (web%d #%d): %s differs (%v)", sn.ID().Short(), w, i, name, err)
			}
		}
		os.RemoveAll(target)
		// the same content into a fresh repository, for the size bar
		writeSite(t, dir, site(w, i))
		if err := snapshot(ctx, fresh, dir, fmt.Sprintf("web%d", w), sn.Time, lockOpts); err != nil {
			t.Fatal(err)
		}
	}
	got, want := s.sizeOf(t, op.Backend()), s.sizeOf(t, freshBE)
	t.Logf("%d snapshots kept; repository %d bytes, a fresh backup of them %d bytes (%.3f×)",
		len(snaps), got, want, float64(got)/float64(want))
	if float64(got) > 1.10*float64(want) {
		t.Errorf("repository is %d bytes, more than 110%% of a fresh backup's %d", got, want)
	}
}

// identify maps a snapshot back to its writer and number.
func (s scenario) identify(t *testing.T, sn *chunkstore.Snapshot) (int, int) {
	var w int
	if _, err := fmt.Sscanf(sn.Host, "web%d", &w); err != nil {
		t.Fatalf("snapshot host %q", sn.Host)
	}
	for i := range s.snapshots {
		if s.snapTime(w, i).Equal(sn.Time) {
			return w, i
		}
	}
	t.Fatalf("snapshot %s at %s: no such time", sn.ID().Short(), sn.Time)
	return 0, 0
}

// snapshot writes one snapshot of dir as a node does: under a shared
// lock, with the index read under it.
func snapshot(ctx context.Context, repo *chunkstore.Repository, dir, host string, at time.Time, lo chunkstore.LockOptions) error {
	sess, err := repo.BeginWrite(ctx, chunkstore.WriteOptions{LockOptions: lo})
	if err != nil {
		return err
	}
	defer sess.Close()
	if activePrunes.Load() != 0 {
		return fmt.Errorf("shared lock granted while a prune runs")
	}
	activeWriters.Add(1)
	defer activeWriters.Add(-1)
	if len(sess.BadIndex) > 0 {
		return fmt.Errorf("reload index: %v", sess.BadIndex)
	}
	_, err = archiver.Snapshot(ctx, repo, []string{dir}, archiver.Options{Host: host, Time: at})
	return err
}

// forgetAndPrune applies the policy, then prunes under the exclusive lock.
func forgetAndPrune(ctx context.Context, repo *chunkstore.Repository, opts Options, lo chunkstore.LockOptions) error {
	snaps, bad, err := repo.Snapshots(ctx)
	if err != nil || len(bad) > 0 {
		return fmt.Errorf("snapshots: %v %v", bad, err)
	}
	groups, err := retention.Plan(snaps, policy, retention.Filter{}, retention.DefaultGroupBy, false)
	if err != nil {
		return err
	}
	if _, err := retention.Forget(ctx, repo, groups); err != nil {
		return err
	}
	sess, err := repo.BeginExclusive(ctx, chunkstore.WriteOptions{LockOptions: lo})
	if err != nil {
		return err
	}
	defer sess.Close()
	if activeWriters.Load() != 0 {
		return fmt.Errorf("exclusive lock granted while %d snapshots run", activeWriters.Load())
	}
	activePrunes.Add(1)
	defer activePrunes.Add(-1)
	opts.Lock = sess.Lock()
	_, err = Run(ctx, repo, opts)
	return err
}

// activeWriters and activePrunes count the lock holders of this process:
// a check of the locks' exclusion.
var activeWriters, activePrunes atomic.Int32

// objectBytes sums the sizes of a repository's objects, locks aside.
func objectBytes(t testing.TB, be backend.Backend) int64 {
	t.Helper()
	var n int64
	err := be.List(context.Background(), "", func(fi backend.Info) error {
		if !strings.HasPrefix(fi.Name, chunkstore.LockPrefix) {
			n += fi.Size
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// Two writers and a pruner on a local repository, under the race detector.
func TestConcurrentWritersAndPruneLocal(t *testing.T) {
	dir := t.TempDir()
	if _, err := local.Create(dir); err != nil {
		t.Fatal(err)
	}
	scenario{
		writers: 2, snapshots: 12,
		be: func(t testing.TB) backend.Backend { return localBackend(t, dir) },
		fresh: func(t testing.TB) backend.Backend {
			d := t.TempDir()
			be, err := local.Create(d)
			if err != nil {
				t.Fatal(err)
			}
			return be
		},
		sizeOf: objectBytes,
	}.run(t)
}

var lockOptsTest = chunkstore.LockOptions{Poll: 5 * time.Millisecond, Wait: time.Hour}
