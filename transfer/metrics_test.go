package transfer

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"math"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/syncd/syncd/config"
	"github.com/syncd/syncd/internal/clock/clocktest"
	"github.com/syncd/syncd/internal/health"
	"github.com/syncd/syncd/transfer/receive"
	"github.com/syncd/syncd/transfer/wire"
)

// What a replica receives from its primary is counted on both sides as
// it happens: entries and bytes applied and fetched here, announced and
// served there, and a latency for each file applied.
func TestPeerMetricsCount(t *testing.T) {
	a, b := newTestNode(t, "a", config.SendOnly), newTestNode(t, "b", config.ReceiveOnly)
	connect(a, b)
	a.write(t, "one.txt", strings.Repeat("1", 1000))
	a.write(t, "two.txt", strings.Repeat("2", 3000))
	a.write(t, "d/three.txt", strings.Repeat("3", 500))
	a.index(t)
	a.start(t)
	b.start(t)
	converge(t, a, b)
	// read while the pullers and the server run: -race checks the snapshot
	var mb, ma PeerMetrics
	eventually(t, "counted", func() bool {
		mb, ma = b.node.PeerMetrics()[0], a.node.PeerMetrics()[0]
		// the files are counted as they are placed, the lag once the
		// batch is settled, a moment later
		return mb.ReceivedFiles == 4 && ma.SentBytes == 4500 && mb.Connected && ma.Connected &&
			mb.LagFiles == 0 && mb.Behind == 0
	})
	if mb.Peer != "a" || mb.Folder != "www" || ma.Peer != "b" || ma.Folder != "www" {
		t.Errorf("names: b's %s/%s, a's %s/%s", mb.Peer, mb.Folder, ma.Peer, ma.Folder)
	}
	// 3 files and a directory; the bytes are the files' sizes
	if mb.ReceivedBytes != 4500 || mb.FetchedBytes != 4500 {
		t.Errorf("b received %d bytes, fetched %d, want 4500 each", mb.ReceivedBytes, mb.FetchedBytes)
	}
	if ma.SentFiles != 4 {
		t.Errorf("a announced %d entries to b, want 4", ma.SentFiles)
	}
	if h := mb.Latency; h.Count != 3 || h.Sum <= 0 || h.Buckets[len(h.Buckets)-1] != 3 {
		t.Errorf("latency of 3 files just written: %+v", h)
	}
	if mb.LastSeen.IsZero() || ma.LastSeen.IsZero() {
		t.Errorf("last seen: b's %v, a's %v", mb.LastSeen, ma.LastSeen)
	}
	if mb.ApplyErrors != ([len(ApplyErrorReasons)]uint64{}) {
		t.Errorf("b: errors %v", mb.ApplyErrors)
	}

	// A copy of a file made on b reuses its chunks: applied, not fetched.
	a.write(t, "copy.txt", strings.Repeat("2", 3000))
	a.index(t)
	converge(t, a, b)
	eventually(t, "the copy counted", func() bool { mb = b.node.PeerMetrics()[0]; return mb.ReceivedFiles == 5 })
	if mb.ReceivedBytes != 7500 || mb.FetchedBytes != 4500 {
		t.Errorf("after a copy b received %d bytes, fetched %d, want 7500 and 4500", mb.ReceivedBytes, mb.FetchedBytes)
	}
}

// Each failed try to apply an entry counts under its reason.
func TestApplyErrorsByReason(t *testing.T) {
	werr := func(e syscall.Errno) error { return &fs.PathError{Op: "write", Path: "f", Err: e} }
	cases := []struct {
		err  error
		want string
	}{
		{werr(syscall.ENOSPC), "disk-full"},
		{werr(syscall.EDQUOT), "disk-full"},
		{werr(syscall.EIO), "disk-error"},
		{fmt.Errorf("write f: %w", werr(syscall.EROFS)), "disk-error"},
		{fmt.Errorf("fetch f: block at 0 does not match its ID: %w", receive.ErrHashMismatch), "hash-mismatch"},
		{fmt.Errorf("fetch f: %w", receive.ErrUnavailable), "unavailable"},
		{receive.ErrLocalChange, "local-change"},
		{receive.ErrDirNotEmpty, "local-change"},
		{errors.New("stream error: connection reset"), "other"},
	}
	clk := clocktest.New(time.Unix(1_000_000, 0))
	f := &Folder{Config: config.Folder{ID: "www", Path: t.TempDir()}, Health: health.NewConditions(clk.Now)}
	c := new(pfCounters)
	p := &puller{n: &Node{clk: clk}, f: f, peer: config.Peer{Name: "a"},
		retry: map[string]failure{}, r: receive.New(&receive.Folder{}, receive.Options{Count: c}), rep: new(reporters), count: c,
		log: slog.New(slog.NewTextHandler(new(bytes.Buffer), nil))}
	want := map[string]uint64{}
	for i, tc := range cases {
		if got := ApplyErrorReasons[errReason(tc.err)]; got != tc.want {
			t.Errorf("reason of %v: %s, want %s", tc.err, got, tc.want)
		}
		e := wire.Entry{Path: fmt.Sprintf("f%d", i), Type: "file", Seq: uint64(i + 1)}
		p.settle([]wire.Entry{e}, []receive.Failure{{Entry: e, Err: tc.err}})
		p.settle([]wire.Entry{e}, []receive.Failure{{Entry: e, Err: tc.err}}) // a retry failing again counts again
		want[tc.want] += 2
	}
	var m PeerMetrics
	c.read(&m)
	for i, r := range ApplyErrorReasons {
		if m.ApplyErrors[i] != want[r] {
			t.Errorf("%s: %d errors, want %d", r, m.ApplyErrors[i], want[r])
		}
	}
}

// The latency histogram puts each observation in the first bucket whose
// bound it does not pass, counts a change "after" its application (a
// clock ahead on the peer) as 0, and reads cumulative.
func TestLatencyHistogram(t *testing.T) {
	now := time.Unix(2_000_000, 0)
	var l latency
	for _, d := range []time.Duration{
		-5 * time.Second,           // clock skew: 0
		50 * time.Millisecond,      // on the bound: in it
		70 * time.Millisecond,      // 0.1
		3 * time.Second,            // 5
		90 * time.Second,           // +Inf
		200 * 365 * 24 * time.Hour, // an mtime kept from long ago: +Inf
	} {
		l.observe(now.Add(-d), now)
	}
	h := l.read()
	want := [len(LatencyBuckets)]uint64{2, 3, 3, 3, 3, 3, 4, 4, 4, 4}
	if h.Buckets != want || h.Count != 6 {
		t.Errorf("buckets %v count %d, want %v and 6", h.Buckets, h.Count, want)
	}
	wantSum := 0.05 + 0.07 + 3 + 90 + (200 * 365 * 24 * time.Hour).Seconds()
	if math.Abs(h.Sum-wantSum) > 1e-3 {
		t.Errorf("sum %f, want %f", h.Sum, wantSum)
	}
}
