package indexer

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/syncd/syncd/chunkstore"
	"github.com/syncd/syncd/internal/repotest"
	"github.com/syncd/syncd/localfolder"
	"github.com/syncd/syncd/state"
)

type fixture struct {
	root string
	repo *chunkstore.Repository
	st   *state.Folder
	ix   *Indexer
}

func setup(t *testing.T, ignore func(string, bool) bool) *fixture {
	t.Helper()
	repo := repotest.New(t)
	db, err := state.Open(filepath.Join(t.TempDir(), "state.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	f := &fixture{root: t.TempDir(), repo: repo, st: db.Folder("www")}
	f.ix = New(Folder{ID: "www", Root: f.root, Ignore: ignore}, localfolder.New(f.root, f.st, nil), repo.NewSplitter(), nil)
	return f
}

func (f *fixture) write(t *testing.T, rel string, data []byte) {
	t.Helper()
	p := filepath.Join(f.root, rel)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, data, 0o644); err != nil {
		t.Fatal(err)
	}
}

// live lists the index's live entries.
func (f *fixture) live(t *testing.T) map[string]state.Entry {
	t.Helper()
	out := map[string]state.Entry{}
	err := f.st.Walk("", func(rel string, e state.Entry) error {
		if !e.Deleted {
			out[rel] = e
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func keys(m map[string]state.Entry) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

func TestScanIndexesTheTree(t *testing.T) {
	f := setup(t, nil)
	f.write(t, "index.php", []byte("<?php"))
	f.write(t, "wp-content/uploads/a.jpg", bytes.Repeat([]byte{7}, 3<<20))
	f.write(t, "empty", nil)
	os.Symlink("index.php", filepath.Join(f.root, "link"))
	f.write(t, ".syncd-tmp-1", []byte("ours, never content"))
	ctx := context.Background()
	if err := f.ix.Scan(ctx); err != nil {
		t.Fatal(err)
	}
	got := f.live(t)
	want := []string{"empty", "index.php", "link", "wp-content", "wp-content/uploads", "wp-content/uploads/a.jpg"}
	if !slices.Equal(keys(got), want) {
		t.Fatalf("index = %v, want %v", keys(got), want)
	}
	a := got["wp-content/uploads/a.jpg"]
	var sum int64
	for _, l := range a.Lengths {
		sum += int64(l)
	}
	if a.Size != 3<<20 || sum != a.Size || len(a.Content) != len(a.Lengths) || len(a.Content) == 0 {
		t.Errorf("a.jpg: size %d, %d chunks summing to %d", a.Size, len(a.Content), sum)
	}
	if got["link"].Target != "index.php" || got["link"].Type != "symlink" {
		t.Errorf("link = %+v", got["link"])
	}
	seq := f.st.Seq()
	read := f.ix.Stats().FilesRead
	if err := f.ix.Scan(ctx); err != nil {
		t.Fatal(err)
	}
	if f.st.Seq() != seq || f.ix.Stats().FilesRead != read {
		t.Errorf("a rescan of an unchanged tree changed the index (seq %d -> %d) or read files (%d -> %d)",
			seq, f.st.Seq(), read, f.ix.Stats().FilesRead)
	}
}

func TestChangesDeletesAndHints(t *testing.T) {
	f := setup(t, nil)
	rnd := rand.New(rand.NewPCG(1, 2))
	big := make([]byte, 24<<20) // at least 3 chunks: some are matched wherever the edit falls
	for i := range big {
		big[i] = byte(rnd.Uint32())
	}
	f.write(t, "db.sql", big)
	f.write(t, "dir/a", []byte("a"))
	f.write(t, "dir/sub/b", []byte("b"))
	f.write(t, "keep", []byte("k"))
	ctx := context.Background()
	if err := f.ix.Scan(ctx); err != nil {
		t.Fatal(err)
	}
	seq := f.st.Seq()
	// an in-place edit of the big file, a deleted directory
	copy(big[3<<20:], []byte("edited"))
	f.write(t, "db.sql", big)
	os.RemoveAll(filepath.Join(f.root, "dir"))
	if err := f.ix.Apply(ctx, []string{"db.sql", "dir", "dir/sub/b"}, false); err != nil {
		t.Fatal(err)
	}
	changed := map[string]state.Entry{}
	f.st.Changed(seq, func(rel string, e state.Entry) error { changed[rel] = e; return nil })
	want := []string{"db.sql", "dir", "dir/a", "dir/sub", "dir/sub/b"}
	if !slices.Equal(keys(changed), want) {
		t.Fatalf("changed = %v, want %v", keys(changed), want)
	}
	for _, p := range want[1:] {
		if !changed[p].Deleted {
			t.Errorf("%s not recorded as deleted", p)
		}
	}
	if m := f.ix.Stats().BytesMatched; m == 0 {
		t.Errorf("the edited file was chunked without matching its old chunks")
	}
	// the chunks equal those of splitting the file afresh
	fresh, err := f.repo.NewSplitter().Split(bytes.NewReader(big), int64(len(big)), nil, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(changed["db.sql"].Content, fresh.Content) {
		t.Errorf("indexed chunks differ from a fresh split")
	}
}

func TestIgnoredPathsAreNotIndexed(t *testing.T) {
	f := setup(t, func(rel string, isDir bool) bool { return rel == "cache" || filepath.Ext(rel) == ".tmp" })
	f.write(t, "cache/page.html", []byte("x"))
	f.write(t, "a.tmp", []byte("x"))
	f.write(t, "page.php", []byte("x"))
	if err := f.ix.Scan(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := keys(f.live(t)); !slices.Equal(got, []string{"page.php"}) {
		t.Errorf("index = %v, want only page.php", got)
	}
}

func TestDedupe(t *testing.T) {
	got := dedupe([]string{"a/b", "a", "c", "a/b/c", "c", "ab"})
	if want := []string{"a", "ab", "c"}; !slices.Equal(got, want) {
		t.Errorf("dedupe = %v, want %v", got, want)
	}
	if got := dedupe([]string{"x", ""}); !slices.Equal(got, []string{""}) {
		t.Errorf("dedupe with the root = %v", got)
	}
}

// TestRenameNextToSibling renames a directory to a name it prefixes
// ("inc" → "inc-r1"): the index must keep the new one whole.
func TestRenameNextToSibling(t *testing.T) {
	f := setup(t, nil)
	for i := range 5 {
		f.write(t, fmt.Sprintf("site/inc/f%d.php", i), []byte(fmt.Sprint(i)))
	}
	ctx := context.Background()
	if err := f.ix.Scan(ctx); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(filepath.Join(f.root, "site/inc"), filepath.Join(f.root, "site/inc-r1")); err != nil {
		t.Fatal(err)
	}
	// the new name first, then the old one: removing "site/inc" must not
	// touch "site/inc-r1"
	if err := f.ix.Apply(ctx, []string{"site/inc-r1"}, false); err != nil {
		t.Fatal(err)
	}
	if err := f.ix.Apply(ctx, []string{"site/inc"}, false); err != nil {
		t.Fatal(err)
	}
	want := []string{"site", "site/inc-r1"}
	for i := range 5 {
		want = append(want, fmt.Sprintf("site/inc-r1/f%d.php", i))
	}
	if got := keys(f.live(t)); !slices.Equal(got, want) {
		t.Errorf("index after the rename = %v, want %v", got, want)
	}
}

// A temporary file of the transfer receiver left by a crash is removed
// by the next scan once it is old; one being received is not; other names
// of ours are left alone.
func TestStaleTempRemoved(t *testing.T) {
	root := t.TempDir()
	stale, fresh := filepath.Join(root, ".syncd-tmp-0123"), filepath.Join(root, ".syncd-tmp-4567")
	os.WriteFile(stale, []byte("half"), 0o600)
	os.WriteFile(filepath.Join(root, ".syncd-restore-1"), []byte("x"), 0o600)
	db, err := state.Open(filepath.Join(t.TempDir(), "state.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	ix := New(Folder{ID: "f", Root: root}, localfolder.New(root, db.Folder("f"), nil), nil, nil)
	defer func(d time.Duration) { staleAfter = d }(staleAfter)
	staleAfter = 0 // every temporary file counts as old
	if err := ix.Apply(context.Background(), nil, true); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(stale); !os.IsNotExist(err) {
		t.Errorf("stale temporary file: %v", err)
	}
	staleAfter = time.Minute
	os.WriteFile(fresh, []byte("being received"), 0o600)
	if err := ix.Apply(context.Background(), nil, true); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(fresh); err != nil {
		t.Errorf("a temporary file being received was removed: %v", err)
	}
	if _, err := os.Stat(filepath.Join(root, ".syncd-restore-1")); err != nil {
		t.Errorf("restore temporary file removed: %v", err)
	}
}

// A removed tree is recorded contents first: every entry's delete has a
// lower sequence number than its directory's, so that a peer applying
// the changes in batches can remove each directory when it meets it.
func TestRemovedTreeDeletesDeepestFirst(t *testing.T) {
	f := setup(t, nil)
	for i := range 3 {
		for j := range 3 {
			f.write(t, fmt.Sprintf("gone/d%d/e%d/f.txt", i, j), []byte(fmt.Sprint(i, j)))
		}
	}
	f.write(t, "kept.txt", []byte("kept"))
	ctx := context.Background()
	if err := f.ix.Scan(ctx); err != nil {
		t.Fatal(err)
	}
	if err := os.RemoveAll(filepath.Join(f.root, "gone")); err != nil {
		t.Fatal(err)
	}
	if err := f.ix.Apply(ctx, []string{"gone"}, false); err != nil {
		t.Fatal(err)
	}
	seq := map[string]uint64{}
	err := f.st.Walk("", func(rel string, e state.Entry) error {
		if e.Deleted {
			seq[rel] = e.Version
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(seq) != 1+3+9+9 {
		t.Fatalf("%d deletes recorded, want 22: %v", len(seq), seq)
	}
	for p, v := range seq {
		if dir := path.Dir(p); dir != "." && seq[dir] <= v {
			t.Errorf("%s deleted at %d, not after %s (%d)", dir, seq[dir], p, v)
		}
	}
}

// A renamed directory's new entries are numbered before the old ones'
// deletes, whatever order the names sort in: a peer applying the changes
// in batches still has the old files to copy the content from.
func TestRenameNumbersNewBeforeOld(t *testing.T) {
	f := setup(t, nil)
	for i := range 20 {
		f.write(t, fmt.Sprintf("site/inc/f%02d.php", i), []byte(fmt.Sprint("content ", i)))
	}
	ctx := context.Background()
	if err := f.ix.Scan(ctx); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(filepath.Join(f.root, "site/inc"), filepath.Join(f.root, "site/inc-r1")); err != nil {
		t.Fatal(err)
	}
	// one report of both names, the old one sorting first
	if err := f.ix.Apply(ctx, []string{"site/inc", "site/inc-r1"}, false); err != nil {
		t.Fatal(err)
	}
	var maxNew, minOld uint64 = 0, ^uint64(0)
	err := f.st.Walk("", func(rel string, e state.Entry) error {
		switch {
		case strings.HasPrefix(rel, "site/inc-r1"):
			maxNew = max(maxNew, e.Version)
		case strings.HasPrefix(rel, "site/inc") && e.Deleted:
			minOld = min(minOld, e.Version)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if minOld == ^uint64(0) || maxNew == 0 || maxNew >= minOld {
		t.Errorf("new entries up to %d, old deletes from %d: want every new one first", maxNew, minOld)
	}
}

// What has waited flushAfter since the last commit is committed with the
// next write, so that peers take a file that took long to read while the
// rest of the Apply is read; writes that follow one another quickly wait
// for the batch (a commit is an fsync).
func TestSlowWritesCommittedAtOnce(t *testing.T) {
	f := setup(t, nil)
	committed := func(rel string) bool {
		_, ok, err := f.st.Get(rel)
		if err != nil {
			t.Fatal(err)
		}
		return ok
	}
	f.ix.batchSince = time.Now()
	if err := f.ix.put("a", state.Entry{Type: "file", Size: 1, Mode: 0o644}); err != nil {
		t.Fatal(err)
	}
	if committed("a") {
		t.Error("a write right after the last commit was committed at once")
	}
	f.ix.batchSince = time.Now().Add(-flushAfter)
	if err := f.ix.put("b", state.Entry{Type: "file", Size: 1, Mode: 0o644}); err != nil {
		t.Fatal(err)
	}
	if !committed("a") || !committed("b") {
		t.Errorf("writes %v after the last commit wait (a committed: %v, b: %v)", flushAfter, committed("a"), committed("b"))
	}
	if len(f.ix.batch) != 0 || time.Since(f.ix.batchSince) > time.Minute {
		t.Errorf("after the commit: %d writes pending, last commit %v ago", len(f.ix.batch), time.Since(f.ix.batchSince))
	}
}
