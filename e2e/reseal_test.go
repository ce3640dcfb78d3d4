package e2e

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/syncd/syncd/chunkstore/backend"
	"github.com/syncd/syncd/chunkstore/s3"
	"github.com/syncd/syncd/crypto"
	"github.com/syncd/syncd/internal/miniotest"
)

// keyChange is a repository whose data recipient A (r.dataKey) was
// replaced by B: a snapshot, key add B, a snapshot, key remove A, a
// snapshot. Every snapshot after the first deduplicates against the first,
// whose packs are sealed to A only. both holds A and B.
type keyChange struct {
	r                 *repo
	env               []string
	src               string
	keyB, rcptB, both string
}

func newKeyChange(t *testing.T, r *repo, env []string) *keyChange {
	t.Helper()
	kc := &keyChange{r: r, env: env, src: filepath.Join(t.TempDir(), "src")}
	snap := func() {
		t.Helper()
		ok(t, env, "syncd", append(append([]string{"snapshot"}, r.flags("--host", "test")...), kc.src)...)
	}
	writeNoise(t, filepath.Join(kc.src, "kept.bin"), 300000)
	writeNoise(t, filepath.Join(kc.src, "d", "first.bin"), 200000)
	snap()
	kc.keyB = filepath.Join(t.TempDir(), "b.key")
	kc.rcptB = strings.TrimSpace(ok(t, nil, "syncd", "keygen", kc.keyB))
	ok(t, env, "restore", append([]string{"key", "add", "--data-recipient", kc.rcptB}, r.flags()...)...)
	writeNoise(t, filepath.Join(kc.src, "d", "second.bin"), 100000)
	snap()
	ok(t, env, "restore", append([]string{"key", "remove", "--data-recipient", r.recipient}, r.flags()...)...)
	writeNoise(t, filepath.Join(kc.src, "third.bin"), 100000)
	snap()
	a, _ := os.ReadFile(r.dataKey)
	b, _ := os.ReadFile(kc.keyB)
	kc.both = filepath.Join(t.TempDir(), "both.key")
	if err := os.WriteFile(kc.both, append(append(a, '\n'), b...), 0o600); err != nil {
		t.Fatal(err)
	}
	return kc
}

// objects returns the repository's objects under prefix, name → content.
func (kc *keyChange) objects(t *testing.T, prefix string) map[string][]byte {
	t.Helper()
	out := map[string][]byte{}
	if !strings.HasPrefix(kc.r.url, "s3://") {
		for _, name := range repoObjects(t, kc.r, strings.TrimSuffix(prefix, "/")) {
			b, err := os.ReadFile(filepath.Join(kc.r.url, name))
			if err != nil {
				t.Fatal(err)
			}
			out[name] = b
		}
		return out
	}
	for _, kv := range kc.env {
		k, v, _ := strings.Cut(kv, "=")
		t.Setenv(k, v)
	}
	ctx := context.Background()
	be, err := s3.Open(ctx, s3.Config{URL: kc.r.url})
	if err != nil {
		t.Fatal(err)
	}
	defer be.Close()
	err = be.List(ctx, prefix, func(fi backend.Info) error {
		b, err := backend.ReadAll(ctx, be, fi.Name)
		out[fi.Name] = b
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// opens returns the objects under prefix that the age CLI decrypts with
// the identity file key.
func (kc *keyChange) opens(t *testing.T, prefix, key string) map[string]bool {
	t.Helper()
	age := tool(t, "age")
	out := map[string]bool{}
	for name, b := range kc.objects(t, prefix) {
		cmd := exec.Command(age, "-d", "-i", key, "-o", os.DevNull)
		cmd.Stdin = bytes.NewReader(b)
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		if err := cmd.Run(); err == nil {
			out[name] = true
		} else if !strings.Contains(stderr.String(), "no identity matched") {
			t.Fatalf("age -d %s: %v: %s", name, err, stderr.String())
		}
	}
	return out
}

// restoreLatest restores the latest snapshot with the identity file key
// alone (the index key from the sealed one) and returns the result and
// the target.
func (kc *keyChange) restoreLatest(t *testing.T, key string) (result, string) {
	t.Helper()
	target := filepath.Join(t.TempDir(), "r")
	return run(t, kc.env, "restore", "latest", "--repo", kc.r.url, "--identity", key, "--target", target), target
}

// resealJSON runs restore prune --reseal --json with the identity file key
// (and extra flags) and returns what it printed.
func (kc *keyChange) resealJSON(t *testing.T, key string, extra ...string) (st struct {
	DryRun        bool  `json:"dry_run"`
	PacksResealed int   `json:"packs_resealed"`
	BytesResealed int64 `json:"bytes_resealed"`
	Resealed      []struct {
		Type     string
		SealedTo []string `json:"sealed_to"`
		Packs    int
	}
}) {
	t.Helper()
	out := ok(t, kc.env, "restore", append(append([]string{"prune", "--reseal", "--json"}, kc.r.flags("--identity", key)...), extra...)...)
	decode(t, out, &st)
	return st
}

// testReseal: after a key change, the packs written before stay sealed to
// A (A's identity opens them, B's does not, and B alone cannot restore
// even the latest snapshot, which deduplicated against them). --reseal
// without --identity is a usage error; with --dry-run it prints what it
// would rewrite and writes nothing; then it reseals them: A's identity
// opens no pack and no index object, B's alone restores every snapshot,
// verify --read-data passes, and a second run reseals nothing.
func testReseal(t *testing.T, kc *keyChange) {
	r := kc.r
	fpA := crypto.Fingerprint(r.recipient)
	oldA, byB := kc.opens(t, "data/", r.dataKey), kc.opens(t, "data/", kc.keyB)
	onlyA := 0
	for name := range oldA {
		if !byB[name] {
			onlyA++
		}
	}
	if onlyA == 0 || len(byB) == 0 {
		t.Fatalf("before the reseal: %d content packs open with A only, %d with B; want some each", onlyA, len(byB))
	}
	if res, _ := kc.restoreLatest(t, kc.keyB); res.code == 0 || !strings.Contains(res.stderr, "does not open") {
		t.Errorf("restore latest with B alone before the reseal: %s; want a failure, the identity does not open a pack", res)
	}

	res := run(t, kc.env, "restore", append([]string{"prune", "--reseal"}, r.flags()...)...)
	oneLine(t, "--reseal without --identity", res, 2, "--reseal", "--identity")

	before := kc.objects(t, "")
	res = run(t, kc.env, "restore", append([]string{"prune", "--reseal", "--dry-run"}, r.flags("--identity", kc.both)...)...)
	if res.code != 0 || !strings.Contains(res.stdout, "would reseal ") ||
		!strings.Contains(res.stdout, "content packs") || !strings.Contains(res.stdout, "sealed to "+fpA) {
		t.Errorf("reseal --dry-run: %s; want what it would reseal, the content packs sealed to %s", res, fpA)
	}
	dry := kc.resealJSON(t, kc.both, "--dry-run")
	if after := kc.objects(t, ""); !sameObjects(before, after) {
		t.Errorf("reseal --dry-run changed the repository: %d objects before, %d after", len(before), len(after))
	}
	if !dry.DryRun || dry.PacksResealed < len(oldA) || dry.BytesResealed == 0 || len(dry.Resealed) == 0 {
		t.Errorf("reseal --dry-run --json: %+v; want at least the %d content packs A opens", dry, len(oldA))
	}
	if st := kc.resealJSON(t, kc.both, "--dry-run"); st.PacksResealed != dry.PacksResealed {
		t.Errorf("a second dry run would reseal %d packs, the first %d", st.PacksResealed, dry.PacksResealed)
	}

	st := kc.resealJSON(t, kc.both)
	if st.PacksResealed != dry.PacksResealed || st.BytesResealed != dry.BytesResealed {
		t.Errorf("resealed %d packs, %d bytes; the dry run said %d, %d", st.PacksResealed, st.BytesResealed, dry.PacksResealed, dry.BytesResealed)
	}
	for _, prefix := range []string{"data/", "tree/", "index/"} {
		if byA := kc.opens(t, prefix, r.dataKey); len(byA) > 0 {
			t.Errorf("after the reseal A's identity opens %d objects under %s: %v", len(byA), prefix, byA)
		}
	}
	if n, all := len(kc.opens(t, "data/", kc.keyB)), len(kc.objects(t, "data/")); n != all {
		t.Errorf("B's identity opens %d of the %d content packs", n, all)
	}
	res, target := kc.restoreLatest(t, kc.keyB)
	if res.code != 0 {
		t.Fatalf("restore latest with B alone after the reseal: %s", res)
	}
	sameTree(t, kc.src, filepath.Join(target, kc.src))
	for _, id := range snapshotsJSONEnv(t, r, kc.env) {
		ok(t, kc.env, "restore", id, "--repo", r.url, "--identity", kc.keyB, "--target", filepath.Join(t.TempDir(), id))
	}
	res = run(t, kc.env, "restore", append([]string{"latest", "--target", filepath.Join(t.TempDir(), "a")}, r.flags("--identity", r.dataKey)...)...)
	if res.code == 0 || !strings.Contains(res.stderr, "does not open") {
		t.Errorf("restore with A after the reseal: %s; want a failure, the identity does not open a pack", res)
	}
	ok(t, kc.env, "restore", append([]string{"verify", "--read-data"}, r.flags("--identity", kc.keyB)...)...)
	if again := kc.resealJSON(t, kc.keyB); again.PacksResealed != 0 {
		t.Errorf("a second reseal resealed %d packs, want 0", again.PacksResealed)
	}
}

// sameObjects reports whether two listings hold the same names and bytes.
func sameObjects(a, b map[string][]byte) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || !bytes.Equal(v, w) {
			return false
		}
	}
	return true
}

func TestResealLocal(t *testing.T) {
	testReseal(t, newKeyChange(t, newRepo(t), nil))
}

func TestResealS3(t *testing.T) {
	srv := miniotest.Start(t)
	r, env := newS3Repo(t, srv, "s3://backups/web")
	testReseal(t, newKeyChange(t, r, env))
}

// kill -9 at several points of a reseal: the repository verifies and
// restores with the two identities, and a second reseal completes: then
// A's identity opens no pack and B's alone restores.
func TestResealKilled(t *testing.T) {
	for _, at := range []string{"pack written:1", "index written:1", "index removed:1", "pack deleted:1"} {
		t.Run(strings.ReplaceAll(at, " ", "_"), func(t *testing.T) {
			kc := newKeyChange(t, newRepo(t), nil)
			r := kc.r
			res := run(t, []string{"SYNCD_TEST_PRUNE_KILL=" + at}, "restore",
				append([]string{"prune", "--reseal"}, r.flags("--identity", kc.both)...)...)
			if res.code != -1 {
				t.Fatalf("reseal was not killed at %q: %s", at, res)
			}
			ok(t, nil, "restore", append([]string{"verify", "--read-data"}, r.flags("--identity", kc.both)...)...)
			if res, target := kc.restoreLatest(t, kc.both); res.code != 0 {
				t.Fatalf("restore after the kill: %s", res)
			} else {
				sameTree(t, kc.src, filepath.Join(target, kc.src))
			}
			kc.resealJSON(t, kc.both)
			for _, prefix := range []string{"data/", "tree/", "index/"} {
				if byA := kc.opens(t, prefix, r.dataKey); len(byA) > 0 {
					t.Errorf("after the second reseal A's identity opens %v", byA)
				}
			}
			res, target := kc.restoreLatest(t, kc.keyB)
			if res.code != 0 {
				t.Fatalf("restore with B after the second reseal: %s", res)
			}
			sameTree(t, kc.src, filepath.Join(target, kc.src))
			out := ok(t, nil, "restore", append([]string{"verify", "--read-data"}, r.flags("--identity", kc.keyB)...)...)
			if !strings.Contains(out, "; 0 unreferenced packs") {
				t.Errorf("verify after the second reseal: %s", out)
			}
			if locks := repoObjects(t, r, "locks"); len(locks) != 0 {
				t.Errorf("locks left: %v", locks)
			}
		})
	}
}
