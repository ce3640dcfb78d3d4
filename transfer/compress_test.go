package transfer

import (
	"bytes"
	"encoding/binary"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/syncd/syncd/config"
	"github.com/syncd/syncd/internal/clock"
	"github.com/syncd/syncd/internal/clock/clocktest"
	"github.com/syncd/syncd/internal/faultproxy"
	"github.com/syncd/syncd/transfer/receive"
	"github.com/syncd/syncd/transfer/wire"
)

// The chooser: never and always ask for one kind; auto starts raw, probes
// compressed blocks, switches when they come faster and back when raw
// does, and probes less often while a probe keeps losing.
func TestChooser(t *testing.T) {
	clk := clocktest.New(time.Date(2026, 12, 2, 15, 0, 0, 0, time.UTC))
	for _, s := range []config.Compression{config.CompressNever, config.CompressAlways} {
		c := newChooser(s, clk, nil)
		for range 20 {
			if got := c.pick(); got != (s == config.CompressAlways) {
				t.Fatalf("%s: asked for zstd %v", s, got)
			}
			c.observe(s == config.CompressAlways, 16<<20, time.Second)
		}
	}
	// respond runs one request of c through a link on which raw blocks
	// come at raw bytes/s and compressed ones at zstd bytes/s; it returns
	// whether it asked for compressed blocks.
	respond := func(c *chooser, raw, zstd float64) bool {
		z := c.pick()
		rate := raw
		if z {
			rate = zstd
		}
		c.observe(z, 16<<20, time.Duration(float64(16<<20)/rate*float64(time.Second)))
		return z
	}
	var logged logBuffer
	c := newChooser(config.CompressAuto, clk, slog.New(slog.NewTextHandler(&logged, nil)))
	c.now = clk.Now // the responses' real time: a second each below
	probes := 0
	for range 200 { // loopback: raw is faster
		if respond(c, 800e6, 150e6) {
			probes++
		}
	}
	if c.zstd || probes > 8 {
		t.Errorf("fast link: zstd %v, %d probes in 200 responses", c.zstd, probes)
	}
	// the link slows to 1 Mbit/s: compressed text comes 8× faster
	for i := 0; !c.zstd; i++ {
		if i > 300 {
			t.Fatal("slow link: still raw after 300 responses")
		}
		respond(c, 125e3, 1e6)
		clk.Advance(time.Second)
	}
	if !strings.Contains(logged.String(), `msg="compression auto: asking for compressed blocks, which came faster" compressed_bytes_per_s=`) {
		t.Errorf("the switch is not logged: %q", logged.String())
	}
	// a probe within probeEvery however long the wait in responses
	c.wait = probeMax
	last := clk.Now()
	for !respond(c, 125e3, 1e6) == c.zstd {
		clk.Advance(time.Second)
	}
	if d := clk.Now().Sub(last); d > probeEvery {
		t.Errorf("no probe for %v", d)
	}
	// fast again: back to raw
	for i := 0; c.zstd; i++ {
		if i > 300 {
			t.Fatal("fast link again: still compressing after 300 responses")
		}
		respond(c, 800e6, 150e6)
		clk.Advance(time.Second)
	}
	// a slow link from the start: the first probe follows the first
	// measured response, so the third request asks for compressed blocks
	c = newChooser(config.CompressAuto, clk, nil)
	for i := range 3 {
		if z := respond(c, 125e3, 1e6); z != (i > 0) {
			t.Fatalf("slow link from the start: request %d asked for zstd %v", i+1, z)
		}
	}
	// small responses tell nothing
	c = newChooser(config.CompressAuto, clk, nil)
	for range 50 {
		z := c.pick()
		c.observe(z, 1000, time.Millisecond)
	}
	if c.rate != [2]float64{} {
		t.Errorf("small responses measured: %v", c.rate)
	}
}

// What crosses the link: with compression never the text travels raw,
// with always compressed; both arrive whole.
func TestCompressionOnTheWire(t *testing.T) {
	text := strings.Repeat("<?php echo 'hello, world'; /* a comment */ ?>\n", 100000) // 4.6 MB
	for _, s := range []config.Compression{config.CompressNever, config.CompressAlways} {
		t.Run(string(s), func(t *testing.T) {
			a := newTestNode(t, "a", config.SendOnly)
			b := newTestNode(t, "b", config.ReceiveOnly)
			a.write(t, "index.php", text)
			connect(a, b)
			b.cfg.Peers[0].Compression = s
			toA, err := faultproxy.New(a.cfg.Node.Listen)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { toA.Close() })
			b.cfg.Peers[0].Address = toA.Addr()
			a.start(t)
			b.start(t)
			a.index(t)
			converge(t, a, b)
			down := toA.BytesDown()
			if s == config.CompressNever && down < int64(len(text)) {
				t.Errorf("never: %d bytes crossed for %d of text", down, len(text))
			}
			if s == config.CompressAlways && down > int64(len(text))/10 {
				t.Errorf("always: %d bytes crossed for %d of text", down, len(text))
			}
		})
	}
}

// A peer that compresses blocks when asked for raw ones, or sends a
// compressed block that holds more than announced: refused and logged,
// nothing written; the receiver still applies good blocks after.
func TestRogueCompression(t *testing.T) {
	content := strings.Repeat("abcd", 1000)
	for _, tc := range []struct {
		name    string
		setting config.Compression
		src     string
		log     string
	}{
		{"compressed when told never", config.CompressNever, content, "the peer sent a compressed block, asked for raw ones"},
		{"more than announced", config.CompressAlways, content + "extra", "a compressed block that does not hold the 4000 bytes announced"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			victim := newTestNode(t, "victim", config.SendReceive)
			evil := &rogue{node: newTestNode(t, "evil", config.SendReceive)}
			connect(victim, evil.node)
			victim.cfg.Peers[0].Compression = tc.setting
			var good atomic.Bool
			evil.framed = func(q wire.BlockRequest, compress string) []byte {
				b := []byte("SYNCDBR2")
				if good.Load() {
					return append(append(b, 0), content...)
				}
				z := zstdOf([]byte(tc.src))
				b = append(b, 2)
				b = binary.AppendUvarint(b, uint64(len(z)))
				return append(b, z...)
			}
			evil.serve(t, victim, func() []byte { return indexBody(fileOf("f.txt", content)) })
			victim.start(t)
			eventually(t, "the refusal logged", func() bool { return strings.Contains(victim.log.String(), tc.log) })
			if _, err := os.Stat(filepath.Join(victim.dir, "f.txt")); err == nil {
				t.Error("f.txt written from a refused response")
			}
			good.Store(true)
			eventually(t, "good blocks applied", func() bool {
				got, err := os.ReadFile(filepath.Join(victim.dir, "f.txt"))
				return err == nil && bytes.Equal(got, []byte(content))
			})
		})
	}
}

// A link that slows down under raw responses: a response that brings less
// than a quarter of the raw rate measured (or of its own best) is judged
// too slow, and auto asks for compressed blocks at once (logged), so the
// raw responses still out are abandoned. Requests follow the rate.
func TestChooserSlowDown(t *testing.T) {
	clk := clocktest.New(time.Date(2026, 12, 2, 15, 0, 0, 0, time.UTC))
	for _, s := range []config.Compression{config.CompressNever, config.CompressAlways} {
		c := newChooser(s, clk, nil)
		if c.tooSlow(1, 1e9) || c.rawLost(0) || c.requestSize() != receive.RequestBytes {
			t.Errorf("%s: judged a response or sized a request", s)
		}
	}
	var logged logBuffer
	c := newChooser("", clk, slog.New(slog.NewTextHandler(&logged, nil))) // "" is auto, the default
	if got := c.requestSize(); got != requestInit {
		t.Errorf("first request of %d bytes, want %d", got, requestInit)
	}
	if c.tooSlow(1, 0) {
		t.Error("judged too slow with nothing to compare with")
	}
	if !c.tooSlow(1e3, 1e6) {
		t.Error("a response at 1/1000 of its own best is not too slow")
	}
	c = newChooser(config.CompressAuto, clk, slog.New(slog.NewTextHandler(&logged, nil)))
	for range 3 {
		c.observe(c.pick(), 16<<20, 20*time.Millisecond) // 800 MB/s, raw or probe
	}
	if c.zstd {
		t.Fatal("compressed on a fast link")
	}
	if got := c.requestSize(); got != receive.RequestBytes {
		t.Errorf("fast link: requests of %d bytes, want %d", got, receive.RequestBytes)
	}
	if c.tooSlow(300e6, 0) || c.rawLost(0) {
		t.Error("a response at 3/8 of the rate measured is judged too slow")
	}
	if !c.tooSlow(49152, 0) || !c.rawLost(0) {
		t.Fatal("a response at 1/17000 of the rate measured is not too slow, or raw not given up")
	}
	if !strings.Contains(logged.String(), `msg="compression auto: asking for compressed blocks, as raw ones slowed down" raw_bytes_per_s=49152`) {
		t.Errorf("the switch is not logged: %q", logged.String())
	}
	// the slow rate sizes the requests: a second's worth
	c.observe(true, 1<<20, 8*time.Second) // 131 kB/s compressed
	if got := c.requestSize(); got != 131072 {
		t.Errorf("slow link: requests of %d bytes, want 131072", got)
	}
	// a probe of raw blocks is small (a second at the raw rate, at least
	// requestMin), and lost once slower than compressed blocks
	c.since = c.wait
	if got := c.requestSize(); got != requestMin {
		t.Errorf("slow link, probe due: a request of %d bytes, want %d", got, requestMin)
	}
	if c.pick() == c.zstd {
		t.Fatal("no probe when due")
	}
	wait := c.wait
	if c.tooSlow(200e3, 0) {
		t.Error("a raw probe faster than compressed blocks lost")
	}
	if !c.tooSlow(30e3, 0) || c.probing || c.wait != 2*wait || !c.zstd {
		t.Errorf("a raw probe slower than compressed blocks: lost %v, probing %v, wait %d (was %d)", true, c.probing, c.wait, wait)
	}
}

// A raw probe asked for while auto asks for compressed blocks is not
// abandoned for that: only raw responses asked for before the turn are.
func TestRawProbeNotLostByTheTurn(t *testing.T) {
	c := newChooser(config.CompressAuto, clock.System, nil)
	c.observe(false, 16<<20, 20*time.Millisecond)
	before := c.turns()
	if !c.tooSlow(1000, 0) {
		t.Fatal("no turn to compressed blocks")
	}
	if !c.rawLost(before) {
		t.Error("a raw response asked for before the turn is not lost")
	}
	if c.rawLost(c.turns()) {
		t.Error("a raw probe asked for after the turn is lost at once")
	}
}

// Auto compares what each kind brings over the link, not one response:
// a response among six brings a sixth. And a link that brings raw blocks
// faster than the sender can compress is never probed with compressed
// ones (loopback, where compressing only costs the CPU both ends share).
func TestChooserLinkRate(t *testing.T) {
	clk := clocktest.New(time.Date(2026, 12, 3, 9, 0, 0, 0, time.UTC))
	real := clocktest.New(time.Date(2026, 12, 3, 9, 0, 0, 0, time.UTC))
	c := newChooser(config.CompressAuto, clk, nil)
	c.now = real.Now
	// six responses out at once for a second, then each ends: each
	// measures itself with the six
	var fs []flight
	for range 6 {
		fs = append(fs, c.begin())
	}
	real.Advance(time.Second)
	for _, f := range fs {
		c.end(f, false, 50e6) // 50 MB/s each, 300 MB/s over the link
	}
	if c.out != 0 || c.link[0] < 299e6 || c.link[0] > 301e6 || c.rate[0] != 50e6 {
		t.Fatalf("six responses of 50 MB/s: %d out, link %.0f, rate %.0f; want 0, 300e6, 50e6", c.out, c.link[0], c.rate[0])
	}
	for range 300 {
		if c.pick() {
			t.Fatal("a link of 300 MB/s probed with compressed blocks")
		}
		c.observeOut(false, 16<<20, time.Second/3, 6)
	}
	// responses slowed by the receiver's own work (one of 8 MB/s among
	// six) do not make it a slow link; one that stays that slow over
	// peakHold does
	probed, fast := false, real.Now()
	for i := 0; i < 300 && !probed; i++ {
		probed = c.pick()
		if probed && real.Now().Sub(fast) <= peakHold {
			t.Fatalf("probed %v after the link brought 300 MB/s", real.Now().Sub(fast))
		}
		c.observeOut(false, 8e6, time.Second, 6)
		real.Advance(time.Second)
	}
	if !probed {
		t.Fatal("a link of 48 MB/s for 300 s never probed with compressed blocks")
	}
	// a small response that came from buffers or a rate limit's burst
	// (1 MiB in 5 ms, four out) does not make a slow link a fast one
	c = newChooser(config.CompressAuto, clk, nil)
	c.now = real.Now
	c.observeOut(false, 1<<20, 5*time.Millisecond, 4)
	if !c.pick() {
		t.Fatal("no compressed probe after a small raw response that came at 800 MB/s")
	}
	// nor does a compressed probe win against raw blocks that came at
	// fastLink or more, small responses though they were: on loopback
	// the ends share the cores, and a probe came faster by chance
	c = newChooser(config.CompressAuto, clk, nil)
	c.now = real.Now
	c.observeOut(false, 1<<20, (1<<20)*time.Second/63e6, 4) // 252 MB/s
	if !c.pick() {
		t.Fatal("no compressed probe after the first raw response measured")
	}
	c.observeOut(true, 1<<20, (1<<20)*time.Second/70e6, 4) // 280 MB/s
	if c.zstd {
		t.Errorf("switched to compressed blocks at 280 MB/s from raw ones at 252 MB/s")
	}
	// a request for a few small files is no compressed probe; one of
	// probeMin is
	c = newChooser(config.CompressAuto, clk, nil)
	c.observeOut(false, 2e6, time.Second, 6)
	if c.pickFor(probeMin-1) || !c.pickFor(probeMin) {
		t.Error("a compressed probe on a request under probeMin, or none on one of probeMin")
	}
	// a slower link: a compressed probe alone at 10 MB/s against raw
	// responses of 2 MB/s six at a time (12 MB/s) has lost; it took the
	// link to itself
	c = newChooser(config.CompressAuto, clk, nil)
	c.observeOut(false, 2e6, time.Second, 6)
	if !c.pick() {
		t.Fatal("no probe after the first response measured")
	}
	c.observeOut(true, 10e6, time.Second, 1)
	if c.zstd {
		t.Errorf("switched to compressed blocks that bring 10 MB/s over a link that brings 12 MB/s raw")
	}
	// one that brings 5 MB/s among six (30 MB/s) wins
	for !c.pick() {
		c.observeOut(false, 2e6, time.Second, 6)
	}
	c.observeOut(true, 5e6, time.Second, 6)
	if !c.zstd {
		t.Errorf("kept raw blocks at 12 MB/s over compressed ones at 30 MB/s")
	}
}

// pick is pickFor of a request of the largest size.
func (c *chooser) pick() bool { return c.pickFor(receive.RequestBytes) }

// observe is observeOut of a response alone on the link.
func (c *chooser) observe(zstd bool, payload int64, d time.Duration) {
	c.observeOut(zstd, payload, d, 1)
}
