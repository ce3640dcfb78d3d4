package transfer

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"runtime"
	"strconv"
	"syscall"
	"time"

	"github.com/syncd/syncd/config"
	"github.com/syncd/syncd/crypto"
	"github.com/syncd/syncd/state"
	"github.com/syncd/syncd/transfer/tlsid"
	"github.com/syncd/syncd/transfer/wire"
)

// maxWait bounds a long poll; maxRequest the body of a block request.
const (
	maxWait    = 60 * time.Second
	maxRequest = 8 << 20
)

// Handler returns the HTTP handler of the peer protocol. It expects
// requests over the TLS configuration of [tlsid.ServerConfig], which lets
// in configured peers only.
func (n *Node) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/hello", n.serveHello)
	mux.HandleFunc("GET /v1/index", n.serveIndex)
	mux.HandleFunc("POST /v1/blocks", n.serveBlocks)
	mux.HandleFunc("GET /v1/ping", n.servePing)
	return mux
}

// peerName returns the configured name of the requesting peer.
func (n *Node) peerName(r *http.Request) (string, error) {
	if r.TLS == nil {
		return "", errors.New("not over TLS")
	}
	id, err := tlsid.PeerID(*r.TLS)
	if err != nil {
		return "", err
	}
	name, ok := n.allowed(id)
	if !ok {
		return "", fmt.Errorf("unknown node ID %s", id)
	}
	return name, nil
}

// folderFor returns the folder a request names, if it is shared with the
// requesting peer.
func (n *Node) folderFor(w http.ResponseWriter, r *http.Request) (*Folder, string, bool) {
	peer, err := n.peerName(r)
	if err != nil {
		n.refuse(w, r, http.StatusForbidden, err)
		return nil, "", false
	}
	id := r.URL.Query().Get("folder")
	f, ok := n.folders[id]
	if !ok || !sharedWith(f, peer) {
		n.refuse(w, r, http.StatusNotFound, fmt.Errorf("folder %q is not shared with peer %s", id, peer))
		return nil, "", false
	}
	return f, peer, true
}

func sharedWith(f *Folder, peer string) bool {
	for _, p := range f.Config.Peers {
		if p == peer {
			return true
		}
	}
	return false
}

// refuse answers a bad request with a one-line reason and logs it.
func (n *Node) refuse(w http.ResponseWriter, r *http.Request, code int, err error) {
	n.log.Warn("peer request refused", "remote", r.RemoteAddr, "path", r.URL.Path, "err", err)
	http.Error(w, err.Error(), code)
}

func (n *Node) serveHello(w http.ResponseWriter, r *http.Request) {
	peer, err := n.peerName(r)
	if err != nil {
		n.refuse(w, r, http.StatusForbidden, err)
		return
	}
	h := wire.Hello{Protocol: wire.Protocol, Node: n.cfg.Node.Name, Folders: []wire.HelloFolder{},
		Features: n.features}
	for _, f := range n.order {
		if sharedWith(f, peer) {
			fp := f.Chunking.Fingerprint()
			h.Folders = append(h.Folders, wire.HelloFolder{ID: f.Config.ID, Mode: string(f.Config.Mode),
				Seq: f.Local.Index().Seq(), Chunking: fp.String(), Index: n.indexID})
		}
	}
	n.seen(peer)
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(h)
}

// serveIndex answers GET /v1/index?folder=F&since=N&wait=MS: the entries
// of F after sequence number N, at most wire.MaxBatch of them, waiting up
// to MS milliseconds for one if there is none.
func (n *Node) serveIndex(w http.ResponseWriter, r *http.Request) {
	f, peer, ok := n.folderFor(w, r)
	if !ok || !n.available(w, f) {
		return
	}
	q := r.URL.Query()
	since, err1 := strconv.ParseUint(q.Get("since"), 10, 64)
	waitMS, err2 := strconv.ParseInt(q.Get("wait"), 10, 64)
	if err1 != nil || err2 != nil || waitMS < 0 {
		n.refuse(w, r, http.StatusBadRequest, errors.New("index: bad since or wait"))
		return
	}
	n.acked(peer, f.Config.ID, since)
	if f.sends() && since > f.Local.Index().Seq() {
		since = 0 // our index is newer than the peer's cursor: it was rebuilt
	}
	wait := min(time.Duration(waitMS)*time.Millisecond, maxWait)
	ring := f.Local.Changed()
	seq := f.Local.Index().Seq()
	if !f.sends() {
		seq = since // a receive-only folder announces nothing of its own
	}
	if seq <= since && wait > 0 {
		t := n.clk.NewTimer(wait)
		select {
		case <-ring:
		case <-t.C():
		case <-r.Context().Done():
		}
		t.Stop()
		if f.sends() {
			seq = f.Local.Index().Seq()
		}
	}
	var batch []wire.Entry
	more := false
	errFull := errors.New("full")
	if f.sends() && seq > since {
		last := since
		err := f.Local.Index().Changed(since, func(rel string, e state.Entry) error {
			if e.Version <= last {
				return nil
			}
			if len(batch) == wire.MaxBatch {
				more = true
				return errFull
			}
			we := wire.FromState(rel, e)
			if err := we.Check(); err != nil {
				return nil // not announceable (not yet indexed, say): skipped
			}
			last = e.Version
			batch = append(batch, we)
			return nil
		})
		if err != nil && err != errFull {
			http.Error(w, "index: "+err.Error(), http.StatusInternalServerError)
			return
		}
		if more {
			seq = last
		}
	}
	w.Header().Set("Content-Type", "application/x-syncd-index")
	iw, err := wire.NewIndexWriter(w)
	if err == nil {
		for i := range batch {
			if err = iw.Write(&batch[i]); err != nil {
				break
			}
		}
	}
	if err == nil {
		err = iw.Close(seq, more)
	}
	if err != nil {
		n.log.Debug("index response cut", "peer", peer, "err", err)
	} else if c := n.pf[pfKey{peer, f.Config.ID}]; c != nil {
		c.sentFiles.Add(uint64(len(batch)))
	}
	n.seen(peer)
}

// serveBlocks answers POST /v1/blocks?folder=F with the blocks asked of
// files F's index lists as files; anything else is unavailable.
func (n *Node) serveBlocks(w http.ResponseWriter, r *http.Request) {
	f, peer, ok := n.folderFor(w, r)
	if !ok || !n.available(w, f) {
		return
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, maxRequest+1))
	if err != nil {
		return
	}
	if len(body) > maxRequest {
		n.refuse(w, r, http.StatusRequestEntityTooLarge, errors.New("blocks: request too large"))
		return
	}
	q, err := wire.DecodeBlockRequest(body)
	if err != nil {
		n.refuse(w, r, http.StatusBadRequest, err)
		return
	}
	mode := r.URL.Query().Get("compress")
	if mode != "" && mode != "raw" && mode != "zstd" {
		n.refuse(w, r, http.StatusBadRequest, fmt.Errorf("blocks: compress=%q: want raw or zstd", mode))
		return
	}
	sums := r.URL.Query().Get("sums")
	if sums != "" && (sums != "1" || mode == "") {
		n.refuse(w, r, http.StatusBadRequest, fmt.Errorf("blocks: sums=%q: want 1, in a framed request", sums))
		return
	}
	// Each response compresses on a core of its own: a node that many
	// peers pull from at once (a new fleet, a restore of one node) serves
	// a few at a time and the others wait, instead of taking every core
	// and a compressor's memory per request from the web server.
	select {
	case n.serving <- struct{}{}:
		defer func() { <-n.serving }()
	case <-r.Context().Done():
		return
	}
	if r.ProtoMajor == 1 {
		n.blocksHTTP1.Add(1)
	}
	w.Header().Set("Content-Type", "application/x-syncd-blocks")
	var bw interface{ Write([]byte) error }
	var end func() error
	if mode == "" {
		sw, err := wire.NewBlockWriter(w)
		if err != nil {
			return
		}
		bw, end = sw, sw.Close
	} else {
		// the receiver asks; this node's never for the peer is kept too
		fw, err := wire.NewFrameWriter(w, mode == "zstd" && n.compression(peer) != config.CompressNever)
		if err != nil {
			return
		}
		bw, end = frameWriter{fw}, fw.Close
	}
	bufs := blockBufs.Lease()
	defer bufs.Release()
	var sumBuf []byte
	var h *crypto.Hasher
	if sums != "" {
		h = crypto.NewHasher(f.Chunking.Key)
	}
	count := n.pf[pfKey{peer, f.Config.ID}]
	for _, fb := range q.Files {
		file := n.openServed(f, fb.Path)
		for _, b := range fb.Blocks {
			var data []byte
			if file != nil {
				data = bufs.Buf(int(b.Length))
				if _, err := file.ReadAt(data, b.Offset); err != nil {
					data = nil
				} else if h != nil {
					sumBuf = wire.SegmentSums(f.Chunking, h, b.Offset, data, sumBuf[:0])
					data = sumBuf
				} else {
					n.blocksServed.Add(int64(len(data)))
					if count != nil {
						count.sentBytes.Add(uint64(len(data)))
					}
				}
			}
			if err = bw.Write(data); err != nil {
				break
			}
		}
		if file != nil {
			file.Close()
		}
		if err != nil {
			n.log.Debug("block response cut", "peer", peer, "err", err)
			return
		}
	}
	end()
	n.seen(peer)
}

// frameWriter is a wire.FrameWriter as serveBlocks writes blocks.
type frameWriter struct{ *wire.FrameWriter }

func (fw frameWriter) Write(data []byte) error {
	_, err := fw.FrameWriter.Write(data)
	return err
}

// compression returns this node's compression setting for peer.
func (n *Node) compression(peer string) config.Compression {
	for _, p := range n.cfg.Peers {
		if p.Name == peer {
			return p.Compression
		}
	}
	return config.CompressAuto
}

// openServed opens rel for reading if the index lists it as a file and
// it is a regular file inside the folder; nil otherwise.
func (n *Node) openServed(f *Folder, rel string) *os.File {
	if !f.sends() {
		return nil
	}
	e, ok, err := f.Local.Index().Get(rel)
	if err != nil || !ok || e.Deleted || e.Type != "file" {
		return nil
	}
	file, err := f.root().OpenFile(rel, os.O_RDONLY|syscall.O_NOFOLLOW|syscall.O_NONBLOCK, 0)
	if err != nil {
		return nil
	}
	if fi, err := file.Stat(); err != nil || !fi.Mode().IsRegular() {
		file.Close()
		return nil
	}
	return file
}

// maxServing is how many block responses a node writes at once: two per
// core, so that reading and sending overlap with compressing.
func maxServing() int { return 2 * runtime.GOMAXPROCS(0) }
