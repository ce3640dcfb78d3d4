package transfer

import (
	"log/slog"
	"sync"
	"time"

	"github.com/syncd/syncd/config"
)

// A receiver asks for each block request's blocks raw or compressed
// (compress=raw or compress=zstd, see PROTOCOL.md "Compression"), as
// its setting for the peer says: never, always, or auto. Auto asks for
// what brought the blocks faster: it measures the payload bytes per
// second of each response large enough to tell (probeMin), and now and
// then asks for the other kind (a probe) to measure that too: the first
// right after the first response measured, so that a slow link is found
// within seconds of the first blocks. A probe that loses doubles the
// wait until the next one, up to probeMax responses, or probeEvery at
// most; one that wins switches, and the next probe comes after
// probeFirst responses. On
// a fast link (loopback, 10 Gbit/s) raw wins and the sender spends a
// probe's compression in 256 responses; on a slow or rate-limited link
// compressed text wins by its ratio.
const (
	probeMin   = 1 << 20 // payload bytes of a response that is measured
	probeFirst = 4
	probeMax   = 256
	probeEvery = 30 * time.Second
	probeWin   = 1.1 // how much faster the other kind must be to switch
)

// chooser picks raw or compressed blocks for one peer's responses. Safe
// for concurrent use (a receiver has several requests out at once).
type chooser struct {
	setting config.Compression
	now     func() time.Time
	log     *slog.Logger // each switch is logged at info level; nil: not logged

	mu        sync.Mutex
	zstd      bool       // the kind asked for, probes aside
	rate      [2]float64 // payload bytes per second, by kind (0 raw, 1 zstd); 0: not measured
	since     int        // measured responses since the last probe
	wait      int        // responses between probes
	lastProbe time.Time
	probing   bool // a probe is out
}

func newChooser(setting config.Compression, now func() time.Time, log *slog.Logger) *chooser {
	return &chooser{setting: setting, now: now, log: log, wait: 1, lastProbe: now()}
}

// pick returns whether the next request asks for compressed blocks.
func (c *chooser) pick() bool {
	switch c.setting {
	case config.CompressNever:
		return false
	case config.CompressAlways:
		return true
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.probing && (c.since >= c.wait || c.now().Sub(c.lastProbe) >= probeEvery) {
		c.probing, c.since, c.lastProbe = true, 0, c.now()
		return !c.zstd
	}
	return c.zstd
}

// observe records a response of the kind zstd: its payload bytes and how
// long it took from the request to its last block.
func (c *chooser) observe(zstd bool, payload int64, d time.Duration) {
	if c.setting != config.CompressAuto {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	probe := zstd != c.zstd
	if probe {
		c.probing = false
	}
	if payload < probeMin || d <= 0 {
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
	if c.rate[k] == 0 || probe {
		c.rate[k] = r
	} else {
		c.rate[k] = (c.rate[k] + r) / 2
	}
	if !probe {
		c.since++
		return
	}
	cur := 0
	if c.zstd {
		cur = 1
	}
	if c.rate[cur] > 0 && c.rate[k] > probeWin*c.rate[cur] {
		c.zstd, c.wait = zstd, probeFirst // the other kind is faster now
		if c.log != nil {
			kind := map[bool]string{false: "raw", true: "compressed"}
			c.log.Info("compression auto: asking for "+kind[zstd]+" blocks, which came faster",
				kind[zstd]+"_bytes_per_s", int64(c.rate[k]), kind[!zstd]+"_bytes_per_s", int64(c.rate[cur]))
		}
		return
	}
	c.wait = min(2*c.wait, probeMax)
}
