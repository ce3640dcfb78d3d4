package receive

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"syscall"

	"github.com/syncd/syncd/crypto"
	"github.com/syncd/syncd/internal/atdir"
	"github.com/syncd/syncd/transfer/wire"
)

// An in-place edit of a large file (a database dump, say) changes the
// chunks around it: for a 1 MiB edit in the bench's 512 MiB dump, 5.5 MB
// of chunks, most of it the old text on either side of the edit. A
// receiver that has the file's older version asks the peer for the
// segment sums of such a chunk (wire.FeatureSums), copies from its own
// copy the segments whose sums match, and asks only for the others. The
// chunk, put together, is checked against its ID like any other; one that
// fails (a local file changed meanwhile, a false match of the short sums)
// is asked for whole.
const deltaMin = 4 * wire.SumSegment // a missing block shorter than this is asked for whole

// SumsFunc asks the peer for the segment sums of the blocks of q and calls
// fn with each block's, in order (see transfer's client.segmentSums).
type SumsFunc func(ctx context.Context, q *wire.BlockRequest, fn func(i, j int, sums []byte, ok bool) error) error

// ErrNoSums is what a SumsFunc returns for a peer that serves none.
var ErrNoSums = errors.New("the peer serves no segment sums")

// pieced is a block that delta put together from local segments and
// pieces asked for: it is checked whole once they came.
type pieced struct {
	a *action
	b wire.Block
}

// delta narrows the blocks of q whose file has an older version here
// (owners[i].have) to the segments that differ from it: their matching
// segments are copied into the temporary file, and each such block is
// replaced in q by pieces, with a zero ID, that cover the rest. It returns
// the blocks to check once the pieces came, and the owners of q's files
// as q is now (a file left with nothing to ask for is dropped). Any error
// leaves q as it was for the blocks not yet narrowed: asking for whole
// blocks always works.
func (r *Receiver) delta(ctx context.Context, q *wire.BlockRequest, owners []*action, at *atdir.Dirs) ([]pieced, []*action) {
	if r.Sums == nil {
		return nil, owners
	}
	var dq wire.BlockRequest
	var where [][2]int // dq's file i, block j → q's
	for i, fb := range q.Files {
		a := owners[i]
		if !a.have || a.local.Deleted || a.local.Type != "file" || a.local.Size < deltaMin {
			continue
		}
		var bs []wire.Block
		for j, b := range fb.Blocks {
			if b.Length >= deltaMin && b.Offset < a.local.Size {
				bs = append(bs, b)
				where = append(where, [2]int{i, j})
			}
		}
		if len(bs) > 0 {
			dq.Files = append(dq.Files, wire.FileBlocks{Path: fb.Path, Blocks: bs})
		}
	}
	if len(dq.Files) == 0 {
		return nil, owners
	}
	sums := make([][]byte, len(where))
	k := 0
	err := r.Sums(ctx, &dq, func(_, _ int, s []byte, ok bool) error {
		if ok {
			sums[k] = append([]byte(nil), s...)
		}
		k++
		return nil
	})
	if err != nil {
		if !errors.Is(err, ErrNoSums) && ctx.Err() == nil {
			r.Log.Debug("segment sums not served: whole blocks asked for", "err", err)
		}
		return nil, owners
	}
	h := crypto.NewHasher(r.f.Chunking.Key)
	pieces := map[[2]int][]wire.Block{} // q's block → what is asked instead
	var out []pieced
	var old *os.File
	oldOf := -1
	defer func() {
		if old != nil {
			old.Close()
		}
	}()
	var buf, mine []byte
	var whole, asked int64
	for n, ij := range where {
		a, b := owners[ij[0]], q.Files[ij[0]].Blocks[ij[1]]
		if sums[n] == nil || a.err != nil {
			continue
		}
		if oldOf != ij[0] {
			if old != nil {
				old.Close()
			}
			old, oldOf = nil, ij[0]
			f, err := at.OpenFile(a.e.Path, os.O_RDONLY|syscall.O_NONBLOCK, 0)
			if err != nil {
				continue
			}
			old = f
		}
		if old == nil {
			continue
		}
		if cap(buf) < int(b.Length) {
			buf = make([]byte, b.Length)
		}
		got, err := old.ReadAt(buf[:b.Length], b.Offset)
		if err != nil && !errors.Is(err, io.EOF) {
			continue
		}
		mine = wire.SegmentSums(r.f.Chunking, h, b.Offset, buf[:got], mine[:0])
		ps, err := r.narrow(a, b, buf[:got], sums[n], mine)
		if err != nil {
			a.err = err
			continue
		}
		whole += int64(b.Length)
		for _, p := range ps {
			asked += int64(p.Length)
		}
		pieces[ij] = ps
		out = append(out, pieced{a, b})
	}
	if len(out) == 0 {
		return nil, owners
	}
	files, left := q.Files[:0:0], owners[:0:0]
	for i, fb := range q.Files {
		var bs []wire.Block
		for j, b := range fb.Blocks {
			if ps, ok := pieces[[2]int{i, j}]; ok {
				bs = append(bs, ps...)
			} else {
				bs = append(bs, b)
			}
		}
		if len(bs) > 0 {
			files = append(files, wire.FileBlocks{Path: fb.Path, Blocks: bs})
			left = append(left, owners[i])
		}
	}
	q.Files = files
	r.Log.Debug("changed blocks narrowed to the segments that differ", "blocks", len(out), "bytes", whole, "asked", asked)
	return out, left
}

// narrow writes into a's temporary file the segments of block b that the
// local data (the old file's bytes over b's range, possibly shorter)
// holds as the peer's sums say, and returns pieces for the rest: runs of
// differing segments.
func (r *Receiver) narrow(a *action, b wire.Block, local, theirs, mine []byte) ([]wire.Block, error) {
	var ps []wire.Block
	for k := range wire.Segments(b.Offset, b.Length) {
		so, sl := wire.Segment(b.Offset, b.Length, k)
		rel := so - b.Offset
		same := rel+int64(sl) <= int64(len(local)) && len(mine) >= (k+1)*wire.SumSize &&
			string(mine[k*wire.SumSize:(k+1)*wire.SumSize]) == string(theirs[k*wire.SumSize:(k+1)*wire.SumSize])
		if same {
			if _, err := a.file.WriteAt(local[rel:rel+int64(sl)], so); err != nil {
				return nil, fmt.Errorf("write %s: %w", a.e.Path, err)
			}
			a.wrote(int(sl))
			r.segBytes.Add(int64(sl))
			continue
		}
		if n := len(ps); n > 0 && ps[n-1].Offset+int64(ps[n-1].Length) == so {
			ps[n-1].Length += sl
		} else {
			ps = append(ps, wire.Block{Offset: so, Length: sl})
		}
	}
	return ps, nil
}

// checkPieced checks each block put together from pieces against its ID,
// and returns those that fail, to be asked for whole.
func (r *Receiver) checkPieced(ps []pieced) (*wire.BlockRequest, []*action) {
	var q wire.BlockRequest
	var owners []*action
	h := crypto.NewHasher(r.f.Chunking.Key)
	var buf []byte
	for _, p := range ps {
		if p.a.err != nil {
			continue
		}
		if cap(buf) < int(p.b.Length) {
			buf = make([]byte, p.b.Length)
		}
		data := buf[:p.b.Length]
		if _, err := p.a.file.ReadAt(data, p.b.Offset); err == nil && r.f.Chunking.ID(h, data) == p.b.ID {
			continue
		}
		if n := len(owners); n > 0 && owners[n-1] == p.a {
			q.Files[n-1].Blocks = append(q.Files[n-1].Blocks, p.b)
			continue
		}
		q.Files = append(q.Files, wire.FileBlocks{Path: p.a.e.Path, Blocks: []wire.Block{p.b}})
		owners = append(owners, p.a)
	}
	return &q, owners
}
