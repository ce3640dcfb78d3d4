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
// Host, Paths and Tags are the group's (empty when not grouped by them).
type EmptyGroupError struct {
	Host  string
	Paths []string
	Tags  []string
	N     int // snapshots in the group
}

// Error names the group in one line.
func (e *EmptyGroupError) Error() string {
	var parts []string
	if e.Host != "" {
		parts = append(parts, fmt.Sprintf("host %q", e.Host))
	}
	if len(e.Paths) > 0 {
		parts = append(parts, "paths ["+strings.Join(e.Paths, " ")+"]")
	}
	if len(e.Tags) > 0 {
		parts = append(parts, "tags ["+strings.Join(e.Tags, " ")+"]")
	}
	group := "the group " + strings.Join(parts, " ")
	if len(parts) == 0 {
		group = "the one group (no grouping)"
	}
	return fmt.Sprintf("refusing to remove all %d snapshots of %s: the policy keeps none of them", e.N, group)
}

// Filter chooses the snapshots forget looks at, restic's --host, --tag and
// --path: a snapshot passes when it has one of Hosts, all the tags of one
// of the lists of Tags, and every one of Paths (it may have more). An
// empty field lets every snapshot pass.
type Filter struct {
	Hosts []string
	// Tags are lists of tags, one per --tag a,b; an empty tag in a list
	// matches a snapshot without tags.
	Tags  [][]string
	Paths []string
}

// TagLists splits each flag value a,b into a list of tags, restic's
// --tag and --keep-tag: a snapshot matches a list when it has every tag
// of it. Spaces around a tag are dropped.
func TagLists(flags []string) [][]string {
	var out [][]string
	for _, t := range flags {
		var l []string
		for _, s := range strings.Split(t, ",") {
			l = append(l, strings.TrimSpace(s))
		}
		out = append(out, l)
	}
	return out
}

// IsZero reports whether f lets every snapshot pass.
func (f Filter) IsZero() bool { return len(f.Hosts)+len(f.Tags)+len(f.Paths) == 0 }

// Match reports whether sn passes f.
func (f Filter) Match(sn *chunkstore.Snapshot) bool {
	if len(f.Hosts) > 0 && !slices.Contains(f.Hosts, sn.Host) {
		return false
	}
	if len(f.Tags) > 0 && !slices.ContainsFunc(f.Tags, func(l []string) bool { return hasTags(sn, l) }) {
		return false
	}
	for _, p := range f.Paths {
		if !slices.Contains(sn.Paths, p) {
			return false
		}
	}
	return true
}

// CheckHosts returns an error naming the first of f.Hosts that no snapshot
// of snaps has, with the hosts that do: a --host with a typo selects
// nothing, and a command that went on would do nothing and say little.
// unreadable is the number of snapshots that could not be read (their host
// is unknown); the error says so when it is not 0.
func (f Filter) CheckHosts(snaps []*chunkstore.Snapshot, unreadable int) error {
	have := map[string]bool{}
	for _, sn := range snaps {
		have[sn.Host] = true
	}
	for _, h := range f.Hosts {
		if have[h] {
			continue
		}
		hosts := make([]string, 0, len(have))
		for k := range have {
			hosts = append(hosts, k)
		}
		slices.Sort(hosts)
		known := "the repository has no snapshots"
		if len(hosts) > 0 {
			known = "hosts with snapshots: " + strings.Join(hosts, ", ")
		}
		if unreadable > 0 {
			known += fmt.Sprintf("; %d snapshot(s) could not be read", unreadable)
		}
		return fmt.Errorf("no snapshot of host %s (%s)", h, known)
	}
	return nil
}

// Plan is what forget does before it deletes anything: it keeps the
// snapshots that pass f and applies p to their groups with [Apply]. Plan
// is pure.
//
// It refuses, with an *EmptyGroupError for the first such group, a policy
// that keeps no snapshot of some group, unless all is true. A policy with
// no rule is ErrNoPolicy unless all is true and f is not zero (then every
// snapshot that passes f goes, as restic's --unsafe-allow-remove-all with
// a filter).
func Plan(snaps []*chunkstore.Snapshot, p Policy, f Filter, by GroupBy, all bool) ([]Group, error) {
	if err := p.Validate(); err != nil {
		return nil, err
	}
	if p.IsZero() {
		if !all {
			return nil, ErrNoPolicy
		}
		if f.IsZero() {
			return nil, fmt.Errorf("%w; removing every snapshot needs a filter (host, tag or path) to limit it to", ErrNoPolicy)
		}
	}
	var sel []*chunkstore.Snapshot
	for _, sn := range snaps {
		if f.Match(sn) {
			sel = append(sel, sn)
		}
	}
	groups := Apply(sel, p, by)
	if !all {
		for _, g := range groups {
			if len(g.Keep) == 0 {
				return nil, &EmptyGroupError{Host: g.Host, Paths: g.Paths, Tags: g.Tags, N: len(g.Drop)}
			}
		}
	}
	return groups, nil
}

// Unreadable is the one rule syncd forget and the daemon's forget follow
// for a snapshot object that cannot be read (damaged, or not decryptable
// with the index key): it is kept, since what it holds and which group it
// belongs to are unknown, the policy is applied to the readable snapshots
// as if it were not there (restic skips such a snapshot too), and it is
// reported. Unreadable returns the one line that reports e.
func Unreadable(e *chunkstore.SnapshotError) string {
	return fmt.Sprintf("%s cannot be read, kept (not forgotten): %s", e.Name, strings.TrimPrefix(e.Err.Error(), e.Name+": "))
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
