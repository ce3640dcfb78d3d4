package main

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"
)

func TestOursDiffCounts(t *testing.T) {
	for _, tc := range []struct {
		line string
		want diffCounts
	}{
		{"no changes", diffCounts{}},
		{"3 added (2 files, 8 B), 1 removed (1 files, 4 B), 3 changed (1 content, 1 mode, 1 mtime; files 14 B -> 16 B)",
			diffCounts{added: 3, addedFiles: 2, removed: 1, removedFiles: 1, changed: 1}},
		{"2,1 added", diffCounts{}}, // not a summary: an error
		{"5 added (5 files, 1.2 MiB), 0 removed (0 files, 0 B), 2 changed (2 mode; files 1 KiB -> 1 KiB)",
			diffCounts{added: 5, addedFiles: 5}},
		{"0 added (0 files, 0 B), 0 removed (0 files, 0 B), 20 changed (20 content; files 1 MiB -> 1 MiB)",
			diffCounts{changed: 20}},
	} {
		got, err := oursDiffCounts(tc.line)
		if (err != nil) != (tc.line == "2,1 added") {
			t.Errorf("oursDiffCounts(%q): error %v", tc.line, err)
		}
		if got != tc.want {
			t.Errorf("oursDiffCounts(%q) = %+v, want %+v", tc.line, got, tc.want)
		}
	}
}

func TestResticDiffCounts(t *testing.T) {
	out := "comparing snapshot 1 to 2:\n\n+    /a/new.php\nM    /a/db.sql\n\n" +
		"Files:        1963 new,  1923 removed,    20 changed\n" +
		"Dirs:           12 new,    10 removed\n" +
		"Others:          1 new,     0 removed\n" +
		"Data Blobs:   2000 new,  1900 removed\n" +
		"Tree Blobs:     30 new,    28 removed\n" +
		"  Added:   100.000 MiB\n  Removed: 90.000 MiB\n"
	got, err := resticDiffCounts(out)
	want := diffCounts{added: 1976, addedFiles: 1963, removed: 1933, removedFiles: 1923, changed: 20}
	if err != nil || got != want {
		t.Errorf("resticDiffCounts = %+v, %v; want %+v", got, err, want)
	}
	if _, err := resticDiffCounts("Files: 1 new, 2 removed, 3 changed\n"); err == nil {
		t.Error("resticDiffCounts without Dirs and Others: no error")
	}
}

func TestLineTally(t *testing.T) {
	tl := &lineTally{prefix: "/"}
	for _, s := range []string{"Found matching entries in snapshot x\n/a/b", "\n/c\n\n", "/d/e", "\n12 match(es)"} {
		fmt.Fprint(tl, s)
	}
	tl.Close()
	if tl.n != 3 || string(tl.last) != "12 match(es)" {
		t.Errorf("lineTally: %d lines, last %q; want 3, %q", tl.n, tl.last, "12 match(es)")
	}
}

func TestFindTree(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "tree")
	tr, err := newFindTree(dir, 3, 20)
	if err != nil {
		t.Fatal(err)
	}
	if got := tr.count("*.html"); got != 30 {
		t.Errorf("count(*.html) = %d, want 30", got)
	}
	for k := 1; k <= 4; k++ {
		if err := tr.round(k); err != nil {
			t.Fatal(err)
		}
	}
	if got, want := tr.count("new4*.php"), findNew; got != want {
		t.Errorf("count(new4*.php) = %d, want %d", got, want)
	}
	n := 0
	err = filepath.WalkDir(dir, func(p string, e os.DirEntry, err error) error {
		if err == nil && e.Type().IsRegular() {
			n++
		}
		return err
	})
	if err != nil || n != len(tr.files) || n != 60+4*(findNew-findDeletes) {
		t.Errorf("%d files on disk (%v), %d known, want %d", n, err, len(tr.files), 60+4*(findNew-findDeletes))
	}
}
