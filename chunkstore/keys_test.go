package chunkstore

import (
	"bytes"
	"context"
	"errors"
	"os"
	"slices"
	"testing"

	"filippo.io/age"

	"github.com/syncd/syncd/chunkstore/backend"
	"github.com/syncd/syncd/chunkstore/local"
	"github.com/syncd/syncd/crypto"
)

// TestDataRecipientChanges: a data recipient added by one process is
// sealed to by another already open (a daemon) from its next write
// session on, and opens the sealed index key alone; removing one works
// down to the last, which is refused with the config unchanged. A key
// change needs an exclusive session.
func TestDataRecipientChanges(t *testing.T) {
	ctx := context.Background()
	tr := initLocal(t, InitOptions{})
	daemon := tr.open(t, false)
	op := tr.open(t, false)
	op.writers.Add(-1) // the operator's writes go through its session
	newID := newX25519(t)
	rcpt := newID.Recipient().String()

	if _, err := op.AddDataRecipient(ctx, nil, rcpt); err == nil {
		t.Fatal("AddDataRecipient without a session: no error")
	}
	shared, err := op.BeginWrite(ctx, WriteOptions{NoIndex: true})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := op.AddDataRecipient(ctx, shared, rcpt); err == nil {
		t.Fatal("AddDataRecipient in a shared session: no error")
	}
	shared.Close()
	sess, err := op.BeginExclusive(ctx, WriteOptions{})
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := op.AddDataRecipient(ctx, sess, rcpt)
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{tr.dataID.Recipient().String(), rcpt}; !slices.Equal(cfg.DataRecipients, want) {
		t.Fatalf("data recipients %v, want %v", cfg.DataRecipients, want)
	}
	if _, err := op.AddDataRecipient(ctx, sess, rcpt); err == nil {
		t.Error("adding a recipient twice: no error")
	}
	keys, err := op.Keys(ctx)
	if err != nil || len(keys) != 3 || !keys[2].InConfig || keys[2].Object == "" {
		t.Fatalf("Keys: %+v %v", keys, err)
	}
	sess.Close()

	// the open daemon seals its next pack to the new recipient too
	if got := daemon.DataRecipients(); len(got) != 1 {
		t.Fatalf("daemon before its next session: %d recipients, want 1", len(got))
	}
	ds, err := daemon.BeginWrite(ctx, WriteOptions{NoIndex: true, NoLock: true})
	if err != nil {
		t.Fatal(err)
	}
	if got := daemon.DataRecipients(); !slices.Equal(got, cfg.DataRecipients) {
		t.Fatalf("daemon in its next session seals to %v, want %v", got, cfg.DataRecipients)
	}
	content := randomBytes(t, 3000)
	id := daemon.BlobID(daemon.NewHasher(), content)
	sv := daemon.NewSaver(ctx, SaverOptions{})
	if _, err := sv.Save(DataBlob, id, content); err != nil {
		t.Fatal(err)
	}
	if _, err := sv.Finish(); err != nil {
		t.Fatal(err)
	}
	ds.Close()
	reader := tr.open(t, false)
	reader.SetDataIdentities([]age.Identity{newID})
	if _, err := reader.LoadIndex(ctx); err != nil {
		t.Fatal(err)
	}
	loc, ok := reader.Index().Lookup(id)
	if !ok {
		t.Fatal("the daemon's blob is not in the index")
	}
	p, err := reader.OpenPack(ctx, DataBlob, loc.Pack, loc.PackSize, true)
	if err != nil {
		t.Fatalf("the new recipient's identity opens the daemon's pack: %v", err)
	}
	if got, err := p.ReadBlob(nil, id, loc, reader.NewHasher()); err != nil || !bytes.Equal(got, content) {
		t.Fatalf("ReadBlob with the new identity: %v", err)
	}
	be, _ := local.Open(tr.dir)
	if k, err := UnsealIndexKey(ctx, be, []age.Identity{newID}); err != nil || k.Recipient().String() != tr.key.Recipient().String() {
		t.Fatalf("the new identity alone opens the sealed index key: %v", err)
	}

	// remove the first; the last is refused, nothing changed
	sess, err = op.BeginExclusive(ctx, WriteOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer sess.Close()
	if cfg, err = op.RemoveDataRecipient(ctx, sess, tr.dataID.Recipient().String()); err != nil || !slices.Equal(cfg.DataRecipients, []string{rcpt}) {
		t.Fatalf("RemoveDataRecipient: %v %v", cfg.DataRecipients, err)
	}
	if _, err := UnsealIndexKey(ctx, be, []age.Identity{tr.dataID}); err == nil {
		t.Error("the removed identity still opens the sealed index key")
	}
	before, _ := os.ReadFile(tr.path(configName))
	_, err = op.RemoveDataRecipient(ctx, sess, rcpt)
	if !errors.Is(err, ErrLastRecipient) {
		t.Fatalf("removing the last recipient: %v, want ErrLastRecipient", err)
	}
	if after, _ := os.ReadFile(tr.path(configName)); !bytes.Equal(before, after) {
		t.Error("the refused removal changed the config")
	}
	if _, err := op.RemoveDataRecipient(ctx, sess, "age1notinconfig"); err == nil {
		t.Error("removing a recipient not in the config: no error")
	}
	if _, err := backend.ReadAll(ctx, be, keysPrefix+"data-"+crypto.Fingerprint(tr.cfg.DataRecipients[0])); !errors.Is(err, backend.ErrNotExist) {
		t.Error("the removed recipient's key object stays")
	}
}

// TestPacksRecordTheirRecipients: the index records, for each pack a
// Saver or a Repacker writes, the fingerprints of the recipients it is
// sealed to (content packs: the data recipients; tree packs: the index
// recipient too), and the record follows a key change; every recipient
// recorded opens the pack, and one not recorded does not.
func TestPacksRecordTheirRecipients(t *testing.T) {
	ctx := context.Background()
	tr := initLocal(t, InitOptions{})
	r := tr.open(t, false)
	r.writers.Add(-1) // the writes go through its sessions
	a := tr.dataID.Recipient().String()
	fp := func(rcpts ...string) []string {
		out := make([]string, len(rcpts))
		for i, s := range rcpts {
			out[i] = crypto.Fingerprint(s)
		}
		slices.Sort(out)
		return out
	}
	// recorded returns what the index records of the packs written since
	// the last call, by type.
	seen := map[ID]bool{}
	recorded := func() map[BlobType][][]string {
		t.Helper()
		objs, bad, err := r.IndexObjects(ctx)
		if err != nil || len(bad) > 0 {
			t.Fatalf("IndexObjects: %v %v", bad, err)
		}
		out := map[BlobType][][]string{}
		for _, packs := range objs {
			for _, p := range packs {
				if !seen[p.ID] {
					seen[p.ID] = true
					out[p.Type] = append(out[p.Type], p.SealedTo)
				}
			}
		}
		return out
	}
	save := func() {
		t.Helper()
		saveDataAndTree(t, r)
	}
	want := func(what string, data, tree []string) {
		t.Helper()
		got := recorded()
		if len(got[DataBlob]) != 1 || len(got[TreeBlob]) != 1 {
			t.Fatalf("%s: new packs %v, want one of each type", what, got)
		}
		if !slices.Equal(got[DataBlob][0], data) || !slices.Equal(r.SealedTo(DataBlob), data) {
			t.Errorf("%s: content pack recorded as sealed to %v (SealedTo %v), want %v", what, got[DataBlob][0], r.SealedTo(DataBlob), data)
		}
		if !slices.Equal(got[TreeBlob][0], tree) || !slices.Equal(r.SealedTo(TreeBlob), tree) {
			t.Errorf("%s: tree pack recorded as sealed to %v (SealedTo %v), want %v", what, got[TreeBlob][0], r.SealedTo(TreeBlob), tree)
		}
	}
	idx := tr.key.Recipient().String()
	save()
	want("saver", fp(a), fp(idx, a))

	b := newX25519(t)
	sess, err := r.BeginExclusive(ctx, WriteOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.AddDataRecipient(ctx, sess, b.Recipient().String()); err != nil {
		t.Fatal(err)
	}
	sess.Close()
	save()
	want("saver after key add", fp(a, b.Recipient().String()), fp(idx, a, b.Recipient().String()))

	// a Repacker's packs, after the first recipient is removed
	sess, err = r.BeginExclusive(ctx, WriteOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer sess.Close()
	if _, err := r.RemoveDataRecipient(ctx, sess, a); err != nil {
		t.Fatal(err)
	}
	rp := r.NewRepacker("")
	defer rp.Close()
	for _, typ := range []BlobType{DataBlob, TreeBlob} {
		plain := randomBytes(t, 2000)
		if err := rp.Add(ctx, typ, r.BlobID(r.NewHasher(), plain), plain); err != nil {
			t.Fatal(err)
		}
	}
	packs, err := rp.Finish(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.SaveIndex(ctx, packs); err != nil {
		t.Fatal(err)
	}
	want("repacker after key remove", fp(b.Recipient().String()), fp(idx, b.Recipient().String()))

	// what is recorded is what opens the pack
	for _, p := range packs {
		if err := checkWith(ctx, t, r, p, b); err != nil {
			t.Errorf("%s pack: the recorded recipient's identity does not open it: %v", p.Type, err)
		}
		if err := checkWith(ctx, t, r, p, tr.dataID); !errors.Is(err, crypto.ErrNoKey) {
			t.Errorf("%s pack: the removed recipient's identity: %v, want ErrNoKey", p.Type, err)
		}
		if p.Type != DataBlob {
			continue
		}
		r.SetDataIdentities([]age.Identity{tr.dataID})
		if err := r.CheckPackKey(ctx, DataBlob, p.ID, p.Size); !errors.Is(err, crypto.ErrNoKey) {
			t.Errorf("CheckPackKey with the removed identity: %v, want ErrNoKey", err)
		}
		r.SetDataIdentities([]age.Identity{tr.dataID, b})
		if err := r.CheckPackKey(ctx, DataBlob, p.ID, p.Size); err != nil {
			t.Errorf("CheckPackKey with both identities: %v", err)
		}
	}
}

// checkWith checks the age header of pack p against id alone.
func checkWith(ctx context.Context, t *testing.T, r *Repository, p IndexPack, id age.Identity) error {
	t.Helper()
	prefix, err := r.readPrefix(ctx, ObjectName(p.Type, p.ID), min(p.Size, 64<<10))
	if err != nil {
		t.Fatal(err)
	}
	return crypto.CheckHeader(prefix, id)
}

// TestRotateRecordsTreeRecipients: a rotation of the index key seals the
// tree packs again, to the new key and the data recipients, and the new
// index records that; content packs keep their record.
func TestRotateRecordsTreeRecipients(t *testing.T) {
	ctx := context.Background()
	tr := initLocal(t, InitOptions{})
	r := tr.open(t, false)
	r.writers.Add(-1)
	saveDataAndTree(t, r)
	dataFP := r.SealedTo(DataBlob)
	newKey := crypto.NewIndexKey(newX25519(t))
	sess, err := r.BeginExclusive(ctx, WriteOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.RotateIndexKey(ctx, sess, newKey, nil); err != nil {
		t.Fatal(err)
	}
	sess.Close()
	be, _ := local.Open(tr.dir)
	r2, err := Open(ctx, be, newKey)
	if err != nil {
		t.Fatal(err)
	}
	defer r2.Close()
	objs, bad, err := r2.IndexObjects(ctx)
	if err != nil || len(bad) > 0 || len(objs) != 1 {
		t.Fatalf("IndexObjects after the rotation: %d objects, %v %v", len(objs), bad, err)
	}
	treeFP := []string{crypto.Fingerprint(newKey.Recipient().String()), dataFP[0]}
	slices.Sort(treeFP)
	for _, packs := range objs {
		for _, p := range packs {
			want := dataFP
			if p.Type == TreeBlob {
				want = treeFP
			}
			if !slices.Equal(p.SealedTo, want) {
				t.Errorf("%s pack recorded as sealed to %v after the rotation, want %v", p.Type, p.SealedTo, want)
			}
		}
	}
	if got := r2.SealedTo(TreeBlob); !slices.Equal(got, treeFP) {
		t.Errorf("SealedTo(tree) with the new key: %v, want %v", got, treeFP)
	}
}

// Index.SealedTo is what a pack's entries record, nil when two disagree.
func TestIndexSealedTo(t *testing.T) {
	x := NewIndex()
	p := IndexPack{ID: ID{1}, Type: DataBlob, Size: 10, SealedTo: []string{"aa"}}
	x.Add(p)
	x.Add(p)
	if got := x.SealedTo(p.ID); !slices.Equal(got, []string{"aa"}) {
		t.Errorf("one record, listed twice: %v", got)
	}
	p.SealedTo = []string{"bb"}
	x.Add(p)
	if got := x.SealedTo(p.ID); got != nil {
		t.Errorf("two records that disagree: %v, want nil", got)
	}
	p.SealedTo = []string{"aa"}
	x.Add(p)
	if got := x.SealedTo(p.ID); got != nil {
		t.Errorf("a third record after a disagreement: %v, want nil", got)
	}
}

// saveDataAndTree writes one pack of each type, of a random blob, in a
// write session of its own.
func saveDataAndTree(t *testing.T, r *Repository) {
	t.Helper()
	ctx := context.Background()
	sess, err := r.BeginWrite(ctx, WriteOptions{NoIndex: true, NoLock: true})
	if err != nil {
		t.Fatal(err)
	}
	defer sess.Close()
	sv := r.NewSaver(ctx, SaverOptions{})
	for _, typ := range []BlobType{DataBlob, TreeBlob} {
		b := randomBytes(t, 2000)
		if _, err := sv.Save(typ, r.BlobID(r.NewHasher(), b), b); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := sv.Finish(); err != nil {
		t.Fatal(err)
	}
}
