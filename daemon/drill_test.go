package daemon

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/syncd/syncd/chunkstore"
	"github.com/syncd/syncd/chunkstore/backend"
	"github.com/syncd/syncd/config"
	"github.com/syncd/syncd/internal/clock"
	"github.com/syncd/syncd/internal/repotest"
	"github.com/syncd/syncd/state"
)

var drillT0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// lockedBuffer is a log destination safe for concurrent writes.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// drillDaemon is a daemon of node web1 with just what the drill checks
// use, on repo, with repository.drill_every every.
func drillDaemon(t *testing.T, repo *chunkstore.Repository, every time.Duration) (*Daemon, *lockedBuffer) {
	t.Helper()
	logs := &lockedBuffer{}
	cfg := &config.Config{}
	cfg.Node.Name = "web1"
	cfg.Repository = &config.Repository{URL: "test", DrillEvery: every}
	d := &Daemon{cfg: cfg, repo: repo, log: slog.New(slog.NewTextHandler(logs, nil)), clk: clock.System}
	d.drill.poke = make(chan struct{}, 1)
	return d, logs
}

// saveDrill writes a drill record begun at drillT0+at that restored one
// snapshot of each of hosts, ok or failed with why.
func saveDrill(t *testing.T, repo *chunkstore.Repository, at time.Duration, why string, hosts ...string) chunkstore.ID {
	t.Helper()
	r := &chunkstore.Drill{Time: drillT0.Add(at), Host: "ops", OK: why == "", Error: why, Seconds: 9}
	for i, h := range hosts {
		r.Snapshots = append(r.Snapshots, chunkstore.DrillSnapshot{Host: h, Paths: []string{"/srv/www"},
			Time: drillT0.Add(at - time.Hour), AgeSeconds: 3600 + float64(i), Files: 3, Bytes: 300, Seconds: 2.5})
	}
	id, err := repo.SaveDrill(context.Background(), r)
	if err != nil {
		t.Fatal(err)
	}
	return id
}

// problems returns the drill problems of d at now as "key: details".
func problems(d *Daemon, now time.Time) []string {
	var out []string
	d.drillProblems(now, func(key, name, sev, details string) {
		out = append(out, key+" "+sev+": "+details)
	})
	return out
}

func wantProblems(t *testing.T, d *Daemon, now time.Time, want ...string) {
	t.Helper()
	got := problems(d, now)
	if len(got) != len(want) {
		t.Fatalf("problems = %q, want ones starting %q", got, want)
	}
	for i := range want {
		if !strings.HasPrefix(got[i], want[i]) {
			t.Errorf("problem %d = %q, want it to start %q", i, got[i], want[i])
		}
	}
}

// Which records concern node web1, and what Last and LastOK are made of.
func TestDrillView(t *testing.T) {
	id := func(b byte) chunkstore.ID { return chunkstore.ID{b} }
	snap := func(host string, age, secs, est float64) chunkstore.DrillSnapshot {
		return chunkstore.DrillSnapshot{Host: host, AgeSeconds: age, Seconds: secs, EstSeconds: est, Files: 2, Bytes: 10}
	}
	at := func(h int) time.Time { return drillT0.Add(time.Duration(h) * time.Hour) }
	recs := map[chunkstore.ID]*chunkstore.Drill{
		id(1): {Time: at(1), OK: true, Snapshots: []chunkstore.DrillSnapshot{snap("web1", 60, 5, 0), snap("web1", 90, 7, 0), snap("web2", 9999, 1, 0)}},
		id(2): {Time: at(2), OK: true, Snapshots: []chunkstore.DrillSnapshot{snap("web2", 10, 1, 0)}}, // other host only
		id(3): {Time: at(3), OK: true},                                                                // of nothing: proves nothing
		id(4): nil,                                                                                    // unreadable
	}
	last, lastOK := drillView(recs, "web1")
	if last == nil || lastOK != last || last.ID != id(1).String() {
		t.Fatalf("last %+v, last ok %+v; want both record 1", last, lastOK)
	}
	if last.Snapshots != 2 || last.Files != 4 || last.Bytes != 20 || last.AgeSeconds != 90 || last.Seconds != 12 || last.Host != "" {
		t.Errorf("record 1 for web1 = %+v, want 2 snapshots, 4 files, 20 bytes, age 90 (the oldest), 12 s (the sum)", last)
	}

	// a failed drill of no snapshot (it could not open the repository)
	// concerns every node; a sample's estimate is its recovery time
	recs[id(5)] = &chunkstore.Drill{Time: at(5), Error: "open repository: gone"}
	recs[id(6)] = &chunkstore.Drill{Time: at(4), OK: true, Sample: 10, Snapshots: []chunkstore.DrillSnapshot{snap("web1", 30, 1, 40)}}
	last, lastOK = drillView(recs, "web1")
	if last == nil || last.ID != id(5).String() || last.OK || last.Error != "open repository: gone" {
		t.Errorf("last = %+v, want the failed record 5", last)
	}
	if lastOK == nil || lastOK.ID != id(6).String() || lastOK.Seconds != 40 || lastOK.Sample != 10 {
		t.Errorf("last ok = %+v, want record 6 with its estimate, 40 s", lastOK)
	}
	if last, lastOK = drillView(recs, "web3"); last == nil || last.ID != id(5).String() || lastOK != nil {
		t.Errorf("web3: last %+v, last ok %+v; want record 5 and none", last, lastOK)
	}
	// a failed drill with no reason still says so
	recs[id(7)] = &chunkstore.Drill{Time: at(6), Snapshots: []chunkstore.DrillSnapshot{snap("web1", 1, 1, 0)}}
	if last, _ = drillView(recs, "web1"); last.Error != "no reason given" {
		t.Errorf("a failed drill without a reason: error %q", last.Error)
	}
	recs[id(8)] = &chunkstore.Drill{Time: at(7)}
	if last, _ = drillView(recs, "web1"); last.ID != id(8).String() || last.Error != "no snapshot was restored" {
		t.Errorf("a failed drill of no snapshot without a reason: %+v", last)
	}
}

// No record: "drill overdue" at once; a failed drill: "drill failed"
// too; a successful one resolves both until drill_every has passed.
func TestDrillProblems(t *testing.T) {
	repo := repotest.New(t)
	d, _ := drillDaemon(t, repo, 24*time.Hour)
	ctx := context.Background()
	now := drillT0.Add(time.Hour)

	wantProblems(t, d, now) // not read yet: nothing known, nothing said
	if s := d.DrillStatus(); s.ReadAt != nil || s.Last != nil || s.Every != "24h0m0s" {
		t.Errorf("status before the first read: %+v", s)
	}
	d.readDrills(ctx)
	wantProblems(t, d, now, "drill-overdue warning: no restore drill of this node's snapshots has succeeded (repository.drill_every 24h0m0s)")

	saveDrill(t, repo, 0, "2 damaged files", "web1", "web2")
	saveDrill(t, repo, 30*time.Minute, "", "web2") // other hosts only: not a success for web1
	d.readDrills(ctx)
	wantProblems(t, d, now, "drill-failed critical: the restore drill of 2026-03-01T12:00:00Z (run on ops) failed: 2 damaged files", "drill-overdue")

	ok := saveDrill(t, repo, time.Hour, "", "web1", "web2")
	d.readDrills(ctx)
	wantProblems(t, d, now)
	s := d.DrillStatus()
	if s.Last == nil || s.Last.ID != ok.String() || s.LastOK != s.Last || s.Last.AgeSeconds != 3600 || s.Last.Seconds != 2.5 {
		t.Errorf("status after a successful drill: %+v", s)
	}
	wantProblems(t, d, drillT0.Add(25*time.Hour)) // exactly drill_every after it
	wantProblems(t, d, drillT0.Add(25*time.Hour+time.Minute),
		"drill-overdue warning: the last successful restore drill was 2026-03-01T13:00:00Z, 24h1m0s ago (repository.drill_every 24h0m0s)")

	// without drill_every: a failed drill still shows, no overdue
	d.cfg.Repository.DrillEvery = 0
	saveDrill(t, repo, 2*time.Hour, "snapshot too old", "web1")
	d.readDrills(ctx)
	wantProblems(t, d, drillT0.Add(100*24*time.Hour), "drill-failed critical")
}

// flaky is a backend whose List and Open fail while down is set.
type flaky struct {
	backend.Backend
	down  atomic.Bool
	lists atomic.Int32
}

var errDown = errors.New("connection refused")

func (f *flaky) List(ctx context.Context, prefix string, fn func(backend.Info) error) error {
	f.lists.Add(1)
	if f.down.Load() {
		return errDown
	}
	return f.Backend.List(ctx, prefix, fn)
}

func (f *flaky) Open(ctx context.Context, name string, off, n int64) (io.ReadCloser, error) {
	if f.down.Load() {
		return nil, errDown
	}
	return f.Backend.Open(ctx, name, off, n)
}

// flakyRepo is a new repository over a [flaky] backend, with a write
// session open until the test ends.
func flakyRepo(t *testing.T) (*chunkstore.Repository, *flaky) {
	t.Helper()
	var f *flaky
	repo := repotest.NewOver(t, func(be backend.Backend) backend.Backend {
		f = &flaky{Backend: be}
		return f
	})
	return repo, f
}

// A repository that does not answer keeps the last known drill: no drill
// alert starts for that alone; the error is in the status and logged
// once. A record that cannot be read for the same reason is read later.
func TestDrillRepositoryDown(t *testing.T) {
	repo, f := flakyRepo(t)
	d, logs := drillDaemon(t, repo, 24*time.Hour)
	ctx := context.Background()
	saveDrill(t, repo, 0, "", "web1")
	d.readDrills(ctx)
	now := drillT0.Add(time.Hour)
	wantProblems(t, d, now)

	f.down.Store(true)
	d.readDrills(ctx)
	d.readDrills(ctx)
	wantProblems(t, d, now)
	s := d.DrillStatus()
	if s.LastOK == nil || !strings.Contains(s.ReadError, "connection refused") {
		t.Errorf("status while the repository is down: %+v", s)
	}
	if n := strings.Count(logs.String(), "cannot read the drill records"); n != 1 {
		t.Errorf("the failure was logged %d times, want 1:\n%s", n, logs)
	}

	// listed, but its read fails: not taken for unreadable; what was read
	// before it (a corrupt record, listed first) stays read
	f.down.Store(false)
	newer := saveDrill(t, repo, time.Hour, "", "web1")
	if err := backend.SaveBytes(ctx, f.Backend, chunkstore.DrillName(chunkstore.ID{}), []byte("corrupt")); err != nil {
		t.Fatal(err)
	}
	f.Backend = failOnly{f.Backend, chunkstore.DrillName(newer)}
	d.readDrills(ctx)
	if s := d.DrillStatus(); s.Unreadable != 1 || s.LastOK.ID == newer.String() || s.ReadError == "" {
		t.Errorf("a record whose read failed: %+v", s)
	}
	f.Backend = f.Backend.(failOnly).Backend
	d.readDrills(ctx)
	if s := d.DrillStatus(); s.LastOK.ID != newer.String() || s.ReadError != "" || s.Unreadable != 1 {
		t.Errorf("once the repository answers again: %+v", s)
	}
	if n := strings.Count(logs.String(), "drill record unreadable"); n != 1 {
		t.Errorf("the corrupt record was logged %d times, want 1:\n%s", n, logs)
	}
	if !strings.Contains(logs.String(), "drill records read again") {
		t.Errorf("the recovery was not logged:\n%s", logs)
	}
}

// failOnly fails the Open of one object with a network error.
type failOnly struct {
	backend.Backend
	name string
}

func (f failOnly) Open(ctx context.Context, name string, off, n int64) (io.ReadCloser, error) {
	if name == f.name {
		return nil, errDown
	}
	return f.Backend.Open(ctx, name, off, n)
}

// A record that cannot be decoded is logged once and skipped; the others
// count. A record no longer listed (a backup disk not mounted) is kept.
func TestDrillUnreadable(t *testing.T) {
	repo := repotest.New(t)
	d, logs := drillDaemon(t, repo, 24*time.Hour)
	ctx := context.Background()
	bad := chunkstore.DrillName(chunkstore.ID{0xba, 0xd})
	if err := backend.SaveBytes(ctx, repo.Backend(), bad, []byte("not a drill record")); err != nil {
		t.Fatal(err)
	}
	ok := saveDrill(t, repo, 0, "", "web1")
	d.readDrills(ctx)
	d.readDrills(ctx)
	s := d.DrillStatus()
	if s.Unreadable != 1 || s.LastOK == nil || s.LastOK.ID != ok.String() {
		t.Errorf("status with a corrupt record: %+v", s)
	}
	if n := strings.Count(logs.String(), "drill record unreadable"); n != 1 || !strings.Contains(logs.String(), bad) {
		t.Errorf("the corrupt record was logged %d times, want once with its name:\n%s", n, logs)
	}
	wantProblems(t, d, drillT0.Add(time.Hour))

	if err := repo.Backend().Remove(ctx, chunkstore.DrillName(ok)); err != nil {
		t.Fatal(err)
	}
	d.readDrills(ctx)
	if s := d.DrillStatus(); s.LastOK == nil || s.LastOK.ID != ok.String() {
		t.Errorf("a record no longer listed was forgotten: %+v", s)
	}
}

// fakeClock is a clock.Clock moved by hand; made tells of each new timer.
type fakeClock struct {
	mu     sync.Mutex
	now    time.Time
	timers []*fakeTimer
	made   chan time.Duration
}

type fakeTimer struct {
	at time.Time
	c  chan time.Time
}

func (f *fakeClock) Now() time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.now
}

func (f *fakeClock) NewTimer(d time.Duration) clock.Timer {
	f.mu.Lock()
	t := &fakeTimer{at: f.now.Add(d), c: make(chan time.Time, 1)}
	f.timers = append(f.timers, t)
	f.mu.Unlock()
	f.made <- d
	return t
}

func (t *fakeTimer) C() <-chan time.Time { return t.c }
func (t *fakeTimer) Stop() bool          { return true }

// Advance moves the time by d and fires the timers then due.
func (f *fakeClock) Advance(d time.Duration) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.now = f.now.Add(d)
	kept := f.timers[:0]
	for _, t := range f.timers {
		if t.at.After(f.now) {
			kept = append(kept, t)
			continue
		}
		t.c <- f.now
	}
	f.timers = kept
}

// watchDrills reads at start, again each drillReadEvery, and when poked
// (after a snapshot), and nowhere else.
func TestWatchDrills(t *testing.T) {
	repo, f := flakyRepo(t)
	d, _ := drillDaemon(t, repo, time.Hour)
	clk := &fakeClock{now: drillT0, made: make(chan time.Duration, 10)}
	d.clk = clk
	db, err := state.Open(filepath.Join(t.TempDir(), "state.db")) // record keeps the snapshot there
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	d.db = db
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- d.watchDrills(ctx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("watchDrills: %v", err)
		}
	}()
	wait := func(what string) {
		t.Helper()
		select {
		case got := <-clk.made:
			if got != drillReadEvery {
				t.Fatalf("%s: a timer of %v, want %v", what, got, drillReadEvery)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("%s: no read", what)
		}
	}
	wait("start")
	if s := d.DrillStatus(); s.ReadAt == nil || !s.ReadAt.Equal(drillT0) || s.Last != nil {
		t.Fatalf("status after the first read: %+v", s)
	}
	lists := f.lists.Load()

	id := saveDrill(t, repo, 0, "", "web1")
	clk.Advance(drillReadEvery - time.Second)
	select {
	case <-clk.made:
		t.Fatal("read again before drillReadEvery")
	case <-time.After(50 * time.Millisecond):
	}
	if n := f.lists.Load(); n != lists {
		t.Fatalf("listed %d times before drillReadEvery", n-lists)
	}
	clk.Advance(time.Second)
	wait("after drillReadEvery")
	if s := d.DrillStatus(); s.Last == nil || s.Last.ID != id.String() {
		t.Fatalf("status after the periodic read: %+v", s)
	}

	id = saveDrill(t, repo, time.Hour, "", "web1")
	d.record(&SnapshotInfo{Time: drillT0, Result: "failed"}) // as each snapshot does
	wait("after a snapshot")
	if s := d.DrillStatus(); s.Last == nil || s.Last.ID != id.String() {
		t.Fatalf("status after the read a snapshot asked for: %+v", s)
	}
}

// The drill metrics: drill_every always; the rest once the records were
// read, the timestamp 0 while no drill succeeded.
func TestDrillMetrics(t *testing.T) {
	d := metricsDaemon(t, true)
	d.cfg.Repository.DrillEvery = 48 * time.Hour
	ctx := context.Background()
	fams := scrape(t, d)
	want(t, fams, 48*3600, "syncd_repository_drill_every_seconds")
	for _, name := range []string{"syncd_repository_last_drill_timestamp_seconds", "syncd_repository_last_drill_success"} {
		if _, ok := value(fams, name); ok {
			t.Errorf("%s before the records were read", name)
		}
	}
	d.readDrills(ctx)
	fams = scrape(t, d)
	want(t, fams, 0, "syncd_repository_last_drill_timestamp_seconds")
	if _, ok := value(fams, "syncd_repository_last_drill_success"); ok {
		t.Error("syncd_repository_last_drill_success without a drill")
	}

	saveDrill(t, d.repo, time.Hour, "", "web1")
	saveDrill(t, d.repo, 2*time.Hour, "1 damaged file", "web1")
	d.readDrills(ctx)
	fams = scrape(t, d)
	want(t, fams, float64(drillT0.Add(time.Hour).Unix()), "syncd_repository_last_drill_timestamp_seconds")
	want(t, fams, 0, "syncd_repository_last_drill_success")
	want(t, fams, 3600, "syncd_repository_last_drill_recovery_point_seconds")
	want(t, fams, 2.5, "syncd_repository_last_drill_recovery_time_seconds")

	saveDrill(t, d.repo, 3*time.Hour, "", "web1")
	d.readDrills(ctx)
	fams = scrape(t, d)
	want(t, fams, 1, "syncd_repository_last_drill_success")
	want(t, fams, float64(drillT0.Add(3*time.Hour).Unix()), "syncd_repository_last_drill_timestamp_seconds")

	d.cfg.Repository.DrillEvery = 0
	if _, ok := value(scrape(t, d), "syncd_repository_drill_every_seconds"); ok {
		t.Error("syncd_repository_drill_every_seconds without drill_every")
	}
}

// The status page shows the last drill, and the last success when it
// failed.
func TestDrillPage(t *testing.T) {
	p := pageData{Now: drillT0, Status: Status{Node: "web1", Drill: &DrillStatus{
		Last:      &DrillInfo{Time: drillT0, Host: "ops", Error: "2 damaged <files>", AgeSeconds: 7380, Seconds: 42},
		LastOK:    &DrillInfo{Time: drillT0.Add(-48 * time.Hour), OK: true},
		ReadAt:    &drillT0,
		ReadError: "list drill records: refused",
	}}}
	var buf bytes.Buffer
	if err := pageTmpl.Execute(&buf, p); err != nil {
		t.Fatal(err)
	}
	for _, w := range []string{
		`<h2>Last restore drill</h2>`,
		`<tr><th>Time</th><td>2026-03-01 12:00:00 UTC</td></tr>`,
		`<tr><th>Ran on</th><td>ops</td></tr>`,
		`<td class="failed">failed</td>`,
		`<td class="error">2 damaged &lt;files&gt;</td>`,
		`<tr><th>Recovery point</th><td>2h 3m</td></tr>`,
		`<tr><th>Recovery time</th><td>42s</td></tr>`,
		`<tr><th>Last success</th><td>2026-02-27 12:00:00 UTC</td></tr>`,
		`<tr><th>Read error</th><td class="error">list drill records: refused</td></tr>`,
	} {
		if !strings.Contains(buf.String(), w) {
			t.Errorf("page lacks %s", w)
		}
	}
	p.Status.Drill = &DrillStatus{}
	buf.Reset()
	pageTmpl.Execute(&buf, p)
	if !strings.Contains(buf.String(), `<tbody id="drill">
<tr><td class="muted">not read yet</td></tr>`) {
		t.Errorf("page before the drill records were read:\n%s", buf.String())
	}
	p.Status.Drill = nil
	buf.Reset()
	pageTmpl.Execute(&buf, p)
	if strings.Contains(buf.String(), "restore drill") {
		t.Error("a drill section without a repository")
	}
	for f, w := range map[float64]string{0: "0s", 59.6: "1m 0s", 3599: "59m 59s", 86400*3 + 3600*5: "3d 5h"} {
		if got := p.Secs(f); got != w {
			t.Errorf("Secs(%v) = %q, want %q", f, got, w)
		}
	}
}

// The daemon's retention forgets snapshots, never drill records.
func TestForgetLeavesDrillRecords(t *testing.T) {
	ctx := context.Background()
	d, _ := retentionDaemon(t, config.Retention{KeepLast: 1})
	for day := 1; day <= 3; day++ {
		save(t, d.repo, "web1", day, nil, "/srv/www")
	}
	id := saveDrill(t, d.repo, 0, "", "web1")
	if removed, err := d.forget(ctx, drillT0); err != nil || len(removed) != 2 {
		t.Fatalf("forget: %d removed, %v; want 2", len(removed), err)
	}
	if ids, err := d.repo.DrillIDs(ctx); err != nil || len(ids) != 1 || ids[0] != id {
		t.Errorf("drill records after forget: %v, %v; want [%s]", ids, err, id.Short())
	}
}

// status --check names the last successful drill when all is well.
func TestCheckSummaryDrill(t *testing.T) {
	st := Status{Node: "web1", Drill: &DrillStatus{LastOK: &DrillInfo{Time: drillT0, OK: true}}}
	if code, line := CheckSummary(st); code != 0 || line != "OK web1: 0 folder(s) ok, 0 of 0 peer(s) connected, no snapshot yet, last drill ok at 2026-03-01T12:00:00Z" {
		t.Errorf("CheckSummary = %d %q", code, line)
	}
	st.Drill.LastOK = nil
	if _, line := CheckSummary(st); strings.Contains(line, "drill") {
		t.Errorf("CheckSummary without a drill: %q", line)
	}
}
