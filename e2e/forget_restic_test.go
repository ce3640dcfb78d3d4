package e2e

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// paritySnap is one snapshot written into both repositories.
type paritySnap struct {
	t    time.Time
	host string
	tags []string
}

// forgetParityHistory is about 50 snapshots in Europe/Berlin over three years:
// both daylight saving changes, ISO weeks across new year, two hosts, tags.
func forgetParityHistory(t *testing.T) []paritySnap {
	berlin, err := time.LoadLocation("Europe/Berlin")
	if err != nil {
		t.Fatal(err)
	}
	at := func(y int, m time.Month, d, h, min int) time.Time { return time.Date(y, m, d, h, min, 0, 0, berlin) }
	cest, cet := time.FixedZone("CEST", 2*3600), time.FixedZone("CET", 3600)
	var h []paritySnap
	add := func(tm time.Time, host string) {
		var tags []string
		if len(h)%4 == 0 {
			tags = append(tags, "important")
		}
		if len(h)%3 == 0 {
			tags = append(tags, "daily", "manual")
		}
		h = append(h, paritySnap{tm, host, tags})
	}
	for tm := at(2024, 1, 5, 23, 30); tm.Before(at(2026, 10, 1, 0, 0)); tm = tm.AddDate(0, 0, 45) {
		add(tm, "alpha")
	}
	for _, tm := range []time.Time{at(2026, 3, 29, 0, 30), at(2026, 3, 29, 1, 59), at(2026, 3, 29, 3, 0), at(2026, 3, 29, 3, 40),
		at(2025, 10, 26, 1, 30), time.Date(2025, 10, 26, 2, 10, 0, 0, cest).In(berlin), time.Date(2025, 10, 26, 2, 20, 0, 0, cet).In(berlin),
		at(2025, 10, 26, 3, 5), at(2024, 12, 29, 23, 30), at(2024, 12, 30, 0, 30), at(2025, 12, 31, 23, 59), at(2026, 1, 1, 0, 1)} {
		add(tm, "alpha")
	}
	for tm := at(2026, 1, 31, 22, 0); tm.Before(at(2026, 11, 1, 0, 0)); tm = tm.AddDate(0, 1, 0) {
		add(tm, "beta")
	}
	return h
}

// tzFor names a zoneinfo zone with t's whole-hour UTC offset, so that a
// "YYYY-MM-DD HH:MM:SS" --time means exactly t, even in the second 02:xx
// hour of the autumn change.
func tzFor(t time.Time) string {
	_, off := t.Zone()
	if off == 0 {
		return "TZ=UTC"
	}
	return fmt.Sprintf("TZ=Etc/GMT%+d", -off/3600)
}

// forgetOutput is the part of syncd's and restic's forget --json compared.
type forgetOutput []struct {
	Host    string   `json:"host"`
	Paths   []string `json:"paths"`
	Tags    []string `json:"tags"`
	Reasons []struct {
		Snapshot struct {
			Time time.Time `json:"time"`
		} `json:"snapshot"`
		Matches []string `json:"matches"`
	} `json:"reasons"`
}

// kept turns a forget --json output into "host: time reasons" lines.
func (f forgetOutput) kept() []string {
	var out []string
	for _, g := range f {
		for _, r := range g.Reasons {
			tags := slices.Clone(g.Tags)
			slices.Sort(tags)
			out = append(out, fmt.Sprintf("%s %v %v: %s %s", g.Host, g.Paths, tags, r.Snapshot.Time.UTC().Format(time.RFC3339), strings.Join(r.Matches, "; ")))
		}
	}
	slices.Sort(out)
	return out
}

// TestForgetLikeRestic writes one history into a syncd and a restic
// repository (snapshot and backup with --time, --host, --tag) and runs
// the same forget flags with both binaries (counts, keep-within and
// keep-within-<unit>, keep-tag, --group-by, --host, --tag and --path):
// they keep the same snapshots for the same reasons.
func TestForgetLikeRestic(t *testing.T) {
	restic := tool(t, "restic")
	r := newRepo(t)
	src := filepath.Join(r.dir, "www")
	if err := os.MkdirAll(src, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(src, "index.html"), []byte("<html>"), 0o644); err != nil {
		t.Fatal(err)
	}
	renv := []string{"RESTIC_REPOSITORY=" + filepath.Join(r.dir, "restic"), "RESTIC_PASSWORD=parity",
		"RESTIC_CACHE_DIR=" + filepath.Join(r.dir, "restic-cache")}
	ok(t, renv, restic, "init", "-q")
	hist := forgetParityHistory(t)
	var wg sync.WaitGroup
	work := make(chan paritySnap)
	for range 4 {
		wg.Go(func() {
			for h := range work {
				when := h.t.Format(time.DateTime)
				sargs := r.flags("--host", h.host, "--time", when)
				rargs := []string{"backup", "-q", "--host", h.host, "--time", when}
				for _, tag := range h.tags {
					sargs = append(sargs, "--tag", tag)
					rargs = append(rargs, "--tag", tag)
				}
				env := []string{tzFor(h.t)}
				if res := run(t, env, "syncd", append(append([]string{"snapshot"}, sargs...), src)...); res.code != 0 {
					t.Errorf("syncd snapshot: %s", res)
				}
				if res := run(t, append(env, renv...), restic, append(rargs, src)...); res.code != 0 {
					t.Errorf("restic backup: %s", res)
				}
			}
		})
	}
	for _, h := range hist {
		work <- h
	}
	close(work)
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}

	berlin := []string{"TZ=Europe/Berlin"}
	for _, args := range [][]string{
		{"--keep-last", "3"},
		{"--keep-hourly", "unlimited"},
		{"--keep-daily", "10", "--keep-weekly", "4", "--keep-monthly", "3", "--keep-yearly", "unlimited"},
		{"--keep-within", "1y1m", "--keep-tag", "important"},
		{"--keep-tag", "daily,manual", "--keep-hourly", "2"},
		{"--keep-within-daily", "2m", "--keep-within-weekly", "6m", "--keep-within-yearly", "2y"},
		{"--group-by", "tags", "--keep-last", "2"},
		{"--group-by", "", "--keep-monthly", "6", "--keep-within-hourly", "1d"},
		{"--tag", "important", "--tag", "daily,manual", "--keep-weekly", "3"},
		{"--host", "beta", "--path", src, "--keep-within-monthly", "4m"},
	} {
		t.Run(strings.Join(args, " "), func(t *testing.T) {
			var ours, theirs forgetOutput
			out := ok(t, berlin, "syncd", append(append([]string{"forget", "--dry-run", "--json"}, r.flags()...), args...)...)
			if err := json.Unmarshal([]byte(out), &ours); err != nil {
				t.Fatalf("syncd forget --json: %v\n%s", err, out)
			}
			out = ok(t, append(berlin, renv...), restic, append([]string{"forget", "--dry-run", "--json"}, args...)...)
			if err := json.Unmarshal([]byte(out), &theirs); err != nil {
				t.Fatalf("restic forget --json: %v\n%s", err, out)
			}
			got, want := ours.kept(), theirs.kept()
			if len(want) == 0 || len(want) == len(hist) {
				t.Fatalf("restic keeps %d of %d: the policy tells nothing apart", len(want), len(hist))
			}
			if !slices.Equal(got, want) {
				t.Errorf("syncd forget keeps\n%s\nrestic forget keeps\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
			}
		})
	}
	if n := len(objects(t, r, "snapshots")); n != len(hist) {
		t.Errorf("dry runs left %d snapshots of %d", n, len(hist))
	}
}
