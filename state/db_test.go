package state

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/syncd/syncd/chunkstore"
)

// fill makes a database at path with n entries in folder "f", a tree cache
// and a meta value, and closes it.
func fill(t *testing.T, path string, n int) {
	t.Helper()
	db, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	f := db.Folder("f")
	err = f.Update(func(tx *Tx) error {
		for i := range n {
			e := Entry{Type: "file", Size: int64(i), Content: []chunkstore.ID{{byte(i)}}, Lengths: []uint32{uint32(i)}}
			if err := tx.Put(fmt.Sprintf("d%d/file%05d", i%7, i), e); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := f.SetTreeCache("d1", chunkstore.ID{1}, f.Seq()); err != nil {
		t.Fatal(err)
	}
	if err := db.PutMeta("last-snapshot", []byte("abc")); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
}

func TestReopen(t *testing.T) {
	path := filepath.Join(t.TempDir(), "sub", "state.db")
	fill(t, path, 100)
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o600 {
		t.Errorf("mode %v, want 0600", st.Mode().Perm())
	}
	db, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	f := db.Folder("f")
	if f.Seq() != 100 {
		t.Errorf("Seq = %d, want 100", f.Seq())
	}
	e, ok, err := f.Get("d3/file00010")
	if err != nil || !ok || e.Size != 10 || e.Version != 11 || e.Content[0] != (chunkstore.ID{10}) {
		t.Errorf("Get = %+v, %v, %v", e, ok, err)
	}
	if n := len(walk(t, f, "")); n != 100 {
		t.Errorf("Walk: %d entries, want 100", n)
	}
	if id, ok := f.TreeCache("d1"); !ok || id != (chunkstore.ID{1}) {
		t.Errorf("TreeCache = %s, %v", id.Short(), ok)
	}
	if v, ok, err := db.GetMeta("last-snapshot"); string(v) != "abc" || !ok || err != nil {
		t.Errorf("GetMeta = %q, %v, %v", v, ok, err)
	}
	if _, ok, err := db.GetMeta("nothing"); ok || err != nil {
		t.Errorf("GetMeta of a missing key = %v, %v", ok, err)
	}
}

func TestInUse(t *testing.T) {
	t.Parallel()
	db := openTest(t)
	start := time.Now()
	_, err := Open(db.Path())
	if !errors.Is(err, ErrInUse) {
		t.Fatalf("second Open = %v, want ErrInUse", err)
	}
	if want := fmt.Sprintf("state database %s is in use by another process", db.Path()); err.Error() != want {
		t.Errorf("error %q, want %q", err, want)
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("second Open took %v", d)
	}
	// the first one still works
	if err := db.PutMeta("k", nil); err != nil {
		t.Error(err)
	}
}

func TestDeletedFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state.db")
	fill(t, path, 10)
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	db, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if s := db.Folder("f").Seq(); s != 0 {
		t.Errorf("Seq = %d, want 0", s)
	}
}

func wantDamaged(t *testing.T, err error, path string) {
	t.Helper()
	t.Log(err)
	if !errors.Is(err, ErrDamaged) {
		t.Fatalf("error %v, want ErrDamaged", err)
	}
	for _, s := range []string{"state database " + path + " is damaged (", "move " + path + " away", "rescans all folders"} {
		if !strings.Contains(err.Error(), s) {
			t.Errorf("error %q does not say %q", err, s)
		}
	}
}

func TestDamaged(t *testing.T) {
	t.Parallel()
	rnd := rand.New(rand.NewPCG(1, 2))
	garbage := func(n int) []byte {
		b := make([]byte, n)
		for i := range b {
			b[i] = byte(rnd.Uint32())
		}
		return b
	}
	for name, damage := range map[string]func(path string) error{
		"garbage":   func(path string) error { return os.WriteFile(path, garbage(64<<10), 0o600) },
		"short":     func(path string) error { return os.WriteFile(path, []byte("not a database"), 0o600) },
		"one page":  func(path string) error { return os.Truncate(path, 4096) },
		"truncated": func(path string) error { return os.Truncate(path, 5*4096) },
		"other bolt file": func(path string) error {
			os.Remove(path)
			db, err := bolt.Open(path, 0o600, nil)
			if err != nil {
				return err
			}
			db.Update(func(tx *bolt.Tx) error { _, err := tx.CreateBucket([]byte("x")); return err })
			return db.Close()
		},
	} {
		t.Run(name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "state.db")
			fill(t, path, 2000)
			if err := damage(path); err != nil {
				t.Fatal(err)
			}
			_, err := Open(path)
			wantDamaged(t, err, path)
		})
	}
}

// TestDamagedPages overwrites the pages after the meta pages, or only the
// leaf pages holding entries: whether Open or a later call notices, the
// answer is the damaged error, not a crash, and the calls after it fail
// at once.
func TestDamagedPages(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name   string
		damage func(page []byte) bool
	}{
		{"all", func([]byte) bool { return true }},
		{"leaves", func(page []byte) bool {
			return binary.LittleEndian.Uint16(page[8:]) == 0x02 && bytes.Contains(page, []byte("file0"))
		}},
	} {
		for seed := range uint64(2) {
			t.Run(fmt.Sprint(tc.name, seed), func(t *testing.T) {
				path := filepath.Join(t.TempDir(), "state.db")
				fill(t, path, 2000)
				b, err := os.ReadFile(path)
				if err != nil {
					t.Fatal(err)
				}
				rnd := rand.New(rand.NewPCG(seed, 0))
				for p := 2 * 4096; p+4096 <= len(b); p += 4096 {
					if tc.damage(b[p : p+4096]) {
						for i := p; i < p+4096; i++ {
							b[i] = byte(rnd.Uint32())
						}
					}
				}
				if err := os.WriteFile(path, b, 0o600); err != nil {
					t.Fatal(err)
				}
				db, err := Open(path)
				if err != nil {
					wantDamaged(t, err, path)
					return
				}
				f := db.Folder("f")
				err = f.Walk("", func(string, Entry) error { return nil })
				if err == nil {
					err = f.Update(func(tx *Tx) error { return tx.Put("d1/new", Entry{Type: "file"}) })
				}
				if err == nil {
					t.Fatal("no error from a damaged database")
				}
				t.Log(err)
				if !errors.Is(err, ErrDamaged) && !strings.Contains(err.Error(), "state database "+path) {
					t.Errorf("error %q does not name the file", err)
				}
				if errors.Is(err, ErrDamaged) {
					if _, _, err := f.Get("d1/file00001"); !errors.Is(err, ErrDamaged) {
						t.Errorf("Get after a damaged error = %v", err)
					}
				}
				if err := db.Close(); err != nil && !errors.Is(err, ErrDamaged) {
					t.Errorf("Close = %v", err)
				}
			})
		}
	}
}

func TestBadEntryNamed(t *testing.T) {
	db := openTest(t)
	f := db.Folder("f")
	put(t, f, "dir/x")
	err := db.bolt.Update(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketFolders).Bucket([]byte("f")).Bucket(bucketEntries).Put(pathKey("dir/x"), []byte{1, 0, 9})
	})
	if err != nil {
		t.Fatal(err)
	}
	_, _, err = f.Get("dir/x")
	if err == nil || !strings.Contains(err.Error(), `entry "dir/x"`) || !strings.Contains(err.Error(), db.Path()) {
		t.Errorf("Get = %v, want an error naming the entry and the file", err)
	}
	if err := f.Walk("", func(string, Entry) error { return nil }); err == nil || !strings.Contains(err.Error(), `"dir/x"`) {
		t.Errorf("Walk = %v, want an error naming the entry", err)
	}
}

func TestUserPanic(t *testing.T) {
	f := openTest(t).Folder("f")
	type mine struct{}
	defer func() {
		if r := recover(); r != (mine{}) {
			t.Errorf("recovered %v, want the caller's panic", r)
		}
		if f.Seq() != 0 {
			t.Error("panicking Update committed")
		}
	}()
	f.Update(func(tx *Tx) error {
		tx.Put("a", Entry{Type: "file"})
		panic(mine{})
	})
}
