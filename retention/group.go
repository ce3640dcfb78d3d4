package retention

import (
	"slices"
	"strings"

	"github.com/syncd/syncd/chunkstore"
)

// Group is what [Apply] decided for the snapshots of one host and one set
// of paths.
type Group struct {
	Host    string
	Paths   []string               // sorted
	Keep    []*chunkstore.Snapshot // newest first
	Drop    []*chunkstore.Snapshot // newest first
	Reasons []Reason               // Reasons[i] is why Keep[i] stays
}

// Apply groups snaps by host and paths (the order of the paths does not
// matter) and applies p to each group with [Keep]. The groups are sorted by
// host, then paths. Like Keep it is pure; it does not modify snaps.
func Apply(snaps []*chunkstore.Snapshot, p Policy) []Group {
	byKey := map[string]*Group{}
	members := map[string][]*chunkstore.Snapshot{}
	var keys []string
	for _, sn := range snaps {
		paths := slices.Clone(sn.Paths)
		slices.Sort(paths)
		k := groupKey(sn.Host, paths)
		if _, ok := byKey[k]; !ok {
			byKey[k] = &Group{Host: sn.Host, Paths: paths}
			keys = append(keys, k)
		}
		members[k] = append(members[k], sn)
	}
	slices.SortFunc(keys, func(a, b string) int {
		ga, gb := byKey[a], byKey[b]
		if c := strings.Compare(ga.Host, gb.Host); c != 0 {
			return c
		}
		return slices.Compare(ga.Paths, gb.Paths)
	})
	out := make([]Group, 0, len(keys))
	for _, k := range keys {
		g := byKey[k]
		g.Keep, g.Drop, g.Reasons = Keep(members[k], p)
		out = append(out, *g)
	}
	return out
}

// groupKey joins host and paths with NUL bytes, which neither can hold.
func groupKey(host string, paths []string) string {
	return host + "\x00" + strings.Join(paths, "\x00")
}
