package transfer

import (
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/syncd/syncd/config"
)

// A link that slows to 1 Mbit/s mid-transfer (issue 14): compression
// auto switches to compressed blocks and the mirror does not stall. B
// mirrors A's compressible tree over a 100 Mbit/s, 20 ms link (the fault
// proxy, both ways); once a quarter of the tree has crossed, the link
// drops to 1 Mbit/s. B must log the switch to compressed blocks, and the
// rest must cross within a bound: what was queued on the way when the
// link slowed (the proxy's queue, 256 KiB, and the sender's unsent
// bytes, notSentLowat) crosses at the slow rate first; then the slowed
// responses are noticed (2 × slowAfter at most) and abandoned; then
// twice the whole tree's compressed bytes, plus 10 s. Raw, the rest
// would take about 2 minutes.
func TestSlowLink(t *testing.T) {
	const (
		fast  = 100_000_000 / 8 // bytes/s
		slow  = 1_000_000 / 8
		delay = 10 * time.Millisecond // one way
	)
	a := newTestNode(t, "a", config.SendOnly)
	b := newTestNode(t, "b", config.ReceiveOnly)
	var raw, packed int
	for i := range 40 {
		content := phpText(i, 512<<10)
		a.write(t, fmt.Sprintf("wp/file%02d.php", i), content)
		raw += len(content)
		packed += len(zstdOf([]byte(content)))
	}
	queued := 256<<10 + notSentLowat
	bound := time.Duration(queued+2*packed)*time.Second/slow + 2*slowAfter + 10*time.Second
	t.Logf("tree: %d bytes, %d compressed; bound at 1 Mbit/s: %v", raw, packed, bound)
	toA, toB := proxied(t, a, b)
	toA.Shape(fast, delay)
	toB.Shape(fast, delay)
	// The link slows by the proxy's own count, a quarter of the tree in,
	// not when the test gets to look: a loaded runner could let the
	// whole tree through fast meanwhile.
	type mark struct {
		at   time.Time
		down int64
	}
	var slowedAt atomic.Pointer[mark]
	toA.AtDown(toA.BytesDown()+int64(raw/4), func() {
		toA.Shape(slow, delay)
		toB.Shape(slow, delay)
		slowedAt.Store(&mark{time.Now(), toA.BytesDown()})
	})
	a.index(t)

	eventually(t, "a quarter of the tree on the wire", func() bool { return slowedAt.Load() != nil })
	slowed, down0 := slowedAt.Load().at, slowedAt.Load().down
	t.Logf("slowed to 1 Mbit/s after %d bytes", down0)

	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	deadline := time.After(bound)
	for !sameTrees(t, a, b) || !settled(a, b) {
		select {
		case <-tick.C:
		case <-deadline:
			t.Fatalf("the mirror is not complete %v after the link slowed (%d bytes since; compressed switch logged: %v):\n%s",
				bound, toA.BytesDown()-down0, switched(b), logTail(b.log.String(), 20))
		}
	}
	t.Logf("complete %v after the link slowed, %d bytes since", time.Since(slowed), toA.BytesDown()-down0)
	if !switched(b) {
		t.Errorf("B never asked for compressed blocks:\n%s", logTail(b.log.String(), 20))
	}
}

// phpText is n bytes of PHP-like text, compressible as source code is.
func phpText(seed, n int) string {
	var sb strings.Builder
	for i := 0; sb.Len() < n; i++ {
		fmt.Fprintf(&sb, "\t$post_%d = get_post( $ids[%d] ); // file %d\n\techo esc_html( $post_%d->post_title );\n",
			i%64, i%256, seed, i%64)
	}
	return sb.String()[:n]
}

// switched reports whether n's log says compression auto asked for
// compressed blocks.
func switched(n *testNode) bool {
	return strings.Contains(n.log.String(), "compression auto: asking for compressed blocks")
}

// logTail is the last n lines of log.
func logTail(log string, n int) string {
	lines := strings.Split(strings.TrimRight(log, "\n"), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}
