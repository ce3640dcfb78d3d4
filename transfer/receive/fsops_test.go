package transfer

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/syncd/syncd/config"
)

// A file that appeared where the receiver expected nothing (created by
// somebody between the receiver's last look and its rename) is kept, and
// the receiver's version waits as a local change.
func TestRenameNoReplaceKeepsWhatAppeared(t *testing.T) {
	n := newTestNode(t, "a", config.SendReceive)
	if err := n.f.open(); err != nil {
		t.Fatal(err)
	}
	defer n.f.close()
	n.write(t, "d/.syncd-tmp-1", "received")
	n.write(t, "d/f", "made here a moment ago")
	at := n.f.at()
	defer at.Close()
	err := rename(at, "d/.syncd-tmp-1", "d/f", true)
	if !errors.Is(err, errLocalChange) {
		t.Fatalf("rename over a file that appeared: %v, want errLocalChange", err)
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
