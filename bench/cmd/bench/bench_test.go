package main

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestReplaceSection(t *testing.T) {
	md := "<!-- bench:local:begin -->\nnew\n<!-- bench:local:end -->\n"
	for _, tc := range []struct{ doc, want string }{
		{"", md},
		{"# T\n", "# T\n\n" + md},
		{"# T\n\n<!-- bench:local:begin -->\nold\n<!-- bench:local:end -->\n\nafter\n", "# T\n\n" + md + "\nafter\n"},
		{"a\n<!-- bench:minio:begin -->\nm\n<!-- bench:minio:end -->\n", "a\n<!-- bench:minio:begin -->\nm\n<!-- bench:minio:end -->\n\n" + md},
	} {
		if got := replaceSection(tc.doc, "local", md); got != tc.want {
			t.Errorf("replaceSection(%q) = %q, want %q", tc.doc, got, tc.want)
		}
	}
}

func TestMedian(t *testing.T) {
	if m := median([]float64{3, 1, 2}); m != 2 {
		t.Errorf("median = %v, want 2", m)
	}
	if m := median([]float64{4, 1, 2, 3}); m != 2.5 {
		t.Errorf("median = %v, want 2.5", m)
	}
}

func TestCompareTrees(t *testing.T) {
	mk := func() string {
		d := t.TempDir()
		must(t, os.MkdirAll(filepath.Join(d, "sub"), 0o755))
		must(t, os.WriteFile(filepath.Join(d, "sub", "f"), []byte("x"), 0o640))
		must(t, os.Link(filepath.Join(d, "sub", "f"), filepath.Join(d, "g")))
		must(t, os.Symlink("sub/f", filepath.Join(d, "l")))
		must(t, exec.Command("touch", "-h", "-d", "@1700000000.123456789", filepath.Join(d, "l")).Run())
		ts := time.Unix(1700000000, 123456789)
		for _, p := range []string{"sub/f", "sub", "."} {
			must(t, os.Chtimes(filepath.Join(d, p), ts, ts))
		}
		return d
	}
	a, b := mk(), mk()
	if p := compareTrees(context.Background(), a, b); len(p) != 0 {
		t.Fatalf("equal trees differ: %q", p)
	}
	must(t, os.Remove(filepath.Join(b, "g")))
	must(t, os.WriteFile(filepath.Join(b, "g"), []byte("x"), 0o640))
	must(t, os.Chmod(filepath.Join(b, "sub", "f"), 0o600))
	p := strings.Join(compareTrees(context.Background(), a, b), "\n")
	for _, want := range []string{"hard links not restored: g = sub/f", "sub/f: mode", "g: mtime"} {
		if !strings.Contains(p, want) {
			t.Errorf("problems %q lack %q", p, want)
		}
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func TestPercentile(t *testing.T) {
	v := make([]float64, 100)
	for i := range v {
		v[i] = float64(i + 1)
	}
	for _, tc := range []struct{ q, want float64 }{{0.5, 50}, {0.99, 99}, {1, 100}} {
		if got := percentile(v, tc.q); got != tc.want {
			t.Errorf("percentile(%v) = %v, want %v", tc.q, got, tc.want)
		}
	}
}

func TestAnchorlessRow(t *testing.T) {
	m := metric{title: "lat p99", unit: millis, anchorless: true, absBar: 0.3}
	m.vals[0] = []float64{0.12}
	if got, want := m.row(), "| lat p99 | 120 ms | — | — | ≤ 300 ms | pass |"; got != want {
		t.Errorf("row = %q, want %q", got, want)
	}
	m.vals[0] = []float64{0.5}
	if got := m.row(); !strings.Contains(got, "**FAIL**") {
		t.Errorf("row = %q, want a FAIL", got)
	}
}

func TestProcCPU(t *testing.T) {
	if c := procCPU(os.Getpid()); c < 0 {
		t.Errorf("procCPU(self) = %v, want ≥ 0", c)
	}
	if c := procCPU(-5); c != -1 {
		t.Errorf("procCPU(-5) = %v, want -1", c)
	}
}

func TestPageReporting(t *testing.T) {
	dir := t.TempDir()
	if got := pageReporting(dir); got != "" {
		t.Errorf("no counter: %q, want nothing", got)
	}
	for _, v := range []string{"0\n", "x\n"} {
		os.WriteFile(filepath.Join(dir, "reported_kib"), []byte(v), 0o644)
		if got := pageReporting(dir); got != "" {
			t.Errorf("counter %q: %q, want nothing", v, got)
		}
	}
	os.WriteFile(filepath.Join(dir, "reported_kib"), []byte("483543452\n"), 0o644)
	if got := pageReporting(dir); !strings.Contains(got, "free page reporting: 461.14 GiB so far") {
		t.Errorf("counter 483543452 KiB: %q", got)
	}
}
