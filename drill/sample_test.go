package drill

import (
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/syncd/syncd/chunkstore"
)

// A restore that costs x per file and y per byte: the estimate from two
// samples of it must find its full time, where scaling by bytes or by
// files alone would be far off.
func TestEstimate(t *testing.T) {
	const x, y = 0.002, 1.0 / (300 << 20) // 2 ms a file, 300 MiB/s
	cost := func(files, bytes float64) Point { return Point{Files: files, Bytes: bytes, Secs: x*files + y*bytes} }
	const N, B = 26897, 1632275558
	want := x*N + y*B
	cases := []struct {
		name string
		a, b Point
		tol  float64
	}{
		{"small files and large ones", cost(250, 250*8<<10), cost(40, 45<<20), 1e-9},
		{"the other way round", cost(40, 45<<20), cost(250, 250*8<<10), 1e-9},
		{"all files in one part", cost(N, B), Point{}, 1e-9},
		// the same bytes per file in both: the costs cannot be told apart;
		// the mean of the two ratios is within the sample's spread
		{"inseparable", cost(250, 250*60<<10), cost(250, 250*61<<10), 0.5},
	}
	// Where bytes dominate, a small cost of a file in the fit is jitter:
	// the estimate scales by bytes and stays near, where x·files would
	// not (x of 0.1 ms, from 25 ms of jitter in part a, is 2.7 s more).
	const rate = 1.0 / (300 << 20)
	a, b := Point{Files: 250, Bytes: 40 << 20, Secs: 40.0 / 300 * 1.2}, Point{Files: 20, Bytes: 40 << 20, Secs: 40.0 / 300}
	full := rate * B
	if got := Estimate(a, b, N, B); math.Abs(got-full)/full > 0.25 {
		t.Errorf("Estimate with jitter in a bytes-bound sample = %.2f s, want %.2f s within 25%%", got, full)
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got := Estimate(c.a, c.b, N, B)
			if math.Abs(got-want)/want > c.tol {
				t.Errorf("Estimate = %.3f s, want %.3f s (within %.0f%%)", got, want, c.tol*100)
			}
		})
	}
	// What the fit is for: scaling the small-file part by bytes alone
	// overestimates the full restore many times over.
	small := cost(250, 250*8<<10)
	if byBytes := small.Secs / small.Bytes * B; byBytes < 2*want {
		t.Fatalf("test data: scaling by bytes gives %.1f s, want it far from %.1f s", byBytes, want)
	}
	// A fit with a negative cost falls back to one rate.
	if got := Estimate(Point{Files: 100, Bytes: 1 << 20, Secs: 1}, Point{Files: 10, Bytes: 100 << 20, Secs: 0.5}, 1000, 1<<30); got <= 0 || math.IsNaN(got) {
		t.Errorf("Estimate with a negative fitted cost = %v, want a positive time", got)
	}
}

// A restore whose planning costs p per tree entry, on one core, and whose
// reading and writing costs y per byte, on two cores: the parts
// of a sample plan very different trees per byte (part b's few large files
// lie in deep directories of many entries). EstimateWall must find the
// full restore from the planning's cost per entry; charged to the bytes,
// part b's planning overshoots.
func TestEstimateWallPlanning(t *testing.T) {
	const p, y = 10e-6, 1.0 / (300 << 20)
	const N, B, E = 25177, 1359625710, 27506 // files, bytes, tree entries
	part := func(files, bytes, entries float64) Point {
		plan := p * entries
		fetch := y * bytes
		return Point{Files: files, Bytes: bytes, Entries: entries, PlanCPU: plan, PlanSecs: plan,
			CPU: plan + fetch, Secs: plan + fetch/2}
	}
	a, b := part(240, 42<<20, 900), part(12, 27<<20, 4000)
	want := p*E + y*B/2
	if got := EstimateWall(a, b, N, B, E, 2); math.Abs(got-want)/want > 0.05 {
		t.Errorf("EstimateWall = %.2f s, want %.2f s within 5%%", got, want)
	}
	// the same parts without the planning told apart: the estimate of
	// before, which charged part b's trees to its bytes
	a.PlanCPU, a.PlanSecs, a.Entries, b.PlanCPU, b.PlanSecs, b.Entries = 0, 0, 0, 0, 0, 0
	if got := EstimateWall(a, b, N, B, E, 2); got < 1.25*want {
		t.Fatalf("test data: without the planning told apart the estimate is %.2f s; want it more than 25%% over %.2f s", got, want)
	}
	// no planning measured (a part without trees to read): fetch alone
	c, d := part(240, 42<<20, 0), part(12, 27<<20, 0)
	if got, want := EstimateWall(c, d, N, B, E, 2), y*B/2; math.Abs(got-want)/want > 0.05 {
		t.Errorf("EstimateWall without planning = %.2f s, want %.2f s", got, want)
	}
}

func TestPick(t *testing.T) {
	var files []File
	var total int64
	for i := range 1000 {
		size, pack := int64(1000+i), chunkstore.ID{byte(1 + i/40)} // 25 packs of small files
		if i%100 == 0 {
			size, pack = 5<<20, chunkstore.ID{} // ten large files, each in several packs
		}
		files = append(files, File{Path: fmt.Sprintf("d/f%d", i), Type: chunkstore.NodeFile, Size: size, Pack: pack})
		total += size
	}
	files = append(files, File{Path: "d", Type: chunkstore.NodeDir}, File{Path: "d/l", Type: chunkstore.NodeSymlink})
	size := map[string]int64{}
	packOf := map[string]chunkstore.ID{}
	perPack := map[chunkstore.ID]int{}
	for _, f := range files {
		size["/"+f.Path] = f.Size
		packOf["/"+f.Path] = f.Pack
		perPack[f.Pack]++
	}
	rng := rand.New(rand.NewPCG(1, 2))
	a, b := Pick(files, 100, rng)
	if len(a) < 30 || len(a) > 50 || len(b) == 0 || len(b) > 50 {
		t.Fatalf("Pick(100) = %d of whole packs + %d by size, want 30…50 + 1…50", len(a), len(b))
	}
	seen := map[string]bool{}
	var bBytes int64
	for _, p := range append(append([]string{}, a...), b...) {
		if seen[p] || size[p] == 0 || !strings.HasPrefix(p, "/d/f") {
			t.Fatalf("Pick: %s twice, or not a regular file", p)
		}
		seen[p] = true
	}
	for _, p := range b {
		bBytes += size[p]
		if packOf[p] != (chunkstore.ID{}) {
			t.Errorf("the by-size part holds %s, of one pack, while files of several packs exist", p)
		}
	}
	// the per-file part is whole packs (but the last): as a full restore reads them
	inA := map[chunkstore.ID]int{}
	for _, p := range a {
		inA[packOf[p]]++
	}
	partial := 0
	for p, k := range inA {
		if p == (chunkstore.ID{}) || k > perPack[p] {
			t.Fatalf("the per-file part holds a file of no single pack")
		}
		if k < perPack[p] {
			partial++
		}
	}
	if partial > 0 {
		t.Errorf("the per-file part holds %d packs partly, want whole packs", partial)
	}
	if limit := max(int64(float64(total)*budgetShare), minBudget); bBytes > limit {
		t.Errorf("the by-size part holds %d bytes, more than its budget %d", bBytes, limit)
	}
	a, b = Pick(files, 5000, rng)
	if len(a) != 1000 || len(b) != 0 {
		t.Errorf("Pick(more than the files) = %d + %d, want all 1000 + 0", len(a), len(b))
	}
}

// A scratch directory is removed by CleanStale once its drill is gone,
// and only then; restored directories without write permission are no
// obstacle.
func TestCleanStale(t *testing.T) {
	parent := t.TempDir()
	mine, err := MakeScratch(parent)
	if err != nil {
		t.Fatal(err)
	}
	dead, err := MakeScratch(parent)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("true")
	if err := cmd.Run(); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(dead, markerName), []byte(fmt.Sprintf("%d 1\n", cmd.Process.Pid)), 0o600)
	os.MkdirAll(filepath.Join(dead, "0", "ro"), 0o700)
	os.WriteFile(filepath.Join(dead, "0", "ro", "f"), []byte("x"), 0o600)
	os.Chmod(filepath.Join(dead, "0", "ro"), 0o500)
	// pid reused: the pid runs, but started at another time
	reused, _ := MakeScratch(parent)
	os.WriteFile(filepath.Join(reused, markerName), []byte(fmt.Sprintf("%d 1\n", os.Getpid())), 0o600)
	fresh := filepath.Join(parent, ScratchPrefix+"nomarker")
	os.Mkdir(fresh, 0o700)
	other := filepath.Join(parent, "not-a-drill")
	os.Mkdir(other, 0o700)

	removed, err := CleanStale(parent, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(removed, " ") != strings.Join(sorted(dead, reused), " ") {
		t.Errorf("CleanStale removed %v, want %v", removed, sorted(dead, reused))
	}
	for _, d := range []string{mine, fresh, other} {
		if _, err := os.Stat(d); err != nil {
			t.Errorf("%s: %v, want it kept", d, err)
		}
	}
	if removed, _ := CleanStale(parent, time.Now().Add(2*time.Minute)); len(removed) != 1 || removed[0] != fresh {
		t.Errorf("a minute on, CleanStale removed %v, want the one without a marker", removed)
	}
}

func sorted(a, b string) []string {
	if a > b {
		return []string{b, a}
	}
	return []string{a, b}
}
