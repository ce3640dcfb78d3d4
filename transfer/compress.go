package transfer

import (
	"log/slog"
	"sync"
	"time"

	"github.com/syncd/syncd/config"
	"github.com/syncd/syncd/internal/clock"
	"github.com/syncd/syncd/transfer/receive"
)

// A receiver asks for each block request's blocks raw or compressed
// (compress=raw or compress=zstd, see PROTOCOL.md "Compression"), as
// its setting for the peer says: never, always, or auto. Auto asks for
// what brought the blocks faster: it measures the payload bytes per
// second of each response large enough to tell (probeMin bytes, or
// measureMin long), times the responses that were out with it on average
// (with six out, one brings a sixth of what the link carries), and now and
// then asks for the other kind (a probe) to measure that too: the first
// right after the first response measured, so that a slow link is found
// within seconds of the first blocks. A probe that loses doubles the
// wait until the next one, up to probeMax responses, or probeEvery at
// most; one that wins switches, and the next probe comes after
// probeFirst responses. A link that has brought raw blocks at fastLink or
// more within the last peakHold (in responses of peakMin or more) is not
// probed with compressed ones, and a compressed probe does not win
// against raw blocks measured at fastLink or more in responses of any
// size (before the first of peakMin: on loopback, one of 280 MB/s against
// raw ones of 252 MB/s turned auto to compressed blocks in one initial
// mirror of the bench's in about ten, 6.9 s of CPU against 4.6 s): the
// sender compresses text at about twice that on one core (zstd's fastest
// level, 245 MB/s: BENCHMARKS.md), so compressing saves little link time
// and costs CPU, which on loopback the two ends share: there a compressed
// probe of the bench's text dump came faster than raw responses of media
// slowed by the receiver's own work (208 against 49 MB/s), and auto then
// compressed the media too (1 s of the sender's CPU for nothing). A link
// that slows down turns auto to compressed blocks by tooSlow. On a slow or
// rate-limited link compressed text wins by its ratio.
//
// A link can also slow down under a response: a raw response that brings
// less than a quarter of the raw rate measured before (or of its own best)
// over slowAfter is abandoned (see client.watch), with every other raw
// response out; the rate it did bring is taken as the raw rate, and auto
// asks for compressed blocks at once, as after a probe that won. Requests
// are cut to about requestTime of payload at the measured rate, so that
// what is in flight when the link slows is little.
const (
	probeMin   = 1 << 20                // payload bytes of a response that is measured
	measureMin = 250 * time.Millisecond // or as long as it took
	probeFirst = 4
	probeMax   = 256
	probeEvery = 30 * time.Second
	probeWin   = 1.1     // how much faster the other kind must be to switch
	fastLink   = 100e6   // bytes/s, a 1 Gbit/s link's
	peakMin    = 4 << 20 // the payload of a response that can tell a link that fast: a smaller one may come from buffers and a rate limit's burst
	peakHold   = 10 * time.Second

	slowAfter   = time.Second
	slowFactor  = 4
	requestTime = time.Second
	requestMin  = 64 << 10
	requestInit = probeMin // before a response of the kind asked for is measured: small, to be measured soon
)

// chooser picks raw or compressed blocks for one peer's responses. Safe
// for concurrent use (a receiver has several requests out at once).
type chooser struct {
	setting config.Compression
	clk     clock.Clock      // of the probes every probeEvery
	log     *slog.Logger     // each switch is logged at info level; nil: not logged
	now     func() time.Time // real time, of the responses out (see begin)

	mu        sync.Mutex
	zstd      bool       // the kind asked for, probes aside
	rate      [2]float64 // payload bytes per second of one response, by kind (0 raw, 1 zstd); 0: not measured
	link      [2]float64 // and of the link: rate times the responses out with it
	out       int        // responses out
	outArea   float64    // the integral of out over real time, in seconds
	outAt     time.Time  // when out last changed
	peak      float64    // the fastest raw link rate measured since peakAt
	peakAt    time.Time  // real time
	since     int        // measured responses since the last probe
	wait      int        // responses between probes
	lastProbe time.Time
	probing   bool   // a probe is out
	switches  uint64 // how many times auto turned to compressed blocks
}

func newChooser(setting config.Compression, clk clock.Clock, log *slog.Logger) *chooser {
	if setting != config.CompressNever && setting != config.CompressAlways {
		setting = config.CompressAuto // the default, as config sets it
	}
	return &chooser{setting: setting, clk: clk, log: log, now: time.Now, wait: 1, lastProbe: clk.Now()}
}

// pickFor returns whether the next request, of payload bytes, asks for
// compressed blocks. A request of less than
// probeMin is no compressed probe: a group of small files takes about a
// round trip and its turn behind the responses out, whatever its kind, so
// it measured compressed blocks slower than raw ones that shared the link
// (in the mesh bench, a new node behind one peer limited to 8 MB/s took
// the 512 MiB text dump raw for 26 s).
func (c *chooser) pickFor(payload int64) bool {
	switch c.setting {
	case config.CompressNever:
		return false
	case config.CompressAlways:
		return true
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.probeDue() && (c.zstd || payload >= probeMin) {
		c.probing, c.since, c.lastProbe = true, 0, c.clk.Now()
		return !c.zstd
	}
	return c.zstd
}

// flight is a response out, as begin noted it.
type flight struct {
	start time.Time
	area  float64
}

// begin notes a response asked for now; end takes it back.
// The times are real: the node's clock does not move with the bytes.
func (c *chooser) begin() flight {
	c.mu.Lock()
	defer c.mu.Unlock()
	now := c.now()
	c.advance(now)
	c.out++
	return flight{now, c.outArea}
}

// advance adds out over the time up to now to outArea; c.mu is held.
func (c *chooser) advance(now time.Time) {
	if !c.outAt.IsZero() {
		c.outArea += float64(c.out) * now.Sub(c.outAt).Seconds()
	}
	c.outAt = now
}

// end records the response f of the kind zstd, which brought payload
// bytes (0: it failed), with how many others were out beside it.
func (c *chooser) end(f flight, zstd bool, payload int64) {
	c.mu.Lock()
	now := c.now()
	c.advance(now)
	c.out--
	d := now.Sub(f.start)
	out := 1.0
	if d > 0 {
		out = max((c.outArea-f.area)/d.Seconds(), 1)
	}
	c.mu.Unlock()
	c.observeOut(zstd, payload, d, out)
}

// observeOut records a response of the kind zstd: its payload bytes, how
// long it took from the request to its last block, and how many
// responses were out beside it (itself counted) on average.
func (c *chooser) observeOut(zstd bool, payload int64, d time.Duration, out float64) {
	if c.setting != config.CompressAuto {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	probe := zstd != c.zstd
	if probe {
		c.probing = false
	}
	if payload < probeMin && d < measureMin || payload == 0 || d <= 0 {
		return
	}
	k := 0
	if zstd {
		k = 1
	}
	// the kind asked for is measured often: a mean that follows the link;
	// a probe stands for its kind alone (an older one may be from another
	// link speed)
	r := float64(payload) / d.Seconds()
	if now := c.now(); k == 0 && payload >= peakMin && (r*out >= c.peak || now.Sub(c.peakAt) > peakHold) {
		c.peak, c.peakAt = r*out, now
	}
	if c.rate[k] == 0 || probe {
		c.rate[k], c.link[k] = r, r*out
	} else {
		c.rate[k], c.link[k] = (c.rate[k]+r)/2, (c.link[k]+r*out)/2
	}
	if !probe {
		c.since++
		return
	}
	cur := 0
	if c.zstd {
		cur = 1
	}
	if c.link[cur] > 0 && c.link[k] > probeWin*c.link[cur] && !(zstd && c.link[0] >= fastLink) {
		c.zstd, c.wait = zstd, probeFirst // the other kind is faster now
		if zstd {
			c.switches++
		}
		if c.log != nil {
			kind := map[bool]string{false: "raw", true: "compressed"}
			c.log.Info("compression auto: asking for "+kind[zstd]+" blocks, which came faster",
				kind[zstd]+"_bytes_per_s", int64(c.link[k]), kind[!zstd]+"_bytes_per_s", int64(c.link[cur]))
		}
		return
	}
	c.wait = min(2*c.wait, probeMax)
}

// requestSize is how many payload bytes the next request should ask for:
// about requestTime of them at the rate measured for the kind it will ask
// for (a probe: the other), within [requestMin, receive.RequestBytes]. A
// probe of raw blocks on a slow link is small, so it costs little link
// time; it is measured by its time (measureMin).
func (c *chooser) requestSize() int64 {
	if c.setting != config.CompressAuto {
		return receive.RequestBytes
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	k := c.kind()
	if c.probeDue() {
		k = 1 - k
	}
	if r := c.rate[k]; r != 0 {
		return min(max(int64(r*requestTime.Seconds()), requestMin), receive.RequestBytes)
	}
	return requestInit
}

// probeDue reports whether the next pick probes; c.mu is held.
func (c *chooser) probeDue() bool {
	if !c.zstd && c.peak >= fastLink {
		return false
	}
	return !c.probing && (c.since >= c.wait || c.clk.Now().Sub(c.lastProbe) >= probeEvery)
}

// turns returns how many times auto has turned to compressed blocks; a
// raw response notes it when asked for, for rawLost.
func (c *chooser) turns() uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.switches
}

// rawLost reports whether auto has turned to compressed blocks since a raw
// response was asked for (when turns was asked): that response is then
// abandoned (see client.watch), as compressed ones come faster. A raw
// probe asked for while auto asks for compressed blocks is not lost by
// that; tooSlow judges it.
func (c *chooser) rawLost(asked uint64) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.setting == config.CompressAuto && c.zstd && c.switches != asked
}

// kind is the index into rate of the kind asked for; c.mu is held.
func (c *chooser) kind() int {
	if c.zstd {
		return 1
	}
	return 0
}

// tooSlow reports whether a raw response whose payload came at recent
// bytes/s over the last slowAfter has slowed down to less than
// 1/slowFactor of the raw rate measured before, or of its own best rate
// over slowAfter (peak); if so, recent becomes the raw rate and auto asks
// for compressed blocks. While auto asks for compressed blocks, a raw
// response (a probe) is too slow once slower than they come: the probe
// has lost. Only raw responses under auto are
// judged: compressed ones have nothing smaller to fall back to.
func (c *chooser) tooSlow(recent, peak float64) bool {
	if c.setting != config.CompressAuto {
		return false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.zstd {
		// a probe of raw blocks: lost, once slower than compressed ones
		if c.rate[1] == 0 || recent >= c.rate[1] {
			return false
		}
		c.rate[0], c.probing, c.since, c.wait = recent, false, 0, min(2*c.wait, probeMax)
		return true
	}
	ref := max(c.rate[0], peak)
	if ref == 0 || recent*slowFactor >= ref {
		return false
	}
	// On a link this slow compression costs little next to the time it
	// saves; probes bring raw back if it is faster after all (blocks that
	// do not compress).
	c.rate[0], c.peak, c.peakAt = recent, recent, c.now()
	c.zstd, c.wait, c.since, c.rate[1] = true, probeFirst, 0, 0
	c.switches++
	if c.log != nil {
		c.log.Info("compression auto: asking for compressed blocks, as raw ones slowed down",
			"raw_bytes_per_s", int64(recent), "before_bytes_per_s", int64(ref))
	}
	return true
}
