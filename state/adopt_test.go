package state

import (
	"testing"
)

func getEntry(t *testing.T, f *Folder, rel string) (Entry, bool) {
	t.Helper()
	e, ok, err := f.Get(rel)
	if err != nil {
		t.Fatal(err)
	}
	return e, ok
}

func update(t *testing.T, f *Folder, fn func(tx *Tx) error) {
	t.Helper()
	if err := f.Update(fn); err != nil {
		t.Fatal(err)
	}
}

// TestAdoption follows a new folder through its adoption: what is found
// is recorded without a version and stays so when it changes; a peer's
// version is stored as it is; a delete leaves no tombstone; the end
// versions what is left as this node's and versions changes again.
func TestAdoption(t *testing.T) {
	db := openTest(t)
	const me = 7
	db.SetLocalNode(me)
	f := db.Folder("www")
	adopting, err := f.BeginAdoption()
	if err != nil || !adopting {
		t.Fatalf("BeginAdoption of a new folder = %v, %v; want true", adopting, err)
	}
	if got := f.Adoption(); got != Scanning {
		t.Fatalf("Adoption() = %v, want Scanning", got)
	}
	put(t, f, "a.txt", "b.txt", "gone.txt", "dir/")
	for _, rel := range []string{"a.txt", "b.txt", "gone.txt", "dir"} {
		if e, _ := getEntry(t, f, rel); len(e.Vector) != 0 {
			t.Errorf("%s found while adopting has vector %v, want none", rel, e.Vector)
		}
	}
	// edited while adopting: still no version of ours
	update(t, f, func(tx *Tx) error { return tx.Put("a.txt", Entry{Type: "file", Size: 99}) })
	if e, _ := getEntry(t, f, "a.txt"); len(e.Vector) != 0 || e.Size != 99 {
		t.Errorf("a.txt edited while adopting = size %d vector %v, want size 99 and no vector", e.Size, e.Vector)
	}
	// a peer's version is stored with its vector
	peer := Vector{{Node: 3, Value: 5}}
	update(t, f, func(tx *Tx) error { return tx.Put("b.txt", Entry{Type: "file", Size: 1, Vector: peer}) })
	if e, _ := getEntry(t, f, "b.txt"); !equalVectors(e.Vector, peer) {
		t.Errorf("b.txt after the peer's version has vector %v, want %v", e.Vector, peer)
	}
	// a delete of what no peer has from us leaves no tombstone
	update(t, f, func(tx *Tx) error { return tx.Delete("gone.txt") })
	if e, ok := getEntry(t, f, "gone.txt"); ok {
		t.Errorf("gone.txt deleted while unversioned left %+v, want no entry", e)
	}
	if err := f.AdoptionScanned(); err != nil {
		t.Fatal(err)
	}
	if got := f.Adoption(); got != Scanned {
		t.Fatalf("Adoption() after the scan = %v, want Scanned", got)
	}
	seq := f.Seq()
	n, err := f.EndAdoption(nil)
	if err != nil {
		t.Fatal(err)
	}
	if n != 2 { // a.txt and dir; b.txt is the peer's
		t.Errorf("EndAdoption versioned %d entries, want 2", n)
	}
	for _, rel := range []string{"a.txt", "dir"} {
		e, _ := getEntry(t, f, rel)
		if e.Vector.Get(me) == 0 || len(e.Vector) != 1 {
			t.Errorf("%s after the adoption has vector %v, want one of this node", rel, e.Vector)
		}
		if e.Version <= seq {
			t.Errorf("%s after the adoption has sequence %d, want above %d (announced anew)", rel, e.Version, seq)
		}
	}
	if e, _ := getEntry(t, f, "b.txt"); !equalVectors(e.Vector, peer) {
		t.Errorf("b.txt after the adoption has vector %v, want the peer's %v", e.Vector, peer)
	}
	if got := f.Adoption(); got != NotAdopting {
		t.Errorf("Adoption() after EndAdoption = %v, want NotAdopting", got)
	}
	put(t, f, "new.txt")
	if e, _ := getEntry(t, f, "new.txt"); e.Vector.Get(me) == 0 {
		t.Errorf("new.txt after the adoption has vector %v, want one of this node", e.Vector)
	}
	if adopting, err := f.BeginAdoption(); err != nil || adopting {
		t.Errorf("BeginAdoption after the end = %v, %v; want false", adopting, err)
	}
}

// TestAdoptionNotForIndexedFolder: a folder indexed before never adopts,
// and AdoptionScanned does not make it.
func TestAdoptionNotForIndexedFolder(t *testing.T) {
	db := openTest(t)
	db.SetLocalNode(7)
	f := db.Folder("www")
	put(t, f, "a.txt")
	if adopting, err := f.BeginAdoption(); err != nil || adopting {
		t.Fatalf("BeginAdoption of an indexed folder = %v, %v; want false", adopting, err)
	}
	if err := f.AdoptionScanned(); err != nil {
		t.Fatal(err)
	}
	if got := f.Adoption(); got != NotAdopting {
		t.Errorf("Adoption() = %v, want NotAdopting", got)
	}
	put(t, f, "b.txt")
	if e, _ := getEntry(t, f, "b.txt"); e.Vector.Get(7) == 0 {
		t.Errorf("b.txt has vector %v, want one of this node", e.Vector)
	}
}

// TestAdoptionEndInterrupted: once EndAdoption began, local changes are
// versioned; the folder still reports adopting (BeginAdoption, Adoption)
// until a later EndAdoption finishes.
func TestAdoptionEndInterrupted(t *testing.T) {
	db := openTest(t)
	db.SetLocalNode(7)
	f := db.Folder("www")
	if _, err := f.BeginAdoption(); err != nil {
		t.Fatal(err)
	}
	put(t, f, "a.txt")
	update(t, f, func(tx *Tx) error { return tx.b.folder.Put(keyAdopting, []byte{byte(Ending)}) })
	put(t, f, "b.txt")
	if e, _ := getEntry(t, f, "b.txt"); e.Vector.Get(7) == 0 {
		t.Errorf("b.txt put while the adoption ends has vector %v, want one of this node", e.Vector)
	}
	if adopting, err := f.BeginAdoption(); err != nil || !adopting {
		t.Errorf("BeginAdoption while ending = %v, %v; want true", adopting, err)
	}
	if n, err := f.EndAdoption(nil); err != nil || n != 1 {
		t.Errorf("EndAdoption = %d, %v; want 1 (a.txt)", n, err)
	}
	if e, _ := getEntry(t, f, "a.txt"); e.Vector.Get(7) == 0 {
		t.Errorf("a.txt after the adoption has vector %v, want one of this node", e.Vector)
	}
}

// TestAdoptionBatches: EndAdoption versions more entries than one
// transaction holds.
func TestAdoptionBatches(t *testing.T) {
	defer func(n int) { adoptingBatch = n }(adoptingBatch)
	adoptingBatch = 3
	db := openTest(t)
	db.SetLocalNode(7)
	f := db.Folder("www")
	if _, err := f.BeginAdoption(); err != nil {
		t.Fatal(err)
	}
	put(t, f, "1", "2", "3", "4", "5", "6", "7")
	if n, err := f.EndAdoption(nil); err != nil || n != 7 {
		t.Fatalf("EndAdoption = %d, %v; want 7", n, err)
	}
	err := f.Walk("", func(rel string, e Entry) error {
		if len(e.Vector) == 0 {
			t.Errorf("%s left without a vector", rel)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func equalVectors(a, b Vector) bool { return a.Compare(b) == Equal && len(a) == len(b) }

// TestAdoptionAfterScan: once the first scan has finished, a change to
// an entry without a version is this node's (a version), and its delete
// leaves a tombstone of this node, while untouched entries stay without.
func TestAdoptionAfterScan(t *testing.T) {
	db := openTest(t)
	db.SetLocalNode(7)
	f := db.Folder("www")
	if _, err := f.BeginAdoption(); err != nil {
		t.Fatal(err)
	}
	put(t, f, "edited.txt", "gone.txt", "kept.txt")
	if err := f.AdoptionScanned(); err != nil {
		t.Fatal(err)
	}
	update(t, f, func(tx *Tx) error { return tx.Put("edited.txt", Entry{Type: "file", Size: 99}) })
	update(t, f, func(tx *Tx) error { return tx.Delete("gone.txt") })
	put(t, f, "kept.txt") // rescanned unchanged
	if e, _ := getEntry(t, f, "edited.txt"); e.Vector.Get(7) == 0 {
		t.Errorf("edited.txt changed after the scan has vector %v, want one of this node", e.Vector)
	}
	if e, ok := getEntry(t, f, "gone.txt"); !ok || !e.Deleted || e.Vector.Get(7) == 0 {
		t.Errorf("gone.txt deleted after the scan = %+v (entry %v), want a tombstone of this node", e, ok)
	}
	if e, _ := getEntry(t, f, "kept.txt"); len(e.Vector) != 0 {
		t.Errorf("kept.txt unchanged has vector %v, want none until the adoption ends", e.Vector)
	}
}
