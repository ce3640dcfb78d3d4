package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"runtime/debug"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/syncd/syncd/chunkstore"
	"github.com/syncd/syncd/chunkstore/backend"
	"github.com/syncd/syncd/config"
	"github.com/syncd/syncd/crypto"
	"github.com/syncd/syncd/daemon"
	"github.com/syncd/syncd/internal/cli"
)

// daemonMemoryLimit is the default soft memory limit of syncd run.
const daemonMemoryLimit = 88 << 20

// daemonGCPercent is the default GOGC of syncd run.
const daemonGCPercent = 100

func runCmd() *cobra.Command {
	var path, level, format string
	cmd := &cobra.Command{
		Use:   "run --config FILE",
		Short: "Run the agent: watch and index the folders, snapshot on schedule",
		Long: `run is the long-running agent. It indexes each configured folder (a full scan
at start, then file-system events), writes snapshots from the index on the
repository's schedule and on demand (syncd snapshot --config), and serves
/healthz, /readyz and /status on node.http. SIGTERM or SIGINT stop it cleanly
within 10 s, whatever it is doing (a scan, a transfer or a snapshot is
abandoned; past 10 s it exits with code 1). SIGHUP reloads the
configuration; one that is invalid, or that changes node.state_dir (the
node's identity and index live there: restart syncd to move it), is logged
as an ERROR and ignored, and the daemon goes on with the old one.

Under systemd (Type=notify, deploy/syncd.service) it sends READY=1 once
every folder has finished its first scan or has failed, WATCHDOG=1 at half
of WatchdogSec=, and STOPPING=1 on SIGTERM.`,
		Args: cli.Args(0, 0, "no arguments"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if path == "" {
				return cli.Usage("no configuration given: use --config FILE")
			}
			var lv slog.Level
			if err := lv.UnmarshalText([]byte(level)); err != nil {
				return cli.Usage("--log-level %q: want debug, info, warn or error", level)
			}
			log, err := newLogger(os.Stderr, format, lv)
			if err != nil {
				return err
			}
			// A soft memory limit for the long-running agent: the collector
			// works harder as the heap nears it, so a node's memory stays
			// flat instead of following the collector's timing. It is a
			// target, not a cap (the runtime never trades liveness for it);
			// GOMEMLIMIT overrides it for nodes with very large trees.
			if os.Getenv("GOMEMLIMIT") == "" {
				debug.SetMemoryLimit(daemonMemoryLimit)
			}
			// Under that limit the daemon collects at 100% growth, not at
			// the 50% of the one-shot commands: the limit bounds its peak
			// (the initial scan reaches it either way; 88 MiB at 100% kept
			// the bench's daemon peak RSS below what 96 MiB at 50% did), and
			// a receiver, whose block buffers live outside the heap, then
			// collects half as often (issue 14: 0.25 s of CPU in the bench's
			// initial mirror). GOGC overrides it.
			if os.Getenv("GOGC") == "" {
				debug.SetGCPercent(daemonGCPercent)
			}
			cfg, err := config.Load(path)
			if err != nil {
				return err
			}
			hup := make(chan os.Signal, 1)
			signal.Notify(hup, syscall.SIGHUP)
			defer signal.Stop(hup)
			ctx := cmd.Context()
			go exitIfStuck(ctx, log)
			n := &notifier{log: log}
			defer n.stop()
			go func() { <-ctx.Done(); n.stop() }()
			go n.watchdog(ctx)
			for {
				next, err := runOnce(ctx, cfg, log, n, hup, func() *config.Config { return reloadConfig(path, cfg, log) })
				if err != nil || next == nil {
					return err
				}
				cfg = next
			}
		},
	}
	cmd.Flags().StringVarP(&path, "config", "c", "", "configuration file")
	cmd.Flags().StringVar(&level, "log-level", "info", "least severe messages logged: debug, info, warn or error")
	cmd.Flags().StringVar(&format, "log-format", "text", "log lines as text (key=value) or json (one object a line)")
	return cmd
}

// stopTimeout bounds the time from SIGTERM to exit: past it, the process
// exits with code 1 whatever is still running (a backstop; every service
// stops on its context well before).
const stopTimeout = 9 * time.Second

// exitIfStuck exits the process stopTimeout after ctx ends (SIGTERM or
// SIGINT), if it has not exited by then.
func exitIfStuck(ctx context.Context, log *slog.Logger) {
	<-ctx.Done()
	time.Sleep(stopTimeout)
	log.Error("syncd run did not stop within the time allowed after the signal; exiting now", "after", stopTimeout)
	os.Exit(cli.ExitError)
}

// reloadConfig reads the configuration at path for a reload from old. It
// returns nil, after logging why at ERROR, if the file is invalid or
// changes a key that cannot change while the daemon runs.
func reloadConfig(path string, old *config.Config, log *slog.Logger) *config.Config {
	next, err := config.Load(path)
	if err != nil {
		log.Error("reload: configuration not applied", "err", err)
		return nil
	}
	if key := fixedKey(old, next); key != "" {
		log.Error("reload: configuration not applied: "+key+" cannot change while syncd runs; "+
			"restart syncd to apply it", "key", key, "file", path)
		return nil
	}
	log.Info("reloading configuration", "file", path)
	return next
}

// fixedKey returns the first key that next changes and a reload cannot
// apply, or "". node.state_dir holds the node's TLS identity and index: a
// new one would make a new node (a new ID its peers do not know) with an
// empty index.
func fixedKey(old, next *config.Config) string {
	if filepath.Clean(old.Node.StateDir) != filepath.Clean(next.Node.StateDir) {
		return "node.state_dir"
	}
	return ""
}

// runOnce runs a daemon for cfg until ctx ends (it returns nil) or a
// SIGHUP for which reload returns a configuration (it returns that one).
// When reload returns nil, the daemon goes on with cfg. n tells systemd
// when the daemon has started.
func runOnce(ctx context.Context, cfg *config.Config, log *slog.Logger, n *notifier, hup <-chan os.Signal,
	reload func() *config.Config) (next *config.Config, err error) {
	repo, err := openConfigRepo(ctx, cfg, log)
	if err != nil {
		return nil, err
	}
	d, err := daemon.New(cfg, repo, log)
	if err != nil {
		return nil, err
	}
	d.SetBackendOpener(func(ctx context.Context, t config.CopyTarget) (backend.Backend, error) {
		return cli.OpenTarget(ctx, t, false)
	})
	defer d.Close()
	dctx, cancel := context.WithCancel(ctx)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- d.Run(dctx) }()
	go n.started(dctx, d, cfg)
	log.Info("syncd running", "node", cfg.Node.Name, "folders", len(cfg.Folders), "http", cfg.Node.HTTP)
	for {
		select {
		case err := <-done:
			return nil, err
		case <-hup:
			if next = reload(); next == nil {
				continue
			}
			cancel()
			<-done
			return next, nil
		}
	}
}

// openConfigRepo opens the repository of the configuration, if any. It
// reads no index: each snapshot's write session loads what is new.
func openConfigRepo(ctx context.Context, cfg *config.Config, log *slog.Logger) (*chunkstore.Repository, error) {
	if cfg.Repository == nil {
		return nil, nil
	}
	key, err := crypto.LoadIndexKey(cfg.Repository.IndexKey)
	if err != nil {
		return nil, err
	}
	r := cfg.Repository
	be, err := cli.BackendWith(ctx, r.URL, false, cli.UploadOptions(r.S3Upload))
	if err != nil {
		return nil, err
	}
	repo, err := chunkstore.Open(ctx, be, key)
	if err != nil {
		be.Close()
		return nil, fmt.Errorf("repository %s: %w", cfg.Repository.URL, err)
	}
	log.Debug("repository opened", "url", cfg.Repository.URL, "id", repo.Config().ID[:16])
	return repo, nil
}

// daemonClient sends requests to the running daemon of a configuration
// file, with the bearer token of its node.http_token_file when it has one.
type daemonClient struct {
	base  string // http://node.http
	token string // "" without a token file, or when it cannot be read
	// tokenErr is why the token file could not be read: requests go
	// without the token (GET on loopback needs none) and a 401 names it.
	tokenErr error
}

// daemonURL returns a client of the daemon of the configuration file.
func daemonURL(path string) (*daemonClient, error) {
	cfg, err := config.Load(path)
	if err != nil {
		return nil, err
	}
	c := &daemonClient{base: "http://" + cfg.Node.HTTP}
	if f := cfg.Node.HTTPTokenFile; f != "" {
		tok, err := daemon.ReadHTTPToken(f)
		if err != nil {
			c.tokenErr = err
		} else {
			c.token = string(tok)
		}
	}
	return c, nil
}

// ask sends a request for target (a path and query, like "/status") to the
// running daemon and decodes its JSON answer into v.
func (c *daemonClient) ask(ctx context.Context, method, target string, v any) (int, error) {
	req, err := http.NewRequestWithContext(ctx, method, c.base+target, nil)
	if err != nil {
		return 0, err
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, fmt.Errorf("cannot reach the daemon at %s (is syncd run going?): %w", req.URL.Host, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return 0, err
	}
	if resp.StatusCode == http.StatusUnauthorized {
		var e struct{ Error string }
		json.Unmarshal(body, &e)
		msg := fmt.Sprintf("the daemon at %s refused the request: %s", req.URL.Host, e.Error)
		if c.tokenErr != nil {
			msg += " (" + c.tokenErr.Error() + ")"
		}
		return resp.StatusCode, errors.New(msg)
	}
	if err := json.Unmarshal(body, v); err != nil {
		return resp.StatusCode, fmt.Errorf("daemon answered %s: %s", resp.Status, strings.TrimSpace(string(body)))
	}
	return resp.StatusCode, nil
}

func statusCmd() *cobra.Command {
	var path string
	var asJSON, check bool
	cmd := &cobra.Command{
		Use:   "status --config FILE [--json | --check]",
		Short: "Show the running daemon's folders, peers and last snapshot",
		Long: `status shows the running daemon's folders, peers, last snapshot, last restore
drill and alerts.

With --check it prints one line and exits 0 (OK), 1 (WARNING) or 2
(CRITICAL), for cron, Nagios or Icinga; a daemon that does not answer is
CRITICAL too.`,
		Args: cli.Args(0, 0, "no arguments"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if path == "" {
				return cli.Usage("no configuration given: use --config FILE")
			}
			dc, err := daemonURL(path)
			if err != nil {
				return err
			}
			var st daemon.Status
			if _, err := dc.ask(cmd.Context(), "GET", "/status", &st); err != nil {
				if check {
					fmt.Fprintf(cmd.OutOrStdout(), "CRITICAL: %v\n", err)
					return cli.Exit(2)
				}
				return err
			}
			out := cmd.OutOrStdout()
			if check {
				code, line := daemon.CheckSummary(st)
				fmt.Fprintln(out, line)
				if code != 0 {
					return cli.Exit(code)
				}
				return nil
			}
			if asJSON {
				enc := json.NewEncoder(out)
				enc.SetIndent("", "  ")
				return enc.Encode(st)
			}
			tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
			fmt.Fprintf(tw, "node %s\nFOLDER\tSTATE\tFILES\tSIZE\tPENDING\tLAST SNAPSHOT\n", st.Node)
			for _, f := range st.Folders {
				last := "-"
				if s := f.LastSnapshot; s != nil {
					result := s.Result
					if s.Skipped {
						result = "skipped (unchanged since)"
					}
					last = fmt.Sprintf("%s %s %s", result, s.Time.Local().Format(time.DateTime), short(s.ID))
				}
				fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%d\t%s\n", f.ID, f.State, f.Files, cli.Bytes(f.Bytes), f.Pending, last)
			}
			tw.Flush()
			if len(st.Peers) > 0 {
				tw = tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
				fmt.Fprintf(tw, "PEER\tCONNECTED\tLAST SEEN\tTO RECEIVE\tTO SEND\n")
				for _, p := range st.Peers {
					seen := "never"
					if p.LastSeen != nil {
						seen = p.LastSeen.Local().Format(time.DateTime)
					}
					fmt.Fprintf(tw, "%s\t%v\t%s\t%d files, %s\t%d files, %s\n", p.Name, p.Connected, seen,
						p.LagFiles, cli.Bytes(p.LagBytes), p.SendFiles, cli.Bytes(p.SendBytes))
				}
				tw.Flush()
				for _, p := range st.Peers {
					if p.Error != "" {
						fmt.Fprintf(out, "peer %s: %s\n", p.Name, p.Error)
					}
				}
			}
			if st.Drill != nil {
				fmt.Fprintln(out, drillLine(st.Drill))
			}
			for _, f := range st.Folders {
				if f.Error != "" {
					fmt.Fprintf(out, "%s: %s\n", f.ID, f.Error)
				}
				for _, p := range f.Failed {
					fmt.Fprintf(out, "%s: cannot index %s\n", f.ID, p)
				}
			}
			return nil
		},
	}
	cmd.Flags().StringVarP(&path, "config", "c", "", "configuration file")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	cmd.Flags().BoolVar(&check, "check", false, "print one line; exit 0 ok, 1 warning, 2 critical")
	cmd.MarkFlagsMutuallyExclusive("json", "check")
	return cmd
}

// drillLine is the last drill in `syncd status`: "last drill ok at …".
func drillLine(d *daemon.DrillStatus) string {
	l := d.Last
	var s string
	switch {
	case l == nil && d.ReadAt == nil:
		s = "last drill: not read yet"
	case l == nil:
		s = "last drill: none"
	default:
		result := "ok"
		if !l.OK {
			result = "failed"
		}
		s = fmt.Sprintf("last drill %s at %s on %s: recovery point %v, recovery time %v", result,
			l.Time.Local().Format(time.DateTime), l.Host, secs(l.AgeSeconds), secs(l.Seconds))
		if !l.OK {
			s += "; " + l.Error
			if d.LastOK != nil {
				s += "; last success " + d.LastOK.Time.Local().Format(time.DateTime)
			} else {
				s += "; no success yet"
			}
		}
	}
	if d.ReadError != "" {
		s += " (cannot read the drill records: " + d.ReadError + ")"
	}
	return s
}

func secs(f float64) time.Duration { return time.Duration(f * float64(time.Second)).Round(time.Second) }

func short(id string) string {
	if len(id) > 8 {
		return id[:8]
	}
	return id
}

// snapshotFromDaemon asks the running daemon for a snapshot.
func snapshotFromDaemon(cmd *cobra.Command, path string, asJSON bool) error {
	dc, err := daemonURL(path)
	if err != nil {
		return err
	}
	var info daemon.SnapshotInfo
	if _, err := dc.ask(cmd.Context(), "POST", "/snapshot", &info); err != nil {
		return err
	}
	if asJSON {
		if err := cli.PrintJSON(cmd.OutOrStdout(), info); err != nil {
			return err
		}
		switch info.Result {
		case "ok":
			return nil
		case "partial":
			return cli.Partial{Msg: "snapshot " + short(info.ID) + " is partial: " + info.Error}
		}
		return fmt.Errorf("snapshot failed: %s", info.Error)
	}
	switch info.Result {
	case "ok":
		fmt.Fprintf(cmd.OutOrStdout(), "snapshot %s saved from the index: read %d files in %s\n", short(info.ID), info.Files, info.Took)
		return nil
	case "partial":
		fmt.Fprintf(cmd.OutOrStdout(), "snapshot %s saved from the index: read %d files in %s\n", short(info.ID), info.Files, info.Took)
		return cli.Partial{Msg: "snapshot " + short(info.ID) + " is partial: " + info.Error}
	}
	return fmt.Errorf("snapshot failed: %s", info.Error)
}
