package e2e

import (
	"bytes"
	"encoding/json"
	"errors"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/syncd/syncd/internal/miniotest"
)

// TestRepositoryVanished moves the repository of a running daemon away, as
// a backup disk that is not mounted: the snapshot fails with the reason,
// exit 1, in the daemon's status too, and nothing of the repository is made
// again. Once it is back, the next snapshot is ok.
func TestRepositoryVanished(t *testing.T) {
	n := newNode(t)
	n.write("index.php", "<?php echo 1;")
	n.start()
	ok(t, nil, "syncd", "snapshot", "--config", n.cfg)

	away := n.r.url + ".away"
	if err := os.Rename(n.r.url, away); err != nil {
		t.Fatal(err)
	}
	res := run(t, nil, "syncd", "snapshot", "--config", n.cfg)
	oneLine(t, "snapshot with the repository gone", res, 1, n.r.url, "config missing: not mounted or deleted?")
	if _, err := os.Lstat(n.r.url); !errors.Is(err, fs.ErrNotExist) {
		ents, _ := os.ReadDir(n.r.url)
		t.Fatalf("the daemon made the repository directory again: %v", ents)
	}
	last, _ := n.status()["last_snapshot"].(map[string]any)
	if last == nil || last["result"] != "failed" || !strings.Contains(last["error"].(string), "config missing: not mounted or deleted?") {
		t.Errorf("status last_snapshot = %v, want failed with the reason", last)
	}
	// An empty directory where the disk mounts is no repository either.
	if err := os.Mkdir(n.r.url, 0o700); err != nil {
		t.Fatal(err)
	}
	res = run(t, nil, "syncd", "snapshot", "--config", n.cfg)
	oneLine(t, "snapshot into an empty directory", res, 1, "config missing")
	if ents, _ := os.ReadDir(n.r.url); len(ents) != 0 {
		t.Errorf("the daemon wrote into the empty directory: %v", ents)
	}
	os.Remove(n.r.url)

	if err := os.Rename(away, n.r.url); err != nil {
		t.Fatal(err)
	}
	n.write("index.php", "<?php echo 2;")
	n.settle()
	ok(t, nil, "syncd", "snapshot", "--config", n.cfg)
	last, _ = n.status()["last_snapshot"].(map[string]any)
	if last == nil || last["result"] != "ok" {
		t.Errorf("status last_snapshot once the repository is back = %v, want ok", last)
	}
	target := t.TempDir()
	ok(t, nil, "restore", append([]string{"latest"}, n.r.flags("--identity", n.r.dataKey, "--target", target)...)...)
	if got, _ := os.ReadFile(filepath.Join(target, n.folder, "index.php")); string(got) != "<?php echo 2;" {
		t.Errorf("restored index.php = %q, want the content after the repository came back", got)
	}

	// syncd snapshot PATH fails the same way.
	if err := os.Rename(n.r.url, away); err != nil {
		t.Fatal(err)
	}
	res = run(t, nil, "syncd", append([]string{"snapshot"}, append(n.r.flags(), n.folder)...)...)
	oneLine(t, "syncd snapshot PATH with the repository gone", res, 1, n.r.url, "not mounted or deleted?")
	if _, err := os.Lstat(n.r.url); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("syncd snapshot made the repository directory again")
	}
}

// TestRestoreLatestDamaged damages the newest snapshot object: "latest"
// is an error naming it (exit 1), never an older snapshot, here of another
// path, restored in its place.
func TestRestoreLatestDamaged(t *testing.T) {
	r := newRepo(t)
	a, b := filepath.Join(t.TempDir(), "a"), filepath.Join(t.TempDir(), "b")
	for _, d := range []string{a, b} {
		os.MkdirAll(d, 0o755)
		os.WriteFile(filepath.Join(d, "f"), []byte(d), 0o644)
	}
	r.snapshot(t, a)
	newest := r.snapshot(t, b)
	var damaged string
	for _, p := range objects(t, r, "snapshots") {
		if strings.HasPrefix(filepath.Base(p), newest) {
			damaged = p
		}
	}
	if damaged == "" {
		t.Fatalf("no snapshot object for %s", newest)
	}
	flipByte(t, damaged)
	name := "snapshots/" + filepath.Base(damaged)

	target := t.TempDir()
	res := run(t, nil, "restore", append([]string{"latest"}, r.flags("--identity", r.dataKey, "--target", target)...)...)
	oneLine(t, "restore latest", res, 1, name)
	if ents, _ := os.ReadDir(target); len(ents) != 0 {
		t.Errorf("restore latest wrote %v", ents)
	}
	res = run(t, nil, "restore", append([]string{"ls"}, r.flags("latest")...)...)
	oneLine(t, "restore ls latest", res, 1, name)
	res = run(t, nil, "restore", append([]string{"ls"}, r.flags(newest)...)...)
	oneLine(t, "restore ls of the damaged snapshot's ID", res, 1, name)
}

// TestRecoveryWithDataIdentityOnly follows docs/RECOVERY.md with the data
// identity alone (the index key lost): the repository's sealed index key
// opens it, and the restore equals the source. A repository made before
// the sealed key existed gets it from its next snapshot; until then the
// error says what to do.
func TestRecoveryWithDataIdentityOnly(t *testing.T) {
	r := newRepo(t)
	src := filepath.Join(t.TempDir(), "src")
	makeAwkward(t, src)
	r.snapshot(t, src)
	env := []string{"SYNCD_REPO=" + r.url, "SYNCD_IDENTITY=" + r.dataKey, "SYNCD_INDEX_KEY="}

	// As RECOVERY.md: restore snapshots, restore ls latest, restore latest.
	out := ok(t, env, "restore", "snapshots")
	if !strings.Contains(out, "1 snapshot(s)") {
		t.Errorf("restore snapshots: %s", out)
	}
	out = ok(t, env, "restore", "ls", "latest", src)
	if !strings.Contains(out, src) {
		t.Errorf("restore ls latest %s: %s", src, out)
	}
	target := filepath.Join(t.TempDir(), "restore")
	ok(t, env, "restore", "latest", "--target", target)
	sameTree(t, src, filepath.Join(target, src))
	ok(t, env, "restore", "verify", "--read-data")

	// The index key back with age alone, as RECOVERY.md says.
	key := filepath.Join(t.TempDir(), "index.key")
	ok(t, nil, tool(t, "age"), "-d", "-i", r.dataKey, "-o", key, filepath.Join(r.url, "keys", "index-sealed"))
	os.Chmod(key, 0o600)
	ok(t, []string{"SYNCD_INDEX_KEY=" + key, "SYNCD_IDENTITY="}, "restore", "snapshots", "--repo", r.url)

	// A repository from before the sealed key.
	sealed := filepath.Join(r.url, "keys", "index-sealed")
	os.Chmod(sealed, 0o600)
	if err := os.Remove(sealed); err != nil {
		t.Fatal(err)
	}
	res := run(t, env, "restore", "latest", "--target", t.TempDir())
	oneLine(t, "restore without index key nor sealed key", res, 1, "no index key given and the repository holds no sealed index key: use --index-key")
	r.snapshot(t, src) // a write session with the index key writes it
	target = filepath.Join(t.TempDir(), "restore")
	ok(t, env, "restore", "latest", "--target", target)
	sameTree(t, src, filepath.Join(target, src))

	// Another identity: refused, one line.
	other := filepath.Join(t.TempDir(), "other.key")
	ok(t, nil, "syncd", "keygen", other)
	res = run(t, []string{"SYNCD_REPO=" + r.url, "SYNCD_IDENTITY=" + other, "SYNCD_INDEX_KEY="}, "restore", "snapshots")
	oneLine(t, "restore with another identity", res, 1, other, "index-sealed")
}

// TestRepoS3Spelling gives restic's spelling s3:BUCKET/PATH: it is the S3
// repository s3://BUCKET/PATH, never a local directory named "s3:BUCKET".
func TestRepoS3Spelling(t *testing.T) {
	srv := miniotest.Start(t)
	r, env := newS3Repo(t, srv, "s3:backups/web1")
	cwd := t.TempDir()
	runIn := func(args ...string) result {
		t.Helper()
		cmd := exec.Command(filepath.Join(binDir, args[0]), args[1:]...)
		cmd.Dir, cmd.Env = cwd, append(os.Environ(), env...)
		var out, errb bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &errb
		err := cmd.Run()
		var ee *exec.ExitError
		if err != nil && !errors.As(err, &ee) {
			t.Fatal(err)
		}
		return result{out.String(), errb.String(), cmd.ProcessState.ExitCode()}
	}
	src := filepath.Join(t.TempDir(), "src")
	makeAwkward(t, src)
	if res := runIn(append([]string{"syncd", "snapshot"}, append(r.flags(), src)...)...); res.code != 0 {
		t.Fatalf("snapshot to s3:backups/web1: %s", res)
	}
	res := runIn("restore", "snapshots", "--json", "--repo", "s3://backups/web1", "--index-key", r.indexKey)
	var list []map[string]any
	if res.code != 0 || json.Unmarshal([]byte(res.stdout), &list) != nil || len(list) != 1 {
		t.Fatalf("s3://backups/web1 does not hold the snapshot written to s3:backups/web1: %s", res)
	}
	for _, bad := range []string{"s3:", "s3:/abs"} {
		res := runIn("syncd", "init", "--repo", bad, "--index-key", r.indexKey, "--data-recipient", r.recipient)
		oneLine(t, "init --repo "+bad, res, 2, "s3://BUCKET")
	}
	if ents, _ := os.ReadDir(cwd); len(ents) != 0 {
		t.Errorf("s3: repositories made local files: %v", ents)
	}
	if _, err := os.Lstat("s3:backups"); err == nil {
		t.Errorf("a directory s3:backups was made in the test's directory")
	}
}
