package transfer

import (
	"bytes"
	"context"
	"errors"
	"math/rand/v2"
	"net"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/syncd/syncd/config"
	"github.com/syncd/syncd/internal/faultproxy"
	"github.com/syncd/syncd/transfer/wire"
)

// A peer that serves blocks over HTTP/1.1 is asked for them over it; one
// that does not say so in its hello (an older version) over HTTP/2.
func TestBlocksOverHTTP1(t *testing.T) {
	for _, old := range []bool{false, true} {
		t.Run(map[bool]string{false: "new", true: "old"}[old], func(t *testing.T) {
			a := newTestNode(t, "a", config.SendReceive)
			b := newTestNode(t, "b", config.SendReceive)
			connect(a, b)
			if old {
				a.tune = func(n *Node) {
					n.features = slices.DeleteFunc(slices.Clone(n.features), func(f string) bool { return f == wire.FeatureBlocksHTTP1 })
				}
			}
			a.write(t, "f", strings.Repeat("content ", 100_000))
			a.index(t)
			a.start(t)
			b.start(t)
			eventually(t, "b mirrors a", func() bool { return sameTrees(t, a, b) })
			switch n := a.node.blocksHTTP1.Load(); {
			case old && n != 0:
				t.Errorf("%d block responses over HTTP/1.1 to a peer that does not serve them", n)
			case !old && n == 0:
				t.Error("no block response over HTTP/1.1")
			}
		})
	}
}

// A block response over HTTP/1.1 that waits (every serving slot taken)
// is kept while the peer answers pings over HTTP/2, and fails with
// errLinkSilent once the link goes silent: HTTP/1.1 has no PING of its
// own, and a dead link would hold the fetch for as long as TCP lets it.
func TestHTTP1GuardedByPings(t *testing.T) {
	a := newTestNode(t, "a", config.SendReceive)
	b := newTestNode(t, "b", config.SendReceive)
	connect(a, b)
	content := strings.Repeat("guarded ", 8<<10)
	a.write(t, "f", content)
	a.index(t)
	a.start(t)
	toA, err := faultproxy.New(a.cfg.Node.Listen)
	if err != nil {
		t.Fatal(err)
	}
	defer toA.Close()
	c := newClient(b.id, a.id.ID, toA.Addr(), limiters{}, limiters{}, nil)
	defer c.close()
	c.http1.Store(true)
	c.probeAfter, c.probeTimeout = 100*time.Millisecond, time.Second
	q := wire.BlockRequest{Files: []wire.FileBlocks{{Path: "f", Blocks: []wire.Block{{Length: uint32(len(content))}}}}}
	fetch := func() chan error {
		done := make(chan error, 1)
		go func() {
			done <- c.blocks(t.Context(), "www", &q, func(i, j int, data []byte, ok bool) error {
				if !ok || string(data) != content {
					return errors.New("not the block asked for")
				}
				return nil
			})
		}()
		return done
	}
	slots := cap(a.node.serving)
	take := func() {
		for range slots {
			a.node.serving <- struct{}{}
		}
	}
	give := func() {
		for range slots {
			<-a.node.serving
		}
	}

	take()
	done := fetch()
	eventually(t, "3 pings while the response waits", func() bool { return c.pings.Load() >= 3 })
	select {
	case err := <-done:
		t.Fatalf("the fetch ended while its peer answered pings: %v", err)
	default:
	}
	give()
	if err := <-done; err != nil {
		t.Fatalf("the fetch, once served: %v", err)
	}

	take()
	defer give()
	done = fetch()
	toA.Blackhole()
	select {
	case err := <-done:
		if !errors.Is(err, errLinkSilent) {
			t.Fatalf("a fetch on a silent link: %v, want errLinkSilent", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("a fetch on a silent link did not fail")
	}
}

// A response over HTTP/1.1 that its peer stops reading gives its serving
// slot back after the node's write stall (the peer is gone, or the link
// is, with nothing to say so): without it the slot, one of a few, would
// be held for as long as TCP keeps the connection.
func TestStalledResponseFreesSlot(t *testing.T) {
	a := newTestNode(t, "a", config.SendReceive)
	b := newTestNode(t, "b", config.SendReceive)
	connect(a, b)
	big := make([]byte, wire.MaxBlockBytes)
	chacha := rand.NewChaCha8([32]byte{1})
	chacha.Read(big)
	a.write(t, "big", string(big))
	a.index(t)
	a.tune = func(n *Node) { n.stall = 300 * time.Millisecond }
	a.start(t)
	// a small receive buffer, so that the response cannot all be taken
	// in by the kernel without being read
	dial := func(ctx context.Context, addr string) (net.Conn, error) {
		var d net.Dialer
		conn, err := d.DialContext(ctx, "tcp", addr)
		if err == nil {
			conn.(*net.TCPConn).SetReadBuffer(64 << 10)
		}
		return conn, err
	}
	c := newClient(b.id, a.id.ID, a.cfg.Node.Listen, limiters{}, limiters{}, dial)
	defer c.close()
	q := wire.BlockRequest{Files: []wire.FileBlocks{{Path: "big", Blocks: []wire.Block{{Length: uint32(len(big))}}}}}
	resp, err := c.do(t.Context(), c.h1, http.MethodPost, "/v1/blocks", map[string][]string{"folder": {"www"}, "compress": {"raw"}}, q.Append(nil))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if len(a.node.serving) != 1 {
		t.Fatalf("%d serving slots taken while the response is written, want 1", len(a.node.serving))
	}
	// its body is not read
	eventually(t, "the stalled response's slot given back", func() bool { return len(a.node.serving) == 0 })
	if log := a.log.String(); !strings.Contains(log, "block response cut") || !strings.Contains(log, "timeout") {
		t.Errorf("the cut response is not logged as timed out:\n%s", log)
	}
	if got, _ := bytes.NewBuffer(nil).ReadFrom(resp.Body); got >= int64(len(big)) {
		t.Errorf("the whole response came: %d bytes", got)
	}
}
