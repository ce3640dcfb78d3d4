package main

import (
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

const rsyncStatsOut = `
Number of files: 583 (reg: 564, dir: 19)
Number of created files: 582 (reg: 564, dir: 18)
Number of deleted files: 0
Number of regular files transferred: 564
Total file size: 8,827,971 bytes
Total transferred file size: 8,827,971 bytes
Literal data: 8,827,971 bytes
Matched data: 0 bytes
File list size: 0
File list generation time: 0.001 seconds
File list transfer time: 0.000 seconds
Total bytes sent: 8,868,378
Total bytes received: 10,878

sent 8,868,378 bytes  received 10,878 bytes  17,758,512.00 bytes/sec
total size is 8,827,971  speedup is 0.99
`

func TestParseRsyncStats(t *testing.T) {
	st, err := parseRsyncStats(rsyncStatsOut)
	if err != nil {
		t.Fatal(err)
	}
	if want := (rsyncStats{Sent: 8868378, Received: 10878, Literal: 8827971}); st != want {
		t.Errorf("parseRsyncStats = %+v, want %+v", st, want)
	}
	if _, err := parseRsyncStats("sent 1 bytes  received 2 bytes\n"); err == nil {
		t.Error("parseRsyncStats without --stats totals: no error")
	}
	if _, err := parseRsyncStats("Total bytes sent: many\nTotal bytes received: 1\nLiteral data: 1 bytes\n"); err == nil {
		t.Error("parseRsyncStats of a non-number: no error")
	}
}

func TestDiffMirror(t *testing.T) {
	file := mirrorEntry{mode: 0o644, size: 3, mtime: 100}
	want := map[string]mirrorEntry{
		".":     {mode: fs.ModeDir | 0o755, mtime: 1},
		"f":     file,
		"g":     file,
		"l":     {mode: fs.ModeSymlink | 0o777, link: "f"},
		"d":     {mode: fs.ModeDir | 0o700, mtime: 5},
		"gone":  file,
		"type":  file,
		"mtime": file,
	}
	got := map[string]mirrorEntry{
		".":     {mode: fs.ModeDir | 0o755, mtime: 2}, // a directory's mtime is not compared
		"f":     file,
		"g":     {mode: 0o600, size: 4, mtime: 100},
		"l":     {mode: fs.ModeSymlink | 0o777, link: "g"},
		"d":     {mode: fs.ModeDir | 0o700, mtime: 5},
		"type":  {mode: fs.ModeDir | 0o644},
		"mtime": {mode: 0o644, size: 3, mtime: 101},
		"extra": file,
	}
	problems, files := diffMirror(want, got)
	wantProblems := []string{
		"g: mode -rw-------, want -rw-r--r--, size 4, want 3",
		"missing: gone",
		`l: symlink to "g", want "f"`,
		"mtime: mtime 101, want 100",
		"type: type directory, want file",
		"extra: extra",
	}
	if strings.Join(problems, "\n") != strings.Join(wantProblems, "\n") {
		t.Errorf("problems:\n%s\nwant:\n%s", strings.Join(problems, "\n"), strings.Join(wantProblems, "\n"))
	}
	if strings.Join(files, ",") != "f" {
		t.Errorf("files to compare = %q, want [f]", files)
	}
}

func TestCompareMirror(t *testing.T) {
	ts := time.Unix(1700000000, 123456789)
	mk := func() string {
		d := t.TempDir()
		must(t, os.MkdirAll(filepath.Join(d, "sub"), 0o750))
		must(t, os.WriteFile(filepath.Join(d, "sub", "f"), []byte("hello"), 0o640))
		must(t, os.WriteFile(filepath.Join(d, "big"), []byte(strings.Repeat("x", 3<<20)), 0o644))
		must(t, os.Symlink("sub/f", filepath.Join(d, "l")))
		for _, p := range []string{"sub/f", "big"} {
			must(t, os.Chtimes(filepath.Join(d, p), ts, ts))
		}
		return d
	}
	a, b := mk(), mk()
	if p := compareMirror(a, b); len(p) != 0 {
		t.Fatalf("equal trees differ: %q", p)
	}
	// Same size and mtime, other bytes (past the first buffer); another
	// symlink target.
	big := []byte(strings.Repeat("x", 3<<20))
	big[2<<20+5] = 'y'
	must(t, os.WriteFile(filepath.Join(b, "big"), big, 0o644))
	must(t, os.Chtimes(filepath.Join(b, "big"), ts, ts))
	must(t, os.Remove(filepath.Join(b, "l")))
	must(t, os.Symlink("sub", filepath.Join(b, "l")))
	must(t, os.Chmod(filepath.Join(b, "sub"), 0o755))
	got := strings.Join(compareMirror(a, b), "\n")
	for _, w := range []string{"big: content differs", `l: symlink to "sub", want "sub/f"`, "sub: mode drwxr-xr-x, want drwxr-x---"} {
		if !strings.Contains(got, w) {
			t.Errorf("problems %q lack %q", got, w)
		}
	}
	if p := compareMirror(a, filepath.Join(b, "nothing")); len(p) != 1 || !strings.Contains(p[0], "scanning the replica") {
		t.Errorf("compareMirror with no replica = %q", p)
	}
}

func TestSameContentLengths(t *testing.T) {
	d := t.TempDir()
	a, b := filepath.Join(d, "a"), filepath.Join(d, "b")
	must(t, os.WriteFile(a, []byte("abcdef"), 0o644))
	must(t, os.WriteFile(b, []byte("abcdefg"), 0o644))
	buf1, buf2 := make([]byte, 4), make([]byte, 4)
	if same, err := sameContent(a, b, buf1, buf2); err != nil || same {
		t.Errorf("sameContent(prefix) = %v, %v; want false, nil", same, err)
	}
	if same, err := sameContent(a, a, buf1, buf2); err != nil || !same {
		t.Errorf("sameContent(itself) = %v, %v; want true, nil", same, err)
	}
}

func TestMirrorDone(t *testing.T) {
	st := func(state string, files, bytes, pending int64, connected bool, lag, send int64, behind uint64) *nodeStatus {
		return &nodeStatus{
			Folders: []nodeFolder{{State: state, Files: files, Bytes: bytes, Pending: pending}},
			Peers:   []nodePeer{{Connected: connected, LagFiles: lag, SendFiles: send, Behind: behind}},
		}
	}
	want := treeCount{10, 100}
	for _, tc := range []struct {
		a, b *nodeStatus
		done bool
	}{
		{st("ok", 10, 100, 0, true, 0, 0, 0), st("ok", 10, 100, 0, true, 0, 0, 0), true},
		{st("scanning", 10, 100, -1, true, 0, 0, 0), st("ok", 10, 100, 0, true, 0, 0, 0), false},
		{st("ok", 9, 90, 0, true, 0, 0, 0), st("ok", 9, 90, 0, true, 0, 0, 0), false},     // A has not indexed the tree
		{st("ok", 10, 100, 0, true, 0, 3, 0), st("ok", 10, 100, 0, true, 0, 0, 0), false}, // A has more to send
		{st("ok", 10, 100, 0, true, 0, 0, 0), st("ok", 10, 100, 0, true, 1, 0, 0), false}, // B is applying
		{st("ok", 10, 100, 0, true, 0, 0, 0), st("ok", 10, 100, 0, true, 0, 0, 2), false}, // B is behind
		{st("ok", 10, 100, 0, true, 0, 0, 0), st("ok", 10, 100, 0, false, 0, 0, 0), false},
		{st("ok", 10, 100, 0, true, 0, 0, 0), st("ok", 10, 99, 0, true, 0, 0, 0), false},
		{st("ok", 10, 100, 0, true, 0, 0, 0), st("failed", 10, 100, 0, true, 0, 0, 0), false},
	} {
		if done, why := mirrorDone(tc.a, tc.b, want); done != tc.done {
			t.Errorf("mirrorDone(A %+v, B %+v) = %v (%s), want %v", *tc.a, *tc.b, done, why, tc.done)
		}
	}
}

func TestRsyncdConf(t *testing.T) {
	c, err := rsyncdConf("127.0.0.1:8730", "/x/log", 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	for _, w := range []string{"port = 8730\n", "address = 127.0.0.1\n", "[bench]\n", "path = /\n", "use chroot = no\n", "munge symlinks = no\n", "read only = no\n"} {
		if !strings.Contains(c, w) {
			t.Errorf("rsyncd.conf lacks %q:\n%s", w, c)
		}
	}
	if _, err := rsyncdConf("nonsense", "/y", 0, 0); err == nil {
		t.Error("rsyncdConf(bad address): no error")
	}
}

func TestProcCPUChildren(t *testing.T) {
	if c := procCPUChildren(os.Getpid()); c < 0 {
		t.Errorf("procCPUChildren(self) = %v, want ≥ 0", c)
	}
	if c := procCPUChildren(-5); c != -1 {
		t.Errorf("procCPUChildren(-5) = %v, want -1", c)
	}
}
