// Package repotest makes throwaway repositories for the tests of the
// packages above chunkstore.
package repotest

import (
	"context"
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
	ctx := context.Background()
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
	if _, err := chunkstore.Init(ctx, be, key, chunkstore.InitOptions{DataRecipients: []string{data.Recipient().String()}}); err != nil {
		t.Fatal(err)
	}
	var opened backend.Backend = be
	if wrap != nil {
		opened = wrap(be)
	}
	repo, err := chunkstore.Open(ctx, opened, key)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(repo.Close)
	repo.SetDataIdentities([]age.Identity{data})
	// A write session for the whole test, so that it can write; without a
	// lock, as nothing else uses the repository.
	sess, err := repo.BeginWrite(ctx, chunkstore.WriteOptions{NoLock: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(sess.Close)
	return repo
}
