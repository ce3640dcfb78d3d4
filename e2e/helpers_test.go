// Package e2e runs the built syncd and restore binaries against real
// repositories on temporary directories, with the real age and zstd CLIs.
package e2e

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"testing"

	"github.com/syncd/syncd/daemon"
)

var binDir string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "syncd-e2e-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	build := exec.Command("go", "build", "-o", dir+"/", "github.com/syncd/syncd/cmd/syncd", "github.com/syncd/syncd/cmd/restore")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "build binaries:", err)
		os.Exit(1)
	}
	os.Chmod(dir, 0o755) // a test runs the daemon as an unprivileged user
	binDir = dir
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// tool finds an external tool the tests need: in SYNCD_TEST_BIN, then
// ../bin, then PATH. Missing under CI=true is a failure, else a skip.
func tool(t *testing.T, name string) string {
	t.Helper()
	for _, dir := range []string{os.Getenv("SYNCD_TEST_BIN"), "../bin"} {
		if dir == "" {
			continue
		}
		if p, err := filepath.Abs(filepath.Join(dir, name)); err == nil {
			if _, err := os.Stat(p); err == nil {
				return p
			}
		}
	}
	if p, err := exec.LookPath(name); err == nil {
		return p
	}
	if os.Getenv("CI") == "true" {
		t.Fatalf("%s is required under CI; run make tools", name)
	}
	t.Skipf("%s not installed (not CI); run make tools", name)
	return ""
}

// result of one command run.
type result struct {
	stdout, stderr string
	code           int
}

func (r result) String() string {
	return fmt.Sprintf("exit %d\nstdout:\n%s\nstderr:\n%s", r.code, r.stdout, r.stderr)
}

// run runs a program with env added to the environment.
func run(t *testing.T, env []string, prog string, args ...string) result {
	t.Helper()
	if !strings.Contains(prog, "/") {
		prog = filepath.Join(binDir, prog)
	}
	cmd := exec.Command(prog, args...)
	cmd.Env = append(os.Environ(), env...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	if err != nil {
		var ee *exec.ExitError
		if !errors.As(err, &ee) {
			t.Fatalf("run %s: %v", prog, err)
		}
		code = ee.ExitCode()
	}
	return result{out.String(), errb.String(), code}
}

// ok runs a command that must succeed and returns its stdout.
func ok(t *testing.T, env []string, prog string, args ...string) string {
	t.Helper()
	r := run(t, env, prog, args...)
	if r.code != 0 {
		t.Fatalf("%s %s: %s", prog, strings.Join(args, " "), r)
	}
	return r.stdout
}

// repo is a repository with its keys on a temporary directory.
type repo struct {
	dir, url, indexKey, dataKey, recipient string
}

func (r *repo) flags(extra ...string) []string {
	return append([]string{"--repo", r.url, "--index-key", r.indexKey}, extra...)
}

// newRepo makes keys and initializes a local repository.
func newRepo(t *testing.T) *repo {
	t.Helper()
	dir := t.TempDir()
	r := &repo{dir: dir, url: filepath.Join(dir, "repo"), indexKey: filepath.Join(dir, "index.key"), dataKey: filepath.Join(dir, "data.key")}
	r.recipient = strings.TrimSpace(ok(t, nil, "syncd", "keygen", r.dataKey))
	ok(t, nil, "syncd", append([]string{"init"}, r.flags("--data-recipient", r.recipient)...)...)
	return r
}

// snapshot runs syncd snapshot and returns the short ID it printed.
func (r *repo) snapshot(t *testing.T, paths ...string) string {
	t.Helper()
	out := ok(t, nil, "syncd", append(append([]string{"snapshot"}, r.flags("--host", "test")...), paths...)...)
	f := strings.Fields(out)
	if len(f) < 2 || f[0] != "snapshot" {
		t.Fatalf("unexpected snapshot output %q", out)
	}
	return f[1]
}

// entry describes one file system entry for tree comparison.
type entry struct {
	Type    string
	Mode    fs.FileMode
	Size    int64
	MTimeNs int64
	Target  string
	Sum     string
	Link    string // the first path of its hard-link group
	UID     uint32
	GID     uint32
}

// scan describes every entry below root, keyed by relative path.
func scan(t *testing.T, root string) map[string]entry {
	t.Helper()
	out := map[string]entry{}
	inodes := map[uint64]string{}
	var paths []string
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		paths = append(paths, p)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(paths)
	for _, p := range paths {
		rel, _ := filepath.Rel(root, p)
		if rel == daemon.MarkerName { // a daemon's folder marker: never mirrored or snapshotted
			continue
		}
		fi, err := os.Lstat(p)
		if err != nil {
			t.Fatal(err)
		}
		st := fi.Sys().(*syscall.Stat_t)
		e := entry{Mode: fi.Mode(), MTimeNs: fi.ModTime().UnixNano(), UID: st.Uid, GID: st.Gid}
		switch {
		case fi.Mode().IsRegular():
			e.Type, e.Size = "file", fi.Size()
			data, err := os.ReadFile(p)
			if err != nil {
				t.Fatal(err)
			}
			sum := sha256.Sum256(data)
			e.Sum = hex.EncodeToString(sum[:])
			if st.Nlink > 1 {
				if first, ok := inodes[st.Ino]; ok {
					e.Link = first
				} else {
					inodes[st.Ino] = rel
					e.Link = rel
				}
			}
		case fi.IsDir():
			e.Type = "dir"
			if rel == "." {
				e.MTimeNs = 0 // the root's own mtime changes as it is written
			}
		case fi.Mode()&fs.ModeSymlink != 0:
			e.Type = "symlink"
			e.Target, _ = os.Readlink(p)
		}
		out[rel] = e
	}
	return out
}

// sameTree fails the test where two trees differ.
func sameTree(t *testing.T, want, got string) {
	t.Helper()
	w, g := scan(t, want), scan(t, got)
	for p, we := range w {
		ge, ok := g[p]
		if !ok {
			t.Errorf("%q: missing in restore", p)
			continue
		}
		if we != ge {
			t.Errorf("%q differs:\n want %+v\n  got %+v", p, we, ge)
		}
	}
	for p := range g {
		if _, ok := w[p]; !ok {
			t.Errorf("%q: in restore, not in source", p)
		}
	}
}
