package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// Every measurement that creates many files (restores, copies, replicas)
// runs in the work directory, so its file system is part of what is
// measured. The machines here have an ext4 root without a journal, where
// ext4 skips every inode freed in the last minute when it allocates a new
// one (recently_deleted, a linear scan with a buffer lookup per inode):
// creating 27k files shortly after deleting 27k others cost both tools
// 8–15 s of system time, more than their whole restore on a production
// file system, and made the ratio a measure of where ext4 found free
// inodes. A web node's disk has a journal, where that check is off; so, as
// root, the runner makes the work directory a fresh journaled ext4 on a
// loop device, and says so in the report.
//
// The loop device reads and writes its image with direct I/O. A loop
// device without it copies every block it is given into the page cache of
// its image, a second cache no disk has: writing 1 GiB with fdatasync on it
// cost 0.85–0.95 s of CPU against 0.53–0.63 s with direct I/O (dd,
// 3 runs each), and in the initial mirror the loop thread's copies took
// 1.1 s of CPU in 6 s (perf). That is a cost only for the tool that makes
// its writes durable within the timed interval, which rsync does not.

// scratchFS is a mounted file system made for one run.
type scratchFS struct {
	image, mnt, dev string
	Describe        string // for the report
}

// scratchSize is the sparse image's size: room for two copies of the data
// set, both tools' repositories and restores, and a mirror's replicas.
const scratchSize = "48G"

// mountScratch makes the file system mode asks for at mnt (created if
// needed): "ext4" a fresh journaled ext4 on a loop device, backed by a
// sparse image next to mnt; "none" nothing (mnt is a plain directory);
// "auto" ext4 when the runner is root and has mkfs.ext4 and mount, else
// none.
func mountScratch(ctx context.Context, mode, mnt string) (*scratchFS, error) {
	if err := os.MkdirAll(mnt, 0o755); err != nil {
		return nil, err
	}
	plain := &scratchFS{mnt: mnt, Describe: "the work directory is a plain directory on " + fsType(mnt)}
	switch mode {
	case "none":
		return plain, nil
	case "auto":
		if os.Geteuid() != 0 {
			return plain, nil
		}
		for _, tool := range []string{"mkfs.ext4", "losetup", "mount", "umount"} {
			if _, err := exec.LookPath(tool); err != nil {
				return plain, nil
			}
		}
	case "ext4":
	default:
		return nil, fmt.Errorf("-fs %q: want auto, ext4 or none", mode)
	}
	image := mnt + ".img"
	fs := &scratchFS{image: image, mnt: mnt}
	steps := [][]string{
		{"truncate", "-s", scratchSize, image},
		// inode tables written now, not by a lazy-init thread during the run
		{"mkfs.ext4", "-q", "-F", "-N", "600000", "-E", "lazy_itable_init=0,lazy_journal_init=0", image},
	}
	for _, st := range steps {
		if out, err := exec.CommandContext(ctx, st[0], st[1:]...).CombinedOutput(); err != nil {
			fs.unmount()
			return nil, fmt.Errorf("scratch file system: %s: %v: %s", strings.Join(st, " "), err, strings.TrimSpace(string(out)))
		}
	}
	out, err := exec.CommandContext(ctx, "losetup", "--find", "--show", "--direct-io=on", image).CombinedOutput()
	if err != nil {
		fs.unmount()
		return nil, fmt.Errorf("scratch file system: losetup --direct-io=on %s: %v: %s", image, err, strings.TrimSpace(string(out)))
	}
	fs.dev = strings.TrimSpace(string(out))
	if out, err := exec.CommandContext(ctx, "mount", "-o", "discard", fs.dev, mnt).CombinedOutput(); err != nil {
		fs.unmount()
		return nil, fmt.Errorf("scratch file system: mount %s: %v: %s", fs.dev, err, strings.TrimSpace(string(out)))
	}
	fs.Describe = fmt.Sprintf("the work directory is a fresh ext4 with a journal (data=ordered) on a loop device with direct I/O over a sparse %s image "+
		"on the host's %s, as on a web node; see scratchfs.go for why", scratchSize, fsType(filepath.Dir(mnt)))
	return fs, nil
}

// unmount unmounts the file system and removes its image; on a plain
// directory it does nothing.
func (fs *scratchFS) unmount() {
	if fs.image == "" {
		return
	}
	if out, err := exec.Command("umount", fs.mnt).CombinedOutput(); err != nil && fs.mounted() {
		progress("umount %s: %v: %s (the image %s is kept)", fs.mnt, err, strings.TrimSpace(string(out)), fs.image)
		return
	}
	if fs.dev != "" {
		if out, err := exec.Command("losetup", "-d", fs.dev).CombinedOutput(); err != nil {
			progress("losetup -d %s: %v: %s (the image %s is kept)", fs.dev, err, strings.TrimSpace(string(out)), fs.image)
			return
		}
	}
	os.Remove(fs.image)
	os.Remove(fs.mnt)
}

// mounted reports whether a file system is mounted at fs.mnt.
func (fs *scratchFS) mounted() bool {
	b, err := os.ReadFile("/proc/mounts")
	if err != nil {
		return true
	}
	for _, l := range strings.Split(string(b), "\n") {
		if f := strings.Fields(l); len(f) >= 2 && f[1] == fs.mnt {
			return true
		}
	}
	return false
}

// fsType names the file system holding dir and whether ext4 there has a
// journal, from /proc/mounts and /proc/fs/ext4 (best effort).
func fsType(dir string) string {
	b, err := os.ReadFile("/proc/mounts")
	if err != nil {
		return "an unknown file system"
	}
	best, typ, dev := "", "", ""
	for _, l := range strings.Split(string(b), "\n") {
		f := strings.Fields(l)
		if len(f) < 3 {
			continue
		}
		if (dir == f[1] || strings.HasPrefix(dir, strings.TrimSuffix(f[1], "/")+"/")) && len(f[1]) >= len(best) {
			best, typ, dev = f[1], f[2], f[0]
		}
	}
	if typ == "" {
		return "an unknown file system"
	}
	if typ != "ext4" {
		return typ
	}
	opts, err := os.ReadFile(filepath.Join("/proc/fs/ext4", filepath.Base(dev), "options"))
	if err != nil {
		return "ext4"
	}
	if strings.Contains(string(opts), "data=") {
		return "ext4 (journal)"
	}
	return "ext4 (no journal)"
}
