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

// echo is a TCP server that writes back what it reads, counting the
// connections it accepts.
type echo struct {
	ln       net.Listener
	accepted atomic.Int64
	wg       sync.WaitGroup
}

func newEcho(t *testing.T) *echo {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	e := &echo{ln: ln}
	e.wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			e.accepted.Add(1)
			e.wg.Go(func() {
				defer c.Close()
				io.Copy(c, c)
			})
		}
	})
	t.Cleanup(func() {
		ln.Close()
		e.wg.Wait()
	})
	return e
}

func newProxy(t *testing.T, target string) *Proxy {
	t.Helper()
	p, err := New(target)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	return p
}

func dial(t *testing.T, p *Proxy) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", p.Addr())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// roundTrip writes msg on c and reads it back.
func roundTrip(t *testing.T, c net.Conn, msg string) {
	t.Helper()
	if _, err := c.Write([]byte(msg)); err != nil {
		t.Fatalf("write: %v", err)
	}
	expect(t, c, msg)
}

func expect(t *testing.T, c net.Conn, msg string) {
	t.Helper()
	got := make([]byte, len(msg))
	if _, err := io.ReadFull(c, got); err != nil || string(got) != msg {
		t.Fatalf("read %q, %v; want %q", got, err, msg)
	}
}

// eventually waits until cond holds, looking every millisecond. It
// asserts nothing about time: a condition that never holds ends in the
// test binary's timeout.
func eventually(cond func() bool) {
	tick := time.NewTicker(time.Millisecond)
	defer tick.Stop()
	for !cond() {
		<-tick.C
	}
}

func TestForward(t *testing.T) {
	e := newEcho(t)
	p := newProxy(t, e.ln.Addr().String())
	c := dial(t, p)
	msg := make([]byte, 1<<20)
	rand.Read(msg)
	go func() {
		c.Write(msg)
		c.(*net.TCPConn).CloseWrite()
	}()
	got, err := io.ReadAll(c) // to EOF: the half close went through
	if err != nil || !bytes.Equal(got, msg) {
		t.Fatalf("echo through the proxy: %d bytes, %v; want the %d sent", len(got), err, len(msg))
	}
	if up, down := p.BytesUp(), p.BytesDown(); up != int64(len(msg)) || down != int64(len(msg)) {
		t.Errorf("BytesUp %d, BytesDown %d; want %d each", up, down, len(msg))
	}
}

func TestCut(t *testing.T) {
	e := newEcho(t)
	p := newProxy(t, e.ln.Addr().String())
	before := dial(t, p)
	roundTrip(t, before, "hello")

	p.Cut()
	if n, err := before.Read(make([]byte, 1)); err == nil {
		t.Errorf("read on a cut connection: %d bytes, no error", n)
	}
	// The kernel accepts a new connection, the proxy resets it: the dial
	// itself or the first read fails.
	if during, err := net.Dial("tcp", p.Addr()); err == nil {
		if n, err := during.Read(make([]byte, 1)); err == nil {
			t.Errorf("read on a connection made during a cut: %d bytes, no error", n)
		}
		during.Close()
	}
	if n := e.accepted.Load(); n != 1 {
		t.Errorf("the target accepted %d connections, want 1: none during the cut", n)
	}
	if up, down := p.BytesUp(), p.BytesDown(); up != 5 || down != 5 {
		t.Errorf("BytesUp %d, BytesDown %d; want 5 each", up, down)
	}

	p.Heal()
	roundTrip(t, dial(t, p), "again")
	if n := e.accepted.Load(); n != 2 {
		t.Errorf("the target accepted %d connections, want 2", n)
	}
}

func TestBlackhole(t *testing.T) {
	e := newEcho(t)
	p := newProxy(t, e.ln.Addr().String())
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
	// The old connection's data and the new connection are both held.
	eventually(func() bool { return p.held.Load() == 2 })
	if up, down := p.BytesUp(), p.BytesDown(); up != 5 || down != 5 {
		t.Errorf("during the blackhole: BytesUp %d, BytesDown %d; want 5 each (nothing forwarded)", up, down)
	}
	if n := e.accepted.Load(); n != 1 {
		t.Errorf("during the blackhole the target accepted %d connections, want 1", n)
	}

	p.Heal()
	expect(t, old, "held")
	expect(t, fresh, "new")
	if n := e.accepted.Load(); n != 2 {
		t.Errorf("after healing the target accepted %d connections, want 2", n)
	}
	if up, down := p.BytesUp(), p.BytesDown(); up != 12 || down != 12 {
		t.Errorf("after healing: BytesUp %d, BytesDown %d; want 12 each", up, down)
	}
}

// A proxy armed with AtDown to blackhole stalls the stream itself at the
// count it was given, however fast the stream runs, and Heal lets the
// rest through.
func TestBlackholeAtDown(t *testing.T) {
	e := newEcho(t)
	p := newProxy(t, e.ln.Addr().String())
	c := dial(t, p)
	const at = 256 << 10
	p.AtDown(at, p.Blackhole)
	msg := make([]byte, 4<<20)
	rand.Read(msg)
	go c.Write(msg)
	got := make(chan []byte)
	go func() {
		b := make([]byte, len(msg))
		io.ReadFull(c, b)
		got <- b
	}()
	eventually(func() bool { return p.atDown.Load() == nil && p.held.Load() > 0 })
	// One connection: the delivery that tripped is the one held, so the
	// count is final until Heal.
	if down := p.BytesDown(); down < at || down > at+chunkMax {
		t.Errorf("BytesDown at the blackhole: %d, want %d to %d", down, at, at+chunkMax)
	}
	p.Heal()
	if b := <-got; !bytes.Equal(b, msg) {
		t.Error("after healing the echo is not what was sent")
	}
	if down := p.BytesDown(); down != int64(len(msg)) {
		t.Errorf("BytesDown after healing: %d, want %d", down, len(msg))
	}
}

func TestCutEndsBlackhole(t *testing.T) {
	e := newEcho(t)
	p := newProxy(t, e.ln.Addr().String())
	p.Blackhole()
	held := dial(t, p)
	eventually(func() bool { return p.held.Load() == 1 })
	p.Cut()
	if n, err := held.Read(make([]byte, 1)); err == nil {
		t.Errorf("read on a held connection after a cut: %d bytes, no error", n)
	}
	eventually(func() bool { return p.held.Load() == 0 })
	p.Heal()
	roundTrip(t, dial(t, p), "ok")
}

func TestClose(t *testing.T) {
	e := newEcho(t)
	p, err := New(e.ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	live := dial(t, p)
	roundTrip(t, live, "hi")
	p.Blackhole()
	held := dial(t, p)
	eventually(func() bool { return p.held.Load() == 1 })

	if err := p.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	for name, c := range map[string]net.Conn{"live": live, "held": held} {
		if n, err := c.Read(make([]byte, 1)); err == nil {
			t.Errorf("%s connection after Close: read %d bytes, no error", name, n)
		}
	}
	if c, err := net.Dial("tcp", p.Addr()); err == nil {
		c.Close()
		t.Error("the proxy accepted a connection after Close")
	}
	if err := p.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	p.Cut()
	p.Blackhole()
	p.Heal()
}

// TestConcurrent runs clients through the proxy while the network fails
// and heals under them, plain and shaped (the shape changing too); run it
// with -race. Every client ends, and the healed proxy forwards.
func TestConcurrent(t *testing.T) {
	for _, shaped := range []bool{false, true} {
		t.Run(map[bool]string{false: "plain", true: "shaped"}[shaped], func(t *testing.T) {
			e := newEcho(t)
			p := newProxy(t, e.ln.Addr().String())
			if shaped {
				p.Shape(4<<20, time.Millisecond)
			}
			var clients sync.WaitGroup
			for range 8 {
				clients.Go(func() {
					msg := make([]byte, 4<<10)
					for range 20 {
						c, err := net.Dial("tcp", p.Addr())
						if err != nil {
							continue
						}
						if _, err := c.Write(msg); err == nil {
							io.ReadFull(c, make([]byte, len(msg)))
						}
						c.Close()
					}
				})
			}
			for i := range 60 {
				switch i % 3 {
				case 0:
					p.Blackhole()
				case 1:
					p.Cut()
				case 2:
					p.Heal()
				}
				if shaped {
					p.Shape(int64(1+i%4)<<20, time.Duration(i%3)*time.Millisecond)
				}
				_ = p.BytesUp() + p.BytesDown()
			}
			p.Heal()
			clients.Wait()
			roundTrip(t, dial(t, p), "still forwarding")
		})
	}
}
