package config

import (
	"errors"
	"fmt"
	"strings"
)

// Matcher decides which paths of a folder its ignore patterns exclude. It
// is immutable and safe for concurrent use.
//
// Each pattern is one line of a .gitignore at the folder root, and
// matches what git 2.39 matches with it (git check-ignore is the test's
// oracle):
//   - "*" matches any run of bytes but "/", "?" any one byte but "/"
//     (bytes, as in git: "é" is two); "[a-z]", "[!a-z]" or "[^a-z]" one
//     byte in or out of a class, which may hold the POSIX classes
//     "[:alnum:]", "[:alpha:]", "[:blank:]", "[:cntrl:]", "[:digit:]",
//     "[:graph:]", "[:lower:]", "[:print:]", "[:punct:]", "[:space:]",
//     "[:upper:]" and "[:xdigit:]" (ASCII only), and "]" as its first
//     member; "\" makes the next character literal ("\*", "\[", "\ ",
//     "\#", "\!", "\\");
//   - "**" (or a longer run of stars) as a whole segment matches any
//     number of segments: "**/x" matches x at any depth, "x/**"
//     everything inside x (not x itself), "a/**/b" b below a at any
//     depth, including a/b;
//   - a pattern with a "/" at its start or in its middle is anchored to the
//     folder root ("/x" is the root's x only, "a/b" only a/b); one without
//     matches the last segment at any depth ("*.tmp" is **/*.tmp), where
//     "**" is just "*";
//   - a trailing "/" matches directories only;
//   - a leading "!" negates: a path that a later "!" pattern matches is
//     not ignored; the last pattern that matches a path decides. A path
//     inside an ignored directory stays ignored whatever the patterns
//     say of it: as with git, it cannot be re-included.
//
// A YAML list is not a .gitignore file, so what git would silently read
// otherwise than as written is refused (see [NewMatcher]): a pattern
// starting with "#" (a comment to git; write "\#"), one ending in an
// unescaped space (git drops it; write "\ "), an empty one, and forms
// that git never matches or matches against its own documentation.
type Matcher struct {
	pats []pattern
}

type pattern struct {
	text     string    // as written, for errors
	segs     []segment // anchored: one per path segment; else the base name
	anchored bool
	negate   bool
	dirOnly  bool
}

// A segment is a glob for one path segment, or "**".
type segment struct {
	g        glob
	globstar bool // any number of segments, none included
}

// NewMatcher compiles patterns, in order. A pattern syncd refuses is an
// error that quotes it and says why, on one line: an empty pattern, a
// line break, carriage return or NUL in it, a leading "#", a trailing
// unescaped space, a lone trailing "\", an unclosed "[", an unknown
// "[:name:]", a non-ASCII character or "/" inside "[...]", "\/", an empty
// segment ("a//b"), a "." or ".." segment, and in a pattern with a "/",
// "**" that is not a whole segment (git's documentation makes "a/b**/c"
// "a/b*/c", but git matches a/bc, a/b/c and a/bx/y/c with it, not a/bxc).
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

// Reasons a pattern is refused beyond those of [tokenize].
var (
	errEmpty         = errors.New("empty")
	errLineBreak     = errors.New("holds a line break, carriage return or NUL, which a .gitignore line cannot")
	errComment       = errors.New(`starts with "#", a comment in .gitignore: write "\#" for a name starting with "#"`)
	errTrailingSpace = errors.New(`ends in a space, which .gitignore drops: remove it, or write "\ " to match one`)
	errEmptySegment  = errors.New("empty path segment (//)")
	errDotSegment    = errors.New(`a "." or ".." segment, which no path has`)
	errPartialStars  = errors.New(`"**" that is not a whole path segment: write "*" within a segment, "/**/" across segments`)
)

func compile(s string) (pattern, error) {
	p := pattern{text: s}
	bad := func(err error) (pattern, error) {
		return p, fmt.Errorf("bad pattern %q: %w", s, err)
	}
	switch {
	case strings.ContainsAny(s, "\n\r\x00"):
		return bad(errLineBreak)
	case s == "":
		return bad(errEmpty)
	case s[0] == '#':
		return bad(errComment)
	case trailingSpace(s):
		return bad(errTrailingSpace)
	}
	rest := s
	if rest[0] == '!' {
		p.negate, rest = true, rest[1:]
	}
	if strings.HasSuffix(rest, "/") {
		p.dirOnly, rest = true, rest[:len(rest)-1]
	}
	p.anchored = strings.Contains(rest, "/")
	rest = strings.TrimPrefix(rest, "/")
	if rest == "" {
		return bad(errEmpty)
	}
	toks, err := tokenize(rest)
	if err != nil {
		return bad(err)
	}
	for _, g := range splitSegs(toks) {
		switch {
		case len(g) == 0:
			return bad(errEmptySegment)
		case isDots(g):
			return bad(errDotSegment)
		case !p.anchored:
			p.segs = append(p.segs, segment{g: g})
		case g.isDoubleStar():
			if n := len(p.segs); n == 0 || !p.segs[n-1].globstar {
				p.segs = append(p.segs, segment{globstar: true}) // "**/**" is "**"
			}
		case g.hasDoubleStar():
			return bad(errPartialStars)
		default:
			p.segs = append(p.segs, segment{g: g})
		}
	}
	if n := len(p.segs); p.segs[n-1].globstar {
		// A trailing "**" matches one segment or more: "x/**" is what is
		// inside x, not x.
		p.segs = append(p.segs[:n-1], segment{g: glob{{kind: tokStar}}}, segment{globstar: true})
	}
	return p, nil
}

// trailingSpace reports whether git would drop spaces from the end of the
// .gitignore line s: an unescaped space ends it.
func trailingSpace(s string) bool {
	last := -1
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case ' ':
			if last < 0 {
				last = i
			}
		case '\\':
			i++
			last = -1
		default:
			last = -1
		}
	}
	return last >= 0
}

// splitSegs splits tokens at each "/".
func splitSegs(toks []globTok) []glob {
	segs := []glob{nil}
	for _, t := range toks {
		if t.kind == tokSlash {
			segs = append(segs, nil)
			continue
		}
		segs[len(segs)-1] = append(segs[len(segs)-1], t)
	}
	return segs
}

// isDots reports whether g is the literal "." or "..".
func isDots(g glob) bool {
	for _, t := range g {
		if t.kind != tokLit || t.b != '.' {
			return false
		}
	}
	return len(g) <= 2
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
		if p.match(segs) {
			return !p.negate
		}
	}
	return false
}

// match reports whether the path segments name match p.
func (p *pattern) match(name []string) bool {
	if !p.anchored {
		return p.segs[0].g.match(name[len(name)-1])
	}
	return matchSegs(p.segs, name)
}

// matchSegs matches path segments against pattern segments, a globstar
// standing for any number of segments. As in [glob.match], one
// backtracking point is exact: every other pattern segment matches
// exactly one path segment.
func matchSegs(pat []segment, name []string) bool {
	p, n := 0, 0
	star, mark := -1, 0
	for n < len(name) {
		if p < len(pat) {
			if pat[p].globstar {
				star, mark = p, n
				p++
				continue
			}
			if pat[p].g.match(name[n]) {
				p, n = p+1, n+1
				continue
			}
		}
		if star < 0 {
			return false
		}
		mark++
		p, n = star+1, mark
	}
	for p < len(pat) && pat[p].globstar {
		p++
	}
	return p == len(pat)
}
