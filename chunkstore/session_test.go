package chunkstore

import (
	"context"
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"filippo.io/age"

	"github.com/syncd/syncd/chunkstore/backend"
	"github.com/syncd/syncd/chunkstore/local"
	"github.com/syncd/syncd/chunkstore/s3"
	"github.com/syncd/syncd/crypto"
	"github.com/syncd/syncd/internal/miniotest"
)

// openNoSession opens tr as a node does: writes need a session.
func (tr testRepo) openNoSession(t *testing.T) *Repository {
	t.Helper()
	be, err := local.Open(tr.dir)
	if err != nil {
		t.Fatal(err)
	}
	r, err := Open(context.Background(), be, tr.key)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(r.Close)
	return r
}

// Outside a write session nothing is written; inside one it is; after
// Close it is refused again.
func TestWriteNeedsSession(t *testing.T) {
	ctx := context.Background()
	tr := initLocal(t, InitOptions{})
	r := tr.openNoSession(t)
	if _, err := r.SaveSnapshot(ctx, &Snapshot{Time: time.Now(), Host: "h"}); !errors.Is(err, ErrNoSession) {
		t.Fatalf("SaveSnapshot outside a session = %v, want ErrNoSession", err)
	}
	if err := r.Backend().Remove(ctx, "config"); !errors.Is(err, ErrNoSession) {
		t.Fatalf("Remove outside a session = %v, want ErrNoSession", err)
	}
	sess, err := r.BeginWrite(ctx, WriteOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.SaveSnapshot(ctx, &Snapshot{Time: time.Now(), Host: "h"}); err != nil {
		t.Fatalf("SaveSnapshot in a session: %v", err)
	}
	if sess.Lock() == nil || sess.Lock().Info().Exclusive {
		t.Errorf("BeginWrite holds %v, want a shared lock", sess.Lock())
	}
	sess.Close()
	sess.Close()
	if _, err := r.SaveSnapshot(ctx, &Snapshot{Time: time.Now(), Host: "h"}); !errors.Is(err, ErrNoSession) {
		t.Fatalf("SaveSnapshot after Close = %v, want ErrNoSession", err)
	}
	locks, err := r.ReadLocks(ctx)
	if err != nil || len(locks) != 0 {
		t.Errorf("locks after Close: %v %v", locks, err)
	}
}

// A repository directory that vanished (a backup disk not mounted) is an
// error at the start of every session, which writes nothing and makes
// nothing again; once the directory is back, sessions work again.
func TestSessionRepositoryGone(t *testing.T) {
	ctx := context.Background()
	tr := initLocal(t, InitOptions{})
	r := tr.openNoSession(t)
	sess, err := r.BeginWrite(ctx, WriteOptions{})
	if err != nil {
		t.Fatal(err)
	}
	sess.Close()
	away := tr.dir + ".away"
	if err := os.Rename(tr.dir, away); err != nil {
		t.Fatal(err)
	}
	for _, begin := range []func(context.Context, WriteOptions) (*Session, error){r.BeginWrite, r.BeginExclusive} {
		_, err := begin(ctx, WriteOptions{})
		if !errors.Is(err, ErrConfigMissing) || !strings.Contains(err.Error(), "config missing: not mounted or deleted?") {
			t.Errorf("session start with the repository gone = %v, want ErrConfigMissing", err)
		}
		if _, err := os.Lstat(tr.dir); !errors.Is(err, fs.ErrNotExist) {
			t.Fatalf("the session start made %s again", tr.dir)
		}
	}
	// The directory back, but emptied: still no config.
	if err := os.Mkdir(tr.dir, 0o700); err != nil {
		t.Fatal(err)
	}
	if _, err := r.BeginWrite(ctx, WriteOptions{}); !errors.Is(err, ErrConfigMissing) {
		t.Errorf("session start in an empty directory = %v, want ErrConfigMissing", err)
	}
	if ents, _ := os.ReadDir(tr.dir); len(ents) != 0 {
		t.Errorf("session start wrote into an empty directory: %v", ents)
	}
	os.Remove(tr.dir)
	if err := os.Rename(away, tr.dir); err != nil {
		t.Fatal(err)
	}
	sess, err = r.BeginWrite(ctx, WriteOptions{})
	if err != nil {
		t.Fatalf("session start with the repository back: %v", err)
	}
	sess.Close()
}

// A session refuses a repository whose config is another repository's
// (another disk mounted at the same place).
func TestSessionOtherRepository(t *testing.T) {
	ctx := context.Background()
	tr := initLocal(t, InitOptions{})
	r := tr.openNoSession(t)
	other := filepath.Join(t.TempDir(), "other")
	be, err := local.Create(other)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Init(ctx, be, tr.key, InitOptions{DataRecipients: []string{tr.dataID.Recipient().String()}}); err != nil {
		t.Fatal(err)
	}
	os.Rename(tr.dir, tr.dir+".away")
	if err := os.Rename(other, tr.dir); err != nil {
		t.Fatal(err)
	}
	if _, err := r.BeginWrite(ctx, WriteOptions{}); err == nil || !strings.Contains(err.Error(), "another repository") {
		t.Errorf("session start on another repository = %v, want \"another repository\"", err)
	}
}

// Init seals the index key to the data recipients; a repository without
// the sealed key gets it from its first write session. The data identity
// opens it and the key it holds opens the repository; another identity
// does not.
func TestSealedIndexKey(t *testing.T) {
	ctx := context.Background()
	tr := initLocal(t, InitOptions{})
	be, err := local.Open(tr.dir)
	if err != nil {
		t.Fatal(err)
	}
	unseal := func() {
		t.Helper()
		key, err := UnsealIndexKey(ctx, be, []age.Identity{tr.dataID})
		if err != nil {
			t.Fatalf("UnsealIndexKey: %v", err)
		}
		if key.Recipient().String() != tr.key.Recipient().String() {
			t.Fatalf("unsealed key %s, want %s", key.Recipient(), tr.key.Recipient())
		}
		r, err := Open(ctx, be, key)
		if err != nil {
			t.Fatalf("Open with the unsealed key: %v", err)
		}
		r.Close()
	}
	unseal()
	if _, err := UnsealIndexKey(ctx, be, []age.Identity{newX25519(t)}); !errors.Is(err, crypto.ErrNoKey) {
		t.Errorf("UnsealIndexKey with another identity = %v, want ErrNoKey", err)
	}
	// A repository made before the sealed key existed.
	if err := os.Remove(tr.path(SealedKeyName)); err != nil {
		t.Fatal(err)
	}
	if _, err := UnsealIndexKey(ctx, be, []age.Identity{tr.dataID}); !errors.Is(err, ErrNoSealedKey) {
		t.Fatalf("UnsealIndexKey without the object = %v, want ErrNoSealedKey", err)
	}
	r := tr.openNoSession(t)
	sess, err := r.BeginWrite(ctx, WriteOptions{NoIndex: true})
	if err != nil {
		t.Fatal(err)
	}
	sess.Close()
	unseal()
}

// On S3 (MinIO), a config object deleted makes every session start fail.
func TestSessionConfigMissingS3(t *testing.T) {
	srv := miniotest.Start(t)
	none := filepath.Join(t.TempDir(), "none")
	for k, v := range map[string]string{"AWS_CONFIG_FILE": none, "AWS_SHARED_CREDENTIALS_FILE": none,
		"AWS_PROFILE": "", "AWS_SESSION_TOKEN": "", "AWS_EC2_METADATA_DISABLED": "true"} {
		t.Setenv(k, v)
	}
	for _, kv := range srv.Env() {
		k, v, _ := strings.Cut(kv, "=")
		t.Setenv(k, v)
	}
	ctx := context.Background()
	be, err := s3.Create(ctx, s3.Config{URL: "s3://sessions/repo"})
	if err != nil {
		t.Fatal(err)
	}
	defer be.Close()
	key, data := crypto.NewIndexKey(newX25519(t)), newX25519(t)
	if _, err := Init(ctx, be, key, InitOptions{DataRecipients: []string{data.Recipient().String()}}); err != nil {
		t.Fatal(err)
	}
	r, err := Open(ctx, be, key)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	sess, err := r.BeginWrite(ctx, WriteOptions{})
	if err != nil {
		t.Fatal(err)
	}
	sess.Close()
	if err := be.Remove(ctx, configName); err != nil {
		t.Fatal(err)
	}
	for _, begin := range []func(context.Context, WriteOptions) (*Session, error){r.BeginWrite, r.BeginExclusive} {
		if _, err := begin(ctx, WriteOptions{}); !errors.Is(err, ErrConfigMissing) {
			t.Errorf("session start without the config = %v, want ErrConfigMissing", err)
		}
	}
	var locks []string
	be.List(ctx, LockPrefix, func(fi backend.Info) error { locks = append(locks, fi.Name); return nil })
	if len(locks) != 0 {
		t.Errorf("a failed session start left locks %v", locks)
	}
}

// refuseKeys is a backend whose Save refuses keys/ (credentials that may
// write only the usual prefixes).
type refuseKeys struct{ backend.Backend }

func (b refuseKeys) Save(ctx context.Context, name string, rd io.ReaderAt, size int64) error {
	if strings.HasPrefix(name, keysPrefix) {
		return errors.New("access denied")
	}
	return b.Backend.Save(ctx, name, rd, size)
}

// A sealed key that cannot be written does not stop the session: it is
// reported once, and the session writes.
func TestSealedKeyRefused(t *testing.T) {
	ctx := context.Background()
	tr := initLocal(t, InitOptions{})
	if err := os.Remove(tr.path(SealedKeyName)); err != nil {
		t.Fatal(err)
	}
	be, err := local.Open(tr.dir)
	if err != nil {
		t.Fatal(err)
	}
	r, err := Open(ctx, refuseKeys{be}, tr.key)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	sess, err := r.BeginWrite(ctx, WriteOptions{})
	if err != nil {
		t.Fatalf("BeginWrite: %v", err)
	}
	if sess.SealedKeyErr == nil || !strings.Contains(sess.SealedKeyErr.Error(), "access denied") {
		t.Errorf("SealedKeyErr = %v, want the refusal", sess.SealedKeyErr)
	}
	if _, err := r.SaveSnapshot(ctx, &Snapshot{Time: time.Now(), Host: "h"}); err != nil {
		t.Errorf("SaveSnapshot: %v", err)
	}
	sess.Close()
	sess, err = r.BeginWrite(ctx, WriteOptions{})
	if err != nil || sess.SealedKeyErr != nil {
		t.Errorf("second session: %v, SealedKeyErr %v; want it reported once", err, sess.SealedKeyErr)
	}
	sess.Close()
}
