package e2e

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/syncd/syncd/daemon"
)

// mentry is what the mirror tests compare of a folder entry: contents,
// modes, file mtimes and link targets (not directory mtimes, owners or
// inodes).
type mentry struct {
	Type   string
	Mode   fs.FileMode
	Size   int64
	MTime  int64 // files only
	Sum    string
	Target string
}

// mscan describes every entry below root by slash-separated relative
// path. It returns an error instead of failing, as the tree may change
// while it walks.
func mscan(root string) (map[string]mentry, error) {
	out := map[string]mentry{}
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if p == root {
			return nil
		}
		rel, _ := filepath.Rel(root, p)
		if rel == daemon.MarkerName { // each node's own
			return nil
		}
		fi, err := os.Lstat(p)
		if err != nil {
			return err
		}
		e := mentry{Mode: fi.Mode()}
		switch {
		case fi.Mode().IsRegular():
			e.Type, e.Size, e.MTime = "file", fi.Size(), fi.ModTime().UnixNano()
			if e.Sum, err = fileSum(p); err != nil {
				return err
			}
		case fi.IsDir():
			e.Type = "dir"
		case fi.Mode()&fs.ModeSymlink != 0:
			e.Type = "symlink"
			if e.Target, err = os.Readlink(p); err != nil {
				return err
			}
		default:
			e.Type = "other"
		}
		out[filepath.ToSlash(rel)] = e
		return nil
	})
	return out, err
}

func fileSum(p string) (string, error) {
	f, err := os.Open(p)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// treeDiff describes how b differs from a, in at most max lines; "" when
// they are the same. Temporary files of the receiver (.syncd-*) count as
// differences: none may be left once nodes agree.
func treeDiff(a, b map[string]mentry, an, bn string, max int) string {
	var lines []string
	for p, ea := range a {
		eb, ok := b[p]
		switch {
		case !ok:
			lines = append(lines, fmt.Sprintf("%s: on %s, not on %s (%+v)", p, an, bn, ea))
		case ea != eb:
			lines = append(lines, fmt.Sprintf("%s: %s %+v, %s %+v", p, an, ea, bn, eb))
		}
	}
	for p, eb := range b {
		if _, ok := a[p]; !ok {
			lines = append(lines, fmt.Sprintf("%s: on %s, not on %s (%+v)", p, bn, an, eb))
		}
	}
	for _, m := range []map[string]mentry{a, b} {
		for p := range m {
			if strings.HasPrefix(filepath.Base(p), ".syncd-") {
				lines = append(lines, fmt.Sprintf("%s: a temporary file is left", p))
			}
		}
	}
	sort.Strings(lines)
	if len(lines) > max {
		lines = append(lines[:max], fmt.Sprintf("… and %d more", len(lines)-max))
	}
	return strings.Join(lines, "\n")
}
