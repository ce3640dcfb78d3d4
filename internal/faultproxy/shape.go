package faultproxy

import (
	"net"
	"sync"
	"time"
)

// A shaped link, one per direction, is like a cable of a given bandwidth
// and length: a byte read from one side is serialized onto the link at
// its rate, behind every byte read before it on any connection in that
// direction, and is delivered to the other side delay after its
// serialization ends. Data in flight is not held back by the delay: a
// link of R bytes/s and delay D carries R×D bytes at once, its
// bandwidth-delay product, as a real one does.

// Shape sets the link the proxy emulates, in each direction on its own:
// bytesPerSec shared by all connections in that direction (0: no limit)
// and oneWayDelay added to every byte's trip (0: none), so a round trip
// takes at least twice oneWayDelay. It applies at once to connections
// already open and to new ones: bytes read after the call go at the new
// rate and take the new delay (bytes already in flight keep the delay
// they were given, and arrive in order). Cut, Blackhole and Heal work as
// without shaping; bytes held in flight count as forwarded only when
// delivered.
func (p *Proxy) Shape(bytesPerSec int64, oneWayDelay time.Duration) {
	for _, l := range []*wireLink{&p.upLink, &p.downLink} {
		l.set(max(bytesPerSec, 0), max(oneWayDelay, 0))
	}
}

// Shaping limits of the proxy itself.
const (
	// chunkMax is the most one read takes from a connection.
	chunkMax = 32 << 10
	// chunkTime is how much link time one read at most takes, so that a
	// new rate applies within about that long; at a slow rate a read
	// still takes at least chunkMin bytes.
	chunkTime = 10 * time.Millisecond
	chunkMin  = 1500
	// slack is how far behind the link's schedule a reader may fall
	// (waking late from its wait, on a busy machine) without the link
	// losing that time; after the link was idle, it is also the burst
	// that goes at once.
	slack = 10 * time.Millisecond
	// flightMin is the least a connection holds in flight in one
	// direction; with a rate, it holds twice the bandwidth-delay
	// product if that is more. A connection whose other end does not
	// read stops reading there.
	flightMin = 4 << 20
	// queueMin is the least receive buffer of a shaped connection (see
	// wireLink.queue); queueUnshaped is what one gets back when the
	// shaping ends (the kernel's growing it is off once set).
	queueMin      = 256 << 10
	queueUnshaped = 4 << 20
)

// wireLink is the shared state of one direction's link.
type wireLink struct {
	mu    sync.Mutex
	rate  int64         // bytes per second; 0: unlimited
	delay time.Duration // one way
	next  time.Time     // when the link is done with what it was given
}

func (l *wireLink) set(rate int64, delay time.Duration) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.rate, l.delay = rate, delay
}

// chunk is how many bytes the next read should take at most.
func (l *wireLink) chunk() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.rate == 0 {
		return chunkMax
	}
	return int(min(max(l.rate*int64(chunkTime)/int64(time.Second), chunkMin), chunkMax))
}

// flight is how many bytes a connection may hold in flight.
func (l *wireLink) flight() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.rate == 0 || l.delay == 0 {
		return flightMin
	}
	bdp := l.rate * int64(l.delay) / int64(time.Second)
	return int(max(2*bdp, flightMin))
}

// queue is the receive buffer a connection's reading side gets on a
// shaped link: the queue in front of the link, which a router keeps short
// (queueMin, or twice the bandwidth-delay product). Without it the kernel
// grows the buffer to megabytes, which a sender fills in no time, and a
// link that slows down then holds the sender's bytes of many seconds.
// 0: not shaped.
func (l *wireLink) queue() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.rate == 0 {
		return 0
	}
	bdp := l.rate * int64(l.delay) / int64(time.Second)
	return int(max(2*bdp, queueMin))
}

// send puts n bytes read at now onto the link: it returns when they are
// serialized (sent) and when they arrive at the other end (arrive).
func (l *wireLink) send(n int, now time.Time) (sent, arrive time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.rate == 0 {
		l.next = now
		return now, now.Add(l.delay)
	}
	start := l.next
	if early := now.Add(-slack); start.Before(early) {
		start = early
	}
	l.next = start.Add(time.Duration(int64(n) * int64(time.Second) / l.rate))
	if l.next.Before(now) {
		return now, now.Add(l.delay)
	}
	return l.next, l.next.Add(l.delay)
}

// packet is what a connection has in flight: n bytes in buf (from
// bufPool) with their arrival time, or, with err set, the end of the
// stream read after them.
type packet struct {
	buf    *[]byte
	n      int
	arrive time.Time
	err    error
}

// flightQueue holds a connection's packets in flight in one direction,
// between the goroutine that reads them and the one that delivers them.
// It is safe for one pusher and one popper at once.
type flightQueue struct {
	mu    sync.Mutex
	q     []packet
	bytes int
	more  chan struct{} // signalled after a push
	room  chan struct{} // signalled after a pop
}

func newFlightQueue() *flightQueue {
	return &flightQueue{more: make(chan struct{}, 1), room: make(chan struct{}, 1)}
}

// push appends pk once fewer than limit bytes are in flight (or none
// are); it returns false if done is closed first.
func (f *flightQueue) push(pk packet, limit int, done <-chan struct{}) bool {
	for {
		f.mu.Lock()
		if len(f.q) == 0 || f.bytes+pk.n <= limit {
			f.q = append(f.q, pk)
			f.bytes += pk.n
			f.mu.Unlock()
			signal(f.more)
			return true
		}
		f.mu.Unlock()
		select {
		case <-f.room:
		case <-done:
			return false
		}
	}
}

// pop removes and returns the oldest packet, waiting for one; it returns
// false if done is closed first.
func (f *flightQueue) pop(done <-chan struct{}) (packet, bool) {
	for {
		f.mu.Lock()
		if len(f.q) > 0 {
			pk := f.q[0]
			f.q[0] = packet{}
			f.q = f.q[1:]
			f.bytes -= pk.n
			f.mu.Unlock()
			signal(f.room)
			return pk, true
		}
		f.mu.Unlock()
		select {
		case <-f.more:
		case <-done:
			return packet{}, false
		}
	}
}

func signal(c chan struct{}) {
	select {
	case c <- struct{}{}:
	default:
	}
}

// sleeper waits until a time, reusing one timer.
type sleeper struct{ t *time.Timer }

// until waits until t; it returns false if done is closed first.
func (s *sleeper) until(t time.Time, done <-chan struct{}) bool {
	d := time.Until(t)
	if d <= 0 {
		return true
	}
	if s.t == nil {
		s.t = time.NewTimer(d)
	} else {
		s.t.Reset(d)
	}
	select {
	case <-s.t.C:
		return true
	case <-done:
		s.t.Stop()
		return false
	}
}

func (s *sleeper) stop() {
	if s.t != nil {
		s.t.Stop()
	}
}

// bufPool holds the read buffers of packets in flight.
var bufPool = sync.Pool{New: func() any { b := make([]byte, chunkMax); return &b }}

// setRecvBuffer sets c's SO_RCVBUF to n bytes, if c is a TCP connection.
func setRecvBuffer(c net.Conn, n int) {
	if tc, ok := c.(*net.TCPConn); ok {
		tc.SetReadBuffer(n)
	}
}
