package e2e

import (
	"bytes"
	"crypto/rand"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// statsRow is one row of restore stats --json.
type statsRow struct {
	Host        string  `json:"host"`
	Snapshots   int     `json:"snapshots"`
	Files       int64   `json:"files"`
	Bytes       int64   `json:"bytes"`
	Blobs       int64   `json:"blobs"`
	RawBytes    int64   `json:"raw_bytes"`
	StoredBytes int64   `json:"stored_bytes"`
	Ratio       float64 `json:"dedup_ratio"`
	Missing     int64   `json:"missing_blobs"`
}

type statsOut struct {
	Hosts []statsRow `json:"hosts"`
	Total statsRow   `json:"total"`
}

func statsOf(t *testing.T, r *repo, snaps ...string) statsOut {
	t.Helper()
	out := ok(t, nil, "restore", append(append([]string{"stats", "--json"}, r.flags()...), snaps...)...)
	var s statsOut
	if err := json.Unmarshal([]byte(out), &s); err != nil {
		t.Fatalf("stats --json: %v in %q", err, out)
	}
	return s
}

// indexSums reads every index object with the age and zstd CLIs, nothing
// of ours, and sums up its blobs: how many, their stored and raw lengths.
func indexSums(t *testing.T, r *repo) (blobs, stored, raw int64) {
	t.Helper()
	age, zstd := tool(t, "age"), tool(t, "zstd")
	objs, _ := filepath.Glob(filepath.Join(r.url, "index", "*"))
	seen := map[string]bool{}
	for _, obj := range objs {
		var out bytes.Buffer
		cmd := exec.Command("sh", "-c", `"$AGE" -d -i "$KEY" "$OBJ" | "$ZSTD" -d`)
		cmd.Env = append(os.Environ(), "AGE="+age, "ZSTD="+zstd, "KEY="+r.indexKey, "OBJ="+obj)
		cmd.Stdout, cmd.Stderr = &out, os.Stderr
		if err := cmd.Run(); err != nil {
			t.Fatalf("decrypt %s: %v", obj, err)
		}
		var idx struct {
			Packs []struct {
				Blobs []struct {
					ID        string `json:"id"`
					Length    int64  `json:"length"`
					RawLength int64  `json:"raw_length"`
				} `json:"blobs"`
			} `json:"packs"`
		}
		if err := json.Unmarshal(out.Bytes(), &idx); err != nil {
			t.Fatalf("index %s: %v", obj, err)
		}
		for _, p := range idx.Packs {
			for _, b := range p.Blobs {
				if !seen[b.ID] {
					seen[b.ID] = true
					blobs, stored, raw = blobs+1, stored+b.Length, raw+b.RawLength
				}
			}
		}
	}
	return blobs, stored, raw
}

func TestStatsRestoreSizeStoredSizeAndHosts(t *testing.T) {
	r := newRepo(t)
	src := filepath.Join(t.TempDir(), "src")
	old := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	random := make([]byte, 300<<10)
	rand.Read(random)
	write(t, filepath.Join(src, "a.bin"), string(random), 0o644, old)
	write(t, filepath.Join(src, "dir", "copy.bin"), string(random), 0o644, old) // the same chunks: stored once
	if err := os.Link(filepath.Join(src, "a.bin"), filepath.Join(src, "dir", "hard.bin")); err != nil {
		t.Fatal(err) // restored as a link to a.bin: counted once
	}
	text := strings.Repeat("the same line, compressible\n", 4000)
	write(t, filepath.Join(src, "small.txt"), text, 0o644, old)
	files, size := int64(3), int64(2*len(random)+len(text))

	first := r.snapshot(t, src)
	blobs, stored, raw := indexSums(t, r)
	s := statsOf(t, r)
	want := statsRow{Host: "test", Snapshots: 1, Files: files, Bytes: size, Blobs: blobs, RawBytes: raw, StoredBytes: stored,
		Ratio: float64(size) / float64(stored)}
	if len(s.Hosts) != 1 || s.Hosts[0] != want {
		t.Errorf("stats of one snapshot: hosts %+v\nwant %+v", s.Hosts, want)
	}
	if want.Host = ""; s.Total != want {
		t.Errorf("stats of one snapshot: total %+v\nwant %+v", s.Total, want)
	}
	if stored >= raw || raw < int64(len(random)+len(text)) || raw >= size {
		t.Errorf("index: %d stored, %d raw bytes for %d bytes of files: no dedup or no compression", stored, raw, size)
	}

	// Another host, the same tree: every blob of src is shared (the trees
	// above it may not be: /tmp changes as other tests run).
	ok(t, nil, "syncd", append(append([]string{"snapshot"}, r.flags("--host", "web2")...), src)...)
	// Then the first host adds a file.
	write(t, filepath.Join(src, "extra.txt"), "one more file\n", 0o644, old)
	r.snapshot(t, src)
	blobs2, stored2, _ := indexSums(t, r)

	s = statsOf(t, r)
	if len(s.Hosts) != 2 || s.Hosts[0].Host != "test" || s.Hosts[1].Host != "web2" {
		t.Fatalf("stats hosts: %+v", s.Hosts)
	}
	h1, h2 := s.Hosts[0], s.Hosts[1]
	if h1.Snapshots != 2 || h1.Files != 2*files+1 || h1.Bytes != 2*size+14 || h1.StoredBytes <= stored || h1.StoredBytes > stored2 {
		t.Errorf("host test: %+v; want 2 snapshots, %d files, %d bytes, stored more than %d and at most %d",
			h1, 2*files+1, 2*size+14, stored, stored2)
	}
	if h2.Snapshots != 1 || h2.Files != files || h2.Bytes != size || h2.Blobs != blobs || h2.StoredBytes < stored-1024 || h2.StoredBytes > stored+1024 {
		t.Errorf("host web2: %+v; want 1 snapshot, %d files, %d bytes, %d blobs, about %d stored", h2, files, size, blobs, stored)
	}
	// Every blob in the index is referenced: the total is the index's sum.
	tot := s.Total
	if tot.Snapshots != 3 || tot.Files != h1.Files+h2.Files || tot.Bytes != h1.Bytes+h2.Bytes || tot.StoredBytes != stored2 || tot.Blobs != blobs2 {
		t.Errorf("total: %+v; want the hosts' restore sizes summed and the index's %d blobs, %d stored bytes", tot, blobs2, stored2)
	}
	if tot.StoredBytes >= h1.StoredBytes+h2.StoredBytes-stored/2 {
		t.Errorf("total stored %d, hosts %d and %d: the blobs the hosts share are counted twice", tot.StoredBytes, h1.StoredBytes, h2.StoredBytes)
	}
	if tot.Ratio <= 2.5 || tot.Ratio != float64(tot.Bytes)/float64(tot.StoredBytes) {
		t.Errorf("total dedup ratio %v, want bytes/stored > 2.5 (three snapshots of one tree)", tot.Ratio)
	}

	// Selected snapshots: by prefix, latest, each once.
	if s := statsOf(t, r, first[:6], first); s.Total.Snapshots != 1 || s.Total.StoredBytes != stored || s.Total.Files != files {
		t.Errorf("stats %s %s: %+v", first[:6], first, s.Total)
	}
	if s := statsOf(t, r, "latest", "latest"); s.Total.Snapshots != 1 || s.Total.Files != files+1 {
		t.Errorf("stats latest latest: %+v", s.Total)
	}
	out := ok(t, nil, "restore", append([]string{"stats"}, r.flags()...)...)
	if lines := strings.Split(strings.TrimSpace(out), "\n"); len(lines) != 4 || !strings.HasPrefix(lines[0], "HOST") ||
		!strings.HasPrefix(lines[1], "test ") || !strings.HasPrefix(lines[2], "web2 ") || !strings.HasPrefix(lines[3], "total ") ||
		!strings.HasSuffix(lines[3], "x") {
		t.Errorf("stats:\n%s", out)
	}
}

func TestStatsBadInput(t *testing.T) {
	r := newRepo(t)
	if s := statsOf(t, r); len(s.Hosts) != 0 || s.Total.Snapshots != 0 || s.Total.Ratio != 0 {
		t.Errorf("stats of an empty repository: %+v", s)
	}
	src := t.TempDir()
	write(t, filepath.Join(src, "f"), "x", 0o644, time.Now())
	r.snapshot(t, src)
	res := run(t, nil, "restore", append([]string{"stats", "latest", "zz"}, r.flags()...)...)
	oneLine(t, "stats of an unknown snapshot", res, 1, `"zz"`)
	if res.stdout != "" {
		t.Errorf("stats of an unknown snapshot printed %q", res.stdout)
	}
}
