package retention

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"golang.org/x/sync/errgroup"

	"github.com/syncd/syncd/chunkstore"
	"github.com/syncd/syncd/chunkstore/backend"
)

// ErrNoPolicy is matched by Plan's error when the policy has no rule and
// removing everything was not asked for.
var ErrNoPolicy = errors.New("no policy given: no snapshot would be kept")

// EmptyGroupError is Plan's refusal to remove every snapshot of a group.
type EmptyGroupError struct {
	Host  string
	Paths []string
	N     int // snapshots in the group
}

// Error names the group in one line.
func (e *EmptyGroupError) Error() string {
	return fmt.Sprintf("refusing to remove all %d snapshots of host %q paths [%s]: the policy keeps none of them",
		e.N, e.Host, strings.Join(e.Paths, " "))
}

// Plan is what forget does before it deletes anything: it keeps the
// snapshots of the given hosts (all hosts when hosts is empty) and applies
// p to their groups with [Apply]. Plan is pure.
//
// It refuses, with an *EmptyGroupError for the first such group, a policy
// that keeps no snapshot of some group, unless all is true. A policy with
// no rule is ErrNoPolicy unless all is true and hosts is not empty (then
// every snapshot of those hosts goes, as restic's
// --unsafe-allow-remove-all with --host).
func Plan(snaps []*chunkstore.Snapshot, p Policy, hosts []string, all bool) ([]Group, error) {
	if err := p.Validate(); err != nil {
		return nil, err
	}
	if p.IsZero() {
		if !all {
			return nil, ErrNoPolicy
		}
		if len(hosts) == 0 {
			return nil, fmt.Errorf("%w; removing every snapshot needs a host to limit it to", ErrNoPolicy)
		}
	}
	var sel []*chunkstore.Snapshot
	for _, sn := range snaps {
		if len(hosts) == 0 || slices.Contains(hosts, sn.Host) {
			sel = append(sel, sn)
		}
	}
	groups := Apply(sel, p)
	if !all {
		for _, g := range groups {
			if len(g.Keep) == 0 {
				return nil, &EmptyGroupError{Host: g.Host, Paths: g.Paths, N: len(g.Drop)}
			}
		}
	}
	return groups, nil
}

// Forget deletes the snapshot objects of every group's Drop, with up to
// eight deletions at a time, and returns the snapshots it deleted, in the
// order of groups. A snapshot object already gone (another forget) counts
// as deleted. Only snapshot objects are deleted: the data they referenced
// stays until a prune. On an error Forget stops starting deletions and
// returns what it deleted so far with the first error.
func Forget(ctx context.Context, repo *chunkstore.Repository, groups []Group) ([]*chunkstore.Snapshot, error) {
	var drop []*chunkstore.Snapshot
	for _, g := range groups {
		drop = append(drop, g.Drop...)
	}
	done := make([]bool, len(drop))
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(8)
	for i, sn := range drop {
		if gctx.Err() != nil {
			break
		}
		g.Go(func() error {
			name := chunkstore.SnapshotName(sn.ID())
			err := repo.Backend().Remove(gctx, name)
			if err != nil && !errors.Is(err, backend.ErrNotExist) {
				return fmt.Errorf("remove %s: %w", name, err)
			}
			done[i] = true // each goroutine its own index; Wait orders it
			return nil
		})
	}
	err := g.Wait()
	if err == nil {
		err = ctx.Err()
	}
	var removed []*chunkstore.Snapshot
	for i, sn := range drop {
		if done[i] {
			removed = append(removed, sn)
		}
	}
	return removed, err
}
