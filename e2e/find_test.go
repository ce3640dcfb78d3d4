package e2e

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

type findMatch struct {
	Snapshot, Host, Path, Type, MTime, Target string
	Size                                      uint64
}

// TestFind: a name glob, a path glob (its last components, or the whole
// path from /), --host and --newest, with the index key alone; each
// match names its snapshot, and the text form says the same as --json.
func TestFind(t *testing.T) {
	r := newRepo(t)
	src := filepath.Join(t.TempDir(), "www")
	for name, body := range map[string]string{"index.php": "<?php home", "blog/index.php": "<?php blog", "img/logo.png": "PNG"} {
		os.MkdirAll(filepath.Join(src, filepath.Dir(name)), 0o755)
		if err := os.WriteFile(filepath.Join(src, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	os.Symlink("index.php", filepath.Join(src, "home.php"))
	snap := func(host string) string {
		t.Helper()
		return strings.Fields(ok(t, nil, "syncd", append(append([]string{"snapshot"}, r.flags("--host", host)...), src)...))[1]
	}
	s1, s2 := snap("web1"), snap("web2")
	if err := os.WriteFile(filepath.Join(src, "blog", "new.php"), []byte("<?php new post"), 0o644); err != nil {
		t.Fatal(err)
	}
	s3 := snap("web1")

	find := func(args ...string) []findMatch {
		t.Helper()
		out := ok(t, nil, "restore", append(append([]string{"find", "--json"}, args...), r.flags()...)...)
		var ms []findMatch
		dec := json.NewDecoder(strings.NewReader(out))
		for dec.More() {
			var m findMatch
			if err := dec.Decode(&m); err != nil {
				t.Fatalf("find --json: %v in %q", err, out)
			}
			ms = append(ms, m)
		}
		return ms
	}
	where := func(ms []findMatch) []string {
		var out []string
		for _, m := range ms {
			out = append(out, m.Snapshot+" "+m.Host+" "+strings.TrimPrefix(m.Path, src))
		}
		return out
	}
	for _, c := range []struct {
		args []string
		want []string
	}{
		{[]string{"index.php"}, []string{s1 + " web1 /blog/index.php", s1 + " web1 /index.php", s2 + " web2 /blog/index.php",
			s2 + " web2 /index.php", s3 + " web1 /blog/index.php", s3 + " web1 /index.php"}},
		{[]string{"new.*"}, []string{s3 + " web1 /blog/new.php"}},
		{[]string{"blog/*.php"}, []string{s1 + " web1 /blog/index.php", s2 + " web2 /blog/index.php", s3 + " web1 /blog/index.php", s3 + " web1 /blog/new.php"}},
		{[]string{src + "/*.php"}, []string{s1 + " web1 /home.php", s1 + " web1 /index.php", s2 + " web2 /home.php",
			s2 + " web2 /index.php", s3 + " web1 /home.php", s3 + " web1 /index.php"}},
		{[]string{"/*.php"}, nil}, // from the root: no .php there
		{[]string{"--host", "web2", "*.png"}, []string{s2 + " web2 /img/logo.png"}},
		{[]string{"--newest", "2", "logo.png"}, []string{s2 + " web2 /img/logo.png", s3 + " web1 /img/logo.png"}},
		{[]string{"--newest", "1", "--host", "web1", "index.php"}, []string{s3 + " web1 /blog/index.php", s3 + " web1 /index.php"}},
		{[]string{"nothing*"}, nil},
	} {
		if got := where(find(c.args...)); !slices.Equal(got, c.want) {
			t.Errorf("find %s:\n got %q\nwant %q", strings.Join(c.args, " "), got, c.want)
		}
	}

	ms := find("--newest", "1", "home.php")
	if len(ms) != 1 || ms[0].Type != "symlink" || ms[0].Target != "index.php" {
		t.Errorf("find home.php: %+v, want the symlink to index.php", ms)
	}
	ms = find("--newest", "1", "new.php")
	if len(ms) != 1 || ms[0].Type != "file" || ms[0].Size != uint64(len("<?php new post")) || ms[0].MTime == "" {
		t.Errorf("find new.php: %+v, want the file with its size and mtime", ms)
	}

	out := ok(t, nil, "restore", append([]string{"find", "new.php"}, r.flags()...)...)
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 3 || !strings.HasPrefix(lines[0], "SNAPSHOT") || lines[2] != "1 match(es) in 1 of 3 snapshot(s)" {
		t.Fatalf("find new.php: want a header, one match and a count:\n%s", out)
	}
	f := strings.Fields(lines[1])
	if len(f) != 9 || f[0] != s3 || f[3] != "web1" || f[4] != "file" || f[5] != "14" || f[8] != src+"/blog/new.php" {
		t.Errorf("find new.php: line %q, want snapshot %s, time, web1, file, 14, mtime, path", lines[1], s3)
	}
}

// TestFindBadInput: a malformed pattern or --newest is usage (exit 2),
// one line, before the repository is read.
func TestFindBadInput(t *testing.T) {
	r := newRepo(t)
	for _, c := range []struct {
		what string
		args []string
		want string
	}{
		{"an unclosed [", []string{"[a-"}, `pattern "[a-": syntax error in pattern`},
		{"a trailing \\", []string{`*.php\`}, "syntax error in pattern"},
		{"an empty pattern", []string{""}, "empty pattern"},
		{"a negative --newest", []string{"--newest", "-1", "x"}, "--newest -1"},
		{"no pattern", nil, "one PATTERN"},
	} {
		res := run(t, nil, "restore", append(append([]string{"find"}, c.args...), r.flags()...)...)
		oneLine(t, "find with "+c.what, res, 2, c.want)
		if res.stdout != "" {
			t.Errorf("find with %s: stdout %q", c.what, res.stdout)
		}
	}
}

// TestFindMovedDir: a directory renamed between two snapshots is the
// same tree at another path; a path pattern matches it where it is in
// each snapshot.
func TestFindMovedDir(t *testing.T) {
	r := newRepo(t)
	src := filepath.Join(t.TempDir(), "www")
	p := filepath.Join(src, "old", "cache", "x.html")
	os.MkdirAll(filepath.Dir(p), 0o755)
	if err := os.WriteFile(p, []byte("same"), 0o644); err != nil {
		t.Fatal(err)
	}
	s1 := r.snapshot(t, src)
	if err := os.Rename(filepath.Join(src, "old"), filepath.Join(src, "new")); err != nil {
		t.Fatal(err)
	}
	s2 := r.snapshot(t, src)
	for _, c := range []struct{ pat, want string }{
		{"old/cache/*", s1 + " /old/cache/x.html"}, {"new/cache/*", s2 + " /new/cache/x.html"},
		{"x.html", s1 + " /old/cache/x.html," + s2 + " /new/cache/x.html"},
	} {
		out := ok(t, nil, "restore", append([]string{"find", "--json", c.pat}, r.flags()...)...)
		var got []string
		for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
			var m findMatch
			if err := json.Unmarshal([]byte(line), &m); err != nil {
				t.Fatalf("find --json %s: %v in %q", c.pat, err, out)
			}
			got = append(got, m.Snapshot+" "+strings.TrimPrefix(m.Path, src))
		}
		if strings.Join(got, ",") != c.want {
			t.Errorf("find %s: %q, want %q", c.pat, got, c.want)
		}
	}
}
