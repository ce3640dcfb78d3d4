package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"
)

// daemonProc is one running `syncd run`.
type daemonProc struct {
	cmd     *exec.Cmd
	done    chan struct{}
	base    string // http://HOST:PORT
	logPath string
	config  string
	rusage  *syscall.Rusage
	waitErr error
	client  *http.Client
}

// startDaemon writes the configuration for folder and repo and starts
// `syncd run`. It does not wait for it to be ready.
func startDaemon(ctx context.Context, rn *runner, ours *tool, repo *Repo, folder, dir string) (*daemonProc, error) {
	listen, err := freeAddr()
	if err != nil {
		return nil, err
	}
	httpAddr, err := freeAddr()
	if err != nil {
		return nil, err
	}
	state := filepath.Join(dir, "state")
	if err := os.MkdirAll(state, 0o700); err != nil {
		return nil, err
	}
	cfg := fmt.Sprintf(`node:
  name: bench
  state_dir: %s
  listen: %s
  http: %s
folders:
  - id: data
    path: %s
repository:
  url: %s
  index_key: %s
  data_recipients: []
`, state, listen, httpAddr, folder, repo.URL, ours.indexKey(repo))
	syscall.Sync()
	return launchDaemon(rn, ours.syncd, httpAddr, dir, filepath.Join(dir, "syncd.yaml"), cfg, "",
		append(slices.Clone(rn.env), repo.Env...))
}

// launchDaemon writes cfg to conf and starts `syncd run --config conf`
// (and extra arguments) with env, its output in dir/daemon.log; what
// names it in the runner's log. It does not wait for it to be ready.
func launchDaemon(rn *runner, syncd, httpAddr, dir, conf, cfg, what string, env []string, extra ...string) (*daemonProc, error) {
	d := &daemonProc{
		base:    "http://" + httpAddr,
		logPath: filepath.Join(dir, "daemon.log"),
		config:  conf,
		done:    make(chan struct{}),
		client:  &http.Client{Timeout: 5 * time.Second},
	}
	if err := os.WriteFile(conf, []byte(cfg), 0o600); err != nil {
		return nil, err
	}
	logf, err := os.Create(d.logPath)
	if err != nil {
		return nil, err
	}
	defer logf.Close()
	cmd := exec.Command(syncd, append([]string{"run", "--config", conf}, extra...)...)
	cmd.Env = env
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = childSysProcAttr(true)
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s run: %v", syncd, err)
	}
	fmt.Fprintf(rn.log, "$ %s &  (%spid %d, log %s)\n%s\n", strings.Join(cmd.Args, " "), what, cmd.Process.Pid, d.logPath, cfg)
	d.cmd = cmd
	go func() {
		d.waitErr = cmd.Wait()
		if ps := cmd.ProcessState; ps != nil {
			if ru, ok := ps.SysUsage().(*syscall.Rusage); ok {
				d.rusage = ru
			}
		}
		close(d.done)
	}()
	return d, nil
}

// stop ends the daemon: SIGTERM, then SIGKILL after 30 s. It returns the
// daemon's rusage and an error if it did not exit cleanly after SIGTERM.
// Stopping a stopped daemon only returns what the first stop saw.
func (d *daemonProc) stop() (*syscall.Rusage, error) {
	if d == nil || d.cmd == nil {
		return nil, errors.New("no daemon")
	}
	select {
	case <-d.done:
		return d.rusage, d.exitErr("before it was stopped")
	default:
	}
	progress("stopping syncd run (pid %d) with SIGTERM", d.cmd.Process.Pid)
	if !terminate(d.cmd.Process, d.done, 30*time.Second) {
		return d.rusage, fmt.Errorf("syncd run did not stop within 30 s of SIGTERM (killed): %s", logTail(d.logPath))
	}
	return d.rusage, d.exitErr("after SIGTERM")
}

// terminate sends p SIGTERM and waits for done; after grace it kills p,
// waits, and reports false.
func terminate(p *os.Process, done <-chan struct{}, grace time.Duration) bool {
	_ = p.Signal(syscall.SIGTERM)
	select {
	case <-done:
		return true
	case <-time.After(grace):
		_ = p.Kill()
		<-done
		return false
	}
}

func (d *daemonProc) exitErr(when string) error {
	if d.waitErr != nil {
		return fmt.Errorf("syncd run exited %s: %v: %s", when, d.waitErr, logTail(d.logPath))
	}
	return nil
}

// alive reports an error if the daemon has exited.
func (d *daemonProc) alive() error {
	select {
	case <-d.done:
		return fmt.Errorf("syncd run exited during the run (%v): %s", d.waitErr, logTail(d.logPath))
	default:
		return nil
	}
}

// daemonStatus is the part of GET /status the runner reads.
type daemonStatus struct {
	Folders []struct {
		ID      string `json:"id"`
		State   string `json:"state"`
		Error   string `json:"error"`
		Files   int64  `json:"files"`
		Pending int64  `json:"pending"`
	} `json:"folders"`
}

// status fetches /status.
func (d *daemonProc) status(ctx context.Context) (*daemonStatus, error) {
	req, err := http.NewRequestWithContext(ctx, "GET", d.base+"/status", nil)
	if err != nil {
		return nil, err
	}
	resp, err := d.client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET /status: %s", resp.Status)
	}
	var st daemonStatus
	if err := json.NewDecoder(resp.Body).Decode(&st); err != nil {
		return nil, fmt.Errorf("GET /status: %v", err)
	}
	if len(st.Folders) != 1 {
		return nil, fmt.Errorf("GET /status: %d folders, want 1", len(st.Folders))
	}
	return &st, nil
}

// ready reports whether /readyz says 200 and /status says the folder is
// scanned ("ok") with nothing pending.
func (d *daemonProc) ready(ctx context.Context) (bool, error) {
	req, err := http.NewRequestWithContext(ctx, "GET", d.base+"/readyz", nil)
	if err != nil {
		return false, err
	}
	resp, err := d.client.Do(req)
	if err != nil {
		return false, nil // not listening yet
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return false, nil
	}
	st, err := d.status(ctx)
	if err != nil {
		return false, err
	}
	f := st.Folders[0]
	if f.State == "failed" {
		return false, fmt.Errorf("folder %s failed: %s", f.ID, f.Error)
	}
	return f.State == "ok" && f.Pending == 0, nil
}

// waitReady polls every 5 ms until the daemon is ready (see ready), for up
// to limit, and returns how long it took from since.
func (d *daemonProc) waitReady(ctx context.Context, since time.Time, limit time.Duration) (time.Duration, error) {
	deadline := time.Now().Add(limit)
	for {
		if err := d.alive(); err != nil {
			return 0, err
		}
		ok, err := d.ready(ctx)
		if err != nil {
			return 0, err
		}
		if ok {
			return time.Since(since), nil
		}
		if time.Now().After(deadline) {
			return 0, fmt.Errorf("syncd run not ready after %v: %s", limit, logTail(d.logPath))
		}
		select {
		case <-ctx.Done():
			return 0, ctx.Err()
		case <-time.After(pollEvery):
		}
	}
}

// logTail returns the end of a log file, for error messages.
func logTail(path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return err.Error()
	}
	if len(b) > 2000 {
		b = b[len(b)-2000:]
	}
	if len(b) == 0 {
		return "(empty log)"
	}
	return string(b)
}
