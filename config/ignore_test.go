package config

import (
	"fmt"
	"regexp"
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
		{"*** is ** as a whole segment", []string{"a/***/b", "/***/c", "x***y"}, []probe{
			{"a/b", false, true},
			{"a/x/y/b", false, true},
			{"c", false, true},
			{"d/e/c", false, true},
			{"xy", false, true},
			{"x/y", false, false}, // within a segment, stars are "*"
		}},
		{"POSIX classes", []string{"[[:digit:]][[:upper:]]", "[![:alnum:]]", "a[[:space:]]b", "[[:alpha:]-]x"}, []probe{
			{"1A", false, true},
			{"1a", false, false},
			{"_", false, true},
			{"é", false, false}, // two bytes, "[...]" matches one
			{"a b", false, true},
			{"a\tb", false, true},
			{"a\vb", false, false}, // git's "space" has no \v
			{"-x", false, true},
			{"qx", false, true},
		}},
		{"? is one byte", []string{"?", "!??"}, []probe{
			{"a", false, true},
			{"é", false, false}, // two bytes: "??", which re-includes it
		}},
		{"escaped space, #, !", []string{`a\ `, `\#b`, `\!c`, "!!d", "!d"}, []probe{
			{"a ", false, true},
			{"a", false, false},
			{"#b", false, true},
			{"!c", false, true},
			{"d", false, false},
			{"!d", false, false},
		}},
		{"] first and - last in a class are members", []string{"[]-]z", "[!]]y"}, []probe{
			{"]z", false, true},
			{"-z", false, true},
			{"az", false, false},
			{"]y", false, false},
			{"ay", false, true},
		}},
		{"no re-including inside an ignored directory", []string{"logs/", "!logs/keep", "tmp/*", "!tmp/keep"}, []probe{
			{"logs/keep", false, true},
			{"a/logs/keep", false, true},
			{"tmp/keep", false, false}, // tmp itself is not ignored, only what is in it
			{"tmp/drop", false, true},
			{"tmp", true, false},
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
		{"[", `bad pattern "[": unclosed "[" (write "\[" for a literal one)`},
		{"a/[b/c", `bad pattern "a/[b/c": unclosed "[" (write "\[" for a literal one)`},
		{"[]", `bad pattern "[]": unclosed "[" (write "\[" for a literal one)`},
		{"[!]", `bad pattern "[!]": unclosed "[" (write "\[" for a literal one)`},
		{"[[:alpha:]", `bad pattern "[[:alpha:]": unclosed "[" (write "\[" for a literal one)`},
		{"[[:word:]]", `bad pattern "[[:word:]]": unknown character class [:word:]`},
		{"a[/]b", `bad pattern "a[/]b": "/" inside [...], which never matches`},
		{"[éè]", `bad pattern "[éè]": a non-ASCII character inside [...]: git matches bytes there, not characters`},
		{`x\`, `bad pattern "x\\": ends in a lone "\", which escapes nothing`},
		{`a\/b`, `bad pattern "a\\/b": "\/": write "/"`},
		{"", `bad pattern "": empty`},
		{"!", `bad pattern "!": empty`},
		{"/", `bad pattern "/": empty`},
		{"a//b", `bad pattern "a//b": empty path segment (//)`},
		{"//a", `bad pattern "//a": empty path segment (//)`},
		{"./a", `bad pattern "./a": a "." or ".." segment, which no path has`},
		{"a/../b", `bad pattern "a/../b": a "." or ".." segment, which no path has`},
		{"#cache", `bad pattern "#cache": starts with "#", a comment in .gitignore: write "\#" for a name starting with "#"`},
		{"*.tmp ", `bad pattern "*.tmp ": ends in a space, which .gitignore drops: remove it, or write "\ " to match one`},
		{`a\  `, `bad pattern "a\\  ": ends in a space, which .gitignore drops: remove it, or write "\ " to match one`},
		{"   ", `bad pattern "   ": ends in a space, which .gitignore drops: remove it, or write "\ " to match one`},
		{"a\nb", `bad pattern "a\nb": holds a line break, carriage return or NUL, which a .gitignore line cannot`},
		{"a\r", `bad pattern "a\r": holds a line break, carriage return or NUL, which a .gitignore line cannot`},
		{"a/b**/c", `bad pattern "a/b**/c": "**" that is not a whole path segment: write "*" within a segment, "/**/" across segments`},
		{"/x**", `bad pattern "/x**": "**" that is not a whole path segment: write "*" within a segment, "/**/" across segments`},
	}
	for _, tt := range tests {
		_, err := NewMatcher([]string{"ok", tt.pattern})
		if err == nil {
			t.Errorf("NewMatcher(%q) succeeded, want an error", tt.pattern)
			continue
		}
		if got := err.Error(); got != tt.want {
			t.Errorf("NewMatcher(%q):\ngot  %s\nwant %s", tt.pattern, got, tt.want)
		}
	}
}

// FuzzIgnorePattern feeds the pattern parser arbitrary patterns and the
// matcher arbitrary paths. A pattern is refused with a one-line error that
// quotes it, or accepted; then matching never panics, a glob agrees with
// a regular expression built from its tokens, the segment matcher with a
// plain recursive one, and a name written with every byte escaped
// matches that name only.
func FuzzIgnorePattern(f *testing.F) {
	f.Add("wp-content/cache/**", "wp-content/cache/a/b", true)
	f.Add("!*.tmp", "a.tmp", false)
	f.Add("a/**/b/***/c", "a/x/b/y/c", false)
	f.Add("[!a]x/", "bx", true)
	f.Add("[[:digit:]][^[:space:]]?", "1é", false)
	f.Add(`\#a\ `, "#a ", false)
	f.Add("[]-a]*[a-]", "]xx-", false)
	f.Add("#x", "x", false)
	f.Add("a/b**/c", "a/bx/y/c", false)
	f.Fuzz(func(t *testing.T, text, rel string, isDir bool) {
		if len(text) > 200 || len(rel) > 400 {
			return
		}
		p, err := compile(text)
		if err != nil {
			msg := err.Error()
			if !strings.HasPrefix(msg, fmt.Sprintf("bad pattern %q: ", text)) || strings.ContainsAny(msg, "\n\r") {
				t.Fatalf("compile(%q): error %q does not quote the pattern on one line", text, msg)
			}
		} else {
			m := &Matcher{pats: []pattern{p}}
			m.Match(rel, isDir)
			checkAgainstOracles(t, p, rel)
		}
		checkEscaped(t, rel)
	})
}

// checkAgainstOracles compares p's matching of rel's segments with
// slower, plainer matchers.
func checkAgainstOracles(t *testing.T, p pattern, rel string) {
	name := strings.Split(rel, "/")
	for _, s := range p.segs {
		if s.globstar {
			continue
		}
		re := globRegexp(s.g)
		for _, n := range name {
			if got, want := s.g.match(n), re.MatchString(latin1(n)); got != want {
				t.Fatalf("%q: glob matches %q: %v, regexp %s: %v", p.text, n, got, re, want)
			}
		}
	}
	if p.anchored && len(p.segs) <= 12 && len(name) <= 12 {
		if got, want := matchSegs(p.segs, name), matchSegsSlow(p.segs, name); got != want {
			t.Fatalf("%q: segments %q: %v, recursively %v", p.text, name, got, want)
		}
	}
}

// globRegexp is g as a regular expression over bytes (Latin-1 runes
// stand for bytes, so a multi-byte name is matched byte by byte).
func globRegexp(g glob) *regexp.Regexp {
	var b strings.Builder
	b.WriteString(`\A`)
	for _, t := range g {
		switch t.kind {
		case tokLit:
			b.WriteString(regexp.QuoteMeta(string(rune(t.b))))
		case tokAny:
			b.WriteString(`(?s:.)`)
		case tokStar:
			b.WriteString(`(?s:.*)`)
		case tokClass:
			b.WriteString(`[`)
			for c := range 256 {
				if t.set[c] {
					fmt.Fprintf(&b, `\x{%x}`, c)
				}
			}
			b.WriteString(`\x{10ffff}]`) // never empty; no name has it
		}
	}
	b.WriteString(`\z`)
	return regexp.MustCompile(b.String())
}

// latin1 rewrites each byte of s as the rune of the same value, for
// [globRegexp].
func latin1(s string) string {
	r := make([]rune, len(s))
	for i := range len(s) {
		r[i] = rune(s[i])
	}
	return string(r)
}

// matchSegsSlow is [matchSegs] by plain recursion.
func matchSegsSlow(pat []segment, name []string) bool {
	if len(pat) == 0 {
		return len(name) == 0
	}
	if pat[0].globstar {
		for i := 0; i <= len(name); i++ {
			if matchSegsSlow(pat[1:], name[i:]) {
				return true
			}
		}
		return false
	}
	return len(name) > 0 && pat[0].g.match(name[0]) && matchSegsSlow(pat[1:], name[1:])
}

// checkEscaped checks that rel's last segment written with each byte
// escaped is accepted and matches that name only.
func checkEscaped(t *testing.T, rel string) {
	name := rel[strings.LastIndexByte(rel, '/')+1:]
	if name == "" || name == "." || name == ".." || strings.ContainsAny(name, "\x00\n\r") {
		return
	}
	var b strings.Builder
	for i := range len(name) {
		b.WriteByte('\\')
		b.WriteByte(name[i])
	}
	for _, pat := range []string{b.String(), "/" + b.String()} {
		m, err := NewMatcher([]string{pat})
		if err != nil {
			t.Fatalf("the escaped name %q: %v", pat, err)
		}
		if !m.Match(name, false) || m.Match(name+"x", false) || m.Match("x"+name, false) {
			t.Fatalf("the escaped name %q does not match %q only", pat, name)
		}
		deeper := name + "_/" + name // its parent is not name
		if anchored := pat[0] == '/'; m.Match(deeper, false) == anchored {
			t.Fatalf("%q: Match(%q) = %v", pat, deeper, anchored)
		}
	}
}

// TestIgnoreEscapesInYAML checks what deploy/syncd.yaml and the README
// tell: escapes go in single quotes; in double quotes YAML reads "\#"
// itself and refuses it.
func TestIgnoreEscapesInYAML(t *testing.T) {
	folder := "folders:\n  - id: www\n    path: /var/www\n"
	c, err := Parse([]byte(minimal+folder+`    ignore: ['\#x', 'a\ ', "[[:digit:]]"]`+"\n"), "t.yaml")
	if err != nil {
		t.Fatal(err)
	}
	m, err := NewMatcher(c.Folders[0].Ignore)
	if err != nil {
		t.Fatal(err)
	}
	for _, rel := range []string{"#x", "a ", "sub/7"} {
		if !m.Match(rel, false) {
			t.Errorf("%q: Match(%q) = false, want true", c.Folders[0].Ignore, rel)
		}
	}
	_, err = Parse([]byte(minimal+folder+`    ignore: ["\#x"]`+"\n"), "t.yaml")
	if err == nil || !strings.Contains(err.Error(), "escape") {
		t.Errorf(`"\#x" in double quotes: got %v, want a YAML escape error`, err)
	}
}
