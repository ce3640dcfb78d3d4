package chunkstore

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"

	"github.com/syncd/syncd/chunkstore/backend"
)

// A write session is the only way to write to a repository: packs, index
// objects and snapshots (a snapshot), snapshot removals (forget), and the
// rewrites and deletions of a prune. Opening one checks that the
// repository is still there (its config exists and is the one opened, so
// a backup disk that is not mounted is an error, not an empty repository
// to fill), takes the repository lock, and brings the in-memory index up
// to date. Outside a session, Save and Remove through the repository fail
// with ErrNoSession.
//
//	sess, err := repo.BeginWrite(ctx, chunkstore.WriteOptions{LockOptions: chunkstore.LockOptions{Program: "syncd snapshot"}})
//	if err != nil { … }
//	defer sess.Close()
//	… write packs and the snapshot through repo …

// ErrNoSession is matched by the error of a write to the repository while
// no write session is open.
var ErrNoSession = errors.New("no write session open")

// WriteOptions configure a write session.
type WriteOptions struct {
	// LockOptions configure the lock the session holds; its Exclusive
	// field is set by BeginWrite (false) and BeginExclusive (true).
	LockOptions
	// NoIndex leaves the in-memory index as it is: for a session that
	// writes no packs (forget), which then needs no index.
	NoIndex bool
	// NoLock takes no lock: only for a repository that nothing else can
	// use while the session is open (a test's own repository).
	NoLock bool
}

// Session is an open write session. Its methods are safe for concurrent
// use.
type Session struct {
	r    *Repository
	lock *Lock

	// BadIndex lists the index objects that could not be read when the
	// session began; the blobs they list will be stored again.
	BadIndex []*IndexError
	// Dropped names the packs, missing or of another size than indexed,
	// whose blobs were dropped from the index; they will be stored again.
	Dropped []string
	// SealedKeyErr is why the sealed index key could not be written to a
	// repository that has none (credentials that may not write keys/,
	// say): the session goes on, but restoring then needs the index key.
	// Tried once per Repository.
	SealedKeyErr error

	once sync.Once
}

// BeginWrite begins a shared write session, as a snapshot holds: several
// may run at once, on this node and others, but not with a prune's
// exclusive session (it waits up to opts.Wait for one to end). Unless
// opts.NoIndex, it reloads the in-memory index under the lock (a prune may
// have replaced index objects) and drops the blobs of missing packs, with
// one listing of the packs.
//
// It fails, writing nothing, when the repository's config is missing
// (an error matching ErrConfigMissing) or is no longer the one opened. It
// also writes the sealed index key (SealedKeyName) when the repository
// has none (see Session.SealedKeyErr).
func (r *Repository) BeginWrite(ctx context.Context, opts WriteOptions) (*Session, error) {
	opts.Exclusive = false
	return r.begin(ctx, opts)
}

// BeginExclusive begins the exclusive write session of a prune: it waits up
// to opts.Wait for every other session to end, and keeps new ones out
// until Close. It reads no index: a prune reads every index object itself
// (LoadIndexObjects). Otherwise it is BeginWrite.
func (r *Repository) BeginExclusive(ctx context.Context, opts WriteOptions) (*Session, error) {
	opts.Exclusive, opts.NoIndex = true, true
	return r.begin(ctx, opts)
}

func (r *Repository) begin(ctx context.Context, opts WriteOptions) (*Session, error) {
	if err := r.checkConfig(ctx); err != nil {
		return nil, err
	}
	s := &Session{r: r}
	if !opts.NoLock {
		lock, err := r.Lock(ctx, opts.LockOptions)
		if err != nil {
			return nil, err
		}
		// again under the lock: an index-key rotation (which held the
		// exclusive lock) may have switched the config while this waited
		if err := r.checkConfig(ctx); err != nil {
			lock.Unlock()
			return nil, err
		}
		s.lock = lock
	}
	r.writers.Add(1)
	if err := s.start(ctx, opts); err != nil {
		s.Close()
		return nil, err
	}
	return s, nil
}

// start does what a session does once it holds its lock.
func (s *Session) start(ctx context.Context, opts WriteOptions) error {
	s.SealedKeyErr = s.r.ensureSealedKey(ctx)
	if opts.NoIndex {
		return nil
	}
	var err error
	if s.BadIndex, err = s.r.ReloadIndex(ctx); err != nil {
		return err
	}
	s.Dropped, err = s.r.DropMissingPacks(ctx)
	return err
}

// checkConfig checks that the repository's config is still the one it was
// opened with.
func (r *Repository) checkConfig(ctx context.Context) error {
	cfg, err := LoadConfig(ctx, r.raw, r.key)
	switch {
	case errors.Is(err, ErrConfigMissing):
		return fmt.Errorf("%w: not mounted or deleted?", ErrConfigMissing)
	case err != nil:
		return err
	case cfg.ID != r.cfg.ID:
		return fmt.Errorf("config changed: another repository (id %s) is here now", prefix(cfg.ID, 16))
	}
	// data recipients added or removed since (restore key): what this
	// session writes is sealed to the new ones
	return r.setRecipients(cfg)
}

// Repository returns the repository the session writes to.
func (s *Session) Repository() *Repository { return s.r }

// Lock returns the lock the session holds, for a long writer to check
// (Lock.Check) before each step that removes something; nil with NoLock.
func (s *Session) Lock() *Lock { return s.lock }

// Close ends the session: it releases the lock. Writes through the
// repository fail once no session is open. Close may be called more than
// once; on a nil *Session it does nothing.
func (s *Session) Close() {
	if s == nil {
		return
	}
	s.once.Do(func() {
		s.r.writers.Add(-1)
		if s.lock != nil {
			s.lock.Unlock()
		}
	})
}

// gate is the backend a repository writes through: Save and Remove need
// an open write session.
type gate struct {
	backend.Backend
	r *Repository
}

func (g gate) check(op, name string) error {
	if g.r.writers.Load() <= 0 {
		return fmt.Errorf("%s %s: %w", op, name, ErrNoSession)
	}
	return nil
}

// Save implements backend.Backend.
func (g gate) Save(ctx context.Context, name string, rd io.ReaderAt, size int64) error {
	if err := g.check("save", name); err != nil {
		return err
	}
	return g.Backend.Save(ctx, name, rd, size)
}

// Remove implements backend.Backend.
func (g gate) Remove(ctx context.Context, name string) error {
	if err := g.check("remove", name); err != nil {
		return err
	}
	return g.Backend.Remove(ctx, name)
}
