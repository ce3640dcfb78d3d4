package state

import (
	"bytes"
	"errors"
	"fmt"
	"slices"

	bolt "go.etcd.io/bbolt"
)

// Tx is a read-write transaction on one folder, passed to the function of
// [Folder.Update]. It is valid only until that function returns, and not
// safe for concurrent use.
type Tx struct {
	f     *Folder
	b     *buckets        // nil once closed
	seq   uint64          // the last version assigned
	start uint64          // seq when the transaction began
	dirty map[string]bool // directories with a change below them

	tot     totals // the folder's totals, kept up to date by each change
	counted bool   // tot was counted afresh (totals.go) and is to be written
}

var errTxClosed = errors.New("state: transaction used after Update returned")

// Update runs fn in one read-write transaction on the folder and commits
// it, durably, if fn returns nil; otherwise nothing fn did is kept and
// fn's error is returned. Updates are serialized: one runs at a time in
// the whole database, so keep them short (a scan batches its changes in
// transactions of some thousands of entries).
func (f *Folder) Update(fn func(tx *Tx) error) error {
	return f.db.guard(func() error {
		return f.db.bolt.Update(func(btx *bolt.Tx) error {
			b, err := f.open(btx, true)
			if err != nil {
				return err
			}
			seq := readSeq(b.folder)
			tot, counted, err := f.loadTotals(b, f.db.localNode.Load())
			if err != nil {
				return err
			}
			tx := &Tx{f: f, b: b, seq: seq, start: seq, dirty: map[string]bool{}, tot: tot, counted: counted}
			defer func() { tx.b = nil }()
			if err := callUser(fn, tx); err != nil {
				return err
			}
			return tx.commit()
		})
	})
}

// callUser calls fn and marks its panics so that guard passes them on.
func callUser(fn func(*Tx) error, tx *Tx) error {
	defer func() {
		if r := recover(); r != nil {
			panic(userPanic{r})
		}
	}()
	return fn(tx)
}

// commit writes the folder sequence number, the totals and the dirty
// marks: each directory gets the last version of the transaction, since
// all of its versions become visible at once.
func (tx *Tx) commit() error {
	if tx.seq == tx.start && !tx.counted {
		return nil
	}
	if err := tx.b.folder.Put(keyTotals, tx.tot.encode()); err != nil {
		return fmt.Errorf("folder totals: %w", err)
	}
	if tx.seq == tx.start {
		return nil
	}
	if err := tx.b.folder.Put(keySeq, u64(tx.seq)); err != nil {
		return err
	}
	v := u64(tx.seq)
	keys := make([][]byte, 0, len(tx.dirty))
	for dir := range tx.dirty {
		keys = append(keys, pathKey(dir))
	}
	// in key order, so that bbolt inserts each near the last instead of
	// moving the keys of a growing node at random
	slices.SortFunc(keys, bytes.Compare)
	for _, k := range keys {
		if err := tx.b.dirty.Put(k, v); err != nil {
			dir, _ := keyPath(k)
			return fmt.Errorf("mark %q dirty: %w", dir, err)
		}
	}
	return nil
}

// Get returns the entry of rel as this transaction sees it, and whether
// there is one.
func (tx *Tx) Get(rel string) (e Entry, ok bool, err error) {
	if tx.b == nil {
		return Entry{}, false, errTxClosed
	}
	if err := checkPath(rel); err != nil {
		return Entry{}, false, err
	}
	defer tx.f.db.catch(&err)
	return tx.f.get(tx.b, pathKey(rel))
}

// Put stores e as the entry of rel, with the next version of the folder,
// and invalidates the tree cache of every directory above rel. If rel
// already has an entry equal to e (Version aside), Put does nothing: an
// unchanged file keeps its version.
//
// An e without a Vector is a local change: it keeps the old entry's
// vector if only local facts changed (see [SameContent]), and otherwise
// gets the old vector bumped for the local node ([DB.SetLocalNode]). An e
// with a Vector is a peer's version applied here and is stored as it is;
// it may be a tombstone (Deleted). rel is "" (the folder root) or a
// slash-separated relative path; names may hold any byte but '/' and NUL.
func (tx *Tx) Put(rel string, e Entry) (err error) {
	if tx.b == nil {
		return errTxClosed
	}
	if err := checkPath(rel); err != nil {
		return fmt.Errorf("put: %w", err)
	}
	if err := e.check(); err != nil {
		return fmt.Errorf("put %q: %w", rel, err)
	}
	defer tx.f.db.catch(&err)
	key := pathKey(rel)
	old, had, err := tx.f.get(tx.b, key)
	if err != nil {
		return err
	}
	if e.Vector == nil {
		switch {
		case (!had || len(old.Vector) == 0) && tx.adopting():
			// recorded without a version while the folder's first scan
			// runs (see [Folder.BeginAdoption])
		case had && SameContent(old, e):
			e.Vector = old.Vector
		default:
			e.Vector = old.Vector.Bump(tx.f.db.localNode.Load(), tx.f.db.now())
		}
	}
	return tx.put(rel, key, e, old, had)
}

// Delete replaces the entry of rel with a tombstone with the next version,
// so that peers learn of the delete, and invalidates the tree cache of
// every directory above rel. It does nothing if rel has no entry or has a
// tombstone already. Delete removes one path: deleting a directory takes a
// Delete for each entry below it too.
//
// An entry without a version removed during an adopting folder's first
// scan (see [Folder.BeginAdoption]) leaves no tombstone, as [Tx.Forget]:
// no peer has it from this node.
func (tx *Tx) Delete(rel string) (err error) {
	if tx.b == nil {
		return errTxClosed
	}
	if err := checkPath(rel); err != nil {
		return fmt.Errorf("delete: %w", err)
	}
	defer tx.f.db.catch(&err)
	key := pathKey(rel)
	old, had, err := tx.f.get(tx.b, key)
	if err != nil || !had || old.Deleted {
		return err
	}
	if len(old.Vector) == 0 && tx.adopting() {
		return tx.forget(rel, key, old)
	}
	v := old.Vector.Bump(tx.f.db.localNode.Load(), tx.f.db.now())
	return tx.put(rel, key, Entry{Type: old.Type, Deleted: true, Vector: v}, old, true)
}

func (tx *Tx) put(rel string, key []byte, e, old Entry, had bool) error {
	if had {
		e.Version = old.Version
		if bytes.Equal(appendEntry(nil, &e), tx.b.entries.Get(key)) {
			return nil
		}
		if err := tx.b.versions.Delete(u64(old.Version)); err != nil {
			return err
		}
	}
	tx.seq++
	e.Version = tx.seq
	if err := tx.b.entries.Put(key, appendEntry(nil, &e)); err != nil {
		return fmt.Errorf("put %q: %w", rel, err)
	}
	if had {
		tx.tot.add(rel, &old, -1)
	}
	tx.tot.add(rel, &e, 1)
	if err := tx.b.versions.Put(u64(e.Version), key); err != nil {
		return fmt.Errorf("put %q: %w", rel, err)
	}
	for _, p := range parents(rel) {
		if tx.dirty[p] {
			break // and so are the ones above it
		}
		tx.dirty[p] = true
	}
	// A directory that appears, disappears or turns into something else
	// drops its own cached tree too.
	if (e.Type == "dir" || had && old.Type == "dir") && (!had || old.Deleted || e.Deleted || old.Type != e.Type) {
		tx.dirty[rel] = true
	}
	return nil
}

// Forget removes the entry of rel from the index altogether, without a
// tombstone: as if the path had never been seen. A receive-only folder's
// revert uses it, so that the peers' version of rel is taken again as new.
// It does nothing if rel has no entry.
func (tx *Tx) Forget(rel string) (err error) {
	if tx.b == nil {
		return errTxClosed
	}
	if err := checkPath(rel); err != nil {
		return fmt.Errorf("forget: %w", err)
	}
	defer tx.f.db.catch(&err)
	key := pathKey(rel)
	old, had, err := tx.f.get(tx.b, key)
	if err != nil || !had {
		return err
	}
	return tx.forget(rel, key, old)
}

func (tx *Tx) forget(rel string, key []byte, old Entry) error {
	if err := tx.b.versions.Delete(u64(old.Version)); err != nil {
		return err
	}
	if err := tx.b.entries.Delete(key); err != nil {
		return err
	}
	tx.tot.add(rel, &old, -1)
	for _, p := range parents(rel) {
		tx.dirty[p] = true
	}
	if old.Type == "dir" {
		tx.dirty[rel] = true
	}
	// the folder's sequence number moves, so that readers of Seq see a change
	tx.seq++
	return nil
}
