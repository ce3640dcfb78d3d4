package receive

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"golang.org/x/sync/errgroup"

	"github.com/syncd/syncd/chunkstore"
	"github.com/syncd/syncd/crypto"
	"github.com/syncd/syncd/internal/atdir"
	"github.com/syncd/syncd/transfer/wire"
)

// Block requests are cut to at most RequestBytes (less on a slow link:
// see Options.RequestSize) and run fetchers at a time: a few large
// requests in flight keep the connection busy without holding much in
// memory (each block is written out as it arrives).
const (
	RequestBytes = 16 << 20 // the most payload a block request asks for
	fetchers     = 3
)

// ErrUnavailable fails a file one of whose blocks the peer no longer has:
// its version changed there since it was announced (a newer one follows).
var ErrUnavailable = fmt.Errorf("the peer no longer has this version")

// ErrHashMismatch fails a file one of whose blocks does not match its ID;
// it matches ErrUnavailable too (the peer's file changed under it, most
// likely) and reads the same.
var ErrHashMismatch = fmt.Errorf("%w", ErrUnavailable)

// errAllFailed ends a block request whose files have all failed: the
// rest of its blocks would be of no use.
var errAllFailed = errors.New("every file of the request failed")

// ErrAbandoned is what a [FetchFunc] returns when it gave up on a
// response before its end (a raw block response that slowed down, say):
// the blocks it has not brought are asked for again.
var ErrAbandoned = errors.New("blocks: the response slowed down and was abandoned")

// fetchAll gets the blocks of q from the peer and writes each, checked
// against its ID, into the temporary file of owners[i] (in the
// directories at; a large file's with O_DIRECT, see direct.go). A block
// that is missing or wrong fails its file, not the batch.
func (r *Receiver) fetchAll(ctx context.Context, q *wire.BlockRequest, owners []*action, at *atdir.Dirs) error {
	if len(q.Files) == 0 {
		return nil
	}
	var mu sync.Mutex // guards a.err
	fail := func(a *action, err error) {
		mu.Lock()
		if a.err == nil {
			a.err = err
		}
		mu.Unlock()
	}
	allFailed := func(as []*action) bool {
		mu.Lock()
		defer mu.Unlock()
		for _, a := range as {
			if a.err == nil {
				return false
			}
		}
		return true
	}
	cut := newCutter(q, owners, r.requestSize)
	g, ctx := errgroup.WithContext(ctx)
	for range fetchers {
		g.Go(func() error {
			h := crypto.NewHasher(r.f.Chunking.Key)
			// the blocks of a large file that come one after the other
			// are written as a run (see direct.go); it ends with the file
			// or the response
			var run *directRun
			var runOf *action
			endRun := func() {
				if run != nil {
					if err := run.close(); err != nil {
						fail(runOf, fmt.Errorf("write %s: %w", runOf.e.Path, err))
					}
					run, runOf = nil, nil
				}
			}
			write := func(a *action, data []byte, off int64) error {
				if !a.direct() {
					return writeAt(a, nil, data, off)
				}
				if runOf != a {
					endRun()
					run, runOf = r.openRun(a, at), a
				}
				return writeAt(a, run, data, off)
			}
			for p := cut.next(); p != nil; p = cut.next() {
				if allFailed(p.owners) {
					continue // a full disk, say: nothing to ask for
				}
				var next [2]int // the block after the last one that came: file i, block j
				err := r.Fetch(ctx, &p.q, func(i, j int, data []byte, ok bool) error {
					next = [2]int{i, j + 1}
					a, b := p.owners[i], p.q.Files[i].Blocks[j]
					switch {
					case !ok:
						fail(a, fmt.Errorf("fetch %s: %w", a.e.Path, ErrUnavailable))
					case b.ID != (chunkstore.ID{}) && r.f.Chunking.ID(h, data) != b.ID:
						// (a zero ID: a piece of a block, checked once whole; see delta.go)
						fail(a, fmt.Errorf("fetch %s: block at %d does not match its ID: %w", a.e.Path, b.Offset, ErrHashMismatch))
					default:
						mu.Lock()
						failed := a.err != nil
						mu.Unlock()
						if failed {
							break // no more of a failed file: the space is for the others
						}
						if err := write(a, data, b.Offset); err != nil {
							fail(a, fmt.Errorf("write %s: %w", a.e.Path, err))
						} else {
							r.Count.AddFetched(len(data))
							return nil
						}
					}
					if allFailed(p.owners) {
						return errAllFailed // and when no file is left, the rest is not asked for
					}
					return nil
				})
				endRun()
				switch {
				case errors.Is(err, errAllFailed):
				case errors.Is(err, ErrAbandoned) && ctx.Err() == nil:
					rest := p.rest(next)
					if rest != nil {
						r.Log.Debug("a raw block response slowed down: what it did not bring is asked for again",
							"blocks", rest.blocks())
					}
					cut.again(rest)
				case err != nil && ctx.Err() == nil:
					// The connection broke: every file of the request waits.
					for _, a := range p.owners {
						fail(a, err)
					}
				case ctx.Err() != nil:
					return ctx.Err()
				}
			}
			return nil
		})
	}
	return g.Wait()
}

func (r *Receiver) requestSize() int64 {
	if r.RequestSize == nil {
		return RequestBytes
	}
	return r.RequestSize()
}

// part is one block request of a fetchAll, with the actions that own its
// files.
type part struct {
	q      wire.BlockRequest
	owners []*action
}

// rest is what of p follows block next[1] of file next[0]: the blocks an
// abandoned response did not bring (nil: none).
func (p *part) rest(next [2]int) *part {
	r := &part{}
	for i := next[0]; i < len(p.q.Files); i++ {
		fb := p.q.Files[i]
		if i == next[0] {
			fb.Blocks = fb.Blocks[min(next[1], len(fb.Blocks)):]
		}
		if len(fb.Blocks) > 0 {
			r.q.Files = append(r.q.Files, fb)
			r.owners = append(r.owners, p.owners[i])
		}
	}
	if len(r.q.Files) == 0 {
		return nil
	}
	return r
}

// blocks counts p's blocks.
func (p *part) blocks() int {
	n := 0
	for _, fb := range p.q.Files {
		n += len(fb.Blocks)
	}
	return n
}

// cutter cuts a block request into parts as fetchers ask for them, each of
// the size the link calls for at that time; parts given back (again) go
// out first.
type cutter struct {
	mu   sync.Mutex
	size func() int64
	todo []*part // what is left to ask for, the next first
}

func newCutter(q *wire.BlockRequest, owners []*action, size func() int64) *cutter {
	return &cutter{size: size, todo: []*part{{q: *q, owners: owners}}}
}

// again gives p back (the rest of an abandoned response): it is cut again
// to the size of then, the link having slowed down.
func (c *cutter) again(p *part) {
	if p == nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.todo = append([]*part{p}, c.todo...)
}

// next returns the next part, or nil when all were given out.
func (c *cutter) next() *part {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.todo) == 0 {
		return nil
	}
	first, rest := c.todo[0].cut(c.size())
	c.todo = c.todo[1:]
	if rest != nil {
		c.todo = append([]*part{rest}, c.todo...)
	}
	return first
}

// cut splits p after about limit payload bytes (at least one block, at
// most wire.MaxBlocks); rest is nil when all of p fits.
func (p *part) cut(limit int64) (first, rest *part) {
	first = &part{}
	var bytes int64
	blocks, i, j := 0, 0, 0
	for i < len(p.q.Files) && bytes < limit && blocks < wire.MaxBlocks {
		fb := p.q.Files[i]
		end := j
		for end < len(fb.Blocks) && bytes < limit && blocks < wire.MaxBlocks {
			bytes += int64(fb.Blocks[end].Length)
			blocks++
			end++
		}
		if end > j {
			first.q.Files = append(first.q.Files, wire.FileBlocks{Path: fb.Path, Blocks: fb.Blocks[j:end]})
			first.owners = append(first.owners, p.owners[i])
		}
		j = end
		if j >= len(fb.Blocks) {
			i, j = i+1, 0
		}
	}
	return first, p.rest([2]int{i, j})
}
