package daemon

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"

	"github.com/syncd/syncd/internal/health"
	"github.com/syncd/syncd/internal/ownname"
)

// MarkerName is the folder marker: a file at the root of every folder,
// made when syncd first indexes the folder and never mirrored (names that
// start with ".syncd-" are syncd's own). A folder without it is one whose
// disk is not mounted, or a directory that is not the folder: syncd sends,
// serves and applies nothing there until the marker is back.
const MarkerName = ownname.Marker

// markerText is what a new marker says, for the operator who finds it.
const markerText = "This directory is a syncd folder. Do not remove this file: without it syncd\n" +
	"stops mirroring the folder (it takes a folder without it for an unmounted disk).\n"

// The names of the guard's conditions (health.Condition.Name).
const (
	condMissing = "folder-missing"    // the path is gone, not a directory, unreadable
	condMarker  = "marker-missing"    // the path is there, the marker is not
	condDevice  = "device-changed"    // another file system is mounted at the path
	condHeld    = "deletes-held"      // a batch deleted more than max_delete
	condNoMark  = "marker-unwritable" // the daemon may not create the marker (degraded)
)

// errGuard is matched by every error of the folder guard.
var errGuard = errors.New("folder guard")

// guardError is a failed check: the condition it sets and the reason.
type guardError struct {
	cond, reason string
}

func (e *guardError) Error() string { return e.reason }
func (e *guardError) Unwrap() error { return errGuard }

// markerKey is the state database's record that the folder got a marker.
func markerKey(id string) string { return "marker/" + id }

// check is the folder's guard: the path is a readable directory, on the
// device it was on when the daemon first found it good, with the marker
// in it. A folder that has never had a marker (first set up, or indexed
// by a syncd from before markers) gets one, unless its index has files
// and the directory is empty: that is a disk that did not mount. check
// sets or clears the guard's conditions and logs when they change; it
// returns a *guardError while the folder must stay stopped. The caller
// holds f.local's lock.
func (d *Daemon) check(f *folder) error {
	err := d.checkFolder(f)
	var ge *guardError
	errors.As(err, &ge)
	for _, c := range []string{condMissing, condMarker, condDevice} {
		if ge != nil && ge.cond == c {
			if f.health.Set(c, health.Failed, ge.reason) {
				d.log.Error("folder stopped", "folder", f.cfg.ID, "reason", ge.reason)
			}
		} else if f.health.Clear(c) {
			d.log.Info("folder guard passes again", "folder", f.cfg.ID, "cleared", c)
		}
	}
	if err != nil {
		// nothing goes through the directory that was open, which may be
		// a disk unmounted under it
		f.tf.Release()
		return err
	}
	if !f.tf.SameRoot() {
		if err := f.tf.Reopen(); err != nil {
			return &guardError{condMissing, err.Error()}
		}
	}
	return nil
}

func (d *Daemon) checkFolder(f *folder) error {
	path := f.cfg.Path
	fi, err := os.Stat(path)
	switch {
	case err != nil:
		return &guardError{condMissing, fmt.Sprintf("folder %s: %s: %v; it is retried every %v", f.cfg.ID, path, unwrapPath(err), guardEvery)}
	case !fi.IsDir():
		return &guardError{condMissing, fmt.Sprintf("folder %s: %s is not a directory; it is retried every %v", f.cfg.ID, path, guardEvery)}
	}
	dev := deviceOf(fi)
	if _, err := os.Lstat(filepath.Join(path, MarkerName)); err == nil {
		if f.health.Clear(condNoMark) {
			d.log.Info("folder marker found", "folder", f.cfg.ID)
		}
	} else {
		if !errors.Is(err, os.ErrNotExist) {
			return &guardError{condMissing, fmt.Sprintf("folder %s: marker %s: %v", f.cfg.ID, filepath.Join(path, MarkerName), unwrapPath(err))}
		}
		if err := d.firstMarker(f); err != nil {
			return err
		}
	}
	if f.dev == 0 {
		f.dev = dev
	} else if dev != f.dev {
		return &guardError{condDevice, fmt.Sprintf("folder %s: %s is on device %d:%d now, it was on %d:%d when syncd started: a disk mounted or unmounted there? It resumes when the device is back; restart syncd if the new one is right",
			f.cfg.ID, path, major(dev), minor(dev), major(f.dev), minor(f.dev))}
	}
	return nil
}

// firstMarker makes the marker of a folder that never had one, or refuses
// when the folder looks like an unmounted disk.
func (d *Daemon) firstMarker(f *folder) error {
	path := f.cfg.Path
	missing := &guardError{condMarker, fmt.Sprintf("folder %s: the folder marker %s is missing: is the disk mounted? Nothing is sent or applied until it is back (if this really is the folder, create it: touch %s)",
		f.cfg.ID, filepath.Join(path, MarkerName), filepath.Join(path, MarkerName))}
	had, _, err := d.db.GetMeta(markerKey(f.cfg.ID))
	if err != nil {
		return &guardError{condMissing, fmt.Sprintf("folder %s: state: %v", f.cfg.ID, err)}
	}
	if had != nil {
		return missing
	}
	if f.local.Index().Seq() > 0 {
		// Indexed before markers existed: mark it, unless it is empty.
		empty, err := emptyDir(path)
		if err != nil {
			return &guardError{condMissing, fmt.Sprintf("folder %s: %s: %v", f.cfg.ID, path, unwrapPath(err))}
		}
		if empty {
			return missing
		}
	}
	if err := writeMarker(path); err != nil {
		if errors.Is(err, fs.ErrPermission) || errors.Is(err, syscall.EROFS) {
			// A daemon that may only read the folder (a send-only node
			// running as another user, a read-only mount) works without
			// the marker, degraded: only an emptied folder is caught.
			reason := fmt.Sprintf("folder %s: cannot create the folder marker %s: %v; without it an unmounted disk is caught only when the folder is empty (create it: touch %s)",
				f.cfg.ID, filepath.Join(path, MarkerName), unwrapPath(err), filepath.Join(path, MarkerName))
			if f.health.Set(condNoMark, health.Degraded, reason) {
				d.log.Warn("folder marker not created", "folder", f.cfg.ID, "reason", reason)
			}
			return nil
		}
		return &guardError{condMissing, fmt.Sprintf("folder %s: create the folder marker: %v", f.cfg.ID, unwrapPath(err))}
	}
	f.health.Clear(condNoMark)
	if err := d.db.PutMeta(markerKey(f.cfg.ID), []byte{1}); err != nil {
		return &guardError{condMissing, fmt.Sprintf("folder %s: state: %v", f.cfg.ID, err)}
	}
	d.log.Info("created the folder marker", "folder", f.cfg.ID, "path", filepath.Join(path, MarkerName))
	return nil
}

// writeMarker creates the marker durably: the file, then its directory.
func writeMarker(dir string) error {
	p := filepath.Join(dir, MarkerName)
	fh, err := os.OpenFile(p, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return err
	}
	if _, err = fh.WriteString(markerText); err == nil {
		err = fh.Sync()
	}
	if cerr := fh.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(p)
		return err
	}
	if d, err := os.Open(dir); err == nil {
		d.Sync()
		d.Close()
	}
	return nil
}

// emptyDir reports whether dir holds nothing but syncd's own files.
func emptyDir(dir string) (bool, error) {
	fh, err := os.Open(dir)
	if err != nil {
		return false, err
	}
	defer fh.Close()
	for {
		names, err := fh.Readdirnames(64)
		for _, n := range names {
			if !ownname.Is(n) {
				return false, nil
			}
		}
		if err == io.EOF {
			return true, nil
		}
		if err != nil {
			return false, err
		}
	}
}

func deviceOf(fi os.FileInfo) uint64 {
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		return uint64(st.Dev)
	}
	return 0
}

// major and minor split a Linux device number.
func major(dev uint64) uint64 { return (dev>>8)&0xfff | (dev>>32)&^0xfff }
func minor(dev uint64) uint64 { return dev&0xff | (dev>>12)&^0xff }

// unwrapPath drops the *PathError's operation and path, which the
// message names already.
func unwrapPath(err error) error {
	var pe *os.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}
