package span

import (
	"strings"
	"testing"
	"time"
)

func TestParseCalendar(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want Calendar
		err  string // the whole error; "" for none
	}{
		{in: "30d", want: Calendar{Days: 30}},
		{in: "1y2m3d4h", want: Calendar{Years: 1, Months: 2, Days: 3, Hours: 4}},
		{in: "4h3d", want: Calendar{Days: 3, Hours: 4}},
		{in: " 12h ", want: Calendar{Hours: 12}},
		{in: "0d", want: Calendar{}},
		{in: "1000000y", want: Calendar{Years: MaxCalendar}},
		{in: "", err: "empty: want units y, m (months), d or h, like 30d or 1y2m3d4h"},
		{in: "  ", err: "empty: want units y, m (months), d or h, like 30d or 1y2m3d4h"},
		{in: "-1d", err: "negative values are not allowed: want units y, m (months), d or h, like 30d or 1y2m3d4h"},
		{in: "1d-2h", err: "negative values are not allowed: want units y, m (months), d or h, like 30d or 1y2m3d4h"},
		{in: "1w", err: `unknown unit "w" after 1: want units y, m (months), d or h, like 30d or 1y2m3d4h`},
		{in: "30min", err: `unknown unit "min" after 30: want units y, m (months), d or h, like 30d or 1y2m3d4h`},
		{in: "1.5d", err: `whole numbers only, not 1.: want units y, m (months), d or h, like 30d or 1y2m3d4h`},
		{in: "5", err: "no unit after 5: want units y, m (months), d or h, like 30d or 1y2m3d4h"},
		{in: "d", err: `no number before "d": want units y, m (months), d or h, like 30d or 1y2m3d4h`},
		{in: "+1d", err: "no sign allowed: want units y, m (months), d or h, like 30d or 1y2m3d4h"},
		{in: "1d2d", err: `unit "d" given twice: want units y, m (months), d or h, like 30d or 1y2m3d4h`},
		{in: "1000001y", err: "1000001y is too large (at most 1000000 of a unit)"},
		{in: "99999999999999999999d", err: "99999999999999999999d is too large (at most 1000000 of a unit)"},
	} {
		got, err := ParseCalendar(tc.in)
		if tc.err != "" {
			if err == nil || err.Error() != tc.err {
				t.Errorf("ParseCalendar(%q) = %+v, %v; want the error %q", tc.in, got, err, tc.err)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("ParseCalendar(%q) = %+v, %v; want %+v", tc.in, got, err, tc.want)
		}
	}
}

func TestParseElapsed(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want time.Duration
		err  string
	}{
		{in: "90s", want: 90 * time.Second},
		{in: "26h", want: 26 * time.Hour},
		{in: "2d", want: 48 * time.Hour},
		{in: "1d12h", want: 36 * time.Hour},
		{in: "1.5d", want: 36 * time.Hour},
		{in: "30m", want: 30 * time.Minute}, // minutes here, months in a calendar span
		{in: "1h30m15.5s", want: time.Hour + 30*time.Minute + 15500*time.Millisecond},
		{in: "100ms", want: 100 * time.Millisecond},
		{in: "3µs", want: 3 * time.Microsecond},
		{in: "0", want: 0},
		{in: "0s", want: 0},
		{in: "106751d", want: 106751 * 24 * time.Hour},
		{in: "", err: "empty: want units d, h, m (minutes), s, ms, us or ns, like 90s, 26h or 2d"},
		{in: "-1h", err: "negative values are not allowed: want units d, h, m (minutes), s, ms, us or ns, like 90s, 26h or 2d"},
		{in: "1y", err: `unknown unit "y" after 1: want units d, h, m (minutes), s, ms, us or ns, like 90s, 26h or 2d`},
		{in: "2w", err: `unknown unit "w" after 2: want units d, h, m (minutes), s, ms, us or ns, like 90s, 26h or 2d`},
		{in: "26", err: "no unit after 26: want units d, h, m (minutes), s, ms, us or ns, like 90s, 26h or 2d"},
		{in: "1..5h", err: `bad number "1..5": want units d, h, m (minutes), s, ms, us or ns, like 90s, 26h or 2d`},
		{in: ".h", err: `bad number ".": want units d, h, m (minutes), s, ms, us or ns, like 90s, 26h or 2d`},
		{in: "1h1h", err: `unit "h" given twice: want units d, h, m (minutes), s, ms, us or ns, like 90s, 26h or 2d`},
		{in: "106752d", err: "106752d is too large (at most about 106751d)"},
		{in: "99999999999999999999h", err: "99999999999999999999h is too large (at most about 106751d)"},
		{in: "106751d23h59m59s", err: "59m is too large (at most about 106751d)"},
	} {
		got, err := ParseElapsed(tc.in)
		if tc.err != "" {
			if err == nil || err.Error() != tc.err {
				t.Errorf("ParseElapsed(%q) = %v, %v; want the error %q", tc.in, got, err, tc.err)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("ParseElapsed(%q) = %v, %v; want %v", tc.in, got, err, tc.want)
		}
	}
}

func TestCalendarString(t *testing.T) {
	for _, c := range []Calendar{{Days: 30}, {Years: 1, Months: 2, Days: 3, Hours: 4}, {Hours: 7}} {
		back, err := ParseCalendar(c.String())
		if err != nil || back != c {
			t.Errorf("%+v: String %q parses as %+v, %v", c, c.String(), back, err)
		}
	}
	if got := (Calendar{Years: 1, Hours: 5}).String(); got != "1y5h" {
		t.Errorf("String = %q, want 1y5h", got)
	}
	if got := (Calendar{}).String(); got != "" {
		t.Errorf("zero String = %q, want empty", got)
	}
}

func TestCalendarBefore(t *testing.T) {
	berlin, err := time.LoadLocation("Europe/Berlin")
	if err != nil {
		t.Fatal(err)
	}
	utc := func(y int, m time.Month, d, h int) time.Time { return time.Date(y, m, d, h, 0, 0, 0, time.UTC) }
	for _, tc := range []struct {
		name string
		c    Calendar
		t    time.Time
		want time.Time
	}{
		{"month end normalizes like AddDate", Calendar{Months: 1}, utc(2026, 3, 31, 10), utc(2026, 3, 3, 10)},
		{"hours are elapsed time", Calendar{Days: 1, Hours: 2}, utc(2026, 3, 2, 1), utc(2026, 2, 28, 23)},
		// across the spring change a calendar day in Berlin is 23 hours
		{"spring day", Calendar{Days: 1}, time.Date(2026, 3, 29, 12, 0, 0, 0, berlin), utc(2026, 3, 28, 11)},
		// and across the autumn change 25 hours
		{"autumn day", Calendar{Days: 1}, time.Date(2025, 10, 26, 12, 0, 0, 0, berlin), utc(2025, 10, 25, 10)},
		{"24 hours are 24 hours", Calendar{Hours: 24}, time.Date(2026, 3, 29, 12, 0, 0, 0, berlin), utc(2026, 3, 28, 10)},
	} {
		if got := tc.c.Before(tc.t); !got.Equal(tc.want) {
			t.Errorf("%s: %s before %s = %s, want %s", tc.name, tc.c, tc.t, got.UTC(), tc.want)
		}
	}
}

// FuzzParse: no input panics; a calendar span prints back as a string that
// parses to it; an elapsed span is never negative; an error is one line.
func FuzzParse(f *testing.F) {
	for _, s := range []string{"30d", "1y2m3d4h", " 12h", "1d1d", "", "-1d", "5", "1w", "99999999999999999999d", "1.5h", "2d", "1µs"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if c, err := ParseCalendar(s); err == nil {
			if c.Years < 0 || c.Months < 0 || c.Days < 0 || c.Hours < 0 {
				t.Fatalf("%q parsed as negative %+v", s, c)
			}
			if back, err := ParseCalendar(c.String()); !c.IsZero() && (err != nil || back != c) {
				t.Fatalf("%q → %+v → %q → %+v, %v", s, c, c.String(), back, err)
			}
		} else if strings.Contains(err.Error(), "\n") && !strings.Contains(s, "\n") {
			t.Fatalf("%q: error of more than one line: %v", s, err)
		}
		if d, err := ParseElapsed(s); err == nil && d < 0 {
			t.Fatalf("%q parsed as %v", s, d)
		}
	})
}
