package retention_test

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/syncd/syncd/chunkstore"
	"github.com/syncd/syncd/retention"
)

// resticBin finds restic v0.18.1: in SYNCD_TEST_BIN, then ../bin, then
// PATH. Missing under CI=true is a failure, else a skip.
func resticBin(t *testing.T) string {
	t.Helper()
	for _, dir := range []string{os.Getenv("SYNCD_TEST_BIN"), "../bin"} {
		if dir == "" {
			continue
		}
		if p, err := filepath.Abs(filepath.Join(dir, "restic")); err == nil {
			if _, err := os.Stat(p); err == nil {
				return p
			}
		}
	}
	if p, err := exec.LookPath("restic"); err == nil {
		return p
	}
	if os.Getenv("CI") == "true" {
		t.Fatal("restic is required under CI; run make tools")
	}
	t.Skip("restic not installed (not CI); run make tools (installs restic v0.18.1 into ./bin)")
	return ""
}

// histSnap is one snapshot of the parity history.
type histSnap struct {
	t    time.Time
	host string
	dirs []int // indexes into the test's directories
	tags []string
}

// parityHistory is a deterministic history of about 100 snapshots in
// Europe/Berlin: three hosts, two directories (some snapshots of both),
// tags, both daylight saving changes, ISO weeks across new year, and a
// dense recent stretch.
func parityHistory(t *testing.T) []histSnap {
	berlin := mustLoc(t, "Europe/Berlin")
	at := func(y int, m time.Month, d, h, min int) time.Time { return time.Date(y, m, d, h, min, 0, 0, berlin) }
	var h []histSnap
	add := func(tm time.Time, host string, dirs ...int) {
		var tags []string
		n := len(h)
		if n%5 == 0 {
			tags = append(tags, "important")
		}
		if n%3 == 0 {
			tags = append(tags, "daily")
		}
		if n%7 == 0 {
			tags = append(tags, "manual")
		}
		h = append(h, histSnap{tm, host, dirs, tags})
	}
	for tm := at(2024, 1, 3, 10, 15); tm.Before(at(2026, 2, 20, 0, 0)); tm = tm.AddDate(0, 0, 23) {
		add(tm, "alpha", 0)
	}
	// spring forward: 02:00 CET becomes 03:00 CEST on 2026-03-29
	for _, hm := range [][2]int{{0, 30}, {1, 30}, {1, 59}, {3, 0}, {3, 30}, {4, 10}} {
		add(at(2026, 3, 29, hm[0], hm[1]), "alpha", 0)
	}
	add(at(2026, 3, 28, 22, 0), "alpha", 0)
	add(at(2026, 3, 30, 9, 0), "alpha", 0)
	// fall back: 03:00 CEST becomes 02:00 CET on 2025-10-26; both 02:xx
	// hours are one hourly bucket
	cest, cet := time.FixedZone("CEST", 2*3600), time.FixedZone("CET", 3600)
	for _, tm := range []time.Time{
		at(2025, 10, 26, 1, 30),
		time.Date(2025, 10, 26, 2, 10, 0, 0, cest).In(berlin),
		time.Date(2025, 10, 26, 2, 40, 0, 0, cest).In(berlin),
		time.Date(2025, 10, 26, 2, 20, 0, 0, cet).In(berlin),
		time.Date(2025, 10, 26, 2, 50, 0, 0, cet).In(berlin),
		at(2025, 10, 26, 3, 5),
	} {
		add(tm, "alpha", 0)
	}
	// ISO weeks across new year: 2024-12-30 is in 2025-W01, 2025-12-29 in 2026-W01
	for _, tm := range []time.Time{at(2024, 12, 29, 23, 30), at(2024, 12, 30, 0, 30), at(2025, 12, 28, 12, 0),
		at(2025, 12, 29, 12, 0), at(2025, 12, 31, 23, 59), at(2026, 1, 1, 0, 1), at(2026, 1, 4, 18, 0)} {
		add(tm, "alpha", 0)
	}
	for tm := at(2026, 11, 20, 1, 0); tm.Before(at(2026, 11, 24, 0, 0)); tm = tm.Add(7 * time.Hour) {
		add(tm, "alpha", 0)
	}
	for tm := at(2025, 6, 10, 23, 45); tm.Before(at(2026, 11, 1, 0, 0)); tm = tm.AddDate(0, 1, 0) {
		add(tm, "beta", 0)
	}
	for i := range 5 {
		add(at(2026, 6, 1+3*i, 6, 0), "alpha", 1)
	}
	// both directories in one snapshot: --path www matches these too
	for i := range 8 {
		add(at(2026, 9, 2+4*i, 20, 15), "gamma", 0, 1)
	}
	add(at(2026, 10, 7, 8, 0), "gamma", 1)
	return h
}

func mustLoc(t *testing.T, name string) *time.Location {
	t.Helper()
	loc, err := time.LoadLocation(name)
	if err != nil {
		t.Fatalf("time zone %s: %v", name, err)
	}
	return loc
}

// resticEnv is the environment of every restic run: the repository, its
// password, a cache in the temp dir, and tz as the local time zone.
func resticEnv(base, tz string) []string {
	return append(os.Environ(), "RESTIC_REPOSITORY="+filepath.Join(base, "repo"), "RESTIC_PASSWORD=parity",
		"RESTIC_CACHE_DIR="+filepath.Join(base, "cache"), "TZ="+tz)
}

func runRestic(bin string, env []string, args ...string) ([]byte, error) {
	cmd := exec.Command(bin, args...)
	cmd.Env = env
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("restic %s: %v: %s", strings.Join(args, " "), err, stderr.String())
	}
	return out, nil
}

// fixedTZ names a zoneinfo zone with t's UTC offset (whole hours), so that
// restic backup --time records exactly t's offset, even for the second
// 02:xx hour of the autumn change.
func fixedTZ(t time.Time) string {
	_, off := t.Zone()
	if off == 0 {
		return "UTC"
	}
	return fmt.Sprintf("Etc/GMT%+d", -off/3600)
}

// resticGroup is one group of `restic forget --json`.
type resticGroup struct {
	Host    string           `json:"host"`
	Paths   []string         `json:"paths"`
	Tags    []string         `json:"tags"`
	Keep    []resticSnapshot `json:"keep"`
	Remove  []resticSnapshot `json:"remove"`
	Reasons []struct {
		Snapshot resticSnapshot `json:"snapshot"`
		Matches  []string       `json:"matches"`
	} `json:"reasons"`
}

type resticSnapshot struct {
	Time     time.Time `json:"time"`
	Hostname string    `json:"hostname"`
}

// TestResticParity writes the same history into a restic repository (with
// restic backup --time) and runs the same forget flags through restic
// forget --dry-run --json and Plan: every count rule, keep-within and
// keep-within-<unit>, keep-tag, --group-by (host, paths, tags, mixed,
// empty) and the --host, --tag and --path filters. The groups, the kept
// snapshots and why, must be the same.
func TestResticParity(t *testing.T) {
	bin := resticBin(t)
	base := t.TempDir()
	dirs := []string{filepath.Join(base, "www"), filepath.Join(base, "uploads")}
	for _, d := range dirs {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(d, "f"), []byte(d), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := runRestic(bin, resticEnv(base, "UTC"), "init", "-q"); err != nil {
		t.Fatal(err)
	}
	hist := parityHistory(t)
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		first error
		work  = make(chan histSnap)
	)
	for range 8 { // restic backup mostly waits (on its lock check); locks are shared
		wg.Go(func() {
			for h := range work {
				args := []string{"backup", "-q", "--time", h.t.Format(time.DateTime), "--host", h.host}
				for _, tag := range h.tags {
					args = append(args, "--tag", tag)
				}
				for _, d := range h.dirs {
					args = append(args, dirs[d])
				}
				_, err := runRestic(bin, resticEnv(base, fixedTZ(h.t)), args...)
				mu.Lock()
				if err != nil && first == nil {
					first = err
				}
				mu.Unlock()
			}
		})
	}
	for _, h := range hist {
		work <- h
	}
	close(work)
	wg.Wait()
	if first != nil {
		t.Fatal(first)
	}

	var snaps []*chunkstore.Snapshot
	for _, h := range hist {
		var paths []string
		for _, d := range h.dirs {
			paths = append(paths, dirs[d])
		}
		snaps = append(snaps, &chunkstore.Snapshot{Time: h.t, Host: h.host, Paths: paths, Tags: h.tags})
	}
	www, uploads := dirs[0], dirs[1]
	for _, args := range [][]string{
		{"--keep-last", "5"},
		{"--keep-hourly", "12"},
		{"--keep-hourly", "unlimited"},
		{"--keep-daily", "7", "--keep-weekly", "5", "--keep-monthly", "6", "--keep-yearly", "3"},
		{"--keep-daily", "60"},
		{"--keep-weekly", "unlimited", "--keep-yearly", "10"},
		{"--keep-within", "1m15d"},
		{"--keep-within", "1y2m3d4h", "--keep-last", "2"},
		{"--keep-tag", "important", "--keep-tag", "daily,manual", "--keep-hourly", "3"},
		// keep-within-<unit>, each and together
		{"--keep-within-hourly", "3d"},
		{"--keep-within-daily", "1m15d"},
		{"--keep-within-weekly", "6m"},
		{"--keep-within-monthly", "1y6m"},
		{"--keep-within-yearly", "5y"},
		{"--keep-within-hourly", "1d", "--keep-within-daily", "7d", "--keep-within-weekly", "1m", "--keep-within-monthly", "1y",
			"--keep-within-yearly", "9999y", "--keep-within", "2h", "--keep-last", "1"},
		{"--keep-within-daily", "2m", "--keep-daily", "3", "--keep-tag", "manual"},
		// --group-by
		{"--group-by", "host", "--keep-daily", "5", "--keep-within-weekly", "2m"},
		{"--group-by", "paths", "--keep-last", "3", "--keep-monthly", "4"},
		{"--group-by", "tags", "--keep-last", "2", "--keep-within-daily", "10d"},
		{"--group-by", "host,tags", "--keep-weekly", "3"},
		{"--group-by", "host,paths,tags", "--keep-last", "1"},
		{"--group-by", "", "--keep-daily", "10", "--keep-yearly", "unlimited"},
		// --tag, --path and --host filters
		{"--tag", "important", "--keep-last", "3"},
		{"--tag", "daily,manual", "--tag", "important", "--keep-weekly", "4"},
		{"--tag", "", "--keep-monthly", "3"}, // "": the snapshots without tags
		{"--path", www, "--keep-daily", "4"},
		{"--path", www, "--path", uploads, "--keep-last", "2"},
		{"--host", "beta", "--host", "gamma", "--path", uploads, "--keep-within", "15d"},
		{"--tag", "daily", "--group-by", "tags", "--keep-within-monthly", "1y"},
		{"--path", uploads, "--group-by", "", "--keep-weekly", "4"},
	} {
		name := strings.ReplaceAll(strings.Join(args, " "), base+string(filepath.Separator), "")
		t.Run(name, func(t *testing.T) {
			p, f, by, err := forgetFromFlags(args)
			if err != nil {
				t.Fatal(err)
			}
			out, err := runRestic(bin, resticEnv(base, "Europe/Berlin"), append([]string{"forget", "--dry-run", "--json"}, args...)...)
			if err != nil {
				t.Fatal(err)
			}
			var rgs []resticGroup
			if err := json.Unmarshal(out, &rgs); err != nil {
				t.Fatalf("restic output: %v\n%s", err, out)
			}
			want := map[string][]string{}
			wantKept, wantAll := 0, 0
			for _, g := range rgs {
				k := groupName(g.Host, g.Paths, g.Tags)
				for _, r := range g.Reasons {
					want[k] = append(want[k], keptLine(r.Snapshot.Time, r.Matches))
				}
				if len(g.Reasons) != len(g.Keep) {
					t.Fatalf("restic group %s: %d kept, %d reasons", k, len(g.Keep), len(g.Reasons))
				}
				wantKept += len(g.Keep)
				wantAll += len(g.Keep) + len(g.Remove)
			}
			groups, err := retention.Plan(snaps, p, f, by, false)
			if err != nil {
				t.Fatal(err)
			}
			got := map[string][]string{}
			kept, all := 0, 0
			for _, g := range groups {
				k := groupName(g.Host, g.Paths, g.Tags)
				for i, sn := range g.Keep {
					got[k] = append(got[k], keptLine(sn.Time, g.Reasons[i].Matches))
				}
				kept += len(g.Keep)
				all += len(g.Keep) + len(g.Drop)
			}
			if len(got) != len(want) {
				t.Errorf("%d groups, restic %d", len(got), len(want))
			}
			for k := range want {
				if !slices.Equal(got[k], want[k]) {
					t.Errorf("group %s: kept\n%s\nrestic kept\n%s", k, strings.Join(got[k], "\n"), strings.Join(want[k], "\n"))
				}
			}
			if kept != wantKept || all != wantAll || kept == 0 || kept == all {
				t.Errorf("kept %d of %d, restic %d of %d; want the same, and some kept and some not", kept, all, wantKept, wantAll)
			}
			t.Logf("%s: %d groups, %d of %d kept, as restic", name, len(groups), kept, all)
		})
	}
}

// forgetFromFlags reads restic forget's flags: the policy, the --host,
// --tag and --path filters, and --group-by (restic's default host,paths
// when absent).
func forgetFromFlags(args []string) (retention.Policy, retention.Filter, retention.GroupBy, error) {
	p, err := policyFromFlags(args)
	if err != nil {
		return p, retention.Filter{}, retention.GroupBy{}, err
	}
	var f retention.Filter
	by := retention.DefaultGroupBy
	for i := 0; i+1 < len(args); i += 2 {
		switch v := args[i+1]; args[i] {
		case "--host":
			f.Hosts = append(f.Hosts, v)
		case "--tag":
			f.Tags = append(f.Tags, strings.Split(v, ","))
		case "--path":
			f.Paths = append(f.Paths, v)
		case "--group-by":
			if by, err = retention.ParseGroupBy(v); err != nil {
				return p, f, by, err
			}
		}
	}
	return p, f, by, nil
}

// groupName is a group's key as compared: host, paths and tags, sorted.
func groupName(host string, paths, tags []string) string {
	paths, tags = slices.Clone(paths), slices.Clone(tags)
	slices.Sort(paths)
	slices.Sort(tags)
	return fmt.Sprintf("host %q paths %q tags %q", host, paths, tags)
}

// keptLine is one kept snapshot as compared: its instant and its reasons.
func keptLine(t time.Time, matches []string) string {
	return t.UTC().Format(time.RFC3339) + " " + strings.Join(matches, "; ")
}
