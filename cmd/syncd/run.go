package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"os/signal"
	"runtime/debug"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/syncd/syncd/chunkstore"
	"github.com/syncd/syncd/config"
	"github.com/syncd/syncd/crypto"
	"github.com/syncd/syncd/daemon"
	"github.com/syncd/syncd/internal/cli"
)

// daemonMemoryLimit is the default soft memory limit of syncd run.
const daemonMemoryLimit = 96 << 20

func runCmd() *cobra.Command {
	var path, level string
	cmd := &cobra.Command{
		Use:   "run --config FILE",
		Short: "Run the agent: watch and index the folders, snapshot on schedule",
		Long: `run is the long-running agent. It indexes each configured folder (a full scan
at start, then file-system events), writes snapshots from the index on the
repository's schedule and on demand (syncd snapshot --config), and serves
/healthz, /readyz and /status on node.http. SIGTERM or SIGINT stop it cleanly;
SIGHUP reloads the configuration (an invalid one is logged and ignored).`,
		Args: cli.Args(0, 0, "no arguments"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if path == "" {
				return cli.Usage("no configuration given: use --config FILE")
			}
			var lv slog.Level
			if err := lv.UnmarshalText([]byte(level)); err != nil {
				return cli.Usage("--log-level %q: want debug, info, warn or error", level)
			}
			log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: lv}))
			// A soft memory limit for the long-running agent: the collector
			// works harder as the heap nears it, so a node's memory stays
			// flat instead of following the collector's timing. It is a
			// target, not a cap (the runtime never trades liveness for it);
			// GOMEMLIMIT overrides it for nodes with very large trees.
			if os.Getenv("GOMEMLIMIT") == "" {
				debug.SetMemoryLimit(daemonMemoryLimit)
			}
			cfg, err := config.Load(path)
			if err != nil {
				return err
			}
			hup := make(chan os.Signal, 1)
			signal.Notify(hup, syscall.SIGHUP)
			defer signal.Stop(hup)
			for {
				reload, err := runOnce(cmd.Context(), cfg, log, hup)
				if err != nil || !reload {
					return err
				}
				next, err := config.Load(path)
				if err != nil {
					log.Error("reload: configuration not applied", "err", err)
					continue
				}
				log.Info("reloading configuration", "file", path)
				cfg = next
			}
		},
	}
	cmd.Flags().StringVarP(&path, "config", "c", "", "configuration file")
	cmd.Flags().StringVar(&level, "log-level", "info", "least severe messages logged: debug, info, warn or error")
	return cmd
}

// runOnce runs a daemon for cfg until ctx ends (reload false) or SIGHUP
// (reload true).
func runOnce(ctx context.Context, cfg *config.Config, log *slog.Logger, hup <-chan os.Signal) (reload bool, err error) {
	repo, err := openConfigRepo(ctx, cfg, log)
	if err != nil {
		return false, err
	}
	d, err := daemon.New(cfg, repo, log)
	if err != nil {
		return false, err
	}
	defer d.Close()
	dctx, cancel := context.WithCancel(ctx)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- d.Run(dctx) }()
	log.Info("syncd running", "node", cfg.Node.Name, "folders", len(cfg.Folders), "http", cfg.Node.HTTP)
	select {
	case err := <-done:
		return false, err
	case <-hup:
		cancel()
		<-done
		return true, nil
	}
}

// openConfigRepo opens the repository of the configuration, if any.
func openConfigRepo(ctx context.Context, cfg *config.Config, log *slog.Logger) (*chunkstore.Repository, error) {
	if cfg.Repository == nil {
		return nil, nil
	}
	key, err := crypto.LoadIndexKey(cfg.Repository.IndexKey)
	if err != nil {
		return nil, err
	}
	be, err := cli.Backend(ctx, cfg.Repository.URL, false)
	if err != nil {
		return nil, err
	}
	repo, err := chunkstore.Open(ctx, be, key)
	if err != nil {
		return nil, fmt.Errorf("repository %s: %w", cfg.Repository.URL, err)
	}
	bad, err := repo.LoadIndex(ctx)
	if err != nil {
		return nil, err
	}
	for _, e := range bad {
		log.Warn("index object unreadable; its blobs will be stored again", "object", e.Name, "err", e.Err)
	}
	if _, err := repo.DropMissingPacks(ctx); err != nil {
		return nil, err
	}
	return repo, nil
}

// daemonURL is the base URL of the daemon of the configuration file.
func daemonURL(path string) (string, error) {
	cfg, err := config.Load(path)
	if err != nil {
		return "", err
	}
	return "http://" + cfg.Node.HTTP, nil
}

// ask sends a request to the running daemon and decodes its JSON answer.
func ask(ctx context.Context, method, url string, v any) (int, error) {
	req, err := http.NewRequestWithContext(ctx, method, url, nil)
	if err != nil {
		return 0, err
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
	if err := json.Unmarshal(body, v); err != nil {
		return resp.StatusCode, fmt.Errorf("daemon answered %s: %s", resp.Status, strings.TrimSpace(string(body)))
	}
	return resp.StatusCode, nil
}

func statusCmd() *cobra.Command {
	var path string
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "status --config FILE [--json]",
		Short: "Show the running daemon's folders, peers and last snapshot",
		Args:  cli.Args(0, 0, "no arguments"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if path == "" {
				return cli.Usage("no configuration given: use --config FILE")
			}
			base, err := daemonURL(path)
			if err != nil {
				return err
			}
			var st daemon.Status
			if _, err := ask(cmd.Context(), "GET", base+"/status", &st); err != nil {
				return err
			}
			out := cmd.OutOrStdout()
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
					last = fmt.Sprintf("%s %s %s", s.Result, s.Time.Local().Format(time.DateTime), short(s.ID))
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
	return cmd
}

func short(id string) string {
	if len(id) > 8 {
		return id[:8]
	}
	return id
}

// snapshotFromDaemon asks the running daemon for a snapshot.
func snapshotFromDaemon(cmd *cobra.Command, path string) error {
	base, err := daemonURL(path)
	if err != nil {
		return err
	}
	var info daemon.SnapshotInfo
	if _, err := ask(cmd.Context(), "POST", base+"/snapshot", &info); err != nil {
		return err
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
