package chunkstore

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/syncd/syncd/chunkstore/backend"
)

// DrillPrefix is where drill records live: "drills/<id>".
const DrillPrefix = "drills/"

// DrillName returns the backend name of a drill record.
func DrillName(id ID) string { return DrillPrefix + id.String() }

// Drill is the content of a "drills/<id>" object: the result of one
// `restore drill`. It holds no file contents, only what the drill measured;
// like a snapshot it is sealed to the index key and the data recipients.
type Drill struct {
	Time      time.Time       `json:"time"`              // when the drill began
	Host      string          `json:"host"`              // the machine that ran it
	Program   string          `json:"program,omitempty"` // "restore drill"
	OK        bool            `json:"ok"`                // every restored byte verified, no damage, within --max-age
	Error     string          `json:"error,omitempty"`   // why not, in one line
	Sample    int             `json:"sample,omitempty"`  // --sample N; 0 for a full drill
	Seconds   float64         `json:"seconds"`           // the drill's wall time
	Snapshots []DrillSnapshot `json:"snapshots"`
}

// DrillSnapshot is what a drill measured of one snapshot.
type DrillSnapshot struct {
	ID           ID        `json:"id"`
	Host         string    `json:"host"`
	Paths        []string  `json:"paths"`
	Time         time.Time `json:"time"`                        // the snapshot's time
	AgeSeconds   float64   `json:"age_seconds"`                 // its age when the drill began: the recovery point
	Files        int64     `json:"files"`                       // files restored and verified
	Bytes        int64     `json:"bytes"`                       // their bytes
	Seconds      float64   `json:"seconds"`                     // restore time: the recovery time
	EstSeconds   float64   `json:"estimated_seconds,omitempty"` // a sample drill's estimate of the full restore time
	DamagedFiles int64     `json:"damaged_files,omitempty"`     // files that could not be restored intact
	DamagedPacks []string  `json:"damaged_packs,omitempty"`     // the packs at fault
	DriftFiles   int64     `json:"drift_files,omitempty"`       // with --compare: files of the live tree that differ
}

// SaveDrill writes a drill record. Like every write it needs an open
// write session.
func (r *Repository) SaveDrill(ctx context.Context, d *Drill) (ID, error) {
	id, err := r.saveMeta(ctx, strings.TrimSuffix(DrillPrefix, "/"), d)
	if err != nil {
		return ID{}, fmt.Errorf("save drill record: %w", err)
	}
	return id, nil
}

// LoadDrill reads the drill record id.
func (r *Repository) LoadDrill(ctx context.Context, id ID) (*Drill, error) {
	var d Drill
	if err := r.loadMeta(ctx, DrillName(id), id, &d); err != nil {
		return nil, err
	}
	return &d, nil
}

// DrillIDs lists the drill records, in no particular order. Records are
// immutable: a reader that polls may keep what it read by ID.
func (r *Repository) DrillIDs(ctx context.Context) ([]ID, error) {
	var ids []ID
	err := r.be.List(ctx, DrillPrefix, func(fi backend.Info) error {
		id, err := ParseID(strings.TrimPrefix(fi.Name, DrillPrefix))
		if err != nil {
			return nil // not a record: ignored, as verify reports it
		}
		ids = append(ids, id)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("list drill records: %w", err)
	}
	return ids, nil
}
