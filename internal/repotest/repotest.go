// Package repotest makes throwaway repositories for the tests of the
// packages above chunkstore.
package repotest

import (
	"context"
	"sync"
	"testing"

	"filippo.io/age"

	"github.com/syncd/syncd/chunkstore"
	"github.com/syncd/syncd/chunkstore/backend"
	"github.com/syncd/syncd/chunkstore/local"
	"github.com/syncd/syncd/crypto"
)

// New initializes a repository in a temporary directory with fresh keys
// and returns it opened with the data identity, so that tests can read
// contents back, and with a write session open until the test ends.
func New(t testing.TB) *chunkstore.Repository { return NewOver(t, nil) }

// NewOver is New with the repository opened over wrap(the local backend)
// (a backend that fails on demand, say); wrap nil is New.
func NewOver(t testing.TB, wrap func(backend.Backend) backend.Backend) *chunkstore.Repository {
	t.Helper()
	repo := Init(t).Open(t, wrap)
	// A write session for the whole test, so that it can write; without a
	// lock, as nothing else uses the repository.
	sess, err := repo.BeginWrite(context.Background(), chunkstore.WriteOptions{NoLock: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(sess.Close)
	return repo
}

// Storage is a test repository's storage and keys, for a test that opens
// it more than once (a reader beside a writer, each with its own index).
type Storage struct {
	Backend backend.Backend
	Key     *crypto.IndexKey
	Data    *age.X25519Identity
}

// Init initializes a repository in a temporary directory with fresh keys.
func Init(t testing.TB) Storage {
	t.Helper()
	be, err := local.Create(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	idx, err := age.GenerateX25519Identity()
	if err != nil {
		t.Fatal(err)
	}
	data, err := age.GenerateX25519Identity()
	if err != nil {
		t.Fatal(err)
	}
	key := crypto.NewIndexKey(idx)
	if _, err := chunkstore.Init(context.Background(), be, key, chunkstore.InitOptions{DataRecipients: []string{data.Recipient().String()}}); err != nil {
		t.Fatal(err)
	}
	return Storage{Backend: be, Key: key, Data: data}
}

// Open opens s over wrap(s.Backend) (wrap nil: s.Backend) with the data
// identity, until the test ends. It loads no index and begins no write
// session.
func (s Storage) Open(t testing.TB, wrap func(backend.Backend) backend.Backend) *chunkstore.Repository {
	t.Helper()
	be := s.Backend
	if wrap != nil {
		be = wrap(be)
	}
	repo, err := chunkstore.Open(context.Background(), be, s.Key)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(repo.Close)
	repo.SetDataIdentities([]age.Identity{s.Data})
	return repo
}

// ListHook is a backend that calls Before, once, when Prefix is first
// listed, and then lists: a test saves a snapshot through another handle
// at the moment a reader lists "snapshots/", say. Before runs on the
// lister's goroutine.
type ListHook struct {
	backend.Backend
	Prefix string
	Before func()
	once   sync.Once
}

// List calls Before the first time prefix is h.Prefix, then lists.
func (h *ListHook) List(ctx context.Context, prefix string, fn func(backend.Info) error) error {
	if prefix == h.Prefix {
		h.once.Do(h.Before)
	}
	return h.Backend.List(ctx, prefix, fn)
}
