package transfer

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/syncd/syncd/chunkstore"
	"github.com/syncd/syncd/config"
	"github.com/syncd/syncd/indexer"
	"github.com/syncd/syncd/internal/clock"
	"github.com/syncd/syncd/internal/clock/clocktest"
	"github.com/syncd/syncd/internal/freeport"
	"github.com/syncd/syncd/localfolder"
	"github.com/syncd/syncd/state"
	"github.com/syncd/syncd/transfer/tlsid"
)

// testNode is one node of an in-process mesh: a folder, its index, an
// indexer run by hand (index) and the transfer service.
type testNode struct {
	name string
	dir  string
	id   *tlsid.Identity
	db   *state.DB
	f    *Folder
	ix   *indexer.Indexer
	cfg  *config.Config
	node *Node
	log  *logBuffer
	clk  clock.Clock // the service's; nil: the system's (see onFakeClock)
	tune func(*Node) // if set, called on the service before it runs
}

// logBuffer collects log lines for assertions; safe for concurrent use.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

// len returns how many bytes were logged so far, a mark for since.
func (l *logBuffer) len() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Len()
}

// since returns what was logged after mark, a value of len.
func (l *logBuffer) since(mark int) string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return string(l.buf.Bytes()[mark:])
}

// freeAddr returns an address for a node to listen on: a port below the
// ephemeral range, which no outgoing connection of the run can take
// before the node binds it (see freeport.Addr).
func freeAddr(t *testing.T) string {
	t.Helper()
	addr, err := freeport.Addr()
	if err != nil {
		t.Fatal(err)
	}
	return addr
}

// newTestNode makes a node named name with an empty folder.
func newTestNode(t *testing.T, name string, mode config.Mode) *testNode {
	t.Helper()
	base := t.TempDir()
	n := &testNode{name: name, dir: filepath.Join(base, "www"), log: &logBuffer{}}
	if err := os.Mkdir(n.dir, 0o755); err != nil {
		t.Fatal(err)
	}
	var err error
	if n.id, err = tlsid.LoadOrCreate(filepath.Join(base, "state")); err != nil {
		t.Fatal(err)
	}
	if n.db, err = state.Open(filepath.Join(base, "state", "state.db")); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.db.Close() })
	n.db.SetLocalNode(n.id.ID.Uint64())
	n.cfg = &config.Config{Node: config.Node{Name: name, StateDir: filepath.Join(base, "state"), Listen: freeAddr(t)},
		Folders: []config.Folder{{ID: "www", Path: n.dir, Mode: mode}}}
	st := n.db.Folder("www")
	ch := chunkstore.MirrorChunking()
	lf := localfolder.New(n.dir, st, nil)
	n.f = &Folder{Config: n.cfg.Folders[0], Local: lf, Chunking: ch}
	n.ix = indexer.New(indexer.Folder{ID: "www", Root: n.dir}, lf, ch.NewSplitter(), nil)
	return n
}

// connect makes a and b peers of each other for the folder.
func connect(a, b *testNode) {
	a.cfg.Peers = append(a.cfg.Peers, config.Peer{Name: b.name, ID: b.id.ID.String(), Address: b.cfg.Node.Listen})
	b.cfg.Peers = append(b.cfg.Peers, config.Peer{Name: a.name, ID: a.id.ID.String(), Address: a.cfg.Node.Listen})
	a.cfg.Folders[0].Peers = append(a.cfg.Folders[0].Peers, b.name)
	b.cfg.Folders[0].Peers = append(b.cfg.Folders[0].Peers, a.name)
}

// start runs the node's transfer service until the test ends.
func (n *testNode) start(t *testing.T) {
	t.Helper()
	n.f.Config = n.cfg.Folders[0]
	var err error
	log := slog.New(slog.NewTextHandler(n.log, &slog.HandlerOptions{Level: slog.LevelDebug}))
	if n.node, err = New(n.cfg, n.id, n.db, []*Folder{n.f}, Options{Logger: log, Clock: n.clk}); err != nil {
		t.Fatal(err)
	}
	if n.tune != nil {
		n.tune(n.node)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- n.node.Run(ctx) }()
	if len(n.cfg.Peers) > 0 {
		eventually(t, n.name+" listening", func() bool {
			c, err := net.Dial("tcp", n.cfg.Node.Listen)
			if err == nil {
				c.Close()
			}
			return err == nil
		})
	}
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("%s: Run: %v", n.name, err)
		}
		n.node.Close()
	})
}

// index runs the indexer over the whole folder under the folder's lock,
// as the daemon does after a change, and tells the service.
func (n *testNode) index(t *testing.T) {
	t.Helper()
	n.f.Local.Lock()
	err := n.ix.Apply(context.Background(), nil, true)
	n.f.Local.Unlock()
	if err != nil {
		t.Fatal(err)
	}
	n.f.Local.Notify()
}

func (n *testNode) write(t *testing.T, rel, content string) {
	t.Helper()
	p := filepath.Join(n.dir, rel)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

// tree returns a listing of dir: path, type, mode, size, content.
func tree(t *testing.T, dir string) map[string]string {
	t.Helper()
	out := map[string]string{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if errors.Is(err, fs.ErrNotExist) {
			return nil // renamed or removed while we looked: the next look sees it
		}
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		if rel == "." {
			return nil
		}
		fi, err := d.Info()
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		if err != nil {
			return err
		}
		desc := fi.Mode().String()
		switch {
		case fi.Mode()&fs.ModeSymlink != 0:
			target, _ := os.Readlink(p)
			desc += " -> " + target
		case fi.Mode().IsRegular():
			b, err := os.ReadFile(p)
			if errors.Is(err, fs.ErrNotExist) {
				return nil
			}
			if err != nil {
				return err
			}
			desc += fmt.Sprintf(" %s %d %x", fi.ModTime().UTC(), len(b), sha256.Sum256(b))
		}
		out[rel] = desc
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// eventually polls cond until it holds or the deadline passes.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	if !poll(cond) {
		t.Fatalf("timed out waiting for %s", what)
	}
}

// onFakeClock puts nodes, not started yet, on one new fake clock, which
// it returns: their backoffs, retries, long polls and reminders wait
// until the test moves it (see drive).
func onFakeClock(nodes ...*testNode) *clocktest.Fake {
	clk := clocktest.New(time.Date(2026, 12, 2, 15, 0, 0, 0, time.UTC))
	for _, n := range nodes {
		n.clk = clk
	}
	return clk
}

// drive is eventually for nodes on the fake clock clk: each time cond
// does not hold yet, it moves clk to its next timer, so that what the
// nodes wait for (a backoff, a retry, the end of a long poll) comes at
// once. It returns how far it moved clk: how long the nodes would have
// taken on the system's clock, their work aside.
func drive(t *testing.T, clk *clocktest.Fake, what string, cond func() bool) time.Duration {
	t.Helper()
	start := clk.Now()
	eventually(t, what, func() bool {
		if cond() {
			return true
		}
		clk.Skip()
		return false
	})
	return clk.Now().Sub(start)
}

// poll checks cond every 20 ms for up to 30 s and reports whether it held.
func poll(cond func() bool) bool {
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	deadline := time.After(30 * time.Second)
	for !cond() {
		select {
		case <-deadline:
			return cond()
		case <-tick.C:
		}
	}
	return true
}

func sameTrees(t *testing.T, a, b *testNode) bool { return sameTreesBut(t, a, b, "") }

func diffTrees(t *testing.T, a, b *testNode) string {
	ta, tb := tree(t, a.dir), tree(t, b.dir)
	var d []string
	for k, v := range ta {
		if tb[k] != v {
			d = append(d, "- "+k+": "+v+"\n+ "+k+": "+tb[k])
		}
	}
	for k, v := range tb {
		if _, ok := ta[k]; !ok {
			d = append(d, "+ "+k+": "+v)
		}
	}
	return strings.Join(d, "\n")
}
