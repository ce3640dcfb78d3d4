package e2e

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// TestSelection: --host, --path, --tag and --time choose snapshots the
// same way on snapshots, ls, restore, verify, drill and forget; "latest"
// is the newest they select; snapshots lists them grouped by host;
// syncd snapshot --tag a,b stores two tags. A --host that no snapshot has
// is one line and exit 1 on every command, and forget removes nothing.
func TestSelection(t *testing.T) {
	r := newRepo(t)
	root := t.TempDir()
	www, logs := filepath.Join(root, "www"), filepath.Join(root, "logs")
	for _, d := range []string{www, logs} {
		os.MkdirAll(d, 0o755)
	}
	write := func(dir, body string) {
		t.Helper()
		if err := os.WriteFile(filepath.Join(dir, "f.txt"), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	snap := func(host, at string, tags []string, path string) {
		t.Helper()
		args := append([]string{"snapshot"}, r.flags("--host", host, "--time", at)...)
		for _, tag := range tags {
			args = append(args, "--tag", tag)
		}
		ok(t, nil, "syncd", append(args, path)...)
	}
	write(www, "web2 www")
	snap("web2", "2026-11-30 09:00:00", []string{"daily"}, www)
	write(www, "web1 www old")
	snap("web1", "2026-11-30 10:00:00", []string{"daily,deploy", "daily"}, www)
	write(logs, "web1 logs")
	snap("web1", "2026-11-30 11:00:00", []string{"hourly"}, logs)
	write(www, "web1 www new")
	snap("web1", "2026-11-30 12:00:00", []string{" manual "}, www)

	type snapJSON struct {
		ShortID, Host string
		Tags, Paths   []string
	}
	list := func(args ...string) []snapJSON {
		t.Helper()
		var s []snapJSON
		out := ok(t, nil, "restore", append(append([]string{"snapshots", "--json"}, r.flags()...), args...)...)
		if err := json.Unmarshal([]byte(out), &s); err != nil {
			t.Fatalf("snapshots --json: %v\n%s", err, out)
		}
		return s
	}
	all := list()
	if len(all) != 4 {
		t.Fatalf("snapshots: %d, want 4: %+v", len(all), all)
	}
	// grouped by host (web1 first), oldest first within a host
	var order []string
	for _, s := range all {
		order = append(order, s.Host+":"+strings.Join(s.Tags, "+"))
	}
	if want := []string{"web1:daily+deploy", "web1:hourly", "web1:manual", "web2:daily"}; !slices.Equal(order, want) {
		t.Errorf("snapshots in order %v, want %v (--tag a,b is two tags, given twice is one, spaces dropped)", order, want)
	}
	text := ok(t, nil, "restore", append([]string{"snapshots"}, r.flags()...)...)
	lines := strings.Split(strings.TrimSpace(text), "\n")
	if len(lines) != 7 || lines[4] != "" || !strings.Contains(lines[3], "web1") || !strings.Contains(lines[5], "web2") {
		t.Errorf("snapshots text: want web1's 3 rows, a blank line, web2's row:\n%s", text)
	}

	count := func(args ...string) int { t.Helper(); return len(list(args...)) }
	for _, c := range []struct {
		args []string
		want int
	}{
		{[]string{"--host", "web1"}, 3},
		{[]string{"--host", "web1", "--host", "web2"}, 4},
		{[]string{"--tag", "daily"}, 2},
		{[]string{"--tag", "daily,deploy"}, 1},
		{[]string{"--tag", "hourly", "--tag", "manual"}, 2},
		{[]string{"--path", www}, 3},
		{[]string{"--path", logs + "/"}, 1},
		{[]string{"--host", "web1", "--time", "2026-11-30 11:00"}, 2},
	} {
		if got := count(c.args...); got != c.want {
			t.Errorf("snapshots %v: %d snapshots, want %d", c.args, got, c.want)
		}
	}

	restored := func(args ...string) string {
		t.Helper()
		target := filepath.Join(t.TempDir(), "r")
		ok(t, nil, "restore", append(append([]string{"latest", "--target", target}, r.flags("--identity", r.dataKey)...), args...)...)
		var got []string
		for _, d := range []string{www, logs} {
			if b, err := os.ReadFile(filepath.Join(target, d, "f.txt")); err == nil {
				got = append(got, string(b))
			}
		}
		return strings.Join(got, "|")
	}
	for _, c := range []struct {
		args []string
		want string
	}{
		{nil, "web1 www new"},
		{[]string{"--host", "web2"}, "web2 www"},
		{[]string{"--tag", "deploy"}, "web1 www old"},
		{[]string{"--path", logs}, "web1 logs"},
		{[]string{"--host", "web1", "--path", www, "--time", "2026-11-30 11:30"}, "web1 www old"},
	} {
		if got := restored(c.args...); got != c.want {
			t.Errorf("restore latest %v: %q, want %q", c.args, got, c.want)
		}
	}
	if out := ok(t, nil, "restore", append([]string{"ls", "latest", "--tag", "hourly"}, r.flags()...)...); !strings.Contains(out, logs) || strings.Contains(out, www) {
		t.Errorf("ls latest --tag hourly: want the logs snapshot\n%s", out)
	}
	if out := ok(t, nil, "restore", append([]string{"verify", "--host", "web2"}, r.flags()...)...); !strings.HasPrefix(out, "1 snapshots") {
		t.Errorf("verify --host web2: want 1 snapshot checked\n%s", out)
	}
	var rep struct {
		Snapshots []struct{ Host string }
	}
	out := ok(t, nil, "restore", append([]string{"drill", "--no-record", "--json", "--tag", "daily"}, r.flags("--identity", r.dataKey)...)...)
	if err := json.Unmarshal([]byte(out), &rep); err != nil || len(rep.Snapshots) != 2 {
		t.Errorf("drill --tag daily: want web1's and web2's daily snapshots: %v\n%s", err, out)
	}

	// a --host that matches nothing: one line, exit 1, on every command
	before := snapshotIDs(t, r)
	for _, args := range [][]string{
		{"snapshots"},
		{"ls", "latest"},
		{"latest", "--target", filepath.Join(t.TempDir(), "r"), "--identity", r.dataKey},
		{"dump", "latest", "/", "--identity", r.dataKey},
		{"verify"},
		{"drill", "--no-record", "--identity", r.dataKey},
	} {
		res := run(t, nil, "restore", append(append(args, r.flags()...), "--host", "web9")...)
		oneLine(t, "restore "+args[0]+" --host web9", res, 1, "no snapshot of host web9", "web1, web2")
		if res.stdout != "" {
			t.Errorf("restore %s --host web9 wrote to stdout: %q", args[0], res.stdout)
		}
	}
	res := run(t, nil, "syncd", append([]string{"forget", "--keep-last", "1", "--host", "web9"}, r.flags()...)...)
	oneLine(t, "forget --host web9", res, 1, "no snapshot of host web9", "nothing was removed")
	// the other selections that leave nothing are errors too
	res = run(t, nil, "restore", append([]string{"ls", "latest", "--tag", "weekly"}, r.flags()...)...)
	oneLine(t, "ls latest --tag weekly", res, 1, "no snapshot tagged weekly")
	res = run(t, nil, "restore", append([]string{"ls", "0000", "--host", "web1"}, r.flags()...)...)
	oneLine(t, "ls ID --host", res, 2, "give latest instead of an ID")
	if got := snapshotIDs(t, r); !slices.Equal(got, before) {
		t.Errorf("snapshots after the refused commands: %v, want %v", got, before)
	}
	// the daemon snapshots as configured: --tag with --config is refused
	res = run(t, nil, "syncd", "snapshot", "--config", filepath.Join(root, "none.yaml"), "--tag", "x")
	oneLine(t, "snapshot --config --tag", res, 2, "--tag is not taken with --config")
}
