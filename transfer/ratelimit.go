package transfer

import (
	"context"
	"net"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"
	"golang.org/x/time/rate"
)

// Rate limits (node.max_send_rate, node.max_recv_rate and the same keys
// of each peer) count the bytes of the peer protocol on the wire: TLS
// records, compressed blocks, index batches, both the connections this
// node opens to a peer (its pullers) and those the peer opens to it. A
// connection draws on the node's limiter of its direction and on its
// peer's; a connection not yet known to be a peer's (its TLS handshake)
// on the node's alone.

// limiters are the limiters of one direction a connection draws on.
type limiters [2]*rate.Limiter // the node's, the peer's; nil: no limit

// newLimiter returns a limiter of bytesPerSec, nil for 0 (no limit). Its
// burst, what may go at once after a pause, is a tenth of a second's worth
// (at least 4 KiB, at most 1 MiB): short enough that a limit holds within
// a second, long enough that a TLS record is not cut in many waits.
func newLimiter(bytesPerSec int64) *rate.Limiter {
	if bytesPerSec <= 0 {
		return nil
	}
	burst := min(max(bytesPerSec/10, 4<<10), 1<<20)
	return rate.NewLimiter(rate.Limit(bytesPerSec), int(burst))
}

// burst returns the most bytes one wait of ls may take.
func (ls *limiters) burst() int {
	b := 1 << 20
	for _, l := range ls {
		if l != nil {
			b = min(b, l.Burst())
		}
	}
	return b
}

// wait waits until ls allow n bytes (n at most burst).
func (ls *limiters) wait(n int) {
	for _, l := range ls {
		if l != nil {
			// cannot fail: n is within the burst and the context never ends
			l.WaitN(context.Background(), n)
		}
	}
}

// limited reports whether any limiter is set.
func (ls *limiters) limited() bool { return ls[0] != nil || ls[1] != nil }

// limitedConn is a connection whose reads and writes wait on limiters.
// Writes wait before each piece goes out; reads after each piece came in
// (the peer's sends then stall on TCP's window).
type limitedConn struct {
	net.Conn
	send, recv atomic.Pointer[limiters]
	// stall, if not 0, fails a write that sends nothing for that long
	// (see writeStall): each piece written sets the write deadline
	stall time.Duration
}

// setLimits sets the limiters c draws on from now on.
func (c *limitedConn) setLimits(send, recv limiters) {
	c.send.Store(&send)
	c.recv.Store(&recv)
}

func (c *limitedConn) Write(p []byte) (int, error) {
	ls := c.send.Load()
	if ls == nil || !ls.limited() {
		return c.write(p)
	}
	written := 0
	for len(p) > 0 {
		n := min(len(p), ls.burst())
		ls.wait(n)
		m, err := c.write(p[:n])
		written += m
		if err != nil {
			return written, err
		}
		p = p[n:]
	}
	return written, nil
}

// write writes p to the connection within c.stall, if set: the deadline
// is set after the limiters' wait, so a rate limit does not count as a
// stall.
func (c *limitedConn) write(p []byte) (int, error) {
	if c.stall > 0 {
		c.Conn.SetWriteDeadline(time.Now().Add(c.stall))
	}
	return c.Conn.Write(p)
}

func (c *limitedConn) Read(p []byte) (int, error) {
	ls := c.recv.Load()
	if ls == nil || !ls.limited() {
		return c.Conn.Read(p)
	}
	n, err := c.Conn.Read(p[:min(len(p), ls.burst())])
	if n > 0 {
		ls.wait(n)
	}
	return n, err
}

// limitedListener wraps each accepted connection in a limitedConn with
// the node's limiters and stall; connState adds the peer's limiters once
// it is known.
type limitedListener struct {
	net.Listener
	send, recv *rate.Limiter
	stall      time.Duration
}

func (l limitedListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	lowUnsent(c)
	lc := &limitedConn{Conn: c, stall: l.stall}
	lc.setLimits(limiters{l.send}, limiters{l.recv})
	return lc, nil
}

// peerLimits returns the limiters of the connections with peer.
func (n *Node) peerLimits(peer string) (send, recv limiters) {
	send[0], recv[0] = n.sendLim, n.recvLim
	if ps := n.peerSt[peer]; ps != nil {
		send[1], recv[1] = ps.sendLim, ps.recvLim
	}
	return send, recv
}

// notSentLowat bounds what a served connection holds written but not yet
// sent in its socket (TCP_NOTSENT_LOWAT): without it the kernel buffers
// megabytes, and when the link slows down (or a response is abandoned, see
// chooser.tooSlow) all of that still has to cross before anything else
// does. What is on the wire, unacknowledged, is not limited by it.
const notSentLowat = 256 << 10

// lowUnsent sets TCP_NOTSENT_LOWAT on c if it is a TCP connection.
func lowUnsent(c net.Conn) {
	tc, ok := c.(*net.TCPConn)
	if !ok {
		return
	}
	if raw, err := tc.SyscallConn(); err == nil {
		raw.Control(func(fd uintptr) {
			unix.SetsockoptInt(int(fd), unix.IPPROTO_TCP, unix.TCP_NOTSENT_LOWAT, notSentLowat)
		})
	}
}
