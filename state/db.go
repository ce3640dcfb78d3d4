// Package state is the node's local index (DESIGN.md §4): for every path of
// every folder, the metadata the last scan saw, the chunk IDs of the
// content, and the version of the change that wrote it. It is the single
// source of truth for what changed: file-system events are hints, and a
// scan of the hinted place compared against the index decides.
//
// The index is one go.etcd.io/bbolt file under the node's state directory.
//
// Crash safety: every change goes through one bbolt read-write transaction
// ([Folder.Update], [Folder.SetTreeCache], [DB.PutMeta]) that is fsynced
// before it returns (NoSync is off). After a crash or power loss the file
// holds every transaction that returned nil and none of the others, whole:
// entries, versions, dirty marks and the folder sequence number always
// agree. A transaction whose function returns an error leaves no trace.
//
// Losing the file costs a rescan, never data: [Open] of a missing file
// creates an empty index, so every folder is scanned again in full. A
// damaged file is reported, with the way out, by an error matching
// [ErrDamaged]; a file held by another process by one matching [ErrInUse].
//
// # Layout
//
// A path is relative to the folder root: "" is the root itself, and names
// are separated by single slashes. A name is not "." or ".." and may hold
// any byte but '/' and NUL, newlines and invalid UTF-8 included. The key of a path is 0x00
// followed by the path with every '/' replaced by 0x00: "" is "\x00", "a/b"
// is "\x00a\x00b". As 0x00 sorts before every byte a name can hold, keys sort
// depth first, each directory right before what is below it and the
// children of a directory in byte order of their names: "a", "a/b",
// "a/b/c", "a-b". What is below a directory is one contiguous range of keys.
//
// The file holds three buckets: "syncd" (the format marker), "meta" (for
// [DB.PutMeta]) and "folders", with one bucket per folder ID. A folder's
// bucket holds the key "seq" (its highest version, 8 bytes big-endian), the
// key "totals" (files, bytes and local changes, kept by every change:
// totals.go) and four buckets:
//
//	entries   path key → Entry, encoded: a format byte (1), then binary
//	          fields, varints for numbers (entry.go)
//	versions  version (8 bytes big-endian) → path key, one per entry, so that
//	          Changed costs the number of changes, not the size of the tree
//	trees     directory path key → the tree blob ID last stored for it
//	dirty     directory path key → the version of the latest change below it
package state

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime/debug"
	"sync/atomic"
	"syscall"
	"time"

	bolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"
)

// DB is an open state database. Its methods, and those of the folders it
// returns, are safe for concurrent use.
type DB struct {
	bolt *bolt.DB
	path string
	file *os.File // bbolt's, to release the lock if bbolt cannot

	// broken is the first damaged error that came from a panic in bbolt;
	// bbolt may have been left with locks held, so it is not used again.
	broken atomic.Pointer[error]

	localNode atomic.Uint64 // the counter a local change bumps in a vector
	clock     atomic.Pointer[func() time.Time]
}

// SetLocalNode sets the node whose counter local changes bump in version
// vectors ([Entry.Vector]): the short ID of this node's TLS identity. Until
// it is called, local changes bump node 0.
func (db *DB) SetLocalNode(node uint64) { db.localNode.Store(node) }

// SetClock replaces time.Now for version counters (for tests).
func (db *DB) SetClock(now func() time.Time) { db.clock.Store(&now) }

func (db *DB) now() time.Time {
	if c := db.clock.Load(); c != nil {
		return (*c)()
	}
	return time.Now()
}

// lockTimeout is how long Open waits for another process to release the file.
const lockTimeout = time.Second

// Errors that callers branch on.
var (
	// ErrInUse matches the error of Open when another process (another
	// syncd) holds the database.
	ErrInUse = errors.New("state database in use")
	// ErrDamaged matches the errors returned when the database file is
	// damaged. The message names the file and says how to recover.
	ErrDamaged = errors.New("state database damaged")
)

// dbError is an error with its own message that matches a sentinel and
// wraps its cause.
type dbError struct {
	msg  string
	errs []error
}

func (e *dbError) Error() string   { return e.msg }
func (e *dbError) Unwrap() []error { return e.errs }

// damaged returns the error for a damaged database file.
func damaged(path string, err error) error {
	return &dbError{
		msg: fmt.Sprintf("state database %s is damaged (%v): stop syncd, move %s away; the next start rescans all folders",
			path, err, path),
		errs: []error{ErrDamaged, err},
	}
}

// buckets of the root
var (
	bucketInfo    = []byte("syncd")   // "format" → format version
	bucketMeta    = []byte("meta")    // GetMeta/PutMeta
	bucketFolders = []byte("folders") // folder ID → folder bucket (folder.go)
	keyFormat     = []byte("format")
)

// dbFormat is the layout version stored under syncd/format.
const dbFormat = 1

// Open opens the state database at path, creating it (mode 0600, and its
// directory, mode 0700) if missing or empty. It fails with an error matching
// [ErrInUse] if another process has it open, within about a second, and
// with one matching [ErrDamaged] if the file is not a readable state
// database.
func Open(path string) (*DB, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("open state database: %w", err)
	}
	var file *os.File
	opts := &bolt.Options{
		Timeout:      lockTimeout,
		FreelistType: bolt.FreelistMapType,
		OpenFile: func(name string, flag int, perm os.FileMode) (*os.File, error) {
			f, err := os.OpenFile(name, flag, perm)
			file = f
			return f, err
		},
	}
	var bdb *bolt.DB
	err := guard(path, func() (err error) {
		bdb, err = bolt.Open(path, 0o600, opts)
		return err
	}, nil)
	if err != nil {
		if bdb == nil && file != nil {
			file.Close() // a panic inside bolt.Open left the file open and locked
		}
		return nil, openError(path, err)
	}
	db := &DB{bolt: bdb, path: path, file: file}
	if err := db.guard(db.init); err != nil {
		db.Close()
		return nil, err
	}
	if err := db.guard(db.migrateTotals); err != nil {
		db.Close()
		return nil, err
	}
	return db, nil
}

// openError classifies an error of bolt.Open.
func openError(path string, err error) error {
	var errno syscall.Errno
	switch {
	case errors.Is(err, ErrDamaged):
		return err
	case errors.Is(err, berrors.ErrTimeout):
		return &dbError{
			msg:  fmt.Sprintf("state database %s is in use by another process", path),
			errs: []error{ErrInUse, err},
		}
	case errors.As(err, new(*fs.PathError)), errors.As(err, &errno):
		return fmt.Errorf("open state database %s: %w", path, err)
	}
	// bbolt's invalid or mismatched meta pages, a file too small to hold
	// them, and the like
	return damaged(path, err)
}

// init checks the file against its own size and our format marker, and
// writes the marker into a new file.
func (db *DB) init() error {
	st, err := os.Stat(db.path)
	if err != nil {
		return fmt.Errorf("open state database: %w", err)
	}
	fresh := false
	err = db.bolt.View(func(tx *bolt.Tx) error {
		if need := tx.Size(); need > st.Size() {
			return damaged(db.path, fmt.Errorf("truncated: %d bytes, its pages need %d", st.Size(), need))
		}
		info := tx.Bucket(bucketInfo)
		if info == nil {
			empty := true
			_ = tx.ForEach(func([]byte, *bolt.Bucket) error { empty = false; return nil })
			if !empty {
				return damaged(db.path, errors.New("not a syncd state database"))
			}
			fresh = true
			return nil
		}
		switch f := info.Get(keyFormat); {
		case len(f) != 1:
			return damaged(db.path, errors.New("bad format marker"))
		case f[0] != dbFormat:
			return fmt.Errorf("state database %s has format %d, this syncd reads format %d: move it away to rescan all folders",
				db.path, f[0], dbFormat)
		}
		return nil
	})
	if err != nil || !fresh {
		return err
	}
	return db.bolt.Update(func(tx *bolt.Tx) error {
		for _, name := range [][]byte{bucketMeta, bucketFolders} {
			if _, err := tx.CreateBucketIfNotExists(name); err != nil {
				return err
			}
		}
		info, err := tx.CreateBucketIfNotExists(bucketInfo)
		if err != nil {
			return err
		}
		return info.Put(keyFormat, []byte{dbFormat})
	})
}

// Path returns the file name of the database.
func (db *DB) Path() string { return db.path }

// Close closes the database; it waits for running transactions to end.
// After a damaged error it only releases the file and returns that error.
func (db *DB) Close() error {
	if err := db.broken.Load(); err != nil {
		db.file.Close()
		return *err
	}
	if err := db.bolt.Close(); err != nil {
		return fmt.Errorf("close state database %s: %w", db.path, err)
	}
	return nil
}

// GetMeta returns the value stored under key by PutMeta, and whether there
// is one. The daemon keeps its bookkeeping there (the last snapshot, what
// each peer acknowledged).
func (db *DB) GetMeta(key string) ([]byte, bool, error) {
	var v []byte
	err := db.guard(func() error {
		return db.bolt.View(func(tx *bolt.Tx) error {
			b := tx.Bucket(bucketMeta)
			if b == nil {
				return damaged(db.path, errors.New("no meta bucket"))
			}
			if x := b.Get([]byte(key)); x != nil {
				v = append([]byte{}, x...)
			}
			return nil
		})
	})
	return v, v != nil, err
}

// PutMeta stores v under key, durably; key must not be empty.
func (db *DB) PutMeta(key string, v []byte) error {
	if key == "" {
		return errors.New("put meta: empty key")
	}
	return db.guard(func() error {
		return db.bolt.Update(func(tx *bolt.Tx) error {
			b := tx.Bucket(bucketMeta)
			if b == nil {
				return damaged(db.path, errors.New("no meta bucket"))
			}
			if err := b.Put([]byte(key), append([]byte{}, v...)); err != nil {
				return fmt.Errorf("put meta %q: %w", key, err)
			}
			return nil
		})
	})
}

// guard runs fn, which uses the bbolt file, and turns the panics bbolt
// raises on a damaged file, and the memory faults of reading a mapped page
// the file no longer holds, into an error matching ErrDamaged. From then
// on the database is not used again: guard returns that error at once.
// A panic of the caller's code is wrapped in userPanic on its way through
// fn and panics again, unchanged.
func (db *DB) guard(fn func() error) error {
	if err := db.broken.Load(); err != nil {
		return *err
	}
	return guard(db.path, fn, db.setBroken)
}

func (db *DB) setBroken(err error) { db.broken.CompareAndSwap(nil, &err) }

func guard(path string, fn func() error, broken func(error)) (err error) {
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	defer func() {
		if r := recover(); r != nil {
			if u, ok := r.(userPanic); ok {
				panic(u.v)
			}
			err = damaged(path, panicError(r))
			if broken != nil {
				broken(err)
			}
		}
	}()
	return fn()
}

// userPanic carries a panic of a caller's function through guard.
type userPanic struct{ v any }

// catch is deferred by the Tx methods, so that bbolt's panics become errors
// there and do not pass for the caller's.
func (db *DB) catch(err *error) {
	if r := recover(); r != nil {
		*err = damaged(db.path, panicError(r))
		db.setBroken(*err)
	}
}

// panicError describes a panic recovered from bbolt.
func panicError(r any) error {
	if err, ok := r.(error); ok {
		return fmt.Errorf("bbolt: %w", err)
	}
	return fmt.Errorf("bbolt: %v", r)
}
