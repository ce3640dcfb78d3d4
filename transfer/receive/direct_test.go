package receive

import (
	"bytes"
	"math/rand/v2"
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/syncd/syncd/internal/atdir"
)

// directFixture opens a new temporary file in a directory of its own and
// a direct writer of it; it returns them and a function that reads the
// file back.
func directFixture(t *testing.T) (*os.File, *directRun, *int, func() []byte) {
	t.Helper()
	dir := t.TempDir()
	root, err := os.OpenRoot(dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { root.Close() })
	at := atdir.New(root, 4)
	t.Cleanup(at.Close)
	f, err := at.OpenFile("tmp", os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	dirty := new(int)
	d := openDirect(at, "tmp", f, func(n int) { *dirty += n })
	if d.fd == nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("%s refuses O_DIRECT: the direct writes are not tested", dir)
		}
		t.Skipf("%s refuses O_DIRECT", dir)
	}
	return f, d, dirty, func() []byte {
		b, err := os.ReadFile(filepath.Join(dir, "tmp"))
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
}

// writeRuns writes want through d as runs of random pieces with random
// gaps (left zero), starting and ending anywhere: some longer than the
// writer's buffer, some shorter than a block.
func writeRuns(t *testing.T, d *directRun, want []byte, rnd *rand.Rand) {
	t.Helper()
	off := 0
	for off < len(want) {
		run := min(rnd.IntN(3*directBuf/2)+1, len(want)-off)
		if rnd.IntN(4) == 0 {
			run = min(rnd.IntN(3*directAlign)+1, len(want)-off)
		}
		for end := off + run; off < end; {
			n := min(rnd.IntN(1<<20)+1, end-off)
			if err := d.write(want[off:off+n], int64(off)); err != nil {
				t.Fatal(err)
			}
			off += n
		}
		gap := rnd.IntN(2 * directAlign)
		clear(want[off:min(off+gap, len(want))])
		off += gap
	}
	if err := d.close(); err != nil {
		t.Fatal(err)
	}
}

// Runs written through a direct writer read back as written, most of
// their bytes by O_DIRECT, the rest (unaligned heads and tails) through
// the page cache, which counts them as dirty.
func TestDirectRuns(t *testing.T) {
	_, d, dirty, read := directFixture(t)
	rnd := rand.New(rand.NewPCG(3, 4))
	want := make([]byte, 3*directBuf+12345)
	for i := range want {
		want[i] = byte(rnd.Uint32())
	}
	writeRuns(t, d, want, rnd)
	got := read()
	if !bytes.Equal(got[:min(len(got), len(want))], want) || len(got) > len(want) {
		t.Fatalf("the file differs from what was written (%d bytes, want %d)", len(got), len(want))
	}
	if d.direct < int64(len(want))/2 {
		t.Errorf("%d bytes written with O_DIRECT of %d", d.direct, len(want))
	}
	if int64(*dirty)+d.direct > int64(len(want)) || *dirty == 0 {
		t.Errorf("%d bytes counted dirty, %d direct, of at most %d written", *dirty, d.direct, len(want))
	}
}

// A direct write refused with EINVAL (a file system that takes the flag
// and not the write) is written through the page cache, and so is the
// rest; any other error is the write's.
func TestDirectRefused(t *testing.T) {
	_, d, _, read := directFixture(t)
	d.pwrite = func([]byte, int64) (int, error) { return 0, syscall.EINVAL }
	rnd := rand.New(rand.NewPCG(5, 6))
	want := make([]byte, directBuf+777)
	for i := range want {
		want[i] = byte(rnd.Uint32())
	}
	writeRuns(t, d, want, rnd)
	if got := read(); !bytes.Equal(got, want[:len(got)]) || len(got) < len(want)-2*directAlign {
		t.Fatalf("the file differs from what was written (%d bytes, want %d)", len(got), len(want))
	}
	if d.direct != 0 {
		t.Errorf("%d bytes counted direct", d.direct)
	}

	_, d, _, _ = directFixture(t)
	d.pwrite = func([]byte, int64) (int, error) { return 0, syscall.ENOSPC }
	err := d.write(make([]byte, 2*directBuf), 0)
	if err == nil {
		err = d.close()
	}
	if err != syscall.ENOSPC {
		t.Errorf("a failed direct write: %v, want ENOSPC", err)
	}
}

// Only a large file built anew is written with O_DIRECT: one resumed from
// an earlier try has its blocks read back while it is written, and goes
// through the page cache alone.
func TestDirectOnlyLargeFilesBuiltAnew(t *testing.T) {
	for _, c := range []struct {
		size    int64
		resumed bool
		want    bool
	}{{directMin, false, true}, {directMin - 1, false, false}, {directMin, true, false}} {
		a := &action{resumed: c.resumed}
		a.e.Size = c.size
		if got := a.direct(); got != c.want {
			t.Errorf("a file of %d bytes, resumed %v: direct %v, want %v", c.size, c.resumed, got, c.want)
		}
	}
}
