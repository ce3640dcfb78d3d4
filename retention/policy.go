// Package retention decides which snapshots a retention policy keeps, with
// the meaning of restic's `forget` (v0.18.1): keep-last, keep-hourly,
// keep-daily, keep-weekly, keep-monthly, keep-yearly, keep-within and
// keep-tag, applied to each group of snapshots of one host and one set of
// paths (restic's default --group-by host,paths).
//
// [Keep] and [Apply] are pure: they read the snapshots and the policy and
// nothing else (no clock, no I/O). [Forget] is the one function here that
// touches a repository.
//
// # Time zones
//
// The hourly, daily, weekly (ISO 8601 week), monthly and yearly buckets are
// taken from each snapshot's Time in its own location, as restic does: a
// snapshot read from a repository carries the UTC offset recorded when it
// was taken (encoding/json gives it the process's local zone when that
// offset matches it, else a fixed zone with that offset). So a snapshot
// taken at 00:30 local time in Berlin counts for that local day, not for
// the UTC day before, whatever zone forget runs in. Across a daylight
// saving change, the wall clock is what counts: in Europe/Berlin the
// spring change has no 02:xx hour, and in autumn both 02:xx hours, before
// and after the change, are one hourly bucket.
//
// keep-within counts back from the newest snapshot of the group (not from
// the current time): years, months and days on the calendar, in the
// newest snapshot's location (time.AddDate), then hours as elapsed time.
// A snapshot is kept when its time is strictly after that cut-off. The
// keep-within-hourly (daily, weekly, monthly, yearly) rules count back the
// same way and keep, among the snapshots after their cut-off, the newest
// of each hour (day, …), without a count.
//
// # Differences from restic
//
//   - Snapshots with the same time are ordered by ID, so the choice among
//     them is the same on every run; restic keeps the first one its
//     listing returned.
//   - The newest snapshot for the keep-within rules ignores snapshots
//     after [Policy.Now], as restic does with its clock; when Now is zero
//     every snapshot counts.
//   - Durations are parsed by [span.ParseCalendar], which refuses an
//     empty string, a unit given twice and a number too large, where
//     restic takes the empty string as no span, the last of two units,
//     and panics.
package retention

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/syncd/syncd/chunkstore"
	"github.com/syncd/syncd/internal/span"
)

// Duration is the span of the keep-within rules, restic's "1y2m3d4h",
// read with [span.ParseCalendar].
type Duration = span.Calendar

// Unlimited as a count keeps one snapshot of every bucket (restic's
// "unlimited").
const Unlimited = -1

// Policy says which snapshots of a group to keep. Every rule adds to what
// is kept; the zero Policy keeps nothing.
type Policy struct {
	Last    int // the newest Last snapshots
	Hourly  int // the newest snapshot of each of the last Hourly hours that have one
	Daily   int // … of each of the last Daily days that have one
	Weekly  int // … of each of the last Weekly ISO weeks that have one
	Monthly int // … of each of the last Monthly months that have one
	Yearly  int // … of each of the last Yearly years that have one

	// Within keeps every snapshot newer than this span before the group's
	// newest snapshot.
	Within Duration

	// WithinHourly (Daily, Weekly, Monthly, Yearly) keeps the newest
	// snapshot of each hour (day, ISO week, month, year) among those newer
	// than this span before the group's newest snapshot; the group's
	// oldest snapshot too when it is that new (restic's
	// --keep-within-hourly and so on).
	WithinHourly, WithinDaily, WithinWeekly, WithinMonthly, WithinYearly Duration

	// Tags keeps every snapshot that has all the tags of at least one of
	// the lists (restic's repeated --keep-tag a,b). An empty tag in a list
	// matches a snapshot without tags.
	Tags [][]string

	// Now, when set, is the current time: a snapshot after it (a clock
	// that ran ahead) is not taken as the newest for Within, restic's
	// rule. Zero: the newest snapshot is the newest, whatever its time.
	Now time.Time
}

// IsZero reports whether p has no rule at all, so that it would keep
// nothing.
func (p Policy) IsZero() bool {
	if p.Last != 0 || p.Hourly != 0 || p.Daily != 0 || p.Weekly != 0 || p.Monthly != 0 || p.Yearly != 0 || len(p.Tags) > 0 {
		return false
	}
	for _, w := range p.withins() {
		if !w.d.IsZero() {
			return false
		}
	}
	return true
}

// within is one keep-within rule: its span and its flag's name.
type within struct {
	d    Duration
	name string
}

// withins lists p's keep-within rules in restic's order.
func (p Policy) withins() []within {
	return []within{{p.Within, "keep-within"}, {p.WithinHourly, "keep-within-hourly"}, {p.WithinDaily, "keep-within-daily"},
		{p.WithinWeekly, "keep-within-weekly"}, {p.WithinMonthly, "keep-within-monthly"}, {p.WithinYearly, "keep-within-yearly"}}
}

// Validate reports a count below Unlimited or a negative span (a Policy
// built in code; the parsers refuse both).
func (p Policy) Validate() error {
	for _, c := range []struct {
		n    int
		name string
	}{{p.Last, "last"}, {p.Hourly, "hourly"}, {p.Daily, "daily"}, {p.Weekly, "weekly"}, {p.Monthly, "monthly"}, {p.Yearly, "yearly"}} {
		if c.n < Unlimited {
			return fmt.Errorf("keep-%s %d: want a number >= 0 or unlimited", c.name, c.n)
		}
	}
	for _, w := range p.withins() {
		if d := w.d; d.Years < 0 || d.Months < 0 || d.Days < 0 || d.Hours < 0 {
			return fmt.Errorf("%s %s: negative values are not allowed", w.name, d)
		}
	}
	return nil
}

// String describes p like restic's "Applying Policy" line, e.g. "keep 2
// latest, 7 daily snapshots, daily snapshots within 7d and all snapshots
// within 1m of the newest".
func (p Policy) String() string {
	var keeps []string
	for _, c := range []struct {
		n    int
		name string
	}{{p.Last, "latest"}, {p.Hourly, "hourly"}, {p.Daily, "daily"}, {p.Weekly, "weekly"}, {p.Monthly, "monthly"}, {p.Yearly, "yearly"}} {
		switch {
		case c.n > 0:
			keeps = append(keeps, fmt.Sprintf("%d %s", c.n, c.name))
		case c.n == Unlimited:
			keeps = append(keeps, "all "+c.name)
		}
	}
	var s string
	if len(keeps) > 0 {
		s = strings.Join(keeps, ", ") + " snapshots"
	}
	var keepw []string
	for _, w := range p.withins()[1:] {
		if !w.d.IsZero() {
			keepw = append(keepw, fmt.Sprintf("%s snapshots within %s", strings.TrimPrefix(w.name, "keep-within-"), w.d))
		}
	}
	if len(keepw) > 0 {
		if s != "" {
			s += ", "
		}
		s += strings.Join(keepw, ", ")
	}
	if len(p.Tags) > 0 {
		if s != "" {
			s += " and "
		}
		s += "all snapshots with tags " + tagLists(p.Tags)
	}
	if !p.Within.IsZero() {
		if s != "" {
			s += " and "
		}
		s += fmt.Sprintf("all snapshots within %s of the newest", p.Within)
	}
	if s == "" {
		return "remove"
	}
	return "keep " + s
}

func tagLists(ls [][]string) string {
	var parts []string
	for _, l := range ls {
		parts = append(parts, "["+strings.Join(l, ", ")+"]")
	}
	return "[" + strings.Join(parts, " ") + "]"
}

// Reason says why a snapshot is kept: each rule that keeps it, in
// restic's words ("last snapshot", "daily snapshot", "oldest monthly
// snapshot", "within 30d", "daily within 7d", "has tags [a]").
type Reason struct {
	Matches []string `json:"matches"`
	// Counters are what is left of each count rule after this snapshot
	// (Unlimited stays Unlimited), as in restic's KeepReason.
	Counters Counters `json:"counters"`
}

// Counters are the counts left of the count rules, with the JSON keys of
// restic's KeepReason counters.
type Counters struct {
	Last    int `json:"last,omitempty"`
	Hourly  int `json:"hourly,omitempty"`
	Daily   int `json:"daily,omitempty"`
	Weekly  int `json:"weekly,omitempty"`
	Monthly int `json:"monthly,omitempty"`
	Yearly  int `json:"yearly,omitempty"`
}

// String joins the matches with commas.
func (r Reason) String() string { return strings.Join(r.Matches, ", ") }

// bucket is one count rule: it keeps the newest snapshot of each of the
// first count distinct keys met going from the newest snapshot back.
type bucket struct {
	count  int
	key    func(t time.Time, nr int) int
	last   int
	reason string
}

func hourKey(t time.Time, _ int) int {
	return t.Year()*1_000_000 + int(t.Month())*10_000 + t.Day()*100 + t.Hour()
}
func dayKey(t time.Time, _ int) int { return t.Year()*10_000 + int(t.Month())*100 + t.Day() }
func weekKey(t time.Time, _ int) int {
	y, w := t.ISOWeek()
	return y*100 + w
}
func monthKey(t time.Time, _ int) int { return t.Year()*100 + int(t.Month()) }
func yearKey(t time.Time, _ int) int  { return t.Year() }
func eachKey(_ time.Time, nr int) int { return nr }

// Keep applies p to snaps, one group, and reports which snapshots p keeps.
// It does no I/O and does not modify snaps: every snapshot lands in exactly
// one of keep or drop, both newest first, and reasons[i] says why keep[i]
// stays. With p.IsZero() everything is dropped.
//
// Going from the newest snapshot back, each count rule keeps a snapshot
// whose hour (day, ISO week, month, year; for Last: any snapshot) differs
// from that of the last one it kept, until its count is used up. When a
// count is not used up by the oldest snapshot, that oldest snapshot is kept
// too ("oldest daily snapshot"), so the history kept is as long as
// possible. Each keep-within-hourly (daily, …) rule does the same without
// a count among the snapshots after its cut-off. Within and Tags keep
// snapshots without buckets.
func Keep(snaps []*chunkstore.Snapshot, p Policy) (keep, drop []*chunkstore.Snapshot, reasons []Reason) {
	list := slices.Clone(snaps)
	slices.SortStableFunc(list, func(a, b *chunkstore.Snapshot) int {
		if c := b.Time.Compare(a.Time); c != 0 {
			return c
		}
		return strings.Compare(a.ID().String(), b.ID().String())
	})
	if len(list) == 0 {
		return nil, nil, nil
	}
	buckets := []bucket{
		{p.Last, eachKey, -1, "last snapshot"},
		{p.Hourly, hourKey, -1, "hourly snapshot"},
		{p.Daily, dayKey, -1, "daily snapshot"},
		{p.Weekly, weekKey, -1, "weekly snapshot"},
		{p.Monthly, monthKey, -1, "monthly snapshot"},
		{p.Yearly, yearKey, -1, "yearly snapshot"},
	}
	latest := newest(list, p.Now)
	// withinBuckets keep the snapshots after their cut-off like an
	// unlimited count would.
	var withinBuckets []bucket
	var cutoffs []time.Time
	for _, w := range []struct {
		d      Duration
		key    func(time.Time, int) int
		reason string
	}{
		{p.WithinHourly, hourKey, "hourly within"}, {p.WithinDaily, dayKey, "daily within"}, {p.WithinWeekly, weekKey, "weekly within"},
		{p.WithinMonthly, monthKey, "monthly within"}, {p.WithinYearly, yearKey, "yearly within"},
	} {
		if !w.d.IsZero() {
			withinBuckets = append(withinBuckets, bucket{Unlimited, w.key, -1, w.reason + " " + w.d.String()})
			cutoffs = append(cutoffs, w.d.Before(latest))
		}
	}
	oldest := len(list) - 1
	for nr, sn := range list {
		var matches []string
		for _, l := range p.Tags {
			if hasTags(sn, l) {
				matches = append(matches, "has tags ["+strings.Join(l, ", ")+"]")
			}
		}
		if !p.Within.IsZero() && sn.Time.After(p.Within.Before(latest)) {
			matches = append(matches, "within "+p.Within.String())
		}
		for i := range buckets {
			if b := &buckets[i]; b.count > 0 || b.count == Unlimited {
				matches = b.take(matches, sn, nr, nr == oldest)
			}
		}
		for i := range withinBuckets {
			if sn.Time.After(cutoffs[i]) {
				matches = withinBuckets[i].take(matches, sn, nr, nr == oldest)
			}
		}
		if len(matches) > 0 {
			keep = append(keep, sn)
			reasons = append(reasons, Reason{Matches: matches, Counters: Counters{
				Last: buckets[0].count, Hourly: buckets[1].count, Daily: buckets[2].count,
				Weekly: buckets[3].count, Monthly: buckets[4].count, Yearly: buckets[5].count,
			}})
		} else {
			drop = append(drop, sn)
		}
	}
	return keep, drop, reasons
}

// take keeps sn (the nr-th newest) for b when its key differs from that
// of the last snapshot b kept, or when it is the oldest snapshot: it
// appends b's reason to matches ("oldest …" when the key is the same) and
// uses up one of b's count.
func (b *bucket) take(matches []string, sn *chunkstore.Snapshot, nr int, oldest bool) []string {
	k := b.key(sn.Time, nr)
	if k == b.last && !oldest {
		return matches
	}
	reason := b.reason
	if k == b.last {
		reason = "oldest " + reason
	}
	b.last = k
	if b.count > 0 {
		b.count--
	}
	return append(matches, reason)
}

// newest returns the time of the newest snapshot of list that is before
// now (any, when now is zero); the zero time when there is none, so that
// Within then keeps everything, as in restic.
func newest(list []*chunkstore.Snapshot, now time.Time) time.Time {
	var t time.Time
	for _, sn := range list {
		if sn.Time.After(t) && (now.IsZero() || sn.Time.Before(now)) {
			t = sn.Time
		}
	}
	return t
}

// hasTags reports whether sn has every tag of l; an empty tag in l matches
// a snapshot without tags (restic's HasTags).
func hasTags(sn *chunkstore.Snapshot, l []string) bool {
	for _, tag := range l {
		if tag == "" && len(sn.Tags) == 0 {
			return true
		}
		if !slices.Contains(sn.Tags, tag) {
			return false
		}
	}
	return true
}
