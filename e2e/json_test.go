package e2e

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestJSONEverywhere: the commands that print a result print one JSON
// value with --json (restore dump writes file contents, and syncd run is
// the daemon: its logs are JSON with --log-format json).
func TestJSONEverywhere(t *testing.T) {
	dir := t.TempDir()
	var key struct{ File, Recipient string }
	dataKey := filepath.Join(dir, "data.key")
	decode(t, ok(t, nil, "syncd", "keygen", dataKey, "--json"), &key)
	if !strings.HasPrefix(key.Recipient, "age1") || key.File != dataKey {
		t.Errorf("keygen --json: %+v", key)
	}
	r := &repo{dir: dir, url: filepath.Join(dir, "repo"), indexKey: filepath.Join(dir, "index.key"), dataKey: dataKey, recipient: key.Recipient}
	var ini struct {
		ID              string
		IndexKeyCreated bool `json:"index_key_created"`
	}
	decode(t, ok(t, nil, "syncd", append([]string{"init", "--json"}, r.flags("--data-recipient", r.recipient)...)...), &ini)
	if len(ini.ID) != 64 || !ini.IndexKeyCreated {
		t.Errorf("init --json: %+v", ini)
	}
	src := filepath.Join(dir, "src")
	os.MkdirAll(src, 0o755)
	os.WriteFile(filepath.Join(src, "a.txt"), []byte("a"), 0o644)
	var snap struct {
		ID    string
		Stats struct{ Files int }
	}
	decode(t, ok(t, nil, "syncd", append([]string{"snapshot", "--json"}, r.flags(src)...)...), &snap)
	if len(snap.ID) != 64 || snap.Stats.Files != 1 {
		t.Errorf("snapshot --json: %+v", snap)
	}
	var rest struct {
		Snapshot string
		Files    int
	}
	decode(t, ok(t, nil, "restore", append([]string{"latest", "--json", "--target", filepath.Join(dir, "r")}, r.flags("--identity", dataKey)...)...), &rest)
	if rest.Snapshot != snap.ID || rest.Files != 1 {
		t.Errorf("restore --json: %+v", rest)
	}
	var ver struct {
		Snapshots int
		OK        bool
	}
	decode(t, ok(t, nil, "restore", append([]string{"verify", "--json"}, r.flags()...)...), &ver)
	if ver.Snapshots != 1 || !ver.OK {
		t.Errorf("verify --json: %+v", ver)
	}
	for _, prog := range []string{"syncd", "restore"} {
		var pr struct {
			DryRun    bool `json:"dry_run"`
			Snapshots int
		}
		decode(t, ok(t, nil, prog, append([]string{"prune", "--json", "--dry-run"}, prFlags(prog, r, dataKey)...)...), &pr)
		if !pr.DryRun || pr.Snapshots != 1 {
			t.Errorf("%s prune --json: %+v", prog, pr)
		}
	}
	n := newNode(t)
	var id struct{ ID string }
	decode(t, ok(t, nil, "syncd", "id", "--json", "--config", n.cfg), &id)
	if id.ID == "" {
		t.Errorf("id --json: %+v", id)
	}
}

func decode(t *testing.T, out string, v any) {
	t.Helper()
	if err := json.Unmarshal([]byte(out), v); err != nil {
		t.Fatalf("not one JSON value: %v\n%s", err, out)
	}
}

// prFlags are the repository flags of prog's prune: restore prune takes
// the data identity, syncd prune does not.
func prFlags(prog string, r *repo, dataKey string) []string {
	if prog == "restore" {
		return r.flags("--identity", dataKey)
	}
	return r.flags()
}
