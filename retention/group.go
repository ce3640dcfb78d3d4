package retention

import (
	"fmt"
	"slices"
	"strings"

	"github.com/syncd/syncd/chunkstore"
)

// GroupBy says which fields of a snapshot make its group, restic's
// --group-by. The zero GroupBy puts every snapshot in one group.
type GroupBy struct {
	Host, Paths, Tags bool
}

// DefaultGroupBy is restic's default, --group-by host,paths.
var DefaultGroupBy = GroupBy{Host: true, Paths: true}

// ParseGroupBy reads a --group-by value as restic does: a comma-separated
// list of host, paths and tags (or host, path, tag, hosts); an empty entry
// is ignored, so "" is no grouping at all.
func ParseGroupBy(s string) (GroupBy, error) {
	var g GroupBy
	for _, f := range strings.Split(s, ",") {
		switch f {
		case "host", "hosts":
			g.Host = true
		case "path", "paths":
			g.Paths = true
		case "tag", "tags":
			g.Tags = true
		case "":
		default:
			return GroupBy{}, fmt.Errorf("unknown field %q: want host, paths and/or tags separated by commas, or \"\" for one group", f)
		}
	}
	return g, nil
}

// String formats g as ParseGroupBy reads it ("host,paths"; "" for one
// group).
func (g GroupBy) String() string {
	var parts []string
	if g.Host {
		parts = append(parts, "host")
	}
	if g.Paths {
		parts = append(parts, "paths")
	}
	if g.Tags {
		parts = append(parts, "tags")
	}
	return strings.Join(parts, ",")
}

// Group is what [Apply] decided for the snapshots of one group. A field
// the grouping does not use is empty.
type Group struct {
	Host    string
	Paths   []string               // sorted
	Tags    []string               // sorted
	Keep    []*chunkstore.Snapshot // newest first
	Drop    []*chunkstore.Snapshot // newest first
	Reasons []Reason               // Reasons[i] is why Keep[i] stays
}

// String names the group: "host web1, paths [/a /b], tags
// [x]", the fields the grouping uses; "" for the one group of no
// grouping.
func (g Group) String() string {
	var parts []string
	if g.Host != "" {
		parts = append(parts, "host "+g.Host)
	}
	if len(g.Paths) > 0 {
		parts = append(parts, "paths ["+strings.Join(g.Paths, " ")+"]")
	}
	if len(g.Tags) > 0 {
		parts = append(parts, "tags ["+strings.Join(g.Tags, " ")+"]")
	}
	return strings.Join(parts, ", ")
}

// Apply groups snaps by the fields of by (the order of paths and of tags
// does not matter) and applies p to each group with [Keep]. The groups are
// sorted by host, then paths, then tags. Like Keep it is pure; it does not
// modify snaps.
func Apply(snaps []*chunkstore.Snapshot, p Policy, by GroupBy) []Group {
	byKey := map[string]*Group{}
	members := map[string][]*chunkstore.Snapshot{}
	var keys []string
	for _, sn := range snaps {
		var g Group
		if by.Host {
			g.Host = sn.Host
		}
		if by.Paths {
			g.Paths = sorted(sn.Paths)
		}
		if by.Tags {
			g.Tags = sorted(sn.Tags)
		}
		k := groupKey(g)
		if _, ok := byKey[k]; !ok {
			byKey[k] = &g
			keys = append(keys, k)
		}
		members[k] = append(members[k], sn)
	}
	slices.SortFunc(keys, func(a, b string) int {
		ga, gb := byKey[a], byKey[b]
		if c := strings.Compare(ga.Host, gb.Host); c != 0 {
			return c
		}
		if c := slices.Compare(ga.Paths, gb.Paths); c != 0 {
			return c
		}
		return slices.Compare(ga.Tags, gb.Tags)
	})
	out := make([]Group, 0, len(keys))
	for _, k := range keys {
		g := byKey[k]
		g.Keep, g.Drop, g.Reasons = Keep(members[k], p)
		out = append(out, *g)
	}
	return out
}

func sorted(l []string) []string {
	l = slices.Clone(l)
	slices.Sort(l)
	return l
}

// groupKey quotes the fields of g, so that no two groups share a key.
func groupKey(g Group) string {
	return fmt.Sprintf("%q %q %q", g.Host, g.Paths, g.Tags)
}
