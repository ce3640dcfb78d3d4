package local

import (
	"context"
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
