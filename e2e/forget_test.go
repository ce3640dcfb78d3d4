package e2e

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// forgetJSON is syncd forget --json's output.
type forgetJSON []struct {
	Host    string   `json:"host"`
	Paths   []string `json:"paths"`
	Keep    []forgetSnap
	Remove  []forgetSnap
	Reasons []struct {
		Snapshot forgetSnap `json:"snapshot"`
		Matches  []string   `json:"matches"`
	} `json:"reasons"`
}

type forgetSnap struct {
	ID   string   `json:"id"`
	Time string   `json:"time"`
	Host string   `json:"host"`
	Tags []string `json:"tags"`
}

// forgetRepo is a repository with snapshots of one directory: web1 on
// January 1 to 5, web2 on January 6 with tag "keep".
func forgetRepo(t *testing.T) (*repo, string) {
	t.Helper()
	r := newRepo(t)
	src := filepath.Join(r.dir, "src")
	if err := os.MkdirAll(src, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(src, "f"), []byte("content"), 0o644); err != nil {
		t.Fatal(err)
	}
	env := []string{"TZ=UTC"}
	for _, d := range []string{"01", "02", "03", "04", "05"} {
		ok(t, env, "syncd", append([]string{"snapshot"}, r.flags("--host", "web1", "--time", "2026-01-"+d+" 10:00:00", src)...)...)
	}
	ok(t, env, "syncd", append([]string{"snapshot"}, r.flags("--host", "web2", "--tag", "keep", "--time", "2026-01-06 10:00:00", src)...)...)
	return r, src
}

func snapshotIDs(t *testing.T, r *repo) []string {
	t.Helper()
	var ids []string
	for _, p := range objects(t, r, "snapshots") {
		ids = append(ids, filepath.Base(p))
	}
	slices.Sort(ids)
	return ids
}

// TestForget runs a policy as a dry run (nothing deleted), then for real:
// the snapshots left are the ones --json said it keeps.
func TestForget(t *testing.T) {
	r, src := forgetRepo(t)
	before := snapshotIDs(t, r)
	if len(before) != 6 {
		t.Fatalf("%d snapshots, want 6", len(before))
	}
	out := ok(t, nil, "syncd", append([]string{"forget", "--dry-run"}, r.flags("--keep-last", "2")...)...)
	for _, want := range []string{"host web1, paths [" + src + "]: keep 2, remove 3", "host web2, paths [" + src + "]: keep 1, remove 0",
		"last snapshot", "would remove 3 snapshots (dry run)"} {
		if !strings.Contains(out, want) {
			t.Errorf("dry run output lacks %q:\n%s", want, out)
		}
	}
	if got := snapshotIDs(t, r); !slices.Equal(got, before) {
		t.Fatalf("the dry run deleted snapshots: %d left", len(got))
	}

	// SYNCD_REPO and SYNCD_INDEX_KEY stand for the flags
	env := []string{"SYNCD_REPO=" + r.url, "SYNCD_INDEX_KEY=" + r.indexKey}
	out = ok(t, env, "syncd", "forget", "--json", "--keep-last", "2")
	var groups forgetJSON
	if err := json.Unmarshal([]byte(out), &groups); err != nil {
		t.Fatalf("--json output: %v\n%s", err, out)
	}
	var kept, removed []string
	for _, g := range groups {
		if len(g.Paths) != 1 || g.Paths[0] != src {
			t.Errorf("group %s paths %v, want [%s]", g.Host, g.Paths, src)
		}
		if len(g.Reasons) != len(g.Keep) {
			t.Errorf("group %s: %d reasons for %d kept", g.Host, len(g.Reasons), len(g.Keep))
		}
		for _, s := range g.Keep {
			kept = append(kept, s.ID)
		}
		for _, s := range g.Remove {
			removed = append(removed, s.ID)
		}
	}
	if len(groups) != 2 || len(kept) != 3 || len(removed) != 3 {
		t.Fatalf("%d groups, %d kept, %d removed; want 2, 3, 3:\n%s", len(groups), len(kept), len(removed), out)
	}
	if groups[0].Host != "web1" || groups[0].Keep[0].Time != "2026-01-05T10:00:00Z" || groups[0].Keep[1].Time != "2026-01-04T10:00:00Z" {
		t.Errorf("web1 keeps %+v, want January 5 and 4", groups[0].Keep)
	}
	slices.Sort(kept)
	if got := snapshotIDs(t, r); !slices.Equal(got, kept) {
		t.Errorf("snapshots left %v, want the kept %v", got, kept)
	}
	// the repository still verifies and the kept snapshots list
	ok(t, nil, "restore", append([]string{"verify"}, r.flags()...)...)
	list := ok(t, nil, "restore", append([]string{"snapshots"}, r.flags()...)...)
	for _, id := range kept {
		if !strings.Contains(list, id[:8]) {
			t.Errorf("restore snapshots does not list kept %s:\n%s", id[:8], list)
		}
	}
}

// TestForgetBadInput: each bad input is one line on stderr, a non-zero
// exit, and no snapshot deleted.
func TestForgetBadInput(t *testing.T) {
	r, _ := forgetRepo(t)
	before := snapshotIDs(t, r)
	other := filepath.Join(r.dir, "other.key")
	ok(t, nil, "syncd", "keygen", other)
	for _, tc := range []struct {
		name string
		args []string
		code int
		msg  []string // parts of the one line on stderr
	}{
		{"a policy that keeps none of a group", r.flags("--keep-tag", "keep"), 1,
			[]string{"refusing to remove all 5 snapshots", `host "web1"`, "--all"}},
		{"no policy", r.flags(), 2, []string{"no policy given", "--keep-last"}},
		{"all without a policy or host", r.flags("--all"), 2, []string{"--all", "--host"}},
		{"bad duration", r.flags("--keep-within", "2w"), 2, []string{`"--keep-within"`, `unknown unit "w"`}},
		{"negative duration", r.flags("--keep-within", "-3d"), 2, []string{`"--keep-within"`, "negative"}},
		{"bad count", r.flags("--keep-daily", "many"), 2, []string{`"--keep-daily"`, "unlimited"}},
		{"wrong index key", []string{"--repo", r.url, "--index-key", other, "--keep-last", "1"}, 1, []string{"wrong index key"}},
		{"no repository", []string{"--repo", filepath.Join(r.dir, "nope"), "--index-key", r.indexKey, "--keep-last", "1"}, 1, []string{"directory missing: not mounted or deleted?"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res := run(t, []string{"SYNCD_REPO=", "SYNCD_INDEX_KEY="}, "syncd", append([]string{"forget"}, tc.args...)...)
			stderr := strings.TrimSuffix(res.stderr, "\n")
			if res.code != tc.code || strings.Contains(stderr, "\n") {
				t.Fatalf("want exit %d and one line on stderr; %s", tc.code, res)
			}
			for _, m := range tc.msg {
				if !strings.Contains(stderr, m) {
					t.Errorf("stderr %q lacks %q", stderr, m)
				}
			}
			if got := snapshotIDs(t, r); !slices.Equal(got, before) {
				t.Errorf("%d snapshots left, want all %d", len(got), len(before))
			}
		})
	}

	// --all lets the same policy remove web1's group; web2's stays
	ok(t, nil, "syncd", append([]string{"forget", "--all"}, r.flags("--keep-tag", "keep")...)...)
	if got := snapshotIDs(t, r); len(got) != 1 {
		t.Errorf("after --all %d snapshots, want web2's 1", len(got))
	}
}

// TestForgetKeepsUnreadable: a snapshot object that cannot be read is kept
// with one warning line, and the policy is applied to the others (the
// daemon follows the same rule: daemon.TestForgetKeepsUnreadable).
func TestForgetKeepsUnreadable(t *testing.T) {
	r, _ := forgetRepo(t)
	// one of web1's five (web2's only one, unreadable, would leave its
	// group nothing readable to keep)
	var groups forgetJSON
	if err := json.Unmarshal([]byte(ok(t, nil, "syncd", append([]string{"forget", "--dry-run", "--json"}, r.flags("--keep-last", "1")...)...)), &groups); err != nil {
		t.Fatal(err)
	}
	var damaged string
	for _, g := range groups {
		if g.Host == "web1" && len(g.Remove) > 0 {
			damaged = filepath.Join(r.url, "snapshots", g.Remove[0].ID)
		}
	}
	if damaged == "" {
		t.Fatalf("no snapshot of web1's to damage: %+v", groups)
	}
	if err := os.WriteFile(damaged, []byte("not a snapshot"), 0o644); err != nil {
		t.Fatal(err)
	}
	res := run(t, nil, "syncd", append([]string{"forget"}, r.flags("--keep-last", "1")...)...)
	if res.code != 0 {
		t.Fatalf("forget with an unreadable snapshot: %s", res)
	}
	name := "snapshots/" + filepath.Base(damaged)
	if want := "syncd: warning: " + name + " cannot be read, kept (not forgotten): "; !strings.HasPrefix(res.stderr, want) || strings.Count(res.stderr, "\n") != 1 {
		t.Errorf("stderr %q, want one line starting %q", res.stderr, want)
	}
	if _, err := os.Stat(damaged); err != nil {
		t.Errorf("the unreadable snapshot was not kept: %v", err)
	}
	// web1's newest readable and web2's one stay, with the unreadable one
	if got := snapshotIDs(t, r); len(got) != 3 || !slices.Contains(got, filepath.Base(damaged)) {
		t.Errorf("left %v, want 3 with %s", got, filepath.Base(damaged))
	}
}
