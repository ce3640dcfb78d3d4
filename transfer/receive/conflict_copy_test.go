package receive

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// TestKeepConflictTwinExists: when the conflict copy of a path already
// holds the local version's bytes (an earlier try made it, or the copy came
// from a peer that met the same conflict), keeping the copy still moves
// the local version away from the path, so that the winner can be placed
// there. Before, it left the path as it was, the winner's rename (which may
// not replace anything) failed, and the path was retried every 2 s for
// ever (TestMirrorRandom: "nodes did not settle", lag 1 file).
func TestKeepConflictTwinExists(t *testing.T) {
	tf := newTestFolder(t)
	dir := tf.dir
	r := New(tf.f, Options{})
	mtime := time.Date(2026, 12, 2, 13, 48, 29, 0, time.UTC)
	copyName := ConflictNameN("d/f0.txt", mtime, "GD44GK5", 1)
	os.MkdirAll(filepath.Join(dir, "d"), 0o755)
	for _, p := range []string{"d/f0.txt", copyName} {
		if err := os.WriteFile(filepath.Join(dir, p), []byte("the losing version"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	got, err := r.keepConflict("d/f0.txt", mtime, "GD44GK5")
	if err != nil || got != copyName {
		t.Fatalf("keepConflict = %q, %v; want %q", got, err, copyName)
	}
	if _, err := os.Lstat(filepath.Join(dir, "d/f0.txt")); !os.IsNotExist(err) {
		t.Errorf("the local version is still at the path (%v): the winner cannot take its place", err)
	}
	if b, err := os.ReadFile(filepath.Join(dir, copyName)); err != nil || string(b) != "the losing version" {
		t.Errorf("conflict copy: %q, %v", b, err)
	}
}

func TestSameContent(t *testing.T) {
	big := bytes.Repeat([]byte("x"), 200<<10)
	other := bytes.Clone(big)
	other[len(other)-1] = 'y'
	for _, tc := range []struct {
		a, b []byte
		want bool
	}{
		{nil, nil, true}, {big, big, true}, {big, other, false}, {big, big[:len(big)-1], false}, {[]byte("a"), nil, false},
	} {
		if got := sameContent(bytes.NewReader(tc.a), bytes.NewReader(tc.b)); got != tc.want {
			t.Errorf("sameContent(%d bytes, %d bytes) = %v", len(tc.a), len(tc.b), got)
		}
	}
}
