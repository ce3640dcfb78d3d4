package transfer

import (
	"context"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/syncd/syncd/config"
	"github.com/syncd/syncd/crypto"
	"github.com/syncd/syncd/transfer/wire"
)

// editFixture mirrors a 24 MiB file from a to b, then edits 100 KiB in
// the middle of a's copy in place, and returns the nodes, the edit's
// length and b's fetched bytes before the edit reached it.
func editFixture(t *testing.T, tune func(n *Node)) (a, b *testNode, edit int, before uint64) {
	rnd := rand.New(rand.NewPCG(7, 7))
	data := make([]byte, 24<<20)
	for i := range data {
		data[i] = byte(rnd.Uint32())
	}
	a = newTestNode(t, "a", config.SendReceive)
	b = newTestNode(t, "b", config.SendReceive)
	b.tune = tune
	connect(a, b)
	if err := os.WriteFile(filepath.Join(a.dir, "db.sql"), data, 0o644); err != nil {
		t.Fatal(err)
	}
	a.index(t)
	a.start(t)
	b.start(t)
	converge(t, a, b)
	before = b.node.PeerMetrics()[0].FetchedBytes

	edit = 100 << 10
	at := len(data)/2 + 12345
	for i := at; i < at+edit; i++ {
		data[i] = byte(rnd.Uint32())
	}
	if err := os.WriteFile(filepath.Join(a.dir, "db.sql"), data, 0o644); err != nil {
		t.Fatal(err)
	}
	a.index(t)
	converge(t, a, b)
	return a, b, edit, before
}

// An in-place edit of a large file costs the receiver about the edit's
// bytes, not the chunks around it: it asks for the changed chunks' segment
// sums and fetches only the segments that differ from its own copy.
func TestEditFetchesTheSegmentsThatDiffer(t *testing.T) {
	_, b, edit, before := editFixture(t, nil)
	got := b.node.PeerMetrics()[0].FetchedBytes - before
	if limit := uint64(edit + 2*wire.SumSegment); got > limit {
		t.Errorf("b fetched %d bytes for an edit of %d, want at most %d (the segments it touches)", got, edit, limit)
	}
	if !strings.Contains(b.log.String(), "narrowed to the segments that differ") {
		t.Errorf("b did not log the narrowed blocks:\n%s", b.log)
	}
}

// A large file's blocks are written to its temporary file with O_DIRECT,
// both those fetched (its initial mirror) and those copied from the old
// copy (the edit): more than a 24 MiB file's worth in all.
func TestLargeFileWrittenDirect(t *testing.T) {
	var direct atomic.Int64
	editFixture(t, func(n *Node) {
		n.pullers[0].r.Hooks.Direct = func(n int64) { direct.Add(n) }
	})
	if got := direct.Load(); got < 40<<20 {
		t.Errorf("%d bytes written with O_DIRECT, want more than 40 MiB of the 2 × 24 MiB built", got)
	}
}

// A block put together from local segments that does not match its ID
// (here: sums that claim every segment is unchanged, as a broken or lying
// peer might send) is asked for whole: the replica still ends equal.
func TestPiecedBlockNotMatchingItsIDAskedWhole(t *testing.T) {
	_, b, edit, before := editFixture(t, func(n *Node) {
		r, rf := n.pullers[0].r, n.pullers[0].f
		r.Sums = func(ctx context.Context, q *wire.BlockRequest, fn func(i, j int, sums []byte, ok bool) error) error {
			// the receiver's own sums: everything "matches" its old copy
			h := crypto.NewHasher(rf.Chunking.Key)
			for i, fb := range q.Files {
				f, err := os.Open(filepath.Join(rf.Config.Path, fb.Path))
				if err != nil {
					return err
				}
				for j, blk := range fb.Blocks {
					data := make([]byte, blk.Length)
					n, _ := f.ReadAt(data, blk.Offset)
					if err := fn(i, j, wire.SegmentSums(rf.Chunking, h, blk.Offset, data[:n], nil), true); err != nil {
						f.Close()
						return err
					}
				}
				f.Close()
			}
			return nil
		}
	})
	got := b.node.PeerMetrics()[0].FetchedBytes - before
	if got <= uint64(edit) {
		t.Errorf("b fetched %d bytes, want the whole changed chunks (more than the %d-byte edit)", got, edit)
	}
	if !strings.Contains(b.log.String(), "do not match their IDs: asked for whole") {
		t.Errorf("b did not log the blocks asked for whole:\n%s", b.log)
	}
}

// A node serves the sums of the segments of the blocks asked, each as the
// receiver computes them over the same bytes; sums= other than 1, or
// without a framed response, is refused with a 400 that says why.
func TestServeSegmentSums(t *testing.T) {
	a := newTestNode(t, "a", config.SendReceive)
	b := newTestNode(t, "b", config.SendReceive)
	connect(a, b)
	data := strings.Repeat("INSERT INTO wp_posts VALUES (1,'x');\n", 3000) // ~110 KiB
	a.write(t, "db.sql", data)
	a.index(t)
	a.start(t)
	c := newClient(b.id, a.id.ID, a.cfg.Node.Listen, limiters{}, limiters{}, nil)
	defer c.close()
	blk := wire.Block{Offset: 1000, Length: uint32(len(data) - 1000)}
	q := wire.BlockRequest{Files: []wire.FileBlocks{{Path: "db.sql", Blocks: []wire.Block{blk}}, {Path: "gone", Blocks: []wire.Block{blk}}}}
	var got [][]byte
	var oks []bool
	err := c.segmentSums(t.Context(), "www", &q, func(i, j int, s []byte, ok bool) error {
		got, oks = append(got, append([]byte(nil), s...)), append(oks, ok)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	want := wire.SegmentSums(a.f.Chunking, crypto.NewHasher(a.f.Chunking.Key), blk.Offset, []byte(data[blk.Offset:]), nil)
	if len(got) != 2 || !oks[0] || string(got[0]) != string(want) || oks[1] {
		t.Errorf("sums %x (ok %v), want %x for db.sql and none for a file the peer does not have", got, oks, want)
	}
	if n := wire.Segments(blk.Offset, blk.Length); len(want) != n*wire.SumSize || n != 7 {
		t.Errorf("%d bytes of sums for %d segments", len(want), n)
	}
	for _, params := range []string{"compress=raw&sums=2", "sums=1"} {
		resp, err := c.do(t.Context(), c.hc, "POST", "/v1/blocks?folder=www&"+params, nil, q.Append(nil))
		if err == nil {
			resp.Body.Close()
			t.Errorf("%s: answered", params)
		} else if !strings.Contains(err.Error(), "400") || !strings.Contains(err.Error(), "sums=") {
			t.Errorf("%s: %v, want a 400 naming sums=", params, err)
		}
	}
}
