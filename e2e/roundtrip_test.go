package e2e

import (
	"bytes"
	"encoding/json"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// makeAwkward writes a tree with every kind of entry a snapshot must keep.
func makeAwkward(t *testing.T, root string) {
	t.Helper()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	write := func(rel string, data []byte, mode os.FileMode) {
		p := filepath.Join(root, rel)
		must(os.MkdirAll(filepath.Dir(p), 0o755))
		must(os.WriteFile(p, data, mode))
		must(os.Chmod(p, mode))
	}
	rnd := rand.New(rand.NewPCG(1, 2))
	big := make([]byte, 9<<20+123) // several chunks, some incompressible
	for i := range big {
		if i < 4<<20 {
			big[i] = byte(rnd.IntN(256))
		} else {
			big[i] = "abcdefgh\n"[i%9]
		}
	}
	write("plain.txt", []byte("hello\n"), 0o644)
	write("empty", nil, 0o600)
	write("dir/big.bin", big, 0o640)
	write("dir/exec.sh", []byte("#!/bin/sh\necho hi\n"), 0o755)
	write("dir/sub/deeper/leaf", []byte("leaf"), 0o444)
	write("line\nbreak", []byte("newline in name"), 0o644)
	write("bad-\xff\xfe-utf8", []byte("invalid utf-8 name"), 0o644)
	write("spaces and ünïcödé", []byte("x"), 0o644)
	write("links/original", []byte("shared by three names"), 0o644)
	must(os.Link(filepath.Join(root, "links/original"), filepath.Join(root, "links/second")))
	must(os.Link(filepath.Join(root, "links/original"), filepath.Join(root, "dir/third")))
	must(os.Symlink("../plain.txt", filepath.Join(root, "links/relative")))
	must(os.Symlink("/etc/hostname", filepath.Join(root, "links/absolute")))
	must(os.Symlink("does-not-exist", filepath.Join(root, "links/dangling")))
	must(os.MkdirAll(filepath.Join(root, "emptydir"), 0o755))
	must(os.MkdirAll(filepath.Join(root, "setgid"), 0o755))
	must(os.Chmod(filepath.Join(root, "setgid"), 0o2775))
	must(os.MkdirAll(filepath.Join(root, "private"), 0o700))
	write("private/secret", []byte("s"), 0o600)
	if os.Geteuid() == 0 { // ownership is restored when restoring as root
		must(os.Lchown(filepath.Join(root, "plain.txt"), 1234, 5678))
		must(os.Lchown(filepath.Join(root, "links/dangling"), 4321, 8765))
		must(os.Lchown(filepath.Join(root, "private"), 33, 33))
	}
	must(os.Chmod(filepath.Join(root, "dir/sub"), 0o555)) // read-only dir with content
	// mtimes with nanoseconds, set bottom-up so directories keep theirs
	when := time.Date(2021, 3, 4, 5, 6, 7, 123456789, time.UTC)
	var all []string
	filepath.Walk(root, func(p string, _ os.FileInfo, _ error) error {
		all = append(all, p)
		return nil
	})
	for i := len(all) - 1; i >= 0; i-- {
		fi, _ := os.Lstat(all[i])
		if fi.Mode()&os.ModeSymlink != 0 {
			continue
		}
		when = when.Add(time.Hour + 7)
		must(os.Chtimes(all[i], when, when))
	}
}

func TestRoundTripAwkwardTree(t *testing.T) {
	r := newRepo(t)
	src := filepath.Join(t.TempDir(), "src")
	makeAwkward(t, src)
	r.snapshot(t, src)

	target := t.TempDir()
	ok(t, nil, "restore", append([]string{"latest"}, r.flags("--identity", r.dataKey, "--target", target)...)...)
	sameTree(t, src, filepath.Join(target, src))

	// The same restore, file by file, with the system's diff.
	if out := run(t, nil, "/usr/bin/diff", "-r", "--no-dereference", src, filepath.Join(target, src)); out.code != 0 {
		t.Errorf("diff -r: %s", out)
	}

	// --include restores only the named path and what is below it.
	part := t.TempDir()
	ok(t, nil, "restore", append([]string{"latest"}, r.flags("--identity", r.dataKey, "--target", part,
		"--include", filepath.Join(src, "dir/sub"))...)...)
	sameTree(t, filepath.Join(src, "dir/sub"), filepath.Join(part, src, "dir/sub"))
	if _, err := os.Lstat(filepath.Join(part, src, "plain.txt")); !os.IsNotExist(err) {
		t.Errorf("--include dir/sub also restored plain.txt (err %v)", err)
	}
	ok(t, nil, "restore", append([]string{"verify"}, r.flags("--identity", r.dataKey, "--read-data")...)...)
}

// snapshotsJSON lists the snapshots through the CLI.
func snapshotsJSON(t *testing.T, r *repo) []map[string]any {
	t.Helper()
	var list []map[string]any
	out := ok(t, nil, "restore", append([]string{"snapshots", "--json"}, r.flags()...)...)
	if err := json.Unmarshal([]byte(out), &list); err != nil {
		t.Fatalf("snapshots --json: %v in %q", err, out)
	}
	return list
}

func TestIncrementalReadsOnlyChanges(t *testing.T) {
	r := newRepo(t)
	src := filepath.Join(t.TempDir(), "src")
	makeAwkward(t, src)
	r.snapshot(t, src)
	r.snapshot(t, src)
	if err := os.WriteFile(filepath.Join(src, "plain.txt"), []byte("changed\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	r.snapshot(t, src)
	list := snapshotsJSON(t, r)
	if len(list) != 3 {
		t.Fatalf("%d snapshots, want 3", len(list))
	}
	read := func(i int) float64 { return list[i]["stats"].(map[string]any)["files_read"].(float64) }
	if read(0) < 10 || read(1) != 0 || read(2) != 1 {
		t.Errorf("files read per snapshot = %v, %v, %v; want all, 0, 1", read(0), read(1), read(2))
	}
	for _, key := range []string{"id", "time", "host", "paths", "tags"} {
		if _, ok := list[0][key]; !ok {
			t.Errorf("snapshots --json lacks %q", key)
		}
	}
	if _, err := time.Parse(time.RFC3339, list[0]["time"].(string)); err != nil {
		t.Errorf("time is not RFC 3339: %v", err)
	}
	target := t.TempDir()
	ok(t, nil, "restore", append([]string{"latest"}, r.flags("--identity", r.dataKey, "--target", target)...)...)
	sameTree(t, src, filepath.Join(target, src))
}

func TestWriterWithoutDataIdentity(t *testing.T) {
	r := newRepo(t)
	src := filepath.Join(t.TempDir(), "src")
	makeAwkward(t, src)
	id := r.snapshot(t, src)
	if out := ok(t, nil, "restore", append([]string{"snapshots"}, r.flags()...)...); !strings.Contains(out, id) {
		t.Errorf("snapshots does not list %s:\n%s", id, out)
	}
	ls := ok(t, nil, "restore", append([]string{"ls", id, filepath.Join(src, "dir")}, r.flags()...)...)
	if !strings.Contains(ls, "dir/big.bin") || strings.Contains(ls, "plain.txt") {
		t.Errorf("ls of dir: %s", ls)
	}
	target := filepath.Join(t.TempDir(), "t")
	res := run(t, nil, "restore", append([]string{"latest"}, r.flags("--target", target)...)...)
	if res.code != 2 || !strings.Contains(res.stderr, "data identity") {
		t.Errorf("restore without --identity: want exit 2 naming the data identity; %s", res)
	}
	res = run(t, nil, "restore", append([]string{"latest"}, r.flags("--identity", r.indexKey, "--target", target)...)...)
	if res.code != 1 || !strings.Contains(res.stderr, "data identity "+r.indexKey) || strings.Count(res.stderr, "\n") != 1 {
		t.Errorf("restore with the index key as identity: want one line naming %s; %s", r.indexKey, res)
	}
	if _, err := os.Stat(target); !os.IsNotExist(err) {
		t.Errorf("a failed restore created the target (err %v)", err)
	}
	res = run(t, nil, "restore", append([]string{"verify", "--read-data"}, r.flags("--identity", r.indexKey)...)...)
	if res.code == 0 {
		t.Errorf("verify --read-data with the index key as data identity passed: %s", res)
	}
}

func TestLsQuotesAwkwardNames(t *testing.T) {
	r := newRepo(t)
	src := filepath.Join(t.TempDir(), "src")
	makeAwkward(t, src)
	id := r.snapshot(t, src)
	out := ok(t, nil, "restore", append([]string{"ls", id}, r.flags()...)...)
	for _, want := range []string{`line\nbreak"`, `bad-\xff\xfe-utf8"`, "links/relative -> ../plain.txt"} {
		if !strings.Contains(out, want) {
			t.Errorf("ls output lacks %q", want)
		}
	}
	js := ok(t, nil, "restore", append([]string{"ls", "--json", id}, r.flags()...)...)
	n := 0
	for _, line := range bytes.Split(bytes.TrimSpace([]byte(js)), []byte("\n")) {
		var e map[string]any
		if err := json.Unmarshal(line, &e); err != nil {
			t.Fatalf("ls --json line %q: %v", line, err)
		}
		n++
	}
	if n != strings.Count(strings.TrimSpace(out), "\n")+1 {
		t.Errorf("ls --json has %d entries, ls has %d lines", n, strings.Count(out, "\n"))
	}
}
