package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/syncd/syncd/chunkstore"
)

// drillOut is the part of `restore drill --json` the tests read.
type drillOut struct {
	OK        bool   `json:"ok"`
	Error     string `json:"error"`
	Record    string `json:"record"`
	Sample    int    `json:"sample"`
	Snapshots []struct {
		ID           string   `json:"id"`
		Host         string   `json:"host"`
		Paths        []string `json:"paths"`
		Time         string   `json:"time"`
		AgeSeconds   float64  `json:"age_seconds"`
		Files        int64    `json:"files"`
		Bytes        int64    `json:"bytes"`
		Seconds      float64  `json:"seconds"`
		PerSecond    float64  `json:"bytes_per_second"`
		EstSeconds   float64  `json:"estimated_seconds"`
		TotalFiles   int64    `json:"snapshot_files"`
		DamagedFiles int64    `json:"damaged_files"`
		Damaged      []struct {
			Pack  string   `json:"pack"`
			Paths []string `json:"paths"`
		} `json:"damaged"`
		Drift []struct {
			Path   string `json:"path"`
			Change string `json:"change"`
		} `json:"drift"`
	} `json:"snapshots"`
}

func decodeDrill(t *testing.T, res result) drillOut {
	t.Helper()
	var out drillOut
	if err := json.Unmarshal([]byte(res.stdout), &out); err != nil {
		t.Fatalf("drill --json: %v\n%s", err, res)
	}
	return out
}

// drill runs restore drill on r with the data identity and TMPDIR=tmp.
func (r *repo) drill(t *testing.T, tmp string, args ...string) result {
	t.Helper()
	return run(t, []string{"TMPDIR=" + tmp}, "restore", append([]string{"drill"}, r.flags(append([]string{"--identity", r.dataKey}, args...)...)...)...)
}

// drillRecords reads every drill record of r, oldest first.
func drillRecords(t *testing.T, r *repo) []*chunkstore.Drill {
	t.Helper()
	ctx := context.Background()
	repo := openLocal(t, r)
	defer repo.Close()
	ids, err := repo.DrillIDs(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var out []*chunkstore.Drill
	for _, id := range ids {
		d, err := repo.LoadDrill(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, d)
	}
	slices.SortFunc(out, func(a, b *chunkstore.Drill) int { return a.Time.Compare(b.Time) })
	return out
}

func entries(t *testing.T, dir string) []string {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	var out []string
	for _, e := range ents {
		out = append(out, e.Name())
	}
	return out
}

// drillSource writes n files of a few KB under a new source directory.
func drillSource(t *testing.T, n int) string {
	t.Helper()
	src := filepath.Join(t.TempDir(), "src")
	for i := range n {
		p := filepath.Join(src, fmt.Sprintf("d%d", i%3), fmt.Sprintf("f%d", i))
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, []byte(strings.Repeat(fmt.Sprintf("file %d ", i), 300+i)), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return src
}

// A full drill restores and verifies every file, reports it in JSON and
// in the metrics file, records it, and leaves nothing behind; --max-age
// exceeded fails it and is recorded; --no-record writes no record.
func TestDrill(t *testing.T) {
	r := newRepo(t)
	src := drillSource(t, 30)
	id := r.snapshot(t, src)
	tmp := t.TempDir()
	metrics := filepath.Join(t.TempDir(), "drill.prom")
	res := r.drill(t, tmp, "--json", "--metrics-file", metrics)
	if res.code != 0 {
		t.Fatalf("drill: %s", res)
	}
	out := decodeDrill(t, res)
	if !out.OK || len(out.Snapshots) != 1 || out.Record == "" {
		t.Fatalf("drill: want ok, one snapshot and a record: %s", res)
	}
	s := out.Snapshots[0]
	if !strings.HasPrefix(s.ID, id) || s.Host != "test" || len(s.Paths) != 1 || s.Paths[0] != src ||
		s.Files != 30 || s.TotalFiles != 30 || s.Bytes == 0 || s.Seconds <= 0 || s.PerSecond <= 0 ||
		s.AgeSeconds <= 0 || s.DamagedFiles != 0 || len(s.Damaged) != 0 || s.Drift != nil {
		t.Errorf("drill report of snapshot %s: %+v", id, s)
	}
	if left := entries(t, tmp); len(left) != 0 {
		t.Errorf("drill left %v in TMPDIR", left)
	}
	m, err := os.ReadFile(metrics)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"syncd_restore_drill_ok 1\n",
		fmt.Sprintf("syncd_restore_drill_restore_files{host=\"test\",snapshot=\"%s\"} 30\n", id),
		fmt.Sprintf("syncd_restore_drill_restore_bytes{host=\"test\",snapshot=\"%s\"} %d\n", id, s.Bytes),
		"# TYPE syncd_restore_drill_snapshot_age_seconds gauge\n"} {
		if !strings.Contains(string(m), want) {
			t.Errorf("metrics file lacks %q:\n%s", want, m)
		}
	}
	if left := entries(t, filepath.Dir(metrics)); len(left) != 1 {
		t.Errorf("metrics directory holds %v, want only the metrics file", left)
	}
	recs := drillRecords(t, r)
	if len(recs) != 1 || !recs[0].OK || recs[0].Program != "restore drill" || recs[0].Host == "" ||
		len(recs[0].Snapshots) != 1 || recs[0].Snapshots[0].Files != 30 || recs[0].Snapshots[0].Bytes != s.Bytes ||
		!strings.HasPrefix(recs[0].Snapshots[0].ID.String(), id) || recs[0].Snapshots[0].Seconds <= 0 {
		t.Errorf("drill record: %+v", recs)
	}
	if left := entries(t, filepath.Join(r.url, "locks")); len(left) != 0 {
		t.Errorf("drill left locks %v", left)
	}

	res = r.drill(t, tmp, "--max-age", "1ms")
	if res.code != 1 || !strings.Contains(res.stderr, "--max-age") || !strings.Contains(res.stdout, "drill FAILED") {
		t.Errorf("drill over --max-age: want exit 1 naming --max-age: %s", res)
	}
	recs = drillRecords(t, r)
	if len(recs) != 2 || recs[1].OK || !strings.Contains(recs[1].Error, "max-age") || recs[1].Snapshots[0].Files != 30 {
		t.Errorf("record of the drill over --max-age: want OK=false with the error and what it measured: %+v", recs[len(recs)-1])
	}
	res = r.drill(t, tmp, "--no-record", "--max-age", "30d")
	if res.code != 0 || !strings.Contains(res.stdout, "drill OK") || len(drillRecords(t, r)) != 2 {
		t.Errorf("drill --no-record: want exit 0 and no new record: %s", res)
	}
}

// A drill with an identity that opens nothing in the repository fails
// with one line before it restores anything, and writes nothing.
func TestDrillWrongIdentity(t *testing.T) {
	r := newRepo(t)
	r.snapshot(t, drillSource(t, 3))
	other := filepath.Join(t.TempDir(), "other.key")
	ok(t, nil, "syncd", "keygen", other)
	tmp := t.TempDir()
	for _, args := range [][]string{
		{"drill", "--repo", r.url, "--index-key", r.indexKey, "--identity", other},
		{"drill", "--repo", r.url, "--identity", other},
	} {
		res := run(t, []string{"TMPDIR=" + tmp}, "restore", args...)
		if res.code != 1 || strings.Count(res.stderr, "\n") != 1 || !strings.Contains(res.stderr, "identity") ||
			strings.Contains(res.stderr, "drilling") {
			t.Errorf("drill with another identity (%v): want exit 1 and one line about the identity: %s", args[3:], res)
		}
	}
	if left := entries(t, tmp); len(left) != 0 {
		t.Errorf("drill left %v in TMPDIR", left)
	}
	if recs := drillRecords(t, r); len(recs) != 0 {
		t.Errorf("drill with the wrong identity wrote records: %+v", recs)
	}
	// a drill that cannot run is a failed drill to the metrics collector
	metrics := filepath.Join(t.TempDir(), "drill.prom")
	os.WriteFile(metrics, []byte("syncd_restore_drill_ok 1\n"), 0o644)
	run(t, nil, "restore", "drill", "--repo", r.url, "--identity", other, "--metrics-file", metrics)
	if m, _ := os.ReadFile(metrics); !strings.Contains(string(m), "syncd_restore_drill_ok 0\n") {
		t.Errorf("metrics file after a drill that could not run:\n%s", m)
	}
	if left := entries(t, filepath.Join(r.url, "locks")); len(left) != 0 {
		t.Errorf("drill left locks %v", left)
	}
}

// A drill over damaged packs names each pack and every path it affects,
// verifies the other files, exits with 3 and records the damage.
func TestDrillDamagedPack(t *testing.T) {
	r, src, packsA := twoRuns(t)
	var names []string
	for _, p := range packsA {
		flipByte(t, p)
		names = append(names, "data/"+filepath.Base(p))
	}
	slices.Sort(names)
	res := r.drill(t, t.TempDir())
	if res.code != 3 || !strings.Contains(res.stdout, filepath.Join(src, "a/one")) || !strings.Contains(res.stdout, filepath.Join(src, "a/two")) ||
		strings.Contains(res.stdout, "b/three") || !strings.Contains(res.stdout, "restored 2 of 4 files") {
		t.Errorf("drill over a damaged pack: want exit 3, a/one and a/two named, b's 2 files restored: %s", res)
	}
	for _, name := range names {
		if !strings.Contains(res.stdout, "DAMAGED "+name) {
			t.Errorf("drill over a damaged pack: %s not named: %s", name, res)
		}
	}
	res = r.drill(t, t.TempDir(), "--json")
	out := decodeDrill(t, res)
	if out.OK || len(out.Snapshots) != 1 {
		t.Fatalf("drill --json over a damaged pack: %s", res)
	}
	s := out.Snapshots[0]
	var packs, paths []string
	for _, d := range s.Damaged {
		packs = append(packs, d.Pack)
		paths = append(paths, d.Paths...)
	}
	slices.Sort(packs)
	slices.Sort(paths)
	if s.Files != 2 || s.DamagedFiles != 2 || !slices.Equal(packs, names) ||
		!slices.Equal(paths, []string{filepath.Join(src, "a/one"), filepath.Join(src, "a/two")}) {
		t.Errorf("drill --json over a damaged pack: want 2 files restored, %v affecting a/one and a/two: %+v", names, s)
	}
	recs := drillRecords(t, r)
	if len(recs) != 2 || recs[1].OK || recs[1].Snapshots[0].DamagedFiles != 2 || recs[1].Snapshots[0].Files != 2 ||
		!strings.Contains(recs[1].Error, names[0]) {
		t.Fatalf("drill record over a damaged pack: want OK=false naming %v: %+v", names, recs[len(recs)-1])
	}
	got := slices.Clone(recs[1].Snapshots[0].DamagedPacks)
	slices.Sort(got)
	if !slices.Equal(got, names) {
		t.Errorf("drill record: damaged packs %v, want %v", got, names)
	}
}

// A drill whose target disk fills stops with the error and removes what
// it wrote.
func TestDrillDiskFull(t *testing.T) {
	requireRoot(t, "TestDrillDiskFull")
	r := newRepo(t)
	src := drillSource(t, 5)
	randomFile(t, filepath.Join(src, "big.bin"), 3<<20, 1)
	r.snapshot(t, src)
	disk := t.TempDir()
	mount(t, "-t", "tmpfs", "-o", "size=1m", "tmpfs", disk)
	t.Cleanup(func() {
		if out, err := exec.Command("umount", disk).CombinedOutput(); err != nil {
			t.Errorf("umount %s: %v: %s", disk, err, out)
		}
	})
	res := r.drill(t, t.TempDir(), "--target", filepath.Join(disk, "drill"))
	if res.code != 1 || !strings.Contains(res.stderr, "no space left on device") || strings.Count(res.stderr, "big.bin") > 1 {
		t.Errorf("drill onto a full disk: want exit 1 with the error once: %s", res)
	}
	if left := entries(t, disk); len(left) != 0 {
		t.Errorf("drill onto a full disk left %v", left)
	}
	if recs := drillRecords(t, r); len(recs) != 1 || recs[0].OK || !strings.Contains(recs[0].Error, "no space left") {
		t.Errorf("record of a drill onto a full disk: want OK=false with the error: %+v", recs)
	}
}

// A drill killed with SIGKILL leaves its scratch directory and its lock:
// the next drill removes the directory, a prune the stale lock, and the
// repository verifies clean throughout.
func TestDrillKilled(t *testing.T) {
	r := newRepo(t)
	src := drillSource(t, 20)
	for i := range 6 {
		randomFile(t, filepath.Join(src, fmt.Sprintf("big%d.bin", i)), 8<<20, uint64(i))
	}
	r.snapshot(t, src)
	tmp := t.TempDir()
	var killed bool
	for attempt := 0; attempt < 5 && !killed; attempt++ {
		cmd := exec.Command(filepath.Join(binDir, "restore"), append([]string{"drill"}, r.flags("--identity", r.dataKey)...)...)
		cmd.Env = append(os.Environ(), "TMPDIR="+tmp, "GOMAXPROCS=1")
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		// once a restored file appears the drill is under way
		waitFor(30*time.Second, func() bool {
			m, _ := filepath.Glob(filepath.Join(tmp, "syncd-drill-*", "0", "0", src, "*"))
			return len(m) > 0 || cmd.ProcessState != nil
		})
		cmd.Process.Signal(syscall.SIGKILL)
		err := cmd.Wait()
		ws, _ := cmd.ProcessState.Sys().(syscall.WaitStatus)
		killed = err != nil && ws.Signaled()
	}
	if !killed {
		t.Fatalf("the drill finished each time before it could be killed")
	}
	if left := entries(t, tmp); len(left) != 1 || !strings.HasPrefix(left[0], "syncd-drill-") {
		t.Fatalf("killed drill: want its scratch directory left in TMPDIR, have %v", left)
	}
	if left := entries(t, filepath.Join(r.url, "locks")); len(left) != 1 {
		t.Fatalf("killed drill: want its lock left, have %v", left)
	}
	ok(t, nil, "restore", append([]string{"verify", "--read-data"}, r.flags("--identity", r.dataKey)...)...)

	res := r.drill(t, tmp)
	if res.code != 0 || !strings.Contains(res.stderr, "left by a drill that no longer runs") {
		t.Errorf("drill after a killed one: want exit 0 and the stale scratch directory removed: %s", res)
	}
	if left := entries(t, tmp); len(left) != 0 {
		t.Errorf("after the next drill TMPDIR holds %v", left)
	}
	res = run(t, nil, "restore", append([]string{"prune"}, r.flags("--identity", r.dataKey)...)...)
	if res.code != 0 || !strings.Contains(res.stderr, "removing stale lock") {
		t.Errorf("prune after a killed drill: want the stale lock removed: %s", res)
	}
	if left := entries(t, filepath.Join(r.url, "locks")); len(left) != 0 {
		t.Errorf("locks left after the prune: %v", left)
	}
	ok(t, nil, "restore", append([]string{"verify", "--read-data"}, r.flags("--identity", r.dataKey)...)...)
}

// --sample larger than the snapshot restores every file once; with
// --include the included files come on top of the sample.
func TestDrillSample(t *testing.T) {
	r := newRepo(t)
	src := drillSource(t, 12)
	r.snapshot(t, src)
	out := decodeDrill(t, r.drill(t, t.TempDir(), "--json", "--sample", "50"))
	if s := out.Snapshots; !out.OK || out.Sample != 50 || s[0].Files != 12 || s[0].TotalFiles != 12 || s[0].EstSeconds <= 0 {
		t.Errorf("drill --sample larger than the snapshot: want all 12 files and an estimate: %+v", out)
	}
	out = decodeDrill(t, r.drill(t, t.TempDir(), "--json", "--sample", "2", "--include", filepath.Join(src, "d0")))
	if s := out.Snapshots; !out.OK || s[0].Files < 4+1 || s[0].Files > 4+2 || s[0].EstSeconds <= 0 {
		t.Errorf("drill --sample 2 --include d0 (4 files): want 5 or 6 files (a sampled file may be in d0) and an estimate: %+v", out)
	}
	res := r.drill(t, t.TempDir(), "--sample", "-1")
	if res.code != 2 {
		t.Errorf("--sample -1: want exit 2: %s", res)
	}
}

// A --target that holds anything is refused before anything is written.
func TestDrillTargetNotEmpty(t *testing.T) {
	r := newRepo(t)
	r.snapshot(t, drillSource(t, 3))
	target := t.TempDir()
	os.WriteFile(filepath.Join(target, "keep"), []byte("mine"), 0o600)
	before := dirState(t, r.url)
	res := r.drill(t, t.TempDir(), "--target", target)
	if res.code != 2 || !strings.Contains(res.stderr, target) || !strings.Contains(res.stderr, "not empty") ||
		strings.Count(res.stderr, "\n") != 1 {
		t.Errorf("drill into a non-empty target: want exit 2 with one line naming it: %s", res)
	}
	if left := entries(t, target); !slices.Equal(left, []string{"keep"}) {
		t.Errorf("target now holds %v", left)
	}
	sameState(t, "drill into a non-empty target", before, dirState(t, r.url))
	// an empty one is used, and left empty
	empty := t.TempDir()
	if res := r.drill(t, t.TempDir(), "--target", empty); res.code != 0 || len(entries(t, empty)) != 0 {
		t.Errorf("drill into an empty target: want exit 0 and the target left empty: %s; holds %v", res, entries(t, empty))
	}
}

// --compare lists what changed in the live tree since the snapshot: a
// changed file, an added one and a removed one.
func TestDrillCompare(t *testing.T) {
	r := newRepo(t)
	src := drillSource(t, 6)
	r.snapshot(t, src)
	os.WriteFile(filepath.Join(src, "d0", "f0"), []byte("changed"), 0o644)
	os.WriteFile(filepath.Join(src, "d1", "f1"), []byte(strings.Repeat("FILE 1 ", 301)), 0o644) // same size, other bytes
	os.WriteFile(filepath.Join(src, "d2", "new"), []byte("added"), 0o644)
	os.Remove(filepath.Join(src, "d2", "f2"))
	res := r.drill(t, t.TempDir(), "--json", "--compare", "/")
	out := decodeDrill(t, res)
	if !out.OK || res.code != 0 {
		t.Fatalf("drill --compare: drift is no failure: %s", res)
	}
	var got []string
	for _, d := range out.Snapshots[0].Drift {
		got = append(got, d.Change+" "+d.Path)
	}
	want := []string{"changed " + filepath.Join(src, "d0/f0"), "changed " + filepath.Join(src, "d1/f1"),
		"removed " + filepath.Join(src, "d2/f2"), "added " + filepath.Join(src, "d2/new")}
	slices.Sort(got)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Errorf("drift = %q, want %q", got, want)
	}
	res = r.drill(t, t.TempDir(), "--compare", "/")
	if !strings.Contains(res.stdout, "drift since the snapshot: 4 file(s)") {
		t.Errorf("drill --compare text: want the drift count: %s", res)
	}
}
