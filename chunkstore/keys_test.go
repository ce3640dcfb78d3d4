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
