package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// rsyncModule is the module the anchor's daemon serves.
const rsyncModule = "bench"

// rsyncDaemon is one running `rsync --daemon --no-detach`, serving the
// module rsyncModule on a loopback port; the runner pushes into dst.
type rsyncDaemon struct {
	cmd     *exec.Cmd
	done    chan struct{}
	addr    string // 127.0.0.1:PORT
	dst     string // where the runner pushes to, below the module
	logPath string
}

// rsyncdConf is the daemon's configuration: no chroot (it would need root
// and changes nothing measured), and the runner's own uid and gid (as root,
// the daemon would otherwise write as nobody). The module's path is "/":
// a daemon that limits a module to a subdirectory without a chroot
// sanitizes incoming symlinks (it drops the leading / of absolute targets,
// rsyncd.conf(5), "munge symlinks"), which would change the data set's
// absolute symlinks; serving "/" it does not.
func rsyncdConf(addr, logPath string, uid, gid int) (string, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return "", err
	}
	return fmt.Sprintf(`port = %s
address = %s
use chroot = no
log file = %s

[%s]
	path = /
	read only = no
	use chroot = no
	munge symlinks = no
	uid = %d
	gid = %d
`, port, host, logPath, rsyncModule, uid, gid), nil
}

// startRsyncd writes the daemon's configuration into dir and starts it,
// and waits until it accepts connections. dst is made, empty.
func startRsyncd(ctx context.Context, rn *runner, dir, dst string) (*rsyncDaemon, error) {
	addr, err := freeAddr()
	if err != nil {
		return nil, err
	}
	d := &rsyncDaemon{addr: addr, dst: dst, logPath: filepath.Join(dir, "rsyncd.log"), done: make(chan struct{})}
	conf, err := rsyncdConf(addr, d.logPath, os.Getuid(), os.Getgid())
	if err != nil {
		return nil, err
	}
	confPath := filepath.Join(dir, "rsyncd.conf")
	if err := os.WriteFile(confPath, []byte(conf), 0o644); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(dst, 0o755); err != nil {
		return nil, err
	}
	cmd := exec.Command(rsyncBin, "--daemon", "--no-detach", "--config", confPath)
	cmd.Env = rn.env
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	cmd.SysProcAttr = childSysProcAttr(true)
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start rsync --daemon: %v", err)
	}
	fmt.Fprintf(rn.log, "$ rsync --daemon --no-detach --config %s &  (pid %d)\n%s\n", confPath, cmd.Process.Pid, conf)
	d.cmd = cmd
	go func() { cmd.Wait(); close(d.done) }()
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
			return d, nil
		}
		select {
		case <-d.done:
			return nil, fmt.Errorf("rsync --daemon exited: %s %s", strings.TrimSpace(out.String()), logTail(d.logPath))
		case <-ctx.Done():
			d.stop()
			return nil, ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			d.stop()
			return nil, fmt.Errorf("rsync --daemon not listening on %s after 10 s", addr)
		}
	}
}

// stop ends the daemon (SIGTERM, then SIGKILL after 5 s).
func (d *rsyncDaemon) stop() {
	if d == nil || d.cmd == nil || d.cmd.Process == nil {
		return
	}
	terminate(d.cmd.Process, d.done, 5*time.Second)
}

// cpu is the daemon's CPU time so far, its reaped children (one per
// connection, which do the receiving) included.
func (d *rsyncDaemon) cpu() time.Duration { return procCPUChildren(d.cmd.Process.Pid) }

// rsyncStats is what `rsync --stats` says about the bytes it moved.
type rsyncStats struct {
	Sent, Received int64 // "Total bytes sent", "Total bytes received" (the client's view)
	Literal        int64 // "Literal data": file bytes sent as they are, not matched
}

// parseRsyncStats reads the totals of `rsync --stats` output.
func parseRsyncStats(out string) (rsyncStats, error) {
	var st rsyncStats
	var seen int
	for _, l := range strings.Split(out, "\n") {
		k, v, ok := strings.Cut(l, ":")
		if !ok {
			continue
		}
		var p *int64
		switch strings.TrimSpace(k) {
		case "Total bytes sent":
			p = &st.Sent
		case "Total bytes received":
			p = &st.Received
		case "Literal data":
			p = &st.Literal
		default:
			continue
		}
		f := strings.Fields(v)
		if len(f) == 0 {
			return st, fmt.Errorf("rsync --stats: no number in %q", l)
		}
		n, err := strconv.ParseInt(strings.ReplaceAll(f[0], ",", ""), 10, 64)
		if err != nil {
			return st, fmt.Errorf("rsync --stats: %q: %v", l, err)
		}
		*p = n
		seen++
	}
	if seen < 3 {
		return st, errors.New("rsync --stats: totals not found in the output")
	}
	return st, nil
}

// rsyncPush runs `rsync -a --delete --stats src/ rsync://addr/MODULE/dst/`,
// the anchor's mirror of src into dst (absolute, below the module's "/"),
// and returns what it cost and its stats.
func rsyncPush(ctx context.Context, rn *runner, src, addr, dst string, extra ...string) (runResult, rsyncStats, error) {
	args := append(append([]string{"-a", "--delete", "--stats"}, extra...), src+"/", fmt.Sprintf("rsync://%s/%s%s/", addr, rsyncModule, dst))
	res, err := rn.run(ctx, nil, rsyncBin, args...)
	if err != nil {
		return res, rsyncStats{}, err
	}
	st, err := parseRsyncStats(res.Stdout)
	return res, st, err
}

// rsyncBin is the rsync the anchor runs: <bin>/rsync if there is one (the
// Makefile's, pinned: Debian's own moved from 3.2.7 to 3.5.0 on
// 2026-12-04, and ran slower here), else the one on PATH.
var rsyncBin = "rsync"

// rsyncVersion is the first line of `rsync --version`.
func rsyncVersion(ctx context.Context) string {
	out, err := exec.CommandContext(ctx, rsyncBin, "--version").Output()
	if err != nil {
		return "rsync (version unknown)"
	}
	l, _, _ := strings.Cut(string(out), "\n")
	return strings.Join(strings.Fields(l), " ")
}

// emptyDir removes everything inside dir, keeping dir itself.
func emptyDir(dir string) error {
	es, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	for _, e := range es {
		if err := os.RemoveAll(filepath.Join(dir, e.Name())); err != nil {
			return err
		}
	}
	return nil
}
