package transfer

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"sync"
	"testing"

	"github.com/syncd/syncd/config"
)

// pipeNet is an in-memory network: each listener has an address, and a
// dial to it hands the listener one end of a net.Pipe.
type pipeNet struct {
	mu sync.Mutex
	ln map[string]*pipeListener
}

type pipeListener struct {
	addr  string
	conns chan net.Conn
	done  chan struct{}
	once  sync.Once
}

type pipeAddr string

func (a pipeAddr) Network() string { return "pipe" }
func (a pipeAddr) String() string  { return string(a) }

func (n *pipeNet) listen(addr string) *pipeListener {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.ln == nil {
		n.ln = map[string]*pipeListener{}
	}
	l := &pipeListener{addr: addr, conns: make(chan net.Conn), done: make(chan struct{})}
	n.ln[addr] = l
	return l
}

func (n *pipeNet) dial(ctx context.Context, addr string) (net.Conn, error) {
	n.mu.Lock()
	l := n.ln[addr]
	n.mu.Unlock()
	if l == nil {
		return nil, errors.New("connection refused")
	}
	c, s := net.Pipe()
	select {
	case l.conns <- s:
		return c, nil
	case <-l.done:
		return nil, errors.New("connection refused")
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

func (l *pipeListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.conns:
		return c, nil
	case <-l.done:
		return nil, net.ErrClosed
	}
}

func (l *pipeListener) Close() error   { l.once.Do(func() { close(l.done) }); return nil }
func (l *pipeListener) Addr() net.Addr { return pipeAddr(l.addr) }

// The peer protocol runs over any listener and dialer (Node.Serve,
// Node.Dial): two nodes on in-memory pipes, no TCP, mirror both ways.
func TestServeOverPipes(t *testing.T) {
	var pn pipeNet
	a := newTestNode(t, "a", config.SendReceive)
	b := newTestNode(t, "b", config.SendReceive)
	connect(a, b)
	for _, n := range []*testNode{a, b} {
		n.f.Config = n.cfg.Folders[0]
		node, err := New(n.cfg, n.id, n.db, []*Folder{n.f}, Options{Logger: slog.New(slog.NewTextHandler(n.log, &slog.HandlerOptions{Level: slog.LevelDebug}))})
		if err != nil {
			t.Fatal(err)
		}
		n.node = node
		node.Dial = pn.dial
		ln := pn.listen(n.cfg.Node.Listen)
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- node.Serve(ctx, ln) }()
		t.Cleanup(func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("%s: Serve: %v", n.name, err)
			}
			node.Close()
		})
	}
	a.write(t, "index.php", "<?php echo 'a';")
	a.write(t, "css/site.css", "body{}")
	a.index(t)
	b.write(t, "uploads/b.txt", "from b")
	b.index(t)
	converge(t, a, b)
	eventually(t, "a and b settled", func() bool { return settled(a, b) })
}
