package transfer

import (
	"bytes"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/syncd/syncd/config"
	"github.com/syncd/syncd/internal/clock/clocktest"
	"github.com/syncd/syncd/internal/faultproxy"
)

// proxied makes a and b peers whose every connection (a's pullers' to b
// and b's to a) goes through a fault proxy, and starts them: cutting
// both proxies is what the network shows of either node killed.
func proxied(t *testing.T, a, b *testNode) (toA, toB *faultproxy.Proxy) {
	t.Helper()
	connect(a, b)
	var err error
	if toA, err = faultproxy.New(a.cfg.Node.Listen); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { toA.Close() })
	if toB, err = faultproxy.New(b.cfg.Node.Listen); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { toB.Close() })
	b.cfg.Peers[0].Address = toA.Addr()
	a.cfg.Peers[0].Address = toB.Addr()
	a.start(t)
	b.start(t)
	return toA, toB
}

// connected reports what n's status and metrics say of its only peer,
// failing the test if they disagree.
func connected(t *testing.T, n *testNode) bool {
	t.Helper()
	st, m := n.node.Status(), n.node.PeerMetrics()
	if len(st) != 1 || len(m) != 1 {
		t.Fatalf("%s: %d peer statuses and %d metrics, want 1 each", n.name, len(st), len(m))
	}
	if st[0].Connected != m[0].Connected {
		// a session may go between the two reads: look again
		st, m = n.node.Status(), n.node.PeerMetrics()
		if st[0].Connected != m[0].Connected {
			t.Fatalf("%s: status says connected %v, metrics %v", n.name, st[0].Connected, m[0].Connected)
		}
	}
	return st[0].Connected
}

// within polls cond until it holds, failing the test if that takes
// longer than d; it returns how long it took.
func within(t *testing.T, d time.Duration, what string, cond func() bool) time.Duration {
	t.Helper()
	start := time.Now()
	for !cond() {
		if time.Since(start) > d {
			t.Fatalf("%s: not within %v", what, d)
		}
		time.Sleep(10 * time.Millisecond)
	}
	return time.Since(start)
}

// A peer killed (its connections reset, new ones refused) shows as not
// connected within a few seconds on the other node, whether that node
// pulls from it (a send-receive mesh: pullers both ways) or only serves
// it (a primary that pulls nothing from its replica); and as connected
// again once it is back. The nodes' clock stands still until the heal:
// what shows the peer down waits for no timer of theirs.
func TestPeerDownShownAtOnce(t *testing.T) {
	const deadline = 3 * time.Second
	for _, tc := range []struct {
		name   string
		ma, mb config.Mode
	}{
		{"mesh", config.SendReceive, config.SendReceive},
		{"serve-only", config.SendOnly, config.ReceiveOnly},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a, b := newTestNode(t, "a", tc.ma), newTestNode(t, "b", tc.mb)
			clk := onFakeClock(a, b)
			toA, toB := proxied(t, a, b)
			a.write(t, "x.txt", "x")
			a.index(t)
			convergeOn(t, clk, a, b)
			drive(t, clk, "both connected", func() bool { return connected(t, a) && connected(t, b) })

			toA.Cut() // b killed, seen from a; or a killed, seen from b
			toB.Cut()
			tb := within(t, deadline, "b shows a down", func() bool { return !connected(t, b) })
			ta := within(t, deadline, "a shows b down", func() bool { return !connected(t, a) })
			t.Logf("shown down after %v (b's view of a), %v (a's view of b)", tb.Round(time.Millisecond), ta.Round(time.Millisecond))
			if ls := b.node.PeerMetrics()[0].LastSeen; !ls.Equal(clk.Now()) {
				t.Errorf("b's LastSeen of a is %v, want the moment it went, %v", ls, clk.Now())
			}

			toA.Heal()
			toB.Heal()
			drive(t, clk, "both connected again", func() bool { return connected(t, a) && connected(t, b) })
		})
	}
}

// A peer that stops answering without closing anything (a cable pulled
// out) shows as down within PeerDownAfter: HTTP/2 PINGs go unanswered.
// They run on the system's clock (net/http's timers): this test takes
// PeerDownAfter of real time. The nodes' clock stands still meanwhile.
func TestPeerSilentShownWithinPeerDownAfter(t *testing.T) {
	a, b := newTestNode(t, "a", config.SendOnly), newTestNode(t, "b", config.ReceiveOnly)
	// a file, so that b fetches blocks and keeps its HTTP/1.1 connections
	// to a open: they have no PING, and must not keep b shown up on a
	a.write(t, "f", "content")
	a.index(t)
	clk := onFakeClock(a, b)
	toA, toB := proxied(t, a, b)
	drive(t, clk, "both connected, the file mirrored", func() bool {
		return connected(t, a) && connected(t, b) && sameTrees(t, a, b)
	})
	if a.node.blocksHTTP1.Load() == 0 {
		t.Fatal("no block response over HTTP/1.1")
	}
	toA.Blackhole()
	toB.Blackhole()
	slack := 3 * time.Second
	tb := within(t, PeerDownAfter+slack, "b shows a down", func() bool { return !connected(t, b) })
	ta := within(t, PeerDownAfter+slack-tb, "a shows b down", func() bool { return !connected(t, a) })
	t.Logf("silent peer shown down after %v (b's view), %v (a's view); PeerDownAfter %v", tb.Round(time.Millisecond), (tb + ta).Round(time.Millisecond), PeerDownAfter)
	toA.Heal()
	toB.Heal()
	drive(t, clk, "both connected again", func() bool { return connected(t, a) && connected(t, b) })
}

// A peer that stays down is warned of once, however many reconnects
// fail (their errors differ: a poll reset, then a hello refused), and
// its return is logged with how long it was gone.
func TestPeerDownLoggedOnce(t *testing.T) {
	a, b := newTestNode(t, "a", config.SendOnly), newTestNode(t, "b", config.ReceiveOnly)
	clk := onFakeClock(a, b)
	toA, _ := proxied(t, a, b)
	drive(t, clk, "b connected", func() bool { return connected(t, b) })
	mark := b.log.len()
	toA.Cut()
	ended := func() int { return strings.Count(b.log.since(mark), `msg="peer session ended"`) }
	drive(t, clk, "three sessions ended", func() bool { return ended() >= 3 })
	if warned := strings.Count(b.log.since(mark), `level=WARN msg="peer session ended"`); warned != 1 {
		t.Errorf("b warned %d times of %d failed sessions, want once:\n%s", warned, ended(), b.log.since(mark))
	}
	toA.Heal()
	// at the first answer, not after a long poll of an idle folder
	// (pollWait): the next try comes within the backoff reached so far
	back := drive(t, clk, "reconnected logged", func() bool {
		return strings.Contains(b.log.since(mark), `level=INFO msg="peer reconnected"`)
	})
	if back > backoffMax {
		t.Errorf("reconnected %v after the heal by the nodes' clock, want within the backoff (at most %v)", back, backoffMax)
	}
	log := b.log.since(mark)
	line := log[strings.Index(log, `msg="peer reconnected"`):]
	if line = line[:strings.IndexByte(line, '\n')]; !strings.Contains(line, " after=") {
		t.Errorf("the reconnect does not say how long the peer was gone: %s", line)
	}
}

// A lasting condition is warned of when it starts, reminded at most every
// remindEvery (at debug level in between) and logged when it ends, with
// how long it lasted; a new episode warns again.
func TestLastingLogged(t *testing.T) {
	clk := clocktest.New(time.Unix(1_000_000, 0))
	var buf bytes.Buffer
	l := lasting{log: slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug})), clk: clk}
	l.over("peer reconnected") // not met: nothing
	steps := []struct {
		at   time.Duration
		met  bool
		want string // the line logged, "" for none
	}{
		{0, true, `level=WARN msg="peer session ended" err=refused`},
		{15 * time.Second, true, `level=DEBUG msg="peer session ended" err=refused`},
		{9 * time.Minute, true, `level=DEBUG msg="peer session ended" err=refused`},
		{10 * time.Minute, true, `level=WARN msg="peer session ended" err=refused since=`},
		{19 * time.Minute, true, `level=DEBUG msg="peer session ended" err=refused`},
		{20 * time.Minute, true, `level=WARN msg="peer session ended" err=refused since=`},
		{21*time.Minute + 12*time.Second, false, `level=INFO msg="peer reconnected" after=21m12s`},
		{22 * time.Minute, false, ""},
		{23 * time.Minute, true, `level=WARN msg="peer session ended" err=refused`},
	}
	start := clk.Now()
	for _, s := range steps {
		clk.Advance(start.Add(s.at).Sub(clk.Now()))
		buf.Reset()
		if s.met {
			l.met("peer session ended", "err", "refused")
		} else {
			l.over("peer reconnected")
		}
		got := buf.String()
		if s.want == "" && got != "" || s.want != "" && !strings.Contains(got, s.want) {
			t.Errorf("at %v: logged %q, want %q", s.at, got, s.want)
		}
	}
}

// A node waiting out its backoff after a network cut tries again as soon
// as the peer's own pullers reach it: the link is back. Here a's clock
// stands still, so its backoff never ends; b's change still arrives once
// the link heals (and the first converge needs the same: a's first try
// fails before b listens).
func TestReconnectWhenPeerIsBack(t *testing.T) {
	a := newTestNode(t, "a", config.SendReceive)
	b := newTestNode(t, "b", config.SendReceive)
	onFakeClock(a)
	clk := onFakeClock(b)
	toA, toB := proxied(t, a, b)
	b.write(t, "before.txt", "x")
	b.index(t)
	convergeOn(t, clk, a, b)

	toA.Cut()
	toB.Cut()
	drive(t, clk, "a sees b down", func() bool { return !connected(t, a) })
	b.write(t, "after.txt", "made while apart")
	b.index(t)
	toA.Heal()
	toB.Heal()
	drive(t, clk, "b's change on a", func() bool {
		got, err := os.ReadFile(filepath.Join(a.dir, "after.txt"))
		return err == nil && string(got) == "made while apart"
	})
}
