// Package span is syncd's one parser for spans of time written in the
// configuration and on the command line. Both kinds below share one
// grammar: one or more numbers, each followed by its unit, with no sign and
// no space between them ("1d12h"); space around the whole is ignored. The
// empty string, a negative number, a unit not of the kind, a unit given
// twice and a number too large are errors. Errors do not repeat the input
// or name the flag or key: the caller adds both.
//
//   - A calendar span ([Calendar], [ParseCalendar]) is restic's
//     --keep-within syntax: whole numbers with units y (years), m (months),
//     d (days), h (hours), such as "30d" or "1y2m3d4h". Every keep-within
//     flag and keep_within key takes one.
//   - An elapsed span ([ParseElapsed]) is a [time.Duration]: Go's units ns,
//     us (µs), ms, s, m (minutes), h, plus d for 24 hours, with fractions,
//     such as "90s", "26h", "2d", "1d12h" or "1.5h". Every other duration
//     (restore drill --max-age, drill_every, repeat, timeouts, debounce,
//     rescan, max_lag) takes one.
//
// "m" is months in a calendar span (restic's meaning) and minutes in an
// elapsed span (Go's); the error for a unit the kind does not have says
// which units it has.
package span

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
)

// MaxCalendar is the largest number a calendar span takes for one unit; a
// larger one is an error ("too large"), not a wrap-around.
const MaxCalendar = 1_000_000

// Calendar is a span of calendar time in years, months, days and hours.
// The zero Calendar is the empty span.
type Calendar struct {
	Years, Months, Days, Hours int
}

// calendarUnits is what the errors of ParseCalendar say it accepts.
const calendarUnits = "want units y, m (months), d or h, like 30d or 1y2m3d4h"

// elapsedUnits is what the errors of ParseElapsed say it accepts.
const elapsedUnits = "want units d, h, m (minutes), s, ms, us or ns, like 90s, 26h or 2d"

// term is one number and its unit.
type term struct{ num, unit string }

// scan splits s into terms. It checks what both kinds share: not empty, no
// sign, a number before and a unit after each term, each unit once.
// fraction allows a decimal point in numbers.
func scan(s string, fraction bool, units string) ([]term, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return nil, fmt.Errorf("empty: %s", units)
	}
	var terms []term
	seen := map[string]bool{}
	for rest := s; rest != ""; {
		if rest[0] == '-' {
			return nil, fmt.Errorf("negative values are not allowed: %s", units)
		}
		if rest[0] == '+' {
			return nil, fmt.Errorf("no sign allowed: %s", units)
		}
		i := 0
		for i < len(rest) && ('0' <= rest[i] && rest[i] <= '9' || fraction && rest[i] == '.') {
			i++
		}
		if i == 0 {
			return nil, fmt.Errorf("no number before %q: %s", rest, units)
		}
		if !fraction && i < len(rest) && rest[i] == '.' {
			return nil, fmt.Errorf("whole numbers only, not %s.: %s", rest[:i], units)
		}
		j := i
		for j < len(rest) && !('0' <= rest[j] && rest[j] <= '9' || rest[j] == '.' || rest[j] == '-' || rest[j] == '+') {
			j++
		}
		if j == i {
			return nil, fmt.Errorf("no unit after %s: %s", rest[:i], units)
		}
		t := term{rest[:i], rest[i:j]}
		if seen[t.unit] {
			return nil, fmt.Errorf("unit %q given twice: %s", t.unit, units)
		}
		seen[t.unit] = true
		terms = append(terms, t)
		rest = rest[j:]
	}
	return terms, nil
}

// ParseCalendar reads a calendar span as restic's --keep-within does, with
// these differences, all refusals: the empty string (restic: no span), a
// negative number (restic refuses it later), a unit given twice (restic:
// the last one counts) and a number above [MaxCalendar] (restic panics).
// "0d" is the zero span.
func ParseCalendar(s string) (Calendar, error) {
	terms, err := scan(s, false, calendarUnits)
	if err != nil {
		return Calendar{}, err
	}
	var c Calendar
	for _, t := range terms {
		n, err := strconv.Atoi(t.num)
		if err != nil || n > MaxCalendar {
			return Calendar{}, fmt.Errorf("%s%s is too large (at most %d of a unit)", t.num, t.unit, MaxCalendar)
		}
		switch t.unit {
		case "y":
			c.Years = n
		case "m":
			c.Months = n
		case "d":
			c.Days = n
		case "h":
			c.Hours = n
		default:
			return Calendar{}, fmt.Errorf("unknown unit %q after %s: %s", t.unit, t.num, calendarUnits)
		}
	}
	return c, nil
}

// IsZero reports whether c is the empty span.
func (c Calendar) IsZero() bool { return c == Calendar{} }

// Before returns t moved back by c: years, months and days on the
// calendar in t's location (t.AddDate, so one month before March 31 is
// March 3), then the hours as elapsed time. It is restic's cut-off for
// --keep-within when t is the newest snapshot's time.
func (c Calendar) Before(t time.Time) time.Time {
	return t.AddDate(-c.Years, -c.Months, -c.Days).Add(-time.Duration(c.Hours) * time.Hour)
}

// String formats c as restic does and ParseCalendar reads it ("1y2m3d4h");
// the zero Calendar is "".
func (c Calendar) String() string {
	var b []byte
	for _, p := range []struct {
		n    int
		unit byte
	}{{c.Years, 'y'}, {c.Months, 'm'}, {c.Days, 'd'}, {c.Hours, 'h'}} {
		if p.n != 0 {
			b = strconv.AppendInt(b, int64(p.n), 10)
			b = append(b, p.unit)
		}
	}
	return string(b)
}

// errTooLarge is an elapsed span beyond time.Duration (about 292 years).
var errTooLarge = errors.New("too large (at most about 106751d)")

// elapsed is the set of units of an elapsed span: Go's, and d.
var elapsed = map[string]bool{"ns": true, "us": true, "µs": true, "μs": true, "ms": true, "s": true, "m": true, "h": true, "d": true}

// ParseElapsed reads an elapsed span: what [time.ParseDuration] reads
// without a sign, plus d for 24 hours ("2d", "1d12h", "1.5d"). "0s" (or
// "0", as in Go) is 0.
func ParseElapsed(s string) (time.Duration, error) {
	if strings.TrimSpace(s) == "0" {
		return 0, nil
	}
	terms, err := scan(s, true, elapsedUnits)
	if err != nil {
		return 0, err
	}
	var total time.Duration
	for _, t := range terms {
		if _, ok := elapsed[t.unit]; !ok {
			return 0, fmt.Errorf("unknown unit %q after %s: %s", t.unit, t.num, elapsedUnits)
		}
		if strings.Count(t.num, ".") > 1 || strings.Trim(t.num, ".") == "" {
			return 0, fmt.Errorf("bad number %q: %s", t.num, elapsedUnits)
		}
		// Go parses each term exactly (its only error left is overflow);
		// a day is parsed as hours and multiplied, with an overflow check.
		goUnit, mult := t.unit, time.Duration(1)
		if t.unit == "d" {
			goUnit, mult = "h", 24
		}
		d, err := time.ParseDuration(t.num + goUnit)
		if err != nil || d > math.MaxInt64/mult || total > math.MaxInt64-d*mult {
			return 0, fmt.Errorf("%s%s is %w", t.num, t.unit, errTooLarge)
		}
		total += d * mult
	}
	return total, nil
}
