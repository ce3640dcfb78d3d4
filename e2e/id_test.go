package e2e

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// nodeIDForm is a node ID as syncd id prints it: base32 in dash-separated
// groups of seven.
var nodeIDForm = regexp.MustCompile(`^([A-Z2-7]{7}-){7}[A-Z2-7]{3}\n$`)

func TestID(t *testing.T) {
	dir := t.TempDir()
	state := filepath.Join(dir, "state")
	cfg := filepath.Join(dir, "syncd.yaml")
	if err := os.WriteFile(cfg, []byte("node:\n  name: web1\n  state_dir: "+state+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}

	first := run(t, nil, "syncd", "id", "--config", cfg)
	if first.code != 0 || !nodeIDForm.MatchString(first.stdout) {
		t.Fatalf("syncd id: %s\nwant exit 0 and one node ID on stdout", first)
	}
	key := filepath.Join(state, "node.key")
	for path, want := range map[string]os.FileMode{key: 0o600, state: 0o700} {
		fi, err := os.Stat(path)
		if err != nil {
			t.Fatalf("after syncd id: %v", err)
		}
		if got := fi.Mode().Perm(); got != want {
			t.Errorf("%s: mode %04o, want %04o", path, got, want)
		}
	}
	if _, err := os.Stat(filepath.Join(state, "node.crt")); err != nil {
		t.Errorf("after syncd id: %v", err)
	}

	second := ok(t, nil, "syncd", "id", "--config", cfg)
	if second != first.stdout {
		t.Errorf("second syncd id printed %q, want the first ID %q", second, first.stdout)
	}

	// A key others can read is refused, like ssh does.
	if err := os.Chmod(key, 0o644); err != nil {
		t.Fatal(err)
	}
	res := run(t, nil, "syncd", "id", "--config", cfg)
	oneLine(t, "syncd id with node.key mode 0644", res, 1, key, "too open")
	if res.stdout != "" {
		t.Errorf("syncd id with node.key mode 0644 printed %q", res.stdout)
	}
}

func TestIDErrors(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "missing.yaml")
	for _, tt := range []struct {
		name string
		args []string
		code int
		want string
	}{
		{"missing config", []string{"id", "--config", missing}, 1, missing},
		{"no config flag", []string{"id"}, 2, "--config"},
		{"extra argument", []string{"id", "--config", missing, "x"}, 2, "no arguments"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			res := run(t, nil, "syncd", tt.args...)
			oneLine(t, "syncd "+strings.Join(tt.args, " "), res, tt.code, tt.want)
			if res.stdout != "" {
				t.Errorf("syncd %s printed %q", strings.Join(tt.args, " "), res.stdout)
			}
		})
	}
}
