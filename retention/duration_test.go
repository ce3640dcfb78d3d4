package retention

import (
	"strings"
	"testing"
	"time"
)

func TestParseDuration(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want Duration
		err  string // a part of the error; "" for none
	}{
		{in: "30d", want: Duration{Days: 30}},
		{in: "1y2m3d4h", want: Duration{Years: 1, Months: 2, Days: 3, Hours: 4}},
		{in: "4h3d", want: Duration{Days: 3, Hours: 4}},
		{in: " 12h ", want: Duration{Hours: 12}},
		{in: "1d2d", want: Duration{Days: 2}}, // restic: the last one wins
		{in: "", want: Duration{}},
		{in: "0d", want: Duration{}},
		{in: "5", err: "no unit after 5"},
		{in: "d", err: "want numbers with units"},
		{in: "-1d", err: "negative"},
		{in: "1w", err: `unknown unit 'w'`},
		{in: "1.5d", err: `unknown unit '.'`},
		{in: "99999999999d", err: "too large"},
	} {
		got, err := ParseDuration(tc.in)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("ParseDuration(%q) = %v, %v; want an error with %q", tc.in, got, err, tc.err)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("ParseDuration(%q) = %+v, %v; want %+v", tc.in, got, err, tc.want)
		}
	}
}

func TestDurationString(t *testing.T) {
	for _, d := range []Duration{{Days: 30}, {Years: 1, Months: 2, Days: 3, Hours: 4}, {Hours: 7}, {}} {
		back, err := ParseDuration(d.String())
		if err != nil || back != d {
			t.Errorf("%+v: String %q parses as %+v, %v", d, d.String(), back, err)
		}
	}
	if got := (Duration{Years: 1, Hours: 5}).String(); got != "1y5h" {
		t.Errorf("String = %q, want 1y5h", got)
	}
}

func TestDurationBefore(t *testing.T) {
	berlin := loc(t, "Europe/Berlin")
	for _, tc := range []struct {
		name string
		d    Duration
		t    time.Time
		want time.Time
	}{
		{"month end normalizes like AddDate", Duration{Months: 1}, utc(2026, 3, 31, 10, 0), utc(2026, 3, 3, 10, 0)},
		{"hours are elapsed time", Duration{Days: 1, Hours: 2}, utc(2026, 3, 2, 1, 0), utc(2026, 2, 28, 23, 0)},
		// across the spring change a calendar day in Berlin is 23 hours
		{"spring day", Duration{Days: 1}, time.Date(2026, 3, 29, 12, 0, 0, 0, berlin), utc(2026, 3, 28, 11, 0)},
		// and across the autumn change 25 hours
		{"autumn day", Duration{Days: 1}, time.Date(2025, 10, 26, 12, 0, 0, 0, berlin), utc(2025, 10, 25, 10, 0)},
		{"24 hours are 24 hours", Duration{Hours: 24}, time.Date(2026, 3, 29, 12, 0, 0, 0, berlin), utc(2026, 3, 28, 10, 0)},
	} {
		if got := tc.d.Before(tc.t); !got.Equal(tc.want) {
			t.Errorf("%s: %s before %s = %s, want %s", tc.name, tc.d, tc.t, got.UTC(), tc.want)
		}
	}
}

func loc(t *testing.T, name string) *time.Location {
	t.Helper()
	l, err := time.LoadLocation(name)
	if err != nil {
		t.Fatalf("time zone %s: %v", name, err)
	}
	return l
}

func utc(y int, m time.Month, d, h, min int) time.Time {
	return time.Date(y, m, d, h, min, 0, 0, time.UTC)
}

// FuzzParseDuration: no input panics, and what parses prints back as a
// string that parses to the same span.
func FuzzParseDuration(f *testing.F) {
	for _, s := range []string{"30d", "1y2m3d4h", " 12h", "1d1d", "", "-1d", "5", "1w", "99999999999999999999d"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		d, err := ParseDuration(s)
		if err != nil {
			return
		}
		if d.Years < 0 || d.Months < 0 || d.Days < 0 || d.Hours < 0 {
			t.Fatalf("%q parsed as negative %+v", s, d)
		}
		back, err := ParseDuration(d.String())
		if err != nil || back != d {
			t.Fatalf("%q → %+v → %q → %+v, %v", s, d, d.String(), back, err)
		}
	})
}
