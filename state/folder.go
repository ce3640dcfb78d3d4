package state

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io/fs"
	"strings"

	bolt "go.etcd.io/bbolt"

	"github.com/syncd/syncd/chunkstore"
)

// Folder is the index of one synced folder, the bucket folders/<ID> of the
// file (see the package documentation). Its methods are safe for
// concurrent use.
type Folder struct {
	db *DB
	id string
}

var (
	bucketEntries  = []byte("entries")
	bucketVersions = []byte("versions")
	bucketTrees    = []byte("trees")
	bucketDirty    = []byte("dirty")
	keySeq         = []byte("seq")
)

// Folder returns the index of the folder with the given ID. It does no I/O:
// the folder's buckets are created by its first change.
func (db *DB) Folder(id string) *Folder { return &Folder{db: db, id: id} }

// buckets are a folder's buckets within one transaction.
type buckets struct {
	folder, entries, versions, trees, dirty *bolt.Bucket
}

// open returns the folder's buckets in tx, creating them if create is set;
// nil if they do not exist.
func (f *Folder) open(tx *bolt.Tx, create bool) (*buckets, error) {
	if f.id == "" {
		return nil, errors.New("empty folder ID")
	}
	all := tx.Bucket(bucketFolders)
	if all == nil {
		return nil, damaged(f.db.path, errors.New("no folders bucket"))
	}
	var b buckets
	var err error
	if create {
		if b.folder, err = all.CreateBucketIfNotExists([]byte(f.id)); err != nil {
			return nil, fmt.Errorf("folder %q: %w", f.id, err)
		}
	} else if b.folder = all.Bucket([]byte(f.id)); b.folder == nil {
		return nil, nil
	}
	for _, s := range []struct {
		b    **bolt.Bucket
		name []byte
	}{{&b.entries, bucketEntries}, {&b.versions, bucketVersions}, {&b.trees, bucketTrees}, {&b.dirty, bucketDirty}} {
		if create {
			*s.b, err = b.folder.CreateBucketIfNotExists(s.name)
		} else if *s.b = b.folder.Bucket(s.name); *s.b == nil {
			err = damaged(f.db.path, fmt.Errorf("folder %q has no %s bucket", f.id, s.name))
		}
		if err != nil {
			return nil, err
		}
	}
	if create {
		// Versions only grow at the end, and a scan puts paths in key
		// order: fuller pages than bbolt's default of half full make a
		// smaller file and fewer pages to write.
		b.versions.FillPercent = 1
		b.entries.FillPercent = 0.9
	}
	return &b, nil
}

// view runs fn in a read transaction, unless the folder has no buckets yet.
func (f *Folder) view(fn func(b *buckets) error) error {
	return f.db.guard(func() error {
		return f.db.bolt.View(func(tx *bolt.Tx) error {
			b, err := f.open(tx, false)
			if err != nil || b == nil {
				return err
			}
			return fn(b)
		})
	})
}

// entryError reports an entry that does not decode, naming it.
func (f *Folder) entryError(key []byte, err error) error {
	rel, kerr := keyPath(key)
	if kerr != nil {
		rel = fmt.Sprintf("%q", key)
	}
	return fmt.Errorf("state database %s: folder %q: entry %q: %w", f.db.path, f.id, rel, err)
}

// Get returns the entry of rel, tombstones included, and whether there is one.
func (f *Folder) Get(rel string) (Entry, bool, error) {
	if err := checkPath(rel); err != nil {
		return Entry{}, false, err
	}
	var e Entry
	var ok bool
	err := f.view(func(b *buckets) (err error) {
		e, ok, err = f.get(b, pathKey(rel))
		return err
	})
	return e, ok, err
}

// GetEach calls fn with the entry of each of rels, in order, as Get would
// return it, all read in one transaction (a receiver planning a batch of
// a thousand entries, a Get each, spent more on opening transactions than
// on reading). fn must not call Update. An error of fn stops the reads
// and is returned.
func (f *Folder) GetEach(rels []string, fn func(i int, e Entry, ok bool) error) error {
	for _, rel := range rels {
		if err := checkPath(rel); err != nil {
			return err
		}
	}
	return f.view(func(b *buckets) error {
		for i, rel := range rels {
			e, ok, err := f.get(b, pathKey(rel))
			if err != nil {
				return err
			}
			if err := fn(i, e, ok); err != nil {
				return err
			}
		}
		return nil
	})
}

func (f *Folder) get(b *buckets, key []byte) (Entry, bool, error) {
	v := b.entries.Get(key)
	if v == nil {
		return Entry{}, false, nil
	}
	e, err := decodeEntry(v)
	if err != nil {
		return Entry{}, false, f.entryError(key, err)
	}
	return e, true, nil
}

// Seq returns the highest version in the folder: 0 for a new folder, and
// also when the database cannot be read (the next call that returns an
// error says why; 0 makes a caller look at everything, never at too little).
func (f *Folder) Seq() uint64 {
	var seq uint64
	_ = f.view(func(b *buckets) error {
		seq = readSeq(b.folder)
		return nil
	})
	return seq
}

func readSeq(b *bolt.Bucket) uint64 {
	if v := b.Get(keySeq); len(v) == 8 {
		return binary.BigEndian.Uint64(v)
	}
	return 0
}

func u64(v uint64) []byte { return binary.BigEndian.AppendUint64(nil, v) }

// walkBatch is how many entries Walk and Changed read per transaction (a
// variable for the tests).
var walkBatch = 1024

type item struct {
	rel string
	e   Entry
}

// Walk calls fn for every entry whose path starts with prefix, tombstones
// included, in path order: depth first, a directory right before the
// entries below it, the children of a directory in byte order of their
// names ("a", "a/b", "a/b/c", "a-b"). Walk("a/", fn) visits the subtree
// below "a"; Walk("", fn) the whole folder.
//
// If fn returns [fs.SkipDir], Walk skips the entries below the one passed
// to fn; if it returns [fs.SkipAll], Walk stops and returns nil; any other
// error stops Walk and is returned.
//
// fn runs outside any transaction (Walk reads in batches), so it may call
// Update. An entry changed during the walk may be seen old or new, and
// each path at most once.
func (f *Folder) Walk(prefix string, fn func(rel string, e Entry) error) error {
	if strings.IndexByte(prefix, 0) >= 0 {
		return fmt.Errorf("walk %q: NUL byte in prefix", prefix)
	}
	pk := pathKey(prefix)
	seek := pk
	for {
		var batch []item
		err := f.view(func(b *buckets) error {
			c := b.entries.Cursor()
			for k, v := c.Seek(seek); k != nil && bytes.HasPrefix(k, pk) && len(batch) < walkBatch; k, v = c.Next() {
				it, err := f.decodeItem(k, v)
				if err != nil {
					return err
				}
				batch = append(batch, it)
			}
			return nil
		})
		if err != nil || len(batch) == 0 {
			return err
		}
		skipping, below := false, "" // skipping the paths that start with below
		for _, it := range batch {
			if skipping && strings.HasPrefix(it.rel, below) {
				continue
			}
			skipping = false
			switch err := fn(it.rel, it.e); err {
			case nil:
			case fs.SkipDir:
				if it.rel == "" {
					return nil // everything else is below the root
				}
				skipping, below = true, it.rel+"/"
			case fs.SkipAll:
				return nil
			default:
				return err
			}
		}
		if len(batch) < walkBatch {
			return nil
		}
		if skipping {
			seek = append(pathKey(below[:len(below)-1]), 1) // the first key after the skipped subtree
		} else {
			seek = append(pathKey(batch[len(batch)-1].rel), 0) // the first key after the last
		}
	}
}

// decodeItem decodes the entry of the key k, value v: its path and its
// entry, or the error that says the index is damaged.
func (f *Folder) decodeItem(k, v []byte) (item, error) {
	rel, err := keyPath(k)
	if err != nil {
		return item{}, damaged(f.db.path, fmt.Errorf("folder %q: %w", f.id, err))
	}
	e, err := decodeEntry(v)
	if err != nil {
		return item{}, f.entryError(k, err)
	}
	return item{rel, e}, nil
}

// Dirs calls fn for every live directory entry (no tombstones), in path
// order. It reads the folder in one transaction and decodes only the
// directories' entries (a file's is skipped by its type byte), so it
// costs a few milliseconds where Walk of a large folder costs tens: the
// indexer looks for a renamed directory's old name by its inode with it.
// fn runs outside the transaction.
func (f *Folder) Dirs(fn func(rel string, e Entry) error) error {
	var dirs []item
	err := f.view(func(b *buckets) error {
		c := b.entries.Cursor()
		for k, v := c.First(); k != nil; k, v = c.Next() {
			if len(v) < 3 || v[1]&flagDeleted != 0 || int(v[2]) >= len(typeNames) || typeNames[v[2]] != "dir" {
				continue // a damaged entry is left to the readers that decode it
			}
			it, err := f.decodeItem(k, v)
			if err != nil {
				return err
			}
			dirs = append(dirs, it)
		}
		return nil
	})
	if err != nil {
		return err
	}
	for _, it := range dirs {
		if err := fn(it.rel, it.e); err != nil {
			return err
		}
	}
	return nil
}

// Changed calls fn for every entry with a Version above since, tombstones
// included, in version order, and returns fn's first error. Its cost
// follows the number of such entries, not the size of the folder. fn runs
// outside any transaction; a path changed during the call may be reported
// again with its new version.
func (f *Folder) Changed(since uint64, fn func(rel string, e Entry) error) error {
	for {
		if since == 1<<64-1 {
			return nil
		}
		var batch []item
		err := f.view(func(b *buckets) error {
			c := b.versions.Cursor()
			for k, v := c.Seek(u64(since + 1)); k != nil && len(batch) < walkBatch; k, v = c.Next() {
				e, ok, err := f.get(b, v)
				rel, kerr := keyPath(v)
				if err == nil && (kerr != nil || !ok || len(k) != 8 || e.Version != binary.BigEndian.Uint64(k)) {
					err = damaged(f.db.path, fmt.Errorf("folder %q: version %x names %q, which does not have it", f.id, k, v))
				}
				if err != nil {
					return err
				}
				batch = append(batch, item{rel, e})
			}
			return nil
		})
		if err != nil || len(batch) == 0 {
			return err
		}
		for _, it := range batch {
			if err := fn(it.rel, it.e); err != nil {
				return err
			}
		}
		if len(batch) < walkBatch {
			return nil
		}
		since = batch[len(batch)-1].e.Version
	}
}

// TreeCache returns the ID of the tree blob last stored for directory dir
// by SetTreeCache, if it is still valid: nothing below dir changed since.
// A change to "a/b/c" invalidates the trees of "a/b", "a" and "" (the
// root). It returns false if the database cannot be read.
func (f *Folder) TreeCache(dir string) (chunkstore.ID, bool) {
	var id chunkstore.ID
	var ok bool
	if checkPath(dir) != nil {
		return id, false
	}
	_ = f.view(func(b *buckets) error {
		k := pathKey(dir)
		if b.dirty.Get(k) != nil {
			return nil
		}
		if v := b.trees.Get(k); len(v) == len(id) {
			copy(id[:], v)
			ok = true
		}
		return nil
	})
	return id, ok
}

// SetTreeCache records id as the tree blob of directory dir built from the
// index as of version asOf: read Seq before reading the entries the tree
// lists. It marks dir clean unless something below dir changed after
// asOf, in which case TreeCache keeps reporting it as not cached. That way
// a change made while the tree was being built is never lost.
func (f *Folder) SetTreeCache(dir string, id chunkstore.ID, asOf uint64) error {
	return f.SetTreeCaches(map[string]chunkstore.ID{dir: id}, asOf)
}

// SetTreeCaches is SetTreeCache for many directories in one transaction
// (one commit, one fsync): a snapshot rebuilds hundreds of trees.
func (f *Folder) SetTreeCaches(trees map[string]chunkstore.ID, asOf uint64) error {
	for dir := range trees {
		if err := checkPath(dir); err != nil {
			return fmt.Errorf("set tree cache: %w", err)
		}
	}
	return f.db.guard(func() error {
		return f.db.bolt.Update(func(tx *bolt.Tx) error {
			b, err := f.open(tx, true)
			if err != nil {
				return err
			}
			for dir, id := range trees {
				k := pathKey(dir)
				if err := b.trees.Put(k, bytes.Clone(id[:])); err != nil {
					return fmt.Errorf("set tree cache %q: %w", dir, err)
				}
				if d := b.dirty.Get(k); d != nil && (len(d) != 8 || binary.BigEndian.Uint64(d) <= asOf) {
					if err := b.dirty.Delete(k); err != nil {
						return err
					}
				}
			}
			return nil
		})
	})
}

// WalkTree calls fn for the entry rel itself, if there is one, and for
// every entry below it, in Walk's order; rel "" is the whole folder.
// Unlike Walk("a"), which also visits "a-b" and "ab/c", it stays inside
// the subtree.
func (f *Folder) WalkTree(rel string, fn func(rel string, e Entry) error) error {
	if rel == "" {
		return f.Walk("", fn)
	}
	e, ok, err := f.Get(rel)
	if err != nil {
		return err
	}
	if ok {
		switch err := fn(rel, e); err {
		case nil:
		case fs.SkipDir, fs.SkipAll:
			return nil
		default:
			return err
		}
	}
	return f.Walk(rel+"/", fn)
}
