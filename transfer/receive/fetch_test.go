package receive

import (
	"testing"

	"github.com/syncd/syncd/transfer/wire"
)

// The cutter gives out parts of the size asked at each call, and a part
// given back (the rest of an abandoned response) first, cut again to the
// size of then.
func TestCutter(t *testing.T) {
	q := &wire.BlockRequest{}
	owners := []*action{{}, {}, {}}
	for _, n := range []int{3, 0, 5} { // blocks of 100 bytes; file 1 has none
		fb := wire.FileBlocks{Path: string(rune('a' + len(q.Files)))}
		for j := range n {
			fb.Blocks = append(fb.Blocks, wire.Block{Offset: int64(100 * j), Length: 100})
		}
		q.Files = append(q.Files, fb)
	}
	size := int64(250)
	c := newCutter(q, owners, func() int64 { return size })
	shape := func(p *part) (s string) {
		for i, fb := range p.q.Files {
			if p.owners[i] == nil {
				t.Fatal("a file without its owner")
			}
			for _, b := range fb.Blocks {
				s += fb.Path + string(rune('0'+b.Offset/100))
			}
		}
		return s
	}
	if got := shape(c.next()); got != "a0a1a2" {
		t.Errorf("first part %q, want a0a1a2", got)
	}
	p := c.next()
	if got := shape(p); got != "c0c1c2" {
		t.Errorf("second part %q, want c0c1c2", got)
	}
	// its response brought c0 only: the rest comes back, cut to 100
	c.again(p.rest([2]int{0, 1}))
	size = 100
	for _, want := range []string{"c1", "c2", "c3", "c4"} {
		if got := shape(c.next()); got != want {
			t.Errorf("part %q, want %q", got, want)
		}
	}
	if p := c.next(); p != nil {
		t.Errorf("a part after the end: %q", shape(p))
	}
	if r := p.rest([2]int{0, 3}); r != nil {
		t.Errorf("the rest of a response that brought everything: %q", shape(r))
	}
}
