package e2e

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// What docs/FORMAT.md says of decoy snapshots ("What a hacked writer node
// can learn and do"): a writer node that writes snapshots under a real
// node's host and paths, N of them newer than the real ones and one later
// in each day than a real one, makes a forget with --keep-last N or
// --keep-daily keep the decoys and remove every real snapshot, and makes restore latest restore a decoy; --keep-within
// keeps every real snapshot.
func TestDecoySnapshotsAndRetention(t *testing.T) {
	r := newRepo(t)
	src := filepath.Join(r.dir, "src")
	if err := os.MkdirAll(src, 0o755); err != nil {
		t.Fatal(err)
	}
	env := []string{"TZ=UTC"}
	write := func(content string) {
		if err := os.WriteFile(filepath.Join(src, "f"), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	days := []string{"01", "02", "03", "04", "05"}
	write("real")
	for _, d := range days {
		ok(t, env, "syncd", append([]string{"snapshot"}, r.flags("--host", "web1", "--time", "2026-01-"+d+" 10:00:00", src)...)...)
	}
	// the hacked node: same host and paths, later in each day, and five
	// after the newest real one
	write("decoy")
	for _, at := range []string{"01 23", "02 23", "03 23", "04 23", "05 23", "06 01", "06 02", "06 03", "06 04", "06 05"} {
		ok(t, env, "syncd", append([]string{"snapshot"}, r.flags("--host", "web1", "--time", "2026-01-"+at+":00:00", src)...)...)
	}

	realKept := func(policy ...string) int {
		t.Helper()
		out := ok(t, env, "syncd", append([]string{"forget", "--dry-run", "--json"}, r.flags(policy...)...)...)
		var groups forgetJSON
		if err := json.Unmarshal([]byte(out), &groups); err != nil {
			t.Fatalf("forget --json: %v\n%s", err, out)
		}
		n := 0
		for _, g := range groups {
			for _, s := range g.Keep {
				if strings.Contains(s.Time, "T10:00:00") {
					n++
				}
			}
		}
		return n
	}
	if n := realKept("--keep-last", "5"); n != 0 {
		t.Errorf("--keep-last 5 keeps %d real snapshots, want 0 (the decoys push them out)", n)
	}
	if n := realKept("--keep-daily", "5"); n != 0 {
		t.Errorf("--keep-daily 5 keeps %d real snapshots, want 0 (a decoy later in each day)", n)
	}
	if n := realKept("--keep-within", "5d"); n != len(days) {
		t.Errorf("--keep-within 5d keeps %d real snapshots, want all %d", n, len(days))
	}

	target := filepath.Join(t.TempDir(), "out")
	ok(t, nil, "restore", append([]string{"latest", "--target", target}, r.flags("--identity", r.dataKey)...)...)
	if got, err := os.ReadFile(filepath.Join(target, src, "f")); err != nil || string(got) != "decoy" {
		t.Errorf("restore latest gave %q (%v), want the decoy", got, err)
	}
}
