package atdir

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"
)

// tree makes a directory holding what files says (a path ending in "/" is
// a directory, "->x" a symlink to x) and returns it with its os.Root.
func tree(t *testing.T, files ...string) (string, *os.Root) {
	t.Helper()
	dir := t.TempDir()
	for _, f := range files {
		name, target, link := cut(f)
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		var err error
		switch {
		case link:
			err = os.Symlink(target, p)
		case name[len(name)-1] == '/':
			err = os.MkdirAll(p, 0o755)
		default:
			err = os.WriteFile(p, []byte(name), 0o644)
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	root, err := os.OpenRoot(dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { root.Close() })
	return dir, root
}

func cut(f string) (name, target string, link bool) {
	for i := 0; i+2 <= len(f); i++ {
		if f[i:i+2] == "->" {
			return f[:i], f[i+2:], true
		}
	}
	return f, "", false
}

// wantPathErr fails unless err is a *fs.PathError with op and rel that
// matches want.
func wantPathErr(t *testing.T, err error, op, rel string, want error) {
	t.Helper()
	var pe *fs.PathError
	if !errors.As(err, &pe) || pe.Op != op || pe.Path != rel || !errors.Is(err, want) {
		t.Errorf("got %v, want %s %s: %v", err, op, rel, want)
	}
}

// Every directory on the way is opened without following a symlink: a
// symlinked directory is refused as not a directory, whether it points
// inside the root or out of it, and for every operation.
func TestSymlinkedDirectoryRefused(t *testing.T) {
	outside := t.TempDir()
	if err := os.WriteFile(filepath.Join(outside, "f"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	_, root := tree(t, "real/f", "real/sub/", "in->real", "out->"+outside, "real/deep->sub")
	d := New(root, 0)
	defer d.Close()
	for _, rel := range []string{"in/f", "out/f", "real/deep/x", "in/sub/x"} {
		_, err := d.Lstat(rel)
		wantPathErr(t, err, "open", rel, syscall.ENOTDIR)
		_, err = d.OpenFile(rel, os.O_RDONLY, 0)
		wantPathErr(t, err, "open", rel, syscall.ENOTDIR)
		wantPathErr(t, d.Mkdir(rel, 0o755), "open", rel, syscall.ENOTDIR)
		wantPathErr(t, d.Remove(rel), "open", rel, syscall.ENOTDIR)
		wantPathErr(t, d.Chtimes(rel, time.Now()), "open", rel, syscall.ENOTDIR)
	}
	wantPathErr(t, d.ChmodDir("in", 0o700), "chmod", "in", syscall.ENOTDIR)
	if _, err := d.Acquire("out"); !errors.Is(err, syscall.ENOTDIR) {
		t.Errorf("Acquire of a symlink: %v, want ENOTDIR", err)
	}
	// a symlink as the last element is looked at, never through
	fi, err := d.Lstat("in")
	if err != nil || fi.Mode()&fs.ModeSymlink == 0 {
		t.Errorf("Lstat of a symlink: %v, %v", fi, err)
	}
	if target, err := d.Readlink("out"); err != nil || target != outside {
		t.Errorf("Readlink: %q, %v", target, err)
	}
	_, err = d.OpenFile("out", os.O_RDONLY, 0)
	wantPathErr(t, err, "open", "out", syscall.ELOOP)
	// and what is behind a refused symlink is unchanged
	if _, err := os.Stat(filepath.Join(outside, "f")); err != nil {
		t.Error(err)
	}
}

// A file where a directory should be is refused the same way.
func TestFileWhereDirectoryShouldBe(t *testing.T) {
	_, root := tree(t, "a/file")
	d := New(root, 0)
	defer d.Close()
	_, err := d.Lstat("a/file/x")
	wantPathErr(t, err, "open", "a/file/x", syscall.ENOTDIR)
	wantPathErr(t, d.ChmodDir("a/file", 0o700), "chmod", "a/file", syscall.ENOTDIR)
	_, err = d.Lstat("missing/x")
	wantPathErr(t, err, "open", "missing/x", syscall.ENOENT)
	if !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("a missing directory does not match fs.ErrNotExist: %v", err)
	}
}

// ".." is never handed to the kernel, and a path that ends in no name, or
// starts at "/", is refused.
func TestNoDotDot(t *testing.T) {
	dir, root := tree(t, "a/f")
	if err := os.WriteFile(filepath.Join(filepath.Dir(dir), "above"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	defer os.Remove(filepath.Join(filepath.Dir(dir), "above"))
	d := New(root, 0)
	defer d.Close()
	for _, rel := range []string{"../above", "a/../../above", "..", "a/..", "a/.", ".", "", "a/", "/a/f", "/"} {
		if fi, err := d.Lstat(rel); err == nil {
			t.Errorf("Lstat(%q) = %v, want an error", rel, fi.Name())
		}
	}
	// within the root, a ".." is taken away by cleaning the path
	if _, err := d.Lstat("a/../a/f"); err != nil {
		t.Errorf("Lstat(a/../a/f): %v", err)
	}
}

// Only a lookup remembers a missing directory: it then answers for it
// without looking again, even once the directory is made.
func TestMissingRememberedOnlyInLookup(t *testing.T) {
	for _, lookup := range []bool{false, true} {
		t.Run(fmt.Sprint("lookup=", lookup), func(t *testing.T) {
			dir, root := tree(t, "f")
			d := New(root, 0)
			if lookup {
				d = NewLookup(root)
			}
			defer d.Close()
			for _, rel := range []string{"d/f", "d/e/f"} {
				_, err := d.Lstat(rel)
				wantPathErr(t, err, "open", rel, syscall.ENOENT)
			}
			if err := os.MkdirAll(filepath.Join(dir, "d/e"), 0o755); err != nil {
				t.Fatal(err)
			}
			os.WriteFile(filepath.Join(dir, "d/e/f"), nil, 0o644)
			_, err := d.Lstat("d/e/f")
			if lookup {
				wantPathErr(t, err, "open", "d/e/f", syscall.ENOENT)
			} else if err != nil {
				t.Errorf("a directory made since is still missing: %v", err)
			}
			// what is found stays found either way
			if _, err := d.Lstat("f"); err != nil {
				t.Error(err)
			}
		})
	}
}

// Rename with noReplace leaves what is at the new name, and says so with
// fs.ErrExist; without, it replaces it.
func TestRenameNoReplace(t *testing.T) {
	dir, root := tree(t, "d/tmp", "d/f", "d/sub/x", "e/")
	d := New(root, 0)
	defer d.Close()
	read := func(rel string) string {
		b, _ := os.ReadFile(filepath.Join(dir, rel))
		return string(b)
	}
	err := d.Rename("d/tmp", "d/f", true)
	wantPathErr(t, err, "rename", "d/f", fs.ErrExist)
	if read("d/f") != "d/f" || read("d/tmp") != "d/tmp" {
		t.Errorf("after a refused rename: d/f holds %q, d/tmp %q", read("d/f"), read("d/tmp"))
	}
	if err := d.Rename("d/tmp", "d/sub", true); !errors.Is(err, fs.ErrExist) {
		t.Errorf("noReplace rename onto a directory: %v, want fs.ErrExist", err)
	}
	if err := d.Rename("d/tmp", "d/g", true); err != nil {
		t.Fatalf("rename to a free name: %v", err)
	}
	if read("d/g") != "d/tmp" {
		t.Errorf("d/g holds %q", read("d/g"))
	}
	if err := d.Rename("d/g", "d/f", false); err != nil || read("d/f") != "d/tmp" {
		t.Errorf("plain rename: %v; d/f holds %q", err, read("d/f"))
	}
	if err := d.Rename("d/f", "e/f", false); err == nil {
		t.Error("rename across directories: no error")
	}
	for _, to := range []string{"d/.", "d/"} {
		var pe *fs.PathError
		if err := d.Rename("d/f", to, false); err == nil || errors.As(err, &pe) {
			t.Errorf("rename to %q: %v, want it refused before any system call", to, err)
		}
	}
}

// The other operations each do what their os counterpart does.
func TestOperations(t *testing.T) {
	dir, root := tree(t, "d/f", "d/link->f", "d/full/x")
	if err := syscall.Mkfifo(filepath.Join(dir, "d/fifo"), 0o600); err != nil {
		t.Fatal(err)
	}
	d := New(root, 0)
	defer d.Close()
	for _, rel := range []string{"d/f", "d/link", "d", "d/fifo"} {
		got, err := d.Lstat(rel)
		if err != nil {
			t.Fatal(err)
		}
		want, _ := os.Lstat(filepath.Join(dir, rel))
		gs, ws := got.Sys().(*syscall.Stat_t), want.Sys().(*syscall.Stat_t)
		if got.Name() != want.Name() || got.Mode() != want.Mode() || got.Size() != want.Size() ||
			!got.ModTime().Equal(want.ModTime()) || got.IsDir() != want.IsDir() || *gs != *ws {
			t.Errorf("Lstat(%s) = %v %v %v, os.Lstat %v %v %v", rel, got.Name(), got.Mode(), got.Size(), want.Name(), want.Mode(), want.Size())
		}
	}
	if err := d.Mkdir("d/new", 0o700); err != nil {
		t.Fatal(err)
	}
	wantPathErr(t, d.Mkdir("d/new", 0o700), "mkdir", "d/new", fs.ErrExist)
	want := 0o750 | fs.ModeSetgid | fs.ModeSticky
	if err := d.ChmodDir("d/new", want); err != nil {
		t.Fatal(err)
	}
	if fi, _ := os.Lstat(filepath.Join(dir, "d/new")); fi.Mode() != fs.ModeDir|want {
		t.Errorf("after ChmodDir: %v, want %v", fi.Mode(), fs.ModeDir|want)
	}
	mtime := time.Unix(1_000_000_000, 5)
	if err := d.Chtimes("d/link", mtime); err != nil {
		t.Fatal(err)
	}
	if fi, _ := os.Lstat(filepath.Join(dir, "d/link")); !fi.ModTime().Equal(mtime) {
		t.Errorf("link mtime %v, want %v", fi.ModTime(), mtime)
	}
	if fi, _ := os.Lstat(filepath.Join(dir, "d/f")); fi.ModTime().Equal(mtime) {
		t.Error("Chtimes of a symlink changed what it points to")
	}
	f, err := d.OpenFile("d/made", os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	f.Close()
	_, err = d.OpenFd("d/made", os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	wantPathErr(t, err, "open", "d/made", fs.ErrExist)
	for _, rel := range []string{"d/made", "d/link", "d/new"} {
		if err := d.Remove(rel); err != nil {
			t.Errorf("Remove(%s): %v", rel, err)
		}
		if _, err := os.Lstat(filepath.Join(dir, rel)); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("%s still there after Remove: %v", rel, err)
		}
	}
	wantPathErr(t, d.Remove("d/full"), "remove", "d/full", syscall.ENOTEMPTY)
	_, err = d.Lstat("d/none")
	wantPathErr(t, err, "lstat", "d/none", fs.ErrNotExist)
	_, err = d.Readlink("d/f")
	wantPathErr(t, err, "readlink", "d/f", syscall.EINVAL)
	// Close, then use again: the directories open anew
	d.Close()
	if _, err := d.Lstat("d/f"); err != nil {
		t.Errorf("after Close: %v", err)
	}
}

// With a bound, the directories not acquired are closed least recently
// used first, so that no more than the bound stay open; an acquired one
// is never closed under its holder.
func TestBound(t *testing.T) {
	dir, root := tree(t, "a/", "b/", "c/", "d/", "e/")
	d := New(root, 2)
	defer d.Close()
	open := func() int {
		d.mu.Lock()
		defer d.mu.Unlock()
		return len(d.open)
	}
	var held []*Dir
	for _, rel := range []string{"a", "b", "c", "d"} {
		o, err := d.Acquire(rel)
		if err != nil {
			t.Fatal(err)
		}
		held = append(held, o)
	}
	if n := open(); n != 4 { // the root they were opened through, not held, is closed
		t.Errorf("%d open while four are held, want 4", n)
	}
	for i, o := range held {
		var st syscall.Stat_t
		want, _ := os.Stat(filepath.Join(dir, "abcd"[i:i+1]))
		if err := syscall.Fstat(o.Fd(), &st); err != nil || st.Ino != want.Sys().(*syscall.Stat_t).Ino {
			t.Errorf("held directory %d: %v", i, err)
		}
		o.Release()
	}
	if _, err := d.Lstat("e/x"); !errors.Is(err, fs.ErrNotExist) {
		t.Fatal(err)
	}
	if n := open(); n != 2 {
		t.Errorf("%d open after all were released and one more opened, want 2", n)
	}
	// the most recently used stayed; an evicted one opens again
	d.mu.Lock()
	_, e := d.open["e"]
	_, a := d.open["a"]
	d.mu.Unlock()
	if !e || a {
		t.Errorf("open after eviction: e %v, a %v; want e only", e, a)
	}
	if err := d.Mkdir("a/new", 0o755); err != nil {
		t.Error(err)
	}
	// a release after Close gives back nothing to the new set: the
	// directory opened again in its place stays while held
	o, _ := d.Acquire("b")
	d.Close()
	o.Release()
	if n := open(); n != 0 {
		t.Errorf("%d open after Close and a late release", n)
	}
	b, err := d.Acquire("b")
	if err != nil {
		t.Fatal(err)
	}
	defer b.Release()
	for _, rel := range []string{"c/x", "d/x", "e/x"} {
		d.Lstat(rel)
	}
	d.mu.Lock()
	again := d.open["b"]
	d.mu.Unlock()
	if again != b {
		t.Error("a held directory was closed in place of one released after Close")
	}
}

// The directory an operation works in stays open until the operation
// ends, however many others are opened meanwhile past the bound.
func TestHeldDuringOperation(t *testing.T) {
	dir, root := tree(t, "a/f", "b/", "c/", "d/")
	a, err := os.Stat(filepath.Join(dir, "a"))
	if err != nil {
		t.Fatal(err)
	}
	d := New(root, 1)
	defer d.Close()
	err = d.do("test", "a/f", func(dirfd int, name string) error {
		for _, rel := range []string{"b/x", "c/x", "d/x"} {
			d.Lstat(rel)
		}
		var st syscall.Stat_t
		if err := syscall.Fstat(dirfd, &st); err != nil {
			return err
		}
		if st.Ino != a.Sys().(*syscall.Stat_t).Ino {
			return fmt.Errorf("descriptor %d is no longer directory a", dirfd)
		}
		return nil
	})
	if err != nil {
		t.Error(err)
	}
	if _, err := d.Lstat("a/f"); err != nil {
		t.Error(err)
	}
}

// Many goroutines at once, with a bound small enough that directories are
// closed and opened again all the time: every operation finds its own
// file, and nothing is left open.
func TestConcurrent(t *testing.T) {
	const dirs, files, rounds = 8, 20, 5
	dir, root := tree(t)
	before := openFds(t)
	d := New(root, 3)
	var wg sync.WaitGroup
	errc := make(chan error, dirs*files)
	for i := range dirs {
		sub := fmt.Sprintf("d%d/e", i)
		if err := os.MkdirAll(filepath.Join(dir, sub), 0o755); err != nil {
			t.Fatal(err)
		}
		for j := range files {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for k := range rounds {
					if err := roundTrip(d, fmt.Sprintf("%s/f%d.%d", sub, j, k)); err != nil {
						errc <- err
						return
					}
				}
			}()
		}
	}
	wg.Wait()
	close(errc)
	for err := range errc {
		if err != nil {
			t.Error(err)
		}
	}
	d.Close()
	if after := openFds(t); after != before {
		t.Errorf("%d descriptors open after Close, %d before", after, before)
	}
}

// roundTrip writes rel, reads it back through another descriptor, renames
// it aside and removes it, all through d.
func roundTrip(d *Dirs, rel string) error {
	fd, err := d.OpenFd(rel, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	_, err = syscall.Write(fd, []byte(rel))
	syscall.Close(fd)
	if err != nil {
		return err
	}
	f, err := d.OpenFile(rel, os.O_RDONLY, 0)
	if err != nil {
		return err
	}
	b := make([]byte, 100)
	n, _ := f.Read(b)
	f.Close()
	if string(b[:n]) != rel {
		return fmt.Errorf("%s holds %q", rel, b[:n])
	}
	if err := d.Rename(rel, rel+".old", true); err != nil {
		return err
	}
	if fi, err := d.Lstat(rel + ".old"); err != nil || fi.Size() != int64(len(rel)) {
		return fmt.Errorf("%s.old: %v", rel, err)
	}
	return d.Remove(rel + ".old")
}

func openFds(t *testing.T) int {
	t.Helper()
	es, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("no /proc/self/fd (CI=true):", err)
		}
		t.Skip("no /proc/self/fd:", err)
	}
	return len(es)
}
