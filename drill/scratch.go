package drill

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/syncd/syncd/internal/ownname"
)

// ScratchPrefix begins the name of every scratch directory a drill makes.
const ScratchPrefix = "syncd-drill-"

// markerName is the file in a scratch directory holding the drill's
// process: "<pid> <start time in clock ticks>\n".
const markerName = ownname.Prefix + "drill"

// MakeScratch makes a scratch directory in parent, with the marker that
// tells a later drill whether the one that made it still runs.
func MakeScratch(parent string) (string, error) {
	dir, err := os.MkdirTemp(parent, ScratchPrefix+"*")
	if err != nil {
		return "", fmt.Errorf("scratch directory: %w", err)
	}
	if err := os.WriteFile(filepath.Join(dir, markerName), []byte(self()), 0o600); err != nil {
		os.Remove(dir)
		return "", fmt.Errorf("scratch directory: %w", err)
	}
	return dir, nil
}

// Keep turns a scratch directory into an ordinary one that no later drill
// removes.
func Keep(dir string) error { return os.Remove(filepath.Join(dir, markerName)) }

// CleanStale removes the scratch directories in parent left by drills that
// no longer run (killed, or their machine restarted), and returns them.
// A directory without a marker is removed once it is a minute old (its
// drill died before writing one).
func CleanStale(parent string, now time.Time) ([]string, error) {
	ents, err := os.ReadDir(parent)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var removed []string
	for _, e := range ents {
		if !e.IsDir() || !strings.HasPrefix(e.Name(), ScratchPrefix) {
			continue
		}
		dir := filepath.Join(parent, e.Name())
		b, err := os.ReadFile(filepath.Join(dir, markerName))
		switch {
		case err == nil:
			if running(string(b)) {
				continue
			}
		case errors.Is(err, fs.ErrNotExist):
			fi, err := e.Info()
			if err != nil || now.Sub(fi.ModTime()) < time.Minute {
				continue
			}
		default:
			continue
		}
		if err := RemoveScratch(dir); err != nil {
			return removed, err
		}
		removed = append(removed, dir)
	}
	return removed, nil
}

// RemoveScratch removes dir and everything in it, making each directory
// writable first: a restored directory keeps its snapshot mode, which may
// forbid removing what is in it.
func RemoveScratch(dir string) error {
	if os.RemoveAll(dir) == nil {
		return nil
	}
	filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err == nil && d.IsDir() {
			os.Chmod(p, 0o700)
		}
		return nil
	})
	if err := os.RemoveAll(dir); err != nil {
		return fmt.Errorf("remove scratch directory: %w", err)
	}
	return nil
}

// self returns the marker of this process.
func self() string {
	pid := os.Getpid()
	return fmt.Sprintf("%d %s\n", pid, startTime(pid))
}

// running reports whether the process a marker names still runs: its pid
// exists and, where /proc tells, started when the marker says (not a
// later process given the same pid).
func running(marker string) bool {
	f := strings.Fields(marker)
	if len(f) == 0 {
		return false
	}
	pid, err := strconv.Atoi(f[0])
	if err != nil || pid <= 0 {
		return false
	}
	if err := syscall.Kill(pid, 0); err != nil && !errors.Is(err, syscall.EPERM) {
		return false
	}
	if len(f) > 1 && f[1] != "" {
		if st := startTime(pid); st != "" && st != f[1] {
			return false
		}
	}
	return true
}

// startTime returns a process's start time from /proc (field 22 of its
// stat), or "" where there is none.
func startTime(pid int) string {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return ""
	}
	// the command name, field 2, is in parentheses and may hold spaces
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return ""
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 20 {
		return ""
	}
	return f[19]
}
