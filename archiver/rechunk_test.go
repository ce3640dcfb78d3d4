package archiver

import (
	"bytes"
	"context"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/syncd/syncd/chunkstore"
	"github.com/syncd/syncd/restorer"
)

// fileNode returns the node of the file at path in a snapshot.
func fileNode(t *testing.T, repo *chunkstore.Repository, res *Result, path string) *chunkstore.Node {
	t.Helper()
	tree, err := repo.LoadTree(context.Background(), subtree(t, repo, res, filepath.Dir(path)))
	if err != nil {
		t.Fatal(err)
	}
	n, ok := tree.Find(filepath.Base(path))
	if !ok {
		t.Fatalf("%s not in snapshot", path)
	}
	return n
}

// TestRechunkEqualsChunking edits a file in the ways files change and
// checks that reading it against its previous version gives exactly the
// chunks that chunking it afresh gives, while reading the old chunks
// instead of chunking them.
func TestRechunkEqualsChunking(t *testing.T) {
	rnd := rand.New(rand.NewPCG(7, 8))
	random := func(n int) []byte {
		b := make([]byte, n)
		for i := range b {
			b[i] = byte(rnd.Uint32())
		}
		return b
	}
	base := random(12 << 20)
	// How much is matched against the old chunks depends on where the
	// random polynomial of each repository cuts; what is certain is all of
	// an unchanged file, none of a new one, and some of every other edit.
	minMatched := map[string]int64{"unchanged content": 12 << 20, "overwrite in the middle": 1,
		"insert near the start": 1, "delete a range": 1, "append": 1, "truncate": 1, "two edits": 1}
	edits := map[string]func([]byte) []byte{
		"unchanged content": func(b []byte) []byte { return b },
		"overwrite in the middle": func(b []byte) []byte {
			copy(b[len(b)/2:], random(1<<20))
			return b
		},
		"insert near the start": func(b []byte) []byte { return slices.Concat(b[:1000], random(5000), b[1000:]) },
		"delete a range":        func(b []byte) []byte { return slices.Concat(b[:3<<20], b[4<<20:]) },
		"append":                func(b []byte) []byte { return append(b, random(2<<20)...) },
		"truncate":              func(b []byte) []byte { return b[:len(b)-700_000] },
		"two edits":             func(b []byte) []byte { copy(b[100:], random(10)); copy(b[10<<20:], random(10)); return b },
		"all new":               func(b []byte) []byte { return random(len(b)) },
	}
	for name, edit := range edits {
		t.Run(name, func(t *testing.T) {
			rnd = rand.New(rand.NewPCG(uint64(len(name)), 9)) // each edit its own random bytes, whatever the order
			repo := newRepo(t)
			dir := t.TempDir()
			path := filepath.Join(dir, "db.sql")
			if err := os.WriteFile(path, base, 0o644); err != nil {
				t.Fatal(err)
			}
			ctx := context.Background()
			first, err := Snapshot(ctx, repo, []string{dir}, Options{})
			if err != nil {
				t.Fatal(err)
			}
			changed := edit(bytes.Clone(base))
			if err := os.WriteFile(path, changed, 0o644); err != nil {
				t.Fatal(err)
			}
			os.Chtimes(path, first.Snapshot.Time, first.Snapshot.Time.Add(1e9)) // a new mtime even for "unchanged"
			prog := new(Progress)
			second, err := Snapshot(ctx, repo, []string{dir}, Options{Parent: first.Snapshot, Progress: prog})
			if err != nil {
				t.Fatal(err)
			}
			// no parent: the file is chunked from start to end
			fresh, err := Snapshot(ctx, repo, []string{dir}, Options{})
			if err != nil {
				t.Fatal(err)
			}
			got := fileNode(t, repo, second, path)
			want := fileNode(t, repo, fresh, path)
			if !slices.Equal(got.Content, want.Content) || got.Size != uint64(len(changed)) {
				t.Errorf("against the parent: %d chunks, %d bytes; chunked afresh: %d chunks, %d bytes; want the same chunks",
					len(got.Content), got.Size, len(want.Content), want.Size)
			}
			t.Logf("%s: %d bytes matched", name, prog.BytesMatched.Load())
			// Matching resumes after the first new chunk that is an old
			// one, so it needs at least two chunks in common: with the
			// polynomial drawn, both edits may fall into the only chunks.
			old := fileNode(t, repo, first, path)
			shared := 0
			for _, id := range want.Content {
				if slices.Contains(old.Content, id) {
					shared++
				}
			}
			if shared < 2 && minMatched[name] > 0 && name != "unchanged content" {
				t.Logf("%s: %d chunks in common with the old version: nothing to match", name, shared)
			} else if m := prog.BytesMatched.Load(); m < minMatched[name] || (minMatched[name] == 0 && m != 0) {
				t.Errorf("%d bytes matched against the old chunks, want at least %d", m, minMatched[name])
			}
			target := t.TempDir()
			if res, err := restorer.Restore(ctx, repo, second.Snapshot, restorer.Options{Target: target, Overwrite: true}); err != nil || len(res.Errors) > 0 {
				t.Fatalf("restore: %v %v", err, res)
			}
			if data, _ := os.ReadFile(filepath.Join(target, path)); !bytes.Equal(data, changed) {
				t.Errorf("restored file differs from the edited file")
			}
		})
	}
}
