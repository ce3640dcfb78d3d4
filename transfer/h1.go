package transfer

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"time"

	"github.com/syncd/syncd/transfer/tlsid"
)

// Block responses over HTTP/1.1 (wire.FeatureBlocksHTTP1). An HTTP/2
// stream brings a block response through two more copies than an
// HTTP/1.1 connection (the transport's frame buffer and the stream's
// pipe), and its sender frames it: on the bench's initial mirror that
// was 0.4–0.6 s of the two daemons' CPU (docs/BENCHMARKS.md, issue 14).
// A puller whose peer serves it asks for blocks over HTTP/1.1
// connections of their own and keeps HTTP/2 for the rest.
//
// HTTP/1.1 has no PING, so its connection proves nothing while a
// response is awaited: behind a proxy or a NAT that still acknowledges,
// a dead link would hold a fetch, and a served response's slot, for as
// long as TCP keeps it open. Two guards take the PING's place:
//   - the receiver: while a response brings no byte for probeAfter, it
//     pings the peer over its HTTP/2 connection (GET /v1/ping), whose
//     PINGs find a dead link; no answer within probeTimeout cancels the
//     fetch with errLinkSilent. A peer that is only slow to answer (its
//     serving slots taken, a busy disk) answers its ping. Checked every
//     probeAfter/3, a fetch on a dead link ends within about 9 s, as
//     the HTTP/2 connection's PING would end it (PeerDownAfter);
//   - the server: a write to a peer's connection that sends nothing for
//     writeStall fails (limitedConn.stall), so a response to a peer gone
//     silent gives its serving slot back.
const (
	probeAfter   = 3 * time.Second
	probeTimeout = pingTimeout
	writeStall   = 30 * time.Second
)

// errLinkSilent ends a fetch over HTTP/1.1 whose peer did not answer a
// ping while the response waited.
var errLinkSilent = errors.New("peer silent: no answer to a ping while a block response waited")

// newHTTP1 returns the client of block requests over HTTP/1.1, with the
// TLS configuration of the HTTP/2 client (base) but its ALPN and dialing
// as dial does.
func newHTTP1(base *tls.Config, dial func(ctx context.Context, network, addr string) (net.Conn, error)) *http.Client {
	var p http.Protocols
	p.SetHTTP1(true)
	cfg := base.Clone()
	cfg.NextProtos = []string{tlsid.ALPNHTTP1}
	return &http.Client{Transport: &http.Transport{
		TLSClientConfig:     cfg,
		DialContext:         dial,
		TLSHandshakeTimeout: dialTimeout,
		Protocols:           &p,
		// a connection per response in flight: the receiver's fetchers
		// of the batches it prepares at once
		MaxIdleConnsPerHost: 16,
		IdleConnTimeout:     time.Minute,
		DisableCompression:  true,
	}}
}

// guard watches a response over HTTP/1.1 whose bytes are counted by body,
// from before its headers come: each time probeAfter passes without a
// byte or an answered ping, it pings the peer, and if the ping fails,
// cancels the fetch with errLinkSilent. It stops when stop is called.
func (c *client) guard(body *countReader, cancel context.CancelCauseFunc) (stop func()) {
	// ended by stop: the guard's wait and a ping under way
	gctx, done := context.WithCancel(context.Background())
	go func() {
		t := time.NewTicker(c.probeAfter / 3)
		defer t.Stop()
		var last int64
		heard := time.Now() // a byte came or a ping was answered
		for {
			select {
			case <-gctx.Done():
				return
			case <-t.C:
			}
			if n := body.n.Load(); n != last {
				last, heard = n, time.Now()
				continue
			}
			if time.Since(heard) < c.probeAfter {
				continue
			}
			err := c.ping(gctx)
			if err == nil {
				heard = time.Now()
				continue
			}
			if gctx.Err() == nil { // else the fetch ended meanwhile
				cancel(fmt.Errorf("%w (%v)", errLinkSilent, err))
			}
			return
		}
	}()
	return done
}

// ping asks the peer for GET /v1/ping over the HTTP/2 connection, within
// c.probeTimeout or until ctx ends.
func (c *client) ping(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, c.probeTimeout)
	defer cancel()
	c.pings.Add(1)
	resp, err := c.do(ctx, c.hc, http.MethodGet, "/v1/ping", nil, nil)
	if err != nil {
		return err
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return nil
}

// servePing answers GET /v1/ping: an empty answer, which tells a puller
// waiting for a block response over HTTP/1.1 that the link is alive.
func (n *Node) servePing(w http.ResponseWriter, r *http.Request) {
	peer, err := n.peerName(r)
	if err != nil {
		n.refuse(w, r, http.StatusForbidden, err)
		return
	}
	n.seen(peer)
}
