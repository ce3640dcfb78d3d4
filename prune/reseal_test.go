package prune

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"filippo.io/age"

	"github.com/syncd/syncd/chunkstore"
	"github.com/syncd/syncd/crypto"
	"github.com/syncd/syncd/restorer"
)

// keyChange is a repository whose first data recipient A was replaced by
// B (restore key add B, remove A) after `before` snapshots, with `after`
// snapshots written since.
type keyChange struct {
	dir, src string
	s        scenario
	a, b     keys // the index key with identity A, with identity B
	old, new map[string]bool
}

// newKeyChange makes a keyChange. old holds the packs written before the
// change, new those written after.
func newKeyChange(t *testing.T, before, after int) *keyChange {
	t.Helper()
	ctx := context.Background()
	kc := &keyChange{dir: t.TempDir(), src: filepath.Join(t.TempDir(), "site"), s: scenario{snapshots: before + after}}
	kc.a = newKeys(t)
	kc.b = keys{index: kc.a.index, data: newKeys(t).data}
	be := localBackend(t, kc.dir)
	initRepo(t, be, kc.a, 1<<20)
	snap := func(i int) {
		t.Helper()
		w := open(t, localBackend(t, kc.dir), kc.a, false)
		writeSite(t, kc.src, site(0, i))
		if err := snapshot(ctx, w, kc.src, "web0", kc.s.snapTime(0, i), lockOptsTest); err != nil {
			t.Fatal(err)
		}
	}
	for i := range before {
		snap(i)
	}
	kc.old = packNames(t, kc.dir)
	r, err := chunkstore.Open(ctx, be, kc.a.index)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	sess, err := r.BeginExclusive(ctx, chunkstore.WriteOptions{LockOptions: lockOptsTest})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.AddDataRecipient(ctx, sess, kc.b.data.Recipient().String()); err != nil {
		t.Fatal(err)
	}
	if _, err := r.RemoveDataRecipient(ctx, sess, kc.a.data.Recipient().String()); err != nil {
		t.Fatal(err)
	}
	sess.Close()
	for i := range after {
		snap(before + i)
	}
	kc.new = map[string]bool{}
	for name := range packNames(t, kc.dir) {
		if !kc.old[name] {
			kc.new[name] = true
		}
	}
	if len(kc.old) == 0 || len(kc.new) == 0 {
		t.Fatalf("%d packs before the key change, %d after; want some of each", len(kc.old), len(kc.new))
	}
	return kc
}

// opens returns the packs (data/ and tree/) whose age header id opens.
func (kc *keyChange) opens(t *testing.T, id age.Identity) map[string]bool {
	t.Helper()
	ctx := context.Background()
	be := localBackend(t, kc.dir)
	out := map[string]bool{}
	for name := range packNames(t, kc.dir) {
		rd, err := be.Open(ctx, name, 0, 4096)
		if err != nil {
			t.Fatal(err)
		}
		prefix := make([]byte, 4096)
		n, _ := rd.Read(prefix)
		rd.Close()
		err = crypto.CheckHeader(prefix[:n], id)
		switch {
		case err == nil:
			out[name] = true
		case !errors.Is(err, crypto.ErrNoKey):
			t.Fatalf("%s: %v", name, err)
		}
	}
	return out
}

// restores reports how many of the repository's snapshots restore
// completely with the data identities ids, checking the content of those
// that do.
func (kc *keyChange) restores(t *testing.T, ids ...age.Identity) int {
	t.Helper()
	ctx := context.Background()
	r := open(t, localBackend(t, kc.dir), kc.a, false)
	r.SetDataIdentities(ids)
	if bad, err := r.LoadIndex(ctx); err != nil || len(bad) > 0 {
		t.Fatalf("load index: %v %v", bad, err)
	}
	snaps, bad, err := r.Snapshots(ctx)
	if err != nil || len(bad) > 0 {
		t.Fatalf("snapshots: %v %v", bad, err)
	}
	good := 0
	for _, sn := range snaps {
		target := t.TempDir()
		res, err := restorer.Restore(ctx, r, sn, restorer.Options{Target: target})
		if err != nil || len(res.Errors) > 0 {
			continue
		}
		good++
		_, i := kc.s.identify(t, sn)
		if got, want := readTree(t, filepath.Join(target, kc.src)), site(0, i); !sameFiles(got, want) {
			t.Errorf("snapshot %d restored with other content", i)
		}
	}
	return good
}

// readTree returns the content of every file below dir, by slash path.
func readTree(t *testing.T, dir string) map[string]string {
	t.Helper()
	out := map[string]string{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(p)
		rel, _ := filepath.Rel(dir, p)
		out[filepath.ToSlash(rel)] = string(b)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func sameFiles(got map[string]string, want map[string][]byte) bool {
	if len(got) != len(want) {
		return false
	}
	for name, b := range want {
		if got[name] != string(b) {
			return false
		}
	}
	return true
}

// Without Reseal the packs written before a key change stay as they were:
// a prune (even with Repack) leaves them sealed to the removed recipient
// A only, so A's identity still opens them and B's does not. The snapshots
// written before restore with A; B restores none, not even the one
// written after the change, which deduplicated against the old packs;
// that one needs both identities.
func TestNoResealKeepsOldRecipients(t *testing.T) {
	kc := newKeyChange(t, 3, 1)
	if _, err := Run(context.Background(), open(t, localBackend(t, kc.dir), kc.a, true), Options{Repack: true}); err != nil {
		t.Fatal(err)
	}
	byA, byB := kc.opens(t, kc.a.data), kc.opens(t, kc.b.data)
	for name := range kc.old {
		if !byA[name] || (strings.HasPrefix(name, "data/") && byB[name]) {
			t.Errorf("%s, written before the key change: A opens it %v, B %v; want A only", name, byA[name], byB[name])
		}
	}
	for name := range kc.new {
		if byA[name] || !byB[name] {
			t.Errorf("%s, written after the key change: A opens it %v, B %v; want B only", name, byA[name], byB[name])
		}
	}
	if n := kc.restores(t, kc.b.data); n != 0 {
		t.Errorf("B restores %d snapshots, want none", n)
	}
	if n := kc.restores(t, kc.a.data); n != 3 {
		t.Errorf("A restores %d snapshots, want the 3 written before the change", n)
	}
	if n := kc.restores(t, kc.a.data, kc.b.data); n != 4 {
		t.Errorf("A and B restore %d snapshots, want all 4", n)
	}
}

// After a key change (B added, A removed), a prune with Reseal and an
// identity that opens the old packs rewrites every pack sealed to A, and
// no other: then A's identity opens no pack, B's restores every snapshot
// as it was, verify passes, and a second reseal has nothing to do. A dry
// run before it says what it does and writes nothing.
func TestResealAfterKeyChange(t *testing.T) {
	ctx := context.Background()
	kc := newKeyChange(t, 4, 2)
	forgetOldest(t, open(t, localBackend(t, kc.dir), kc.a, false), 1)
	both := keys{index: kc.a.index, data: kc.a.data}
	r := open(t, localBackend(t, kc.dir), both, true)
	r.SetDataIdentities([]age.Identity{kc.a.data, kc.b.data})

	before := listing(t, kc.dir)
	dry, err := Run(ctx, r, Options{Reseal: true, DryRun: true})
	if err != nil {
		t.Fatal(err)
	}
	if after := listing(t, kc.dir); !slices.Equal(before, after) {
		t.Errorf("dry run changed the repository:\n%v\n%v", before, after)
	}
	fpA, fpI := crypto.Fingerprint(kc.a.data.Recipient().String()), crypto.Fingerprint(kc.a.index.Recipient().String())
	treeA := []string{fpA, fpI}
	slices.Sort(treeA)
	if len(dry.Resealed) != 2 || dry.Resealed[0].Type != chunkstore.DataBlob || !slices.Equal(dry.Resealed[0].SealedTo, []string{fpA}) ||
		dry.Resealed[1].Type != chunkstore.TreeBlob || !slices.Equal(dry.Resealed[1].SealedTo, treeA) {
		t.Errorf("dry run groups %+v, want content packs sealed to [%s] and tree packs to %v", dry.Resealed, fpA, treeA)
	}

	st, err := Run(ctx, r, Options{Reseal: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("reseal: %+v", *st)
	if st.PacksResealed == 0 || st.PacksResealed != dry.PacksResealed || st.BytesResealed != dry.BytesResealed ||
		!slices.EqualFunc(st.Resealed, dry.Resealed, func(a, b ResealGroup) bool {
			return a.Type == b.Type && a.Packs == b.Packs && a.Bytes == b.Bytes && slices.Equal(a.SealedTo, b.SealedTo)
		}) {
		t.Errorf("resealed %d packs (%d bytes) %+v; the dry run said %d (%d) %+v", st.PacksResealed, st.BytesResealed, st.Resealed,
			dry.PacksResealed, dry.BytesResealed, dry.Resealed)
	}
	if st.PacksDeleted != dry.PacksDeleted {
		t.Errorf("deleted %d packs, the dry run said %d", st.PacksDeleted, dry.PacksDeleted)
	}
	now := packNames(t, kc.dir)
	for name := range kc.old {
		if now[name] {
			t.Errorf("%s, sealed to A, is still there", name)
		}
	}
	for name := range kc.new {
		if !now[name] {
			t.Errorf("%s, sealed to B and fully used, was rewritten", name)
		}
	}
	if byA := kc.opens(t, kc.a.data); len(byA) > 0 {
		t.Errorf("A's identity still opens %d packs: %v", len(byA), byA)
	}
	if byB := kc.opens(t, kc.b.data); len(byB) != len(now) {
		t.Errorf("B's identity opens %d of the %d packs", len(byB), len(now))
	}
	if n := kc.restores(t, kc.a.data); n != 0 {
		t.Errorf("A restores %d snapshots after the reseal, want none", n)
	}
	if n := kc.restores(t, kc.b.data); n != 5 {
		t.Errorf("B restores %d snapshots, want all 5", n)
	}
	if rep := check(t, kc.dir, kc.b); rep.Snapshots != 5 || rep.Unused != 0 {
		t.Errorf("verify after the reseal: %d snapshots, %d unreferenced packs; want 5, 0", rep.Snapshots, rep.Unused)
	}
	again, err := Run(ctx, r, Options{Reseal: true})
	if err != nil {
		t.Fatal(err)
	}
	if again.PacksResealed != 0 || again.PacksRewritten != 0 || again.PacksDeleted != 0 {
		t.Errorf("a second reseal changed packs: %+v", *again)
	}
}

// A reseal with an identity that does not open the packs to reseal (B's,
// when they are sealed to A only) stops before it writes anything, naming
// a pack and how to fix it; without an identity it is refused.
func TestResealNeedsTheOldIdentity(t *testing.T) {
	kc := newKeyChange(t, 2, 1)
	before := listing(t, kc.dir)
	_, err := Run(context.Background(), open(t, localBackend(t, kc.dir), kc.b, true), Options{Reseal: true})
	if !errors.Is(err, crypto.ErrNoKey) || !strings.Contains(err.Error(), "nothing was written") ||
		!strings.Contains(err.Error(), "data/") || strings.Contains(err.Error(), "\n") {
		t.Errorf("reseal with B's identity: %v; want one line, ErrNoKey, naming a pack", err)
	}
	if _, err := Run(context.Background(), open(t, localBackend(t, kc.dir), kc.b, false), Options{Reseal: true}); err == nil {
		t.Error("reseal without a data identity: no error")
	}
	if after := listing(t, kc.dir); !slices.Equal(before, after) {
		t.Errorf("a refused reseal changed the repository:\n%v\n%v", before, after)
	}
}

// Packs whose index entries record no recipients (written before syncd
// recorded them) are resealed, and so is a pack two index objects record
// differently, even when one of them names the current recipients (a
// hacked writer's claim cannot keep an old pack from a reseal). Packs
// recorded as sealed to the current recipients stay.
func TestResealUnrecordedAndDisputed(t *testing.T) {
	ctx := context.Background()
	kc := newKeyChange(t, 2, 2)
	r := open(t, localBackend(t, kc.dir), kc.b, true)
	objs, _, err := r.LoadIndexObjects(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var unrecorded, disputed string
	var rewritten []chunkstore.IndexPack
	for _, packs := range objs {
		for _, p := range packs {
			if p.Type != chunkstore.DataBlob || !kc.new[chunkstore.ObjectName(p.Type, p.ID)] {
				continue
			}
			switch {
			case unrecorded == "":
				unrecorded = chunkstore.ObjectName(p.Type, p.ID)
				p.SealedTo = nil
				rewritten = append(rewritten, p) // listed again without a record
			case disputed == "":
				disputed = chunkstore.ObjectName(p.Type, p.ID)
				p.SealedTo = []string{"0123456789abcdef"}
				rewritten = append(rewritten, p) // listed again as sealed to another key
			}
		}
	}
	if disputed == "" {
		t.Fatal("fewer than two content packs written after the key change")
	}
	// and a claim that an old pack, sealed to A, is sealed to B
	var claim chunkstore.IndexPack
	for _, packs := range objs {
		for _, p := range packs {
			if p.Type == chunkstore.DataBlob && kc.old[chunkstore.ObjectName(p.Type, p.ID)] {
				claim = p
			}
		}
	}
	claim.SealedTo = r.SealedTo(chunkstore.DataBlob)
	if _, err := r.SaveIndex(ctx, append(rewritten, claim)); err != nil {
		t.Fatal(err)
	}
	r.SetDataIdentities([]age.Identity{kc.a.data, kc.b.data})
	st, err := Run(ctx, r, Options{Reseal: true})
	if err != nil {
		t.Fatal(err)
	}
	now := packNames(t, kc.dir)
	for _, name := range []string{unrecorded, disputed, chunkstore.ObjectName(claim.Type, claim.ID)} {
		if now[name] {
			t.Errorf("%s was not resealed", name)
		}
	}
	kept := 0
	for name := range kc.new {
		if now[name] {
			kept++
		}
	}
	if kept != len(kc.new)-2 {
		t.Errorf("%d of the %d packs written after the key change stay, want all but the 2 without a clear record (%+v)", kept, len(kc.new), *st)
	}
	if byA := kc.opens(t, kc.a.data); len(byA) > 0 {
		t.Errorf("A's identity still opens %v", byA)
	}
	check(t, kc.dir, kc.b)
}
