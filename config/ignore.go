package config

import (
	"fmt"
	"path"
	"strings"
)

// Matcher decides which paths of a folder its ignore patterns exclude. It
// is immutable and safe for concurrent use.
//
// Patterns follow gitignore:
//   - "*" matches any run of characters but "/", "?" one such character,
//     "[a-z]" and "[!a-z]" (or "[^a-z]") a character in or out of a
//     class, "\" escapes the next character (path.Match within one
//     path segment);
//   - "**" as a whole segment matches any number of segments: "**/x"
//     matches x at any depth, "x/**" everything inside x (not x itself),
//     "a/**/b" b below a at any depth, including a/b;
//   - a pattern with a "/" at its start or in its middle is anchored to the
//     folder root ("/x" is the root's x only, "a/b" only a/b); one without
//     matches the last segment at any depth ("*.tmp" is **/*.tmp);
//   - a trailing "/" matches directories only;
//   - a leading "!" negates: a path that a later "!" pattern matches is
//     not ignored; the last pattern that matches a path decides ("\!"
//     starts a pattern with a literal "!").
//
// Unlike a .gitignore file, a pattern is taken as written: "#" starts no
// comment and trailing spaces are kept.
type Matcher struct {
	pats []pattern
}

type pattern struct {
	text    string   // as written, for errors
	segs    []string // path.Match patterns, or "**"
	negate  bool
	dirOnly bool
}

// NewMatcher compiles patterns, in order. A malformed pattern is an error
// that quotes it.
func NewMatcher(patterns []string) (*Matcher, error) {
	m := &Matcher{pats: make([]pattern, 0, len(patterns))}
	for _, s := range patterns {
		p, err := compile(s)
		if err != nil {
			return nil, err
		}
		m.pats = append(m.pats, p)
	}
	return m, nil
}

func compile(s string) (pattern, error) {
	p := pattern{text: s}
	rest := s
	if strings.HasPrefix(rest, "!") {
		p.negate, rest = true, rest[1:]
	}
	if strings.HasSuffix(rest, "/") {
		p.dirOnly, rest = true, rest[:len(rest)-1]
	}
	anchored := strings.Contains(rest, "/")
	rest = strings.TrimPrefix(rest, "/")
	if rest == "" {
		return p, fmt.Errorf("bad pattern %q: empty", s)
	}
	if !anchored {
		p.segs = append(p.segs, "**")
	}
	for _, seg := range strings.Split(rest, "/") {
		switch {
		case seg == "":
			return p, fmt.Errorf("bad pattern %q: empty path segment (//)", s)
		case seg == "**":
			if len(p.segs) > 0 && p.segs[len(p.segs)-1] == "**" {
				continue // "**/**" is "**"
			}
		default:
			seg = bangClass(seg)
			if _, err := path.Match(seg, ""); err != nil {
				return p, fmt.Errorf("bad pattern %q: %v", s, err)
			}
		}
		p.segs = append(p.segs, seg)
	}
	return p, nil
}

// bangClass rewrites the gitignore negated class "[!...]" into path.Match's
// "[^...]".
func bangClass(seg string) string {
	if !strings.Contains(seg, "[!") {
		return seg
	}
	b := []byte(seg)
	inClass := false
	for i := 0; i < len(b); i++ {
		switch {
		case b[i] == '\\':
			i++ // an escaped character
		case !inClass && b[i] == '[':
			inClass = true
			j := i + 1
			if j < len(b) && b[j] == '!' {
				b[j] = '^'
			}
			if j < len(b) && b[j] == '^' {
				j++
			}
			i = j - 1
		case inClass && b[i] == ']':
			inClass = false
		}
	}
	return string(b)
}

// Match reports whether rel, a slash-separated path relative to the
// folder root without a leading slash, is ignored; isDir says whether it
// is a directory. A path is ignored when it is itself ignored or when one
// of its parent directories is: as with git, a file inside an ignored
// directory cannot be re-included by a "!" pattern. The root ("") is never
// ignored.
func (m *Matcher) Match(rel string, isDir bool) bool {
	if m == nil || len(m.pats) == 0 || rel == "" {
		return false
	}
	segs := strings.Split(rel, "/")
	for i := 1; i < len(segs); i++ {
		if m.decide(segs[:i], true) {
			return true
		}
	}
	return m.decide(segs, isDir)
}

// decide applies the patterns to one path, without looking at its
// parents: the last pattern that matches decides.
func (m *Matcher) decide(segs []string, isDir bool) bool {
	for i := len(m.pats) - 1; i >= 0; i-- {
		p := &m.pats[i]
		if p.dirOnly && !isDir {
			continue
		}
		if matchSegs(p.segs, segs) {
			return !p.negate
		}
	}
	return false
}

// matchSegs matches path segments against pattern segments, "**" standing
// for any number of segments (at least one when it ends the pattern).
func matchSegs(pat, name []string) bool {
	for len(pat) > 0 {
		if pat[0] == "**" {
			if len(pat) == 1 {
				return len(name) > 0
			}
			for i := 0; i < len(name); i++ {
				if matchSegs(pat[1:], name[i:]) {
					return true
				}
			}
			return false
		}
		if len(name) == 0 {
			return false
		}
		if ok, _ := path.Match(pat[0], name[0]); !ok {
			return false
		}
		pat, name = pat[1:], name[1:]
	}
	return len(name) == 0
}
