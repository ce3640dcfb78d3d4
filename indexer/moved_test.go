package indexer

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"
)

// A renamed directory's files are indexed from their old entries, not
// read again, unless one changed since (its ctime says so); a file new
// in the renamed directory is read. The reports come as the watcher sends
// them: the new names first, the old directory in a later batch.
func TestRenamedDirNotRead(t *testing.T) {
	f := setup(t, nil)
	for i := range 20 {
		f.write(t, fmt.Sprintf("rel-1/sub/f%02d.php", i), []byte(fmt.Sprintf("<?php // file %d\n", i)))
	}
	f.write(t, "rel-1/big.bin", make([]byte, 3<<20))
	ctx := context.Background()
	if err := f.ix.Scan(ctx); err != nil {
		t.Fatal(err)
	}
	before := f.live(t)
	if err := os.Rename(filepath.Join(f.root, "rel-1"), filepath.Join(f.root, "rel-2")); err != nil {
		t.Fatal(err)
	}
	// one file changed after the rename, its mtime put back: same size
	// and mtime, but not the same content
	changed := filepath.Join(f.root, "rel-2/sub/f07.php")
	fi, _ := os.Stat(changed)
	if err := os.WriteFile(changed, []byte("<?php // FILE 7\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Chtimes(changed, time.Time{}, fi.ModTime()); err != nil {
		t.Fatal(err)
	}
	f.write(t, "rel-2/sub/new.php", []byte("<?php // new\n"))

	read := f.ix.Stats().FilesRead
	var reported []string
	for rel := range before {
		if before[rel].Type == "file" {
			reported = append(reported, "rel-2"+rel[len("rel-1"):])
		}
	}
	reported = append(reported, "rel-2/sub/new.php", "rel-2", "rel-2/sub")
	if err := f.ix.Apply(ctx, reported, false); err != nil {
		t.Fatal(err)
	}
	if err := f.ix.Apply(ctx, []string{"rel-1"}, false); err != nil {
		t.Fatal(err)
	}
	st := f.ix.Stats()
	if st.FilesMoved != 20 || st.FilesRead-read != 2 {
		t.Errorf("%d files taken as moved and %d read, want 20 and 2 (the changed one and the new one)", st.FilesMoved, st.FilesRead-read)
	}
	after := f.live(t)
	var want []string
	for rel := range before {
		want = append(want, "rel-2"+rel[len("rel-1"):])
	}
	want = append(want, "rel-2/sub/new.php")
	slices.Sort(want)
	if got := keys(after); !slices.Equal(got, want) {
		t.Fatalf("index after the rename = %v, want %v", got, want)
	}
	for rel, e := range after {
		if e.Type != "file" {
			continue
		}
		data, err := os.ReadFile(filepath.Join(f.root, rel))
		if err != nil {
			t.Fatal(err)
		}
		split, err := f.ix.sp.Split(bytes.NewReader(data), int64(len(data)), nil, nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(e.Content, split.Content) {
			t.Errorf("%s: indexed content is not what the file holds", rel)
		}
	}
}
