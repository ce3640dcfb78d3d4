package state

import (
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/syncd/syncd/chunkstore"
)

// TestScale puts 100k entries in one directory, in transactions of 10k as a
// scan would, and times the calls a scan and a snapshot make on it.
func TestScale(t *testing.T) {
	t.Parallel()
	n, batch := 100_000, 10_000
	if testing.Short() {
		n, batch = 10_000, 1_000
	}
	db := openTest(t)
	f := db.Folder("big")
	name := func(i int) string { return fmt.Sprintf("dir/file-%07d.dat", i) }

	start := time.Now()
	for lo := 0; lo < n; lo += batch {
		err := f.Update(func(tx *Tx) error {
			for i := lo; i < lo+batch; i++ {
				e := Entry{
					Type: "file", Size: int64(i) * 1000, Mode: 0o644,
					ModTime: int64(i) * 1e9, ChTime: int64(i) * 1e9, Inode: uint64(i), Device: 2049, Links: 1,
					UID: 1000, GID: 1000,
					Content: []chunkstore.ID{{byte(i), byte(i >> 8), byte(i >> 16)}}, Lengths: []uint32{uint32(i)},
				}
				if err := tx.Put(name(i), e); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	putTime := time.Since(start)
	if s := f.Seq(); s != uint64(n) {
		t.Fatalf("Seq = %d, want %d", s, n)
	}

	start = time.Now()
	i := 0
	err := f.Walk("dir/", func(rel string, e Entry) error {
		if rel != name(i) || e.Inode != uint64(i) {
			return fmt.Errorf("entry %d is %q (inode %d)", i, rel, e.Inode)
		}
		i++
		return nil
	})
	walkTime := time.Since(start)
	if err != nil || i != n {
		t.Fatalf("Walk: %d entries, %v", i, err)
	}

	start = time.Now()
	rnd := rand.New(rand.NewPCG(1, 1))
	const gets = 1000
	for range gets {
		if _, ok, err := f.Get(name(rnd.IntN(n))); !ok || err != nil {
			t.Fatalf("Get: %v, %v", ok, err)
		}
	}
	getTime := time.Since(start) / gets

	// a small change after the big scan: Changed costs the change
	seq := f.Seq()
	if err := f.Update(func(tx *Tx) error { return tx.Put(name(n/2), Entry{Type: "file", Size: 1}) }); err != nil {
		t.Fatal(err)
	}
	start = time.Now()
	var got []string
	if err := f.Changed(seq, func(rel string, e Entry) error { got = append(got, rel); return nil }); err != nil {
		t.Fatal(err)
	}
	changedTime := time.Since(start)
	if len(got) != 1 || got[0] != name(n/2) {
		t.Errorf("Changed(%d) = %q", seq, got)
	}
	t.Logf("%d entries in one directory: Put %v (%v per entry), Walk %v, Get %v, Changed of 1 change %v",
		n, putTime, putTime/time.Duration(n), walkTime, getTime, changedTime)
}

// TestConcurrent runs writers and readers on two folders at once, for the
// race detector, and checks that no version is lost or given twice.
func TestConcurrent(t *testing.T) {
	db := openTest(t)
	const writers, updates = 4, 15
	var wg sync.WaitGroup
	for _, id := range []string{"f", "g"} {
		f := db.Folder(id)
		for w := range writers {
			wg.Go(func() {
				for i := range updates {
					err := f.Update(func(tx *Tx) error {
						return tx.Put(fmt.Sprintf("w%d/%d", w, i), Entry{Type: "file"})
					})
					if err != nil {
						t.Error(err)
						return
					}
				}
			})
		}
		wg.Go(func() {
			for range updates {
				if err := f.Walk("", func(string, Entry) error { return nil }); err != nil {
					t.Error(err)
				}
				if err := f.Changed(f.Seq()/2, func(string, Entry) error { return nil }); err != nil {
					t.Error(err)
				}
				if err := f.SetTreeCache("", chunkstore.ID{1}, f.Seq()); err != nil {
					t.Error(err)
				}
				f.TreeCache("")
			}
		})
	}
	wg.Wait()
	for _, id := range []string{"f", "g"} {
		f := db.Folder(id)
		seen := map[uint64]bool{}
		for _, c := range changed(t, f, 0) {
			seen[c.Version] = true
		}
		if n := uint64(writers * updates); f.Seq() != n || len(seen) != int(n) {
			t.Errorf("folder %s: Seq %d, %d distinct versions, want %d", id, f.Seq(), len(seen), n)
		}
	}
}
