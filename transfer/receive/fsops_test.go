package receive

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
)

// A file that appeared where the receiver expected nothing (created by
// somebody between the receiver's last look and its rename) is kept, and
// the receiver's version waits as a local change.
func TestRenameNoReplaceKeepsWhatAppeared(t *testing.T) {
	n := newTestFolder(t)
	if err := os.Mkdir(filepath.Join(n.dir, "d"), 0o755); err != nil {
		t.Fatal(err)
	}
	for rel, content := range map[string]string{"d/.syncd-tmp-1": "received", "d/f": "made here a moment ago"} {
		if err := os.WriteFile(filepath.Join(n.dir, rel), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	at := n.f.at()
	defer at.Close()
	err := rename(at, "d/.syncd-tmp-1", "d/f", true)
	if !errors.Is(err, ErrLocalChange) {
		t.Fatalf("rename over a file that appeared: %v, want ErrLocalChange", err)
	}
	if got, _ := os.ReadFile(filepath.Join(n.dir, "d/f")); string(got) != "made here a moment ago" {
		t.Errorf("the file that appeared now holds %q", got)
	}
	if err := rename(at, "d/.syncd-tmp-1", "d/g", true); err != nil {
		t.Fatalf("rename to a free name: %v", err)
	}
	if got, _ := os.ReadFile(filepath.Join(n.dir, "d/g")); string(got) != "received" {
		t.Errorf("renamed file holds %q", got)
	}
	if _, err := os.Lstat(filepath.Join(n.dir, "d/.syncd-tmp-1")); !os.IsNotExist(err) {
		t.Errorf("temporary file still there: %v", err)
	}
}
