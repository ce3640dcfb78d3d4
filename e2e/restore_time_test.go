package e2e

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestRestoreAtTime: after a bad deploy, "latest" with --time is the
// newest snapshot taken at or before that time, and with --host that
// host's; ls takes the same flags. Bad values are one-line errors.
func TestRestoreAtTime(t *testing.T) {
	r := newRepo(t)
	src := filepath.Join(t.TempDir(), "www")
	os.MkdirAll(src, 0o755)
	write := func(body string) {
		if err := os.WriteFile(filepath.Join(src, "index.php"), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	// snapshot times are given (--time), whole seconds apart: restore
	// snapshots shows seconds, and --time of a second means all of it
	snapshot := func(host, at string) {
		ok(t, nil, "syncd", append(append([]string{"snapshot"}, r.flags("--host", host, "--time", at)...), src)...)
	}
	write("good")
	snapshot("web1", "2026-11-30 10:00:00")
	write("good, web2")
	snapshot("web2", "2026-11-30 10:00:01")
	var snaps []struct{ ID, Time, Host string }
	if err := json.Unmarshal([]byte(ok(t, nil, "restore", append([]string{"snapshots", "--json"}, r.flags()...)...)), &snaps); err != nil || len(snaps) != 2 {
		t.Fatalf("restore snapshots --json: %v %v", snaps, err)
	}
	good, err := time.Parse(time.RFC3339Nano, snaps[1].Time)
	if err != nil {
		t.Fatal(err)
	}
	// the deploy that went wrong, seconds later
	write("defaced")
	snapshot("web1", "2026-11-30 10:00:05")

	restored := func(args ...string) string {
		t.Helper()
		target := filepath.Join(t.TempDir(), "r")
		ok(t, nil, "restore", append(append([]string{"latest", "--target", target}, r.flags("--identity", r.dataKey)...), args...)...)
		b, err := os.ReadFile(filepath.Join(target, src, "index.php"))
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	at := good.Format(time.RFC3339Nano)
	if got := restored(); got != "defaced" {
		t.Errorf("restore latest: %q, want the newest", got)
	}
	if got := restored("--time", at); got != "good, web2" {
		t.Errorf("restore latest --time %s: %q, want the snapshot taken then", at, got)
	}
	if got := restored("--time", at, "--host", "web1"); got != "good" {
		t.Errorf("restore latest --time %s --host web1: %q, want web1's before then", at, got)
	}
	if got := restored("--time", good.Local().Format("2006-01-02 15:04:05")); got != "good, web2" {
		t.Errorf("restore latest --time in local time, as restore snapshots shows it: %q", got)
	}
	out := ok(t, nil, "restore", append([]string{"ls", "latest", "--time", at, "--host", "web2"}, r.flags()...)...)
	if !strings.Contains(out, "index.php") {
		t.Errorf("restore ls latest --time --host: %s", out)
	}

	bad := func(what string, code int, want string, args ...string) {
		t.Helper()
		res := run(t, nil, "restore", append(append([]string{"latest", "--target", filepath.Join(t.TempDir(), "r")}, r.flags("--identity", r.dataKey)...), args...)...)
		oneLine(t, what, res, code, want)
	}
	bad("--time that is no time", 2, `--time "yesterday": not a time`, "--time", "yesterday")
	bad("--time before every snapshot", 1, "no snapshot taken at or before 2001-01-01", "--time", "2001-01-01 00:00")
	bad("--host with no snapshot", 1, "no snapshot of host web9", "--host", "web9")
	res := run(t, nil, "restore", append([]string{snaps[0].ID[:8], "--time", at, "--target", t.TempDir()}, r.flags("--identity", r.dataKey)...)...)
	oneLine(t, "--time with a snapshot ID", res, 2, "give latest instead of an ID")
}
