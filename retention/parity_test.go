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
	dir  int // index into the test's directories
	tags []string
}

// parityHistory is a deterministic history of about 90 snapshots in
// Europe/Berlin: two hosts, two directories, tags, both daylight saving
// changes, ISO weeks across new year, and a dense recent stretch.
func parityHistory(t *testing.T) []histSnap {
	berlin := mustLoc(t, "Europe/Berlin")
	at := func(y int, m time.Month, d, h, min int) time.Time { return time.Date(y, m, d, h, min, 0, 0, berlin) }
	var h []histSnap
	add := func(tm time.Time, host string, dir int) {
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
		h = append(h, histSnap{tm, host, dir, tags})
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
// restic backup --time) and applies several policies with both restic
// forget --dry-run --json and Apply: the kept snapshots, and why, must be
// the same in every group.
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
				_, err := runRestic(bin, resticEnv(base, fixedTZ(h.t)), append(args, dirs[h.dir])...)
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
		snaps = append(snaps, &chunkstore.Snapshot{Time: h.t, Host: h.host, Paths: []string{dirs[h.dir]}, Tags: h.tags})
	}
	for _, tc := range []struct {
		args []string
		p    retention.Policy
	}{
		{[]string{"--keep-last", "5"}, retention.Policy{Last: 5}},
		{[]string{"--keep-hourly", "12"}, retention.Policy{Hourly: 12}},
		{[]string{"--keep-hourly", "unlimited"}, retention.Policy{Hourly: retention.Unlimited}},
		{[]string{"--keep-daily", "7", "--keep-weekly", "5", "--keep-monthly", "6", "--keep-yearly", "3"},
			retention.Policy{Daily: 7, Weekly: 5, Monthly: 6, Yearly: 3}},
		{[]string{"--keep-daily", "60"}, retention.Policy{Daily: 60}},
		{[]string{"--keep-weekly", "unlimited", "--keep-yearly", "10"}, retention.Policy{Weekly: retention.Unlimited, Yearly: 10}},
		{[]string{"--keep-within", "1m15d"}, retention.Policy{Within: retention.Duration{Months: 1, Days: 15}}},
		{[]string{"--keep-within", "1y2m3d4h", "--keep-last", "2"}, retention.Policy{Within: retention.Duration{Years: 1, Months: 2, Days: 3, Hours: 4}, Last: 2}},
		{[]string{"--keep-tag", "important", "--keep-tag", "daily,manual", "--keep-hourly", "3"},
			retention.Policy{Tags: [][]string{{"important"}, {"daily", "manual"}}, Hourly: 3}},
	} {
		name := strings.Join(tc.args, " ")
		t.Run(name, func(t *testing.T) {
			out, err := runRestic(bin, resticEnv(base, "Europe/Berlin"), append([]string{"forget", "--dry-run", "--json"}, tc.args...)...)
			if err != nil {
				t.Fatal(err)
			}
			var rgs []resticGroup
			if err := json.Unmarshal(out, &rgs); err != nil {
				t.Fatalf("restic output: %v\n%s", err, out)
			}
			want := map[string][]string{}
			for _, g := range rgs {
				k := g.Host + " " + strings.Join(g.Paths, " ")
				for _, r := range g.Reasons {
					want[k] = append(want[k], keptLine(r.Snapshot.Time, r.Matches))
				}
				if len(g.Reasons) != len(g.Keep) {
					t.Fatalf("restic group %s: %d kept, %d reasons", k, len(g.Keep), len(g.Reasons))
				}
			}
			got := map[string][]string{}
			kept, dropped := 0, 0
			for _, g := range retention.Apply(snaps, tc.p) {
				k := g.Host + " " + strings.Join(g.Paths, " ")
				for i, sn := range g.Keep {
					got[k] = append(got[k], keptLine(sn.Time, g.Reasons[i].Matches))
				}
				kept += len(g.Keep)
				dropped += len(g.Drop)
			}
			if len(want) != 3 {
				t.Fatalf("restic reported %d groups, want 3", len(want))
			}
			for k := range want {
				if !slices.Equal(got[k], want[k]) {
					t.Errorf("group %s: kept\n%s\nrestic kept\n%s", k, strings.Join(got[k], "\n"), strings.Join(want[k], "\n"))
				}
			}
			if kept+dropped != len(hist) || kept == 0 {
				t.Errorf("kept %d + dropped %d, want %d in all and some kept", kept, dropped, len(hist))
			}
			t.Logf("%s: %d of %d kept, as restic", name, kept, len(hist))
		})
	}
}

// keptLine is one kept snapshot as compared: its instant and its reasons.
func keptLine(t time.Time, matches []string) string {
	return t.UTC().Format(time.RFC3339) + " " + strings.Join(matches, "; ")
}
