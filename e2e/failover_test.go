package e2e

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"
)

// TestFailover runs the failures operators are told to rehearse
// (docs/RECOVERY.md) on one fleet of three send-receive nodes
// (failover_helpers_test.go), one after the other: a node killed and
// restarted, a node cut off the network for 30 s, the repository gone
// during scheduled snapshots, a replica's disk full, a node's content
// disk unmounted under it. Each scenario checks that the alert reaches
// the webhook and is resolved after healing, that status, /readyz or
// /metrics show the fault, that the nodes converge, and that no file
// written anywhere is lost; it prints one line
//
//	FAILOVER scenario=NAME alert_s=S resolve_s=S converge_s=S
//
// with the seconds from the fault to its first alert at the webhook, and
// from the healing to the last alert resolved and to every node in step.
// The disk scenarios need root (CI runs as root).
func TestFailover(t *testing.T) {
	root := os.Geteuid() == 0
	if !root && os.Getenv("CI") == "true" {
		t.Fatal("TestFailover needs root under CI (to mount a tmpfs); CI runs as root")
	}
	f := newFleet(t, root)
	for _, s := range []struct {
		name string
		run  func(*testing.T, *fleet) measured
		root bool
	}{
		{"crash", crashScenario, false},
		{"partition", partitionScenario, false},
		{"s3-outage", s3OutageScenario, false},
		{"disk-full", diskFullScenario, true},
		{"unmount", unmountScenario, true},
	} {
		t.Run(s.name, func(t *testing.T) {
			if s.root {
				requireRoot(t, "the "+s.name+" scenario")
			}
			f.bind(t)
			defer f.bind(f.t)
			f.settled(t)
			m := s.run(t, f)
			f.noneLost(t)
			m.name = s.name
			fmt.Println(m.line())
		})
	}
}

// crash: c is killed (SIGKILL) right after files were written to it,
// a and b write meanwhile; a and b alert "peer down" and show c
// disconnected; once c is started again, everything written on either
// side is on every node.
func crashScenario(t *testing.T, f *fleet) measured {
	a, b, c := f.node["a"], f.node["b"], f.node["c"]
	var m measured
	for i := range 3 { // not sent yet, perhaps not even indexed: c's scan at its start finds them
		if err := f.files.write(c, fmt.Sprintf("crash/c/last-%d.txt", i), []byte(strings.Repeat("c's last words ", 10+i))); err != nil {
			t.Fatal(err)
		}
	}
	c.stop(true)
	m.fault = time.Now()
	defer func() {
		if c.cmd == nil {
			f.launch(c)
		}
	}()
	w := f.startWriters(t, "crash", a, b)
	defer w.end()
	m.alert = firstAt(f.hook.waitAlert(t, m.fault, "a", "peer-down/c", "firing"), f.hook.waitAlert(t, m.fault, "b", "peer-down/c", "firing"))
	for _, n := range []*mnode{a, b} {
		if v, ok := metric(n, "syncd_peer_connected", `peer="c"`); !ok || v != 0 {
			t.Errorf("%s: syncd_peer_connected{peer=\"c\"} %v (found %v) while c is down, want 0", n.name, v, ok)
		}
	}
	w.end()
	f.launch(c)
	m.heal = time.Now()
	waitSame(t, f.ns...)
	m.converged = time.Now()
	m.resolved = lastAt(f.hook.waitAlert(t, m.heal, "a", "peer-down/c", "resolved"), f.hook.waitAlert(t, m.heal, "b", "peer-down/c", "resolved"))
	if code, body := readyz(c); code != 200 {
		t.Errorf("c's /readyz once in step again: %d %s", code, body)
	}
	return m
}

// partition: every link to and from c is blackholed for 30 s (a cable
// pulled: nothing answers, nothing is refused) while all three write, a
// file c had is deleted on c, and a and c edit one file each their way.
// Both sides alert "peer down" and show the other disconnected; after
// the healing the nodes converge, the delete included, and the edit that
// lost is kept as a conflict copy.
func partitionScenario(t *testing.T, f *fleet) measured {
	a, b, c := f.node["a"], f.node["b"], f.node["c"]
	var m measured
	if err := f.files.write(a, "partition/doomed.txt", []byte("deleted on c while apart\n")); err != nil {
		t.Fatal(err)
	}
	a.write("partition/shared.txt", []byte("before the partition\n"))
	waitSame(t, f.ns...)
	cut := []string{"a>c", "b>c", "c>a", "c>b"}
	for _, l := range cut {
		f.links[l].Blackhole()
	}
	m.fault = time.Now()
	healed := false
	heal := func() {
		for _, l := range cut {
			f.links[l].Heal()
		}
		healed = true
	}
	defer func() {
		if !healed {
			heal()
		}
	}()
	w := f.startWriters(t, "partition", a, b, c)
	defer w.end()
	a.write("partition/shared.txt", []byte("a's side of the partition\n"))
	c.write("partition/shared.txt", []byte("c's side of the partition, longer\n"))
	if err := f.files.remove(c, "partition/doomed.txt"); err != nil {
		t.Fatal(err)
	}
	fired := []hookMsg{
		f.hook.waitAlert(t, m.fault, "a", "peer-down/c", "firing"),
		f.hook.waitAlert(t, m.fault, "b", "peer-down/c", "firing"),
		f.hook.waitAlert(t, m.fault, "c", "peer-down/a", "firing"),
		f.hook.waitAlert(t, m.fault, "c", "peer-down/b", "firing"),
	}
	m.alert = firstAt(fired...)
	for _, side := range []struct {
		n     *mnode
		peers []string
	}{{a, []string{"c"}}, {b, []string{"c"}}, {c, []string{"a", "b"}}} {
		st, err := side.n.httpStatus()
		if err != nil {
			t.Fatalf("%s: %v", side.n.name, err)
		}
		for _, name := range side.peers {
			if p, _ := st.peer(name); p.Connected || p.Error == "" {
				t.Errorf("%s: status of peer %s during the partition: %+v, want disconnected with an error", side.n.name, name, p)
			}
			if v, ok := metric(side.n, "syncd_peer_connected", fmt.Sprintf("peer=%q", name)); !ok || v != 0 {
				t.Errorf("%s: syncd_peer_connected{peer=%q} %v (found %v) during the partition, want 0", side.n.name, name, v, ok)
			}
		}
		if p, _ := st.peer(map[string]string{"a": "b", "b": "a", "c": "a"}[side.n.name]); side.n != c && !p.Connected {
			t.Errorf("%s: lost its peer on the same side of the partition: %+v", side.n.name, p)
		}
	}
	time.Sleep(time.Until(m.fault.Add(30 * time.Second))) // the partition lasts 30 s, whatever is seen sooner
	w.end()
	heal()
	m.heal = time.Now()
	waitSame(t, f.ns...)
	m.converged = time.Now()
	m.resolved = lastAt(
		f.hook.waitAlert(t, m.heal, "a", "peer-down/c", "resolved"),
		f.hook.waitAlert(t, m.heal, "b", "peer-down/c", "resolved"),
		f.hook.waitAlert(t, m.heal, "c", "peer-down/a", "resolved"),
		f.hook.waitAlert(t, m.heal, "c", "peer-down/b", "resolved"),
	)
	for _, n := range f.ns {
		cs := n.contents("partition/shared")
		if len(cs) != 2 || !hasContent(cs, "a's side of the partition\n") || !hasContent(cs, "c's side of the partition, longer\n") {
			t.Errorf("%s: the file edited on both sides, with its conflict copies: %q; want both edits kept, one as a conflict copy", n.name, cs)
		}
	}
	return m
}

// s3-outage: the link to MinIO is cut (connections refused, as with
// MinIO down) while all three write; the next scheduled snapshot of each
// node fails, "snapshot failed" is sent, the repository shows
// unreachable in /metrics and status --check is critical, while /readyz
// gives no repository reason for 503 (a backup outage does not take web
// nodes out of rotation).
// Once healed, each node's next scheduled snapshot holds every file.
func s3OutageScenario(t *testing.T, f *fleet) measured {
	var m measured
	if !waitFor(converge, func() bool {
		for _, n := range f.ns {
			if s := lastSnapshot(n); s == nil || s.Result != "ok" {
				return false
			}
		}
		return true
	}) {
		t.Fatalf("not every node has a scheduled snapshot saved before the outage")
	}
	f.s3.Cut()
	m.fault = time.Now()
	defer f.s3.Heal()
	w := f.startWriters(t, "s3", f.ns...)
	defer w.end()
	var fired []hookMsg
	for _, n := range f.ns {
		msg := f.hook.waitAlert(t, m.fault, n.name, "snapshot-failed", "firing")
		if msg.Alert != "snapshot failed" || msg.Severity != "critical" {
			t.Errorf("%s: snapshot failed alert: %+v", n.name, msg)
		}
		fired = append(fired, msg)
		if v, ok := metric(n, "syncd_repository_reachable"); !ok || v != 0 {
			t.Errorf("%s: syncd_repository_reachable %v (found %v) after a failed snapshot, want 0", n.name, v, ok)
		}
		// c may lag behind the writers (max_lag 2 s): the repository is
		// no reason to be out of rotation
		if code, body := readyz(n); code != 200 && (code != 503 || strings.Contains(body, "snapshot") || strings.Contains(body, "repository")) {
			t.Errorf("%s: /readyz during the repository outage: %d %s, want 200 or a reason other than the repository", n.name, code, body)
		}
	}
	m.alert = firstAt(fired...)
	if st := run(t, nil, "syncd", "status", "--config", f.node["a"].cfg, "--check"); st.code != 2 || !strings.Contains(st.stdout, "snapshot") {
		t.Errorf("status --check during the repository outage: %s", st)
	}
	w.end()
	f.s3.Heal()
	m.heal = time.Now()
	waitSame(t, f.ns...)
	inStep := time.Now()
	// converged: every node has saved a snapshot taken once in step
	if !waitFor(converge, func() bool {
		for _, n := range f.ns {
			if s := lastSnapshot(n); s == nil || s.Result != "ok" || s.Time.Before(inStep) {
				return false
			}
		}
		return true
	}) {
		t.Fatalf("not every node saved a snapshot within %v of the repository's return", converge)
	}
	m.converged = time.Now()
	var resolved []hookMsg
	for _, n := range f.ns {
		resolved = append(resolved, f.hook.waitAlert(t, m.heal, n.name, "snapshot-failed", "resolved"))
		if v, _ := metric(n, "syncd_repository_reachable"); v != 1 {
			t.Errorf("%s: syncd_repository_reachable %v after a snapshot saved, want 1", n.name, v)
		}
	}
	m.resolved = lastAt(resolved...)
	f.backedUp(t, inStep)
	// A node that probed the repository during the outage (once a
	// minute) alerted "repository unreachable" too; its snapshot saved
	// since resolves that, without waiting for the next probe.
	for _, n := range f.ns {
		if f.hook.sent(m.fault, n.name, "repository-unreachable", "firing") {
			if msg := f.hook.waitAlert(t, m.heal, n.name, "repository-unreachable", "resolved"); msg.at.After(m.converged.Add(5 * time.Second)) {
				t.Errorf("%s: repository unreachable resolved %.1f s after its snapshot was saved, want at its next check",
					n.name, msg.at.Sub(m.converged).Seconds())
			}
		}
	}
	return m
}

// backedUp fails t unless the newest snapshot of each node, taken after
// since, lists every file of the ledger below the node's folder.
func (f *fleet) backedUp(t *testing.T, since time.Time) {
	t.Helper()
	var snaps []struct {
		ID, Host string
		Time     time.Time
	}
	out := ok(t, f.direct, "restore", append([]string{"snapshots", "--json"}, f.repo.flags()...)...)
	if err := json.Unmarshal([]byte(out), &snaps); err != nil {
		t.Fatalf("restore snapshots --json: %v", err)
	}
	for _, n := range f.ns {
		id := ""
		var at time.Time
		for _, s := range snaps {
			if s.Host == n.name && s.Time.After(at) {
				id, at = s.ID, s.Time
			}
		}
		if id == "" || at.Before(since.Truncate(time.Second)) {
			t.Errorf("%s: no snapshot since %s in the repository (newest %s)", n.name, since.Format(time.RFC3339), at)
			continue
		}
		has := map[string]bool{}
		out := ok(t, f.direct, "restore", append([]string{"ls", id, n.folder, "--json"}, f.repo.flags()...)...)
		for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
			var e struct{ Path, Type string }
			if err := json.Unmarshal([]byte(line), &e); err != nil {
				t.Fatalf("restore ls --json: %v: %q", err, line)
			}
			if rel, err := filepath.Rel(n.folder, e.Path); err == nil && e.Type == "file" {
				has[filepath.ToSlash(rel)] = true
			}
		}
		var missing []string
		files, gone := f.files.copy()
		for p := range files {
			if !has[p] {
				missing = append(missing, p+": missing")
			}
		}
		for p := range gone {
			if has[p] {
				missing = append(missing, p+": deleted, but there")
			}
		}
		sort.Strings(missing)
		if len(missing) > 0 {
			t.Errorf("%s: snapshot %s of %s, after the outage, does not hold what the node holds:\n%s", n.name, id[:8], at, strings.Join(missing, "\n"))
		}
	}
}

// disk-full: c's disk is filled (by a file beside its folder) while a
// and b write; c cannot apply their changes: its folder is degraded
// ("folder failed", warning, "disk full"), its status shows the lag and
// /readyz answers 503 once it is behind by more than max_lag (2 s). Once
// the file is removed, c catches up (its retries back off from 2 s).
func diskFullScenario(t *testing.T, f *fleet) measured {
	a, b, c := f.node["a"], f.node["b"], f.node["c"]
	var m measured
	ballast := filepath.Join(f.disk["c"], "ballast")
	start := time.Now()
	fill(t, ballast)
	m.fault = time.Now()
	t.Logf("c's disk filled in %v", m.fault.Sub(start).Round(time.Millisecond))
	defer os.Remove(ballast)
	w := f.startWriters(t, "diskfull", a, b)
	defer w.end()
	msg := f.hook.waitAlert(t, m.fault, "c", "folder/data", "firing")
	m.alert = msg.at
	if msg.Alert != "folder failed" || msg.Severity != "warning" || !strings.Contains(msg.Details, "disk full") {
		t.Errorf("c's alert for its full disk: %+v, want folder failed, warning, disk full", msg)
	}
	var body string
	if !waitFor(converge, func() bool {
		var code int
		code, body = readyz(c)
		return code == 503 && strings.Contains(body, "behind peer")
	}) {
		t.Errorf("c's /readyz while it cannot apply its peers' changes: %q, want 503 behind peer", body)
	}
	t.Logf("c: /readyz %q %.1f s after the fault", body, time.Since(m.fault).Seconds())
	var lag mpeerStatus
	if !waitFor(converge, func() bool { lag, _ = c.status().peer("a"); return lag.LagFiles > 0 }) {
		t.Errorf("c's status shows no lag behind a while its disk is full: %+v", lag)
	}
	if v, ok := metric(c, "syncd_peer_apply_errors_total", `reason="disk-full"`); !ok || v == 0 {
		t.Errorf("c: syncd_peer_apply_errors_total{reason=\"disk-full\"} %v (found %v), want > 0", v, ok)
	}
	if !c.alive() {
		t.Fatalf("c is down with its disk full; log:\n%s", c.logTail())
	}
	w.end()
	if err := os.Remove(ballast); err != nil {
		t.Fatal(err)
	}
	m.heal = time.Now()
	waitSame(t, f.ns...)
	m.converged = time.Now()
	m.resolved = f.hook.waitAlert(t, m.heal, "c", "folder/data", "resolved").at
	if !waitFor(converge, func() bool { code, _ := readyz(c); return code == 200 }) {
		code, body := readyz(c)
		t.Errorf("c's /readyz once caught up: %d %s", code, body)
	}
	return m
}

// unmount: b's content disk is unmounted under the running daemon
// (umount -l) while a and c write; b's folder fails ("folder failed",
// critical), /readyz answers 503, and b sends no delete: a and c keep
// every file. Once the disk is mounted again, b catches up.
func unmountScenario(t *testing.T, f *fleet) measured {
	a, b, c := f.node["a"], f.node["b"], f.node["c"]
	var m measured
	data := filepath.Join(f.disk["b"], "data")
	umountLazy(t, b.folder)
	m.fault = time.Now()
	mounted := false
	remount := func() {
		mount(t, "--bind", data, b.folder)
		mounted = true
	}
	defer func() {
		if !mounted {
			exec.Command("mount", "--bind", data, b.folder).Run()
		}
	}()
	w := f.startWriters(t, "unmount", a, c)
	defer w.end()
	msg := f.hook.waitAlert(t, m.fault, "b", "folder/data", "firing")
	m.alert = msg.at
	if msg.Alert != "folder failed" || msg.Severity != "critical" || !strings.Contains(msg.Details, "mounted") && !strings.Contains(msg.Details, "device") {
		t.Errorf("b's alert for its unmounted disk: %+v, want folder failed, critical, naming the mount or the device", msg)
	}
	var body string
	if !waitFor(converge, func() bool {
		var code int
		code, body = readyz(b)
		return code == 503 && strings.Contains(body, "folder data failed")
	}) {
		t.Errorf("b's /readyz with its disk unmounted: %q, want 503 folder data failed", body)
	}
	if names, _ := os.ReadDir(b.folder); len(names) != 0 {
		t.Errorf("b wrote into the mount point of its disk: %v", names)
	}
	w.end()
	remount()
	m.heal = time.Now()
	waitSame(t, f.ns...)
	m.converged = time.Now()
	m.resolved = f.hook.waitAlert(t, m.heal, "b", "folder/data", "resolved").at
	if code, body := readyz(b); code != 200 {
		t.Errorf("b's /readyz once its disk is back and in step: %d %s", code, body)
	}
	return m
}
