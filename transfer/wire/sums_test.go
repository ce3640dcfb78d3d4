package wire

import "testing"

// The segments of a block tile it exactly, cut at multiples of
// SumSegment in the file.
func TestSegments(t *testing.T) {
	for _, c := range []struct {
		off  int64
		len  uint32
		want int
	}{
		{0, 0, 0}, {0, 1, 1}, {0, SumSegment, 1}, {0, SumSegment + 1, 2},
		{SumSegment - 1, 2, 2}, {5, 3 * SumSegment, 4}, {3 * SumSegment, 2 * SumSegment, 2},
		{1<<30 + 17, 8 << 20, 513},
	} {
		n := Segments(c.off, c.len)
		if n != c.want {
			t.Errorf("Segments(%d, %d) = %d, want %d", c.off, c.len, n, c.want)
		}
		at := c.off
		for k := range n {
			o, l := Segment(c.off, c.len, k)
			if o != at || l == 0 || l > SumSegment || (k > 0 && o%SumSegment != 0) {
				t.Fatalf("Segment(%d, %d, %d) = %d+%d, want it at %d, 1..%d long, aligned after the first", c.off, c.len, k, o, l, at, SumSegment)
			}
			at += int64(l)
		}
		if at != c.off+int64(c.len) {
			t.Errorf("segments of %d+%d end at %d", c.off, c.len, at)
		}
	}
}
