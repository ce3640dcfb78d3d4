package drill

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/syncd/syncd/chunkstore"
	"github.com/syncd/syncd/internal/ownname"
)

// folderMarker is the file each syncd node keeps at the root of a folder
// it mirrors: the node's own, never compared.
const folderMarker = ownname.Marker

// Drift is one file of the live tree that differs from the snapshot.
type Drift struct {
	Path   string `json:"path"`   // the snapshot path, "/var/www/index.php"
	Change string `json:"change"` // "changed", "added" (not in the snapshot) or "removed" (only in the snapshot)
	Why    string `json:"why,omitempty"`
}

// Compare lists the drift of the live tree at root since the snapshot:
// for each snapshot path P, root/P against the snapshot's files and
// symlinks (files). A restored file (restored: path → the run whose
// directory under dir holds it) is compared byte for byte; the others,
// in a sample drill, by type and size. Directories themselves and the
// folder marker are not compared.
func Compare(ctx context.Context, files []File, restored map[string]int, dir, root string, snapPaths []string) ([]Drift, error) {
	out := []Drift{}
	snap := make(map[string]*File, len(files))
	for i := range files {
		snap[files[i].Path] = &files[i]
	}
	for _, sp := range snapPaths {
		rel := strings.TrimPrefix(filepath.Clean(sp), "/")
		live := filepath.Join(root, rel)
		err := filepath.WalkDir(live, func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				if errors.Is(err, fs.ErrNotExist) && p == live {
					return nil // all of it removed: listed below
				}
				return err
			}
			if err := ctx.Err(); err != nil {
				return err
			}
			r, _ := filepath.Rel(root, p)
			r = filepath.ToSlash(r)
			if d.IsDir() || d.Name() == folderMarker {
				return nil
			}
			if f := snap[r]; f == nil || f.Type == chunkstore.NodeDir {
				out = append(out, Drift{Path: "/" + r, Change: "added"})
			}
			return nil
		})
		if err != nil {
			return nil, fmt.Errorf("compare with %s: %w", live, err)
		}
	}
	for _, f := range files {
		if f.Type == chunkstore.NodeDir || filepath.Base(f.Path) == folderMarker || !under(f.Path, snapPaths) {
			continue
		}
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		live := filepath.Join(root, f.Path)
		fi, err := os.Lstat(live)
		if errors.Is(err, fs.ErrNotExist) {
			out = append(out, Drift{Path: "/" + f.Path, Change: "removed"})
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("compare with %s: %w", live, err)
		}
		why, err := differs(f, fi, live, restored, dir)
		if err != nil {
			return nil, err
		}
		if why != "" {
			out = append(out, Drift{Path: "/" + f.Path, Change: "changed", Why: why})
		}
	}
	slices.SortFunc(out, func(a, b Drift) int { return strings.Compare(a.Path, b.Path) })
	return out, nil
}

func under(p string, snapPaths []string) bool {
	for _, sp := range snapPaths {
		rel := strings.TrimPrefix(filepath.Clean(sp), "/")
		if rel == "" || p == rel || strings.HasPrefix(p, rel+"/") {
			return true
		}
	}
	return false
}

// differs says how the live entry fi at live differs from f, or "".
func differs(f File, fi fs.FileInfo, live string, restored map[string]int, dir string) (string, error) {
	switch {
	case f.Type == chunkstore.NodeSymlink:
		if fi.Mode()&fs.ModeSymlink == 0 {
			return "no longer a symlink", nil
		}
		t, err := os.Readlink(live)
		if err != nil {
			return "", fmt.Errorf("compare with %s: %w", live, err)
		}
		if t != f.Target {
			return "symlink target", nil
		}
		return "", nil
	case !fi.Mode().IsRegular():
		return "no longer a regular file", nil
	case fi.Size() != f.Size:
		return fmt.Sprintf("size %d, the snapshot has %d", fi.Size(), f.Size), nil
	}
	run, ok := restored[f.Path]
	if !ok {
		return "", nil // not restored: same size is all a sample can tell
	}
	copyPath := filepath.Join(dir, fmt.Sprint(run), filepath.FromSlash(f.Path))
	same, err := sameContent(copyPath, live)
	if errors.Is(err, fs.ErrNotExist) {
		return "", nil // not restored after all: damaged, reported as such
	}
	if err != nil {
		return "", fmt.Errorf("compare with %s: %w", live, err)
	}
	if !same {
		return "content", nil
	}
	return "", nil
}

func sameContent(a, b string) (bool, error) {
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
	ba, bb := make([]byte, 256<<10), make([]byte, 256<<10)
	for {
		na, ea := io.ReadFull(fa, ba)
		nb, eb := io.ReadFull(fb, bb)
		if na != nb || !bytes.Equal(ba[:na], bb[:nb]) {
			return false, nil
		}
		if ea == io.EOF || ea == io.ErrUnexpectedEOF {
			return eb == io.EOF || eb == io.ErrUnexpectedEOF, nil
		}
		if ea != nil {
			return false, ea
		}
		if eb != nil && eb != io.EOF && eb != io.ErrUnexpectedEOF {
			return false, eb
		}
	}
}
