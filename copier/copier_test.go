package copier

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"filippo.io/age"

	"github.com/syncd/syncd/archiver"
	"github.com/syncd/syncd/checker"
	"github.com/syncd/syncd/chunkstore"
	"github.com/syncd/syncd/chunkstore/backend"
	"github.com/syncd/syncd/chunkstore/local"
	"github.com/syncd/syncd/crypto"
)

// pair is a source repository and a copy target of it, on local
// directories, opened with the index key only (as a web node has it).
type pair struct {
	key      *crypto.IndexKey
	data     *age.X25519Identity
	src, dst *chunkstore.Repository
	srcDir   string
	dstDir   string
}

func newPair(t *testing.T) *pair {
	t.Helper()
	ctx := context.Background()
	idx, _ := age.GenerateX25519Identity()
	data, _ := age.GenerateX25519Identity()
	p := &pair{key: crypto.NewIndexKey(idx), data: data, srcDir: t.TempDir(), dstDir: t.TempDir()}
	sbe, err := local.Create(p.srcDir)
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := chunkstore.Init(ctx, sbe, p.key, chunkstore.InitOptions{DataRecipients: []string{data.Recipient().String()}, PackSize: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	dbe, err := local.Create(p.dstDir)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := chunkstore.InitCopy(ctx, dbe, p.key, cfg, time.Time{}); err != nil {
		t.Fatal(err)
	}
	if p.src, err = chunkstore.Open(ctx, sbe, p.key); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.src.Close)
	if p.dst, err = p.src.OpenCopyTarget(ctx, dbe); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.dst.Close)
	return p
}

// snapshot writes files of random content (seeded) under a new directory
// and snapshots it into the source.
func (p *pair) snapshot(t *testing.T, dir string, seed uint64, files int) *chunkstore.Snapshot {
	t.Helper()
	ctx := context.Background()
	r := rand.New(rand.NewPCG(seed, seed))
	for i := range files {
		buf := make([]byte, 200<<10+r.IntN(600<<10))
		for j := range buf {
			buf[j] = byte(r.Uint32())
		}
		if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("f%d-%d", seed, i)), buf, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	sess, err := p.src.BeginWrite(ctx, chunkstore.WriteOptions{NoLock: true})
	if err != nil {
		t.Fatal(err)
	}
	defer sess.Close()
	res, err := archiver.Snapshot(ctx, p.src, []string{dir}, archiver.Options{Host: "web1", Time: time.Unix(int64(seed)*3600, 0)})
	if err != nil {
		t.Fatal(err)
	}
	return res.Snapshot
}

// objects lists the names of the objects under prefix in dir.
func objects(t *testing.T, dir, prefix string) map[string]bool {
	t.Helper()
	be, err := local.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]bool{}
	if err := be.List(context.Background(), prefix, func(fi backend.Info) error { out[fi.Name] = true; return nil }); err != nil {
		t.Fatal(err)
	}
	return out
}

func packs(t *testing.T, dir string) map[string]bool {
	t.Helper()
	out := objects(t, dir, "data/")
	for n := range objects(t, dir, "tree/") {
		out[n] = true
	}
	return out
}

// verify checks the target with the data identity, reading every pack.
func (p *pair) verify(t *testing.T) {
	t.Helper()
	ctx := context.Background()
	be, _ := local.Open(p.dstDir)
	repo, err := chunkstore.Open(ctx, be, p.key)
	if err != nil {
		t.Fatal(err)
	}
	defer repo.Close()
	repo.SetDataIdentities([]age.Identity{p.data})
	rep, err := checker.Check(ctx, repo, checker.Options{ReadData: true})
	if err != nil {
		t.Fatal(err)
	}
	if !rep.OK() {
		t.Errorf("target does not verify: %v", rep.Problems)
	}
}

func TestCopyThenOnlyNewPacks(t *testing.T) {
	p := newPair(t)
	ctx := context.Background()
	tree := t.TempDir()
	p.snapshot(t, tree, 1, 6)
	res, err := Copy(ctx, p.src, p.dst, Options{})
	if err != nil {
		t.Fatal(err)
	}
	srcPacks := packs(t, p.srcDir)
	if len(res.Copied) != 1 || res.Packs != len(srcPacks) || res.Resumed != 0 {
		t.Errorf("first copy: %d snapshots, %d packs sent (%d resumed); want 1, %d, 0", len(res.Copied), res.Packs, res.Resumed, len(srcPacks))
	}
	p.verify(t)

	// a second snapshot adds packs; the copy sends exactly those
	p.snapshot(t, tree, 2, 3)
	var fresh []string
	for n := range packs(t, p.srcDir) {
		if !srcPacks[n] {
			fresh = append(fresh, n)
		}
	}
	before := packs(t, p.dstDir)
	res, err = Copy(ctx, p.src, p.dst, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Copied) != 1 || res.Present != 1 || res.Packs != len(fresh) || res.BlobsPresent == 0 {
		t.Errorf("second copy: %d copied, %d present, %d packs sent, %d blobs present; want 1, 1, %d (the new snapshot's), >0",
			len(res.Copied), res.Present, res.Packs, res.BlobsPresent, len(fresh))
	}
	for _, n := range fresh {
		if before[n] || !packs(t, p.dstDir)[n] {
			t.Errorf("new pack %s: in the target before the copy %v, after %v", n, before[n], packs(t, p.dstDir)[n])
		}
	}
	if got, want := objects(t, p.dstDir, "snapshots/"), objects(t, p.srcDir, "snapshots/"); len(got) != 2 || fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("target snapshots %v, source %v", got, want)
	}
	p.verify(t)

	// nothing new: nothing sent, no index object written
	res, err = Copy(ctx, p.src, p.dst, Options{})
	if err != nil || len(res.Copied) != 0 || res.Packs != 0 || len(res.Index) != 0 || res.Present != 2 {
		t.Errorf("third copy: %+v, %v; want nothing copied, 2 present", res, err)
	}
}

// The target's index records each copied pack as sealed to what the
// source's index records (the recipients are the same), so a reseal in the
// target rewrites only what it would rewrite in the source.
func TestCopyKeepsSealedTo(t *testing.T) {
	p := newPair(t)
	ctx := context.Background()
	p.snapshot(t, t.TempDir(), 1, 3)
	if _, err := Copy(ctx, p.src, p.dst, Options{}); err != nil {
		t.Fatal(err)
	}
	recorded := func(r *chunkstore.Repository) map[chunkstore.ID]string {
		t.Helper()
		objs, bad, err := r.IndexObjects(ctx)
		if err != nil || len(bad) > 0 {
			t.Fatalf("IndexObjects: %v %v", bad, err)
		}
		out := map[chunkstore.ID]string{}
		for _, packs := range objs {
			for _, pk := range packs {
				out[pk.ID] = fmt.Sprint(pk.Type, pk.SealedTo)
			}
		}
		return out
	}
	src, dst := recorded(p.src), recorded(p.dst)
	if len(dst) == 0 || len(dst) != len(src) {
		t.Fatalf("target lists %d packs, source %d", len(dst), len(src))
	}
	for id, want := range src {
		if !strings.Contains(want, "[") || strings.Contains(want, "[]") {
			t.Errorf("source pack %s records %q", id.Short(), want)
		}
		if dst[id] != want {
			t.Errorf("pack %s: the target records %q, the source %q", id.Short(), dst[id], want)
		}
	}
}

func TestCopyRefusesOtherChunker(t *testing.T) {
	p := newPair(t)
	ctx := context.Background()
	p.snapshot(t, t.TempDir(), 1, 2)
	// the same index key and recipients, but its own random polynomial
	dir := t.TempDir()
	be, _ := local.Create(dir)
	if _, err := chunkstore.Init(ctx, be, p.key, chunkstore.InitOptions{DataRecipients: []string{p.data.Recipient().String()}}); err != nil {
		t.Fatal(err)
	}
	other, err := chunkstore.Open(ctx, be, p.key)
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	before := objects(t, dir, "")
	srcBefore := objects(t, p.srcDir, "")
	if _, err := p.src.OpenCopyTarget(ctx, be); err == nil || !strings.Contains(err.Error(), "chunks differently") {
		t.Errorf("OpenCopyTarget of a repository with another chunker: %v", err)
	}
	_, err = Copy(ctx, p.src, other, Options{})
	if !errors.Is(err, ErrNotTarget) || !strings.Contains(err.Error(), "polynomial") {
		t.Errorf("Copy to a repository with another chunker: %v, want ErrNotTarget naming the polynomial", err)
	}
	if after := objects(t, dir, ""); fmt.Sprint(after) != fmt.Sprint(before) {
		t.Errorf("refused copy wrote to the target: %v, was %v", after, before)
	}
	if after := objects(t, p.srcDir, ""); fmt.Sprint(after) != fmt.Sprint(srcBefore) {
		t.Errorf("refused copy wrote to the source: %v, was %v", after, srcBefore)
	}
	if _, err := Copy(ctx, p.src, p.src, Options{}); !errors.Is(err, ErrNotTarget) {
		t.Errorf("Copy to itself: %v, want ErrNotTarget", err)
	}
}

// A copy stopped after some packs leaves no snapshot in the target; the
// next one does not send those packs again, and completes.
func TestCopyInterruptedResumes(t *testing.T) {
	p := newPair(t)
	p.snapshot(t, t.TempDir(), 1, 8)
	total := len(packs(t, p.srcDir))
	ctx, cancel := context.WithCancel(context.Background())
	sent := 0
	_, err := Copy(ctx, p.src, p.dst, Options{Workers: 1, Hook: func(e string) {
		if e == "pack copied" {
			if sent++; sent == 3 {
				cancel()
			}
		}
	}})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("stopped copy: %v, want context.Canceled", err)
	}
	if n := len(objects(t, p.dstDir, "snapshots/")); n != 0 {
		t.Fatalf("stopped copy left %d snapshot(s) in the target", n)
	}
	if n := len(objects(t, p.dstDir, "index/")); n != 0 {
		t.Fatalf("stopped copy left %d index object(s) in the target", n)
	}
	uploaded := len(packs(t, p.dstDir))
	if uploaded < 3 || uploaded >= total {
		t.Fatalf("stopped copy uploaded %d of %d packs, want 3 or more, not all", uploaded, total)
	}
	res, err := Copy(context.Background(), p.src, p.dst, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if res.Resumed != uploaded || res.Packs != total-uploaded || len(res.Copied) != 1 {
		t.Errorf("resumed copy: %d resumed, %d sent, %d snapshots; want %d, %d, 1", res.Resumed, res.Packs, len(res.Copied), uploaded, total-uploaded)
	}
	p.verify(t)
}

// A snapshot whose data the source has lost is not copied; the others
// are.
func TestCopySkipsDamagedSnapshot(t *testing.T) {
	p := newPair(t)
	good := p.snapshot(t, t.TempDir(), 1, 2)
	before := packs(t, p.srcDir)
	bad := p.snapshot(t, t.TempDir(), 2, 2)
	for n := range packs(t, p.srcDir) {
		if !before[n] && strings.HasPrefix(n, "data/") {
			if err := os.Remove(filepath.Join(p.srcDir, n)); err != nil {
				t.Fatal(err)
			}
			break
		}
	}
	res, err := Copy(context.Background(), p.src, p.dst, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Copied) != 1 || res.Copied[0].ID() != good.ID() {
		t.Errorf("copied %d snapshots, want only the good one", len(res.Copied))
	}
	if len(res.Failed) != 1 || res.Failed[0].Snapshot != bad.ID().String() || !strings.Contains(res.Failed[0].Error, "no index") {
		t.Errorf("failed = %+v, want the damaged snapshot %s, its blob in no index", res.Failed, bad.ID().Short())
	}
	p.verify(t)
}

// Select limits the copy to the chosen snapshots.
func TestCopySelect(t *testing.T) {
	p := newPair(t)
	dir := t.TempDir()
	first := p.snapshot(t, dir, 1, 1)
	p.snapshot(t, dir, 2, 1)
	res, err := Copy(context.Background(), p.src, p.dst, Options{Select: func(s *chunkstore.Snapshot) bool { return s.ID() == first.ID() }})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Copied) != 1 || res.Copied[0].ID() != first.ID() {
		t.Errorf("copied %v, want only %s", res.Copied, first.ID().Short())
	}
	p.verify(t)
}

// listHook is a backend that calls before, once, when "snapshots/" is
// first listed, and then lists.
type listHook struct {
	backend.Backend
	once   sync.Once
	before func()
}

func (b *listHook) List(ctx context.Context, prefix string, fn func(backend.Info) error) error {
	if prefix == "snapshots/" {
		b.once.Do(b.before)
	}
	return b.Backend.List(ctx, prefix, fn)
}

// A snapshot saved while a copy begins (as the daemon's copy service,
// with a Repository of its own, may begin one while the daemon snapshots)
// is copied when the copy lists it: the copy reads the source's index
// after listing the snapshots, so it has the index objects of every
// snapshot it lists. Read before, it missed those of the one saved in
// between, and the copy failed with "tree …: not in the index".
func TestCopySnapshotSavedWhileCopyBegins(t *testing.T) {
	p := newPair(t)
	ctx := context.Background()
	dir := t.TempDir()
	first := p.snapshot(t, dir, 1, 2)
	var second *chunkstore.Snapshot
	sbe, err := local.Open(p.srcDir)
	if err != nil {
		t.Fatal(err)
	}
	// the copy's own handle on the source; p.src writes the snapshot
	src, err := chunkstore.Open(ctx, &listHook{Backend: sbe, before: func() { second = p.snapshot(t, dir, 2, 2) }}, p.key)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	res, err := Copy(ctx, src, p.dst, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if second == nil {
		t.Fatal("the copy listed no snapshots")
	}
	var got []string
	for _, sn := range res.Copied {
		got = append(got, sn.ID().Short())
	}
	if want := []string{first.ID().Short(), second.ID().Short()}; fmt.Sprint(got) != fmt.Sprint(want) || len(res.Failed) > 0 {
		t.Errorf("copied %v, failed %+v; want %v, none failed", got, res.Failed, want)
	}
	p.verify(t)
}
