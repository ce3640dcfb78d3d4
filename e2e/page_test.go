package e2e

import (
	"context"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// pageDown bounds the time from kill -9 of a peer to the status page
// showing it down. The puller's open long poll fails at once when the
// peer's process dies; the page refreshes from /status every 3 s.
const pageDown = 30 * time.Second

// browser starts headless chromium (Debian's; make tools installs it) on
// a temporary profile and returns a chromedp context for one tab.
func browser(t *testing.T) context.Context {
	t.Helper()
	exe := tool(t, "chromium")
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(exe),
		chromedp.Headless,
		chromedp.NoSandbox, // the tests may run as root
		chromedp.DisableGPU,
		chromedp.UserDataDir(t.TempDir()),
	)
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelTab := chromedp.NewContext(actx)
	t.Cleanup(func() { cancelTab(); cancelAlloc() })
	if err := chromedp.Do(ctx); err != nil { // starts the browser
		t.Fatalf("start chromium %s: %v", exe, err)
	}
	return ctx
}

// waitPage waits until the page in ctx has an element matching sel, for
// at most d; on timeout it fails the test with the page's body.
func waitPage(t *testing.T, ctx context.Context, d time.Duration, sel, what string) {
	t.Helper()
	wctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	if err := chromedp.Do(wctx, chromedp.WaitVisible(chromedp.CSS(sel))); err != nil {
		body, _ := chromedp.Run(ctx, chromedp.Text(chromedp.CSS("body")))
		t.Fatalf("status page: %s not shown within %v (%v); the page reads:\n%s", what, d, err, body)
	}
}

// TestStatusPage opens node a's status page in headless chromium: it
// shows peer b connected; after kill -9 of b the page, refreshing itself
// from /status, shows b down.
func TestStatusPage(t *testing.T) {
	ctx := browser(t)
	ns := mesh(t, "send-receive", "a", "b")
	a, b := ns[0], ns[1]
	a.write("index.html", []byte("<h1>hello</h1>"))
	a.start()
	b.start()

	// The first view is rendered by the daemon: it reads without JavaScript.
	resp, err := http.Get("http://" + a.http + "/")
	if err != nil {
		t.Fatal(err)
	}
	html, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.Contains(resp.Header.Get("Content-Type"), "text/html") ||
		!strings.Contains(string(html), `<tr data-peer="b">`) || !strings.Contains(string(html), `<span id="node">a</span>`) {
		t.Fatalf("GET / without JavaScript: %s %s\n%s", resp.Status, resp.Header.Get("Content-Type"), html)
	}

	if err := chromedp.Do(ctx, chromedp.Navigate("http://"+a.http+"/")); err != nil {
		t.Fatalf("open the status page: %v", err)
	}
	if node, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS("#node"))); err != nil || node != "a" {
		t.Fatalf("status page node name: %q, %v", node, err)
	}
	waitPage(t, ctx, converge, `#peers tr[data-peer="b"] td.conn.connected`, "peer b connected")
	waitPage(t, ctx, converge, `#folders tr[data-folder="data"] .state.ok`, "folder data ok")
	if alerts, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS("#alerts"))); err != nil || strings.TrimSpace(alerts) != "none" {
		t.Errorf("active alerts with both nodes up: %q, %v", alerts, err)
	}

	b.stop(true)
	killed := time.Now()
	waitPage(t, ctx, pageDown, `#peers tr[data-peer="b"] td.conn.down`, "peer b down after kill -9")
	t.Logf("peer b shown down %v after kill -9", time.Since(killed).Round(100*time.Millisecond))

	if refresh, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS("#refresh"))); err != nil || !strings.HasPrefix(refresh, "as of ") {
		t.Errorf("refresh line: %q, %v", refresh, err)
	}
}
