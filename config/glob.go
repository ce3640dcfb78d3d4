package config

import (
	"errors"
	"fmt"
)

// A glob matches one path segment (a name without "/") the way git's
// wildmatch does inside a segment: byte by byte, so "?" is one byte and
// "é" is two. It is immutable once compiled.
type glob []globTok

type globKind uint8

const (
	tokLit   globKind = iota // one literal byte
	tokAny                   // "?": any one byte
	tokStar                  // "*" (or a run of them): any run of bytes
	tokClass                 // "[...]": one byte in set
	tokSlash                 // "/": only while compiling, split out by [splitSegs]
)

type globTok struct {
	kind   globKind
	b      byte       // tokLit
	set    *[256]bool // tokClass: the bytes it matches, negation applied
	double bool       // tokStar: written as two or more stars
}

// Character class names git's wildmatch knows in "[[:name:]]", with the
// bytes each holds. git's own ctype is ASCII only, and its "space" is tab,
// line feed, carriage return and space (not \v or \f).
var classes = map[string]func(c byte) bool{
	"alnum":  func(c byte) bool { return isAlpha(c) || isDigit(c) },
	"alpha":  isAlpha,
	"blank":  func(c byte) bool { return c == ' ' || c == '\t' },
	"cntrl":  func(c byte) bool { return c < 0x20 || c == 0x7f },
	"digit":  isDigit,
	"graph":  func(c byte) bool { return c > 0x20 && c < 0x7f },
	"lower":  func(c byte) bool { return c >= 'a' && c <= 'z' },
	"print":  func(c byte) bool { return c >= 0x20 && c < 0x7f },
	"punct":  func(c byte) bool { return c > 0x20 && c < 0x7f && !isAlpha(c) && !isDigit(c) },
	"space":  func(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' },
	"upper":  func(c byte) bool { return c >= 'A' && c <= 'Z' },
	"xdigit": func(c byte) bool { return isDigit(c) || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F' },
}

func isAlpha(c byte) bool { return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' }
func isDigit(c byte) bool { return c >= '0' && c <= '9' }

var (
	errLoneBackslash = errors.New(`ends in a lone "\", which escapes nothing`)
	errUnclosed      = errors.New(`unclosed "[" (write "\[" for a literal one)`)
	errSlashInClass  = errors.New(`"/" inside [...], which never matches`)
	errEscapedSlash  = errors.New(`"\/": write "/"`)
	errNonASCIIClass = errors.New("a non-ASCII character inside [...]: git matches bytes there, not characters")
)

// tokenize reads a pattern body as git's wildmatch does: "\" escapes the
// next byte, "?" and runs of "*" are wildcards, "[" opens a class (see
// [readClass]) and "/" separates segments. What git would never match
// (an unclosed class, an unknown class name, a lone trailing "\") is an
// error, as are the forms syncd refuses: "\/", "/" or a non-ASCII byte
// inside a class.
func tokenize(s string) ([]globTok, error) {
	var toks []globTok
	for i := 0; i < len(s); i++ {
		switch c := s[i]; c {
		case '\\':
			if i+1 == len(s) {
				return nil, errLoneBackslash
			}
			i++
			if s[i] == '/' {
				return nil, errEscapedSlash
			}
			toks = append(toks, globTok{kind: tokLit, b: s[i]})
		case '?':
			toks = append(toks, globTok{kind: tokAny})
		case '*':
			if n := len(toks); n > 0 && toks[n-1].kind == tokStar && s[i-1] == '*' {
				toks[n-1].double = true
			} else {
				toks = append(toks, globTok{kind: tokStar})
			}
		case '[':
			set, next, err := readClass(s, i)
			if err != nil {
				return nil, err
			}
			toks = append(toks, globTok{kind: tokClass, set: set})
			i = next - 1
		case '/':
			toks = append(toks, globTok{kind: tokSlash})
		default:
			toks = append(toks, globTok{kind: tokLit, b: c})
		}
	}
	return toks, nil
}

// readClass reads the class that opens at s[open] ("[") and returns the
// bytes it matches and the index just past its "]". As in git: "!" or "^"
// first negates; a "]" first (after any negation) is a member; "\" escapes
// a member; "a-z" is a range when "-" follows a plain member and is not
// last; "[:name:]" is a named class; "[:" without a closing ":]" is a
// literal "[".
func readClass(s string, open int) (*[256]bool, int, error) {
	var in [256]bool
	p := open + 1
	negate := p < len(s) && (s[p] == '!' || s[p] == '^')
	if negate {
		p++
	}
	prev := -1       // the previous plain member, a range's start
	var refused byte // a member syncd refuses: "/" or a non-ASCII byte
	for first := true; first || p < len(s) && s[p] != ']'; first = false {
		if p >= len(s) {
			return nil, 0, errUnclosed
		}
		c := s[p]
		switch {
		case c == '\\':
			p++
			if p >= len(s) {
				return nil, 0, errUnclosed
			}
			c = s[p]
			in[c] = true
			prev = int(c)
		case c == '-' && prev >= 0 && p+1 < len(s) && s[p+1] != ']':
			p++
			hi := s[p]
			if hi == '\\' {
				p++
				if p >= len(s) {
					return nil, 0, errUnclosed
				}
				hi = s[p]
			}
			for b := prev; b <= int(hi); b++ {
				in[b] = true
			}
			c, prev = hi, -1
		case c == '[' && p+1 < len(s) && s[p+1] == ':':
			end := p + 2
			for end < len(s) && s[end] != ']' {
				end++
			}
			if end == len(s) {
				return nil, 0, errUnclosed
			}
			if end-1 < p+2 || s[end-1] != ':' { // no ":]": a literal "["
				in['['] = true
				prev = '['
				break
			}
			name := s[p+2 : end-1]
			is, ok := classes[name]
			if !ok {
				return nil, 0, fmt.Errorf("unknown character class [:%s:]", name)
			}
			for b := 0; b < 0x80; b++ {
				in[b] = in[b] || is(byte(b))
			}
			p, prev = end, -1
		default:
			in[c] = true
			prev = int(c)
		}
		if c == '/' || c >= 0x80 {
			refused = c
		}
		p++
	}
	switch {
	case p >= len(s):
		return nil, 0, errUnclosed
	case refused == '/':
		return nil, 0, errSlashInClass
	case refused != 0:
		return nil, 0, errNonASCIIClass
	}
	if negate {
		for b := range in {
			in[b] = !in[b]
		}
	}
	return &in, p + 1, nil
}

// match reports whether name, one path segment, matches g in full. A star
// matches any run of bytes; the classic one-backtrack-point loop is exact
// for globs whose other tokens each match one byte, and linear in the
// common cases.
func (g glob) match(name string) bool {
	t, n := 0, 0
	star, mark := -1, 0 // the last star seen and where its run ends
	for n < len(name) {
		if t < len(g) {
			switch tok := &g[t]; tok.kind {
			case tokStar:
				star, mark = t, n
				t++
				continue
			case tokAny:
				t, n = t+1, n+1
				continue
			case tokLit:
				if tok.b == name[n] {
					t, n = t+1, n+1
					continue
				}
			case tokClass:
				if tok.set[name[n]] {
					t, n = t+1, n+1
					continue
				}
			}
		}
		if star < 0 {
			return false
		}
		mark++
		t, n = star+1, mark
	}
	for t < len(g) && g[t].kind == tokStar {
		t++
	}
	return t == len(g)
}

// isDoubleStar reports whether g is a run of two or more stars and nothing
// else: as a whole segment of a pattern with a "/", that is "**".
func (g glob) isDoubleStar() bool {
	return len(g) == 1 && g[0].kind == tokStar && g[0].double
}

// hasDoubleStar reports whether g holds a run of two or more stars.
func (g glob) hasDoubleStar() bool {
	for _, t := range g {
		if t.kind == tokStar && t.double {
			return true
		}
	}
	return false
}
