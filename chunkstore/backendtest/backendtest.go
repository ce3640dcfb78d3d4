// Package backendtest is the conformance suite every backend.Backend passes.
// Each backend's tests call Run with a constructor for an empty backend.
package backendtest

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"sort"
	"sync"
	"testing"

	"github.com/syncd/syncd/chunkstore/backend"
)

// Run runs the conformance suite against backends made by newBackend. Each
// subtest gets a fresh, empty backend.
func Run(t *testing.T, newBackend func(t *testing.T) backend.Backend) {
	t.Run("SaveOpenRoundTrip", func(t *testing.T) { testRoundTrip(t, newBackend(t)) })
	t.Run("RangedOpen", func(t *testing.T) { testRanged(t, newBackend(t)) })
	t.Run("Missing", func(t *testing.T) { testMissing(t, newBackend(t)) })
	t.Run("List", func(t *testing.T) { testList(t, newBackend(t)) })
	t.Run("Remove", func(t *testing.T) { testRemove(t, newBackend(t)) })
	t.Run("Idempotent", func(t *testing.T) { testIdempotent(t, newBackend(t)) })
	t.Run("Concurrent", func(t *testing.T) { testConcurrent(t, newBackend(t)) })
	t.Run("Empty", func(t *testing.T) { testEmpty(t, newBackend(t)) })
}

func random(t *testing.T, n int) []byte {
	t.Helper()
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return b
}

func read(t *testing.T, b backend.Backend, name string, off, n int64) []byte {
	t.Helper()
	rd, err := b.Open(context.Background(), name, off, n)
	if err != nil {
		t.Fatalf("Open(%s, %d, %d): %v", name, off, n, err)
	}
	defer rd.Close()
	got, err := io.ReadAll(rd)
	if err != nil {
		t.Fatalf("read %s: %v", name, err)
	}
	return got
}

func testRoundTrip(t *testing.T, b backend.Backend) {
	ctx := context.Background()
	for _, size := range []int{1, 4096, 6<<20 + 17} {
		name := fmt.Sprintf("data/%064x", size)
		want := random(t, size)
		if err := backend.SaveBytes(ctx, b, name, want); err != nil {
			t.Fatalf("Save(%s): %v", name, err)
		}
		if got := read(t, b, name, 0, 0); !bytes.Equal(got, want) {
			t.Fatalf("%s: read %d bytes back, want the %d saved", name, len(got), len(want))
		}
		fi, err := b.Stat(ctx, name)
		if err != nil {
			t.Fatalf("Stat(%s): %v", name, err)
		}
		if fi.Size != int64(size) || fi.Name != name {
			t.Fatalf("Stat(%s) = %+v, want size %d", name, fi, size)
		}
	}
}

func testRanged(t *testing.T, b backend.Backend) {
	data := random(t, 100_000)
	if err := backend.SaveBytes(context.Background(), b, "data/ranged", data); err != nil {
		t.Fatal(err)
	}
	for _, r := range []struct{ off, n int64 }{{0, 1}, {10, 100}, {99_999, 1}, {50_000, 0}, {12345, 50_000}} {
		want := data[r.off:]
		if r.n > 0 {
			want = data[r.off : r.off+r.n]
		}
		if got := read(t, b, "data/ranged", r.off, r.n); !bytes.Equal(got, want) {
			t.Errorf("Open(off=%d, len=%d): got %d bytes, want %d (or different content)", r.off, r.n, len(got), len(want))
		}
	}
}

func testMissing(t *testing.T, b backend.Backend) {
	ctx := context.Background()
	if _, err := b.Stat(ctx, "snapshots/missing"); !errors.Is(err, backend.ErrNotExist) {
		t.Errorf("Stat of a missing object: err = %v, want ErrNotExist", err)
	}
	rd, err := b.Open(ctx, "snapshots/missing", 0, 0)
	if err == nil {
		// Some stores only report a missing object on the first read.
		_, err = io.ReadAll(rd)
		rd.Close()
	}
	if !errors.Is(err, backend.ErrNotExist) {
		t.Errorf("Open of a missing object: err = %v, want ErrNotExist", err)
	}
	if err := b.Remove(ctx, "snapshots/missing"); err != nil && !errors.Is(err, backend.ErrNotExist) {
		t.Errorf("Remove of a missing object: err = %v, want nil or ErrNotExist", err)
	}
}

func testList(t *testing.T, b backend.Backend) {
	ctx := context.Background()
	want := map[string][]string{"index/": nil, "data/": nil, "snapshots/": nil}
	for i := range 5 {
		for p := range want {
			name := fmt.Sprintf("%s%02x%062d", p, i, i)
			if err := backend.SaveBytes(ctx, b, name, random(t, 10+i)); err != nil {
				t.Fatal(err)
			}
			want[p] = append(want[p], name)
		}
	}
	for p, names := range want {
		var got []string
		err := b.List(ctx, p, func(fi backend.Info) error {
			got = append(got, fi.Name)
			return nil
		})
		if err != nil {
			t.Fatalf("List(%s): %v", p, err)
		}
		sort.Strings(got)
		if fmt.Sprint(got) != fmt.Sprint(names) {
			t.Errorf("List(%s) = %v, want %v", p, got, names)
		}
	}
	var n int
	if err := b.List(ctx, "keys/", func(backend.Info) error { n++; return nil }); err != nil || n != 0 {
		t.Errorf("List of an empty prefix: %d objects, err %v; want 0, nil", n, err)
	}
	stop := errors.New("stop")
	if err := b.List(ctx, "data/", func(backend.Info) error { return stop }); !errors.Is(err, stop) {
		t.Errorf("List must return fn's error, got %v", err)
	}
}

func testRemove(t *testing.T, b backend.Backend) {
	ctx := context.Background()
	if err := backend.SaveBytes(ctx, b, "data/gone", []byte("x")); err != nil {
		t.Fatal(err)
	}
	if err := b.Remove(ctx, "data/gone"); err != nil {
		t.Fatalf("Remove: %v", err)
	}
	if _, err := b.Stat(ctx, "data/gone"); !errors.Is(err, backend.ErrNotExist) {
		t.Errorf("Stat after Remove: err = %v, want ErrNotExist", err)
	}
}

func testIdempotent(t *testing.T, b backend.Backend) {
	ctx := context.Background()
	data := random(t, 1000)
	for range 2 {
		if err := backend.SaveBytes(ctx, b, "index/same", data); err != nil {
			t.Fatalf("Save of the same object twice: %v", err)
		}
	}
	if got := read(t, b, "index/same", 0, 0); !bytes.Equal(got, data) {
		t.Error("content changed after saving it twice")
	}
}

func testConcurrent(t *testing.T, b backend.Backend) {
	ctx := context.Background()
	var wg sync.WaitGroup
	errs := make(chan error, 16)
	blobs := make([][]byte, 16)
	for i := range blobs {
		blobs[i] = random(t, 50_000+i)
	}
	for i := range blobs {
		wg.Go(func() {
			if err := backend.SaveBytes(ctx, b, fmt.Sprintf("data/c%02d", i), blobs[i]); err != nil {
				errs <- err
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	for i := range blobs {
		if got := read(t, b, fmt.Sprintf("data/c%02d", i), 0, 0); !bytes.Equal(got, blobs[i]) {
			t.Errorf("object %d differs after concurrent saves", i)
		}
	}
}

func testEmpty(t *testing.T, b backend.Backend) {
	if err := backend.SaveBytes(context.Background(), b, "keys/empty", nil); err != nil {
		t.Fatalf("Save of an empty object: %v", err)
	}
	if got := read(t, b, "keys/empty", 0, 0); len(got) != 0 {
		t.Errorf("empty object read back as %d bytes", len(got))
	}
}
