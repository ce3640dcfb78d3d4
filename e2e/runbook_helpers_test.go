package e2e

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"
)

// A runbook runs one scenario of docs/RECOVERY.md as the document writes
// it: the ```sh block that begins with "# runbook: NAME". The commands run
// in bash as they stand, with the document's paths mapped to the test's:
//
//	/var/www/html          the current node's folder
//	/etc/syncd/syncd.yaml  its configuration
//	/var/lib/syncd         its state directory
//	/srv/restore           a scratch directory of its own
//
// and in a working directory that holds data.key and index.key. The
// repository URL (s3://backups/web) is the test's MinIO. Comment lines
// steer the run; a reader sees them as the runbook's notes:
//
//	# on web2: …              the commands below run on web2
//	# shows: TEXT             the output of the commands just before
//	                          (since the last comment) contains TEXT
//	# edit: TEXT / # wait until: TEXT
//	                          a step a person does or waits for; the test
//	                          does it with the function registered for TEXT
//
// and "systemctl start|stop|reload|restart syncd" acts on the current
// node's daemon. Every other line is a shell command.
type runbook struct {
	t       *testing.T
	name    string
	nodes   map[string]*mnode
	env     []string // the repository's credentials
	work    string
	scratch map[string]string
	steps   map[string]func() // for "# edit:" and "# wait until:"
	// opsPaths names the node whose paths the operator's machine sees
	// in the document (the snapshots' paths); "": none.
	opsPaths string
	// subst replaces the document's examples with the test's values (the
	// time of a snapshot, say).
	subst map[string]string
	// node is the node the commands run on; "" is the operator's machine
	// (no folder of its own).
	node string
}

func newRunbook(t *testing.T, name string, env []string, r *repo, nodes ...*mnode) *runbook {
	rb := &runbook{t: t, name: name, nodes: map[string]*mnode{}, env: env, work: t.TempDir(),
		scratch: map[string]string{}, steps: map[string]func(){}}
	for _, n := range nodes {
		rb.nodes[n.name] = n
	}
	for _, k := range [][2]string{{r.dataKey, "data.key"}, {r.indexKey, "index.key"}} {
		b, err := os.ReadFile(k[0])
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(rb.work, k[1]), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return rb
}

// block returns the lines of RECOVERY.md's block "# runbook: name".
func (rb *runbook) block() []string {
	doc, err := os.ReadFile(filepath.Join("..", "docs", "RECOVERY.md"))
	if err != nil {
		rb.t.Fatal(err)
	}
	var lines []string
	in, found := false, false
	sc := bufio.NewScanner(bytes.NewReader(doc))
	for sc.Scan() {
		l := sc.Text()
		switch {
		case !in && l == "```sh":
			in, lines = true, nil
		case in && l == "```":
			if found {
				return lines
			}
			in = false
		case in && len(lines) == 0 && l == "# runbook: "+rb.name:
			found = true
			lines = append(lines, l)
		case in:
			lines = append(lines, l)
		}
	}
	rb.t.Fatalf("docs/RECOVERY.md has no ```sh block beginning with # runbook: %s", rb.name)
	return nil
}

var onNode = regexp.MustCompile(`^# on ([a-z0-9]+)\b`)

// run runs the block.
func (rb *runbook) run() {
	t := rb.t
	var seg []string // shell lines since the last run
	var out strings.Builder
	var exports []string
	flush := func() {
		if len(seg) == 0 {
			return
		}
		script := strings.Join(append(append([]string{"set -euo pipefail"}, exports...), seg...), "\n")
		out.Reset() // "# shows:" lines check the output of the commands just before them
		out.WriteString(rb.shell(script))
		seg = nil
	}
	for _, l := range rb.block() {
		trim := strings.TrimSpace(l)
		switch {
		case strings.HasPrefix(trim, "# runbook:"):
		case onNode.MatchString(trim):
			flush()
			rb.node = onNode.FindStringSubmatch(trim)[1]
			if rb.node != "ops" && rb.nodes[rb.node] == nil {
				t.Fatalf("runbook %s: %q names no node of the test", rb.name, trim)
			}
			if rb.node == "ops" {
				rb.node = ""
			}
		case strings.HasPrefix(trim, "# shows: "):
			flush()
			want := rb.mapPaths(strings.TrimPrefix(trim, "# shows: "))
			if !strings.Contains(out.String(), want) {
				t.Fatalf("runbook %s: the output does not show %q:\n%s", rb.name, want, out.String())
			}
		case strings.HasPrefix(trim, "# edit: "), strings.HasPrefix(trim, "# wait until: "):
			flush()
			step := rb.steps[trim]
			if step == nil {
				t.Fatalf("runbook %s: no step registered for %q", rb.name, trim)
			}
			step()
		case strings.HasPrefix(trim, "#"), trim == "":
		case strings.HasPrefix(trim, "systemctl "):
			flush()
			rb.systemctl(strings.Fields(trim)[1:])
		case strings.HasPrefix(trim, "export "):
			exports = append(exports, rb.mapPaths(l))
		default:
			seg = append(seg, rb.mapPaths(l))
		}
	}
	flush()
}

// shell runs script on the current node and returns its output.
func (rb *runbook) shell(script string) string {
	cmd := exec.Command("bash", "-c", script)
	cmd.Dir = rb.work
	path := binDir + ":" + filepath.Dir(tool(rb.t, "age-keygen")) + ":" + os.Getenv("PATH")
	cmd.Env = append(append(os.Environ(), "PATH="+path, "SYNCD_REPO=", "SYNCD_INDEX_KEY=", "SYNCD_IDENTITY="), rb.env...)
	var b bytes.Buffer
	cmd.Stdout, cmd.Stderr = &b, &b
	done := make(chan error, 1)
	if err := cmd.Start(); err != nil {
		rb.t.Fatal(err)
	}
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			rb.t.Fatalf("runbook %s on %s: %v\n%s\n--- output:\n%s", rb.name, rb.where(), err, script, b.String())
		}
	case <-time.After(3 * time.Minute):
		cmd.Process.Kill()
		rb.t.Fatalf("runbook %s on %s: still running after 3 minutes\n%s\n--- output:\n%s", rb.name, rb.where(), script, b.String())
	}
	rb.t.Logf("runbook %s on %s:\n%s\n%s", rb.name, rb.where(), script, b.String())
	return b.String()
}

func (rb *runbook) where() string {
	if rb.node == "" {
		return "ops"
	}
	return rb.node
}

// mapPaths maps the document's paths to the current node's.
func (rb *runbook) mapPaths(s string) string {
	for from, to := range rb.subst {
		s = strings.ReplaceAll(s, from, to)
	}
	n := rb.nodes[rb.node]
	if n == nil {
		n = rb.nodes[rb.opsPaths]
	}
	if n == nil {
		return s
	}
	sc := rb.scratch[n.name]
	if sc == "" {
		sc = filepath.Join(rb.t.TempDir(), "srv-restore")
		rb.scratch[n.name] = sc
	}
	return strings.NewReplacer("/var/www/html", n.folder, "/etc/syncd/syncd.yaml", n.cfg,
		"/var/lib/syncd", n.state, "/srv/restore", sc).Replace(s)
}

// systemctl acts on the current node's daemon.
func (rb *runbook) systemctl(args []string) {
	n := rb.nodes[rb.node]
	if n == nil || len(args) != 2 || args[1] != "syncd" {
		rb.t.Fatalf("runbook %s: systemctl %s on %s: not a syncd unit of a node", rb.name, strings.Join(args, " "), rb.where())
	}
	switch args[0] {
	case "start":
		rb.start(n)
	case "stop":
		n.stop(false)
	case "restart":
		n.stop(false)
		rb.start(n)
	case "reload":
		if n.cmd == nil {
			rb.t.Fatalf("runbook %s: systemctl reload syncd on %s: not running", rb.name, n.name)
		}
		// the daemon runs again with the new configuration when it logs
		// "syncd running" once more
		before := len(n.logLines("syncd running"))
		n.cmd.Process.Signal(syscall.SIGHUP)
		if !waitFor(converge, func() bool { return len(n.logLines("syncd running")) > before }) {
			rb.t.Fatalf("runbook %s: %s did not reload:\n%s", rb.name, n.name, n.logTail())
		}
		n.waitReady()
	default:
		rb.t.Fatalf("runbook %s: systemctl %s: unknown", rb.name, args[0])
	}
}

// start starts n's daemon and returns when systemd's start would: once
// every folder has finished its first scan (ready and idle) or has
// failed (Type=notify sends READY=1 then too).
func (rb *runbook) start(n *mnode) {
	n.launch()
	started := waitFor(converge, func() bool {
		if readyAndIdle(n.http) {
			return true
		}
		st, err := n.httpStatus()
		if err != nil {
			return false
		}
		for _, f := range st.Folders {
			if f.State == "failed" {
				return true
			}
		}
		return false
	})
	if !started {
		rb.t.Fatalf("runbook %s: %s did not start within %v:\n%s", rb.name, n.name, converge, n.logTail())
	}
}

// String names the runbook in messages.
func (rb *runbook) String() string { return fmt.Sprintf("runbook %s", rb.name) }
