package retention

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Duration is a span of calendar time in years, months, days and hours,
// the argument of --keep-within: restic's "1y2m3d4h". The zero Duration
// keeps nothing.
type Duration struct {
	Years, Months, Days, Hours int
}

// ParseDuration reads a Duration as restic does: numbers, each followed by
// a unit, y (years), m (months), d (days) or h (hours), in any order, such
// as "30d", "1y2m3d4h" or "12h". Surrounding space is ignored; the empty
// string is the zero Duration; a unit given twice keeps its last number
// (as in restic). Unlike restic, a negative number is an error here, not
// later.
func ParseDuration(s string) (Duration, error) {
	var d Duration
	rest := strings.TrimSpace(s)
	for rest != "" {
		if rest[0] == '-' {
			return Duration{}, fmt.Errorf("duration %q: negative values are not allowed", s)
		}
		i := 0
		for i < len(rest) && '0' <= rest[i] && rest[i] <= '9' {
			i++
		}
		if i == 0 {
			return Duration{}, fmt.Errorf("duration %q: want numbers with units y, m (months), d or h, like 30d or 1y2m3d4h", s)
		}
		n, err := strconv.Atoi(rest[:i])
		if err != nil || n > 1_000_000 {
			return Duration{}, fmt.Errorf("duration %q: %s is too large", s, rest[:i])
		}
		if i == len(rest) {
			return Duration{}, fmt.Errorf("duration %q: no unit after %d (want y, m, d or h)", s, n)
		}
		switch rest[i] {
		case 'y':
			d.Years = n
		case 'm':
			d.Months = n
		case 'd':
			d.Days = n
		case 'h':
			d.Hours = n
		default:
			return Duration{}, fmt.Errorf("duration %q: unknown unit %q after %d (want y, m for months, d or h)", s, rest[i], n)
		}
		rest = rest[i+1:]
	}
	return d, nil
}

// IsZero reports whether d is the zero span.
func (d Duration) IsZero() bool { return d == Duration{} }

// Before returns t moved back by d, calendar units first and in t's
// location (t.AddDate), then the hours as elapsed time: restic's cut-off
// for --keep-within when t is the newest snapshot's time.
func (d Duration) Before(t time.Time) time.Time {
	return t.AddDate(-d.Years, -d.Months, -d.Days).Add(-time.Duration(d.Hours) * time.Hour)
}

// String formats d as ParseDuration reads it ("1y2m3d4h"); the zero
// Duration is "".
func (d Duration) String() string {
	var b []byte
	for _, p := range []struct {
		n    int
		unit byte
	}{{d.Years, 'y'}, {d.Months, 'm'}, {d.Days, 'd'}, {d.Hours, 'h'}} {
		if p.n != 0 {
			b = strconv.AppendInt(b, int64(p.n), 10)
			b = append(b, p.unit)
		}
	}
	return string(b)
}
