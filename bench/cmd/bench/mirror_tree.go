package main

import (
	"bytes"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// mirrorEntry is what the mirror comparison looks at for one path (lstat):
// a replica must have the same paths, each of the same type with the same
// permission bits; regular files the same size, mtime and content; symlinks
// the same target. Directory mtimes, owners and hard-link groups are not
// compared: neither syncd nor `rsync -a` promises them.
type mirrorEntry = entry

// diffMirror compares the entries of a replica (got) with those of its
// source (want). It returns the differences, one line each, in path order,
// and the regular files whose metadata agree, whose contents are still to
// be compared.
func diffMirror(want, got map[string]mirrorEntry) (problems, files []string) {
	for _, p := range sortedKeys(want) {
		w := want[p]
		g, ok := got[p]
		if !ok {
			problems = append(problems, "missing: "+p)
			continue
		}
		if w.mode.Type() != g.mode.Type() {
			problems = append(problems, fmt.Sprintf("%s: type %s, want %s", p, typeName(g.mode), typeName(w.mode)))
			continue
		}
		var d []string
		if w.mode != g.mode {
			d = append(d, fmt.Sprintf("mode %v, want %v", g.mode, w.mode))
		}
		switch {
		case w.mode.IsRegular():
			if w.size != g.size {
				d = append(d, fmt.Sprintf("size %d, want %d", g.size, w.size))
			}
			if w.mtime != g.mtime {
				d = append(d, fmt.Sprintf("mtime %d, want %d", g.mtime, w.mtime))
			}
		case w.mode&fs.ModeSymlink != 0:
			if w.link != g.link {
				d = append(d, fmt.Sprintf("symlink to %q, want %q", g.link, w.link))
			}
		}
		if len(d) > 0 {
			problems = append(problems, p+": "+strings.Join(d, ", "))
		} else if w.mode.IsRegular() {
			files = append(files, p)
		}
	}
	for _, p := range sortedKeys(got) {
		if _, ok := want[p]; !ok {
			problems = append(problems, "extra: "+p)
		}
	}
	return problems, files
}

// compareMirror compares the replica tree got with its source want:
// diffMirror on both trees' lstat, then the bytes of every regular file
// whose metadata agree. It returns the differences (none: equal).
func compareMirror(want, got string) []string {
	a, err := scanTree(want)
	if err != nil {
		return []string{"scanning the source: " + err.Error()}
	}
	b, err := scanTree(got)
	if err != nil {
		return []string{"scanning the replica: " + err.Error()}
	}
	problems, files := diffMirror(a, b)
	bufA, bufB := make([]byte, 1<<20), make([]byte, 1<<20)
	for _, p := range files {
		same, err := sameContent(filepath.Join(want, p), filepath.Join(got, p), bufA, bufB)
		switch {
		case err != nil:
			problems = append(problems, p+": "+err.Error())
		case !same:
			problems = append(problems, p+": content differs")
		}
	}
	return problems
}

// sameContent reports whether files a and b hold the same bytes, reading
// both in step with the two buffers (of the same length).
func sameContent(a, b string, bufA, bufB []byte) (bool, error) {
	fa, err := os.Open(a)
	if err != nil {
		return false, err
	}
	defer fa.Close()
	fb, err := os.Open(b)
	if err != nil {
		return false, err
	}
	defer fb.Close()
	for {
		na, errA := io.ReadFull(fa, bufA)
		nb, errB := io.ReadFull(fb, bufB)
		if !bytes.Equal(bufA[:na], bufB[:nb]) {
			return false, nil
		}
		endA := errA == io.EOF || errA == io.ErrUnexpectedEOF
		endB := errB == io.EOF || errB == io.ErrUnexpectedEOF
		switch {
		case errA != nil && !endA:
			return false, errA
		case errB != nil && !endB:
			return false, errB
		case endA || endB:
			return endA == endB, nil
		}
	}
}

func typeName(m fs.FileMode) string {
	switch {
	case m.IsDir():
		return "directory"
	case m.IsRegular():
		return "file"
	case m&fs.ModeSymlink != 0:
		return "symlink"
	}
	return fmt.Sprintf("special (%v)", m.Type())
}
