package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/syncd/syncd/chunkstore/backend"
	"github.com/syncd/syncd/internal/cli"
	"github.com/syncd/syncd/internal/miniotest"
)

// The tests here run the scenarios of docs/RECOVERY.md's runbook with the
// document's own commands (runbook_helpers_test.go) against three real
// nodes and a MinIO repository, and check what the document promises.

// runbookFleet is three send-receive nodes, web1 to web3, sharing folder
// "www" and the repository s3://backups/web on a MinIO of their own.
type runbookFleet struct {
	srv   *miniotest.Server
	r     *repo
	env   []string
	nodes []*mnode
}

func newRunbookFleet(t *testing.T, names ...string) *runbookFleet {
	t.Helper()
	srv := miniotest.Start(t)
	r, env := newS3Repo(t, srv, "s3://backups/web")
	f := &runbookFleet{srv: srv, r: r, env: env}
	f.nodes = mesh(t, "send-receive", names...)
	for _, n := range f.nodes {
		n.fid, n.env = "www", env
		key := filepath.Join(n.dir, "index.key") // each node its own copy, as /etc/syncd/index.key
		b, err := os.ReadFile(r.indexKey)
		if err != nil {
			t.Fatal(err)
		}
		os.WriteFile(key, b, 0o600)
		n.setRepository("s3://backups/web", key)
	}
	return f
}

// setRepository points n's configuration at the repository url with the
// index key file key.
func (n *mnode) setRepository(url, key string) {
	n.extraYAML = fmt.Sprintf("repository:\n  url: %s\n  index_key: %s\n  data_recipients: []\n", url, key)
	n.writeConfig()
}

// node returns the fleet's node called name.
func (f *runbookFleet) node(name string) *mnode {
	for _, n := range f.nodes {
		if n.name == name {
			return n
		}
	}
	panic("no node " + name)
}

// peerIDs is the edit step that puts every node's current ID (syncd id,
// a new one for a new state directory) in the others' peers.
func (f *runbookFleet) peerIDs(t *testing.T) func() {
	return func() {
		for _, n := range f.nodes {
			n.id = strings.TrimSpace(ok(t, nil, "syncd", "id", "--config", n.cfg))
		}
		for _, n := range f.nodes {
			var ps []mpeer
			for _, o := range f.nodes {
				if o != n {
					ps = append(ps, o.asPeer())
				}
			}
			n.setPeers(ps...)
		}
	}
}

// site writes a small site on n: count PHP files over a few directories,
// and an upload of a few hundred KiB.
func site(n *mnode, count int) {
	for i := range count {
		n.write(fmt.Sprintf("wp-content/plugins/p%d/file%d.php", i%4, i), []byte(strings.Repeat(fmt.Sprintf("<?php // %d\n", i), 50+i)))
	}
	n.write("wp-content/uploads/photo.jpg", []byte(strings.Repeat("jpeg", 100_000)))
	n.write("wp-config.php", []byte("<?php define('DB_NAME', 'wp');\n"))
}

// snapshotted is a fleet of web1 alone, running, with a site of count
// files in its first snapshot.
func snapshotted(t *testing.T, count int) (*runbookFleet, *mnode) {
	f := newRunbookFleet(t, "web1")
	web1 := f.node("web1")
	web1.start()
	site(web1, count)
	web1.waitIndexed()
	ok(t, f.env, "syncd", "snapshot", "--config", web1.cfg)
	return f, web1
}

// conflictCopies lists the conflict copies on the nodes.
func conflictCopies(t *testing.T, ns ...*mnode) []string {
	var out []string
	for _, n := range ns {
		filepath.WalkDir(n.folder, func(p string, d os.DirEntry, err error) error {
			if err == nil && strings.Contains(d.Name(), ".sync-conflict-") {
				out = append(out, n.name+":"+p)
			}
			return nil
		})
	}
	return out
}

// lose kills n and takes its disk: folder and state directory gone; its
// configuration stays (configuration management brings it back).
func lose(n *mnode) {
	n.stop(true)
	for _, p := range []string{n.folder, n.state} {
		if err := os.RemoveAll(p); err != nil {
			n.t.Fatal(err)
		}
	}
}

// waitSameStep is the wait step "every node holds the same tree".
func (f *runbookFleet) waitSameStep(t *testing.T) func() {
	return func() { waitSame(t, f.nodes...) }
}

func TestRunbookReplaceNode(t *testing.T) {
	f := newRunbookFleet(t, "web1", "web2", "web3")
	web1, web2, web3 := f.node("web1"), f.node("web2"), f.node("web3")
	for _, n := range f.nodes {
		n.start()
	}
	site(web1, 20)
	waitSame(t, f.nodes...)
	ok(t, f.env, "syncd", "snapshot", "--config", web2.cfg)
	// changes after the snapshot: the replacement must get them from its
	// peers, and must not bring back what they deleted
	web1.write("wp-content/plugins/p0/file0.php", []byte("<?php // changed after the snapshot\n"))
	web1.write("wp-content/plugins/p1/new.php", []byte("<?php // new after the snapshot\n"))
	if err := os.Remove(web1.path("wp-content/plugins/p2/file2.php")); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(web1.path("wp-content/plugins/p3/file3.php"), web1.path("wp-content/plugins/p3/renamed.php")); err != nil {
		t.Fatal(err)
	}
	want := waitSame(t, f.nodes...)
	lose(web2)

	rb := newRunbook(t, "replace-node", f.env, f.r, f.nodes...)
	rb.steps["# edit: put web2's new ID (syncd id) in the peers of web1 and web3"] = f.peerIDs(t)
	rb.steps["# wait until: syncd status on web2 shows every peer connected and nothing to receive"] = func() {
		waitSame(t, f.nodes...)
		if !waitFor(converge, func() bool {
			st := web2.status()
			p1, ok1 := st.peer("web1")
			p3, ok3 := st.peer("web3")
			return ok1 && ok3 && p1.Connected && p3.Connected
		}) {
			t.Fatalf("web2 not connected to its peers: %+v", web2.status())
		}
	}
	rb.run()

	got := waitSame(t, f.nodes...)
	if d := treeDiff(want, got, "the fleet before", "the fleet after", 10); d != "" {
		t.Errorf("the fleet's tree changed by replacing web2:\n%s", d)
	}
	for _, gone := range []string{"wp-content/plugins/p2/file2.php", "wp-content/plugins/p3/file3.php"} {
		if _, ok := got[gone]; ok {
			t.Errorf("%s, deleted after the snapshot, came back from the restored node", gone)
		}
	}
	if c := conflictCopies(t, web1, web2, web3); len(c) > 0 {
		t.Errorf("conflict copies after replacing a node: %v", c)
	}
}

func TestRunbookNewFleet(t *testing.T) {
	f := newRunbookFleet(t, "web1", "web2", "web3")
	for _, n := range f.nodes {
		n.start()
	}
	site(f.node("web1"), 12)
	want := waitSame(t, f.nodes...)
	ok(t, f.env, "syncd", "snapshot", "--config", f.node("web1").cfg)
	for _, n := range f.nodes {
		lose(n)
	}

	rb := newRunbook(t, "new-fleet", f.env, f.r, f.nodes...)
	rb.steps["# edit: put each new node's ID (syncd id) in the peers of the others"] = f.peerIDs(t)
	rb.steps["# wait until: every node holds the same tree"] = f.waitSameStep(t)
	rb.run()

	if d := treeDiff(want, waitSame(t, f.nodes...), "the old fleet", "the new fleet", 10); d != "" {
		t.Errorf("the new fleet does not hold the old fleet's tree:\n%s", d)
	}
	if c := conflictCopies(t, f.nodes...); len(c) > 0 {
		t.Errorf("conflict copies in the new fleet: %v", c)
	}
}

func TestRunbookRollback(t *testing.T) {
	f := newRunbookFleet(t, "web1", "web2", "web3")
	web1 := f.node("web1")
	for _, n := range f.nodes {
		n.start()
	}
	site(web1, 20)
	want := waitSame(t, f.nodes...)
	ok(t, f.env, "syncd", "snapshot", "--config", web1.cfg)
	good := time.Now() // after the snapshot, before the damage
	// ransomware: every file replaced by an encrypted copy, and a note
	for rel := range want {
		p := web1.path(rel)
		if fi, err := os.Lstat(p); err != nil || !fi.Mode().IsRegular() {
			continue
		}
		web1.write(rel+".locked", []byte("encrypted "+rel))
		if err := os.Remove(p); err != nil {
			t.Fatal(err)
		}
	}
	web1.write("README-DECRYPT.txt", []byte("send bitcoin"))
	damaged := waitSame(t, f.nodes...)
	if _, ok := damaged["README-DECRYPT.txt"]; !ok {
		t.Fatal("the damage did not spread: the scenario tests nothing")
	}

	rb := newRunbook(t, "rollback", f.env, f.r, f.nodes...)
	// to the nanosecond: a snapshot of the damage may fall in the same
	// second as the good one
	rb.subst = map[string]string{"2026-12-01 14:00": good.Format(time.RFC3339Nano)}
	rb.steps["# wait until: every node holds the same tree"] = f.waitSameStep(t)
	rb.run()

	if d := treeDiff(want, waitSame(t, f.nodes...), "before the damage", "after the rollback", 10); d != "" {
		t.Errorf("the fleet does not hold the tree as it was before the damage:\n%s", d)
	}
	if _, err := os.Stat(filepath.Join(web1.folder+".damaged", "README-DECRYPT.txt")); err != nil {
		t.Errorf("the damaged tree was not kept beside the folder: %v", err)
	}
	if c := conflictCopies(t, f.nodes...); len(c) > 0 {
		t.Errorf("conflict copies after the rollback: %v", c)
	}
}

// snapshotCount is how many snapshots restore snapshots lists in url.
func snapshotCount(t *testing.T, env []string, url, key string) int {
	var list []json.RawMessage
	out := ok(t, env, "restore", "snapshots", "--json", "--repo", url, "--index-key", key)
	if err := json.Unmarshal([]byte(out), &list); err != nil {
		t.Fatalf("restore snapshots --json: %v\n%s", err, out)
	}
	return len(list)
}

// newRepoStep is the edit step that gives every node the index key in the
// runbook's working directory and the repository url.
func newRepoStep(t *testing.T, rb *runbook, key, url string, ns ...*mnode) func() {
	return func() {
		b, err := os.ReadFile(filepath.Join(rb.work, key))
		if err != nil {
			t.Fatalf("the runbook made no %s: %v", key, err)
		}
		for _, n := range ns {
			p := filepath.Join(n.dir, "index.key")
			os.Remove(p)
			if err := os.WriteFile(p, b, 0o600); err != nil {
				t.Fatal(err)
			}
			n.setRepository(url, p)
		}
	}
}

func TestRunbookRotate(t *testing.T) {
	f, web1 := snapshotted(t, 5)
	before := snapshotCount(t, f.env, "s3://backups/web", f.r.indexKey)

	rb := newRunbook(t, "rotate", f.env, f.r, f.nodes...)
	rb.steps["# edit: on every node, install index-2.key as /etc/syncd/index.key (mode 0600) and set repository.url to s3://backups/web-2"] =
		newRepoStep(t, rb, "index-2.key", "s3://backups/web-2", web1)
	rb.run()

	if got := snapshotCount(t, f.env, "s3://backups/web", f.r.indexKey); got != before {
		t.Errorf("the old repository has %d snapshots after the rotation, %d before", got, before)
	}
	res := run(t, f.env, "restore", "snapshots", "--repo", "s3://backups/web-2", "--index-key", f.r.indexKey)
	if res.code == 0 {
		t.Errorf("the leaked index key opens the new repository: %s", res)
	}
	target := filepath.Join(t.TempDir(), "r")
	ok(t, f.env, "restore", "latest", "--repo", "s3://backups/web-2", "--identity", f.r.dataKey, "--target", target)
	sameTree(t, web1.folder, filepath.Join(target, web1.folder))
}

func TestRunbookIdentityLost(t *testing.T) {
	f, web1 := snapshotted(t, 5)
	rb := newRunbook(t, "identity-lost", f.env, f.r, f.nodes...)
	os.Remove(filepath.Join(rb.work, "data.key")) // every copy
	os.Remove(f.r.dataKey)
	rb.steps["# edit: on every node, install index-3.key as /etc/syncd/index.key (mode 0600) and set repository.url to s3://backups/web-3"] =
		newRepoStep(t, rb, "index-3.key", "s3://backups/web-3", web1)
	rb.run()

	target := filepath.Join(t.TempDir(), "r")
	ok(t, f.env, "restore", "latest", "--repo", "s3://backups/web-3", "--identity", filepath.Join(rb.work, "data-3.key"), "--target", target)
	sameTree(t, web1.folder, filepath.Join(target, web1.folder))
}

func TestRunbookDamaged(t *testing.T) {
	f, web1 := snapshotted(t, 8)

	// A data pack lost (deleted by hand, a bucket rule, a bad disk).
	for _, kv := range f.env {
		k, v, _ := strings.Cut(kv, "=")
		t.Setenv(k, v)
	}
	ctx := context.Background()
	be, err := cli.Backend(ctx, "s3://backups/web", false)
	if err != nil {
		t.Fatal(err)
	}
	defer be.Close()
	var packs []string
	be.List(ctx, "data/", func(fi backend.Info) error { packs = append(packs, fi.Name); return nil })
	if len(packs) == 0 {
		t.Fatal("no data pack to damage")
	}
	if err := be.Remove(ctx, packs[0]); err != nil {
		t.Fatal(err)
	}

	rb := newRunbook(t, "damaged", f.env, f.r, f.nodes...)
	rb.run()

	target := filepath.Join(t.TempDir(), "r")
	ok(t, f.env, "restore", "latest", "--repo", "s3://backups/web", "--identity", f.r.dataKey, "--target", target)
	sameTree(t, web1.folder, filepath.Join(target, web1.folder))
}

func TestRunbookDrill(t *testing.T) {
	f, web1 := snapshotted(t, 5)
	web1.write("wp-content/plugins/p1/file1.php", []byte("<?php // changed since the snapshot\n"))
	web1.waitIndexed()

	rb := newRunbook(t, "drill", f.env, f.r, f.nodes...)
	rb.opsPaths = "web1"
	rb.steps["# wait until: the daemons have read the drill record (after their next snapshot, or within 5 minutes)"] = func() {
		ok(t, f.env, "syncd", "snapshot", "--config", web1.cfg)
		if !waitFor(converge, func() bool {
			return strings.Contains(ok(t, nil, "syncd", "status", "--config", web1.cfg), "last drill ok")
		}) {
			t.Fatalf("syncd status does not show the drill: %s", ok(t, nil, "syncd", "status", "--config", web1.cfg))
		}
	}
	rb.run()

	prom, err := os.ReadFile(filepath.Join(rb.work, "drill.prom"))
	if err != nil || !strings.Contains(string(prom), "syncd_restore_drill_ok 1") {
		t.Errorf("drill.prom: %v\n%s", err, prom)
	}
}
