package transfer

import (
	"errors"
	"math"
	"sync/atomic"
	"time"

	"github.com/syncd/syncd/transfer/receive"
	"github.com/syncd/syncd/transfer/wire"
)

// LatencyBuckets are the upper bounds, in seconds, of the buckets of
// [PeerMetrics].Latency.
var LatencyBuckets = [...]float64{0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60}

// ApplyErrorReasons are the reasons [PeerMetrics].ApplyErrors counts by,
// in the order of its elements:
//
//   - disk-full: no space or quota (ENOSPC, EDQUOT)
//   - disk-error: a read-only or failing disk (EROFS, EIO)
//   - hash-mismatch: a block from the peer did not match its ID
//   - unavailable: the peer no longer has the version (a newer one follows)
//   - local-change: the path changed here and the change is not indexed
//     yet, or a deleted directory still holds something of this node's
//   - other: anything else (a broken connection mid-transfer, say)
var ApplyErrorReasons = [...]string{"disk-full", "disk-error", "hash-mismatch", "unavailable", "local-change", "other"}

// Histogram is a snapshot of a histogram with the buckets of
// [LatencyBuckets], in the shape Prometheus exposes.
type Histogram struct {
	// Buckets[i] is how many observations were at most LatencyBuckets[i]
	// seconds (cumulative).
	Buckets [len(LatencyBuckets)]uint64
	Count   uint64  // observations, the +Inf bucket
	Sum     float64 // their sum, in seconds
}

// PeerMetrics is what this node counts of one folder it shares with one
// peer, kept as things happen (atomic counters): reading it walks no
// index. The counters count since the node's start.
type PeerMetrics struct {
	Peer   string // the peer's name in the configuration
	Folder string // the folder's ID

	// Connected reports whether the peer is reachable for the folder:
	// when this node receives the folder from the peer, whether its
	// puller has a session up; otherwise whether the peer has a
	// connection open to this node. It goes false at once when the peer's
	// process ends (its connections close) and at most [PeerDownAfter]
	// after the peer last answered when it goes silent.
	Connected bool
	// LastSeen is when this node last heard from the peer for the
	// folder: the time of the snapshot while Connected, else when the
	// last connection ended or the last answer came. Zero: never since
	// the node started.
	LastSeen time.Time

	// LagFiles and LagBytes are what this node has yet to apply from the
	// peer: the batch being applied and the entries that failed (as
	// [PeerStatus]). Behind is how many of the peer's sequence numbers
	// it has not asked for yet. All zero when this node does not
	// receive the folder from the peer.
	LagFiles int64
	LagBytes int64
	Behind   uint64

	// ReceivedFiles counts the entries applied from the peer (files,
	// directories, links, deletions); ReceivedBytes the sizes of the
	// files among them; FetchedBytes the bytes of blocks that came over
	// the network for them (the rest was copied from local files).
	ReceivedFiles uint64
	ReceivedBytes uint64
	FetchedBytes  uint64
	// SentFiles counts the entries announced to the peer (in index
	// responses); SentBytes the bytes of blocks served to it
	// (uncompressed).
	SentFiles uint64
	SentBytes uint64

	// ApplyErrors counts the failed tries to apply an entry from the
	// peer, by reason: ApplyErrors[i] is for ApplyErrorReasons[i]. An
	// entry retried and failing again counts again.
	ApplyErrors [len(ApplyErrorReasons)]uint64
	// Conflicts counts the local versions kept as conflict copies
	// because the peer's concurrent version won.
	Conflicts uint64

	// Latency is the time from a change on the peer to its application
	// here, in seconds, for each file applied from the peer. The wire
	// carries no time of the change but the file's mtime, so that is
	// what it measures from: a file whose mtime is older than its change
	// (copied with its mtime kept, cp -p, tar x, rsync -t) counts as
	// late, and the clock skew between the nodes adds to every
	// observation (a negative one counts as 0). Directories, links and
	// deletions are not observed.
	Latency Histogram
}

// PeerMetrics returns the metrics of each folder shared with each
// configured peer, by peer in configuration order, then by folder in
// the order given to [New]. It is cheap (atomic loads and one short
// lock per puller) and safe for concurrent use; each call returns new
// slices.
func (n *Node) PeerMetrics() []PeerMetrics {
	n.mu.Lock()
	pullers := make(map[pfKey]*puller, len(n.pullers))
	for _, p := range n.pullers {
		pullers[pfKey{p.peer.Name, p.f.Config.ID}] = p
	}
	n.mu.Unlock()
	now := n.clk.Now()
	var out []PeerMetrics
	for _, cp := range n.cfg.Peers {
		ps := n.peerSt[cp.Name]
		for _, f := range n.order {
			c := n.pf[pfKey{cp.Name, f.Config.ID}]
			if c == nil {
				continue
			}
			m := PeerMetrics{Peer: cp.Name, Folder: f.Config.ID}
			if p := pullers[pfKey{cp.Name, f.Config.ID}]; p != nil {
				p.mu.Lock()
				st := p.stat
				p.mu.Unlock()
				m.Connected, m.LastSeen = st.connected, st.lastSeen
				m.LagFiles, m.LagBytes = st.pendFiles+int64(st.failed), st.pendBytes+st.failBytes
				if st.peerSeq > st.cursor {
					m.Behind = st.peerSeq - st.cursor
				}
			} else if ps != nil {
				m.Connected = ps.conns.Load() > 0
				if t := ps.lastIn.Load(); t != 0 {
					m.LastSeen = time.Unix(0, t)
				}
			}
			if m.Connected {
				m.LastSeen = now
			}
			c.read(&m)
			out = append(out, m)
		}
	}
	return out
}

// pfKey names a folder shared with a peer.
type pfKey struct{ peer, folder string }

// pfCounters are the counters of a folder shared with a peer; atomic,
// safe for concurrent use.
type pfCounters struct {
	recvFiles, recvBytes, fetched atomic.Uint64
	sentFiles, sentBytes          atomic.Uint64
	conflicts                     atomic.Uint64
	errs                          [len(ApplyErrorReasons)]atomic.Uint64
	lat                           latency
}

func (c *pfCounters) read(m *PeerMetrics) {
	m.ReceivedFiles, m.ReceivedBytes, m.FetchedBytes = c.recvFiles.Load(), c.recvBytes.Load(), c.fetched.Load()
	m.SentFiles, m.SentBytes = c.sentFiles.Load(), c.sentBytes.Load()
	m.Conflicts = c.conflicts.Load()
	for i := range c.errs {
		m.ApplyErrors[i] = c.errs[i].Load()
	}
	m.Latency = c.lat.read()
}

// The counting methods do nothing on a nil *pfCounters (a puller made by
// a test). The receiver counts through the first three (a
// [receive.Counter]).

// AddFetched counts n bytes of blocks fetched from the peer.
func (c *pfCounters) AddFetched(n int) {
	if c != nil {
		c.fetched.Add(uint64(n))
	}
}

// AddConflict counts a local version kept as a conflict copy.
func (c *pfCounters) AddConflict() {
	if c != nil {
		c.conflicts.Add(1)
	}
}

// Applied counts an entry applied at now.
func (c *pfCounters) Applied(e *wire.Entry, now time.Time) {
	if c == nil {
		return
	}
	c.recvFiles.Add(1)
	if e.Type == "file" && !e.Deleted {
		c.recvBytes.Add(uint64(e.Size))
		c.lat.observe(time.Unix(0, e.ModTime), now)
	}
}

// applyError counts a failed try to apply an entry.
func (c *pfCounters) applyError(err error) {
	if c != nil {
		c.errs[errReason(err)].Add(1)
	}
}

// errReason returns the index in ApplyErrorReasons of err's reason.
func errReason(err error) int {
	switch c := receive.FailClass(err); {
	case c == receive.CondDiskFull:
		return 0
	case c == receive.CondDiskError:
		return 1
	case errors.Is(err, receive.ErrHashMismatch):
		return 2
	case errors.Is(err, receive.ErrUnavailable):
		return 3
	case errors.Is(err, receive.ErrLocalChange), errors.Is(err, receive.ErrDirNotEmpty):
		return 4
	}
	return len(ApplyErrorReasons) - 1
}

// latency is a histogram with the buckets of LatencyBuckets; atomic.
type latency struct {
	counts [len(LatencyBuckets) + 1]atomic.Uint64 // per bucket, not cumulative; the last is +Inf
	sum    atomic.Uint64                          // float64 bits, seconds
}

// observe records a change made at changed and applied at now.
func (l *latency) observe(changed, now time.Time) {
	s := max(now.Sub(changed).Seconds(), 0)
	i := 0
	for i < len(LatencyBuckets) && s > LatencyBuckets[i] {
		i++
	}
	l.counts[i].Add(1)
	for {
		old := l.sum.Load()
		if l.sum.CompareAndSwap(old, math.Float64bits(math.Float64frombits(old)+s)) {
			return
		}
	}
}

func (l *latency) read() Histogram {
	var h Histogram
	for i := range l.counts {
		h.Count += l.counts[i].Load()
		if i < len(h.Buckets) {
			h.Buckets[i] = h.Count
		}
	}
	h.Sum = math.Float64frombits(l.sum.Load())
	return h
}
