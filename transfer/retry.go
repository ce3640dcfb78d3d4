package transfer

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"sync"
	"time"

	"github.com/syncd/syncd/internal/health"
	"github.com/syncd/syncd/transfer/receive"
	"github.com/syncd/syncd/transfer/wire"
)

// An entry that fails for a disk condition (full, read-only, I/O errors)
// is tried again after a delay that doubles with each failure of its
// path, from retryMin up to retryMax, and starts again from retryMin once
// it is applied. Any other failure (a local change not yet indexed, a
// deleted directory not yet empty, a version the peer no longer has) is
// tried every retryEvery: it settles by itself, and a longer wait only
// keeps the replica behind.
const (
	retryMin    = 2 * time.Second
	retryMax    = 5 * time.Minute
	remindEvery = 10 * time.Minute // a lasting condition is logged again this often
)

// A path another puller's receiver claimed ([receive.ErrClaimed]) is
// planned again claimRetry later, then after twice as long each time it
// is still claimed, up to claimRetryMax: a new node puts thousands aside
// at first, and each plan is an index read.
const (
	claimRetry    = 250 * time.Millisecond
	claimRetryMax = 2 * time.Second
)

// failure is an entry that could not be applied now; it is tried again.
type failure struct {
	e     wire.Entry
	err   error
	tries int       // how often its path failed in a row
	due   time.Time // when it is tried next
}

// sameTrouble reports whether a path's new failure err is the one it
// met before, prev: the same condition (whatever file or call), or else
// the same message.
func sameTrouble(prev, err error) bool {
	if c := receive.FailClass(prev); c != "" {
		return c == receive.FailClass(err)
	}
	return prev.Error() == err.Error()
}

// retryDelay returns how long an entry that failed tries times (1 or
// more) waits before its next try: lo, doubled with each failure, at most
// hi.
func retryDelay(tries int, lo, hi time.Duration) time.Duration {
	d := lo
	for i := 1; i < tries && d < hi; i++ {
		d *= 2
	}
	return min(d, hi)
}

// due returns the failed entries whose next try is due at now, and when
// the next of the others is (zero if none waits).
func (p *puller) due(now time.Time) (due []failure, next time.Time) {
	for _, fl := range p.retry {
		if !fl.due.After(now) {
			due = append(due, fl)
		} else if next.IsZero() || fl.due.Before(next) {
			next = fl.due
		}
	}
	// Deleted directories first (together, deepest first), then in
	// sequence order; the entries that wait for space last, smallest
	// first: they go through while the space there is allows.
	rank := func(fl failure) int {
		switch {
		case errors.Is(fl.err, receive.ErrDirNotEmpty):
			return 0
		case receive.FailClass(fl.err) == receive.CondDiskFull:
			return 2
		}
		return 1
	}
	slices.SortFunc(due, func(a, b failure) int {
		if c := cmp.Compare(rank(a), rank(b)); c != 0 {
			return c
		}
		if rank(a) == 2 {
			if c := cmp.Compare(a.e.Size, b.e.Size); c != 0 {
				return c
			}
		}
		return cmp.Compare(a.e.Seq, b.e.Seq)
	})
	return due, next
}

// schedule sets when fl, failed again after prev (zero: its first
// failure), is tried next.
func (p *puller) schedule(fl *failure, prev failure, now time.Time) {
	fl.tries = prev.tries + 1
	if errors.Is(fl.err, receive.ErrClaimed) {
		fl.due = now.Add(retryDelay(fl.tries, claimRetry, claimRetryMax))
		return
	}
	if errors.Is(fl.err, receive.ErrLocalChange) || errors.Is(fl.err, receive.ErrDirNotEmpty) || receive.FailClass(fl.err) == "" {
		// settles by itself, or a race with the peer's next change (a
		// version the peer no longer has): tried again soon, as before
		fl.due = now.Add(retryEvery)
		return
	}
	fl.due = now.Add(retryDelay(fl.tries, retryMin, retryMax))
}

// reporters tracks which pullers of a folder report each of its
// conditions, so that one peer's recovery does not clear what another
// peer's entries still meet; and when each was last logged. Safe for
// concurrent use.
type reporters struct {
	mu     sync.Mutex
	by     map[string]map[*puller]bool
	logged map[string]time.Time
}

// conditions reports the folder conditions that the failed entries meet
// (set, or reminded every remindEvery) and those they no longer meet
// (cleared when no puller of the folder meets them).
func (p *puller) conditions() {
	type agg struct {
		files int
		bytes int64
		path  string
		err   error
	}
	meet := map[string]*agg{}
	for _, fl := range p.retry {
		c := receive.FailClass(fl.err)
		if c == "" {
			continue
		}
		g := meet[c]
		if g == nil {
			g = &agg{path: fl.e.Path, err: fl.err}
			meet[c] = g
		}
		g.files++
		g.bytes += fl.e.Size
		if fl.e.Path < g.path {
			g.path, g.err = fl.e.Path, fl.err
		}
	}
	f, rep, now := p.f, p.rep, p.n.clk.Now()
	rep.mu.Lock()
	defer rep.mu.Unlock()
	if rep.by == nil {
		rep.by, rep.logged = map[string]map[*puller]bool{}, map[string]time.Time{}
	}
	for _, c := range []string{receive.CondDiskFull, receive.CondDiskError} {
		g := meet[c]
		if g == nil {
			if rep.by[c][p] {
				delete(rep.by[c], p)
				if len(rep.by[c]) == 0 && f.Health.Clear(c) {
					p.log.Info("folder condition resolved", "condition", c)
				}
			}
			continue
		}
		if rep.by[c] == nil {
			rep.by[c] = map[*puller]bool{}
		}
		rep.by[c][p] = true
		reason := fmt.Sprintf("%d files (%d bytes) from peer %s cannot be written, e.g. %s: %v; retried with backoff",
			g.files, g.bytes, p.peer.Name, g.path, g.err)
		if c == receive.CondDiskFull {
			reason = "disk full: " + reason + "; free space in " + f.Config.Path
		} else {
			reason = "disk error: " + reason + "; check the disk of " + f.Config.Path
		}
		switch {
		case f.Health.Set(c, health.Degraded, reason):
			p.log.Warn("folder degraded", "condition", c, "reason", reason)
			rep.logged[c] = now
		case now.Sub(rep.logged[c]) >= remindEvery:
			p.log.Warn("folder still degraded", "condition", c, "reason", reason)
			rep.logged[c] = now
		}
	}
}

// available answers 503 for a folder with a Failed condition and reports
// false: its index and its blocks are not served while it may be a
// different directory than the one indexed (a disk not mounted). Not
// logged: the condition was, when it was set.
func (n *Node) available(w http.ResponseWriter, f *Folder) bool {
	if !f.Health.Failed() {
		return true
	}
	reason := "failed"
	if l := f.Health.List(); len(l) > 0 {
		reason = l[0].Reason
	}
	http.Error(w, fmt.Sprintf("folder %s is unavailable on this node: %s", f.Config.ID, reason), http.StatusServiceUnavailable)
	return false
}

// settle files the failures of applying es for retry; a newer version of
// a path supersedes its failed one.
//
// A path's failure is logged when it starts or its error changes, its
// retries at debug level; what many paths meet (a full disk) is logged
// once as a condition of the folder (see conditions).
func (p *puller) settle(es []wire.Entry, fails []receive.Failure) {
	prev := map[string]failure{}
	for _, e := range es {
		if fl, ok := p.retry[e.Path]; ok {
			prev[e.Path] = fl
		}
		delete(p.retry, e.Path) // a newer version supersedes a failed one
	}
	now := p.n.clk.Now()
	for _, rf := range fails {
		fl := failure{e: rf.Entry, err: rf.Err}
		old, again := prev[fl.e.Path]
		p.schedule(&fl, old, now)
		if errors.Is(fl.err, receive.ErrClaimed) {
			// not a failure: another puller fetches it (see receive.ErrClaimed)
			p.retry[fl.e.Path] = fl
			continue
		}
		if errors.Is(fl.err, receive.ErrOutvoted) {
			// not a failure: kept to be planned again (see receive.ErrOutvoted)
			p.retry[fl.e.Path] = fl
			if !again {
				p.log.Debug("peer's version loses to ours; asked again while it holds it", "path", fl.e.Path)
			}
			continue
		}
		p.count.applyError(fl.err)
		if errors.Is(fl.err, receive.ErrDirNotEmpty) {
			if fl.tries > dirTries {
				p.log.Info("deleted directory kept: it holds something not deleted", "path", fl.e.Path)
				continue
			}
			p.retry[fl.e.Path] = fl
			continue
		}
		p.retry[fl.e.Path] = fl
		level := slog.LevelWarn
		switch {
		case again && sameTrouble(old.err, fl.err):
			level = slog.LevelDebug // logged when it started
		case receive.FailClass(fl.err) != "":
			level = slog.LevelInfo // the folder's condition is the warning
		case errors.Is(fl.err, receive.ErrLocalChange):
			level = slog.LevelInfo
		}
		if errors.Is(fl.err, receive.ErrLocalChange) {
			p.log.Log(context.Background(), level, "peer's version waits for a local change to be indexed", "path", fl.e.Path)
		} else {
			p.log.Log(context.Background(), level, "could not apply peer's version; will retry", "path", fl.e.Path,
				"err", fl.err, "tries", fl.tries, "retry_in", fl.due.Sub(now))
		}
	}
	p.r.DropPartials(es, func(rel string) bool { _, ok := p.retry[rel]; return ok })
	p.conditions()
	p.countFailed()
}

// forgetRetries drops the failed entries: they are asked for again.
func (p *puller) forgetRetries() {
	clear(p.retry)
	p.r.DropPartials(nil, func(string) bool { return false })
	p.conditions()
	p.countFailed()
}

// retryFailed applies the failed entries that are due again, in the
// order of due.
func (p *puller) retryFailed(ctx context.Context, due []failure) error {
	// Outvoted versions are planned again together, and are not shown as
	// pending: most of the time they stay as they are; so are the paths
	// another puller claimed (most of the time applied by now). Deleted directories
	// together, so that they go deepest first; the others one at a time:
	// a file that cannot be written (a full disk) must not take the others
	// down with it again.
	var outvoted, dirs, single []wire.Entry
	for _, fl := range due {
		switch {
		case errors.Is(fl.err, receive.ErrOutvoted), errors.Is(fl.err, receive.ErrClaimed):
			outvoted = append(outvoted, fl.e)
		case errors.Is(fl.err, receive.ErrDirNotEmpty):
			dirs = append(dirs, fl.e)
		default:
			single = append(single, fl.e)
		}
	}
	// Each apply takes its entries out of p.retry (settle) and puts back
	// the ones that fail again, counting a directory's tries.
	if len(outvoted) > 0 {
		fails, err := p.r.Apply(ctx, outvoted)
		if err != nil {
			return err
		}
		p.settle(outvoted, fails)
	}
	if len(dirs) > 0 {
		if err := p.applyBatch(ctx, dirs); err != nil {
			return err
		}
	}
	for i := range single {
		if err := p.applyBatch(ctx, single[i:i+1]); err != nil {
			return err
		}
	}
	return nil
}

func (p *puller) countFailed() {
	var n int
	var bytes int64
	for _, fl := range p.retry {
		if !errors.Is(fl.err, receive.ErrOutvoted) && !errors.Is(fl.err, receive.ErrClaimed) {
			n++
			bytes += fl.e.Size
		}
	}
	p.mu.Lock()
	p.stat.failed, p.stat.failBytes = n, bytes
	p.mu.Unlock()
}

// failing returns how many of the peer's versions wait to be applied
// (outvoted ones are not waiting: see receive.ErrOutvoted; claimed ones
// are, for another puller).
func (p *puller) failing() int {
	n := 0
	for _, fl := range p.retry {
		if !errors.Is(fl.err, receive.ErrOutvoted) {
			n++
		}
	}
	return n
}
