package alert_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/syncd/syncd/alert"
	"github.com/syncd/syncd/internal/clock/clocktest"
)

// wait bounds every wait of these tests: a step that does not happen in
// this long has failed.
const wait = 10 * time.Second

var t0 = time.Date(2026, 3, 31, 10, 0, 0, 0, time.UTC)

// waitTimer waits until a timer of clk that fires at at is pending.
func waitTimer(t *testing.T, clk *clocktest.Fake, at time.Time) {
	t.Helper()
	waitFor(t, "a timer set for "+at.Format(time.RFC3339), func() bool { return clk.Pending(at) })
}

// request is one POST a receiver got.
type request struct {
	auth, contentType string
	msg               alert.Message
	fields            map[string]any
}

// receiver is a real HTTP webhook receiver. answer gives the status of
// its n-th request (1-based); it may block.
type receiver struct {
	*httptest.Server
	reqs   chan request
	n      atomic.Int64
	answer func(n int64, r *http.Request) int
}

func newReceiver(t *testing.T, answer func(n int64, r *http.Request) int) *receiver {
	rc := &receiver{reqs: make(chan request, 1000), answer: answer}
	rc.Server = httptest.NewUnstartedServer(rc)
	rc.Start()
	t.Cleanup(rc.Close)
	return rc
}

func ok(int64, *http.Request) int { return http.StatusOK }

func (rc *receiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	req := request{auth: r.Header.Get("Authorization"), contentType: r.Header.Get("Content-Type")}
	if err := json.Unmarshal(body, &req.msg); err != nil {
		req.msg.Text = "bad JSON: " + string(body)
	}
	json.Unmarshal(body, &req.fields)
	rc.reqs <- req
	w.WriteHeader(rc.answer(rc.n.Add(1), r))
}

// next returns the next request the receiver got.
func (rc *receiver) next(t *testing.T) request {
	t.Helper()
	select {
	case r := <-rc.reqs:
		return r
	case <-time.After(wait):
		t.Fatalf("%s: no request within %s", rc.URL, wait)
		return request{}
	}
}

// expect checks that the next request is the message of key with status.
func (rc *receiver) expect(t *testing.T, key, status string) request {
	t.Helper()
	r := rc.next(t)
	if r.msg.Key != key || r.msg.Status != status {
		t.Fatalf("got %s %q (%s), want %s %q", r.msg.Status, r.msg.Key, r.msg.Text, status, key)
	}
	return r
}

// logBuffer collects the logs of a test.
type logBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// count returns how many lines hold s.
func (l *logBuffer) count(s string) int {
	n := 0
	for line := range strings.Lines(l.String()) {
		if strings.Contains(line, s) {
			n++
		}
	}
	return n
}

// start makes an Alerter of o with a fake clock and runs it until the
// test ends.
func start(t *testing.T, o alert.Options) (*alert.Alerter, *clocktest.Fake, *logBuffer) {
	t.Helper()
	clk := clocktest.New(t0)
	logs := &logBuffer{}
	o.Clock = clk
	o.Logger = slog.New(slog.NewTextHandler(logs, nil))
	if o.Node == "" {
		o.Node = "web1"
	}
	a, err := alert.New(o)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Run: %v", err)
			}
		case <-time.After(wait):
			t.Errorf("Run did not return within %s of the end of its context", wait)
		}
	})
	return a, clk, logs
}

// tokenFile writes token to a file of mode perm.
func tokenFile(t *testing.T, token string, perm os.FileMode) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "hook.token")
	if err := os.WriteFile(p, []byte(token+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(p, perm); err != nil {
		t.Fatal(err)
	}
	return p
}

// waitFor waits until cond holds.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(wait)
	tick := time.NewTicker(time.Millisecond)
	defer tick.Stop()
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %s", what, wait)
		}
		<-tick.C
	}
}
