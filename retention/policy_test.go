package retention

import (
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/syncd/syncd/chunkstore"
)

// mk makes one group of snapshots at the given times.
func mk(times ...time.Time) []*chunkstore.Snapshot {
	var out []*chunkstore.Snapshot
	for _, tm := range times {
		out = append(out, &chunkstore.Snapshot{Time: tm, Host: "h", Paths: []string{"/p"}})
	}
	return out
}

// hourly makes a snapshot every hour from start, n of them.
func hourly(start time.Time, n int) []time.Time {
	var out []time.Time
	for i := range n {
		out = append(out, start.Add(time.Duration(i)*time.Hour))
	}
	return out
}

// stamps formats snapshot times in UTC, to compare.
func stamps(snaps []*chunkstore.Snapshot) []string {
	var out []string
	for _, s := range snaps {
		out = append(out, s.Time.UTC().Format("2006-01-02T15:04"))
	}
	return out
}

func reasonStrings(rs []Reason) []string {
	var out []string
	for _, r := range rs {
		out = append(out, r.String())
	}
	return out
}

func TestKeep(t *testing.T) {
	berlin := loc(t, "Europe/Berlin")
	bt := func(y int, m time.Month, d, h, min int) time.Time { return time.Date(y, m, d, h, min, 0, 0, berlin) }
	cest, cet := time.FixedZone("CEST", 2*3600), time.FixedZone("CET", 3600)
	tenDays := hourly(utc(2026, 5, 1, 0, 0), 240) // 2026-05-01 00:00 to 05-10 23:00
	for _, tc := range []struct {
		name    string
		times   []time.Time
		p       Policy
		keep    []string // UTC, newest first
		reasons []string // optional: the reasons for keep
	}{
		{name: "empty policy keeps nothing", times: tenDays[:5], p: Policy{}},
		{name: "last 3", times: tenDays, p: Policy{Last: 3},
			keep: []string{"2026-05-10T23:00", "2026-05-10T22:00", "2026-05-10T21:00"}},
		{name: "last more than there are", times: tenDays[:2], p: Policy{Last: 5},
			keep: []string{"2026-05-01T01:00", "2026-05-01T00:00"}, reasons: []string{"last snapshot", "last snapshot"}},
		{name: "daily 3: newest of each of the last 3 days", times: tenDays, p: Policy{Daily: 3},
			keep: []string{"2026-05-10T23:00", "2026-05-09T23:00", "2026-05-08T23:00"}},
		{name: "daily beyond the history keeps the oldest too", times: tenDays[:50], p: Policy{Daily: 5},
			keep:    []string{"2026-05-03T01:00", "2026-05-02T23:00", "2026-05-01T23:00", "2026-05-01T00:00"},
			reasons: []string{"daily snapshot", "daily snapshot", "daily snapshot", "oldest daily snapshot"}},
		{name: "hourly 2 of minutes", times: []time.Time{utc(2026, 1, 1, 10, 5), utc(2026, 1, 1, 10, 50), utc(2026, 1, 1, 11, 10), utc(2026, 1, 1, 11, 20)},
			p: Policy{Hourly: 2}, keep: []string{"2026-01-01T11:20", "2026-01-01T10:50"}},
		{name: "unlimited daily", times: tenDays[:72], p: Policy{Daily: Unlimited},
			keep:    []string{"2026-05-03T23:00", "2026-05-02T23:00", "2026-05-01T23:00", "2026-05-01T00:00"},
			reasons: []string{"daily snapshot", "daily snapshot", "daily snapshot", "oldest daily snapshot"}},
		{name: "several rules on one snapshot", times: tenDays[:30], p: Policy{Last: 1, Daily: 1, Monthly: 1},
			keep: []string{"2026-05-02T05:00"}, reasons: []string{"last snapshot, daily snapshot, monthly snapshot"}},
		{name: "weekly is the ISO week, across new year",
			times: []time.Time{utc(2025, 12, 28, 12, 0), utc(2025, 12, 29, 12, 0), utc(2026, 1, 1, 12, 0)},
			p:     Policy{Weekly: Unlimited}, keep: []string{"2026-01-01T12:00", "2025-12-28T12:00"}},
		{name: "yearly is the calendar year",
			times: []time.Time{utc(2025, 12, 28, 12, 0), utc(2025, 12, 29, 12, 0), utc(2026, 1, 1, 12, 0)},
			p:     Policy{Yearly: Unlimited}, keep: []string{"2026-01-01T12:00", "2025-12-29T12:00", "2025-12-28T12:00"},
			reasons: []string{"yearly snapshot", "yearly snapshot", "oldest yearly snapshot"}},
		{name: "monthly 2", times: []time.Time{utc(2026, 1, 31, 23, 0), utc(2026, 2, 1, 0, 0), utc(2026, 2, 28, 1, 0), utc(2026, 3, 1, 0, 0)},
			p: Policy{Monthly: 2}, keep: []string{"2026-03-01T00:00", "2026-02-28T01:00"}},

		// time zones: buckets use the wall clock of each snapshot's own location
		{name: "daily in UTC", times: []time.Time{utc(2026, 6, 1, 20, 30), utc(2026, 6, 1, 21, 30), utc(2026, 6, 1, 22, 30), utc(2026, 6, 2, 10, 0)},
			p: Policy{Daily: 2}, keep: []string{"2026-06-02T10:00", "2026-06-01T22:30"}},
		{name: "the same instants in Berlin", times: inLoc(berlin, utc(2026, 6, 1, 20, 30), utc(2026, 6, 1, 21, 30), utc(2026, 6, 1, 22, 30), utc(2026, 6, 2, 10, 0)),
			p: Policy{Daily: 2}, keep: []string{"2026-06-02T10:00", "2026-06-01T21:30"}},
		{name: "the same instants in New York", times: inLoc(loc(t, "America/New_York"), utc(2026, 6, 1, 20, 30), utc(2026, 6, 1, 21, 30), utc(2026, 6, 1, 22, 30), utc(2026, 6, 2, 10, 0)),
			p: Policy{Daily: 2}, keep: []string{"2026-06-02T10:00", "2026-06-01T22:30"}},
		{name: "mixed zones, each its own wall clock", times: []time.Time{utc(2026, 6, 1, 23, 30), time.Date(2026, 6, 2, 0, 15, 0, 0, time.FixedZone("", -5*3600))},
			p: Policy{Daily: 1}, keep: []string{"2026-06-02T05:15"}},

		// daylight saving changes in Berlin
		{name: "spring: 01:59 CET and 03:00 CEST are two hours, one minute apart",
			times: []time.Time{bt(2026, 3, 29, 1, 30), bt(2026, 3, 29, 1, 59), bt(2026, 3, 29, 3, 0), bt(2026, 3, 29, 3, 40)},
			p:     Policy{Hourly: 2}, keep: []string{"2026-03-29T01:40", "2026-03-29T00:59"}},
		{name: "autumn: both 02:xx hours are one hourly bucket",
			times: []time.Time{bt(2025, 10, 26, 1, 30), time.Date(2025, 10, 26, 2, 40, 0, 0, cest).In(berlin),
				time.Date(2025, 10, 26, 2, 20, 0, 0, cet).In(berlin), bt(2025, 10, 26, 3, 5)},
			p: Policy{Hourly: Unlimited}, keep: []string{"2025-10-26T02:05", "2025-10-26T01:20", "2025-10-25T23:30"}},
		{name: "autumn: the 25-hour day is one daily bucket",
			times: []time.Time{bt(2025, 10, 26, 0, 0), bt(2025, 10, 26, 12, 0), bt(2025, 10, 26, 23, 59), bt(2025, 10, 27, 0, 0)},
			p:     Policy{Daily: 2}, keep: []string{"2025-10-26T23:00", "2025-10-26T22:59"}},
		{name: "within 1d across spring is 23 hours",
			times: []time.Time{utc(2026, 3, 28, 10, 30), utc(2026, 3, 28, 11, 30), bt(2026, 3, 29, 12, 0)},
			p:     Policy{Within: Duration{Days: 1}}, keep: []string{"2026-03-29T10:00", "2026-03-28T11:30"}},
		{name: "within 24h across spring is 24 hours",
			times: []time.Time{utc(2026, 3, 28, 9, 30), utc(2026, 3, 28, 10, 30), bt(2026, 3, 29, 12, 0)},
			p:     Policy{Within: Duration{Hours: 24}}, keep: []string{"2026-03-29T10:00", "2026-03-28T10:30"}},
		{name: "within 1d across autumn is 25 hours",
			times: []time.Time{utc(2025, 10, 25, 9, 30), utc(2025, 10, 25, 10, 30), bt(2025, 10, 26, 12, 0)},
			p:     Policy{Within: Duration{Days: 1}}, keep: []string{"2025-10-26T11:00", "2025-10-25T10:30"}},

		// keep-within boundaries
		{name: "within: exactly at the cut-off goes",
			times: []time.Time{utc(2026, 5, 8, 12, 0), utc(2026, 5, 8, 12, 1), utc(2026, 5, 10, 12, 0)},
			p:     Policy{Within: Duration{Days: 2}}, keep: []string{"2026-05-10T12:00", "2026-05-08T12:01"},
			reasons: []string{"within 2d", "within 2d"}},
		{name: "within: a nanosecond after the cut-off stays",
			times: []time.Time{utc(2026, 5, 8, 12, 0).Add(time.Nanosecond), utc(2026, 5, 10, 12, 0)},
			p:     Policy{Within: Duration{Days: 2}}, keep: []string{"2026-05-10T12:00", "2026-05-08T12:00"}},
		{name: "within a month from March 31 reaches back to March 3",
			times: []time.Time{utc(2026, 2, 28, 10, 0), utc(2026, 3, 3, 10, 0), utc(2026, 3, 3, 10, 1), utc(2026, 3, 31, 10, 0)},
			p:     Policy{Within: Duration{Months: 1}}, keep: []string{"2026-03-31T10:00", "2026-03-03T10:01"}},
		{name: "within counts from the newest snapshot, not from now",
			times: []time.Time{utc(2019, 12, 1, 0, 0), utc(2020, 1, 1, 0, 0), utc(2020, 1, 2, 0, 0)},
			p:     Policy{Within: Duration{Days: 3}, Now: utc(2026, 1, 1, 0, 0)}, keep: []string{"2020-01-02T00:00", "2020-01-01T00:00"}},
		{name: "within: a snapshot after Now is not the newest",
			times: []time.Time{utc(2026, 1, 1, 0, 0), utc(2026, 1, 9, 0, 0), utc(2036, 1, 10, 0, 0)},
			p:     Policy{Within: Duration{Days: 3}, Now: utc(2026, 1, 10, 0, 0)}, keep: []string{"2036-01-10T00:00", "2026-01-09T00:00"}},
		{name: "within: every snapshot after Now keeps everything, as restic",
			times: []time.Time{utc(2030, 1, 1, 0, 0), utc(2036, 1, 10, 0, 0)},
			p:     Policy{Within: Duration{Days: 3}, Now: utc(2026, 1, 10, 0, 0)}, keep: []string{"2036-01-10T00:00", "2030-01-01T00:00"}},
		{name: "within: without Now the future snapshot is the newest",
			times: []time.Time{utc(2026, 1, 1, 0, 0), utc(2026, 1, 9, 0, 0), utc(2036, 1, 10, 0, 0)},
			p:     Policy{Within: Duration{Days: 3}}, keep: []string{"2036-01-10T00:00"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			snaps := mk(tc.times...)
			in := slices.Clone(snaps)
			keep, drop, reasons := Keep(snaps, tc.p)
			if got := stamps(keep); !slices.Equal(got, tc.keep) {
				t.Errorf("kept %v, want %v (reasons %v)", got, tc.keep, reasonStrings(reasons))
			}
			if tc.reasons != nil && !slices.Equal(reasonStrings(reasons), tc.reasons) {
				t.Errorf("reasons %q, want %q", reasonStrings(reasons), tc.reasons)
			}
			checkPartition(t, snaps, keep, drop, reasons)
			if !slices.Equal(in, snaps) {
				t.Error("Keep reordered its argument")
			}
		})
	}
}

func inLoc(l *time.Location, ts ...time.Time) []time.Time {
	var out []time.Time
	for _, tm := range ts {
		out = append(out, tm.In(l))
	}
	return out
}

// checkPartition checks that keep and drop split all, newest first, with a
// reason for each kept one.
func checkPartition(t *testing.T, all, keep, drop []*chunkstore.Snapshot, reasons []Reason) {
	t.Helper()
	if len(keep)+len(drop) != len(all) {
		t.Fatalf("kept %d + dropped %d of %d", len(keep), len(drop), len(all))
	}
	seen := map[*chunkstore.Snapshot]bool{}
	for _, s := range slices.Concat(keep, drop) {
		if seen[s] || !slices.Contains(all, s) {
			t.Fatalf("snapshot %s twice or not from the input", s.Time)
		}
		seen[s] = true
	}
	if len(reasons) != len(keep) {
		t.Fatalf("%d reasons for %d kept", len(reasons), len(keep))
	}
	for i, r := range reasons {
		if len(r.Matches) == 0 {
			t.Errorf("kept %s without a reason", keep[i].Time)
		}
	}
	for _, l := range [][]*chunkstore.Snapshot{keep, drop} {
		if !slices.IsSortedFunc(l, func(a, b *chunkstore.Snapshot) int { return b.Time.Compare(a.Time) }) {
			t.Errorf("not newest first: %v", stamps(l))
		}
	}
}

func TestKeepTags(t *testing.T) {
	var snaps []*chunkstore.Snapshot
	for i, tags := range [][]string{nil, {"a"}, {"a", "b"}, {"b"}, {"c"}, {}} {
		snaps = append(snaps, &chunkstore.Snapshot{Time: utc(2026, 1, 1+i, 0, 0), Tags: tags})
	}
	for _, tc := range []struct {
		tags    [][]string
		keep    []string
		reasons []string
	}{
		{[][]string{{"a"}}, []string{"2026-01-03T00:00", "2026-01-02T00:00"}, []string{"has tags [a]", "has tags [a]"}},
		{[][]string{{"a", "b"}}, []string{"2026-01-03T00:00"}, []string{"has tags [a, b]"}},
		{[][]string{{"b"}, {"c"}}, []string{"2026-01-05T00:00", "2026-01-04T00:00", "2026-01-03T00:00"}, nil},
		{[][]string{{"a"}, {"a", "b"}}, []string{"2026-01-03T00:00", "2026-01-02T00:00"}, []string{"has tags [a], has tags [a, b]", "has tags [a]"}},
		{[][]string{{""}}, []string{"2026-01-06T00:00", "2026-01-01T00:00"}, []string{"has tags []", "has tags []"}},
		{[][]string{{"x"}}, nil, nil},
	} {
		keep, drop, reasons := Keep(snaps, Policy{Tags: tc.tags})
		if got := stamps(keep); !slices.Equal(got, tc.keep) {
			t.Errorf("tags %q: kept %v, want %v", tc.tags, got, tc.keep)
		}
		if tc.reasons != nil && !slices.Equal(reasonStrings(reasons), tc.reasons) {
			t.Errorf("tags %q: reasons %q, want %q", tc.tags, reasonStrings(reasons), tc.reasons)
		}
		checkPartition(t, snaps, keep, drop, reasons)
	}
}

// TestKeepGenerated checks rules on random histories against what they
// mean, computed another way: Last keeps the newest N; Daily keeps the
// newest snapshot of each of the newest N days that have one, plus the
// oldest snapshot when fewer days have one.
func TestKeepGenerated(t *testing.T) {
	zones := []*time.Location{time.UTC, loc(t, "Europe/Berlin"), loc(t, "America/New_York"), loc(t, "Australia/Lord_Howe")}
	r := rand.New(rand.NewPCG(7, 11))
	for round := range 200 {
		z := zones[round%len(zones)]
		n := r.IntN(60)
		tm := time.Date(2025, time.Month(1+r.IntN(12)), 1+r.IntN(28), r.IntN(24), r.IntN(60), 0, 0, z)
		var times []time.Time
		for range n {
			tm = tm.Add(time.Duration(1+r.IntN(40*60)) * time.Minute)
			times = append(times, tm)
		}
		snaps := mk(times...)
		r.Shuffle(len(snaps), func(i, j int) { snaps[i], snaps[j] = snaps[j], snaps[i] })
		last, daily := r.IntN(10), 1+r.IntN(10)

		keep, drop, reasons := Keep(snaps, Policy{Last: last})
		checkPartition(t, snaps, keep, drop, reasons)
		if len(keep) != min(last, n) || (n > 0 && last > 0 && !keep[0].Time.Equal(times[n-1])) {
			t.Fatalf("round %d: last %d of %d kept %d", round, last, n, len(keep))
		}

		keep, drop, reasons = Keep(snaps, Policy{Daily: daily})
		checkPartition(t, snaps, keep, drop, reasons)
		var want []string
		for i := n - 1; i >= 0 && len(want) < daily; i-- {
			if i == n-1 || !sameDay(times[i], times[i+1]) {
				want = append(want, times[i].UTC().Format("2006-01-02T15:04"))
			}
		}
		if len(want) < daily && n > 1 && sameDay(times[0], times[1]) { // the oldest rule
			want = append(want, times[0].UTC().Format("2006-01-02T15:04"))
		}
		if got := stamps(keep); !slices.Equal(got, want) {
			t.Fatalf("round %d (%s): daily %d kept\n%v\nwant\n%v", round, z, daily, got, want)
		}
	}
}

func sameDay(a, b time.Time) bool {
	ya, ma, da := a.Date()
	yb, mb, db := b.Date()
	return ya == yb && ma == mb && da == db
}

func TestPolicyString(t *testing.T) {
	for _, tc := range []struct {
		p    Policy
		want string
	}{
		{Policy{}, "remove"},
		{Policy{Last: 2, Daily: 7}, "keep 2 latest, 7 daily snapshots"},
		{Policy{Weekly: Unlimited, Tags: [][]string{{"a", "b"}}}, "keep all weekly snapshots and all snapshots with tags [[a, b]]"},
		{Policy{Within: Duration{Months: 1}}, "keep all snapshots within 1m of the newest"},
		// restic's order and words
		{Policy{Last: 1, WithinDaily: Duration{Days: 7}, WithinYearly: Duration{Years: 5}, Tags: [][]string{{"a"}}, Within: Duration{Hours: 2}},
			"keep 1 latest snapshots, daily snapshots within 7d, yearly snapshots within 5y and all snapshots with tags [[a]] and all snapshots within 2h of the newest"},
		{Policy{WithinHourly: Duration{Days: 1}}, "keep hourly snapshots within 1d"},
	} {
		if got := tc.p.String(); got != tc.want {
			t.Errorf("%+v: %q, want %q", tc.p, got, tc.want)
		}
	}
	if (Policy{Tags: [][]string{{"a"}}}).IsZero() || !(Policy{}).IsZero() || (Policy{WithinMonthly: Duration{Months: 1}}).IsZero() {
		t.Error("IsZero wrong")
	}
	for _, bad := range []Policy{{Last: -2}, {Yearly: -5}, {Within: Duration{Days: -1}}, {WithinWeekly: Duration{Hours: -1}}} {
		if err := bad.Validate(); err == nil || !strings.Contains(err.Error(), "keep-") {
			t.Errorf("%+v: Validate = %v", bad, err)
		}
	}
	if err := (Policy{Hourly: Unlimited, Last: 3}).Validate(); err != nil {
		t.Error(err)
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
