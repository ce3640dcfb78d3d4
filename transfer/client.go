package transfer

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/syncd/syncd/chunkstore"
	"github.com/syncd/syncd/internal/freelist"
	"github.com/syncd/syncd/transfer/receive"
	"github.com/syncd/syncd/transfer/tlsid"
	"github.com/syncd/syncd/transfer/wire"
)

// Heartbeats: an HTTP/2 PING goes out after pingAfter without a frame
// from the peer, and a connection whose PING is not answered within
// pingTimeout is closed, so a silent peer counts as down within
// PeerDownAfter. A PING is a frame of 17 bytes each way: one every 5 s
// on an idle connection costs nothing worth counting. A long poll
// returns after at most pollWait, so a peer is also heard from at least
// that often.
const (
	pingAfter   = 5 * time.Second
	pingTimeout = 5 * time.Second
	pollWait    = 20 * time.Second
	dialTimeout = 5 * time.Second
)

// client speaks the protocol to one peer.
type client struct {
	hc   *http.Client // HTTP/2
	h1   *http.Client // HTTP/1.1, for blocks (see http1)
	base string       // https://address

	// comp picks raw or compressed blocks (nil: the single zstd stream of
	// protocol 1); frames says the peer serves framed responses (its
	// hello lists wire.FeatureFrames).
	comp *chooser
	// sums is set when the peer serves segment sums (wire.FeatureSums).
	sums   atomic.Bool
	frames atomic.Bool
	// http1 is set when the peer serves blocks over HTTP/1.1
	// (wire.FeatureBlocksHTTP1): block responses then come over h1,
	// guarded by pings (see guard) every probeAfter, each answered
	// within probeTimeout (fields, so that tests can shorten them)
	http1                    atomic.Bool
	probeAfter, probeTimeout time.Duration
	pings                    atomic.Int64 // pings sent, for tests
}

// newClient returns a client of the peer peerID at address whose
// connections draw on the limiters send and recv. dial, if not nil,
// connects instead of TCP (see [Node.Dial]).
func newClient(id *tlsid.Identity, peerID tlsid.NodeID, address string, send, recv limiters, dial func(context.Context, string) (net.Conn, error)) *client {
	var p http.Protocols
	p.SetHTTP2(true)
	dialer := &net.Dialer{Timeout: dialTimeout, KeepAlive: 15 * time.Second}
	if dial == nil {
		dial = func(ctx context.Context, addr string) (net.Conn, error) { return dialer.DialContext(ctx, "tcp", addr) }
	}
	dialLimited := func(ctx context.Context, network, addr string) (net.Conn, error) {
		c, err := dial(ctx, addr)
		if err != nil || !send.limited() && !recv.limited() {
			return c, err
		}
		lc := &limitedConn{Conn: c}
		lc.setLimits(send, recv)
		return lc, nil
	}
	tr := &http.Transport{
		TLSClientConfig:     tlsid.ClientConfig(id, peerID),
		DialContext:         dialLimited,
		TLSHandshakeTimeout: dialTimeout,
		Protocols:           &p,
		HTTP2: &http.HTTP2Config{
			SendPingTimeout:               pingAfter,
			PingTimeout:                   pingTimeout,
			MaxReceiveBufferPerConnection: 4<<20 - 1,
			MaxReceiveBufferPerStream:     4<<20 - 1,
			MaxReadFrameSize:              128 << 10, // see below
		},
	}
	// Frames of 128 KiB instead of HTTP/2's default 16 KiB: the data path
	// handles an eighth as many (with 1 MiB frames both daemons spent
	// ~1.5 s less CPU on the bench's initial mirror, 14.1 s against 15.7
	// s, in two runs each on a loaded machine), and a frame the sender has begun is still
	// short enough to drain on a slow link when a response is abandoned
	// (1 s at 1 Mbit/s; see TestSlowLink).
	return &client{hc: &http.Client{Transport: tr}, h1: newHTTP1(tr.TLSClientConfig, dialLimited),
		base: "https://" + address, probeAfter: probeAfter, probeTimeout: probeTimeout}
}

func (c *client) close() {
	c.hc.CloseIdleConnections()
	c.h1.CloseIdleConnections()
}

// do issues a request through hc and checks its status; the caller closes
// the body.
func (c *client) do(ctx context.Context, hc *http.Client, method, path string, q url.Values, body []byte) (*http.Response, error) {
	u := c.base + path
	if len(q) > 0 {
		u += "?" + q.Encode()
	}
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, u, rd)
	if err != nil {
		return nil, err
	}
	resp, err := hc.Do(req)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		msg, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		resp.Body.Close()
		return nil, fmt.Errorf("%s %s: %s: %s", method, path, resp.Status, bytes.TrimSpace(msg))
	}
	return resp, nil
}

func (c *client) hello(ctx context.Context) (wire.Hello, error) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	resp, err := c.do(ctx, c.hc, http.MethodGet, "/v1/hello", nil, nil)
	if err != nil {
		return wire.Hello{}, err
	}
	defer resp.Body.Close()
	return wire.DecodeHello(resp.Body)
}

// index asks for the folder's entries after since, waiting up to wait
// for one if there is none yet. The peer ends the wait by its clock; the
// 30 s more are a guard against a hung connection, in real time like
// the network's other timeouts.
func (c *client) index(ctx context.Context, folder string, since uint64, wait time.Duration) (wire.IndexBatch, error) {
	ctx, cancel := context.WithTimeout(ctx, wait+30*time.Second)
	defer cancel()
	q := url.Values{"folder": {folder}, "since": {strconv.FormatUint(since, 10)},
		"wait": {strconv.FormatInt(wait.Milliseconds(), 10)}}
	resp, err := c.do(ctx, c.hc, http.MethodGet, "/v1/index", q, nil)
	if err != nil {
		return wire.IndexBatch{}, err
	}
	defer resp.Body.Close()
	return wire.ReadIndex(resp.Body)
}

// blockReader is a block response as the client reads it.
type blockReader interface {
	Next(buf []byte, length uint32) ([]byte, bool, error)
	Close()
}

// blocks asks for the blocks of q and calls fn with each in order: raw or
// compressed as c.comp picks, when the peer serves framed responses.
func (c *client) blocks(ctx context.Context, folder string, q *wire.BlockRequest, fn func(i, j int, data []byte, ok bool) error) error {
	params := url.Values{"folder": {folder}}
	framed, zstd := c.comp != nil && c.frames.Load(), false
	var turns uint64 // auto's turns to compressed blocks when this was asked
	var fl flight
	if framed {
		zstd, turns = c.comp.pickFor(q.Bytes()), c.comp.turns()
		params.Set("compress", map[bool]string{false: "raw", true: "zstd"}[zstd])
		fl = c.comp.begin()
	}
	// the response's rate is measured in real time: the node's clock
	// (the chooser's probe schedule) does not move with the bytes
	start := time.Now()
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	hc, body := c.hc, &countReader{}
	if c.http1.Load() {
		hc = c.h1
		stop := c.guard(body, cancel)
		defer stop()
	}
	resp, err := c.do(ctx, hc, http.MethodPost, "/v1/blocks", params, q.Append(nil))
	if err != nil {
		if framed {
			c.comp.end(fl, zstd, 0) // a probe that failed is no longer out
		}
		return silent(ctx, err)
	}
	defer resp.Body.Close()
	body.r = resp.Body
	var abandoned atomic.Bool
	if framed && !zstd {
		stop := c.watch(body, turns, func() { abandoned.Store(true); cancel(nil) })
		defer stop()
	}
	var br blockReader
	if framed {
		br, err = wire.NewFrameReader(body, zstd)
	} else {
		br, err = wire.NewBlockReader(body)
	}
	if err == nil {
		defer br.Close()
		err = readBlocks(br, q, func(b wire.Block) uint32 { return b.Length }, fn)
	}
	if abandoned.Load() {
		err = receive.ErrAbandoned
	}
	err = silent(ctx, err)
	if framed {
		if err != nil {
			c.comp.end(fl, zstd, 0)
		} else {
			c.comp.end(fl, zstd, q.Bytes())
		}
		if c.comp.log != nil {
			c.comp.log.Debug("block response", "zstd", zstd, "files", len(q.Files), "payload", q.Bytes(),
				"wire", body.n.Load(), "took", ms(time.Since(start)), "err", err)
		}
	}
	return err
}

// silent returns the error of a fetch whose guard found the peer silent
// (see guard), err otherwise.
func silent(ctx context.Context, err error) error {
	if cause := context.Cause(ctx); err != nil && errors.Is(cause, errLinkSilent) {
		return cause
	}
	return err
}

// segmentSums asks for the segment sums of the blocks of q (see
// wire.FeatureSums) and calls fn with each block's, in order: SumSize
// bytes per segment, or ok false for a block the peer no longer has.
func (c *client) segmentSums(ctx context.Context, folder string, q *wire.BlockRequest, fn func(i, j int, sums []byte, ok bool) error) error {
	params := url.Values{"folder": {folder}, "compress": {"raw"}, "sums": {"1"}}
	resp, err := c.do(ctx, c.hc, http.MethodPost, "/v1/blocks", params, q.Append(nil))
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	fr, err := wire.NewFrameReader(resp.Body, false)
	if err != nil {
		return err
	}
	defer fr.Close()
	return readBlocks(fr, q, func(b wire.Block) uint32 { return uint32(wire.SumSize * wire.Segments(b.Offset, b.Length)) }, fn)
}

// watch calls abandon, once, if the raw response read through body slows
// down (see chooser.tooSlow) while the receiver waits for its bytes: a
// receiver busy writing what came (a full page cache, a syncfs) reads
// slowly too, but that is no reason to ask again; it stops watching when
// stop is called. turns is the chooser's when the response was asked for.
func (c *client) watch(body *countReader, turns uint64, abandon func()) (stop func()) {
	done := make(chan struct{})
	go func() {
		// real time, not the node's clock: it samples the rate at which
		// bytes arrive, as countReader times the waits for them
		const tick = slowAfter / 4
		t := time.NewTicker(tick)
		defer t.Stop()
		type sample struct{ n, waited int64 }
		var seen [4]sample // at the last 4 ticks, the oldest first
		peak, ticks := 0.0, 0
		for {
			select {
			case <-done:
				return
			case <-t.C:
			}
			if c.comp.rawLost(turns) {
				abandon() // compressed blocks came faster since it was asked for
				return
			}
			now := sample{body.n.Load(), body.waited()}
			ticks++
			if ticks > len(seen) {
				recent := float64(now.n-seen[0].n) / slowAfter.Seconds()
				waiting := time.Duration(now.waited-seen[0].waited) >= slowAfter*3/4
				if waiting && c.comp.tooSlow(recent, peak) {
					abandon()
					return
				}
				peak = max(peak, recent)
			}
			copy(seen[:], seen[1:])
			seen[len(seen)-1] = now
		}
	}()
	return func() { close(done) }
}

// countReader counts the bytes read through it and the time spent waiting
// for them.
type countReader struct {
	r      io.Reader
	n      atomic.Int64
	wait   atomic.Int64 // nanoseconds in Read calls that returned
	inRead atomic.Int64 // when the Read under way began (UnixNano); 0: none
}

func (c *countReader) Read(p []byte) (int, error) {
	t0 := time.Now().UnixNano()
	c.inRead.Store(t0)
	n, err := c.r.Read(p)
	c.wait.Add(time.Now().UnixNano() - t0)
	c.inRead.Store(0)
	c.n.Add(int64(n))
	return n, err
}

// waited is the time spent in Read so far, the call under way included.
func (c *countReader) waited() int64 {
	w := c.wait.Load()
	if t0 := c.inRead.Load(); t0 != 0 {
		w += max(time.Now().UnixNano()-t0, 0)
	}
	return w
}

// readBlocks reads what q asks of each block from br, size(block) bytes,
// and calls fn with each.
func readBlocks(br blockReader, q *wire.BlockRequest, size func(wire.Block) uint32, fn func(i, j int, data []byte, ok bool) error) error {
	bufs := blockBufs.Lease()
	defer bufs.Release()
	for i, f := range q.Files {
		for j, b := range f.Blocks {
			n := size(b)
			data, ok, err := br.Next(bufs.Buf(int(n)), n)
			if err != nil {
				return err
			}
			if err := fn(i, j, data, ok); err != nil {
				return err
			}
		}
	}
	if _, _, err := br.Next(nil, 0); err == nil {
		return errors.New("blocks: more blocks than asked for")
	}
	return nil
}

// blockBufs holds the buffers of block responses, read or served: one
// lease per response, the size of the chunker's largest block, mapped
// outside the heap (a larger block, from a peer that chunks otherwise,
// gets a buffer of the heap). Without a pool each response grew a buffer of its own up to
// its largest block, about 1 GB allocated over the bench's initial
// mirror; pooled in the heap (up to 4 MiB each, larger blocks allocated
// apart: 82 MB), they held the receiver's heap near its memory limit, so
// that the collector ran a cycle every ~100 ms (issue 14). Only the pages
// a response touches take memory, but they stay: keeping 4 instead of 8
// cost nothing measurable in the initial mirror and kept the receiver's
// peak RSS 119-132 MiB instead of 140-144 MiB (118-120 MiB before).
var blockBufs = freelist.NewMapped(4, chunkstore.DefaultMaxChunk)

// ms rounds d to milliseconds, for logs.
func ms(d time.Duration) time.Duration { return d.Round(time.Millisecond) }
