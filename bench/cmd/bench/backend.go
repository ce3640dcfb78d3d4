package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
)

// A Backend says where the repositories of a set of measurements live. Each
// backend gets its own section in the output file (markers
// <!-- bench:NAME:begin --> / <!-- bench:NAME:end -->) and its own
// measurement ids (NAME/initial, …). The local directory is one backend; an
// S3 one (MinIO) plugs in the same way: Repo makes a bucket or prefix and
// returns the URL and credentials both tools need.
type Backend struct {
	Name  string // short id: "local"
	Title string // section heading
	Note  string // what the report should say about this backend, if anything

	// Procedure, when set, replaces the report's generic procedure text.
	Procedure string

	// Anchor names the tool ours is compared with in the table ("restic"
	// when empty), and AnchorVersion describes it for the header.
	Anchor, AnchorVersion string

	// Defs are the rows this backend can measure (nil: metricDefs).
	Defs []metric

	// Metrics are the ids of the measurements made on this backend (nil:
	// all of metricDefs).
	Metrics []string

	// Repo returns a fresh, empty location for a repository called name
	// (unique within the run) to be used by tool ("ours" or "restic"). The
	// tool's init creates the repository there.
	Repo func(ctx context.Context, tool, name string) (*Repo, error)
}

// A Repo is one repository location, as both tools address it.
type Repo struct {
	Name   string                                   // unique within the run
	URL    string                                   // --repo for syncd, -r for restic
	Env    []string                                 // extra environment for the tool (credentials)
	Size   func(ctx context.Context) (int64, error) // bytes the repository occupies
	Remove func(ctx context.Context) error          // delete it and everything in it
}

// localBackend keeps each repository in its own directory below root.
func localBackend(root string) Backend {
	return Backend{
		Name:  "local",
		Title: "Local repository",
		Repo: func(ctx context.Context, tool, name string) (*Repo, error) {
			name = tool + "-" + name
			dir := filepath.Join(root, name)
			if err := os.MkdirAll(root, 0o755); err != nil {
				return nil, err
			}
			if err := os.RemoveAll(dir); err != nil {
				return nil, err
			}
			return &Repo{
				Name:   name,
				URL:    dir,
				Size:   func(ctx context.Context) (int64, error) { return duBytes(ctx, dir) },
				Remove: func(context.Context) error { return os.RemoveAll(dir) },
			}, nil
		},
	}
}

// duBytes is `du -sb DIR`: the apparent size of everything below dir.
func duBytes(ctx context.Context, dir string) (int64, error) {
	out, err := exec.CommandContext(ctx, "du", "-sb", dir).Output()
	if err != nil {
		return 0, fmt.Errorf("du -sb %s: %v", dir, err)
	}
	f := strings.Fields(string(out))
	if len(f) == 0 {
		return 0, fmt.Errorf("du -sb %s: no output", dir)
	}
	return strconv.ParseInt(f[0], 10, 64)
}
