package transfer

import (
	"crypto/rand"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/syncd/syncd/transfer/receive"
)

// releaseFloor is receive's: the size from which the old version of a
// file is released off the batch's path.
const releaseFloor = 16 << 20

// deletedFDs lists this process's open files under dir whose names are
// gone: held old versions not yet released.
func deletedFDs(t *testing.T, dir string) []string {
	t.Helper()
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range ents {
		target, err := os.Readlink(filepath.Join("/proc/self/fd", e.Name()))
		if err == nil && strings.HasPrefix(target, dir) && strings.HasSuffix(target, " (deleted)") {
			out = append(out, target)
		}
	}
	return out
}

// A large file replaced by the peer's version, then deleted: the old
// versions are held open across the rename and the unlink (their blocks
// are freed off the batch's path), and released after, both times.
func TestLargeOldVersionsReleased(t *testing.T) {
	a, b := pair(t)
	data := make([]byte, releaseFloor+1<<20) // released off the batch's path
	rand.Read(data)
	p := filepath.Join(a.dir, "db.sql")
	if err := os.WriteFile(p, data, 0o644); err != nil {
		t.Fatal(err)
	}
	a.index(t)
	converge(t, a, b)
	r0 := receive.Released()

	copy(data[len(data)/2:], "an edit in the middle")
	if err := os.WriteFile(p, data, 0o644); err != nil {
		t.Fatal(err)
	}
	a.index(t)
	converge(t, a, b)
	eventually(t, "the replaced version released", func() bool { return receive.Released() == r0+1 })
	eventually(t, "no old version held open", func() bool { return len(deletedFDs(t, b.dir)) == 0 })

	if err := os.Remove(p); err != nil {
		t.Fatal(err)
	}
	a.index(t)
	converge(t, a, b)
	eventually(t, "the deleted file released", func() bool { return receive.Released() == r0+2 })
	eventually(t, "no old version held open", func() bool { return len(deletedFDs(t, b.dir)) == 0 })
}
