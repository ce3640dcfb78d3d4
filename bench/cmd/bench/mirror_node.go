package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/syncd/syncd/daemon"
	"github.com/syncd/syncd/internal/faultproxy"
)

// mirrorNode is one `syncd run` of the mirror section.
type mirrorNode struct {
	name, dir, folder  string
	listen, http, conf string
	id                 string
	keepLog            string // copy the log here when stopped, and log at debug level ("": neither)
	proc               *daemonProc
}

// newMirrorNode makes the node's directory and picks its ports; folder is
// the directory it mirrors.
func newMirrorNode(name, dir, folder string) (*mirrorNode, error) {
	n := &mirrorNode{name: name, dir: dir, folder: folder, conf: filepath.Join(dir, "syncd.yaml")}
	var err error
	if n.listen, err = freeAddr(); err != nil {
		return nil, err
	}
	if n.http, err = freeAddr(); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(filepath.Join(dir, "state"), 0o700); err != nil {
		return nil, err
	}
	return n, os.MkdirAll(folder, 0o755)
}

// config is the node's configuration, peering with peer at address.
func (n *mirrorNode) config(mode string, peer *mirrorNode, address string) string {
	id := peer.id
	if id == "" {
		id = "unknown" // `syncd id` reads the file before the peer's ID is known
	}
	return fmt.Sprintf(`node:
  name: %s
  state_dir: %s
  listen: %s
  http: %s
peers:
  - name: %s
    id: %s
    address: %s
folders:
  - id: data
    path: %s
    mode: %s
    peers: [%s]
`, n.name, filepath.Join(n.dir, "state"), n.listen, n.http, peer.name, id, address, n.folder, mode, peer.name)
}

// makeIdentity runs `syncd id`, creating the node's TLS identity.
func (n *mirrorNode) makeIdentity(ctx context.Context, rn *runner, syncd string) error {
	if err := os.WriteFile(n.conf, []byte(n.config("send-receive", &mirrorNode{name: "none"}, "127.0.0.1:1")), 0o600); err != nil {
		return err
	}
	res, err := rn.run(ctx, nil, syncd, "id", "--config", n.conf)
	if err != nil {
		return err
	}
	n.id = strings.TrimSpace(res.Stdout)
	return nil
}

// start writes the node's configuration and starts `syncd run`, then waits
// until its /healthz answers.
func (n *mirrorNode) start(ctx context.Context, rn *runner, syncd, conf string) error {
	var extra []string
	if n.keepLog != "" {
		extra = []string{"--log-level", "debug"}
	}
	env := rn.env
	if dir := os.Getenv("SYNCD_BENCH_PROFILES"); dir != "" {
		// a CPU and an allocation profile of each node's run, for `go tool pprof`
		stamp := time.Now().UnixNano()
		env = append(slices.Clone(env), "SYNCD_CPUPROFILE="+filepath.Join(dir, fmt.Sprintf("%s-%d.pprof", n.name, stamp)),
			"SYNCD_MEMPROFILE="+filepath.Join(dir, fmt.Sprintf("%s-%d.mem.pprof", n.name, stamp)))
	}
	if dir := os.Getenv("SYNCD_BENCH_TRACES"); dir != "" {
		// an execution trace of each node's run, for `go tool trace`
		env = append(slices.Clone(env), "SYNCD_TRACE="+filepath.Join(dir, fmt.Sprintf("%s-%d.trace", n.name, time.Now().UnixNano())))
	}
	d, err := launchDaemon(rn, syncd, n.http, n.dir, n.conf, conf, "node "+n.name+", ", env, extra...)
	if err != nil {
		return err
	}
	n.proc = d
	for {
		if err := d.alive(); err != nil {
			return fmt.Errorf("node %s: %v", n.name, err)
		}
		req, err := http.NewRequestWithContext(ctx, "GET", d.base+"/healthz", nil)
		if err != nil {
			return err
		}
		if resp, err := d.client.Do(req); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		if err := sleepCtx(ctx, 2*time.Millisecond); err != nil {
			return err
		}
	}
}

// cpu is the node's CPU time so far (-1 when unknown).
func (n *mirrorNode) cpu() time.Duration {
	if n.proc == nil || n.proc.cmd == nil {
		return -1
	}
	return procCPU(n.proc.cmd.Process.Pid)
}

// stop stops the node's daemon, if it runs, and logs its peak RSS.
func (n *mirrorNode) stop() {
	if n.proc == nil {
		return
	}
	ru, err := n.proc.stop()
	if err != nil {
		progress("node %s: %v", n.name, err)
	}
	if n.keepLog != "" {
		err := os.MkdirAll(filepath.Dir(n.keepLog), 0o755)
		if err == nil {
			err = copyFile(n.proc.logPath, n.keepLog, io.Discard)
		}
		if err != nil {
			progress("node %s: keeping its log: %v", n.name, err)
		}
	}
	if ru != nil {
		progress("node %s: peak RSS %s, cpu %.2f s over the pair", n.name, iec(ru.Maxrss*1024),
			time.Duration(syscall.TimevalToNsec(ru.Utime)+syscall.TimevalToNsec(ru.Stime)).Seconds())
	}
	n.proc = nil
}

// nodeStatus is the part of a node's GET /status the mirror section reads.
type nodeStatus struct {
	Folders []nodeFolder `json:"folders"`
	Peers   []nodePeer   `json:"peers"`
}

// nodeFolder is a folder in nodeStatus.
type nodeFolder struct {
	State   string `json:"state"`
	Error   string `json:"error"`
	Files   int64  `json:"files"`
	Bytes   int64  `json:"bytes"`
	Pending int64  `json:"pending"`
}

// nodePeer is a peer in nodeStatus.
type nodePeer struct {
	Connected bool   `json:"connected"`
	LagFiles  int64  `json:"lag_files"`
	Behind    uint64 `json:"behind"`
	SendFiles int64  `json:"send_files"`
	Error     string `json:"error"`
}

// status fetches the node's /status.
func (n *mirrorNode) status(ctx context.Context) (*nodeStatus, error) {
	if err := n.proc.alive(); err != nil {
		return nil, fmt.Errorf("node %s: %v", n.name, err)
	}
	req, err := http.NewRequestWithContext(ctx, "GET", n.proc.base+"/status", nil)
	if err != nil {
		return nil, err
	}
	resp, err := n.proc.client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("node %s: %v", n.name, err)
	}
	defer resp.Body.Close()
	var st nodeStatus
	if err := json.NewDecoder(resp.Body).Decode(&st); err != nil {
		return nil, fmt.Errorf("node %s: GET /status: %v", n.name, err)
	}
	if len(st.Folders) != 1 || len(st.Peers) != 1 {
		return nil, fmt.Errorf("node %s: GET /status: %d folders and %d peers, want 1 and 1", n.name, len(st.Folders), len(st.Peers))
	}
	return &st, nil
}

// treeCount is the regular files of a tree and their bytes.
type treeCount struct{ files, bytes int64 }

// mirrorDone reports whether the replica B is complete with A's folder,
// whose tree has want (see the Procedure), and if not, why not.
func mirrorDone(a, b *nodeStatus, want treeCount) (bool, string) {
	fa, pa, fb, pb := a.Folders[0], a.Peers[0], b.Folders[0], b.Peers[0]
	switch {
	case fa.State == "failed" || fb.State == "failed":
		return false, fmt.Sprintf("folder failed: A %q, B %q", fa.Error, fb.Error)
	case fa.State != "ok" || fa.Pending != 0:
		return false, fmt.Sprintf("A %s, %d pending", fa.State, fa.Pending)
	case fa.Files != want.files || fa.Bytes != want.bytes:
		return false, fmt.Sprintf("A indexed %d files %d bytes of %d %d", fa.Files, fa.Bytes, want.files, want.bytes)
	case !pb.Connected:
		return false, "B not connected: " + pb.Error
	case pa.SendFiles != 0 || pb.LagFiles != 0 || pb.Behind != 0:
		return false, fmt.Sprintf("A has %d to send, B lags %d, behind %d", pa.SendFiles, pb.LagFiles, pb.Behind)
	case fb.Files != fa.Files || fb.Bytes != fa.Bytes:
		return false, fmt.Sprintf("B has %d files %d bytes of %d %d", fb.Files, fb.Bytes, fa.Files, fa.Bytes)
	}
	return true, ""
}

// waitMirrored waits until mirrorDone and returns the time the replica
// was complete: the last time bytes moved through the proxy p (B → A)
// before the quiet in which both /status said so. /status walks a node's
// whole index (~30 ms of CPU at 27k files), so it is asked only once the
// wire has been quiet for mirrorQuiet, and at most every mirrorCheck; the
// proxy's counters, read every mirrorTick, give the time. B asks A for
// more right after it applies a batch, so its last request is the moment
// the replica was complete.
func waitMirrored(ctx context.Context, a, b *mirrorNode, p *faultproxy.Proxy, want treeCount) (time.Time, error) {
	deadline := time.Now().Add(mirrorCompleted)
	moved := p.BytesUp() + p.BytesDown()
	lastMove, lastCheck := time.Now(), time.Time{}
	var why string
	for {
		if err := sleepCtx(ctx, mirrorTick); err != nil {
			return time.Time{}, err
		}
		now := time.Now()
		if now.After(deadline) {
			return time.Time{}, fmt.Errorf("replica not complete after %v: %s", mirrorCompleted, why)
		}
		if n := p.BytesUp() + p.BytesDown(); n != moved {
			moved, lastMove = n, now
			continue
		}
		if now.Sub(lastMove) < mirrorQuiet || now.Sub(lastCheck) < mirrorCheck {
			continue
		}
		lastCheck = now
		sa, err := a.status(ctx)
		if err != nil {
			return time.Time{}, err
		}
		sb, err := b.status(ctx)
		if err != nil {
			return time.Time{}, err
		}
		if p.BytesUp()+p.BytesDown() != moved {
			continue // something moved meanwhile: not quiet after all
		}
		done, w := mirrorDone(sa, sb, want)
		if done {
			return lastMove, nil
		}
		if w != why {
			progress("mirror not complete yet, %.1f s after the last bytes moved: %s", now.Sub(lastMove).Seconds(), w)
		}
		why = w
	}
}

// countTree counts the regular files below dir and their bytes.
func countTree(dir string) (treeCount, error) {
	d := dataset{Dir: dir}
	if err := d.describe(); err != nil {
		return treeCount{}, err
	}
	c := treeCount{int64(d.Files), d.Bytes}
	// the node's own folder marker is in the tree but never indexed
	if fi, err := os.Lstat(filepath.Join(dir, daemon.MarkerName)); err == nil && fi.Mode().IsRegular() {
		c.files--
		c.bytes -= fi.Size()
	}
	return c, nil
}
