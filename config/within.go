package config

import (
	"fmt"
	"strconv"
	"time"
)

// Within is a span of calendar time, the value of keep_within: restic's
// --keep-within duration, counted in years, months, days and hours.
type Within struct {
	Years, Months, Days, Hours int
}

// ParseWithin parses a keep_within value: one or more numbers, each with a
// unit, "y" (years), "m" (months, as in restic), "d" (days) or "h" (hours),
// each unit at most once, in any order: "30d", "12h", "1d12h", "1y6m".
func ParseWithin(s string) (Within, error) {
	var w Within
	if s == "" {
		return w, fmt.Errorf("empty span: want a number and a unit like 30d")
	}
	seen := map[byte]bool{}
	for rest := s; rest != ""; {
		i := 0
		for i < len(rest) && '0' <= rest[i] && rest[i] <= '9' {
			i++
		}
		if i == 0 || i == len(rest) {
			return Within{}, fmt.Errorf("bad span %q: want numbers with units y, m (months), d or h, like 30d or 1d12h", s)
		}
		n, err := strconv.Atoi(rest[:i])
		if err != nil || n > 1_000_000 {
			return Within{}, fmt.Errorf("bad span %q: %s is too large", s, rest[:i])
		}
		unit := rest[i]
		if seen[unit] {
			return Within{}, fmt.Errorf("bad span %q: unit %q given twice", s, unit)
		}
		seen[unit] = true
		switch unit {
		case 'y':
			w.Years = n
		case 'm':
			w.Months = n
		case 'd':
			w.Days = n
		case 'h':
			w.Hours = n
		default:
			return Within{}, fmt.Errorf("bad span %q: unknown unit %q (want y, m for months, d or h)", s, unit)
		}
		rest = rest[i+1:]
	}
	return w, nil
}

// Before returns t moved back by w: the oldest time a snapshot may have to
// be kept by keep_within when t is the time of the newest snapshot.
func (w Within) Before(t time.Time) time.Time {
	return t.AddDate(-w.Years, -w.Months, -w.Days).Add(-time.Duration(w.Hours) * time.Hour)
}

// String formats w as ParseWithin reads it, "0h" for the zero span.
func (w Within) String() string {
	var b []byte
	for _, p := range []struct {
		n    int
		unit byte
	}{{w.Years, 'y'}, {w.Months, 'm'}, {w.Days, 'd'}, {w.Hours, 'h'}} {
		if p.n != 0 {
			b = strconv.AppendInt(b, int64(p.n), 10)
			b = append(b, p.unit)
		}
	}
	if len(b) == 0 {
		return "0h"
	}
	return string(b)
}
