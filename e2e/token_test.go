package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io/fs"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

const e2eToken = "5f2b8c0e9a4d7f1b3c6e8a0d2f4b6c8e"

// withToken adds node.http_token_file (a new file holding token, mode
// perm) to n's configuration, and sets node.http to httpAddr when not "".
func (n *node) withToken(token string, perm os.FileMode, httpAddr string) string {
	n.t.Helper()
	tf := filepath.Join(n.t.TempDir(), "http.token")
	if err := os.WriteFile(tf, []byte(token+"\n"), perm); err != nil {
		n.t.Fatal(err)
	}
	os.Chmod(tf, perm)
	b, err := os.ReadFile(n.cfg)
	if err != nil {
		n.t.Fatal(err)
	}
	old := "  http: " + n.http + "\n"
	if httpAddr != "" {
		n.http = httpAddr
	}
	cfg := strings.Replace(string(b), old, "  http: "+n.http+"\n  http_token_file: "+tf+"\n", 1)
	if err := os.WriteFile(n.cfg, []byte(cfg), 0o644); err != nil {
		n.t.Fatal(err)
	}
	return tf
}

// call sends method path to n's node.http with the Authorization header
// auth ("" for none) and returns the status code and body.
func (n *node) call(method, path, auth string) (int, string) {
	n.t.Helper()
	req, err := http.NewRequest(method, "http://"+n.http+path, nil)
	if err != nil {
		n.t.Fatal(err)
	}
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		n.t.Fatal(err)
	}
	defer resp.Body.Close()
	var b bytes.Buffer
	b.ReadFrom(resp.Body)
	return resp.StatusCode, b.String()
}

// want401 checks a refusal: 401 with a one-line JSON error.
func want401(t *testing.T, what string, code int, body string) {
	t.Helper()
	var e struct{ Error string }
	if code != http.StatusUnauthorized {
		t.Errorf("%s: got %d %s, want 401", what, code, body)
	} else if err := json.Unmarshal([]byte(body), &e); err != nil || e.Error == "" || strings.Count(body, "\n") != 1 {
		t.Errorf("%s: body is not a one-line JSON error: %q", what, body)
	}
}

// TestHTTPTokenPost: with node.http_token_file on loopback, POST /snapshot
// without the token or with a wrong one is refused and makes no snapshot;
// with it (by hand and from syncd snapshot --config) it makes one. GET
// /status stays open on loopback.
func TestHTTPTokenPost(t *testing.T) {
	n := newNode(t)
	n.withToken(e2eToken, 0o600, "")
	n.write("index.html", "hello")
	n.start()

	for _, auth := range []string{"", "Bearer wrong-token-0123456789", "Bearer " + e2eToken[1:], "Basic " + e2eToken, e2eToken} {
		code, body := n.call("POST", "/snapshot", auth)
		want401(t, "POST /snapshot with Authorization "+auth, code, body)
	}
	if got := snapshotObjects(t, n.r); got != 0 {
		t.Fatalf("refused POSTs made %d snapshots", got)
	}
	if code, body := n.call("GET", "/status", ""); code != http.StatusOK {
		t.Errorf("GET /status on loopback without the token: %d %s, want 200", code, body)
	}

	if code, body := n.call("POST", "/snapshot", "Bearer "+e2eToken); code != http.StatusOK {
		t.Fatalf("POST /snapshot with the token: %d %s", code, body)
	}
	if got := snapshotObjects(t, n.r); got != 1 {
		t.Fatalf("%d snapshots after one accepted POST, want 1", got)
	}
	out := ok(t, nil, "syncd", "snapshot", "--config", n.cfg) // the CLI sends the token
	if !strings.Contains(out, "saved from the index") {
		t.Errorf("syncd snapshot --config: %q", out)
	}
	if got := snapshotObjects(t, n.r); got != 2 {
		t.Fatalf("%d snapshots after syncd snapshot --config, want 2", got)
	}
	if st := n.status(); st["files"] != float64(1) {
		t.Errorf("syncd status: %v", st)
	}
	if strings.Contains(readAll(t, n.log.Name()), e2eToken) {
		t.Error("the daemon logged the token")
	}
}

// TestHTTPTokenOffLoopback: on a non-loopback node.http every endpoint
// but /healthz and /readyz needs the token, and syncd status sends it;
// without a token file, or with one others may read, syncd run refuses to
// start.
func TestHTTPTokenOffLoopback(t *testing.T) {
	t.Run("no token file", func(t *testing.T) {
		n := newNode(t)
		b, _ := os.ReadFile(n.cfg)
		cfg := strings.Replace(string(b), "  http: "+n.http+"\n", "  http: 0.0.0.0"+n.http[strings.LastIndex(n.http, ":"):]+"\n", 1)
		os.WriteFile(n.cfg, []byte(cfg), 0o644)
		r := runBounded(t, "syncd", "run", "--config", n.cfg)
		oneLine(t, "syncd run on 0.0.0.0 without a token file", r, 1, "node.http_token_file", "loopback")
	})
	t.Run("token file readable by others", func(t *testing.T) {
		n := newNode(t)
		tf := n.withToken(e2eToken, 0o644, "")
		r := runBounded(t, "syncd", "run", "--config", n.cfg)
		if r.code == 0 || !strings.Contains(r.stderr, "chmod 600 "+tf) || strings.Contains(r.stderr, e2eToken) {
			t.Errorf("syncd run with a token file of mode 0644: %s", r)
		}
	})
	t.Run("every endpoint but health", func(t *testing.T) {
		n := newNode(t)
		port := n.http[strings.LastIndex(n.http, ":"):]
		n.withToken(e2eToken, 0o600, "0.0.0.0"+port)
		n.start() // /readyz needs no token
		n.http = "127.0.0.1" + port
		for _, p := range []string{"/status", "/"} {
			code, body := n.call("GET", p, "")
			want401(t, "GET "+p+" off loopback without the token", code, body)
			if code, body := n.call("GET", p, "Bearer "+e2eToken); code != http.StatusOK {
				t.Errorf("GET %s off loopback with the token: %d %s", p, code, body)
			}
		}
		if code, _ := n.call("GET", "/healthz", ""); code != http.StatusOK {
			t.Errorf("GET /healthz off loopback without the token: %d, want 200", code)
		}
		if st := n.status(); st["id"] != "www" { // syncd status sends the token
			t.Errorf("syncd status off loopback: %v", st)
		}
	})
}

// runBounded runs a command that is expected to exit by itself, killing
// it after 30 s (a daemon that should have refused to start).
func runBounded(t *testing.T, prog string, args ...string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, filepath.Join(binDir, prog), args...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	if ctx.Err() != nil {
		t.Fatalf("%s %v still ran after 30 s; stderr:\n%s", prog, args, errb.String())
	}
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return result{out.String(), errb.String(), code}
}

// snapshotObjects counts the snapshot objects in r (a local repository).
func snapshotObjects(t *testing.T, r *repo) int {
	t.Helper()
	ents, err := os.ReadDir(filepath.Join(r.url, "snapshots"))
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		t.Fatal(err)
	}
	return len(ents)
}

func readAll(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
