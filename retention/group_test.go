package retention

import (
	"context"
	"errors"
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
	groups := Apply(snaps, Policy{Last: 1})
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
	if len(Apply(nil, Policy{Last: 1})) != 0 {
		t.Error("groups from no snapshots")
	}
}

func joinPaths(p []string) string { return strings.Join(p, ",") }

func joinStamps(s []*chunkstore.Snapshot) string { return strings.Join(stamps(s), ",") }

func TestPlan(t *testing.T) {
	snaps := []*chunkstore.Snapshot{snap("web1", 1, "/a"), snap("web1", 2, "/a"), snap("web2", 3, "/a")}
	snaps[1].Tags = []string{"keep"}

	if _, err := Plan(snaps, Policy{}, nil, false); !errors.Is(err, ErrNoPolicy) {
		t.Errorf("no policy: %v, want ErrNoPolicy", err)
	}
	if _, err := Plan(snaps, Policy{}, nil, true); !errors.Is(err, ErrNoPolicy) {
		t.Errorf("no policy, all, no host: %v, want ErrNoPolicy", err)
	}
	if _, err := Plan(snaps, Policy{Last: -3}, nil, false); err == nil {
		t.Error("a negative count was accepted")
	}

	// keep-tag keeps nothing of web2's group: refused, unless all
	_, err := Plan(snaps, Policy{Tags: [][]string{{"keep"}}}, nil, false)
	var eg *EmptyGroupError
	if !errors.As(err, &eg) || eg.Host != "web2" || eg.N != 1 {
		t.Fatalf("keep-tag: %v, want an EmptyGroupError for web2", err)
	}
	groups, err := Plan(snaps, Policy{Tags: [][]string{{"keep"}}}, nil, true)
	if err != nil {
		t.Fatal(err)
	}
	if len(groups) != 2 || len(groups[0].Keep) != 1 || len(groups[0].Drop) != 1 || len(groups[1].Keep) != 0 || len(groups[1].Drop) != 1 {
		t.Errorf("keep-tag with all: %+v", groups)
	}

	// --host limits what is looked at
	groups, err = Plan(snaps, Policy{Last: 1}, []string{"web1"}, false)
	if err != nil {
		t.Fatal(err)
	}
	if len(groups) != 1 || groups[0].Host != "web1" || len(groups[0].Drop) != 1 {
		t.Errorf("host web1: %+v", groups)
	}
	// no policy, all and a host: every snapshot of that host goes
	groups, err = Plan(snaps, Policy{}, []string{"web2"}, true)
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
	groups, err := Plan(snaps, Policy{Last: 2}, nil, false)
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
	groups, _ = Plan(left, Policy{Last: 1}, nil, false)
	if removed, err := Forget(cctx, repo, groups); err == nil || len(removed) != 0 {
		t.Errorf("cancelled: %d removed, %v", len(removed), err)
	}
	if still, _, _ := repo.Snapshots(ctx); len(still) != 3 {
		t.Errorf("after a cancelled forget %d snapshots, want 3", len(still))
	}
}
