package chunkstore

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/syncd/syncd/chunkstore/backend"
)

// Snapshot is the content of a "snapshots/<id>" object.
type Snapshot struct {
	Time     time.Time `json:"time"`
	Host     string    `json:"host"`
	Paths    []string  `json:"paths"`
	Tags     []string  `json:"tags,omitempty"`
	Tree     ID        `json:"tree"`
	Parent   *ID       `json:"parent,omitempty"`
	Program  string    `json:"program,omitempty"`
	Stats    Stats     `json:"stats"`
	Partial  bool      `json:"partial,omitempty"` // some files could not be read
	Username string    `json:"username,omitempty"`

	id ID
}

// Stats summarizes what a snapshot holds and what its run added.
type Stats struct {
	Files      int64 `json:"files"`
	Dirs       int64 `json:"dirs"`
	Bytes      int64 `json:"bytes"`       // total size of the files
	FilesRead  int64 `json:"files_read"`  // files read (new or changed)
	BlobsAdded int64 `json:"blobs_added"` // blobs new to the repository
	BytesAdded int64 `json:"bytes_added"` // stored bytes of those blobs
	Errors     int64 `json:"errors"`      // files that could not be read
}

// ID returns the snapshot's ID (set by SaveSnapshot and LoadSnapshot).
func (s *Snapshot) ID() ID { return s.id }

// SaveSnapshot writes sn. Everything it references must already be
// durable (Saver.Finish returned).
//
// When the repository holds a shared lock (Lock), SaveSnapshot first checks
// that the lock is still valid and fails with ErrLockLost otherwise: a prune
// may then have deleted data the snapshot references.
func (r *Repository) SaveSnapshot(ctx context.Context, sn *Snapshot) (ID, error) {
	if l := r.heldLock.Load(); l != nil {
		if err := l.Check(); err != nil {
			return ID{}, fmt.Errorf("save snapshot: %w", err)
		}
	}
	id, err := r.saveMeta(ctx, "snapshots", sn)
	if err != nil {
		return ID{}, fmt.Errorf("save snapshot: %w", err)
	}
	sn.id = id
	return id, nil
}

// LoadSnapshot reads the snapshot id.
func (r *Repository) LoadSnapshot(ctx context.Context, id ID) (*Snapshot, error) {
	var sn Snapshot
	if err := r.loadMeta(ctx, SnapshotName(id), id, &sn); err != nil {
		return nil, err
	}
	sn.id = id
	return &sn, nil
}

// SnapshotError reports a snapshot object that could not be read.
type SnapshotError struct {
	Name string
	Err  error
}

func (e *SnapshotError) Error() string { return e.Err.Error() }
func (e *SnapshotError) Unwrap() error { return e.Err }

// SnapshotsAndIndex lists the snapshots (Snapshots), then brings the
// in-memory index up to date (ReloadIndex), and returns the index objects
// that could not be read too. Every writer saves the index objects of a
// snapshot's packs before the snapshot object (docs/FORMAT.md), so the
// index then lists the blobs of every snapshot listed, even of one saved
// while the reader began; loaded only before the listing, it would lack
// them, and reading that snapshot would fail with "tree …: not in the
// index". A reader that reads the trees of the snapshots it lists lists
// them here.
func (r *Repository) SnapshotsAndIndex(ctx context.Context) ([]*Snapshot, []*SnapshotError, []*IndexError, error) {
	snaps, bad, err := r.Snapshots(ctx)
	if err != nil {
		return nil, nil, nil, err
	}
	badIdx, err := r.ReloadIndex(ctx)
	if err != nil {
		return nil, nil, nil, err
	}
	return snaps, bad, badIdx, nil
}

// Snapshots reads every snapshot, oldest first. Unreadable ones are
// returned apart, so one bad object does not hide the others.
func (r *Repository) Snapshots(ctx context.Context) ([]*Snapshot, []*SnapshotError, error) {
	var ids []ID
	var bad []*SnapshotError
	err := r.be.List(ctx, "snapshots/", func(fi backend.Info) error {
		id, err := ParseID(strings.TrimPrefix(fi.Name, "snapshots/"))
		if err != nil {
			bad = append(bad, &SnapshotError{Name: fi.Name, Err: fmt.Errorf("%s: unexpected object name", fi.Name)})
			return nil
		}
		ids = append(ids, id)
		return nil
	})
	if err != nil {
		return nil, nil, fmt.Errorf("list snapshots: %w", err)
	}
	var mu sync.Mutex
	var out []*Snapshot
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(8)
	for _, id := range ids {
		g.Go(func() error {
			sn, err := r.LoadSnapshot(gctx, id)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				if gctx.Err() != nil {
					return gctx.Err()
				}
				bad = append(bad, &SnapshotError{Name: SnapshotName(id), Err: err})
				return nil
			}
			out = append(out, sn)
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return nil, nil, err
	}
	SortSnapshots(out)
	return out, bad, nil
}

// SortSnapshots sorts by time, then ID, oldest first.
func SortSnapshots(s []*Snapshot) {
	slices.SortFunc(s, func(a, b *Snapshot) int {
		if c := a.Time.Compare(b.Time); c != 0 {
			return c
		}
		return strings.Compare(a.id.String(), b.id.String())
	})
}

// ErrNoSnapshot is matched by FindSnapshot's error when nothing matches.
var ErrNoSnapshot = errors.New("no matching snapshot")

// FindSnapshot resolves ref among snaps (sorted oldest first): "latest", a
// full ID or a unique ID prefix.
func FindSnapshot(snaps []*Snapshot, ref string) (*Snapshot, error) {
	if ref == "" {
		return nil, errors.New("empty snapshot reference")
	}
	if ref == "latest" {
		if len(snaps) == 0 {
			return nil, fmt.Errorf("latest: repository has no snapshots: %w", ErrNoSnapshot)
		}
		return snaps[len(snaps)-1], nil
	}
	var found []*Snapshot
	for _, s := range snaps {
		if strings.HasPrefix(s.id.String(), strings.ToLower(ref)) {
			found = append(found, s)
		}
	}
	switch len(found) {
	case 0:
		return nil, fmt.Errorf("snapshot %q: %w", ref, ErrNoSnapshot)
	case 1:
		return found[0], nil
	}
	var ids []string
	for _, s := range found {
		ids = append(ids, s.id.String())
	}
	return nil, fmt.Errorf("snapshot prefix %q is ambiguous, it matches %s", ref, strings.Join(ids, ", "))
}
