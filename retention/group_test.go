package retention

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/syncd/syncd/chunkstore"
	"github.com/syncd/syncd/internal/repotest"
)

func snap(host string, day int, paths ...string) *chunkstore.Snapshot {
	return &chunkstore.Snapshot{Time: utc(2026, 1, day, 12, 0), Host: host, Paths: paths}
}

func TestApplyGroupsByHostAndPaths(t *testing.T) {
	snaps := []*chunkstore.Snapshot{
		snap("web2", 1, "/a"),
		snap("web1", 2, "/b", "/a"),
		snap("web1", 3, "/a", "/b"),
		snap("web1", 4, "/a"),
		snap("web2", 5, "/a"),
		snap("web1", 6, "/a", "/b"),
	}
	groups := Apply(snaps, Policy{Last: 1}, DefaultGroupBy)
	var got []string
	for _, g := range groups {
		got = append(got, g.Host+" "+joinPaths(g.Paths)+" keep "+joinStamps(g.Keep)+" drop "+joinStamps(g.Drop))
	}
	want := []string{
		"web1 /a keep 2026-01-04T12:00 drop ",
		"web1 /a,/b keep 2026-01-06T12:00 drop 2026-01-03T12:00,2026-01-02T12:00",
		"web2 /a keep 2026-01-05T12:00 drop 2026-01-01T12:00",
	}
	if !slices.Equal(got, want) {
		t.Errorf("groups\n%q\nwant\n%q", got, want)
	}
	if !slices.Equal(snaps[1].Paths, []string{"/b", "/a"}) {
		t.Error("Apply sorted a snapshot's paths in place")
	}
	if len(Apply(nil, Policy{Last: 1}, DefaultGroupBy)) != 0 {
		t.Error("groups from no snapshots")
	}
}

func TestGroupBy(t *testing.T) {
	for _, tc := range []struct {
		in, want string
		err      bool
	}{
		{in: "host,paths", want: "host,paths"},
		{in: "paths,host", want: "host,paths"},
		{in: "hosts,path,tag", want: "host,paths,tags"},
		{in: "tags", want: "tags"},
		{in: "", want: ""},
		{in: "host,,", want: "host"},
		{in: "hostname", err: true},
		{in: "host, paths", err: true}, // restic: no space
	} {
		g, err := ParseGroupBy(tc.in)
		if tc.err != (err != nil) || err == nil && g.String() != tc.want {
			t.Errorf("ParseGroupBy(%q) = %q, %v; want %q (error %v)", tc.in, g, err, tc.want, tc.err)
		}
	}

	snaps := []*chunkstore.Snapshot{snap("web1", 1, "/a"), snap("web1", 2, "/b"), snap("web2", 3, "/a"), snap("web2", 4, "/a")}
	snaps[0].Tags = []string{"y", "x"}
	snaps[2].Tags = []string{"x", "y"}
	for _, tc := range []struct {
		by   GroupBy
		want []string
	}{
		{GroupBy{}, []string{": 4"}},
		{GroupBy{Host: true}, []string{"host web1: 2", "host web2: 2"}},
		{GroupBy{Paths: true}, []string{"paths [/a]: 3", "paths [/b]: 1"}},
		// the order of the tags does not matter; no tags is a group too
		{GroupBy{Tags: true}, []string{": 2", "tags [x y]: 2"}},
		{GroupBy{Host: true, Tags: true}, []string{"host web1: 1", "host web1, tags [x y]: 1", "host web2: 1", "host web2, tags [x y]: 1"}},
	} {
		var got []string
		for _, g := range Apply(snaps, Policy{Last: 1}, tc.by) {
			got = append(got, fmt.Sprintf("%s: %d", g, len(g.Keep)+len(g.Drop)))
		}
		if !slices.Equal(got, tc.want) {
			t.Errorf("group by %q: %q, want %q", tc.by, got, tc.want)
		}
	}
	if !slices.Equal(snaps[0].Tags, []string{"y", "x"}) {
		t.Error("Apply sorted a snapshot's tags in place")
	}
}

func TestFilter(t *testing.T) {
	sn := &chunkstore.Snapshot{Host: "web1", Paths: []string{"/a", "/b"}, Tags: []string{"x", "y"}}
	untagged := &chunkstore.Snapshot{Host: "web1", Paths: []string{"/a"}}
	for _, tc := range []struct {
		f            Filter
		sn, untagged bool
	}{
		{Filter{}, true, true},
		{Filter{Hosts: []string{"web2", "web1"}}, true, true},
		{Filter{Hosts: []string{"web2"}}, false, false},
		{Filter{Tags: [][]string{{"x"}}}, true, false},
		{Filter{Tags: [][]string{{"x", "z"}}}, false, false},
		{Filter{Tags: [][]string{{"x", "z"}, {"y"}}}, true, false},
		{Filter{Tags: [][]string{{""}}}, false, true},
		{Filter{Paths: []string{"/a"}}, true, true},
		{Filter{Paths: []string{"/b", "/a"}}, true, false},
		{Filter{Paths: []string{"/a/x"}}, false, false},
		{Filter{Hosts: []string{"web1"}, Paths: []string{"/b"}, Tags: [][]string{{"y"}}}, true, false},
	} {
		if got := tc.f.Match(sn); got != tc.sn {
			t.Errorf("%+v matches the tagged snapshot: %v, want %v", tc.f, got, tc.sn)
		}
		if got := tc.f.Match(untagged); got != tc.untagged {
			t.Errorf("%+v matches the untagged snapshot: %v, want %v", tc.f, got, tc.untagged)
		}
	}
}

func TestEmptyGroupError(t *testing.T) {
	for _, tc := range []struct {
		e    EmptyGroupError
		want string
	}{
		{EmptyGroupError{Host: "web1", Paths: []string{"/a", "/b"}, N: 3},
			`refusing to remove all 3 snapshots of the group host "web1" paths [/a /b]: the policy keeps none of them`},
		{EmptyGroupError{Tags: []string{"x"}, N: 1}, `refusing to remove all 1 snapshots of the group tags [x]: the policy keeps none of them`},
		{EmptyGroupError{N: 2}, `refusing to remove all 2 snapshots of the one group (no grouping): the policy keeps none of them`},
	} {
		if got := tc.e.Error(); got != tc.want {
			t.Errorf("%q, want %q", got, tc.want)
		}
	}
}

func joinPaths(p []string) string { return strings.Join(p, ",") }

func joinStamps(s []*chunkstore.Snapshot) string { return strings.Join(stamps(s), ",") }

func TestPlan(t *testing.T) {
	snaps := []*chunkstore.Snapshot{snap("web1", 1, "/a"), snap("web1", 2, "/a"), snap("web2", 3, "/a")}
	snaps[1].Tags = []string{"keep"}

	if _, err := Plan(snaps, Policy{}, Filter{}, DefaultGroupBy, false); !errors.Is(err, ErrNoPolicy) {
		t.Errorf("no policy: %v, want ErrNoPolicy", err)
	}
	if _, err := Plan(snaps, Policy{}, Filter{}, DefaultGroupBy, true); !errors.Is(err, ErrNoPolicy) {
		t.Errorf("no policy, all, no host: %v, want ErrNoPolicy", err)
	}
	if _, err := Plan(snaps, Policy{Last: -3}, Filter{}, DefaultGroupBy, false); err == nil {
		t.Error("a negative count was accepted")
	}

	// keep-tag keeps nothing of web2's group: refused, unless all
	_, err := Plan(snaps, Policy{Tags: [][]string{{"keep"}}}, Filter{}, DefaultGroupBy, false)
	var eg *EmptyGroupError
	if !errors.As(err, &eg) || eg.Host != "web2" || eg.N != 1 {
		t.Fatalf("keep-tag: %v, want an EmptyGroupError for web2", err)
	}
	groups, err := Plan(snaps, Policy{Tags: [][]string{{"keep"}}}, Filter{}, DefaultGroupBy, true)
	if err != nil {
		t.Fatal(err)
	}
	if len(groups) != 2 || len(groups[0].Keep) != 1 || len(groups[0].Drop) != 1 || len(groups[1].Keep) != 0 || len(groups[1].Drop) != 1 {
		t.Errorf("keep-tag with all: %+v", groups)
	}

	// --host limits what is looked at
	groups, err = Plan(snaps, Policy{Last: 1}, Filter{Hosts: []string{"web1"}}, DefaultGroupBy, false)
	if err != nil {
		t.Fatal(err)
	}
	if len(groups) != 1 || groups[0].Host != "web1" || len(groups[0].Drop) != 1 {
		t.Errorf("host web1: %+v", groups)
	}
	// no policy, all and a host: every snapshot of that host goes
	groups, err = Plan(snaps, Policy{}, Filter{Hosts: []string{"web2"}}, DefaultGroupBy, true)
	if err != nil {
		t.Fatal(err)
	}
	if len(groups) != 1 || groups[0].Host != "web2" || len(groups[0].Keep) != 0 || len(groups[0].Drop) != 1 {
		t.Errorf("remove all of web2: %+v", groups)
	}
}

func TestForget(t *testing.T) {
	ctx := context.Background()
	repo := repotest.New(t)
	for i := range 5 {
		host := "web1"
		if i == 4 {
			host = "web2"
		}
		sn := &chunkstore.Snapshot{Time: time.Date(2026, 2, 1+i, 0, 0, 0, 0, time.UTC), Host: host, Paths: []string{"/srv"}}
		if _, err := repo.SaveSnapshot(ctx, sn); err != nil {
			t.Fatal(err)
		}
	}
	snaps, bad, err := repo.Snapshots(ctx)
	if err != nil || len(bad) != 0 || len(snaps) != 5 {
		t.Fatalf("snapshots: %d, bad %v, %v", len(snaps), bad, err)
	}
	groups, err := Plan(snaps, Policy{Last: 2}, Filter{}, DefaultGroupBy, false)
	if err != nil {
		t.Fatal(err)
	}
	removed, err := Forget(ctx, repo, groups)
	if err != nil {
		t.Fatal(err)
	}
	if got := stamps(removed); !slices.Equal(got, []string{"2026-02-02T00:00", "2026-02-01T00:00"}) {
		t.Errorf("removed %v", got)
	}
	left, _, err := repo.Snapshots(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if got := stamps(left); !slices.Equal(got, []string{"2026-02-03T00:00", "2026-02-04T00:00", "2026-02-05T00:00"}) {
		t.Errorf("left %v", got)
	}
	// a second forget of the same plan (another node was faster) is not an error
	removed, err = Forget(ctx, repo, groups)
	if err != nil || len(removed) != 2 {
		t.Errorf("forget again: %d removed, %v", len(removed), err)
	}
	// a cancelled context deletes nothing
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	groups, _ = Plan(left, Policy{Last: 1}, Filter{}, DefaultGroupBy, false)
	if removed, err := Forget(cctx, repo, groups); err == nil || len(removed) != 0 {
		t.Errorf("cancelled: %d removed, %v", len(removed), err)
	}
	if still, _, _ := repo.Snapshots(ctx); len(still) != 3 {
		t.Errorf("after a cancelled forget %d snapshots, want 3", len(still))
	}
}
