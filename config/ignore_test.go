package config

import (
	"strings"
	"testing"
)

func TestMatcher(t *testing.T) {
	type probe struct {
		rel   string
		isDir bool
		want  bool
	}
	tests := []struct {
		name     string
		patterns []string
		probes   []probe
	}{
		{"DESIGN sample", []string{"wp-content/cache/**", "*.tmp"}, []probe{
			{"wp-content/cache/page.html", false, true},
			{"wp-content/cache/a/b/c.css", false, true},
			{"wp-content/cache/a", true, true},
			{"wp-content/cache", true, false}, // "x/**" is what is inside x
			{"wp-content/cache.html", false, false},
			{"wp-content/uploads/cache/x", false, false},
			{"site/wp-content/cache/x", false, false}, // anchored: has a slash
			{"upload.tmp", false, true},
			{"wp-content/uploads/2026/upload.tmp", false, true},
			{"upload.tmp.jpg", false, false},
			{"index.php", false, false},
			{"", true, false}, // the root is never ignored
		}},
		{"no slash matches at any depth", []string{"*.log", "node_modules"}, []probe{
			{"a.log", false, true},
			{"x/y/a.log", false, true},
			{"node_modules", true, true},
			{"app/node_modules", true, true},
			{"app/node_modules/pkg/index.js", false, true}, // inside an ignored directory
			{"node_modules.txt", false, false},
		}},
		{"leading slash anchors", []string{"/config.php", "/tmp/"}, []probe{
			{"config.php", false, true},
			{"sub/config.php", false, false},
			{"tmp", true, true},
			{"tmp/x", false, true},
			{"a/tmp", true, false},
		}},
		{"middle slash anchors", []string{"doc/*.txt"}, []probe{
			{"doc/a.txt", false, true},
			{"doc/sub/a.txt", false, false}, // * does not cross /
			{"x/doc/a.txt", false, false},
		}},
		{"trailing slash is directories only", []string{"cache/"}, []probe{
			{"cache", true, true},
			{"cache", false, false},
			{"a/cache", true, true},
			{"a/cache/f", false, true},
			{"a/cache.d", true, false},
		}},
		{"leading **", []string{"**/logs"}, []probe{
			{"logs", true, true},
			{"a/b/logs", false, true},
			{"a/logs/x", false, true},
			{"alogs", false, false},
		}},
		{"middle **", []string{"a/**/b"}, []probe{
			{"a/b", false, true},
			{"a/x/b", false, true},
			{"a/x/y/b", false, true},
			{"a/x/y/c", false, false},
			{"x/a/b", false, false},
		}},
		{"trailing ** and **/**", []string{"a/**/**"}, []probe{
			{"a", true, false},
			{"a/x", false, true},
			{"a/x/y", false, true},
		}},
		{"** within a segment is *", []string{"a**z"}, []probe{
			{"abcz", false, true},
			{"d/abcz", false, true},
			{"ab/cz", false, false},
		}},
		{"** alone", []string{"**"}, []probe{
			{"x", false, true},
			{"x/y", true, true},
		}},
		{"? and classes", []string{"?.bak", "file[0-9].txt", "[!a]x", "img[^0-9]", `[\]]y`, `[!\]]z`}, []probe{
			{"a.bak", false, true},
			{"ab.bak", false, false},
			{"file7.txt", false, true},
			{"fileA.txt", false, false},
			{"bx", false, true},
			{"ax", false, false},
			{"imgA", false, true},
			{"img1", false, false},
			{"]y", false, true},
			{"az", false, true},
			{"]z", false, false},
		}},
		{"escapes", []string{`\!important`, `a\*b`}, []probe{
			{"!important", false, true},
			{"important", false, false},
			{"a*b", false, true},
			{"axb", false, false},
		}},
		{"negation: last match wins", []string{"*.tmp", "!keep.tmp", "keep.tmp/"}, []probe{
			{"x.tmp", false, true},
			{"keep.tmp", false, false},
			{"sub/keep.tmp", false, false},
			{"keep.tmp", true, true}, // the last pattern, directories only, ignores it again
		}},
		{"negation order matters", []string{"!keep.tmp", "*.tmp"}, []probe{
			{"keep.tmp", false, true},
		}},
		{"negation under /**", []string{"wp-content/cache/**", "!wp-content/cache/.htaccess", "!wp-content/cache/sub/keep"}, []probe{
			{"wp-content/cache/.htaccess", false, false},
			{"wp-content/cache/page.html", false, true},
			{"wp-content/cache/sub", true, true},
			{"wp-content/cache/sub/keep", false, true}, // its directory is ignored: no re-including, as in git
		}},
		{"dot files are not special", []string{"*"}, []probe{
			{".htaccess", false, true},
			{"a/.git", true, true},
		}},
		{"no patterns", nil, []probe{
			{"anything", false, false},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, err := NewMatcher(tt.patterns)
			if err != nil {
				t.Fatalf("NewMatcher(%q): %v", tt.patterns, err)
			}
			for _, p := range tt.probes {
				if got := m.Match(p.rel, p.isDir); got != p.want {
					t.Errorf("%q: Match(%q, dir=%v) = %v, want %v", tt.patterns, p.rel, p.isDir, got, p.want)
				}
			}
		})
	}
}

func TestNilMatcher(t *testing.T) {
	var m *Matcher
	if m.Match("a", false) {
		t.Error("a nil Matcher ignores a path")
	}
}

func TestMatcherBadPatterns(t *testing.T) {
	tests := []struct{ pattern, want string }{
		{"[", `bad pattern "[": syntax error in pattern`},
		{"a/[b/c", `bad pattern "a/[b/c": syntax error in pattern`},
		{`x\`, `bad pattern "x\\": syntax error in pattern`},
		{"", `bad pattern "": empty`},
		{"!", `bad pattern "!": empty`},
		{"/", `bad pattern "/": empty`},
		{"a//b", `bad pattern "a//b": empty path segment (//)`},
	}
	for _, tt := range tests {
		_, err := NewMatcher([]string{"ok", tt.pattern})
		if err == nil {
			t.Errorf("NewMatcher(%q) succeeded, want an error", tt.pattern)
			continue
		}
		if got := err.Error(); got != tt.want {
			t.Errorf("NewMatcher(%q): got %q, want %q", tt.pattern, got, tt.want)
		}
	}
}

func FuzzMatcher(f *testing.F) {
	f.Add("wp-content/cache/**", "wp-content/cache/a/b", true)
	f.Add("!*.tmp", "a.tmp", false)
	f.Add("a/**/b/**/c", "a/x/b/y/c", false)
	f.Add("[!a]x/", "bx", true)
	f.Fuzz(func(t *testing.T, pattern, rel string, isDir bool) {
		if len(pattern) > 200 || len(rel) > 400 {
			return
		}
		m, err := NewMatcher(strings.Split(pattern, "\n"))
		if err != nil {
			return
		}
		m.Match(rel, isDir)
	})
}
