// Command bench runs syncd and restic side by side on the same data set, on
// the same machine, in the same run, and writes a markdown table of medians,
// ratios and the bars from ../shared/BENCHMARKS.md.
//
// Usage (from the repository root; `make bench` does this):
//
//	go run ./bench/cmd/bench -bin bin -out docs/BENCHMARKS.md [-pairs 3] [-only REGEX] [-small] [-backends local,minio]
//
// The data set is made once by ../shared/bench/mkdata.py and cached under
// ~/.cache/syncd-bench. Each measurement runs ours then restic (A B A B …)
// for -pairs pairs, and the table reports the median of each side. Progress
// goes to stderr; each backend's table goes to stdout and, with -out, into
// its section of that file, between the markers <!-- bench:NAME:begin -->
// and <!-- bench:NAME:end --> (NAME: local, minio, daemon, prune, mirror, drill, replace, syncthing, wan, copy, tools, mesh), leaving the rest of
// the file alone. -sections is another name for -backends. The mirror section
// runs two `syncd run` nodes against rsync to an rsync daemon (rsync must be
// on PATH; with SYNCD_BENCH_PROFILES=DIR set, each of its nodes writes a
// CPU profile of its run into DIR, with SYNCD_BENCH_TRACES=DIR an execution
// trace). The minio backend runs one MinIO server (bin/minio) for its
// section; the server is stopped at the end, on an error, on SIGINT, SIGTERM
// or SIGHUP, and killed by the kernel if the runner itself dies.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"syscall"
	"time"
)

// config holds the command-line flags, resolved to absolute paths.
type config struct {
	root, bin, out, data, mkdata, work string
	fs, nodeLogs                       string
	pairs                              int
	only                               *regexp.Regexp
	small                              bool
	backends                           []string
}

// backendNames are the known backends, in run order.
var backendNames = []string{"local", "minio", "daemon", "prune", "mirror", "drill", "replace", "syncthing", "wan", "copy", "tools", "mesh"}

func main() {
	var c config
	var only, backends string
	flag.StringVar(&c.bin, "bin", "", "directory holding syncd, restore and restic (default: <repo>/bin)")
	flag.StringVar(&c.out, "out", "", "markdown file to write or update (default: only print the table)")
	flag.StringVar(&c.data, "data", "", "cached data set directory (default ~/.cache/syncd-bench/data, or data-small with -small)")
	flag.StringVar(&c.mkdata, "mkdata", "", "path of mkdata.py (default: <repo>/../shared/bench/mkdata.py)")
	flag.StringVar(&c.work, "work", "", "scratch space; a fresh subdirectory is made in it and removed at the end (default: $TMPDIR or /tmp)")
	flag.StringVar(&c.fs, "fs", "auto", "file system of the work directory: ext4 (a fresh journaled ext4 on a loop device; needs root), none (a plain directory), auto (ext4 when possible)")
	flag.StringVar(&c.nodeLogs, "node-logs", "", "mirror: run the nodes with --log-level debug and keep their logs in this directory (as p<P>-<node>.log)")
	flag.IntVar(&c.pairs, "pairs", 3, "number of ours/restic pairs per measurement")
	flag.StringVar(&only, "only", "", "run only the measurements whose id (e.g. local/initial, local/restore) matches this regular expression")
	flag.StringVar(&backends, "backends", strings.Join(backendNames, ","), "comma-separated backends to measure: local, minio, daemon (syncd run: snapshots from the index, latency, RSS), prune (forget half the snapshots, then prune), mirror (two syncd run nodes vs rsync to an rsync daemon: initial mirror, mutation bytes, latency), drill (restore drill, full and --sample, vs restic restore + check --read-data), replace (a node replaced from the latest snapshot: bytes its peer sends it vs the mutation round's, time vs a full initial mirror), copy (syncd copy vs restic copy between two MinIO buckets), tools (restore dump, find, diff and stats vs restic's, local repositories), wan (the initial mirror over a shaped 100 Mbit/s, 20 ms link vs rsync and rsync -z), mesh (a new empty node of a 5-node mesh from four peers vs from one, the peers' uplinks limited)")
	flag.StringVar(&backends, "sections", strings.Join(backendNames, ","), "the same as -backends")
	flag.BoolVar(&c.small, "small", false, "use a small data set (--sites 1 --uploads 200 --bigmb 32) for a quick check")
	flag.Parse()
	if flag.NArg() > 0 || c.pairs < 1 {
		flag.Usage()
		os.Exit(2)
	}
	if only != "" {
		re, err := regexp.Compile(only)
		if err != nil {
			fmt.Fprintln(os.Stderr, "bench: -only:", err)
			os.Exit(2)
		}
		c.only = re
	}
	for _, b := range strings.Split(backends, ",") {
		if b = strings.TrimSpace(b); !slices.Contains(backendNames, b) {
			fmt.Fprintf(os.Stderr, "bench: -backends: unknown backend %q (want %s)\n", b, strings.Join(backendNames, ", "))
			os.Exit(2)
		}
		c.backends = append(c.backends, b)
	}
	ctx, cancel := context.WithCancel(context.Background())
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM, syscall.SIGHUP)
	go func() {
		sig := <-sigs
		progress("%v: stopping and cleaning up (again to exit at once, leaving the work directory)", sig)
		cancel()
		<-sigs
		os.Exit(1) // MinIO dies with the runner (Pdeathsig)
	}()
	err := run(ctx, &c)
	cancel()
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

// run resolves the defaults, prepares the data set and the tools, runs every
// backend's measurements and writes the report.
func run(ctx context.Context, c *config) error {
	root, err := repoRoot()
	if err != nil {
		return err
	}
	if err := c.resolve(root); err != nil {
		return err
	}
	work, err := os.MkdirTemp(c.work, "syncd-bench-")
	if err != nil {
		return err
	}
	scratch, err := mountScratch(ctx, c.fs, work)
	if err != nil {
		os.Remove(work)
		return err
	}
	defer func() {
		progress("removing %s", work)
		scratch.unmount()
		os.RemoveAll(work)
	}()
	progress("%s", scratch.Describe)

	ds := dataset{Dir: c.data, Mkdata: c.mkdata, Args: mkdataArgs(c.small)}
	if err := ds.ensure(ctx); err != nil {
		return err
	}
	if err := ds.describe(); err != nil {
		return err
	}
	progress("data set %s: %s", ds.Dir, ds.Summary())
	progress("warming the page cache (one read of every file)")
	if err := ds.warm(); err != nil {
		return err
	}

	rn, err := newRunner(work)
	if err != nil {
		return err
	}
	defer rn.close()
	bin := filepath.Join(work, "bin")
	bins, err := copyBinaries(c.bin, bin)
	if err != nil {
		return err
	}
	ours, err := oursTool(ctx, rn, bin, filepath.Join(work, "keys"))
	if err != nil {
		return err
	}
	ours.version = fmt.Sprintf("syncd %s; restore %s", bins["syncd"], bins["restore"])
	restic := resticTool(ctx, rn, bin, filepath.Join(work, "restic-cache"))
	restic.version += " (" + bins["restic"] + ")"
	progress("ours: %s", ours.version)
	progress("anchor: %s", restic.version)
	env, err := describeEnv(ctx, c, &ds, ours, restic)
	if err != nil {
		return err
	}
	env.fs = scratch.Describe
	progress("log of every command: %s (removed at the end)", rn.logPath)

	for _, name := range backendNames {
		if !slices.Contains(c.backends, name) {
			continue
		}
		s := &suite{
			ours: ours, restic: restic, run: rn, data: &ds,
			pairs: c.pairs, only: c.only, work: filepath.Join(work, name), nodeLogs: c.nodeLogs,
		}
		if err := s.runBackend(ctx, c, env, name, work); err != nil {
			return err
		}
	}
	return nil
}

// runBackend sets up backend name (for minio: starts the server, and stops it
// on return), runs the suite's measurements and writes its section.
func (s *suite) runBackend(ctx context.Context, c *config, env *envInfo, name, work string) error {
	switch name {
	case "local":
		s.backend = localBackend(filepath.Join(work, "repos"))
	case "minio":
		s.backend = Backend{Name: name, Metrics: minioMetrics}
		if !s.any() {
			return nil
		}
		progress("starting MinIO (%s)", filepath.Join(c.bin, "minio"))
		m, err := startMinio(ctx, filepath.Join(c.bin, "minio"), filepath.Join(work, "minio-server"))
		if err != nil {
			return err
		}
		defer m.stop()
		progress("MinIO %s on %s, data in %s, log %s", m.version, m.endpoint, m.dir, m.logPath)
		s.backend = minioBackend(m)
	case "daemon":
		s.backend = daemonBackend(filepath.Join(work, "repos"))
	case "prune":
		s.backend = pruneBackend(filepath.Join(work, "repos"))
	case "mirror":
		s.backend = mirrorBackend(rsyncVersion(ctx))
	case "drill":
		s.backend = drillBackend(filepath.Join(work, "repos"))
	case "replace":
		s.backend = replaceBackend(filepath.Join(work, "repos"))
	case "syncthing":
		return s.syncthingSection(ctx, c, env, work)
	case "wan":
		s.backend = wanBackend(rsyncVersion(ctx))
	case "copy":
		return s.copySection(ctx, c, env, work)
	case "tools":
		return s.toolsSection(ctx, c, env, work)
	case "mesh":
		return s.meshSection(ctx, c, env)
	}
	if !s.any() {
		return nil
	}
	if err := s.measure(ctx); err != nil {
		return err
	}
	return s.publish(env, c.out)
}

// resolve fills in the defaults that depend on the repository root and makes
// every path absolute (the tools run with the same working directory, but the
// snapshot paths must not depend on it).
func (c *config) resolve(root string) error {
	c.root = root
	if c.bin == "" {
		c.bin = filepath.Join(root, "bin")
	}
	if c.mkdata == "" {
		c.mkdata = filepath.Join(root, "..", "shared", "bench", "mkdata.py")
	}
	if c.data == "" {
		home, err := os.UserHomeDir()
		if err != nil {
			return err
		}
		name := "data"
		if c.small {
			name = "data-small"
		}
		c.data = filepath.Join(home, ".cache", "syncd-bench", name)
	}
	for _, p := range []*string{&c.bin, &c.mkdata, &c.data, &c.out, &c.work, &c.nodeLogs} {
		if *p == "" {
			continue
		}
		a, err := filepath.Abs(*p)
		if err != nil {
			return err
		}
		*p = a
	}
	need := []string{"syncd", "restore", "restic"}
	if slices.Contains(c.backends, "minio") || slices.Contains(c.backends, "copy") {
		need = append(need, "minio")
	}
	pinned := filepath.Join(c.bin, "rsync")
	if _, err := os.Stat(pinned); err == nil {
		rsyncBin = pinned // the Makefile's pinned anchor
	}
	if slices.Contains(c.backends, "mirror") || slices.Contains(c.backends, "wan") {
		if _, err := exec.LookPath(rsyncBin); err != nil {
			return fmt.Errorf("the mirror and wan sections need rsync: %v", err)
		}
	}
	for _, name := range need {
		if _, err := os.Stat(filepath.Join(c.bin, name)); err != nil {
			return fmt.Errorf("%v (run `make tools build`)", err)
		}
	}
	if _, err := os.Stat(c.mkdata); err != nil {
		return fmt.Errorf("mkdata: %v (use -mkdata PATH)", err)
	}
	return nil
}

// repoRoot finds the directory holding this module's go.mod, walking up from
// the working directory.
func repoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		b, err := os.ReadFile(filepath.Join(dir, "go.mod"))
		if err == nil && strings.Contains(string(b), "module github.com/syncd/syncd\n") {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("run from inside the syncd repository (no go.mod of github.com/syncd/syncd above the working directory)")
		}
		dir = parent
	}
}

// progress prints one timestamped line to stderr.
func progress(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "%s %s\n", time.Now().Format("15:04:05"), fmt.Sprintf(format, args...))
}
