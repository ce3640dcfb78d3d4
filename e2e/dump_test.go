package e2e

import (
	"archive/tar"
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// dumpSource makes a tree with a file of several blobs, a small file with
// its own mode, a subdirectory and a symlink, all with set mtimes.
func dumpSource(t *testing.T) (src string, big []byte) {
	t.Helper()
	src = filepath.Join(t.TempDir(), "www")
	big = make([]byte, 5<<20+123) // several chunks
	rand.Read(big)
	mt := time.Date(2026, 3, 4, 5, 6, 7, 890_000_000, time.UTC)
	for _, f := range []struct {
		name string
		body []byte
		mode fs.FileMode
	}{{"big.bin", big, 0o644}, {"conf/wp-config.php", []byte("<?php define('DB', 'x');\n"), 0o640}} {
		p := filepath.Join(src, f.name)
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, f.body, f.mode); err != nil {
			t.Fatal(err)
		}
		os.Chmod(p, f.mode)
		os.Chtimes(p, mt, mt)
	}
	if err := os.Symlink("conf/wp-config.php", filepath.Join(src, "link")); err != nil {
		t.Fatal(err)
	}
	os.Chtimes(filepath.Join(src, "conf"), mt, mt)
	return src, big
}

// TestDump: a file comes out byte for byte; a directory as a tar stream
// with each entry's type, mode, mtime, content and target.
func TestDump(t *testing.T) {
	r := newRepo(t)
	src, big := dumpSource(t)
	r.snapshot(t, src)
	dump := func(args ...string) string {
		t.Helper()
		return ok(t, nil, "restore", append(append([]string{"dump"}, args...), r.flags("--identity", r.dataKey)...)...)
	}

	if got := dump("latest", src+"/big.bin"); got != string(big) {
		t.Errorf("dump of a file: %d bytes, want the %d of the file", len(got), len(big))
	}
	if got := dump("latest", src+"/conf/wp-config.php"); got != "<?php define('DB', 'x');\n" {
		t.Errorf("dump of a small file: %q", got)
	}

	want := scan(t, src)
	got := untar(t, dump("latest", src))
	prefix := strings.TrimPrefix(src, "/")
	if _, ok := got[prefix]; !ok {
		t.Errorf("tar of %s: no entry %s/ for the directory itself: %v", src, prefix, keys(got))
	}
	for rel, w := range want {
		name := prefix
		if rel != "." {
			name += "/" + rel
		}
		g, ok := got[name]
		if !ok {
			t.Errorf("tar: %s missing", name)
			continue
		}
		if rel == "." {
			continue // the source root's mtime changes as it is written
		}
		if g.Type != w.Type || g.Mode != w.Mode || g.Size != w.Size || g.Sum != w.Sum || g.Target != w.Target {
			t.Errorf("tar: %s is %+v, want %+v", name, g, w)
		}
		if w.Type != "symlink" && g.MTimeNs != w.MTimeNs {
			t.Errorf("tar: %s mtime %v, want %v", name, time.Unix(0, g.MTimeNs), time.Unix(0, w.MTimeNs))
		}
	}
	if len(got) != len(want) {
		t.Errorf("tar holds %d entries, the source %d: %v", len(got), len(want), keys(got))
	}

	// The whole snapshot: every directory from the root down.
	all := untar(t, dump("latest", "/"))
	if _, ok := all[prefix+"/big.bin"]; !ok {
		t.Errorf("dump latest /: no %s/big.bin in %v", prefix, keys(all))
	}
}

// TestDumpBadInput: a PATH or SNAPSHOT that is not there is one line on
// stderr naming it, with nothing on stdout.
func TestDumpBadInput(t *testing.T) {
	r := newRepo(t)
	src, _ := dumpSource(t)
	id := r.snapshot(t, src)
	dump := func(args ...string) result {
		t.Helper()
		return run(t, nil, "restore", append(append([]string{"dump"}, args...), r.flags("--identity", r.dataKey)...)...)
	}
	empty := func(what string, res result) {
		t.Helper()
		if res.stdout != "" {
			t.Errorf("%s: %d bytes on stdout, want none", what, len(res.stdout))
		}
	}
	res := dump(id, src+"/nope.php")
	oneLine(t, "a path not in the snapshot", res, 1, src+"/nope.php: no such path in snapshot "+id)
	empty("a path not in the snapshot", res)
	res = dump(id, src+"/big.bin/x")
	oneLine(t, "a path below a file", res, 1, "not a directory in snapshot "+id)
	empty("a path below a file", res)
	res = dump("deadbeef", src+"/big.bin")
	oneLine(t, "a snapshot that does not exist", res, 1, `snapshot "deadbeef"`)
	empty("a snapshot that does not exist", res)

	res = run(t, nil, "restore", append([]string{"dump", id, src + "/big.bin"}, r.flags()...)...)
	oneLine(t, "dump without the data identity", res, 2, "--identity")
	empty("dump without the data identity", res)
	res = dump(id)
	oneLine(t, "dump without a PATH", res, 2, "SNAPSHOT and a PATH")
}

// TestDumpDamagedPack: a blob that does not read back as itself stops
// the dump with exit 1 naming the pack, never passes as the file.
func TestDumpDamagedPack(t *testing.T) {
	r := newRepo(t)
	src, big := dumpSource(t)
	id := r.snapshot(t, src)
	packs := repoObjects(t, r, "data")
	if len(packs) == 0 {
		t.Fatal("no data pack in the repository")
	}
	for _, name := range packs {
		p := filepath.Join(r.url, name)
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		b[len(b)/2] ^= 0xff
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	res := run(t, nil, "restore", append([]string{"dump", id, src + "/big.bin"}, r.flags("--identity", r.dataKey)...)...)
	oneLine(t, "dump of a damaged file", res, 1, "data/")
	if len(res.stdout) >= len(big) {
		t.Errorf("dump of a damaged file wrote %d bytes, the whole file", len(res.stdout))
	}
}

// untar reads a tar stream into entries keyed by name (without a
// trailing /), in the form scan gives.
func untar(t *testing.T, s string) map[string]entry {
	t.Helper()
	out := map[string]entry{}
	tr := tar.NewReader(strings.NewReader(s))
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return out
		}
		if err != nil {
			t.Fatalf("read tar: %v", err)
		}
		e := entry{Mode: h.FileInfo().Mode(), MTimeNs: h.ModTime.UnixNano(), UID: uint32(h.Uid), GID: uint32(h.Gid)}
		switch h.Typeflag {
		case tar.TypeReg:
			var b bytes.Buffer
			if _, err := io.Copy(&b, tr); err != nil {
				t.Fatal(err)
			}
			sum := sha256.Sum256(b.Bytes())
			e.Type, e.Size, e.Sum = "file", int64(b.Len()), hex.EncodeToString(sum[:])
		case tar.TypeDir:
			e.Type = "dir"
		case tar.TypeSymlink:
			e.Type, e.Target = "symlink", h.Linkname
		default:
			t.Errorf("tar: %s has type %c", h.Name, h.Typeflag)
		}
		out[strings.TrimSuffix(h.Name, "/")] = e
	}
}

func keys(m map[string]entry) []string {
	var ks []string
	for k := range m {
		ks = append(ks, k)
	}
	return ks
}

// TestDumpChecksBlobIDs: copies a hacked writer planted (right length,
// wrong bytes, sealed to the data recipients so they decrypt) are passed
// over for the real ones; with only them left, the dump fails on the
// first blob instead of writing the wrong bytes.
func TestDumpChecksBlobIDs(t *testing.T) {
	r := newRepo(t)
	src, big := dumpSource(t)
	id := r.snapshot(t, src)
	real := repoObjects(t, r, "data")
	bogus := plantBogusCopies(t, r)
	args := append([]string{"dump", id, src + "/big.bin"}, r.flags("--identity", r.dataKey)...)
	if got := ok(t, nil, "restore", args...); got != string(big) {
		t.Errorf("dump beside bogus copies: not the file (%d bytes)", len(got))
	}
	for _, name := range real {
		if !bogus[name] {
			os.Remove(filepath.Join(r.url, name))
		}
	}
	res := run(t, nil, "restore", args...)
	oneLine(t, "dump with only bogus copies", res, 1, "does not match its ID")
	if res.stdout != "" {
		t.Errorf("dump with only bogus copies wrote %d bytes", len(res.stdout))
	}
}
