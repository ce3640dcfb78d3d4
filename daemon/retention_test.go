package daemon

import (
	"bytes"
	"context"
	"log/slog"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/syncd/syncd/chunkstore"
	"github.com/syncd/syncd/chunkstore/backend"
	"github.com/syncd/syncd/config"
	"github.com/syncd/syncd/internal/repotest"
	"github.com/syncd/syncd/internal/span"
	"github.com/syncd/syncd/retention"
)

// retentionDaemon is a daemon of node web1 with just what forget uses.
func retentionDaemon(t *testing.T, r config.Retention) (*Daemon, *bytes.Buffer) {
	t.Helper()
	var logs bytes.Buffer
	cfg := &config.Config{}
	cfg.Node.Name = "web1"
	cfg.Repository = &config.Repository{Retention: r}
	return &Daemon{cfg: cfg, repo: repotest.New(t), log: slog.New(slog.NewTextHandler(&logs, nil))}, &logs
}

// save writes a snapshot of host and paths on 2026-01-day.
func save(t *testing.T, repo *chunkstore.Repository, host string, day int, tags []string, paths ...string) {
	t.Helper()
	sn := &chunkstore.Snapshot{Time: time.Date(2026, 1, day, 3, 0, 0, 0, time.UTC), Host: host, Paths: paths, Tags: tags}
	if _, err := repo.SaveSnapshot(context.Background(), sn); err != nil {
		t.Fatal(err)
	}
}

// left lists the snapshots in the repository as "host day paths", sorted.
func left(t *testing.T, repo *chunkstore.Repository) []string {
	t.Helper()
	snaps, bad, err := repo.Snapshots(context.Background())
	if err != nil || len(bad) > 0 {
		t.Fatalf("snapshots: %v %v", bad, err)
	}
	var out []string
	for _, s := range snaps {
		out = append(out, s.Host+" "+s.Time.Format("02")+" "+strings.Join(s.Paths, ","))
	}
	slices.Sort(out)
	return out
}

func TestForgetAfterSnapshot(t *testing.T) {
	ctx := context.Background()
	now := time.Date(2026, 2, 1, 0, 0, 0, 0, time.UTC)
	d, logs := retentionDaemon(t, config.Retention{KeepLast: 2, KeepTags: []string{"release"}})
	for day := 1; day <= 5; day++ {
		var tags []string
		if day == 1 {
			tags = []string{"release"}
		}
		save(t, d.repo, "web1", day, tags, "/srv/www", "/srv/data")
		save(t, d.repo, "web2", day, nil, "/srv/www", "/srv/data") // another node's: not ours to forget
	}
	save(t, d.repo, "web1", 6, nil, "/srv/old")

	removed, err := d.forget(ctx, now)
	if err != nil {
		t.Fatal(err)
	}
	if len(removed) != 2 {
		t.Errorf("forgot %d snapshots, want 2", len(removed))
	}
	want := []string{
		"web1 01 /srv/www,/srv/data", "web1 04 /srv/www,/srv/data", "web1 05 /srv/www,/srv/data", "web1 06 /srv/old",
		"web2 01 /srv/www,/srv/data", "web2 02 /srv/www,/srv/data", "web2 03 /srv/www,/srv/data",
		"web2 04 /srv/www,/srv/data", "web2 05 /srv/www,/srv/data",
	}
	if got := left(t, d.repo); !slices.Equal(got, want) {
		t.Errorf("left\n%q\nwant\n%q", got, want)
	}
	if n := strings.Count(logs.String(), "snapshot forgotten"); n != 2 {
		t.Errorf("%d snapshots logged as forgotten, want 2:\n%s", n, logs)
	}
	if !strings.Contains(logs.String(), "time=2026-01-02T03:00:00Z") {
		t.Errorf("the log does not name the forgotten snapshot of January 2:\n%s", logs)
	}

	// the next time nothing more goes
	if removed, err := d.forget(ctx, now); err != nil || len(removed) != 0 {
		t.Errorf("second forget: %d, %v", len(removed), err)
	}
}

func TestForgetRetentionEmptyOrRefused(t *testing.T) {
	ctx := context.Background()
	now := time.Date(2026, 2, 1, 0, 0, 0, 0, time.UTC)

	// no retention: block, nothing happens
	d, _ := retentionDaemon(t, config.Retention{})
	for day := 1; day <= 3; day++ {
		save(t, d.repo, "web1", day, nil, "/srv/www")
	}
	if removed, err := d.forget(ctx, now); err != nil || len(removed) != 0 {
		t.Errorf("empty retention: forgot %d, %v", len(removed), err)
	}
	if n := len(left(t, d.repo)); n != 3 {
		t.Errorf("empty retention left %d of 3", n)
	}

	// a policy that keeps none of a group: an error, nothing forgotten
	d, _ = retentionDaemon(t, config.Retention{KeepTags: []string{"release"}})
	for day := 1; day <= 3; day++ {
		save(t, d.repo, "web1", day, nil, "/srv/www")
	}
	removed, err := d.forget(ctx, now)
	if err == nil || !strings.Contains(err.Error(), "refusing") || len(removed) != 0 {
		t.Errorf("keep_tags without a tagged snapshot: forgot %d, %v", len(removed), err)
	}
	if n := len(left(t, d.repo)); n != 3 {
		t.Errorf("a refused policy left %d of 3", n)
	}

	// keep_within counts from the newest snapshot, not from now
	d, _ = retentionDaemon(t, config.Retention{KeepWithin: span.Calendar{Days: 2}})
	for day := 1; day <= 5; day++ {
		save(t, d.repo, "web1", day, nil, "/srv/www")
	}
	if removed, err := d.forget(ctx, now.AddDate(1, 0, 0)); err != nil || len(removed) != 3 {
		t.Errorf("keep_within 2d: forgot %d, %v; want 3", len(removed), err)
	}
}

// TestForgetKeepsUnreadable: a snapshot object that cannot be read is kept
// and logged, and the policy goes on with the others: the rule of syncd
// forget (retention.Unreadable), not a forget that stops.
func TestForgetKeepsUnreadable(t *testing.T) {
	ctx := context.Background()
	d, logs := retentionDaemon(t, config.Retention{KeepLast: 1})
	for day := 1; day <= 4; day++ {
		save(t, d.repo, "web1", day, nil, "/srv/www")
	}
	snaps, _, err := d.repo.Snapshots(ctx)
	if err != nil {
		t.Fatal(err)
	}
	damaged := chunkstore.SnapshotName(snaps[1].ID()) // January 2
	be := d.repo.Backend()
	if err := be.Remove(ctx, damaged); err != nil {
		t.Fatal(err)
	}
	if err := backend.SaveBytes(ctx, be, damaged, []byte("not a snapshot")); err != nil {
		t.Fatal(err)
	}
	removed, err := d.forget(ctx, time.Date(2026, 2, 1, 0, 0, 0, 0, time.UTC))
	if err != nil || len(removed) != 2 {
		t.Fatalf("forget with an unreadable snapshot: forgot %d, %v; want the 2 readable ones keep_last does not keep", len(removed), err)
	}
	if _, err := be.Stat(ctx, damaged); err != nil {
		t.Errorf("the unreadable snapshot was not kept: %v", err)
	}
	snaps, bad, err := d.repo.Snapshots(ctx)
	if err != nil || len(bad) != 1 || len(snaps) != 1 || snaps[0].Time.Day() != 4 {
		t.Errorf("left %d readable (want January 4 only), %d unreadable (want 1), %v", len(snaps), len(bad), err)
	}
	if !strings.Contains(logs.String(), damaged+" cannot be read, kept (not forgotten)") {
		t.Errorf("the log does not say the unreadable snapshot was kept:\n%s", logs)
	}
}

// TestForgetRetentionLikeRestic: keep_within_*, group_by, tags and paths
// of the config reach the policy.
func TestForgetRetentionLikeRestic(t *testing.T) {
	ctx := context.Background()
	now := time.Date(2026, 2, 1, 0, 0, 0, 0, time.UTC)
	one := ""
	// one group for all paths; only the snapshots tagged nightly and
	// including /srv/www are looked at; the newest of each day within 2 days
	d, _ := retentionDaemon(t, config.Retention{KeepWithinDaily: span.Calendar{Days: 2}, GroupBy: &one,
		Tags: []string{"nightly"}, Paths: []string{"/srv/www"}})
	for day := 1; day <= 5; day++ {
		save(t, d.repo, "web1", day, []string{"nightly"}, "/srv/www", "/srv/data")
		save(t, d.repo, "web1", day, []string{"nightly"}, "/srv/www")
		save(t, d.repo, "web1", day, nil, "/srv/www")           // not tagged: not looked at
		save(t, d.repo, "web1", day, []string{"nightly"}, "/x") // without /srv/www: not looked at
	}
	removed, err := d.forget(ctx, now)
	if err != nil {
		t.Fatal(err)
	}
	// days 4 and 5 (after the cut-off of January 3, 03:00) keep one each of
	// their two snapshots; days 1 to 3 lose both
	if len(removed) != 8 {
		t.Errorf("forgot %d, want 8", len(removed))
	}
	if n := len(left(t, d.repo)); n != 12 {
		t.Errorf("left %d, want 12", n)
	}
}

// TestGroupByConfigAsRestic: what config accepts as group_by is what
// retention.ParseGroupBy reads (config cannot import retention, so it
// checks the value itself).
func TestGroupByConfigAsRestic(t *testing.T) {
	for _, s := range []string{"host", "hosts,path", "paths,tags", "tag", "", ",", "host,", "node", "host, paths", "HOST", "host;paths"} {
		yaml := "node: {name: web1, state_dir: /var/lib/syncd}\nrepository: {url: /srv/b, index_key: /k, retention: {keep_last: 1, group_by: '" + s + "'}}\n"
		_, cerr := config.Parse([]byte(yaml), "t.yaml")
		_, rerr := retention.ParseGroupBy(s)
		if (cerr == nil) != (rerr == nil) {
			t.Errorf("group_by %q: config %v, retention %v", s, cerr, rerr)
		}
	}
}
