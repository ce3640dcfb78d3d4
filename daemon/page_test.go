package daemon

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/syncd/syncd/transfer"
)

func TestPageRender(t *testing.T) {
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	seen := now.Add(-42 * time.Second)
	evil := `<script>alert(1)</script>`
	p := pageData{
		Nonce: "bm9uY2U=",
		Now:   now,
		Status: Status{
			Node: "web1" + evil,
			Folders: []FolderStatus{{ID: "www", State: "failed", Error: "disk " + evil, Files: 3, Bytes: 1536, Pending: -1,
				Failed: []string{"a", "b"}}},
			Peers: []transfer.PeerStatus{
				{Name: "web2", Connected: true, LastSeen: &seen, LagFiles: 2, LagBytes: 3 << 20, Behind: 7},
				{Name: "web3\"><b>", Error: "dial " + evil},
			},
		},
		Snapshot: &SnapshotInfo{Time: now.Add(-time.Hour), Result: "failed", Error: "repo " + evil},
		Alerts:   []string{"peer down " + evil},
	}
	var buf bytes.Buffer
	if err := pageTmpl.Execute(&buf, p); err != nil {
		t.Fatal(err)
	}
	page := buf.String()
	if strings.Count(page, "<script") != 1 || strings.Contains(page, "<b>") {
		t.Errorf("data reached the page as HTML:\n%s", page)
	}
	for _, want := range []string{
		`<span id="node">web1&lt;script&gt;alert(1)&lt;/script&gt;</span>`,
		`<span class="state failed">failed</span> <span class="reason">disk &lt;script&gt;`,
		`<td class="num">1.5 KiB</td><td class="num">scanning</td><td class="num">2</td>`,
		`<tr data-peer="web2"><td>web2</td><td class="conn connected">connected</td><td class="num">2 files, 3.0 MiB</td><td class="num">7</td><td title="2026-03-01 11:59:18 UTC">42s ago</td>`,
		`<td class="conn down">down</td>`,
		`<td>never</td><td class="error">dial &lt;script&gt;`,
		`data-peer="web3&#34;&gt;&lt;b&gt;"`,
		`<td>2026-03-01 11:00:00 UTC</td>`,
		`<li class="alert">peer down &lt;script&gt;`,
		`<script nonce="bm9uY2U=">`,
	} {
		if !strings.Contains(page, want) {
			t.Errorf("page lacks %s", want)
		}
	}

	p.Alerts, p.Snapshot, p.Status.Peers = nil, nil, nil
	buf.Reset()
	if err := pageTmpl.Execute(&buf, p); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`<li class="muted">none</li>`, `no peers`, `<tbody id="snapshot">
<tr><td class="muted">none</td></tr>`} {
		if !strings.Contains(buf.String(), want) {
			t.Errorf("page without alerts, peers and snapshot lacks %q", want)
		}
	}
}

func TestAlertLine(t *testing.T) {
	tests := []struct {
		in   any
		want string
	}{
		{map[string]any{"alert": "peer down", "since": "2026-03-01T12:00:00Z", "details": map[string]any{"peer": "web2"}},
			`alert: peer down, details: {"peer":"web2"}, since: 2026-03-01T12:00:00Z`},
		{map[string]any{"alert": "peer down", "text": "web1: peer web2 down"}, "web1: peer web2 down"},
		{"folder failed", "folder failed"},
		{3.0, "3"},
	}
	for _, tt := range tests {
		if got := alertLine(tt.in); got != tt.want {
			t.Errorf("alertLine(%v) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestPageFormats(t *testing.T) {
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	p := pageData{Now: now}
	for _, tt := range []struct {
		ago  time.Duration
		want string
	}{{-time.Second, "0s ago"}, {59 * time.Second, "59s ago"}, {90 * time.Second, "1m ago"}, {3 * time.Hour, "3h ago"}, {50 * time.Hour, "2d ago"}} {
		at := now.Add(-tt.ago)
		if got := p.Ago(&at); got != tt.want {
			t.Errorf("Ago(now-%v) = %q, want %q", tt.ago, got, tt.want)
		}
	}
	for n, want := range map[int64]string{0: "0 B", 1023: "1023 B", 1024: "1.0 KiB", 5 << 30: "5.0 GiB"} {
		if got := p.Bytes(n); got != want {
			t.Errorf("Bytes(%d) = %q, want %q", n, got, want)
		}
	}
}
