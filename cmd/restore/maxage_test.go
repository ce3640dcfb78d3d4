package main

import (
	"testing"
	"time"
)

// TestParseAge: restore drill --max-age reads an elapsed span with the
// parser every other duration uses (internal/span); each bad value is one
// line naming the flag.
func TestParseAge(t *testing.T) {
	const units = "want units d, h, m (minutes), s, ms, us or ns, like 90s, 26h or 2d"
	for _, tc := range []struct {
		in   string
		want time.Duration
		err  string
	}{
		{in: "26h", want: 26 * time.Hour},
		{in: "2d", want: 48 * time.Hour},
		{in: "1d12h", want: 36 * time.Hour},
		{in: "1.5d", want: 36 * time.Hour},
		{in: "90m", want: 90 * time.Minute}, // minutes, as in Go
		{in: "-1h", err: `--max-age "-1h": negative values are not allowed: ` + units},
		{in: "2w", err: `--max-age "2w": unknown unit "w" after 2: ` + units},
		{in: "", err: `--max-age "": empty: ` + units},
		{in: "999999d", err: `--max-age "999999d": 999999d is too large (at most about 106751d)`},
		{in: "0s", err: `--max-age "0s": want a duration above 0, such as 26h or 2d`},
	} {
		got, err := parseAge(tc.in)
		if tc.err != "" {
			if err == nil || err.Error() != tc.err {
				t.Errorf("parseAge(%q) = %v, %v; want the error %q", tc.in, got, err, tc.err)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("parseAge(%q) = %v, %v; want %v", tc.in, got, err, tc.want)
		}
	}
}
