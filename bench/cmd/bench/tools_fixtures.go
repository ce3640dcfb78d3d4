package main

import (
	"crypto/sha256"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path"
	"path/filepath"
)

// What one round changes in the find tree.
const (
	findEdits   = 20 // files rewritten
	findNew     = 5  // files added, dNNN/newK-J.php
	findDeletes = 2  // files removed
)

// writeRandom writes size random bytes (ChaCha8 with a fixed seed: the
// same bytes in every run) to a new file at p and returns their SHA-256.
func writeRandom(p string, size int64) ([32]byte, error) {
	var sum [32]byte
	f, err := os.OpenFile(p, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o644)
	if err != nil {
		return sum, err
	}
	h := sha256.New()
	src := rand.NewChaCha8([32]byte{'d', 'u', 'm', 'p'})
	buf := make([]byte, 1<<20)
	w := io.MultiWriter(f, h)
	for left := size; left > 0; left -= int64(len(buf)) {
		b := buf[:min(int64(len(buf)), left)]
		src.Read(b) // never fails
		if _, err := w.Write(b); err != nil {
			f.Close()
			return sum, err
		}
	}
	if err := f.Close(); err != nil {
		return sum, err
	}
	copy(sum[:], h.Sum(nil))
	return sum, nil
}

// findTree is the tree the find measurement searches: directories
// dNNN of small text files, changed a little by each round. It knows
// which files it holds, so it can say how many matches a pattern must
// give. Its content is the same in every run (a fixed seed); mtimes are
// not.
type findTree struct {
	dir       string
	dirs      int
	rng       *rand.Rand
	files     map[string]bool // every regular file, by path relative to dir
	originals []string        // the first files still there: what rounds edit and delete
}

// findExts are the extensions of the first files, by index modulo 10.
var findExts = [10]string{"html", "html", "html", "html", "html", "php", "php", "php", "css", "css"}

// newFindTree writes a tree of dirs directories of perDir files at dir,
// which must not exist.
func newFindTree(dir string, dirs, perDir int) (*findTree, error) {
	t := &findTree{dir: dir, dirs: dirs, rng: rand.New(rand.NewChaCha8([32]byte{'f', 'i', 'n', 'd'})), files: map[string]bool{}}
	for d := range dirs {
		if err := os.MkdirAll(filepath.Join(dir, fmt.Sprintf("d%03d", d)), 0o755); err != nil {
			return nil, err
		}
		for j := range perDir {
			name := fmt.Sprintf("d%03d/f%03d.%s", d, j, findExts[j%len(findExts)])
			if err := t.write(name); err != nil {
				return nil, err
			}
			t.originals = append(t.originals, name)
		}
	}
	return t, nil
}

// write (re)writes the file name with 200 B to 4 KB of random text.
func (t *findTree) write(name string) error {
	const letters = "abcdefghijklmnopqrstuvwxyz \n"
	b := make([]byte, 200+t.rng.IntN(3800))
	for i := range b {
		b[i] = letters[t.rng.IntN(len(letters))]
	}
	t.files[name] = true
	return os.WriteFile(filepath.Join(t.dir, name), b, 0o644)
}

// round applies round k: findEdits files rewritten, findNew added and
// findDeletes removed.
func (t *findTree) round(k int) error {
	for range findEdits {
		if err := t.write(t.originals[t.rng.IntN(len(t.originals))]); err != nil {
			return err
		}
	}
	for j := range findNew {
		if err := t.write(fmt.Sprintf("d%03d/new%d-%d.php", t.rng.IntN(t.dirs), k, j)); err != nil {
			return err
		}
	}
	for range findDeletes {
		i := t.rng.IntN(len(t.originals))
		name := t.originals[i]
		if err := os.Remove(filepath.Join(t.dir, name)); err != nil {
			return err
		}
		delete(t.files, name)
		t.originals[i] = t.originals[len(t.originals)-1]
		t.originals = t.originals[:len(t.originals)-1]
	}
	return nil
}

// count is how many entries of the tree a find of pattern (a name
// pattern, no "/") matches: its files whose names match. No directory
// name matches the section's patterns.
func (t *findTree) count(pattern string) int {
	n := 0
	for name := range t.files {
		if ok, _ := path.Match(pattern, path.Base(name)); ok {
			n++
		}
	}
	return n
}
