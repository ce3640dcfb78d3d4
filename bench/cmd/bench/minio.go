package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"debug/buildinfo"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"time"

	"github.com/syncd/syncd/internal/freeport"
)

// minioRegion is the region the server runs in and both tools are told.
const minioRegion = "us-east-1"

// minioServer is the one MinIO server of a run: on a free loopback port, its
// data directory in the run's work directory (the same disk as the restore
// targets), with generated root credentials. It is the runner's equivalent of
// internal/miniotest, which is a testing helper.
type minioServer struct {
	endpoint          string // http://127.0.0.1:PORT
	access, secret    string // root user and password
	version           string // for the report
	dir, logPath, bin string

	cmd  *exec.Cmd
	done chan struct{} // closed when cmd has exited
}

// startMinio starts bin (the minio binary) with its data below dir and waits
// until it answers /minio/health/cluster (the object layer is up). The server is killed if the runner
// dies (Pdeathsig); otherwise the caller must stop it.
func startMinio(ctx context.Context, bin, dir string) (*minioServer, error) {
	if p, err := filepath.EvalSymlinks(bin); err == nil {
		bin = p // bin/minio is a symlink others may re-point during the run
	}
	addr, err := freeAddr()
	if err != nil {
		return nil, err
	}
	m := &minioServer{
		endpoint: "http://" + addr,
		access:   "bench-" + randomHex(6),
		secret:   randomHex(20),
		version:  minioVersion(bin),
		dir:      filepath.Join(dir, "data"),
		logPath:  filepath.Join(dir, "minio.log"),
		bin:      bin,
	}
	if err := os.MkdirAll(m.dir, 0o700); err != nil {
		return nil, err
	}
	logf, err := os.Create(m.logPath)
	if err != nil {
		return nil, err
	}
	defer logf.Close()
	cmd := exec.Command(bin, "server", "--quiet", "--address", addr, m.dir)
	cmd.Env = append(os.Environ(),
		"MINIO_ROOT_USER="+m.access,
		"MINIO_ROOT_PASSWORD="+m.secret,
		"MINIO_BROWSER=off",
		"MINIO_UPDATE=off",
		"MINIO_SITE_REGION="+minioRegion,
		"MINIO_CI_CD=1",
	)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = childSysProcAttr(true)
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %v", bin, err)
	}
	m.cmd, m.done = cmd, make(chan struct{})
	go func() {
		_ = cmd.Wait()
		close(m.done)
	}()
	if err := m.waitReady(ctx); err != nil {
		m.stop()
		return nil, err
	}
	return m, nil
}

// waitReady polls the cluster health endpoint for up to a minute: it
// answers 200 once the object layer serves requests with write quorum
// (the liveness endpoint answers as soon as the process listens, and a
// request right after may get "Server not initialized yet").
func (m *minioServer) waitReady(ctx context.Context) error {
	client := &http.Client{Timeout: 5 * time.Second}
	deadline := time.Now().Add(60 * time.Second)
	for {
		select {
		case <-m.done:
			return fmt.Errorf("minio exited before it was ready: %s", m.logTail())
		case <-ctx.Done():
			return ctx.Err()
		default:
		}
		resp, err := client.Get(m.endpoint + "/minio/health/cluster")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("minio not ready on %s after 60 s: %s", m.endpoint, m.logTail())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// stop ends the server: SIGTERM, then SIGKILL after 10 s. Stopping a stopped
// server does nothing.
func (m *minioServer) stop() {
	if m == nil || m.cmd == nil {
		return
	}
	cmd := m.cmd
	m.cmd = nil
	select {
	case <-m.done:
		return
	default:
	}
	progress("stopping MinIO (pid %d)", cmd.Process.Pid)
	_ = cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-m.done:
	case <-time.After(10 * time.Second):
		_ = cmd.Process.Kill()
		<-m.done
	}
}

// alive reports an error if the server has exited.
func (m *minioServer) alive() error {
	select {
	case <-m.done:
		return fmt.Errorf("minio exited during the run: %s", m.logTail())
	default:
		return nil
	}
}

// logTail returns the end of the server's log, for error messages.
func (m *minioServer) logTail() string {
	b, err := os.ReadFile(m.logPath)
	if err != nil {
		return err.Error()
	}
	if len(b) > 2000 {
		b = b[len(b)-2000:]
	}
	if len(bytes.TrimSpace(b)) == 0 {
		return "(empty log)"
	}
	return string(b)
}

// minioVersion is the module version the binary was installed at (`minio
// --version` says only DEVELOPMENT.GOGET for a `go install`ed one).
func minioVersion(bin string) string {
	bi, err := buildinfo.ReadFile(bin)
	if err != nil {
		return "minio (build info unreadable)"
	}
	return fmt.Sprintf("%s@%s, built with %s", bi.Main.Path, bi.Main.Version, bi.GoVersion)
}

// freeAddr returns a loopback address for a process the bench starts (see
// freeport.Addr: a port below the ephemeral range).
func freeAddr() (string, error) { return freeport.Addr() }

func randomHex(n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic(errors.New("crypto/rand: " + err.Error()))
	}
	return hex.EncodeToString(b)
}
