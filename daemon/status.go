package daemon

import (
	"encoding/json"
	"fmt"
	"net/http"
	"time"

	"github.com/syncd/syncd/config"
	"github.com/syncd/syncd/internal/health"
	"github.com/syncd/syncd/transfer"
)

// SnapshotInfo describes the last snapshot the daemon wrote or tried.
type SnapshotInfo struct {
	ID     string    `json:"id,omitempty"`
	Time   time.Time `json:"time"`
	Result string    `json:"result"` // "ok", "partial" or "failed"
	Error  string    `json:"error,omitempty"`
	Files  int64     `json:"files_read"`
	Took   string    `json:"took"`
	// Skipped is true for a scheduled snapshot that found nothing changed
	// (repository.skip_unchanged): none was written, and ID is the
	// snapshot that still holds this content.
	Skipped bool `json:"skipped,omitempty"`
}

// FolderStatus is one folder in Status.
type FolderStatus struct {
	ID    string `json:"id"`
	Path  string `json:"path"`
	State string `json:"state"`           // "scanning", "ok", "degraded" or "failed"
	Error string `json:"error,omitempty"` // the worst condition's reason
	// Conditions are what makes the folder degraded or failed, worst first.
	Conditions   []health.Condition `json:"conditions,omitempty"`
	Files        int64              `json:"files"`
	Bytes        int64              `json:"bytes"`
	Pending      int64              `json:"pending"` // paths waiting to be indexed; -1 during a full scan
	Failed       []string           `json:"failed_paths,omitempty"`
	LocalChanges int                `json:"local_changes,omitempty"` // receive-only: paths changed here, not sent
	LastSnapshot *SnapshotInfo      `json:"last_snapshot,omitempty"`
}

// Status is what `syncd status` shows.
type Status struct {
	Node    string                `json:"node"`
	Folders []FolderStatus        `json:"folders"`
	Peers   []transfer.PeerStatus `json:"peers"`
	// Alerts are the node's current problems, worst first (checks.go):
	// what the webhooks are told and `syncd status --check` counts.
	Alerts []Problem `json:"alerts"`
	// Drill is the last restore drill of this node's snapshots (drill.go);
	// nil without a repository.
	Drill *DrillStatus `json:"drill,omitempty"`
}

// Status reports the folders and the last snapshot.
func (d *Daemon) Status() Status {
	s := Status{Node: d.cfg.Node.Name, Peers: d.node.Status(), Alerts: d.Problems(), Drill: d.DrillStatus()}
	last := d.last.Load()
	for _, f := range d.folders {
		fs := FolderStatus{ID: f.cfg.ID, Path: f.cfg.Path, State: "ok", Pending: f.pending.Load(), LastSnapshot: last}
		if !f.scanned.Load() {
			fs.State = "scanning"
		}
		if cs := f.health.List(); len(cs) > 0 {
			fs.State, fs.Error, fs.Conditions = cs[0].State, cs[0].Reason, cs
		}
		fs.Files, fs.Bytes = f.local.Index().Totals()
		if n, ok := f.local.Index().LocalChanged(); ok && f.cfg.Mode == config.ReceiveOnly {
			fs.LocalChanges = int(n)
		} else if lc, err := d.node.LocalChanges(f.cfg.ID); err == nil {
			fs.LocalChanges = len(lc) // not counted yet for this node: a walk
		}
		for _, fe := range f.ix.Failed() {
			fs.Failed = append(fs.Failed, fe.Error())
		}
		s.Folders = append(s.Folders, fs)
	}
	return s
}

// Ready reports whether a load balancer may send this node traffic: every
// folder has been scanned once and none has failed, and the node is not
// behind a connected peer by more than node.max_lag. When it is not
// ready, the reason says why. (A batch being indexed does not make a node
// unready: a node taking uploads would leave the rotation at every one.)
func (d *Daemon) Ready() (bool, string) {
	for _, f := range d.folders {
		if cs := f.health.List(); len(cs) > 0 && cs[0].Severity >= health.Failed {
			return false, fmt.Sprintf("folder %s failed: %s", f.cfg.ID, cs[0].Reason)
		}
		if !f.scanned.Load() {
			return false, fmt.Sprintf("folder %s: first scan not done", f.cfg.ID)
		}
	}
	if lag := d.lagging(); lag != "" {
		return false, lag
	}
	return true, ""
}

// Handler serves /healthz (the process is alive), /readyz (200 once
// Ready), /status (JSON), POST /snapshot (a snapshot now, from the
// index; JSON SnapshotInfo), POST /revert?folder=ID (throw away the
// local changes of a receive-only folder) and POST
// /confirm-deletes?folder=ID (let deletes held back by max_delete go),
// and GET / (the status page, page.go). Who needs the bearer token of
// node.http_token_file for which endpoint is in auth.go ([access]).
func (d *Daemon) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte("ok\n"))
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		if ok, why := d.Ready(); !ok {
			http.Error(w, "not ready: "+why, http.StatusServiceUnavailable)
			return
		}
		w.Write([]byte("ready\n"))
	})
	mux.HandleFunc("GET /{$}", d.servePage) // the status page (page.go)
	mux.Handle("GET /metrics", d.metricsHandler())
	mux.HandleFunc("GET /status", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, d.Status())
	})
	mux.HandleFunc("POST /revert", func(w http.ResponseWriter, r *http.Request) {
		paths, err := d.node.Revert(r.URL.Query().Get("folder"))
		if err != nil {
			writeJSON(w, http.StatusBadRequest, map[string]string{"error": err.Error()})
			return
		}
		writeJSON(w, http.StatusOK, map[string][]string{"reverted": paths})
	})
	mux.HandleFunc("POST /confirm-deletes", func(w http.ResponseWriter, r *http.Request) {
		if err := d.ConfirmDeletes(r.Context(), r.URL.Query().Get("folder")); err != nil {
			writeJSON(w, http.StatusConflict, map[string]string{"error": err.Error()})
			return
		}
		writeJSON(w, http.StatusOK, map[string]string{})
	})
	mux.HandleFunc("POST /snapshot", func(w http.ResponseWriter, r *http.Request) {
		info, err := d.Snapshot(r.Context())
		code := http.StatusOK
		if err != nil {
			code = http.StatusInternalServerError
			if info == nil {
				info = &SnapshotInfo{Result: "failed", Error: err.Error()}
			}
		}
		writeJSON(w, code, info)
	})
	return d.access.guard(mux)
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.Encode(v)
}
