// Package receive applies a peer's entries to the local copy of a folder
// (DESIGN.md §5, docs/PROTOCOL.md): the receiving side of package
// transfer, which talks to the peers. For each batch of a peer's entries
// a [Receiver] plans what each takes here, builds the new files in
// temporary files beside their paths from chunks found in local files and
// blocks asked of the peer, and under the folder's lock moves them into
// place, keeping a conflicting local version as a conflict copy, and
// records them in the index: readers see a file's old version or its
// new one, never a mix.
//
// It asks the peer for nothing itself: the calls that do ([FetchFunc],
// [SumsFunc]) are given to it, and it never imports transfer.
package receive

import (
	"context"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sync/semaphore"

	"github.com/syncd/syncd/transfer/wire"
)

// Receiver applies the entries of one peer to one local folder. Make it
// with [New]; its Options and Hooks are set before its first batch and not
// changed after. It commits one batch at a time; batches may be prepared
// ahead, several at once, while earlier ones are committed (see
// [Receiver.PrepareAhead]).
type Receiver struct {
	Options

	// Hooks are called at points of a batch, for tests.
	Hooks Hooks

	f *Folder
	// segBytes counts the bytes of changed blocks taken from the local
	// copy by their segment sums (delta.go), for tests and the debug log
	segBytes atomic.Int64

	src *sources // the folder's, shared by its receivers (see Folder.sources)

	bring bringing            // the chunks batches being prepared may bring (ahead.go)
	slots *semaphore.Weighted // groups of files being built, across batches

	pmu      sync.Mutex          // guards partials
	partials map[string]*partial // by path: the files kept after a full disk
}

// Options are what the maker of a [Receiver] tells it: the peer, how to
// ask it for blocks, and where to log and count.
type Options struct {
	// Peer is the peer's name, for the log.
	Peer string
	// Fetch asks the peer for blocks. Required.
	Fetch FetchFunc
	// Sums asks the peer for segment sums (see delta.go); nil: whole
	// blocks only.
	Sums SumsFunc
	// RequestSize is how many payload bytes a block request should ask
	// for (nil: [RequestBytes]): the compression chooser's, which follows
	// the link.
	RequestSize func() int64
	// NodeName returns the ID prefix of the node with the vector ID
	// short, for conflict names. Required.
	NodeName func(short uint64) string
	// Self is this node's vector ID.
	Self uint64
	// Log receives the receiver's log; nil: discarded.
	Log *slog.Logger
	// Count counts what is applied; nil: not counted.
	Count Counter
}

// Hooks are called at points of a batch, for tests; a nil one is not.
type Hooks struct {
	// AfterBuild is called with a batch's entries once its files are
	// built, before any is placed.
	AfterBuild func(es []wire.Entry)
	// AfterPlace is called once rel was renamed into place, before the
	// receiver looks at it again.
	AfterPlace func(rel string)
	// BeforeRecord is called once a batch's files are in place and made
	// durable, before the index is written; an error it returns fails the
	// commit there, as a failed index write would.
	BeforeRecord func() error
	// Direct is called with the bytes of a large file's run written with
	// O_DIRECT (see direct.go), from the goroutine that wrote them.
	Direct func(n int64)
}

// Counter counts what a [Receiver] applies, for metrics. Its methods are
// called concurrently.
type Counter interface {
	// Applied counts e, applied at now (the system's time).
	Applied(e *wire.Entry, now time.Time)
	// AddConflict counts a local version kept as a conflict copy.
	AddConflict()
	// AddFetched counts n bytes of blocks that came from the peer.
	AddFetched(n int)
}

// New returns a receiver of a peer's entries into f, which it shares with
// the folder's other receivers (the paths being built, the local sources
// of chunks).
func New(f *Folder, o Options) *Receiver {
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	if o.Count == nil {
		o.Count = uncounted{}
	}
	return &Receiver{Options: o, f: f, slots: semaphore.NewWeighted(builders)}
}

// uncounted is the Counter of a receiver that counts nothing.
type uncounted struct{}

func (uncounted) Applied(*wire.Entry, time.Time) {}
func (uncounted) AddConflict()                   {}
func (uncounted) AddFetched(int)                 {}

// SegmentBytes returns how many bytes of changed blocks r took from the
// local copy of their file by their segment sums (delta.go), instead of
// asking the peer for them.
func (r *Receiver) SegmentBytes() int64 { return r.segBytes.Load() }

// FetchFunc asks the peer for blocks and calls fn with each, in the order
// asked (file i, block j); ok is false for a block the peer no longer has.
// It returns an error matching [ErrAbandoned] when it gave up on the
// response before its end: what fn was not called for is asked for again.
type FetchFunc func(ctx context.Context, q *wire.BlockRequest, fn func(i, j int, data []byte, ok bool) error) error
