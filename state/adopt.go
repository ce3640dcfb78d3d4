package state

import (
	"sync"

	bolt "go.etcd.io/bbolt"
)

// A folder that adopts its peers' versions records what its first full
// scan finds on disk without a version (an entry with an empty Vector). Such an entry is
// older than any peer's version of its path: the receiver takes the
// peer's version over it (no transfer when the content is the same, no
// conflict copy when it differs), and a peer's delete removes it. It is
// not announced to peers (the protocol requires a vector). It becomes an
// ordinary local version when it changes after that scan (a delete then
// leaves a tombstone, so that the peers' old copies of it go too), or
// when [Folder.EndAdoption] versions what is left: the paths no peer
// knows of.
//
// This is how a node with a new index joins peers with history without
// sending its own copy back as new: a node restored from a snapshot, a
// node whose state database was lost. See docs/PROTOCOL.md, "A node with
// a new index".

// keyAdopting marks an adopting folder with its [Adoption] state.
var keyAdopting = []byte("adopting")

// Adoption is where a folder stands in adopting its peers' versions.
type Adoption byte

// The states of [Folder.Adoption]. The stored values are part of the
// state database's format.
const (
	NotAdopting Adoption = 0 // local changes are versioned as usual
	Scanning    Adoption = 1 // adopting; the first full scan runs: what it finds has no version
	Scanned     Adoption = 3 // adopting; the first full scan has finished: local changes are versioned
	Ending      Adoption = 2 // [Folder.EndAdoption] began
)

func readAdoption(b *bolt.Bucket) Adoption {
	if v := b.Get(keyAdopting); len(v) == 1 {
		return Adoption(v[0])
	}
	return NotAdopting
}

// adoptingBatch is how many entries EndAdoption versions per transaction
// (a variable for the tests).
var adoptingBatch = 1000

// adopting reports whether the folder records local changes without a
// version: it adopts and its first full scan has not finished.
func (tx *Tx) adopting() bool { return readAdoption(tx.b.folder) == Scanning }

// BeginAdoption makes a folder that has never been indexed adopt its
// peers' versions: until [Folder.AdoptionScanned], a local change to a
// path that has no versioned entry is recorded without a version. It reports
// whether the folder adopts: it was new now, or an adoption begun before
// has not ended. A folder indexed before (with entries or a sequence
// number above 0) does not begin to adopt.
func (f *Folder) BeginAdoption() (adopting bool, err error) {
	err = f.db.guard(func() error {
		return f.db.bolt.Update(func(btx *bolt.Tx) error {
			b, err := f.open(btx, true)
			if err != nil {
				return err
			}
			if b.folder.Get(keyAdopting) != nil {
				adopting = true
				return nil
			}
			if k, _ := b.entries.Cursor().First(); k != nil || readSeq(b.folder) != 0 {
				return nil
			}
			adopting = true
			return b.folder.Put(keyAdopting, []byte{byte(Scanning)})
		})
	})
	return adopting, err
}

// Adoption returns the folder's adoption state (see
// [Folder.BeginAdoption]); NotAdopting if the database cannot be read.
func (f *Folder) Adoption() Adoption {
	a := NotAdopting
	_ = f.view(func(b *buckets) error {
		a = readAdoption(b.folder)
		return nil
	})
	return a
}

// AdoptionScanned records that a full scan of the folder has finished:
// an adopting folder goes from Scanning to Scanned, and a receiver can
// now tell a restored file from a change not yet indexed. It does
// nothing (and writes nothing) in any other state.
func (f *Folder) AdoptionScanned() error {
	if f.Adoption() != Scanning {
		return nil
	}
	return f.Update(func(tx *Tx) error {
		if readAdoption(tx.b.folder) != Scanning {
			return nil
		}
		return tx.b.folder.Put(keyAdopting, []byte{byte(Scanned)})
	})
}

// EndAdoption ends the folder's adoption: from now on local changes are
// versioned as usual, and every entry still without a version (what no
// peer's version replaced: paths the peers do not know) gets one, as a
// local change of this node, so that it is announced. It returns how many
// entries it versioned. It works in transactions of some hundreds of
// entries, each under mu if mu is not nil (the folder lock, so that no
// batch of the indexer or a receiver runs in between); if it is
// interrupted, the folder still adopts and a later call finishes the job.
func (f *Folder) EndAdoption(mu sync.Locker) (int, error) {
	err := f.Update(func(tx *Tx) error {
		if tx.b.folder.Get(keyAdopting) == nil {
			return nil
		}
		return tx.b.folder.Put(keyAdopting, []byte{byte(Ending)})
	})
	if err != nil {
		return 0, err
	}
	var paths []string
	err = f.Walk("", func(rel string, e Entry) error {
		if len(e.Vector) == 0 {
			paths = append(paths, rel)
		}
		return nil
	})
	if err != nil {
		return 0, err
	}
	n := 0
	for len(paths) > 0 {
		batch := paths[:min(len(paths), adoptingBatch)]
		paths = paths[len(batch):]
		if mu != nil {
			mu.Lock()
		}
		err := f.Update(func(tx *Tx) error {
			for _, rel := range batch {
				e, ok, err := tx.Get(rel)
				if err != nil {
					return err
				}
				if !ok || len(e.Vector) > 0 {
					continue // a peer's version or a local change replaced it meanwhile
				}
				e.Vector = e.Vector.Bump(f.db.localNode.Load(), f.db.now())
				if err := tx.Put(rel, e); err != nil {
					return err
				}
				n++
			}
			return nil
		})
		if mu != nil {
			mu.Unlock()
		}
		if err != nil {
			return n, err
		}
	}
	err = f.Update(func(tx *Tx) error { return tx.b.folder.Delete(keyAdopting) })
	return n, err
}
