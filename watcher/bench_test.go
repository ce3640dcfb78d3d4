package watcher

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"
)

// BenchmarkLatency measures, with default options on real inotify, the time
// from writing a small file to receiving the batch that names it: 100 files
// written one by one (each waited for). It reports the p50 and p99 in ms;
// the target is p99 <= 300ms.
func BenchmarkLatency(b *testing.B) {
	root := b.TempDir()
	w, err := New(Options{Root: root})
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	out := make(chan Batch)
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx, out) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			b.Error(err)
		}
	}()
	<-out // start

	var lat []time.Duration
	b.ResetTimer()
	for i := range b.N {
		for j := range 100 {
			name := fmt.Sprintf("f-%d-%03d.html", i, j)
			t0 := time.Now()
			if err := os.WriteFile(filepath.Join(root, name), []byte("<p>hello</p>\n"), 0o644); err != nil {
				b.Fatal(err)
			}
			timeout := time.After(5 * time.Second)
		wait:
			for {
				select {
				case bt := <-out:
					if slices.Contains(bt.Paths, name) {
						lat = append(lat, time.Since(t0))
						break wait
					}
				case <-timeout:
					b.Fatalf("%s not reported within 5s", name)
				}
			}
		}
	}
	b.StopTimer()
	slices.Sort(lat)
	pct := func(p float64) float64 {
		return float64(lat[int(p*float64(len(lat)-1))]) / float64(time.Millisecond)
	}
	b.ReportMetric(pct(0.50), "p50-ms")
	b.ReportMetric(pct(0.99), "p99-ms")
	b.ReportMetric(float64(lat[len(lat)-1])/float64(time.Millisecond), "max-ms")
}
