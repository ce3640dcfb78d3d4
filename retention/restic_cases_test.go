package retention_test

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/syncd/syncd/chunkstore"
	"github.com/syncd/syncd/internal/span"
	"github.com/syncd/syncd/retention"
)

// policyFromFlags builds a Policy from restic forget's --keep flags, as
// restic reads them: counts are numbers or unlimited, spans restic's
// 1y2m3d4h, --keep-tag a,b one list per flag.
func policyFromFlags(args []string) (retention.Policy, error) {
	var p retention.Policy
	counts := map[string]*int{"--keep-last": &p.Last, "--keep-hourly": &p.Hourly, "--keep-daily": &p.Daily,
		"--keep-weekly": &p.Weekly, "--keep-monthly": &p.Monthly, "--keep-yearly": &p.Yearly}
	spans := map[string]*retention.Duration{"--keep-within": &p.Within, "--keep-within-hourly": &p.WithinHourly,
		"--keep-within-daily": &p.WithinDaily, "--keep-within-weekly": &p.WithinWeekly,
		"--keep-within-monthly": &p.WithinMonthly, "--keep-within-yearly": &p.WithinYearly}
	for i := 0; i+1 < len(args); i += 2 {
		flag, v := args[i], args[i+1]
		switch {
		case counts[flag] != nil:
			n, err := strconv.Atoi(v)
			if v == "unlimited" {
				n, err = retention.Unlimited, nil
			}
			if err != nil {
				return p, fmt.Errorf("%s %s: %v", flag, v, err)
			}
			*counts[flag] = n
		case spans[flag] != nil:
			d, err := span.ParseCalendar(v)
			if err != nil {
				return p, fmt.Errorf("%s %s: %v", flag, v, err)
			}
			*spans[flag] = d
		case flag == "--keep-tag":
			p.Tags = append(p.Tags, strings.Split(v, ","))
		default:
			// not a policy flag (a filter or --group-by): the caller's
		}
	}
	return p, nil
}

// goldenSnapshot is a snapshot in restic's golden files.
type goldenSnapshot struct {
	Time  time.Time `json:"time"`
	Paths []string  `json:"paths"`
	Tags  []string  `json:"tags"`
}

func (s goldenSnapshot) String() string {
	return fmt.Sprintf("%s tags %q paths %q", s.Time.UTC().Format(time.RFC3339Nano), s.Tags, s.Paths)
}

func ourSnapshot(sn *chunkstore.Snapshot) goldenSnapshot {
	return goldenSnapshot{Time: sn.Time, Paths: sn.Paths, Tags: sn.Tags}
}

// TestResticPolicyCases runs restic v0.18.1's own forget-policy test
// (TestApplyPolicy in internal/restic/snapshot_policy_test.go) against
// Keep: its 103 snapshots, its 40 policies, and its golden files, copied
// into testdata/restic (see the README there). Every kept snapshot, in
// order, with every reason and every counter, must be restic's.
func TestResticPolicyCases(t *testing.T) {
	dir := filepath.Join("testdata", "restic")
	buf, err := os.ReadFile(filepath.Join(dir, "policy_test.json"))
	if err != nil {
		t.Fatal(err)
	}
	var cases struct {
		Snapshots []struct {
			Time  string   `json:"time"`
			Tags  []string `json:"tags"`
			Paths []string `json:"paths"`
		} `json:"snapshots"`
		Policies [][]string `json:"policies"`
	}
	if err := json.Unmarshal(buf, &cases); err != nil {
		t.Fatal(err)
	}
	var snaps []*chunkstore.Snapshot
	for _, s := range cases.Snapshots {
		tm, err := time.Parse(time.DateTime, s.Time) // restic's parseTimeUTC
		if err != nil {
			t.Fatal(err)
		}
		snaps = append(snaps, &chunkstore.Snapshot{Time: tm.UTC(), Tags: s.Tags, Paths: s.Paths})
	}
	if len(snaps) != 103 || len(cases.Policies) != 40 {
		t.Fatalf("%d snapshots and %d policies, want restic's 103 and 40", len(snaps), len(cases.Policies))
	}
	for i, flags := range cases.Policies {
		t.Run(fmt.Sprintf("%d %s", i, strings.Join(flags, " ")), func(t *testing.T) {
			p, err := policyFromFlags(flags)
			if err != nil {
				t.Fatal(err)
			}
			var want struct {
				Keep    []goldenSnapshot `json:"keep"`
				Reasons []struct {
					Snapshot goldenSnapshot     `json:"snapshot"`
					Matches  []string           `json:"matches"`
					Counters retention.Counters `json:"counters"`
				} `json:"reasons"`
			}
			buf, err := os.ReadFile(filepath.Join(dir, fmt.Sprintf("policy_keep_snapshots_%d", i)))
			if err != nil {
				t.Fatal(err)
			}
			if err := json.Unmarshal(buf, &want); err != nil {
				t.Fatal(err)
			}
			keep, drop, reasons := retention.Keep(snaps, p)

			// restic's own checks first
			if len(keep)+len(drop) != len(snaps) {
				t.Errorf("kept %d + dropped %d, want %d", len(keep), len(drop), len(snaps))
			}
			if sum := policySum(p); sum > 0 && len(keep) > sum {
				t.Errorf("kept %d, the policy allows %d", len(keep), sum)
			}
			if len(keep) != len(reasons) {
				t.Errorf("%d reasons for %d kept", len(reasons), len(keep))
			}

			var got, exp []string
			for _, sn := range keep {
				got = append(got, ourSnapshot(sn).String())
			}
			for _, sn := range want.Keep {
				exp = append(exp, sn.String())
			}
			if !slices.Equal(got, exp) {
				t.Errorf("kept\n%s\nrestic keeps\n%s", strings.Join(got, "\n"), strings.Join(exp, "\n"))
			}
			got, exp = nil, nil
			for i, r := range reasons {
				got = append(got, fmt.Sprintf("%s: %q %+v", ourSnapshot(keep[i]), r.Matches, r.Counters))
			}
			for _, r := range want.Reasons {
				exp = append(exp, fmt.Sprintf("%s: %q %+v", r.Snapshot, r.Matches, r.Counters))
			}
			if !slices.Equal(got, exp) {
				t.Errorf("reasons\n%s\nrestic's\n%s", strings.Join(got, "\n"), strings.Join(exp, "\n"))
			}
		})
	}
}

// policySum is restic's: the most snapshots p may keep, 0 when a count
// is unlimited.
func policySum(p retention.Policy) int {
	if p.Last == -1 || p.Hourly == -1 || p.Daily == -1 || p.Weekly == -1 || p.Monthly == -1 || p.Yearly == -1 {
		return 0
	}
	return p.Last + p.Hourly + p.Daily + p.Weekly + p.Monthly + p.Yearly
}

// TestResticPolicyEmpty is restic's TestExpireSnapshotOps: which policies
// are empty, and the most each may keep.
func TestResticPolicyEmpty(t *testing.T) {
	for _, tc := range []struct {
		empty bool
		sum   int
		p     retention.Policy
	}{
		{true, 0, retention.Policy{}},
		{true, 0, retention.Policy{Tags: [][]string{}}},
		{false, 22, retention.Policy{Daily: 7, Weekly: 2, Monthly: 3, Yearly: 10}},
		{false, 0, retention.Policy{WithinDaily: retention.Duration{Days: 1}}},
	} {
		if tc.p.IsZero() != tc.empty || policySum(tc.p) != tc.sum {
			t.Errorf("%+v: IsZero %v, sum %d; want %v, %d", tc.p, tc.p.IsZero(), policySum(tc.p), tc.empty, tc.sum)
		}
	}
}
