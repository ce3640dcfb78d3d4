package e2e

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// stop stops the daemon gracefully.
func (n *node) stop() {
	n.t.Helper()
	n.cmd.Process.Signal(syscall.SIGTERM)
	if err := n.cmd.Wait(); err != nil {
		n.t.Errorf("syncd run after SIGTERM: %v", err)
	}
}

// TestDaemonAwkwardEntries indexes names with newlines and invalid UTF-8,
// symlink loops, and a path that turns from a file into a directory and
// back, and snapshots them equal to the folder.
func TestDaemonAwkwardEntries(t *testing.T) {
	n := newNode(t)
	n.write("line\nbreak.txt", "newline")
	n.write("bad-\xff-name", "invalid utf-8")
	os.Symlink("loop-b", filepath.Join(n.folder, "loop-a"))
	os.Symlink("loop-a", filepath.Join(n.folder, "loop-b"))
	n.write("flip", "a file")
	n.start()
	ok(t, nil, "syncd", "snapshot", "--config", n.cfg)
	n.restoreEquals()

	os.Remove(filepath.Join(n.folder, "flip"))
	n.write("flip/inside.txt", "now a directory")
	n.settle()
	ok(t, nil, "syncd", "snapshot", "--config", n.cfg)
	n.restoreEquals()

	os.RemoveAll(filepath.Join(n.folder, "flip"))
	n.write("flip", "a file again")
	n.settle()
	ok(t, nil, "syncd", "snapshot", "--config", n.cfg)
	n.restoreEquals()
}

// TestDaemonStateDeletedOrDamaged: a state database deleted while syncd is
// stopped costs a full rescan; a damaged one is a clear error naming the
// file and saying how to recover, and nothing else is touched.
func TestDaemonStateDeletedOrDamaged(t *testing.T) {
	n := newNode(t)
	n.write("a.txt", "a")
	n.write("dir/b.txt", "b")
	n.start()
	ok(t, nil, "syncd", "snapshot", "--config", n.cfg)
	n.stop()
	db := filepath.Join(filepath.Dir(n.cfg), "state", "state.db")
	if err := os.Remove(db); err != nil {
		t.Fatal(err)
	}
	n.write("c.txt", "changed while stopped")
	n.start()
	ok(t, nil, "syncd", "snapshot", "--config", n.cfg)
	n.restoreEquals()
	n.stop()

	if err := os.WriteFile(db, []byte(strings.Repeat("garbage!", 4096)), 0o600); err != nil {
		t.Fatal(err)
	}
	res := run(t, nil, "syncd", "run", "--config", n.cfg)
	oneLine(t, "a damaged state database", res, 1, db, "move")
}
