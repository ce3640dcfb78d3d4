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
	"github.com/syncd/syncd/config"
	"github.com/syncd/syncd/internal/repotest"
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
	d, _ = retentionDaemon(t, config.Retention{KeepWithin: "2d"})
	for day := 1; day <= 5; day++ {
		save(t, d.repo, "web1", day, nil, "/srv/www")
	}
	if removed, err := d.forget(ctx, now.AddDate(1, 0, 0)); err != nil || len(removed) != 3 {
		t.Errorf("keep_within 2d: forgot %d, %v; want 3", len(removed), err)
	}
}
