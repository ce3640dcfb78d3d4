package config

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"testing"

	"golang.org/x/sync/errgroup"
)

// The generated suite: pattern sets built from the atoms below in every
// form below, plus random mixes with negations, each checked against
// every probe path as a file and as a directory by git check-ignore.

// segAtoms are the pattern pieces for one path segment.
var segAtoms = []string{
	// literals and wildcards
	"a", "ab", "b.c", "é", "A", "1", "*", "?", "a*", "*b", "*.c", "a?", "?b", "a*b", "??",
	"**", "***", "****", "a**", "**b", "a***b", "*a*", "?é", "é?",
	// classes, POSIX classes, negation, ranges, "]" and "-" as members
	"[ab]", "[!a]", "[^a]", "[a-c]", "[z-a]", "[]a]", "[!]a]", "[a-]", "[-a]", "[\\]a]", "[a\\-c]",
	"[[:digit:]]", "[[:alpha:]]", "[[:space:]]", "[[:upper:]]", "[[:lower:]]", "[[:alnum:]]",
	"[[:punct:]]", "[[:xdigit:]]", "[[:blank:]]", "[[:cntrl:]]", "[[:graph:]]", "[[:print:]]",
	"[![:digit:]]", "[^[:alpha:]]", "[[:digit:]a]", "[[:alpha:][:digit:]]", "[[:alpha]", "[[:]", "[a[:digit:]-z]",
	"a[[:space:]]b", "[[:upper:]]*", "*[[:digit:]]", "[*]", "[?]", "[\\\\]", "[!\\\\]",
	// escapes, "#", "!", spaces
	"\\*", "\\?", "\\[", "\\\\", "\\a", "\\ ", "a\\ ", "a\\  ", "a \\ ", "\\ \\ ", " a", "a b",
	"\\#a", "#a", "\\!a", "a#", "a!",
	// what syncd refuses
	"[", "[a", "[]", "[!]", "[[:foo:]]", "[é]", "a\\", "a ", "a  ", "[a/]", ".", "..", "a\\/b",
}

// forms place one atom (x) in a pattern, or two (x and y, each of
// "a" and "*").
var forms1 = []string{"%s", "/%s", "%s/", "/%s/", "**/%s", "%s/**", "***/%s", "%s/***", "!%s", "%s//"}
var forms2 = []string{"%[1]s/%[2]s", "%[2]s/%[1]s", "/%[1]s/%[2]s/", "%[2]s/**/%[1]s", "!%[1]s/%[2]s"}

// extraPatterns are whole patterns the forms do not make.
var extraPatterns = []string{
	"**", "/**", "**/", "***", "/***", "**/**", "**/**/a", "a/**/**/b", "a/***/***/b", "/**/a/**/",
	"a/b**/c", "a/**b/c", "a/*/b", "a/*/*", "*/a", "*/*", "/a/b/a", "a/?/b", "a/x/**",
	"", "!", "/", "//", "!/", "#", "\\#", "\\!", "!!a", "!\\!a", "a/./b", "./a", "a/../b", "\\", "\\\\ ",
	"a\r", "a\nb", "\\ ", " ", "   ",
}

// gitPatternSets returns the generated sets of patterns, each the
// content of one .gitignore, in a fixed order.
func gitPatternSets() [][]string {
	var pats []string
	for _, x := range segAtoms {
		for _, f := range forms1 {
			pats = append(pats, fmt.Sprintf(f, x))
		}
		for _, f := range forms2 {
			pats = append(pats, fmt.Sprintf(f, x, "a"))
		}
		pats = append(pats, x+"/*", "*/"+x)
	}
	pats = append(pats, extraPatterns...)
	seen := map[string]bool{}
	var sets [][]string
	for _, p := range pats {
		if !seen[p] {
			seen[p] = true
			sets = append(sets, []string{p})
		}
	}
	// Mixes: a few patterns, each maybe negated, to exercise "the last
	// match wins" and "no re-including inside an ignored directory".
	r := rand.New(rand.NewPCG(15, 2039))
	pool := []string{"a", "b", "*", "a/", "*/", "/a", "a/b", "a/*", "a/**", "**/b", "a/**/b", "*.c", "[ab]", "?",
		"[[:alpha:]]", "x/", "é", "a*", "b/"}
	for range 400 {
		n := 2 + r.IntN(3)
		set := make([]string, n)
		for i := range set {
			p := pool[r.IntN(len(pool))]
			if r.IntN(2) == 0 {
				p = "!" + p
			}
			set[i] = p
		}
		sets = append(sets, set)
	}
	return sets
}

// probeNames are the path segments the probes are made of.
var probeNames = []string{
	"a", "b", "ab", "ba", "abb", "aab", "b.c", "x.c", ".c", "é", "éa", "aé", "A", "Z", "1", "9", "f", "x",
	" ", "a ", " a", "a  ", "a b", "#a", "!a", "a#", "*", "?", "[", "]", "\\", "-", "a*b", "a-b",
	"a\tb", "\t", "\v", "a:b", ".a", "a.b.c", "_", "aa", "ba b",
}

// gitProbes returns the probe paths: every name at the root, under "a",
// and with "b" under it, and a few deeper paths.
func gitProbes() []string {
	var ps []string
	for _, n := range probeNames {
		ps = append(ps, n, "a/"+n, n+"/b")
	}
	ps = append(ps, "a/b/a", "a/x/b", "a/x/y/b", "a/a/a", "b/a/b", "x/a/b", "a/ab/b", "a/b/c/d", "x/y/z/a",
		"a/b/b", "a/b/ab", "a/bx/c", "a/bx/y/c", "a/x/a/b", "é/a/b")
	sort.Strings(ps)
	return ps
}

// requireGit returns the path of git, or skips the test; under CI=true a
// missing git fails it.
func requireGit(t *testing.T) string {
	t.Helper()
	git, err := exec.LookPath("git")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("git not found (CI=true): %v", err)
		}
		t.Skipf("git not found, skipping the comparison with git check-ignore (apt-get install git): %v", err)
	}
	return git
}

// gitIgnored runs git check-ignore in repo on paths (relative to repo),
// with the extra arguments args before the command, and reports which
// are ignored.
func gitIgnored(git, repo string, paths []string, args ...string) ([]bool, error) {
	var in bytes.Buffer
	for _, p := range paths {
		in.WriteString(p)
		in.WriteByte(0)
	}
	args = append(args, "check-ignore", "--no-index", "--stdin", "-z", "-v", "-n")
	cmd := exec.Command(git, args...)
	cmd.Dir = repo
	cmd.Stdin = &in
	cmd.Env = gitEnv(repo)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	var exit *exec.ExitError
	if err != nil && !(errors.As(err, &exit) && exit.ExitCode() == 1) { // 1: nothing ignored
		return nil, fmt.Errorf("git check-ignore: %v: %s", err, stderr.Bytes())
	}
	// Records of four fields: source, line number, pattern, path.
	fields := strings.Split(string(out), "\x00")
	if len(fields) != 4*len(paths)+1 {
		return nil, fmt.Errorf("git check-ignore: %d fields for %d paths", len(fields)-1, len(paths))
	}
	ignored := make([]bool, len(paths))
	for i := range paths {
		src, pat, path := fields[4*i], fields[4*i+2], fields[4*i+3]
		if path != paths[i] {
			return nil, fmt.Errorf("git check-ignore: record %d is for %q, want %q", i, path, paths[i])
		}
		ignored[i] = src != "" && !strings.HasPrefix(pat, "!")
	}
	return ignored, nil
}

// gitEnv keeps the user's and the system's git configuration (and their
// excludes files) out of the comparison.
func gitEnv(home string) []string {
	return append(os.Environ(), "HOME="+home, "XDG_CONFIG_HOME="+home, "GIT_CONFIG_NOSYSTEM=1",
		"GIT_CONFIG_GLOBAL=/dev/null", "LC_ALL=C")
}

// gitCase is one accepted pattern set and what git says of each probe.
type gitCase struct {
	set          []string
	m            *Matcher
	asFile       []bool
	asDir        []bool // nil: no directory-only pattern, asFile holds
	dir, exclude string // its directory in the files repository, its .gitignore if asked as directories
}

// TestMatcherAgreesWithGit checks every generated pattern set that
// NewMatcher accepts against git check-ignore, on every probe as a file
// and as a directory, and counts the sets it refuses.
//
// Git looks at whether a path is a directory only for a pattern with a
// trailing "/" (its parents it always takes for directories). So the
// probes are asked as files in one batch, each set in a .gitignore of its
// own directory where no probe exists; and only a set with such a pattern
// is asked again, as its own core.excludesFile, in a repository where
// every probe is a directory. A set without one must give the same answer
// for a directory as for a file.
func TestMatcherAgreesWithGit(t *testing.T) {
	git := requireGit(t)
	if v, err := exec.Command(git, "version").Output(); err == nil {
		t.Logf("%s", bytes.TrimSpace(v))
	}
	sets, probes := gitPatternSets(), gitProbes()
	root := scratchDir(t)
	files, dirs := filepath.Join(root, "files"), filepath.Join(root, "dirs")
	for _, repo := range []string{files, dirs} {
		if out, err := exec.Command(git, "init", "-q", repo).CombinedOutput(); err != nil {
			t.Fatalf("git init: %v: %s", err, out)
		}
	}
	for _, p := range probes {
		if err := os.MkdirAll(filepath.Join(dirs, p), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	var cases []*gitCase
	refused := map[string]int{} // reason → sets
	for i, set := range sets {
		m, err := NewMatcher(set)
		if err != nil {
			reason, ok := refusedFor(err, set)
			if !ok {
				t.Errorf("NewMatcher(%q): error %q names none of the patterns", set, err)
			}
			refused[reason]++
			continue
		}
		c := &gitCase{set: set, m: m, dir: fmt.Sprintf("c%04d", i)}
		lines := []byte(strings.Join(set, "\n") + "\n")
		if err := os.Mkdir(filepath.Join(files, c.dir), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(files, c.dir, ".gitignore"), lines, 0o644); err != nil {
			t.Fatal(err)
		}
		for _, p := range set {
			if strings.HasSuffix(p, "/") {
				c.exclude = filepath.Join(files, c.dir, ".gitignore")
			}
		}
		cases = append(cases, c)
	}

	var g errgroup.Group
	g.SetLimit(4 * runtime.GOMAXPROCS(0))
	const chunk = 200 // sets per git check-ignore in the files repository
	for lo := 0; lo < len(cases); lo += chunk {
		part := cases[lo:min(lo+chunk, len(cases))]
		g.Go(func() error {
			var paths []string
			for _, c := range part {
				for _, p := range probes {
					paths = append(paths, c.dir+"/"+p)
				}
			}
			ignored, err := gitIgnored(git, files, paths)
			for i, c := range part {
				if err == nil {
					c.asFile = ignored[i*len(probes) : (i+1)*len(probes)]
				}
			}
			return err
		})
	}
	for _, c := range cases {
		if c.exclude != "" {
			g.Go(func() (err error) {
				c.asDir, err = gitIgnored(git, dirs, probes, "-c", "core.excludesFile="+c.exclude)
				return err
			})
		}
	}
	if err := g.Wait(); err != nil {
		t.Fatal(err)
	}

	diffs, checked, dirSets := 0, 0, 0
	for _, c := range cases {
		if c.asDir != nil {
			dirSets++
		}
		for j, p := range probes {
			for _, isDir := range []bool{false, true} {
				want := c.asFile[j]
				if isDir && c.asDir != nil {
					want = c.asDir[j]
				}
				checked++
				if got := c.m.Match(p, isDir); got != want {
					if diffs++; diffs <= 40 {
						t.Errorf("%q: Match(%q, dir=%v) = %v, git says %v", c.set, p, isDir, got, want)
					}
				}
			}
		}
	}
	if diffs > 40 {
		t.Errorf("... %d disagreements in all", diffs)
	}
	nRefused := 0
	for _, n := range refused {
		nRefused += n
	}
	t.Logf("%d pattern sets, %d probes each as a file and as a directory: %d sets accepted (%d asked of git as directories too), %d checks; %d sets refused",
		len(sets), len(probes), len(cases), dirSets, checked, nRefused)
	reasons := make([]string, 0, len(refused))
	for r := range refused {
		reasons = append(reasons, r)
	}
	sort.Strings(reasons)
	for _, r := range reasons {
		t.Logf("  refused %4d: %s", refused[r], r)
	}
}

// scratchDir returns an empty directory removed when t ends: on tmpfs
// when /dev/shm is there, as the comparison writes a few thousand small
// files and a slow disk would take most of the test's time.
func scratchDir(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("/dev/shm", "syncd-ignore-")
	if err != nil {
		return t.TempDir()
	}
	t.Cleanup(func() {
		if err := os.RemoveAll(dir); err != nil {
			t.Error(err)
		}
	})
	return dir
}

// refusedFor returns why NewMatcher refused set (the error after the
// pattern it quotes), and whether the error quotes one of set's patterns.
func refusedFor(err error, set []string) (string, bool) {
	msg := err.Error()
	for _, p := range set {
		if prefix := fmt.Sprintf("bad pattern %q: ", p); strings.HasPrefix(msg, prefix) {
			return strings.TrimPrefix(msg, prefix), true
		}
	}
	return msg, false
}
