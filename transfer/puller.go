package transfer

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/syncd/syncd/config"
	"github.com/syncd/syncd/transfer/receive"
	"github.com/syncd/syncd/transfer/tlsid"
	"github.com/syncd/syncd/transfer/wire"
)

// puller keeps one local folder up to date with one peer's version of it.
type puller struct {
	n    *Node
	peer config.Peer
	f    *Folder
	c    *client
	r    *receive.Receiver
	log  *slog.Logger
	key  string     // state meta key of the cursor
	rep  *reporters // shared by the folder's pullers
	down lasting    // sessions with the peer fail (owned by run)

	count *pfCounters // the (peer, folder)'s counters: the puller counts the apply errors

	next      uint64             // the peer's sequence number to ask after
	peerIndex string             // the peer's index ID that next counts in
	retry     map[string]failure // entries that failed, by path
	saved     uint64             // the cursor last stored

	mu         sync.Mutex // guards stat, pollCancel
	stat       pullStatus
	pollCancel context.CancelFunc
	fromStart  atomic.Bool // ask again from sequence 0 (after a revert)
}

// restart makes the puller ask its peer for everything again, at once.
func (p *puller) restart() {
	p.fromStart.Store(true)
	p.mu.Lock()
	if p.pollCancel != nil {
		p.pollCancel()
	}
	p.mu.Unlock()
}

// pullStatus is what status reports of a puller.
type pullStatus struct {
	connected bool
	lastSeen  time.Time
	lastErr   string
	peerSeq   uint64
	cursor    uint64
	pendFiles int64 // the batch being applied
	pendBytes int64
	failed    int
	failBytes int64
}

const (
	// the wait before a session with a peer is tried again after one
	// failed: doubled at each failure, from backoffMin up to backoffMax
	backoffMin   = 500 * time.Millisecond
	backoffMax   = 10 * time.Second
	retryEvery   = 2 * time.Second
	dirTries     = 3 // a deleted directory still not empty after this many tries is kept
	cursorPrefix = "transfer/cursor/"
)

func (n *Node) newPuller(p config.Peer, pid tlsid.NodeID, f *Folder) *puller {
	send, recv := n.peerLimits(p.Name)
	c := newClient(n.id, pid, p.Address, send, recv, func(ctx context.Context, addr string) (net.Conn, error) {
		if n.Dial != nil { // read when a connection is made: tests set it after New
			return n.Dial(ctx, addr)
		}
		var d net.Dialer
		return d.DialContext(ctx, "tcp", addr)
	})
	if n.reps[f] == nil {
		n.reps[f] = new(reporters)
	}
	pl := &puller{n: n, peer: p, f: f, c: c, retry: map[string]failure{},
		log: n.log.With("peer", p.Name, "folder", f.Config.ID),
		key: cursorPrefix + pid.String() + "/" + f.Config.ID, rep: n.reps[f], count: n.pf[pfKey{p.Name, f.Config.ID}]}
	pl.down = lasting{log: pl.log, clk: n.clk}
	c.comp = newChooser(p.Compression, n.clk, pl.log)
	pl.r = receive.New(f.recv, receive.Options{Peer: p.Name, NodeName: n.nodeName, Self: n.id.ID.Uint64(), Log: pl.log, Count: pl.count,
		Fetch: func(ctx context.Context, q *wire.BlockRequest, fn func(i, j int, data []byte, ok bool) error) error {
			return c.blocks(ctx, f.Config.ID, q, fn)
		},
		RequestSize: c.comp.requestSize,
		Sums: func(ctx context.Context, q *wire.BlockRequest, fn func(i, j int, sums []byte, ok bool) error) error {
			if !c.sums.Load() {
				return receive.ErrNoSums
			}
			return c.segmentSums(ctx, f.Config.ID, q, fn)
		}})
	return pl
}

// run pulls until ctx ends, reconnecting with backoff after a failure.
func (p *puller) run(ctx context.Context) {
	defer p.c.close()
	// a restart would not resume them: the indexer takes them for a crash's
	defer p.r.DropPartials(nil, func(string) bool { return false })
	p.next = p.loadCursor()
	backoff := backoffMin
	for ctx.Err() == nil {
		if p.f.Health.Failed() {
			// the folder stopped (whoever set the condition logged it):
			// nothing is asked or applied until it clears
			p.setConnected(false, receive.ErrFolderFailed)
			p.sleep(ctx, retryEvery, nil)
			continue
		}
		start := p.n.clk.Now()
		err := p.session(ctx)
		p.setConnected(false, err)
		if ctx.Err() != nil {
			return
		}
		if errors.Is(err, receive.ErrFolderFailed) {
			continue
		}
		if p.n.clk.Now().Sub(start) > backoffMax {
			backoff = backoffMin
		}
		// A peer down (or whose folder is failed, answering 503 until it
		// is fixed) is logged when it happens, every remindEvery while it
		// lasts and when a session works again, not at every retry.
		p.down.met("peer session ended", "err", err, "retry_in", backoff.Round(time.Millisecond))
		p.backoff(ctx, backoff/2+rand.N(backoff/2+1))
		backoff = min(2*backoff, backoffMax)
	}
}

// backoff waits for d after a failed session, or until the peer
// connects to this node (the link is back: see peerState.back), or ctx
// ends.
func (p *puller) backoff(ctx context.Context, d time.Duration) {
	var back <-chan struct{}
	if ps := p.n.peerSt[p.peer.Name]; ps != nil {
		back = ps.back.Wait()
	}
	p.sleep(ctx, d, back)
}

// sleep waits for d on the node's clock, or until wake is ready (nil:
// never) or ctx ends.
func (p *puller) sleep(ctx context.Context, d time.Duration, wake <-chan struct{}) {
	t := p.n.clk.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C():
	case <-wake:
	}
}

// session says hello, then pulls and applies batches until an error.
func (p *puller) session(ctx context.Context) error {
	h, err := p.c.hello(ctx)
	if err != nil {
		return err
	}
	if h.Protocol != wire.Protocol {
		return fmt.Errorf("peer speaks protocol %d, this node %d", h.Protocol, wire.Protocol)
	}
	p.c.frames.Store(slices.Contains(h.Features, wire.FeatureFrames))
	p.c.sums.Store(p.c.frames.Load() && slices.Contains(h.Features, wire.FeatureSums))
	p.c.http1.Store(slices.Contains(h.Features, wire.FeatureBlocksHTTP1))
	i := slices.IndexFunc(h.Folders, func(hf wire.HelloFolder) bool { return hf.ID == p.f.Config.ID })
	if i < 0 {
		return fmt.Errorf("peer does not share folder %s with this node", p.f.Config.ID)
	}
	if fp := p.f.Chunking.Fingerprint(); h.Folders[i].Chunking != fp.String() {
		return errors.New("peer chunks the folder differently: both nodes need the same repository (or none)")
	}
	if idx := h.Folders[i].Index; idx != p.peerIndex {
		if p.peerIndex != "" || p.next != 0 {
			p.log.Info("peer's index is new: asking it for everything", "index", idx)
		}
		p.next, p.peerIndex = 0, idx
		p.forgetRetries()
		p.saveCursor()
	}
	p.setConnected(true, nil)
	level := slog.LevelInfo
	if p.down.active() {
		level = slog.LevelDebug // "reconnected" once an index batch comes
	}
	p.log.Log(ctx, level, "peer connected", "node", h.Node, "peer_seq", h.Folders[i].Seq, "from", p.next)
	if err := p.firstScan(ctx); err != nil {
		return err
	}
	// Batches are prepared ahead, several at once (see window), and
	// committed in order. The next index batch is asked for while they
	// are.
	w := newWindow(ctx, p.r, max(dirBudget()/max(len(p.n.pullers), 1), guessDirs))
	defer w.drop()
	var ahead chan fetched // the batch after the window's, asked for
	var held *fetched      // one that came but could not be prepared yet
	for {
		if len(w.stages) == 0 {
			b, err := p.nextBatch(ctx, held)
			held = nil
			if errors.Is(err, errPollCut) {
				continue
			}
			if err != nil {
				return err
			}
			p.seen(b)
			p.down.over("peer reconnected", "node", h.Node)
			if len(b.Entries) == 0 {
				if !b.More && b.Seq > p.next {
					p.next = b.Seq
				}
				if b.Seq < p.next {
					p.next = 0 // the peer's index was rebuilt: ask again from the start
				}
				p.saveCursor()
				if !b.More {
					if err := p.endAdoption(); err != nil {
						return err
					}
				}
				continue
			}
			w.start(b, p.next)
			ahead = p.askAhead(ctx, b)
		}
		p.setPending(w.pending())
		select {
		case <-ctx.Done():
			return ctx.Err()
		case r := <-ahead:
			ahead, held = nil, &r
			if r.err == nil {
				p.seen(r.b)
			}
		case <-w.ready:
			if err := p.commitReady(w); err != nil {
				return err
			}
		}
		if p.fromStart.Load() {
			w.drop() // asked again from the start: what was prepared is not what follows
			ahead, held = nil, nil
		}
		// the batch that came is prepared as soon as it fits
		if held != nil && held.err == nil && len(held.b.Entries) > 0 && len(w.stages) > 0 &&
			held.since == w.last() && w.fits(held.b.Entries) {
			w.start(held.b, held.since)
			ahead, held = p.askAhead(ctx, held.b), nil
		}
		if len(w.stages) == 0 {
			p.setPending(0, 0)
			if held == nil && ahead == nil && !p.fromStart.Load() {
				// the last batch the peer listed is applied
				if err := p.endAdoption(); err != nil {
					return err
				}
			}
		}
	}
}

// errPollCut is a poll cut short by restart.
var errPollCut = errors.New("poll cut by restart")

// commitReady commits what the window has prepared: the oldest batch
// with those prepared after it, as one, once it is prepared; before that,
// those after it that may go first (window.early). The cursor moves past
// a batch once it and every batch before it are committed. It commits
// once, and asks to be called again, so that the next index batch is
// taken in between.
func (p *puller) commitReady(w *window) error {
	var ss []*stage
	var last *stage // the newest batch the cursor passes
	for len(w.stages) > 0 && w.stages[0].committed {
		last = w.pop()
	}
	if len(w.stages) > 0 {
		select {
		case <-w.stages[0].ahead.Done():
			if _, err := w.stages[0].ahead.Result(); err != nil {
				w.pop()
				return err
			}
			ss, last = w.popPrepared()
		default:
			ss = w.early()
		}
	}
	if len(ss) > 0 {
		pbs := make([]*receive.Prepared, len(ss))
		var es []wire.Entry
		for i, s := range ss {
			pbs[i], _ = s.ahead.Result()
			es = append(es, s.es...)
			s.committed = true
		}
		fails, err := p.r.Commit(receive.Merge(pbs))
		if err != nil {
			return err
		}
		p.settle(es, fails)
		w.poke()
	}
	if last != nil {
		p.next = last.last
		if !last.more && last.seq > p.next {
			p.next = last.seq
		}
		p.saveCursor()
	}
	return nil
}

// nextBatch returns the batch that follows the cursor: held, if it came
// ahead and still follows (a restart or a retry round may have moved the
// cursor meanwhile), or one polled for, after the retries that are due.
func (p *puller) nextBatch(ctx context.Context, held *fetched) (wire.IndexBatch, error) {
	due, next := p.due(p.n.clk.Now())
	if len(due) > 0 {
		if err := p.retryFailed(ctx, due); err != nil {
			return wire.IndexBatch{}, err
		}
		// What the retries applied moves the cursor now, not when the
		// next poll returns (up to pollWait later).
		p.saveCursor()
		due, next = p.due(p.n.clk.Now())
	}
	wait := pollWait
	if p.down.active() {
		wait = 0 // back from a failure: its end is logged at the first answer
	}
	switch {
	case len(due) > 0: // due again already (a retry round longer than the backoff)
		wait = 0
	case !next.IsZero():
		// the poll returns when the next retry is due
		wait = min(wait, max(next.Sub(p.n.clk.Now()), time.Millisecond))
	}
	if p.fromStart.Swap(false) {
		p.next = 0
		p.forgetRetries()
		held = nil
	}
	if held != nil && held.since == p.next {
		return held.b, held.err
	}
	pctx, cancel := context.WithCancel(ctx)
	p.mu.Lock()
	p.pollCancel = cancel
	p.mu.Unlock()
	b, err := p.c.index(pctx, p.f.Config.ID, p.next, wait)
	cancel()
	if err != nil && p.fromStart.Load() && ctx.Err() == nil {
		return b, errPollCut
	}
	return b, err
}

// askAhead asks for the batch after b, if the peer has more, while b is
// prepared; nil if it has not.
func (p *puller) askAhead(ctx context.Context, b wire.IndexBatch) chan fetched {
	if !b.More {
		return nil
	}
	last := b.Entries[len(b.Entries)-1].Seq
	ahead := make(chan fetched, 1)
	go func() {
		nb, err := p.c.index(ctx, p.f.Config.ID, last, 0)
		ahead <- fetched{nb, err, last}
	}()
	return ahead
}

// fetched is an index batch asked for ahead.
type fetched struct {
	b     wire.IndexBatch
	err   error
	since uint64
}

// setPending notes the files and bytes being applied, for status.
func (p *puller) setPending(files, bytes int64) {
	p.mu.Lock()
	p.stat.pendFiles, p.stat.pendBytes = files, bytes
	p.mu.Unlock()
}

// applyBatch applies es and files its failures for retry.
func (p *puller) applyBatch(ctx context.Context, es []wire.Entry) error {
	var bytes int64
	for _, e := range es {
		bytes += e.Size
	}
	p.setPending(int64(len(es)), bytes)
	defer p.setPending(0, 0)
	fails, err := p.r.Apply(ctx, es)
	if err != nil {
		return err
	}
	p.settle(es, fails)
	return nil
}

// safeCursor is the sequence number below which every entry is applied:
// before the oldest failed one, so that a restart tries that one again.
// With outvoted false, it is the cursor as status shows it: an outvoted
// version is not one this node lags behind with, but a restart asks for
// it again all the same.
func (p *puller) safeCursor(outvoted bool) uint64 {
	c := p.next
	for _, fl := range p.retry {
		if outvoted || !errors.Is(fl.err, receive.ErrOutvoted) {
			c = min(c, fl.e.Seq-1)
		}
	}
	return c
}

// The cursor is stored as 8 bytes of sequence number followed by the
// peer's index ID.
func (p *puller) loadCursor() uint64 {
	v, ok, err := p.n.db().GetMeta(p.key)
	if err != nil || !ok || len(v) < 8 {
		return 0
	}
	p.peerIndex = string(v[8:])
	return binary.BigEndian.Uint64(v)
}

func (p *puller) saveCursor() {
	c := p.safeCursor(true)
	p.mu.Lock()
	p.stat.cursor = p.safeCursor(false)
	p.mu.Unlock()
	if c == p.saved && c != 0 {
		return
	}
	v := append(binary.BigEndian.AppendUint64(nil, c), p.peerIndex...)
	if err := p.n.db().PutMeta(p.key, v); err != nil {
		p.log.Error("save cursor", "err", err)
		return
	}
	p.saved = c
}

func (p *puller) seen(b wire.IndexBatch) {
	p.mu.Lock()
	p.stat.connected, p.stat.lastSeen, p.stat.peerSeq = true, p.n.clk.Now(), b.Seq
	p.mu.Unlock()
}

// setConnected notes a session up (ok) or ended with err. The end of a
// session that was up is the last moment the peer was known to be there:
// lastSeen.
func (p *puller) setConnected(ok bool, err error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if ok || p.stat.connected {
		p.stat.lastSeen = p.n.clk.Now()
	}
	p.stat.connected = ok
	if ok {
		p.stat.lastErr = ""
	} else if err != nil {
		p.stat.lastErr = err.Error()
	}
}
