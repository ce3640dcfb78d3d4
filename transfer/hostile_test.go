package transfer

import (
	"bytes"
	"crypto/tls"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/klauspost/compress/zstd"

	"github.com/syncd/syncd/chunkstore"
	"github.com/syncd/syncd/config"
	"github.com/syncd/syncd/crypto"
	"github.com/syncd/syncd/state"
	"github.com/syncd/syncd/transfer/tlsid"
	"github.com/syncd/syncd/transfer/wire"
)

// rogue is a peer that answers with whatever the test wants: a valid
// certificate, hostile messages.
type rogue struct {
	node  *testNode // its identity and config
	index atomic.Value
	hits  atomic.Int64
	// framed, if set, answers block requests (framed responses: its hello
	// says so) with what it returns for the request's compress= value
	framed func(q wire.BlockRequest, compress string) []byte
}

// serve starts the rogue's server; index returns the body of each index
// response.
func (r *rogue) serve(t *testing.T, victim *testNode, index func() []byte) {
	t.Helper()
	r.index.Store(index)
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/hello", func(w http.ResponseWriter, req *http.Request) {
		fp := chunkstore.MirrorChunking().Fingerprint()
		h := wire.Hello{Protocol: wire.Protocol, Node: "evil",
			Folders: []wire.HelloFolder{{ID: "www", Chunking: fp.String()}}}
		if r.framed != nil {
			h.Features = []string{wire.FeatureFrames}
		}
		json.NewEncoder(w).Encode(h)
	})
	mux.HandleFunc("GET /v1/index", func(w http.ResponseWriter, req *http.Request) {
		r.hits.Add(1)
		w.Write(r.index.Load().(func() []byte)())
	})
	mux.HandleFunc("POST /v1/blocks", func(w http.ResponseWriter, req *http.Request) {
		q, err := wire.DecodeBlockRequest(mustRead(req.Body))
		if err != nil {
			http.Error(w, err.Error(), 400)
			return
		}
		if r.framed != nil {
			w.Write(r.framed(q, req.URL.Query().Get("compress")))
			return
		}
		bw, _ := wire.NewBlockWriter(w)
		for _, f := range q.Files {
			for _, b := range f.Blocks {
				bw.Write(bytes.Repeat([]byte("x"), int(b.Length)))
			}
		}
		bw.Close()
	})
	ln, err := net.Listen("tcp", r.node.cfg.Node.Listen)
	if err != nil {
		t.Fatal(err)
	}
	var p http.Protocols
	p.SetHTTP2(true)
	srv := &http.Server{Handler: mux, Protocols: &p,
		TLSConfig: tlsid.ServerConfig(r.node.id, func(tlsid.NodeID) (string, bool) { return "victim", true }, nil)}
	go srv.Serve(tls.NewListener(ln, srv.TLSConfig))
	t.Cleanup(func() { srv.Close() })
}

func zstdOf(b []byte) []byte {
	enc, _ := zstd.NewWriter(nil)
	return enc.EncodeAll(b, nil)
}

func mustRead(r io.Reader) []byte {
	b, _ := io.ReadAll(r)
	return b
}

// indexBody encodes entries as an index response, without the checks a
// real sender makes.
func indexBody(es ...wire.Entry) []byte {
	var buf bytes.Buffer
	iw, _ := wire.NewIndexWriter(&buf)
	for i := range es {
		es[i].Seq = uint64(i + 1)
		iw.Write(&es[i])
	}
	iw.Close(uint64(len(es)), false)
	return buf.Bytes()
}

var vec = state.Vector{{Node: 99, Value: 1}}

func fileOf(path, content string) wire.Entry {
	h := crypto.NewHasher(chunkstore.MirrorChunking().Key)
	e := wire.Entry{Path: path, Type: "file", Mode: 0o644, Size: int64(len(content)), Vector: vec}
	if content != "" {
		e.Content = []chunkstore.ID{chunkstore.MirrorChunking().ID(h, []byte(content))}
		e.Lengths = []uint32{uint32(len(content))}
	}
	return e
}

// Hostile messages from a peer with a valid certificate are rejected and
// logged; nothing is written outside the folder or through a symlink;
// the service stays up and still applies good entries.
func TestHostilePeer(t *testing.T) {
	outside := t.TempDir()
	victim := newTestNode(t, "victim", config.SendReceive)
	evil := &rogue{node: newTestNode(t, "evil", config.SendReceive)}
	connect(victim, evil.node)
	clk := onFakeClock(victim) // its reconnects and retries come as the test moves it

	// Each case names what only it makes happen: a line in the log written
	// after it started (the log before holds the earlier cases' lines), or
	// a state of the folder.
	linkMade := func() bool {
		target, err := os.Readlink(filepath.Join(victim.dir, "ln"))
		return err == nil && target == outside
	}
	linkOnly := func() bool {
		m, _ := filepath.Glob(filepath.Join(outside, "*"))
		return linkMade() && len(m) == 0
	}
	cases := []struct {
		name  string
		body  func() []byte
		log   string      // a line logged while the case runs
		check func() bool // and what the folder holds then
	}{
		{"dotdot", func() []byte { return indexBody(fileOf("../../etc/x", "xxxx")) },
			`msg="peer session ended" peer=evil folder=www err="index: path \"../../etc/x\": name \"..\" not allowed"`, nil},
		{"absolute", func() []byte { return indexBody(fileOf("/etc/x", "xxxx")) },
			`msg="peer session ended" peer=evil folder=www err="index: path \"/etc/x\": name \"\" not allowed"`, nil},
		{"garbage", func() []byte { return []byte("this is not zstd at all") },
			`msg="peer session ended" peer=evil folder=www err="index: not an index response: `, nil},
		{"oversized record", func() []byte {
			// a first record that claims 1 GiB
			return zstdOf(append([]byte("SYNCDIX1"), 0x80, 0x80, 0x80, 0x80, 0x04))
		}, `msg="peer session ended" peer=evil folder=www err="index: record of 1073741824 bytes"`, nil},
		{"symlink out", func() []byte {
			return indexBody(wire.Entry{Path: "ln", Type: "symlink", Target: outside, Vector: vec})
		}, "", linkMade}, // a link may point anywhere: it is only a link
		// refused twice over: os.Root does not open the link as a
		// directory, and checkParents finds no directory there
		{"write through the link", func() []byte {
			return indexBody(
				wire.Entry{Path: "ln", Type: "symlink", Target: outside, Vector: vec},
				fileOf("ln/pwned", "xxxx"))
		}, `msg="could not apply peer's version; will retry" peer=evil folder=www path=ln/pwned err=`, linkOnly},
		{"wrong content", func() []byte { return indexBody(fileOf("bad-content", "yyyy")) },
			`path=bad-content err="fetch bad-content: block at 0 does not match its ID`, nil},
	}
	evil.serve(t, victim, cases[0].body)
	victim.start(t)
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			mark := victim.log.len()
			defer func() {
				if t.Failed() {
					t.Logf("logged since the case started:\n%s", victim.log.since(mark))
				}
			}()
			evil.index.Store(tc.body)
			if tc.log != "" {
				drive(t, clk, "the log line "+tc.log, func() bool { return strings.Contains(victim.log.since(mark), tc.log) })
			}
			if tc.check != nil {
				drive(t, clk, "the folder's state", tc.check)
			}
		})
	}
	// still up: a good entry is applied
	evil.index.Store(func() []byte { return indexBody(fileOf("good", "xxxx")) })
	drive(t, clk, "a good entry applied", func() bool {
		b, err := os.ReadFile(filepath.Join(victim.dir, "good"))
		return err == nil && string(b) == "xxxx"
	})
	if m, _ := filepath.Glob(filepath.Join(outside, "*")); len(m) > 0 {
		t.Errorf("written outside the folder: %v", m)
	}
	if _, err := os.Stat("/etc/x"); err == nil {
		t.Error("/etc/x exists")
	}
	for rel, desc := range tree(t, victim.dir) {
		if strings.Contains(rel, "pwned") || strings.Contains(rel, "bad-content") || strings.HasPrefix(filepath.Base(rel), ".syncd-") {
			t.Errorf("left behind: %s %s", rel, desc)
		}
	}
}

// Hostile requests to the server: paths out of the folder, links, folders
// not shared, oversized bodies.
func TestHostileRequests(t *testing.T) {
	a := newTestNode(t, "a", config.SendReceive)
	b := newTestNode(t, "b", config.SendReceive)
	connect(a, b)
	secret := filepath.Join(t.TempDir(), "secret")
	os.WriteFile(secret, []byte("secret"), 0o600)
	os.Symlink(secret, filepath.Join(a.dir, "ln"))
	a.write(t, "ok", "fine")
	a.index(t)
	a.start(t)
	c := newClient(b.id, a.id.ID, a.cfg.Node.Listen, limiters{}, limiters{}, nil)
	defer c.close()
	ctx := t.Context()
	blocks := func(folder, path string) (string, error) {
		q := wire.BlockRequest{Files: []wire.FileBlocks{{Path: path, Blocks: []wire.Block{{Length: 4}}}}}
		var got []byte
		var okAll = true
		err := c.blocks(ctx, folder, &q, func(i, j int, data []byte, ok bool) error {
			got = append(got, data...)
			okAll = okAll && ok
			return nil
		})
		if !okAll {
			return "unavailable", err
		}
		return string(got), err
	}
	if got, err := blocks("www", "ok"); got != "fine" || err != nil {
		t.Fatalf("a good request: %q %v", got, err)
	}
	if got, err := blocks("www", "ln"); got != "unavailable" || err != nil {
		t.Errorf("a symlink out of the folder served: %q %v", got, err)
	}
	if _, err := blocks("other", "ok"); err == nil || !strings.Contains(err.Error(), "not shared") {
		t.Errorf("a folder not shared: %v", err)
	}
	raw := func(body []byte) string {
		resp, err := c.do(ctx, c.hc, http.MethodPost, "/v1/blocks", map[string][]string{"folder": {"www"}}, body)
		if err != nil {
			return err.Error()
		}
		resp.Body.Close()
		return "accepted"
	}
	bad := wire.BlockRequest{Files: []wire.FileBlocks{{Path: "../../etc/passwd", Blocks: []wire.Block{{Length: 4}}}}}
	if got := raw(bad.Append(nil)); !strings.Contains(got, "400") {
		t.Errorf("../../etc/passwd: %s", got)
	}
	if got := raw([]byte("garbage")); !strings.Contains(got, "400") {
		t.Errorf("garbage: %s", got)
	}
	if got := raw(make([]byte, maxRequest+10)); !strings.Contains(got, "413") {
		t.Errorf("oversized: %s", got)
	}
	if !strings.Contains(a.log.String(), "peer request refused") {
		t.Errorf("refusals not logged:\n%s", a.log)
	}
}
