package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"
)

// runResult is what one command cost and said.
type runResult struct {
	Wall   time.Duration
	MaxRSS int64         // peak resident set size of the process, bytes (rusage ru_maxrss)
	CPU    time.Duration // user + system time of the process
	Stdout string
	Stderr string
}

// runner starts child processes with a clean, identical environment for both
// tools and records every command and its output in a log file.
type runner struct {
	env     []string
	log     *os.File
	logPath string
}

// scrubbed are environment variables that would make the comparison unfair
// or point a tool at something else: Go runtime tuning (both tools are Go
// programs and run with the defaults, GOMAXPROCS = all cores), and the
// tools' own settings, which the benchmark passes explicitly.
var scrubbed = []string{"GOMAXPROCS=", "GOGC=", "GOMEMLIMIT=", "GODEBUG=", "RESTIC_", "SYNCD_", "AWS_"}

// newRunner makes a runner whose log lives in work.
func newRunner(work string) (*runner, error) {
	p := filepath.Join(work, "commands.log")
	f, err := os.Create(p)
	if err != nil {
		return nil, err
	}
	var env []string
	for _, kv := range os.Environ() {
		if !slices.ContainsFunc(scrubbed, func(p string) bool { return strings.HasPrefix(kv, p) }) {
			env = append(env, kv)
		}
	}
	return &runner{env: env, log: f, logPath: p}, nil
}

func (r *runner) close() { r.log.Close() }

// run runs one command to completion and measures its wall time and peak
// RSS. Dirty pages left by earlier steps are flushed first (sync), outside
// the measured interval, so one tool's write-back is not billed to the next.
// A non-zero exit is an error (for syncd that includes 3, "partial").
func (r *runner) run(ctx context.Context, extraEnv []string, name string, args ...string) (runResult, error) {
	return r.runTo(ctx, extraEnv, nil, name, args...)
}

// runTo is run with the command's standard output going to stdout instead
// of into runResult.Stdout (nil: there, as run does). Output too large to
// hold goes this way: what the runner holds raises its own peak RSS, which
// is a floor for every later child's (see selfPeakRSS). An *os.File is
// handed to the child as it is, with no copy through the runner.
func (r *runner) runTo(ctx context.Context, extraEnv []string, stdout io.Writer, name string, args ...string) (runResult, error) {
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Env = append(slices.Clone(r.env), extraEnv...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	logged := &out
	if stdout != nil {
		cmd.Stdout = stdout
		logged = bytes.NewBufferString("(standard output not kept)\n")
	}
	cmd.SysProcAttr = childSysProcAttr(false)
	syscall.Sync()
	start := time.Now()
	err := cmd.Run()
	res := runResult{Wall: time.Since(start), Stdout: out.String(), Stderr: errb.String()}
	if ps := cmd.ProcessState; ps != nil {
		if ru, ok := ps.SysUsage().(*syscall.Rusage); ok {
			res.MaxRSS = ru.Maxrss * 1024 // Linux reports KiB
			res.CPU = time.Duration(syscall.TimevalToNsec(ru.Utime) + syscall.TimevalToNsec(ru.Stime))
		}
	}
	fmt.Fprintf(r.log, "$ %s %s\n# wall %v, cpu %v, maxrss %d, err %v\n%s%s\n",
		name, strings.Join(args, " "), res.Wall, res.CPU, res.MaxRSS, err, logged, res.Stderr)
	if err != nil {
		return res, fmt.Errorf("%s %s: %v: %s", filepath.Base(name), strings.Join(args, " "), err, tail(res.Stderr+res.Stdout, 5))
	}
	return res, nil
}

// copyBinaries copies syncd, restore and restic from bin into dst and
// returns a description of each (file time and SHA-256). Other engineers
// rebuild bin/ while a run is going on; every measurement of a run must use
// the same binaries.
func copyBinaries(bin, dst string) (map[string]string, error) {
	if err := os.MkdirAll(dst, 0o755); err != nil {
		return nil, err
	}
	desc := map[string]string{}
	for _, name := range []string{"syncd", "restore", "restic"} {
		src := filepath.Join(bin, name)
		fi, err := os.Stat(src)
		if err != nil {
			return nil, err
		}
		h := sha256.New()
		if err := copyFile(src, filepath.Join(dst, name), h); err != nil {
			return nil, err
		}
		sum := h.Sum(nil)
		desc[name] = fmt.Sprintf("%s, file time %s, sha256 %x", binaryVersion(src), fi.ModTime().UTC().Format("2006-01-02 15:04:05"), sum[:6])
	}
	return desc, nil
}

// copyFile copies src to dst (mode 0755), streaming, and feeds the bytes to
// h. Streaming keeps the runner's own peak RSS low (see selfPeakRSS).
func copyFile(src, dst string, h io.Writer) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o755)
	if err != nil {
		return err
	}
	if _, err := io.Copy(io.MultiWriter(out, h), in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

// selfPeakRSS is the runner's own peak RSS (VmHWM), in bytes. It is a floor
// for every child's ru_maxrss: os/exec starts children with vfork, and on
// exec Linux folds the high-water mark of the replaced (shared, the
// runner's) address space into the child's maxrss. A child's peak RSS at or
// below this value is therefore not a measurement.
func selfPeakRSS() int64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "VmHWM:"); ok {
			var kb int64
			fmt.Sscanf(strings.TrimSpace(v), "%d", &kb)
			return kb * 1024
		}
	}
	return 0
}

// tail returns the last n lines of s.
func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// A tool is one of the two programs being compared, reduced to the
// operations the benchmark needs. Both restore a snapshot at its full
// original path below the target directory.
type tool struct {
	name    string // "ours" or "restic"
	version string // one line for the report
	init    func(ctx context.Context, r *Repo) error
	backup  func(ctx context.Context, r *Repo, path string) (runResult, error)
	restore func(ctx context.Context, r *Repo, target string) (runResult, error)
	summary func(res runResult) string // what the tool said it did, for the progress log

	// ours only: the syncd and restore binaries, a repository's index key
	// file and the data identity.
	syncd, restoreBin, dataKey string
	indexKey                   func(r *Repo) string

	// restic only: runs restic -r REPO ARGS… with the tool's environment;
	// execTo with its standard output going to stdout (see runner.runTo).
	exec   func(ctx context.Context, r *Repo, args ...string) (runResult, error)
	execTo func(ctx context.Context, r *Repo, stdout io.Writer, args ...string) (runResult, error)
}

// benchHost is the host name both tools record, so that a second backup of
// the same paths finds the first as its parent.
const benchHost = "bench"

// oursTool drives bin/syncd and bin/restore. It makes one data key for the
// run; each repository gets its own index key, created by init.
func oursTool(ctx context.Context, rn *runner, bin, keys string) (*tool, error) {
	syncd, restore := filepath.Join(bin, "syncd"), filepath.Join(bin, "restore")
	if err := os.MkdirAll(keys, 0o700); err != nil {
		return nil, err
	}
	dataKey := filepath.Join(keys, "data.key")
	res, err := rn.run(ctx, nil, syncd, "keygen", dataKey)
	if err != nil {
		return nil, err
	}
	recipient := strings.TrimSpace(res.Stdout)
	if !strings.HasPrefix(recipient, "age1") {
		return nil, fmt.Errorf("syncd keygen printed %q, want an age1… recipient", recipient)
	}
	indexKey := func(r *Repo) string { return filepath.Join(keys, r.Name+".index") }
	return &tool{
		name:    "ours",
		version: "(version unknown)",
		init: func(ctx context.Context, r *Repo) error {
			_, err := rn.run(ctx, r.Env, syncd, "init", "--repo", r.URL, "--index-key", indexKey(r), "--data-recipient", recipient)
			return err
		},
		backup: func(ctx context.Context, r *Repo, path string) (runResult, error) {
			return rn.run(ctx, r.Env, syncd, "snapshot", "--repo", r.URL, "--index-key", indexKey(r), "--host", benchHost, path)
		},
		restore: func(ctx context.Context, r *Repo, target string) (runResult, error) {
			return rn.run(ctx, r.Env, restore, "latest", "--repo", r.URL, "--index-key", indexKey(r), "--identity", dataKey, "--target", target)
		},
		summary:    func(res runResult) string { return lastLine(res.Stdout) },
		syncd:      syncd,
		restoreBin: restore,
		dataKey:    dataKey,
		indexKey:   indexKey,
	}, nil
}

// resticTool drives bin/restic with its defaults (compression auto, all
// cores), its cache kept in the work directory.
func resticTool(ctx context.Context, rn *runner, bin, cache string) *tool {
	restic := filepath.Join(bin, "restic")
	env := func(r *Repo) []string {
		return append([]string{"RESTIC_PASSWORD=x", "RESTIC_CACHE_DIR=" + cache}, r.Env...)
	}
	ver := "restic (version unknown)"
	if res, err := rn.run(ctx, nil, restic, "version"); err == nil {
		ver = lastLine(res.Stdout)
	}
	return &tool{
		name:    "restic",
		version: ver,
		init: func(ctx context.Context, r *Repo) error {
			_, err := rn.run(ctx, env(r), restic, "-r", r.URL, "init")
			return err
		},
		backup: func(ctx context.Context, r *Repo, path string) (runResult, error) {
			return rn.run(ctx, env(r), restic, "-r", r.URL, "backup", "--host", benchHost, path)
		},
		restore: func(ctx context.Context, r *Repo, target string) (runResult, error) {
			return rn.run(ctx, env(r), restic, "-r", r.URL, "restore", "latest", "--target", target)
		},
		summary: func(res runResult) string {
			var parts []string
			for _, l := range strings.Split(res.Stdout, "\n") {
				if strings.HasPrefix(l, "Files:") || strings.HasPrefix(l, "Added to the repository") || strings.HasPrefix(l, "Summary:") {
					parts = append(parts, strings.Join(strings.Fields(l), " "))
				}
			}
			return strings.Join(parts, "; ")
		},
		exec: func(ctx context.Context, r *Repo, args ...string) (runResult, error) {
			return rn.run(ctx, env(r), restic, append([]string{"-r", r.URL}, args...)...)
		},
		execTo: func(ctx context.Context, r *Repo, stdout io.Writer, args ...string) (runResult, error) {
			return rn.runTo(ctx, env(r), stdout, restic, append([]string{"-r", r.URL}, args...)...)
		},
	}
}

// lastLine returns the last non-empty line of s.
func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return strings.TrimSpace(lines[len(lines)-1])
}
