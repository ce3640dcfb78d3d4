package state

import (
	"encoding/binary"
	"fmt"

	bolt "go.etcd.io/bbolt"
)

// A folder's bucket holds, under the key "totals", counts that every
// [Tx.Put], [Tx.Delete] and [Tx.Forget] keeps up to date in its own
// transaction, so that status and metrics never walk the index:
//
//	files  live (not deleted) regular files, 8 bytes big-endian
//	bytes  their total size, 8 bytes big-endian
//	local  entries other than the root whose vector has a counter of node
//	node   the local node the local count is for ([DB.SetLocalNode])
//
// A database written before the totals existed gets them at [Open], by one
// walk of each folder. A transaction that finds the local count made for
// another node than the current one counts it again, once.
var keyTotals = []byte("totals")

const totalsLen = 4 * 8

// totals is the decoded totals record.
type totals struct {
	files, bytes, local int64
	node                uint64
}

func (t *totals) encode() []byte {
	b := make([]byte, 0, totalsLen)
	for _, v := range []uint64{uint64(t.files), uint64(t.bytes), uint64(t.local), t.node} {
		b = binary.BigEndian.AppendUint64(b, v)
	}
	return b
}

// readTotals returns the folder's totals record, and false if there is
// none (or one of another length, which is counted again).
func readTotals(folder *bolt.Bucket) (totals, bool) {
	v := folder.Get(keyTotals)
	if len(v) != totalsLen {
		return totals{}, false
	}
	u := func(i int) uint64 { return binary.BigEndian.Uint64(v[8*i:]) }
	return totals{files: int64(u(0)), bytes: int64(u(1)), local: int64(u(2)), node: u(3)}, true
}

// add adds (sign 1) or takes away (sign -1) what the entry e of rel
// counts for.
func (t *totals) add(rel string, e *Entry, sign int64) {
	if e.Type == "file" && !e.Deleted {
		t.files += sign
		t.bytes += sign * e.Size
	}
	if rel != "" && e.Vector.Get(t.node) > 0 {
		t.local += sign
	}
}

// count walks the folder's entries, in the transaction of b, and returns
// its totals with the local count for node.
func (f *Folder) count(b *buckets, node uint64) (totals, error) {
	t := totals{node: node}
	c := b.entries.Cursor()
	for k, v := c.First(); k != nil; k, v = c.Next() {
		e, err := decodeEntry(v)
		if err != nil {
			return totals{}, f.entryError(k, err)
		}
		// only whether the path is the root matters for the count
		rel := ""
		if len(k) > 1 {
			rel = "x"
		}
		t.add(rel, &e, 1)
	}
	return t, nil
}

// loadTotals returns the totals of the folder in tx as of its start,
// counting them if the record is missing or counts local changes for
// another node; changed says that they were counted.
func (f *Folder) loadTotals(b *buckets, node uint64) (t totals, changed bool, err error) {
	t, ok := readTotals(b.folder)
	if ok && t.node == node {
		return t, false, nil
	}
	t, err = f.count(b, node)
	return t, true, err
}

// migrateTotals writes the totals of every folder that has none: a
// database from before they were kept. An entry that does not decode
// makes the database damaged.
func (db *DB) migrateTotals() error {
	var missing [][]byte
	err := db.bolt.View(func(tx *bolt.Tx) error {
		all := tx.Bucket(bucketFolders)
		if all == nil {
			return damaged(db.path, fmt.Errorf("no folders bucket"))
		}
		return all.ForEachBucket(func(id []byte) error {
			if _, ok := readTotals(all.Bucket(id)); !ok {
				missing = append(missing, append([]byte{}, id...))
			}
			return nil
		})
	})
	if err != nil || len(missing) == 0 {
		return err
	}
	return db.bolt.Update(func(tx *bolt.Tx) error {
		for _, id := range missing {
			f := db.Folder(string(id))
			b, err := f.open(tx, false)
			if err != nil {
				return err
			}
			if b == nil {
				continue
			}
			t, err := f.count(b, db.localNode.Load())
			if err != nil {
				return damaged(db.path, err)
			}
			if err := b.folder.Put(keyTotals, t.encode()); err != nil {
				return fmt.Errorf("folder %q: totals: %w", id, err)
			}
		}
		return nil
	})
}

// Totals returns how many live regular files the folder holds (not
// deleted, not directories or symlinks) and their total size in bytes. It
// costs one read of the database, whatever the size of the folder, and
// returns zeros for a folder without entries or a database that cannot be
// read.
func (f *Folder) Totals() (files, bytes int64) {
	_ = f.view(func(b *buckets) error {
		t, _ := readTotals(b.folder)
		files, bytes = t.files, t.bytes
		return nil
	})
	return files, bytes
}

// LocalChanged returns how many entries of the folder (tombstones
// included, the root not) have a version vector with a counter of the
// local node: in a receive-only folder, the paths changed here and not
// by a peer. It costs one read of the database. ok is false when the count
// is not known yet for the current local node ([DB.SetLocalNode]): the
// next [Folder.Update] counts it.
func (f *Folder) LocalChanged() (n int64, ok bool) {
	node := f.db.localNode.Load()
	ok = true // a folder without buckets has no entries
	err := f.view(func(b *buckets) error {
		t, has := readTotals(b.folder)
		n, ok = t.local, has && t.node == node
		return nil
	})
	if err != nil {
		return 0, false
	}
	return n, ok
}
