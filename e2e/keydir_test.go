package e2e

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestInitMakesKeyDir: syncd init (and keygen) create a missing directory
// of the key file with mode 0700 and the key with 0600; a directory that
// exists keeps its mode.
func TestInitMakesKeyDir(t *testing.T) {
	dir := t.TempDir()
	if err := os.Chmod(dir, 0o750); err != nil {
		t.Fatal(err)
	}
	dataKey := filepath.Join(dir, "ops", "keys", "data.key")
	recipient := strings.TrimSpace(ok(t, nil, "syncd", "keygen", dataKey))
	indexKey := filepath.Join(dir, "etc", "syncd", "index.key")
	ok(t, nil, "syncd", "init", "--repo", filepath.Join(dir, "repo"), "--index-key", indexKey, "--data-recipient", recipient)
	for path, want := range map[string]os.FileMode{
		filepath.Join(dir, "ops"): 0o700, filepath.Join(dir, "ops", "keys"): 0o700, dataKey: 0o600,
		filepath.Join(dir, "etc"): 0o700, filepath.Join(dir, "etc", "syncd"): 0o700, indexKey: 0o600,
		dir: 0o750, // it existed: not changed
	} {
		fi, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		if got := fi.Mode().Perm(); got != want {
			t.Errorf("%s: mode %04o, want %04o", path, got, want)
		}
	}
	ok(t, nil, "syncd", "snapshot", "--repo", filepath.Join(dir, "repo"), "--index-key", indexKey, dir)
}
