package e2e

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// versionLine is the line `syncd version` prints: program, module version
// or devel, then in parentheses the short revision, "modified", the commit
// time (each only when the build recorded it) and the Go version.
var versionLine = regexp.MustCompile(`^(syncd|restore) (v\S+|devel) \((rev ([0-9a-f]{12}), )?(modified, )?(\d{4}-\d\d-\d\dT\S+Z, )?(go1\.\d+\S*)\)\n$`)

type versionJSON struct {
	Program    string `json:"program"`
	Version    string `json:"version"`
	Revision   string `json:"revision"`
	Modified   bool   `json:"modified"`
	CommitTime string `json:"commit_time"`
	Go         string `json:"go"`
}

// checkVersion runs `version`, `--version` and `version --json` of the
// binary at bin (named prog) and returns the JSON form, after checking
// that the three agree.
func checkVersion(t *testing.T, bin, prog string) versionJSON {
	t.Helper()
	line := ok(t, nil, bin, "version")
	m := versionLine.FindStringSubmatch(line)
	if m == nil || m[1] != prog {
		t.Fatalf("%s version printed %q, want a line matching %s", prog, line, versionLine)
	}
	if flag := ok(t, nil, bin, "--version"); flag != line {
		t.Errorf("%s --version printed %q, want the same as version: %q", prog, flag, line)
	}
	var v versionJSON
	out := ok(t, nil, bin, "version", "--json")
	if err := json.Unmarshal([]byte(out), &v); err != nil {
		t.Fatalf("%s version --json: %v:\n%s", prog, err, out)
	}
	if v.Program != prog || v.Version != m[2] || v.Go != m[7] || !strings.HasPrefix(v.Revision, m[4]) || v.Modified != (m[5] != "") {
		t.Errorf("%s version --json = %+v, does not match the line %q", prog, v, line)
	}
	if r := run(t, nil, bin, "version", "extra"); r.code != 2 {
		t.Errorf("%s version extra: want exit 2 (usage), got %s", prog, r)
	}
	return v
}

// TestVersion: the built binaries print their version on one line, with
// --version and `version` alike, and --json says the same.
func TestVersion(t *testing.T) {
	for _, prog := range []string{"syncd", "restore"} {
		t.Run(prog, func(t *testing.T) {
			v := checkVersion(t, filepath.Join(binDir, prog), prog)
			t.Logf("%s: %+v", prog, v)
		})
	}
}

// TestVersionStamped: a binary built by `go build` from the git checkout
// (VCS stamping on, whatever GOFLAGS says) names a commit of the
// repository as its revision.
func TestVersionStamped(t *testing.T) {
	// CI runs in a fresh clone, with git: there a missing one is a failure
	skip := t.Skip
	if os.Getenv("CI") == "true" {
		skip = t.Fatal
	}
	git, err := exec.LookPath("git")
	if err != nil {
		skip("git not installed: no stamped build to check")
	}
	if err := exec.Command(git, "rev-parse", "--git-dir").Run(); err != nil {
		skip("not a git checkout: no stamped build to check")
	}
	dir := t.TempDir()
	build := exec.Command("go", "build", "-buildvcs=true", "-o", dir+"/", "github.com/syncd/syncd/cmd/restore")
	build.Env = append(os.Environ(), "GOFLAGS=")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build -buildvcs=true: %v\n%s", err, out)
	}
	v := checkVersion(t, filepath.Join(dir, "restore"), "restore")
	if v.Revision == "" || v.Version == "devel" || v.CommitTime == "" {
		t.Fatalf("stamped build: version --json = %+v, want a revision, a version and a commit time", v)
	}
	// Others may commit meanwhile: the revision must be a commit of the
	// repository, not necessarily HEAD now.
	if out, err := exec.Command(git, "cat-file", "-t", v.Revision).Output(); err != nil || strings.TrimSpace(string(out)) != "commit" {
		t.Errorf("revision %s is not a commit of the repository: %v %s", v.Revision, err, out)
	}
}
