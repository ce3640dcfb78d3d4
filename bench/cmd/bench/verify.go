package main

import (
	"context"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"

	"github.com/syncd/syncd/daemon"
)

// entry is what the comparison looks at for one path (from lstat).
type entry struct {
	mode     fs.FileMode
	size     int64
	mtime    int64 // nanoseconds since the epoch
	uid, gid uint32
	link     string // symlink target
	dev, ino uint64
}

// compareTrees compares the restored tree got with the source tree want and
// returns the differences (none: they are equal). It runs `diff -rq
// --no-dereference` for contents and symlinks, then compares the lstat of
// every path: type and permission bits, size, mtime to the nanosecond,
// owner, symlink target, and hard-link groups.
func compareTrees(ctx context.Context, want, got string) []string {
	var problems []string
	if _, err := os.Lstat(got); err != nil {
		return []string{fmt.Sprintf("nothing restored at %s: %v", got, err)}
	}
	out, err := exec.CommandContext(ctx, "diff", "-rq", "--no-dereference", want, got).CombinedOutput()
	if err != nil {
		lines := strings.Split(strings.TrimSpace(string(out)), "\n")
		for _, l := range lines {
			problems = append(problems, "diff: "+l)
		}
		if _, ok := err.(*exec.ExitError); !ok || len(lines) == 0 {
			problems = append(problems, fmt.Sprintf("diff: %v", err))
		}
	}
	a, err := scanTree(want)
	if err != nil {
		return append(problems, err.Error())
	}
	b, err := scanTree(got)
	if err != nil {
		return append(problems, err.Error())
	}
	for _, p := range sortedKeys(a) {
		ea := a[p]
		eb, ok := b[p]
		if !ok {
			problems = append(problems, "missing: "+p)
			continue
		}
		var d []string
		if ea.mode != eb.mode {
			d = append(d, fmt.Sprintf("mode %v != %v", eb.mode, ea.mode))
		}
		if !ea.mode.IsDir() && ea.size != eb.size {
			d = append(d, fmt.Sprintf("size %d != %d", eb.size, ea.size))
		}
		if ea.mtime != eb.mtime {
			d = append(d, fmt.Sprintf("mtime %d != %d", eb.mtime, ea.mtime))
		}
		if ea.uid != eb.uid || ea.gid != eb.gid {
			d = append(d, fmt.Sprintf("owner %d:%d != %d:%d", eb.uid, eb.gid, ea.uid, ea.gid))
		}
		if ea.link != eb.link {
			d = append(d, fmt.Sprintf("symlink %q != %q", eb.link, ea.link))
		}
		if len(d) > 0 {
			problems = append(problems, p+": "+strings.Join(d, ", "))
		}
	}
	for _, p := range sortedKeys(b) {
		if _, ok := a[p]; !ok {
			problems = append(problems, "extra: "+p)
		}
	}
	ga, gb := linkGroups(a), linkGroups(b)
	for _, g := range ga {
		if !slices.Contains(gb, g) {
			problems = append(problems, "hard links not restored: "+g)
		}
	}
	for _, g := range gb {
		if !slices.Contains(ga, g) {
			problems = append(problems, "hard links not in the source: "+g)
		}
	}
	return problems
}

// scanTree lstats every path below root, keyed by its path relative to root.
func scanTree(root string) (map[string]entry, error) {
	m := map[string]entry{}
	err := filepath.WalkDir(root, func(p string, _ fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		fi, err := os.Lstat(p)
		if err != nil {
			return err
		}
		st, ok := fi.Sys().(*syscall.Stat_t)
		if !ok {
			return fmt.Errorf("%s: no stat_t", p)
		}
		e := entry{
			mode: fi.Mode(), size: fi.Size(), mtime: fi.ModTime().UnixNano(),
			uid: st.Uid, gid: st.Gid, dev: uint64(st.Dev), ino: st.Ino,
		}
		if fi.Mode()&fs.ModeSymlink != 0 {
			if e.link, err = os.Readlink(p); err != nil {
				return err
			}
		}
		rel, err := filepath.Rel(root, p)
		if err != nil {
			return err
		}
		if rel == daemon.MarkerName {
			return nil // each node's own folder marker, never mirrored
		}
		m[rel] = e
		return nil
	})
	return m, err
}

// linkGroups returns, sorted, the sets of non-directory paths that share an
// inode, each as its sorted paths joined by " = ".
func linkGroups(m map[string]entry) []string {
	type key struct{ dev, ino uint64 }
	byIno := map[key][]string{}
	for p, e := range m {
		if !e.mode.IsDir() {
			k := key{e.dev, e.ino}
			byIno[k] = append(byIno[k], p)
		}
	}
	var groups []string
	for _, ps := range byIno {
		if len(ps) > 1 {
			slices.Sort(ps)
			groups = append(groups, strings.Join(ps, " = "))
		}
	}
	slices.Sort(groups)
	return groups
}

// sortedKeys returns m's keys in order.
func sortedKeys(m map[string]entry) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// summarizeList returns at most n problems, with a last line saying how many
// more there are.
func summarizeList(problems []string, n int) []string {
	if len(problems) <= n {
		return problems
	}
	return append(slices.Clone(problems[:n]), fmt.Sprintf("… and %d more", len(problems)-n))
}

// summarize joins at most n problems into one line for the report table.
func summarize(problems []string, n int) string {
	s := strings.Join(summarizeList(problems, n), "; ")
	return strings.ReplaceAll(s, "|", `\|`)
}
