package restorer

import (
	"bytes"
	"context"
	"crypto/sha256"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"

	"github.com/syncd/syncd/archiver"
	"github.com/syncd/syncd/chunkstore"
	"github.com/syncd/syncd/internal/repotest"
)

func pseudo(seed string, n int) []byte {
	b := make([]byte, n)
	rand.NewChaCha8(sha256.Sum256([]byte(seed))).Read(b)
	return b
}

// A hostile writer stored a copy of every data blob with wrong bytes, and
// the index takes its copies first. Restore must read every blob from its
// good copy: with bogus copies of the same length (read again in a second
// round over the good packs) and of another length (the file is then read
// blob by blob, as the length of a blob decides where the next one goes).
func TestRestoreFallsBackToGoodCopy(t *testing.T) {
	for _, tc := range []struct {
		name  string
		extra int // bytes added to each bogus copy
	}{{"same length", 0}, {"other length", 17}} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			repo := repotest.New(t)
			src := filepath.Join(t.TempDir(), "src")
			files := map[string][]byte{}
			for i := range 4 {
				files[fmt.Sprintf("f%d", i)] = pseudo(fmt.Sprint("file", i), 3<<20+i*1000)
			}
			files["big"] = pseudo("big", 10<<20) // more than one chunk: max_chunk_size is 8 MiB
			files["small"] = []byte("the password")
			if err := os.MkdirAll(src, 0o755); err != nil {
				t.Fatal(err)
			}
			for name, data := range files {
				if err := os.WriteFile(filepath.Join(src, name), data, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			res, err := archiver.Snapshot(ctx, repo, []string{src}, archiver.Options{Host: "h"})
			if err != nil {
				t.Fatal(err)
			}

			real, bad, err := repo.IndexObjects(ctx)
			if err != nil || len(bad) > 0 {
				t.Fatalf("index objects: %v %v", bad, err)
			}
			rp := repo.NewRepacker(t.TempDir())
			repo.Index().Each(func(id chunkstore.ID, l chunkstore.Location) {
				if l.Type == chunkstore.DataBlob {
					if err := rp.Add(ctx, l.Type, id, pseudo("bogus"+id.String(), int(l.Raw)+tc.extra)); err != nil {
						t.Fatal(err)
					}
				}
			})
			bogus, err := rp.Finish(ctx)
			if err != nil {
				t.Fatal(err)
			}
			// the bogus copies first, then the real ones
			repo.SetIndex(map[string][]chunkstore.IndexPack{"index/bogus": bogus})
			for _, packs := range real {
				for _, p := range packs {
					repo.Index().Add(p)
				}
			}
			isBogus := map[chunkstore.ID]bool{}
			for _, p := range bogus {
				isBogus[p.ID] = true
			}
			repo.Index().Each(func(id chunkstore.ID, l chunkstore.Location) {
				if l.Type == chunkstore.DataBlob && !isBogus[l.Pack] {
					t.Fatalf("blob %s: the index takes a real copy first", id.Short())
				}
			})

			target := t.TempDir()
			out, err := Restore(ctx, repo, res.Snapshot, Options{Target: target})
			if err != nil {
				t.Fatal(err)
			}
			for _, e := range out.Errors {
				t.Errorf("restore: %v", e)
			}
			for name, want := range files {
				got, err := os.ReadFile(filepath.Join(target, src, name))
				if err != nil || !bytes.Equal(got, want) {
					t.Errorf("%s restored wrong (%d bytes, want %d; %v)", name, len(got), len(want), err)
				}
			}
		})
	}
}
