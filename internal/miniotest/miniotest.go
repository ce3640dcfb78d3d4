// Package miniotest runs a real MinIO server for tests: on a free loopback
// port, with a temporary data directory and generated root credentials,
// stopped when the test ends.
//
// The minio binary is looked for in $SYNCD_TEST_BIN, then in bin/ of the
// working directory or one of its parents (where `make tools` links it),
// then in PATH. Without it, a test skips — or fails when CI=true.
package miniotest

import (
	"bytes"
	"crypto/rand"
	"crypto/tls"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/syncd/syncd/internal/freeport"
)

// Region is the region a server runs in unless Options.Region says
// otherwise.
const Region = "us-east-1"

// readyTimeout bounds how long Start and Restart wait for the server.
const readyTimeout = 60 * time.Second

// Server is a running MinIO server. Its methods are safe for concurrent use.
type Server struct {
	Endpoint  string // http://127.0.0.1:PORT, or https:// with Options.TLS
	AccessKey string // root user
	SecretKey string // root password
	CAFile    string // with Options.TLS: PEM of the server's self-signed certificate
	KMSKeyID  string // with Options.KMS: the name of the server's static KMS key
	Region    string // the server's region (MINIO_SITE_REGION), the one Env sets

	bin     string
	addr    string // 127.0.0.1:PORT
	dir     string // data directory
	certDir string // with Options.TLS: public.crt and private.key
	logPath string
	kmsKey  string       // with Options.KMS: MINIO_KMS_SECRET_KEY
	client  *http.Client // trusts CAFile

	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{} // closed when cmd has exited
}

// Options are the settings of StartWith.
type Options struct {
	// TLS serves HTTPS with a self-signed certificate for 127.0.0.1, whose
	// PEM is in Server.CAFile.
	TLS bool
	// KMS gives the server a static KMS key (MINIO_KMS_SECRET_KEY), named
	// in Server.KMSKeyID: server-side encryption (SSE-S3, and SSE-KMS
	// with that key) works. A static key is for tests: it is no KMS.
	KMS bool
	// Region is the server's region; empty: [Region]. Requests signed for
	// another region are refused.
	Region string
}

// Start starts a MinIO server for the test and stops it in t.Cleanup. It
// skips the test when the minio binary is not found, unless CI=true, where
// it fails it.
func Start(t testing.TB) *Server {
	t.Helper()
	return StartWith(t, Options{})
}

// StartWith is Start with options.
func StartWith(t testing.TB, o Options) *Server {
	t.Helper()
	bin := findBinary(t)
	addr := FreeAddr(t)
	tmp := t.TempDir()
	s := &Server{
		Endpoint:  "http://" + addr,
		AccessKey: "root-" + randomHex(t, 6),
		SecretKey: randomHex(t, 20),
		Region:    Region,
		bin:       bin,
		addr:      addr,
		dir:       filepath.Join(tmp, "data"),
		logPath:   filepath.Join(tmp, "minio.log"),
		client:    &http.Client{Timeout: 30 * time.Second},
	}
	if err := os.Mkdir(s.dir, 0o700); err != nil {
		t.Fatal(err)
	}
	if o.TLS {
		s.certDir = filepath.Join(tmp, "certs")
		s.CAFile = filepath.Join(s.certDir, "public.crt")
		pool, err := writeCert(s.certDir)
		if err != nil {
			t.Fatalf("miniotest: %v", err)
		}
		s.Endpoint = "https://" + addr
		s.client.Transport = &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}
	}
	if o.Region != "" {
		s.Region = o.Region
	}
	if o.KMS {
		key := make([]byte, 32)
		if _, err := rand.Read(key); err != nil {
			t.Fatal(err)
		}
		s.KMSKeyID = "syncd-test-key"
		s.kmsKey = s.KMSKeyID + ":" + base64.StdEncoding.EncodeToString(key)
	}
	t.Cleanup(s.Kill)
	s.start(t)
	return s
}

// Env returns the environment a child process needs to use the server as
// root: AWS_ENDPOINT_URL, AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY,
// AWS_REGION and SYNCD_S3_PATH_STYLE=1, as KEY=VALUE strings. Append it to
// os.Environ() (later entries win).
func (s *Server) Env() []string {
	return []string{
		"AWS_ENDPOINT_URL=" + s.Endpoint,
		"AWS_ACCESS_KEY_ID=" + s.AccessKey,
		"AWS_SECRET_ACCESS_KEY=" + s.SecretKey,
		"AWS_REGION=" + s.Region,
		"SYNCD_S3_PATH_STYLE=1",
	}
}

// Kill stops the server at once (SIGKILL), as a crash or a lost host
// would, and waits for it to exit. Its data stays for Restart. Killing a
// stopped server does nothing.
func (s *Server) Kill() {
	s.mu.Lock()
	cmd, done := s.cmd, s.done
	s.cmd = nil
	s.mu.Unlock()
	if cmd == nil {
		return
	}
	_ = cmd.Process.Kill()
	<-done
}

// Restart kills the server if it runs and starts it again on the same port
// and data directory, with the same credentials, and waits until it is
// ready.
func (s *Server) Restart(t testing.TB) {
	t.Helper()
	s.Kill()
	s.start(t)
}

// start runs minio and waits for its liveness endpoint to answer.
func (s *Server) start(t testing.TB) {
	t.Helper()
	logf, err := os.OpenFile(s.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	defer logf.Close()
	args := []string{"server", "--quiet", "--address", s.addr}
	if s.certDir != "" {
		args = append(args, "--certs-dir", s.certDir)
	}
	cmd := exec.Command(s.bin, append(args, s.dir)...)
	cmd.Env = append(os.Environ(),
		"MINIO_ROOT_USER="+s.AccessKey,
		"MINIO_ROOT_PASSWORD="+s.SecretKey,
		"MINIO_BROWSER=off",
		"MINIO_UPDATE=off",
		"MINIO_SITE_REGION="+s.Region,
		"MINIO_CI_CD=1",
	)
	if s.kmsKey != "" {
		cmd.Env = append(cmd.Env, "MINIO_KMS_SECRET_KEY="+s.kmsKey)
	}
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = sysProcAttr()
	if err := cmd.Start(); err != nil {
		t.Fatalf("miniotest: start %s: %v", s.bin, err)
	}
	done := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		close(done)
	}()
	s.mu.Lock()
	s.cmd, s.done = cmd, done
	s.mu.Unlock()

	deadline := time.Now().Add(readyTimeout)
	for {
		select {
		case <-done:
			t.Fatalf("miniotest: minio exited before it was ready: %s", s.logTail())
		default:
		}
		resp, err := s.client.Get(s.Endpoint + "/minio/health/cluster")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		if time.Now().After(deadline) {
			s.Kill()
			t.Fatalf("miniotest: minio not ready on %s after %v: %s", s.addr, readyTimeout, s.logTail())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// logTail returns the end of the server's log, for failure messages.
func (s *Server) logTail() string {
	b, err := os.ReadFile(s.logPath)
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

// findBinary returns the path of minio, or skips or fails t.
func findBinary(t testing.TB) string {
	t.Helper()
	var tried []string
	if dir := os.Getenv("SYNCD_TEST_BIN"); dir != "" {
		p := filepath.Join(dir, "minio")
		if isExecutable(p) {
			return p
		}
		tried = append(tried, p)
	}
	if wd, err := os.Getwd(); err == nil {
		for dir := wd; ; dir = filepath.Dir(dir) {
			p := filepath.Join(dir, "bin", "minio")
			if isExecutable(p) {
				return p
			}
			if filepath.Dir(dir) == dir {
				break
			}
		}
		tried = append(tried, "bin/minio above "+wd)
	}
	if p, err := exec.LookPath("minio"); err == nil {
		return p
	}
	tried = append(tried, "PATH")
	msg := fmt.Sprintf("miniotest: minio binary not found (looked in %s); run make bin/minio (make tools installs it too)", strings.Join(tried, ", "))
	if os.Getenv("CI") == "true" {
		t.Fatal(msg + " (CI=true: MinIO is required in CI)")
	}
	t.Skip(msg + " (skipped outside CI; with CI=true this fails)")
	return ""
}

func isExecutable(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0
}

// FreeAddr returns a loopback address with a port nothing listens on, for
// a process the test starts to listen on (see [freeport.Addr]).
func FreeAddr(t testing.TB) string {
	t.Helper()
	addr, err := freeport.Addr()
	if err != nil {
		t.Fatal(err)
	}
	return addr
}

func randomHex(t testing.TB, n int) string {
	t.Helper()
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}

// errNotReady is an admin answer that says to try again shortly.
var errNotReady = errors.New("server not initialized yet")
