package version

import (
	"encoding/json"
	"runtime/debug"
	"testing"
	"time"
)

func TestFromBuildInfo(t *testing.T) {
	stamped := &debug.BuildInfo{
		GoVersion: "go1.26.8",
		Main:      debug.Module{Path: "github.com/syncd/syncd", Version: "v1.2.3"},
		Settings: []debug.BuildSetting{
			{Key: "-buildmode", Value: "exe"},
			{Key: "vcs", Value: "git"},
			{Key: "vcs.revision", Value: "0123abcd4567890123abcd4567890123abcd4567"},
			{Key: "vcs.time", Value: "2026-03-01T10:00:00Z"},
			{Key: "vcs.modified", Value: "true"},
		},
	}
	tests := []struct {
		name string
		bi   *debug.BuildInfo
		want string
	}{
		{"stamped", stamped, "syncd v1.2.3 (rev 0123abcd4567, modified, 2026-03-01T10:00:00Z, go1.26.8)"},
		{"devel", &debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Version: "(devel)"}}, "syncd devel (go1.26.8)"},
		{"empty version", &debug.BuildInfo{GoVersion: "go1.26.8"}, "syncd devel (go1.26.8)"},
		{"clean tree", &debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Version: "v0.0.0-20260301100000-0123abcd4567"},
			Settings: []debug.BuildSetting{{Key: "vcs.revision", Value: "0123abcd"}, {Key: "vcs.modified", Value: "false"}}},
			"syncd v0.0.0-20260301100000-0123abcd4567 (rev 0123abcd, go1.26.8)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := FromBuildInfo("syncd", tt.bi).String(); got != tt.want {
				t.Errorf("String() = %q, want %q", got, tt.want)
			}
		})
	}

	v := FromBuildInfo("syncd", stamped)
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	var back Info
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	if back != v {
		t.Errorf("JSON round trip: got %+v, want %+v (%s)", back, v, b)
	}
	if want := time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC); !v.Time.Equal(want) {
		t.Errorf("Time = %v, want %v", v.Time, want)
	}
}

func TestReadWithoutBuildInfo(t *testing.T) {
	v := FromBuildInfo("restore", nil)
	if v.Version != Devel || v.Go == "" || v.Revision != "" {
		t.Errorf("FromBuildInfo(nil) = %+v, want Devel, a Go version and no revision", v)
	}
	if r := Read("restore"); r.Program != "restore" || r.Go == "" {
		t.Errorf("Read = %+v", r)
	}
}
