package alert_test

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/syncd/syncd/alert"
	"github.com/syncd/syncd/internal/freeport"
)

// A new alert is one POST of the documented JSON, with the bearer token;
// firing it again while active sends nothing.
func TestFire(t *testing.T) {
	rc := newReceiver(t, ok)
	tok := tokenFile(t, "s3cret-token", 0o600)
	a, _, logs := start(t, alert.Options{Webhooks: []alert.Webhook{{URL: rc.URL + "/hook?k=v", TokenFile: tok}}})

	a.Fire("peer-down/web2", alert.PeerDown, alert.Critical, "no heartbeat from web2 for 45s")
	r := rc.next(t)
	if r.auth != "Bearer s3cret-token" {
		t.Errorf("Authorization = %q, want the bearer token", r.auth)
	}
	if r.contentType != "application/json" {
		t.Errorf("Content-Type = %q", r.contentType)
	}
	want := map[string]any{
		"node": "web1", "alert": "peer down", "key": "peer-down/web2", "severity": "critical", "status": "firing",
		"since": "2026-03-31T10:00:00Z", "time": "2026-03-31T10:00:00Z", "details": "no heartbeat from web2 for 45s",
		"text": "[FIRING] web1: peer down (critical): no heartbeat from web2 for 45s",
	}
	if !reflect.DeepEqual(r.fields, want) {
		t.Errorf("payload:\ngot  %v\nwant %v", r.fields, want)
	}

	a.Fire("peer-down/web2", alert.PeerDown, alert.Critical, "no heartbeat from web2 for 60s")
	a.Fire("folder-failed/www", alert.FolderFailed, "bogus", "folder www: marker missing\nnot mounted?")
	r = rc.expect(t, "folder-failed/www", alert.Firing) // not a second peer-down
	if r.msg.Severity != alert.Critical || r.msg.Text != "[FIRING] web1: folder failed (critical): folder www: marker missing not mounted?" {
		t.Errorf("severity %q, text %q", r.msg.Severity, r.msg.Text)
	}
	waitFor(t, "sent = 2", func() bool { return a.Stats()[0].Sent == 2 })
	if got := a.Stats()[0]; got != (alert.Stats{Webhook: "http://" + rc.Listener.Addr().String(), Sent: 2}) {
		t.Errorf("stats %+v", got)
	}
	active := a.Active()
	if len(active) != 2 || active[1].Key != "peer-down/web2" || active[1].Details != "no heartbeat from web2 for 60s" {
		t.Errorf("Active() = %+v", active)
	}
	if strings.Contains(logs.String(), "s3cret") {
		t.Errorf("the token is in the log:\n%s", logs)
	}
}

// An active alert is sent again every repeat, with its latest details,
// and once as resolved; then it repeats no more.
func TestRepeatAndResolve(t *testing.T) {
	rc := newReceiver(t, ok)
	a, clk, _ := start(t, alert.Options{Repeat: time.Hour, Webhooks: []alert.Webhook{{URL: rc.URL}}})

	a.Fire("snapshot-failed", alert.SnapshotFailed, alert.Warning, "s3: connection refused")
	rc.expect(t, "snapshot-failed", alert.Firing)
	waitTimer(t, clk, t0.Add(time.Hour))
	a.Fire("snapshot-failed", alert.SnapshotFailed, alert.Critical, "s3: access denied")
	clk.Advance(time.Hour)
	r := rc.expect(t, "snapshot-failed", alert.Firing)
	want := alert.Message{
		Node: "web1", Alert: "snapshot failed", Key: "snapshot-failed", Severity: "critical", Status: "firing",
		Since: "2026-03-31T10:00:00Z", Time: "2026-03-31T11:00:00Z", Details: "s3: access denied",
		Text: "[FIRING] web1: snapshot failed (critical, since 2026-03-31T10:00:00Z): s3: access denied",
	}
	if r.msg != want {
		t.Errorf("repeat:\ngot  %+v\nwant %+v", r.msg, want)
	}

	waitTimer(t, clk, t0.Add(2*time.Hour))
	clk.Advance(30 * time.Minute)
	a.Resolve("snapshot-failed")
	a.Resolve("snapshot-failed")
	a.Resolve("never-fired")
	r = rc.expect(t, "snapshot-failed", alert.Resolved)
	if want := "[RESOLVED] web1: snapshot failed (after 1h30m0s): s3: access denied"; r.msg.Text != want || r.msg.Since != "2026-03-31T10:00:00Z" {
		t.Errorf("resolved: text %q since %s, want %q", r.msg.Text, r.msg.Since, want)
	}

	// Another alert at 11:30 repeats at 12:30; the resolved one does not
	// come again at 12:00.
	a.Fire("peer-down/web3", alert.PeerDown, alert.Critical, "")
	rc.expect(t, "peer-down/web3", alert.Firing)
	waitTimer(t, clk, t0.Add(150*time.Minute))
	clk.Advance(time.Hour)
	r = rc.expect(t, "peer-down/web3", alert.Firing)
	if r.msg.Time != "2026-03-31T12:30:00Z" {
		t.Errorf("repeat at %s, want 12:30", r.msg.Time)
	}
	if got := a.Active(); len(got) != 1 || got[0].Key != "peer-down/web3" {
		t.Errorf("Active() = %+v", got)
	}
}

// A receiver that is down is retried with doubling backoff, and gets the
// message once it is up; the outage is logged when it starts and ends.
func TestReceiverDown(t *testing.T) {
	addr, err := freeport.Addr() // below the ephemeral range: still free when listened on again below
	if err != nil {
		t.Fatal(err)
	}
	tok := tokenFile(t, "s3cret-token", 0o400)
	a, clk, logs := start(t, alert.Options{Webhooks: []alert.Webhook{{URL: "http://" + addr + "/secret-path", TokenFile: tok}}})

	a.Fire("repo", alert.RepositoryUnreachable, alert.Critical, "")
	waitTimer(t, clk, t0.Add(time.Second))
	if got := a.Stats()[0].Failed; got != 1 {
		t.Errorf("failed tries = %d, want 1", got)
	}
	clk.Advance(time.Second)
	waitTimer(t, clk, t0.Add(3*time.Second)) // 1s, then 2s
	if got := a.Stats()[0].Failed; got != 2 {
		t.Errorf("failed tries = %d, want 2", got)
	}

	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatalf("listen again on %s: %v", addr, err)
	}
	rc := &receiver{reqs: make(chan request, 10), answer: ok}
	rc.Server = &httptest.Server{Listener: ln, Config: &http.Server{Handler: rc}}
	rc.Start()
	t.Cleanup(rc.Close)
	clk.Advance(2 * time.Second)
	rc.expect(t, "repo", alert.Firing)
	waitFor(t, "sent", func() bool { return a.Stats()[0].Sent == 1 })

	if n := logs.count("failing"); n != 1 {
		t.Errorf("%d lines say the webhook is failing, want 1:\n%s", n, logs)
	}
	if n := logs.count("alert webhook recovered"); n != 1 {
		t.Errorf("%d lines say the webhook recovered, want 1:\n%s", n, logs)
	}
	if s := logs.String(); strings.Contains(s, "s3cret") || strings.Contains(s, "secret-path") {
		t.Errorf("the token or the URL's path is in the log:\n%s", s)
	}
}

// 500 is retried, the backoff doubling up to its cap.
func TestServerErrorRetried(t *testing.T) {
	rc := newReceiver(t, func(n int64, _ *http.Request) int {
		if n <= 4 {
			return http.StatusInternalServerError
		}
		return http.StatusNoContent
	})
	a, clk, logs := start(t, alert.Options{MaxBackoff: 4 * time.Second, Webhooks: []alert.Webhook{{URL: rc.URL}}})

	a.Fire("drill", alert.DrillOverdue, alert.Warning, "")
	at := t0
	for _, backoff := range []time.Duration{time.Second, 2 * time.Second, 4 * time.Second, 4 * time.Second} {
		rc.expect(t, "drill", alert.Firing)
		at = at.Add(backoff)
		waitTimer(t, clk, at)
		clk.Advance(backoff)
	}
	rc.expect(t, "drill", alert.Firing)
	waitFor(t, "sent", func() bool { return a.Stats()[0].Sent == 1 })
	if got := a.Stats()[0]; got.Failed != 4 || got.Rejected != 0 {
		t.Errorf("stats %+v, want 4 failed tries", got)
	}
	if n := logs.count("failing"); n != 1 || !strings.Contains(logs.String(), "HTTP status 500") {
		t.Errorf("%d lines say the webhook is failing, want 1 naming the status:\n%s", n, logs)
	}
}

// A webhook that stays down is logged when it starts failing and then at
// most every 10 minutes, not on every try.
func TestLongOutage(t *testing.T) {
	rc := newReceiver(t, func(int64, *http.Request) int { return http.StatusServiceUnavailable })
	a, clk, logs := start(t, alert.Options{MinBackoff: time.Minute, MaxBackoff: 4 * time.Minute, Webhooks: []alert.Webhook{{URL: rc.URL}}})

	a.Fire("a", alert.PeerDown, alert.Critical, "")
	at := t0
	for _, backoff := range []time.Duration{1, 2, 4, 4, 4, 4} { // tries at 0, 1, 3, 7, 11, 15 and 19 min
		rc.expect(t, "a", alert.Firing)
		at = at.Add(backoff * time.Minute)
		waitTimer(t, clk, at)
		clk.Advance(backoff * time.Minute)
	}
	rc.expect(t, "a", alert.Firing)
	waitTimer(t, clk, at.Add(4*time.Minute))
	if got := a.Stats()[0].Failed; got != 7 {
		t.Errorf("failed tries = %d, want 7", got)
	}
	if n, m := logs.count("alert webhook failing"), logs.count("still failing"); n != 1 || m != 1 {
		t.Errorf("%d lines say failing and %d still failing, want 1 and 1 (at 11 min):\n%s", n, m, logs)
	}
}

// 400 is not retried: the next request is the next message. Each refusal
// is logged once.
func TestClientErrorNotRetried(t *testing.T) {
	rc := newReceiver(t, func(int64, *http.Request) int { return http.StatusBadRequest })
	a, _, logs := start(t, alert.Options{Webhooks: []alert.Webhook{{URL: rc.URL}}})

	a.Fire("a", alert.LocalChanges, alert.Warning, "")
	rc.expect(t, "a", alert.Firing)
	a.Fire("b", alert.LocalChanges, alert.Warning, "")
	rc.expect(t, "b", alert.Firing)
	waitFor(t, "rejected", func() bool { return a.Stats()[0].Rejected == 2 })
	if got := a.Stats()[0]; got.Failed != 0 || got.Sent != 0 {
		t.Errorf("stats %+v, want 2 rejected only", got)
	}
	if n := logs.count("refused a message"); n != 2 || !strings.Contains(logs.String(), "status=400") {
		t.Errorf("%d refusals logged, want 2 with the status:\n%s", n, logs)
	}
}

// A webhook that does not answer neither slows Fire and Resolve nor the
// other webhooks; its queue stays bounded, dropping the oldest messages.
func TestSlowReceiver(t *testing.T) {
	release := make(chan struct{})
	slow := newReceiver(t, func(_ int64, r *http.Request) int {
		select {
		case <-release:
		case <-r.Context().Done():
		}
		return http.StatusOK
	})
	fast := newReceiver(t, ok)
	a, _, _ := start(t, alert.Options{QueueSize: 8, Webhooks: []alert.Webhook{
		{URL: slow.URL, Timeout: time.Hour},
		{URL: fast.URL},
	}})

	key := func(i int) string { return "peer-down/web" + string(rune('a'+i)) }
	a.Fire(key(0), alert.PeerDown, alert.Critical, "")
	slow.expect(t, key(0), alert.Firing) // now stuck in the slow one
	fast.expect(t, key(0), alert.Firing)
	for i := 1; i < 20; i++ {
		returns(t, func() { a.Fire(key(i), alert.PeerDown, alert.Critical, "") })
		fast.expect(t, key(i), alert.Firing)
	}
	returns(t, func() { a.Resolve(key(0)) })
	fast.expect(t, key(0), alert.Resolved)
	if got := a.Stats()[0]; got.Queued != 8 || got.Dropped != 12 || got.Sent != 0 {
		t.Errorf("slow webhook: %+v, want 8 queued and 12 dropped", got)
	}

	close(release) // the one in flight is answered; the rest follow
	for i := 13; i < 20; i++ {
		slow.expect(t, key(i), alert.Firing)
	}
	slow.expect(t, key(0), alert.Resolved)
	waitFor(t, "sent", func() bool { return a.Stats()[0].Sent == 9 })
	if got := a.Stats()[0]; got.Queued != 0 || got.Dropped != 12 {
		t.Errorf("slow webhook after: %+v", got)
	}
	if got := a.Stats()[1]; got.Sent != 21 || got.Dropped != 0 {
		t.Errorf("fast webhook: %+v, want 21 sent", got)
	}
}

// returns fails the test when fn does not return at once.
func returns(t *testing.T, fn func()) {
	t.Helper()
	done := make(chan struct{})
	go func() {
		defer close(done)
		fn()
	}()
	select {
	case <-done:
	case <-time.After(wait):
		t.Fatal("Fire or Resolve waits for a webhook")
	}
}

// A request that takes longer than the webhook's timeout (a receiver
// answering in 30 s) fails and is retried.
func TestTimeout(t *testing.T) {
	rc := newReceiver(t, func(n int64, r *http.Request) int {
		if n == 1 {
			select {
			case <-time.After(30 * time.Second):
			case <-r.Context().Done():
			}
		}
		return http.StatusOK
	})
	a, clk, logs := start(t, alert.Options{Webhooks: []alert.Webhook{{URL: rc.URL, Timeout: 50 * time.Millisecond}}})

	a.Fire("a", alert.SnapshotOverdue, alert.Warning, "")
	rc.expect(t, "a", alert.Firing)
	waitTimer(t, clk, t0.Add(time.Second))
	if !strings.Contains(logs.String(), "no answer within 50ms") {
		t.Errorf("the log does not name the timeout:\n%s", logs)
	}
	clk.Advance(time.Second)
	rc.expect(t, "a", alert.Firing)
	waitFor(t, "sent", func() bool { return a.Stats()[0].Sent == 1 })
	if got := a.Stats()[0].Failed; got != 1 {
		t.Errorf("failed tries = %d, want 1", got)
	}
}

// A token file others can read, or a missing or empty one, is refused at
// start with the file's name, never its content.
func TestTokenFile(t *testing.T) {
	tests := []struct {
		name, path, want string
	}{
		{"group-readable", tokenFile(t, "s3cret", 0o640), "is accessible by others (mode 0640); run: chmod 600"},
		{"world-readable", tokenFile(t, "s3cret", 0o604), "is accessible by others (mode 0604)"},
		{"missing", t.TempDir() + "/nope", "does not exist"},
		{"empty", tokenFile(t, " ", 0o600), "is empty"},
		{"two lines", tokenFile(t, "s3cret\nmore", 0o600), "want one line"},
		{"a space", tokenFile(t, "s3cret more", 0o600), "want one line of printable ASCII without spaces"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := alert.New(alert.Options{Webhooks: []alert.Webhook{{URL: "https://h/x"}, {URL: "https://h/y", TokenFile: tt.path}}})
			if err == nil || !strings.Contains(err.Error(), tt.want) || !strings.HasPrefix(err.Error(), "alert webhook 2: token file "+tt.path) {
				t.Fatalf("New: %v, want an error naming webhook 2 and %s: %s", err, tt.path, tt.want)
			}
			if strings.Contains(err.Error(), "s3cret") {
				t.Errorf("the error holds the token: %v", err)
			}
		})
	}
}

// Active lists alerts oldest first.
func TestActive(t *testing.T) {
	a, clk, _ := start(t, alert.Options{})
	a.Fire("b", alert.PeerDown, alert.Warning, "")
	clk.Advance(time.Minute)
	a.Fire("a", alert.PeerDown, alert.Warning, "")
	got := a.Active()
	if keys := []string{got[0].Key, got[1].Key}; !slices.Equal(keys, []string{"b", "a"}) || !got[1].Since.Equal(t0.Add(time.Minute)) {
		t.Errorf("Active() = %+v", got)
	}
}

// Run returns when its context ends, and runs only once.
func TestRunOnce(t *testing.T) {
	a, err := alert.New(alert.Options{})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if err := a.Run(ctx); err != nil {
		t.Errorf("Run: %v", err)
	}
	ctx, cancel = context.WithTimeout(t.Context(), time.Second)
	defer cancel()
	if err := a.Run(ctx); err == nil {
		t.Error("a second Run ran")
	}
}
