// Package faultproxy is a TCP proxy for tests that breaks the network on
// demand: it forwards connections to a target until told to cut them
// (connections reset) or to blackhole them (connections stall, data is
// held), and heals again. It counts the bytes it forwards each way.
package faultproxy

import (
	"context"
	"errors"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// Proxy forwards TCP connections from a listener on 127.0.0.1 to a target
// address. Its methods are safe for concurrent use.
type Proxy struct {
	target string
	ln     net.Listener
	ctx    context.Context // ends at Close: pending dials give up
	cancel context.CancelFunc
	wg     sync.WaitGroup // the accept loop and every connection's goroutines

	up, down atomic.Int64 // bytes forwarded client→target, target→client

	// atDown is what to do at a BytesDown (AtDown); nil: nothing.
	atDown atomic.Pointer[trigger]

	upLink, downLink wireLink // the shaped link each way (Shape)

	mu     sync.Mutex
	mode   mode
	open   chan struct{} // closed while forwarding; a blackhole waits on it
	conns  map[*link]struct{}
	closed bool

	// held counts connections waiting for a blackhole to end, either
	// not yet dialed or with read data not yet forwarded. Tests read it.
	held atomic.Int64
}

type mode int

const (
	forward mode = iota
	cut
	blackhole
)

// New starts a proxy to target (host:port) on a free port of 127.0.0.1.
// The target is dialed once per accepted connection, not now.
func New(target string) (*Proxy, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	p := &Proxy{target: target, ln: ln, ctx: ctx, cancel: cancel, open: make(chan struct{}), conns: map[*link]struct{}{}}
	close(p.open)
	p.wg.Go(p.accept)
	return p, nil
}

// Addr returns the proxy's address (127.0.0.1:port), to dial instead of
// the target.
func (p *Proxy) Addr() string { return p.ln.Addr().String() }

// BytesUp returns the bytes forwarded from clients to the target so far.
// A byte is counted when the proxy hands it to the target connection, so
// once the target has read it, it is counted.
func (p *Proxy) BytesUp() int64 { return p.up.Load() }

// BytesDown returns the bytes forwarded from the target to clients so far,
// counted as [Proxy.BytesUp] counts.
func (p *Proxy) BytesDown() int64 { return p.down.Load() }

// Cut resets every connection through the proxy (both ends see a
// connection reset) and, until [Proxy.Heal], resets each new connection as
// soon as it is accepted, without dialing the target: like a peer whose
// process is gone. It ends a blackhole.
func (p *Proxy) Cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return
	}
	p.setMode(cut)
	for l := range p.conns {
		l.close(true)
		delete(p.conns, l)
	}
}

// Blackhole stalls the network until [Proxy.Heal]: connections stay open
// but nothing is forwarded either way, and new connections are accepted
// and held without dialing the target, like a cable pulled out. Data sent
// meanwhile is held, not lost: after Heal it is forwarded, and held new
// connections are connected to the target.
func (p *Proxy) Blackhole() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed || p.mode == blackhole {
		return
	}
	p.setMode(blackhole)
}

// AtDown arms the proxy to call f once it has forwarded n bytes from the
// target to clients in all (BytesDown), with at most one read (32 KiB)
// more per connection: a fault at a point of a transfer that does not
// depend on how soon the test notices it got there. f runs once, on the
// proxy's goroutine about to forward the next bytes down, before they
// go: a [Proxy.Blackhole] it calls holds them, a [Proxy.Shape] paces
// what is read next. Arming again replaces what was armed.
func (p *Proxy) AtDown(n int64, f func()) { p.atDown.Store(&trigger{at: n, f: f}) }

// trigger is what AtDown armed.
type trigger struct {
	at int64
	f  func()
}

// Heal ends a [Proxy.Cut] or [Proxy.Blackhole]: connections are forwarded
// again, stalled ones resume.
func (p *Proxy) Heal() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return
	}
	p.setMode(forward)
}

// pass waits until a packet of l counted on n, a direction's counter,
// may be delivered: first it runs what AtDown armed if the BytesDown it
// waits for is reached, then it waits out any blackhole. It returns false
// if l was closed meanwhile.
func (p *Proxy) pass(l *link, n *atomic.Int64) bool {
	if n == &p.down {
		if tr := p.atDown.Load(); tr != nil && n.Load() >= tr.at && p.atDown.CompareAndSwap(tr, nil) {
			tr.f()
		}
	}
	return p.wait(l)
}

// setMode switches to m; p.mu is held.
func (p *Proxy) setMode(m mode) {
	if m == blackhole {
		if p.mode != blackhole {
			p.open = make(chan struct{})
		}
	} else if p.mode == blackhole {
		close(p.open)
	}
	p.mode = m
}

// Close stops the proxy: the listener and every connection are closed, and
// Close returns once the proxy's goroutines have ended. Later calls do
// nothing.
func (p *Proxy) Close() error {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return nil
	}
	p.closed = true
	err := p.ln.Close()
	p.cancel()
	for l := range p.conns {
		l.close(false)
		delete(p.conns, l)
	}
	p.mu.Unlock()
	p.wg.Wait()
	return err
}

func (p *Proxy) accept() {
	for {
		c, err := p.ln.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			continue // a transient failure (out of descriptors): try again
		}
		p.mu.Lock()
		if p.closed || p.mode == cut {
			p.mu.Unlock()
			reset(c)
			continue
		}
		l := &link{client: c, done: make(chan struct{})}
		p.conns[l] = struct{}{}
		p.wg.Go(func() { p.serve(l) })
		p.mu.Unlock()
	}
}

// gate returns the channel closed while the proxy forwards.
func (p *Proxy) gate() chan struct{} {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.open
}

// wait blocks while the proxy is blackholed; it returns false if l was
// closed meanwhile.
func (p *Proxy) wait(l *link) bool {
	held := false
	defer func() {
		if held {
			p.held.Add(-1)
		}
	}()
	for {
		g := p.gate()
		select {
		case <-g:
			return !l.isClosed()
		default:
		}
		if !held {
			held = true
			p.held.Add(1)
		}
		select {
		case <-g: // healed, unless blackholed again since: look again
		case <-l.done:
			return false
		}
	}
}

// serve dials the target for l and forwards both ways until both are done.
func (p *Proxy) serve(l *link) {
	defer p.drop(l)
	if !p.wait(l) {
		return
	}
	var d net.Dialer
	server, err := d.DialContext(p.ctx, "tcp", p.target)
	if err != nil {
		return
	}
	if !l.setServer(server) {
		return
	}
	var both sync.WaitGroup
	both.Go(func() { p.pump(l, server, l.client, &p.upLink, &p.up) })
	both.Go(func() { p.pump(l, l.client, server, &p.downLink, &p.down) })
	both.Wait()
}

// pump forwards src to dst over the link w, counting on n, until src ends
// or l closes: one goroutine reads src and puts the data on the link, at
// its rate; another delivers it to dst when it arrives. At the end of src
// it closes dst's write side, once what came before has arrived, so the
// other end sees the end of the stream (or, if src failed, it closes both
// connections).
func (p *Proxy) pump(l *link, dst, src net.Conn, w *wireLink, n *atomic.Int64) {
	q := newFlightQueue()
	var deliver sync.WaitGroup
	deliver.Go(func() { p.deliver(l, dst, q, n) })
	p.transmit(l, src, w, q)
	deliver.Wait()
}

// transmit reads src onto the link w and queues what it reads on q, until
// src ends or l closes. It reads no faster than the link's rate: a read
// waits until the one before is serialized.
func (p *Proxy) transmit(l *link, src net.Conn, w *wireLink, q *flightQueue) {
	var s sleeper
	defer s.stop()
	queued := 0 // the receive buffer set on src; 0: the kernel's default
	for {
		if b := w.queue(); b != queued {
			n := b
			if n == 0 {
				n = queueUnshaped
			}
			setRecvBuffer(src, n)
			queued = b
		}
		bp := bufPool.Get().(*[]byte)
		r, err := src.Read((*bp)[:w.chunk()])
		if r > 0 {
			sent, arrive := w.send(r, time.Now())
			if !s.until(sent, l.done) || !q.push(packet{buf: bp, n: r, arrive: arrive}, w.flight(), l.done) {
				bufPool.Put(bp)
				return
			}
		} else {
			bufPool.Put(bp)
		}
		if err != nil {
			// The end of the stream, orderly or not, travels behind
			// the data and is held in a blackhole like data.
			_, arrive := w.send(0, time.Now())
			q.push(packet{arrive: arrive, err: err}, w.flight(), l.done)
			return
		}
	}
}

// deliver writes the packets of q to dst as they arrive, counting on n,
// until the end of the stream or l closes. A blackhole holds them.
func (p *Proxy) deliver(l *link, dst net.Conn, q *flightQueue, n *atomic.Int64) {
	var s sleeper
	defer s.stop()
	for {
		pk, ok := q.pop(l.done)
		if !ok {
			return
		}
		if !s.until(pk.arrive, l.done) || !p.pass(l, n) {
			if pk.buf != nil {
				bufPool.Put(pk.buf)
			}
			return
		}
		if pk.buf != nil {
			// Counted before the write, so a reader that got the bytes
			// sees them counted; what could not be written is taken back.
			n.Add(int64(pk.n))
			w, werr := dst.Write((*pk.buf)[:pk.n])
			if w < pk.n {
				n.Add(int64(w - pk.n))
			}
			bufPool.Put(pk.buf)
			if werr != nil {
				l.close(false)
				return
			}
			continue
		}
		if pk.err == io.EOF {
			if tc, ok := dst.(*net.TCPConn); ok {
				tc.CloseWrite()
				return
			}
		}
		l.close(false)
		return
	}
}

// drop closes l and forgets it.
func (p *Proxy) drop(l *link) {
	l.close(false)
	p.mu.Lock()
	delete(p.conns, l)
	p.mu.Unlock()
}

// link is one proxied connection: the client's and, once dialed, the
// target's.
type link struct {
	client net.Conn
	done   chan struct{} // closed by close

	mu     sync.Mutex
	server net.Conn
	closed bool
}

// setServer records the connection to the target; if l is already closed
// it closes server instead and returns false.
func (l *link) setServer(server net.Conn) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		server.Close()
		return false
	}
	l.server = server
	return true
}

func (l *link) isClosed() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.closed
}

// close closes both connections, with a reset if rst.
func (l *link) close(rst bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return
	}
	l.closed = true
	close(l.done)
	for _, c := range []net.Conn{l.client, l.server} {
		if c == nil {
			continue
		}
		if rst {
			reset(c)
		} else {
			c.Close()
		}
	}
}

// reset closes c with a TCP reset instead of an orderly close.
func reset(c net.Conn) {
	if tc, ok := c.(*net.TCPConn); ok {
		tc.SetLinger(0)
	}
	c.Close()
}
