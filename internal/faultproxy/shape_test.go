package faultproxy

import (
	"bytes"
	"crypto/rand"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// The timing tests below measure a rate or a delay and allow for a slow
// machine: a lower bound is within a few per cent of the exact value (the
// proxy can be late, never early), an upper bound is loose. Each would
// fail by far if the proxy did not shape (too fast) or delayed each write
// in turn instead of the data in flight (many times too slow).

// sink is a TCP server that reads each connection to its end, counting
// the bytes, and reports each connection's total and when its last byte
// came.
type sink struct {
	ln   net.Listener
	got  atomic.Int64 // bytes read so far, over all connections
	ends chan sinkEnd
	wg   sync.WaitGroup
}

type sinkEnd struct {
	n    int64
	last time.Time
}

func newSink(t *testing.T) *sink {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &sink{ln: ln, ends: make(chan sinkEnd, 16)}
	s.wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			s.wg.Go(func() {
				defer c.Close()
				var e sinkEnd
				buf := make([]byte, 64<<10)
				for {
					n, err := c.Read(buf)
					if n > 0 {
						e.n += int64(n)
						e.last = time.Now()
						s.got.Add(int64(n))
					}
					if err != nil {
						s.ends <- e
						return
					}
				}
			})
		}
	})
	t.Cleanup(func() {
		ln.Close()
		s.wg.Wait()
	})
	return s
}

// send writes n random bytes on a new connection through p, then closes
// its write side; it returns at once.
func send(t *testing.T, p *Proxy, n int) {
	t.Helper()
	c := dial(t, p)
	msg := make([]byte, n)
	rand.Read(msg)
	go func() {
		c.Write(msg)
		c.(*net.TCPConn).CloseWrite()
	}()
}

// within fails the test unless lo ≤ d ≤ hi.
func within(t *testing.T, what string, d, lo, hi time.Duration) {
	t.Helper()
	if d < lo || d > hi {
		t.Errorf("%s took %v, want %v to %v", what, d, lo, hi)
	}
}

// One connection at a rate: 2 MiB at 2 MiB/s take a second.
func TestShapeRate(t *testing.T) {
	s := newSink(t)
	p := newProxy(t, s.ln.Addr().String())
	p.Shape(2<<20, 0)
	start := time.Now()
	send(t, p, 2<<20)
	e := <-s.ends
	if e.n != 2<<20 {
		t.Fatalf("the target got %d bytes, want %d", e.n, 2<<20)
	}
	within(t, "2 MiB at 2 MiB/s", e.last.Sub(start), 950*time.Millisecond, 1600*time.Millisecond)
}

// The rate is the link's, shared by every connection in that direction:
// two connections of 1 MiB at 2 MiB/s end after a second, not half.
func TestShapeShared(t *testing.T) {
	s := newSink(t)
	p := newProxy(t, s.ln.Addr().String())
	p.Shape(2<<20, 0)
	start := time.Now()
	send(t, p, 1<<20)
	send(t, p, 1<<20)
	e1, e2 := <-s.ends, <-s.ends
	if e1.n != 1<<20 || e2.n != 1<<20 {
		t.Fatalf("the target got %d and %d bytes, want %d each", e1.n, e2.n, 1<<20)
	}
	last := e1.last
	if e2.last.After(last) {
		last = e2.last
	}
	within(t, "2 × 1 MiB at 2 MiB/s", last.Sub(start), 950*time.Millisecond, 1600*time.Millisecond)
}

// Each direction is a link of its own: an echo of 2 MiB at 2 MiB/s each
// way takes about a second (the two directions overlap), not two.
func TestShapeDirections(t *testing.T) {
	e := newEcho(t)
	p := newProxy(t, e.ln.Addr().String())
	p.Shape(2<<20, 0)
	c := dial(t, p)
	msg := make([]byte, 2<<20)
	rand.Read(msg)
	start := time.Now()
	go func() {
		c.Write(msg)
		c.(*net.TCPConn).CloseWrite()
	}()
	got, err := io.ReadAll(c)
	if err != nil || !bytes.Equal(got, msg) {
		t.Fatalf("echo: %d bytes, %v; want the %d sent", len(got), err, len(msg))
	}
	within(t, "an echo of 2 MiB at 2 MiB/s each way", time.Since(start), 950*time.Millisecond, 1700*time.Millisecond)
	if up, down := p.BytesUp(), p.BytesDown(); up != int64(len(msg)) || down != int64(len(msg)) {
		t.Errorf("BytesUp %d, BytesDown %d; want %d each", up, down, len(msg))
	}
}

// A delay is latency: a small message's round trip takes twice the
// one-way delay, and a bulk transfer keeps the rate with data in flight,
// taking the transfer time plus the delay, not a delay per write.
func TestShapeDelay(t *testing.T) {
	e := newEcho(t)
	p := newProxy(t, e.ln.Addr().String())
	const delay = 40 * time.Millisecond
	p.Shape(0, delay)
	c := dial(t, p)
	fastest := time.Hour // the least delayed by a busy machine
	for range 5 {
		start := time.Now()
		roundTrip(t, c, "ping")
		d := time.Since(start)
		if d < 2*delay {
			t.Errorf("a round trip at 40 ms each way took %v", d)
		}
		fastest = min(fastest, d)
	}
	within(t, "the fastest of 5 round trips at 40 ms each way", fastest, 2*delay, 2*delay+30*time.Millisecond)

	p.Shape(8<<20, delay)
	msg := make([]byte, 4<<20)
	rand.Read(msg)
	start := time.Now()
	go c.Write(msg)
	got := make([]byte, len(msg))
	if _, err := io.ReadFull(c, got); err != nil || !bytes.Equal(got, msg) {
		t.Fatalf("echo of 4 MiB: %v, equal %v", err, bytes.Equal(got, msg))
	}
	// 0.5 s on the wire each way, overlapped, plus the delay each way,
	// less what each direction may send at once after being idle (slack)
	within(t, "an echo of 4 MiB at 8 MiB/s and 40 ms each way", time.Since(start), 500*time.Millisecond+2*delay-2*slack, 1000*time.Millisecond)
}

// Shape applies to connections already open: a transfer that slows down
// midway sends the rest at the new rate.
func TestShapeChange(t *testing.T) {
	s := newSink(t)
	p := newProxy(t, s.ln.Addr().String())
	p.Shape(16<<20, 0)
	const total = 2 << 20
	send(t, p, total)
	eventually(func() bool { return s.got.Load() >= 512<<10 })
	p.Shape(1<<20, 0)
	slow := time.Now()
	rest := total - p.BytesUp() // what the new rate carries, within a read
	e := <-s.ends
	if e.n != total {
		t.Fatalf("the target got %d bytes, want %d", e.n, total)
	}
	want := time.Duration(rest) * time.Second / (1 << 20)
	within(t, "the rest at 1 MiB/s", e.last.Sub(slow), want-want/20-20*time.Millisecond, want*3/2)

	// and faster again: no limit
	p.Shape(0, 0)
	start := time.Now()
	send(t, p, 4<<20)
	<-s.ends
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("4 MiB with no limit took %v", d)
	}
}

// Cut, Blackhole and Heal work on a shaped link, with data in flight.
func TestShapeFaults(t *testing.T) {
	e := newEcho(t)
	p := newProxy(t, e.ln.Addr().String())
	p.Shape(1<<20, 20*time.Millisecond)
	old := dial(t, p)
	roundTrip(t, old, "hello")

	p.Blackhole()
	if _, err := old.Write([]byte("held")); err != nil {
		t.Fatal(err)
	}
	fresh := dial(t, p)
	if _, err := fresh.Write([]byte("new")); err != nil {
		t.Fatal(err)
	}
	eventually(func() bool { return p.held.Load() == 2 })
	if up, down := p.BytesUp(), p.BytesDown(); up != 5 || down != 5 {
		t.Errorf("during the blackhole: BytesUp %d, BytesDown %d; want 5 each", up, down)
	}
	p.Heal()
	expect(t, old, "held")
	expect(t, fresh, "new")

	// a cut with a megabyte in flight both ways: both ends see it
	go old.Write(make([]byte, 1<<20))
	eventually(func() bool { return p.BytesDown() > 64<<10 })
	p.Cut()
	if _, err := io.ReadAll(old); err == nil {
		t.Error("read to the end of a cut connection: no error")
	}
	p.Heal()
	roundTrip(t, dial(t, p), "again")
}

// Close returns with data in flight and a target that does not read.
func TestShapeClose(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		c, err := ln.Accept()
		if err == nil {
			accepted <- c
		}
	}()
	p, err := New(ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	p.Shape(256<<10, 200*time.Millisecond)
	c := dial(t, p)
	go c.Write(make([]byte, 8<<20))
	idle := <-accepted // it never reads
	defer idle.Close()
	eventually(func() bool { return p.BytesUp() > 0 })
	if err := p.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
}
