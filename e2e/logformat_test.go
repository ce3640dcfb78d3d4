package e2e

import (
	"bufio"
	"bytes"
	"encoding/json"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"
)

// waitReadyz waits until the daemon at httpAddr answers /readyz with 200.
func waitReadyz(t *testing.T, httpAddr, logf string) {
	t.Helper()
	ready := waitFor(60*time.Second, func() bool {
		resp, err := http.Get("http://" + httpAddr + "/readyz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})
	if !ready {
		log, _ := os.ReadFile(logf)
		t.Fatalf("syncd run not ready within 60 s; log:\n%s", log)
	}
}

// stopDaemon sends SIGTERM and waits for the exit; it returns the log.
func stopDaemon(t *testing.T, cmd *exec.Cmd, logf string) []byte {
	t.Helper()
	cmd.Process.Signal(syscall.SIGTERM)
	cmd.Wait()
	log, err := os.ReadFile(logf)
	if err != nil {
		t.Fatal(err)
	}
	return log
}

// TestLogFormat: --log-format json writes one JSON object a line, each
// with level and msg; the default is slog's text; a bad value is a usage
// error naming the flag and the value.
func TestLogFormat(t *testing.T) {
	t.Run("json", func(t *testing.T) {
		n := newOpsNode(t, 5, false)
		cmd, logf := startDaemon(t, nil, "--config", n.cfg, "--log-format", "json")
		waitReadyz(t, n.http, logf)
		log := stopDaemon(t, cmd, logf)
		sc := bufio.NewScanner(bytes.NewReader(log))
		lines, running := 0, false
		for sc.Scan() {
			var rec map[string]any
			if err := json.Unmarshal(sc.Bytes(), &rec); err != nil {
				t.Errorf("log line is not JSON: %v: %s", err, sc.Bytes())
				continue
			}
			lines++
			level, _ := rec["level"].(string)
			msg, _ := rec["msg"].(string)
			if level == "" || msg == "" {
				t.Errorf("log line without level or msg: %s", sc.Bytes())
			}
			running = running || (msg == "syncd running" && level == "INFO" && rec["node"] == "web1")
		}
		if lines == 0 || !running {
			t.Errorf("want JSON lines including INFO \"syncd running\" with node web1; log:\n%s", log)
		}
	})
	t.Run("text by default", func(t *testing.T) {
		n := newOpsNode(t, 5, false)
		cmd, logf := startDaemon(t, nil, "--config", n.cfg)
		waitReadyz(t, n.http, logf)
		log := stopDaemon(t, cmd, logf)
		if !bytes.Contains(log, []byte(`level=INFO msg="syncd running" node=web1`)) {
			t.Errorf("want a text line level=INFO msg=\"syncd running\" node=web1; log:\n%s", log)
		}
		if bytes.Contains(log, []byte(`{"time"`)) {
			t.Errorf("JSON lines without --log-format json; log:\n%s", log)
		}
	})
	t.Run("bad value", func(t *testing.T) {
		n := newOpsNode(t, 0, false)
		r := run(t, nil, "syncd", "run", "--config", n.cfg, "--log-format", "yaml")
		if r.code != 2 || !strings.Contains(r.stderr, "--log-format") || !strings.Contains(r.stderr, `"yaml"`) {
			t.Errorf("syncd run --log-format yaml: want exit 2 naming --log-format and \"yaml\", got %s", r)
		}
	})
}
