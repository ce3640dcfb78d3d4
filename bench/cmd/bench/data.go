package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// dataset is the benchmark's input tree, made by mkdata.py and cached.
type dataset struct {
	Dir    string   // where the tree lives
	Mkdata string   // path of mkdata.py
	Args   []string // mkdata.py size arguments (empty: its defaults)

	// Filled in by describe.
	Files, Dirs, Symlinks int
	Bytes                 int64
}

// mkdataArgs returns mkdata.py's size arguments: its defaults (the published
// data set) or the small quick-check set.
func mkdataArgs(small bool) []string {
	if small {
		return []string{"--sites", "1", "--uploads", "200", "--bigmb", "32"}
	}
	return nil
}

// stamp identifies what a cached tree was made from: mkdata.py's content and
// arguments. It is kept next to the tree (DIR.done), not inside it, so that
// it is not part of what gets backed up.
func (d *dataset) stamp() (string, error) {
	b, err := os.ReadFile(d.Mkdata)
	if err != nil {
		return "", err
	}
	sum := sha256.Sum256(b)
	return fmt.Sprintf("mkdata.py sha256:%s args:%q\n", hex.EncodeToString(sum[:]), d.Args), nil
}

// ensure makes the data set unless a complete one made by the same mkdata.py
// with the same arguments is already cached. It writes into DIR.tmp and
// renames, so an interrupted run never leaves a half tree that looks done.
func (d *dataset) ensure(ctx context.Context) error {
	want, err := d.stamp()
	if err != nil {
		return err
	}
	done := d.Dir + ".done"
	if got, err := os.ReadFile(done); err == nil && string(got) == want {
		if _, err := os.Stat(d.Dir); err == nil {
			return nil
		}
	}
	progress("making the data set in %s (once; cached): python3 %s %s", d.Dir, d.Mkdata, strings.Join(d.Args, " "))
	tmp := d.Dir + ".tmp"
	for _, p := range []string{done, d.Dir, tmp} {
		if err := os.RemoveAll(p); err != nil {
			return err
		}
	}
	if err := os.MkdirAll(filepath.Dir(d.Dir), 0o755); err != nil {
		return err
	}
	cmd := exec.CommandContext(ctx, "python3", append([]string{d.Mkdata, tmp}, d.Args...)...)
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("mkdata.py: %v (it needs Debian's wordpress package)", err)
	}
	if err := os.Rename(tmp, d.Dir); err != nil {
		return err
	}
	return os.WriteFile(done, []byte(want), 0o644)
}

// describe counts the tree's files, directories, symlinks and bytes.
func (d *dataset) describe() error {
	d.Files, d.Dirs, d.Symlinks, d.Bytes = 0, 0, 0, 0
	return filepath.WalkDir(d.Dir, func(p string, e fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		switch {
		case e.IsDir():
			d.Dirs++
		case e.Type()&fs.ModeSymlink != 0:
			d.Symlinks++
		case e.Type().IsRegular():
			fi, err := e.Info()
			if err != nil {
				return err
			}
			d.Files++
			d.Bytes += fi.Size()
		}
		return nil
	})
}

// Summary is the one-line description used in progress and in the report.
func (d *dataset) Summary() string {
	how := "mkdata.py defaults"
	if len(d.Args) > 0 {
		how = "mkdata.py " + strings.Join(d.Args, " ")
	}
	return fmt.Sprintf("%s files, %s bytes (%s), %s dirs, %s symlinks; %s",
		thousands(int64(d.Files)), thousands(d.Bytes), iec(d.Bytes),
		thousands(int64(d.Dirs)), thousands(int64(d.Symlinks)), how)
}

// warm reads every regular file once so that both tools start from the same
// warm page cache (dropping the cache is not reliably possible here).
func (d *dataset) warm() error {
	buf := make([]byte, 1<<20)
	return filepath.WalkDir(d.Dir, func(p string, e fs.DirEntry, err error) error {
		if err != nil || !e.Type().IsRegular() {
			return err
		}
		f, err := os.Open(p)
		if err != nil {
			return err
		}
		defer f.Close()
		_, err = io.CopyBuffer(io.Discard, f, buf)
		return err
	})
}

// copyTo makes dst a copy of the data set (cp -a, reflinked where the file
// system can), for the mutation round, which must never touch the cache.
func (d *dataset) copyTo(ctx context.Context, rn *runner, dst string) error {
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return err
	}
	_, err := rn.run(ctx, nil, "cp", "-a", "--reflink=auto", d.Dir, dst)
	return err
}

// mutate applies mutation round k to the tree at dir.
func (d *dataset) mutate(ctx context.Context, rn *runner, dir string, k int) error {
	_, err := rn.run(ctx, nil, "python3", d.Mkdata, "--mutate", dir, "--round", fmt.Sprint(k))
	return err
}

// thousands formats n with comma separators.
func thousands(n int64) string {
	s := fmt.Sprint(n)
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	if neg {
		return "-" + b.String()
	}
	return b.String()
}

// iec formats a byte count with a binary unit.
func iec(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	v, i := float64(n), -1
	for v >= unit && i < 4 {
		v /= unit
		i++
	}
	return fmt.Sprintf("%.2f %ciB", v, "KMGTP"[i])
}
