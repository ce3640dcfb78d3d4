package local

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"testing"

	"github.com/syncd/syncd/chunkstore/backend"
	"github.com/syncd/syncd/chunkstore/backendtest"
)

func TestConformance(t *testing.T) {
	backendtest.Run(t, func(t *testing.T) backend.Backend {
		b, err := Create(t.TempDir() + "/repo")
		if err != nil {
			t.Fatal(err)
		}
		return b
	})
}

func TestRejectsEscapingNames(t *testing.T) {
	b, err := Create(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"../x", "/etc/passwd", "data/../../x", "", "data/.tmp-x"} {
		if err := backend.SaveBytes(context.Background(), b, name, []byte("x")); err == nil {
			t.Errorf("Save(%q) succeeded, want an error", name)
		}
	}
}

// A repository directory that vanished (a backup disk not mounted, a
// directory moved away) is never made again by a write: Save fails with
// ErrRootMissing and leaves nothing behind, for a top-level object and for
// one in a subdirectory. Below an existing directory, Save makes the
// subdirectories it needs.
func TestSaveDoesNotRecreateRoot(t *testing.T) {
	ctx := context.Background()
	dir := filepath.Join(t.TempDir(), "repo")
	b, err := Create(dir)
	if err != nil {
		t.Fatal(err)
	}
	if err := backend.SaveBytes(ctx, b, "data/ab/abcd", []byte("x")); err != nil {
		t.Fatalf("Save below the repository: %v", err)
	}
	if err := os.Rename(dir, dir+".away"); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"locks/1234", "data/cd/cdef", "config"} {
		err := backend.SaveBytes(ctx, b, name, []byte("x"))
		if !errors.Is(err, ErrRootMissing) {
			t.Errorf("Save(%q) with the directory gone = %v, want ErrRootMissing", name, err)
		}
		if _, err := os.Lstat(dir); !errors.Is(err, fs.ErrNotExist) {
			t.Fatalf("Save(%q) made %s again (%v)", name, dir, err)
		}
	}
	if err := os.Rename(dir+".away", dir); err != nil {
		t.Fatal(err)
	}
	if err := backend.SaveBytes(ctx, b, "data/cd/cdef", []byte("x")); err != nil {
		t.Fatalf("Save once the directory is back: %v", err)
	}
}
