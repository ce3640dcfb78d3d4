package main

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestMinioBackend starts the runner's MinIO, makes a repository location,
// lets restic init a repository there (with only the backend's environment)
// and checks Size and Remove. It skips when bin/minio or bin/restic is not
// installed (make tools).
func TestMinioBackend(t *testing.T) {
	bin, err := filepath.Abs(filepath.Join("..", "..", "..", "bin", "minio"))
	if err != nil {
		t.Fatal(err)
	}
	restic := filepath.Join(filepath.Dir(bin), "restic")
	for _, p := range []string{bin, restic} {
		if _, err := os.Stat(p); err != nil {
			if os.Getenv("CI") == "true" {
				t.Fatalf("%v: required under CI (make tools)", err)
			}
			t.Skipf("%v (not CI; make tools)", err)
		}
	}
	ctx := context.Background()
	m, err := startMinio(ctx, bin, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer m.stop()
	be := minioBackend(m)
	r, err := be.Repo(ctx, "restic", "t1")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(r.URL, "s3:"+m.endpoint+"/bench-restic-t1/") {
		t.Errorf("restic URL %q", r.URL)
	}
	if n, err := r.Size(ctx); err != nil || n != 0 {
		t.Fatalf("size of a new repository = %d, %v; want 0", n, err)
	}
	cmd := exec.Command(restic, "-r", r.URL, "init")
	cmd.Env = append([]string{"HOME=" + t.TempDir(), "RESTIC_PASSWORD=x", "RESTIC_CACHE_DIR=" + t.TempDir()}, r.Env...)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("restic init: %v\n%s", err, out)
	}
	if n, err := r.Size(ctx); err != nil || n == 0 {
		t.Fatalf("size after restic init = %d, %v; want > 0", n, err)
	}
	o, err := be.Repo(ctx, "ours", "t1")
	if err != nil {
		t.Fatal(err)
	}
	if o.URL != "s3://bench-ours-t1/"+repoPrefix {
		t.Errorf("ours URL %q", o.URL)
	}
	if err := r.Remove(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := r.Size(ctx); err == nil {
		t.Error("the bucket is still there after Remove")
	}
	if err := r.Remove(ctx); err != nil {
		t.Fatalf("removing a removed repository: %v", err)
	}
	m.stop()
	if err := m.alive(); err == nil {
		t.Error("MinIO still alive after stop")
	}
}
