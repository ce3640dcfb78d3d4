package transfer

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sync/errgroup"
	"golang.org/x/time/rate"

	"github.com/syncd/syncd/config"
	"github.com/syncd/syncd/internal/bell"
	"github.com/syncd/syncd/internal/clock"
	"github.com/syncd/syncd/state"
	"github.com/syncd/syncd/transfer/tlsid"
	"github.com/syncd/syncd/transfer/wire"
)

// Node is the transfer service of one node: the peer protocol's server
// and a puller for each (peer, folder) this node receives from.
type Node struct {
	cfg     *config.Config
	id      *tlsid.Identity
	sdb     *state.DB
	log     *slog.Logger
	folders map[string]*Folder
	order   []*Folder
	peers   map[tlsid.NodeID]config.Peer
	names   map[uint64]string // node short ID → ID prefix, for conflict names

	blocksServed atomic.Int64  // bytes of file content sent to peers
	blocksHTTP1  atomic.Int64  // block responses served over HTTP/1.1
	features     []string      // what hello lists (wire.Hello.Features)
	indexID      string        // this node's index, see wire.HelloFolder.Index
	serving      chan struct{} // a slot per block response being written

	clk  clock.Clock            // see Options.Clock
	reps map[*Folder]*reporters // who reports each folder's conditions

	// by peer name and by (peer, folder): made in New, read-only after,
	// so read without a lock; what they hold is atomic
	peerSt map[string]*peerState
	pf     map[pfKey]*pfCounters

	sendLim, recvLim *rate.Limiter // node.max_send_rate, max_recv_rate; nil: none
	stall            time.Duration // see writeStall; a field, so that tests can shorten it

	// Dial, if set before Run or Serve, connects to a peer's address
	// instead of TCP: protocol tests run nodes over in-memory pipes.
	Dial func(ctx context.Context, address string) (net.Conn, error)

	mu      sync.Mutex
	pullers []*puller
	conns   map[net.Conn]*peerState      // open connections from peers, by whom (nil: not counted, see connState)
	acks    map[string]map[string]uint64 // peer → folder → since it asked for
}

// Options are the optional parts of a [Node]; the zero value is ready to
// use.
type Options struct {
	// Logger receives the service's log; nil: discarded.
	Logger *slog.Logger
	// Clock is the time of the service's schedules, backoffs and
	// expiries: the waits before a session or a failed entry is tried
	// again, long polls, compression probes, the reminders of lasting
	// conditions, how long a write of the receiver is its own, and the
	// times status reports. Nil: [clock.System]. What measures real
	// elapsed time (transfer rates, latencies, HTTP/2 PINGs, timeouts of
	// the network) does not use it.
	Clock clock.Clock
}

// New prepares the transfer service for the folders of cfg, whose
// indexes are in db (where the pullers also keep their cursors). Every
// peer's ID must parse; the folders' roots are opened here.
func New(cfg *config.Config, id *tlsid.Identity, db *state.DB, folders []*Folder, o Options) (*Node, error) {
	log, clk := o.Logger, o.Clock
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if clk == nil {
		clk = clock.System
	}
	n := &Node{cfg: cfg, id: id, sdb: db, log: log, folders: map[string]*Folder{}, peers: map[tlsid.NodeID]config.Peer{},
		names: map[uint64]string{id.ID.Uint64(): id.ID.Short()}, conns: map[net.Conn]*peerState{},
		peerSt: map[string]*peerState{}, pf: map[pfKey]*pfCounters{},
		acks: map[string]map[string]uint64{}, serving: make(chan struct{}, maxServing()),
		clk: clk, reps: map[*Folder]*reporters{}, stall: writeStall,
		features: []string{wire.FeatureFrames, wire.FeatureSums, wire.FeatureBlocksHTTP1},
		sendLim:  newLimiter(cfg.Node.MaxSendRate), recvLim: newLimiter(cfg.Node.MaxRecvRate)}
	for _, p := range cfg.Peers {
		pid, err := tlsid.ParseNodeID(p.ID)
		if err != nil {
			return nil, fmt.Errorf("peer %s: id: %w", p.Name, err)
		}
		n.peers[pid] = p
		n.names[pid.Uint64()] = pid.Short()
		n.peerSt[p.Name] = &peerState{sendLim: newLimiter(p.MaxSendRate), recvLim: newLimiter(p.MaxRecvRate), back: new(bell.Bell)}
	}
	var err error
	if n.indexID, err = indexID(db); err != nil {
		return nil, err
	}
	for _, f := range folders {
		f.clk = clk
		if err := f.open(); err != nil {
			n.Close()
			return nil, err
		}
		n.folders[f.Config.ID] = f
		n.order = append(n.order, f)
		for _, name := range f.Config.Peers {
			if n.peerSt[name] != nil {
				n.pf[pfKey{name, f.Config.ID}] = new(pfCounters)
			}
		}
	}
	for _, f := range n.order {
		if !f.receives() {
			continue
		}
		pulls := false
		for _, name := range f.Config.Peers {
			for pid, p := range n.peers {
				if p.Name == name {
					n.pullers = append(n.pullers, n.newPuller(p, pid, f))
					pulls = true
				}
			}
		}
		if pulls {
			if err := n.beginAdoption(f); err != nil {
				n.Close()
				return nil, err
			}
		}
	}
	return n, nil
}

// Close releases the folders' roots.
func (n *Node) Close() {
	for _, f := range n.order {
		f.close()
	}
}

func (n *Node) db() *state.DB { return n.sdb }

func (n *Node) allowed(id tlsid.NodeID) (string, bool) {
	p, ok := n.peers[id]
	return p.Name, ok
}

// nodeName returns the ID prefix of a node for conflict names.
func (n *Node) nodeName(short uint64) string {
	if s, ok := n.names[short]; ok {
		return s
	}
	return fmt.Sprintf("%016X", short)[:7]
}

// Run serves the peer protocol on node.listen and runs the pullers until
// ctx ends (see Serve). Nothing listens when no peer is configured.
func (n *Node) Run(ctx context.Context) error {
	if len(n.peers) == 0 {
		<-ctx.Done()
		return nil
	}
	ln, err := net.Listen("tcp", n.cfg.Node.Listen)
	if err != nil {
		return fmt.Errorf("node.listen %s: %w", n.cfg.Node.Listen, err)
	}
	return n.Serve(ctx, ln)
}

// Serve serves the peer protocol on ln, which it closes at the end, and
// runs the pullers until ctx ends.
func (n *Node) Serve(ctx context.Context, ln net.Listener) error {
	g, ctx := errgroup.WithContext(ctx)
	g.Go(func() error { return n.serve(ctx, ln) })
	for _, p := range n.pullers {
		g.Go(func() error { p.run(ctx); return nil })
	}
	return g.Wait()
}

// serve runs the server on ln until ctx ends: HTTP/2, and HTTP/1.1 for
// the block requests of peers that ask for it (wire.FeatureBlocksHTTP1).
func (n *Node) serve(ctx context.Context, ln net.Listener) error {
	var p http.Protocols
	p.SetHTTP2(true)
	p.SetHTTP1(true)
	srv := &http.Server{
		Handler:           n.Handler(),
		TLSConfig:         tlsid.ServerConfig(n.id, n.allowed, n.log),
		Protocols:         &p,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(n.log.Handler(), slog.LevelDebug),
		ConnState:         n.connState,
		HTTP2: &http.HTTP2Config{
			SendPingTimeout:               pingAfter,
			PingTimeout:                   pingTimeout,
			MaxReceiveBufferPerConnection: 4<<20 - 1,
			MaxReceiveBufferPerStream:     4<<20 - 1,
		},
	}
	go func() {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		if srv.Shutdown(sctx) != nil {
			srv.Close()
		}
	}()
	err := srv.Serve(tls.NewListener(limitedListener{ln, n.sendLim, n.recvLim, n.stall}, srv.TLSConfig))
	if err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("node.listen: %w", err)
	}
	return nil
}

// seen notes a request from peer, answered.
func (n *Node) seen(peer string) {
	if ps := n.peerSt[peer]; ps != nil {
		ps.lastIn.Store(n.clk.Now().UnixNano())
	}
}

// peerState is what the server knows of a peer; its fields are atomic.
type peerState struct {
	lastIn atomic.Int64 // last request answered or connection closed, ns since the epoch; 0: none
	conns  atomic.Int32 // connections open from the peer

	sendLim, recvLim *rate.Limiter // the peer's max_send_rate, max_recv_rate; nil: none
	// back rings when the peer opens a connection to this node: a puller
	// of it waiting out its backoff tries again at once (the link is back)
	back *bell.Bell
}

// connState counts the HTTP/2 connections each peer has open to this
// node (http.Server.ConnState): the peer's own pullers. One that ends
// (the peer's process killed, its PING unanswered: see pingAfter) counts
// at once, so a node that only serves a peer sees it go without waiting
// for a request that does not come. A connection over HTTP/1.1 (a
// puller's block fetches, see wire.FeatureBlocksHTTP1) gets the peer's
// rate limits but does not count: it has no PING, and an idle one stays
// open for minutes after its peer went silent.
func (n *Node) connState(c net.Conn, s http.ConnState) {
	switch s {
	case http.StateActive: // once the handshake is done, and at each stream after idle
		tc, ok := c.(*tls.Conn)
		if !ok {
			return
		}
		n.mu.Lock()
		defer n.mu.Unlock()
		if _, known := n.conns[c]; known {
			return
		}
		id, err := tlsid.PeerID(tc.ConnectionState())
		if err != nil {
			return
		}
		p, ok := n.peers[id]
		if !ok {
			return
		}
		if lc, ok := tc.NetConn().(*limitedConn); ok {
			lc.setLimits(n.peerLimits(p.Name))
		}
		ps := n.peerSt[p.Name]
		ps.back.Ring()
		if tc.ConnectionState().NegotiatedProtocol != tlsid.ALPN {
			n.conns[c] = nil // known, not counted
			return
		}
		n.conns[c] = ps
		ps.conns.Add(1)
	case http.StateClosed, http.StateHijacked:
		n.mu.Lock()
		defer n.mu.Unlock()
		if ps, ok := n.conns[c]; ok {
			delete(n.conns, c)
			if ps != nil {
				ps.lastIn.Store(n.clk.Now().UnixNano())
				ps.conns.Add(-1)
			}
		}
	}
}

func (n *Node) acked(peer, folder string, since uint64) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.acks[peer] == nil {
		n.acks[peer] = map[string]uint64{}
	}
	n.acks[peer][folder] = since
}

// indexID returns the ID of the state database, made on first use.
func indexID(db *state.DB) (string, error) {
	const key = "transfer/index-id"
	v, ok, err := db.GetMeta(key)
	if err != nil {
		return "", err
	}
	if ok {
		return string(v), nil
	}
	var b [8]byte
	rand.Read(b[:])
	id := hex.EncodeToString(b[:])
	return id, db.PutMeta(key, []byte(id))
}
