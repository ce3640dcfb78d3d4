package config

import (
	"fmt"
	"math"
	"strconv"
	"strings"
)

// rateUnits are the units a rate may be written in, with their bytes:
// decimal and binary bytes, and bits as links are sold.
var rateUnits = map[string]float64{
	"b": 1, "kb": 1e3, "mb": 1e6, "gb": 1e9,
	"kib": 1 << 10, "mib": 1 << 20, "gib": 1 << 30,
	"bit": 1.0 / 8, "kbit": 1e3 / 8, "mbit": 1e6 / 8, "gbit": 1e9 / 8,
}

// ParseRate parses a transfer rate in bytes per second: a positive
// number and a unit, "/s" optional: "50MB/s", "4MiB", "100Mbit/s",
// "1.5GB". Units: B, KB, MB, GB (decimal), KiB, MiB, GiB (binary), kbit,
// Mbit, Gbit (bits); any case. A number alone is bytes per second. Zero,
// a negative rate and one under 1 byte per second are refused: a limit
// is left out for none.
func ParseRate(s string) (int64, error) {
	t := strings.TrimSpace(s)
	t, _ = strings.CutSuffix(t, "/s")
	t = strings.TrimSpace(t)
	i := strings.IndexFunc(t, func(r rune) bool { return (r < '0' || r > '9') && r != '.' && r != '-' && r != '+' })
	num, unit := t, "b"
	if i >= 0 {
		num, unit = strings.TrimSpace(t[:i]), strings.ToLower(strings.TrimSpace(t[i:]))
	}
	mult, ok := rateUnits[unit]
	x, err := strconv.ParseFloat(num, 64)
	switch {
	case num == "" || err != nil:
		return 0, fmt.Errorf("want a rate like 50MB/s or 100Mbit/s, not %q", s)
	case !ok:
		return 0, fmt.Errorf("unknown unit %q in %q (B, KB, MB, GB, KiB, MiB, GiB, bit, kbit, Mbit, Gbit)", strings.TrimSpace(t[i:]), s)
	case x <= 0 || math.IsNaN(x):
		return 0, fmt.Errorf("a rate of %q is no rate: it must be above 0 (leave the key out for no limit)", s)
	}
	b := x * mult
	if b < 1 {
		return 0, fmt.Errorf("%q is under 1 byte per second", s)
	}
	if b > math.MaxInt64/2 {
		return 0, fmt.Errorf("%q is too large", s)
	}
	return int64(b), nil
}

// rate decodes a rate (see [ParseRate]) into *p; null leaves it 0.
func (d *decoder) rate(p *int64) handler {
	return parsed(d, p, ParseRate, func(path, _ string, err error) string { return fmt.Sprintf("%s: %v", path, err) })
}
