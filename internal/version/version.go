// Package version reports what a binary was built from: the module
// version, the VCS revision and the Go toolchain, as runtime/debug
// records them. It imports nothing of ours, so any package (the daemon's
// /status and /metrics included) may use it.
package version

import (
	"fmt"
	"runtime"
	"runtime/debug"
	"strings"
	"time"
)

// Devel is the Version of a binary built without a module version: `go
// build` in a checkout without VCS stamping (-buildvcs=false), `go run`
// and test binaries.
const Devel = "devel"

// Info is what a binary was built from. Fields the build did not record
// are empty: Revision and Time need `go build` from a git checkout
// (stamping is on by default there; -buildvcs=false turns it off).
type Info struct {
	Program string `json:"program"` // "syncd" or "restore"
	// Version is the main module's version: a tag such as v1.2.3, a
	// pseudo-version the go command derives from the revision (with
	// +dirty when the tree was modified), or Devel.
	Version  string    `json:"version"`
	Revision string    `json:"revision,omitempty"`   // full VCS revision (vcs.revision)
	Modified bool      `json:"modified,omitempty"`   // the tree had uncommitted changes (vcs.modified)
	Time     time.Time `json:"commit_time,omitzero"` // commit time of Revision (vcs.time): not when it was built
	Go       string    `json:"go"`                   // toolchain, e.g. go1.26.8
}

// Read returns the Info of the running binary, named program. It never
// fails: without build information (a binary built outside module mode)
// Version is Devel and Go is runtime.Version().
func Read(program string) Info {
	bi, _ := debug.ReadBuildInfo()
	return FromBuildInfo(program, bi)
}

// FromBuildInfo returns the Info that bi records for program. bi may be
// nil.
func FromBuildInfo(program string, bi *debug.BuildInfo) Info {
	v := Info{Program: program, Version: Devel, Go: runtime.Version()}
	if bi == nil {
		return v
	}
	if bi.GoVersion != "" {
		v.Go = bi.GoVersion
	}
	if m := bi.Main.Version; m != "" && m != "(devel)" {
		v.Version = m
	}
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			v.Revision = s.Value
		case "vcs.modified":
			v.Modified = s.Value == "true"
		case "vcs.time":
			if t, err := time.Parse(time.RFC3339, s.Value); err == nil {
				v.Time = t.UTC()
			}
		}
	}
	return v
}

// ShortRevision returns the first 12 hex digits of Revision, or "".
func (v Info) ShortRevision() string {
	if len(v.Revision) > 12 {
		return v.Revision[:12]
	}
	return v.Revision
}

// String returns the one line `syncd version` prints, e.g.
//
//	syncd v1.2.3 (rev 0123abcd4567, modified, 2026-03-01T10:00:00Z, go1.26.8)
//	syncd devel (go1.26.8)
func (v Info) String() string {
	var parts []string
	if r := v.ShortRevision(); r != "" {
		parts = append(parts, "rev "+r)
	}
	if v.Modified {
		parts = append(parts, "modified")
	}
	if !v.Time.IsZero() {
		parts = append(parts, v.Time.Format(time.RFC3339))
	}
	parts = append(parts, v.Go)
	return fmt.Sprintf("%s %s (%s)", v.Program, v.Version, strings.Join(parts, ", "))
}
