package transfer

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"golang.org/x/sync/errgroup"

	"github.com/syncd/syncd/crypto"
	"github.com/syncd/syncd/transfer/wire"
)

// Block requests are cut to requestBytes and run fetchers at a time: a
// few large requests in flight keep the connection busy without holding
// much in memory (each block is written out as it arrives).
const (
	requestBytes = 16 << 20
	fetchers     = 3
)

var errUnavailable = fmt.Errorf("the peer no longer has this version")

// errHashMismatch fails a file one of whose blocks does not match its ID;
// it matches errUnavailable too (the peer's file changed under it, most
// likely) and reads the same.
var errHashMismatch = fmt.Errorf("%w", errUnavailable)

// errAllFailed ends a block request whose files have all failed: the
// rest of its blocks would be of no use.
var errAllFailed = errors.New("every file of the request failed")

// fetchAll gets the blocks of q from the peer and writes each, checked
// against its ID, into the temporary file of owners[i]. A block that is
// missing or wrong fails its file, not the batch.
func (r *receiver) fetchAll(ctx context.Context, q *wire.BlockRequest, owners []*action) error {
	if len(q.Files) == 0 {
		return nil
	}
	type part struct {
		q      wire.BlockRequest
		owners []*action
		bytes  int64
		blocks int
	}
	var parts []*part
	cur := &part{}
	for i, fb := range q.Files {
		for start := 0; start < len(fb.Blocks); {
			if cur.bytes >= requestBytes || cur.blocks >= wire.MaxBlocks {
				parts = append(parts, cur)
				cur = &part{}
			}
			end := start
			for end < len(fb.Blocks) && cur.bytes < requestBytes && cur.blocks < wire.MaxBlocks {
				cur.bytes += int64(fb.Blocks[end].Length)
				cur.blocks++
				end++
			}
			cur.q.Files = append(cur.q.Files, wire.FileBlocks{Path: fb.Path, Blocks: fb.Blocks[start:end]})
			cur.owners = append(cur.owners, owners[i])
			start = end
		}
	}
	parts = append(parts, cur)

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
	g, ctx := errgroup.WithContext(ctx)
	g.SetLimit(fetchers)
	for _, p := range parts {
		g.Go(func() error {
			if allFailed(p.owners) {
				return nil // a full disk, say: nothing to ask for
			}
			h := crypto.NewHasher(r.f.Chunking.Key)
			err := r.fetch(ctx, &p.q, func(i, j int, data []byte, ok bool) error {
				a, b := p.owners[i], p.q.Files[i].Blocks[j]
				switch {
				case !ok:
					fail(a, fmt.Errorf("fetch %s: %w", a.e.Path, errUnavailable))
				case r.f.Chunking.ID(h, data) != b.ID:
					fail(a, fmt.Errorf("fetch %s: block at %d does not match its ID: %w", a.e.Path, b.Offset, errHashMismatch))
				default:
					mu.Lock()
					failed := a.err != nil
					mu.Unlock()
					if failed {
						break // no more of a failed file: the space is for the others
					}
					if _, err := a.file.WriteAt(data, b.Offset); err != nil {
						fail(a, fmt.Errorf("write %s: %w", a.e.Path, err))
					} else {
						a.wrote(len(data))
						r.count.addFetched(len(data))
						return nil
					}
				}
				if allFailed(p.owners) {
					return errAllFailed // and when no file is left, the rest is not asked for
				}
				return nil
			})

			if errors.Is(err, errAllFailed) {
				return nil
			}
			if err != nil && ctx.Err() == nil {
				// The connection broke: every file of the request waits.
				for _, a := range p.owners {
					fail(a, err)
				}
				return nil
			}
			return ctx.Err()
		})
	}
	return g.Wait()
}
