package indexer

import (
	"fmt"
	"time"
)

// HeldError is returned by Apply when the changes it found, with the
// deletes recorded within Folder.DeleteWindow before, delete more than
// Folder.MaxDelete of the folder's files: everything else was recorded,
// the deletes were not (the peers keep their copies). After
// [Indexer.ConfirmDeletes], the next Apply that finds them records them.
type HeldError struct {
	Folder string
	Files  int // files deleted within the window, these changes' included
	Total  int // files in the folder at the window's start
	Max    float64
}

func (e *HeldError) Error() string {
	return fmt.Sprintf("folder %s: holding back a change that deletes %d of its %d files (%.0f%%, over max_delete %.0f%%): if that is intended, run syncd confirm-deletes %s",
		e.Folder, e.Files, e.Total, 100*float64(e.Files)/float64(max(e.Total, 1)), 100*e.Max, e.Folder)
}

// recentDeletes sums the files recorded as deleted within the window
// before now, and forgets older records.
func (ix *Indexer) recentDeletes(now time.Time) int {
	w := ix.f.DeleteWindow
	if w == 0 {
		w = time.Minute
	}
	keep := ix.recent[:0]
	sum := 0
	for _, r := range ix.recent {
		if now.Sub(r.at) < w {
			keep = append(keep, r)
			sum += r.files
		}
	}
	ix.recent = keep
	return sum
}

// deleted is a number of files recorded as deleted at a time.
type deleted struct {
	at    time.Time
	files int
}

// ConfirmDeletes lets the next Apply record a delete that max_delete would
// hold back (once); a full rescan that holds nothing withdraws it. It is
// safe for concurrent use.
func (ix *Indexer) ConfirmDeletes() { ix.confirm.Store(true) }

// commitDeletes records the deletes Apply found, unless they delete more
// than MaxDelete of the folder's files (a *HeldError) or the folder's
// guard fails.
func (ix *Indexer) commitDeletes() error {
	defer func() { ix.deferred, ix.goneSet, ix.after = nil, nil, nil }()
	files := 0
	for _, o := range ix.deferred {
		if o.erase && o.e.Type == "file" {
			files++
		}
	}
	if files == 0 && len(ix.deferred) == 0 {
		return nil
	}
	now := time.Now()
	if ix.f.Now != nil {
		now = ix.f.Now()
	}
	recent := ix.recentDeletes(now)
	if m := ix.f.MaxDelete; m > 0 && m < 1 && files > 0 && files+recent >= max(ix.f.MinHeld, 1) {
		// files in the folder at the window's start (the index keeps the
		// count: no walk)
		live, _ := ix.st.Totals()
		total := int(live) + recent
		if float64(files+recent) > m*float64(total) {
			if !ix.confirm.Swap(false) {
				return &HeldError{Folder: ix.f.ID, Files: files + recent, Total: total, Max: m}
			}
			ix.recent, files = nil, 0 // confirmed: the window starts again
		}
	}
	if ix.f.Check != nil {
		if err := ix.f.Check(); err != nil {
			return err
		}
	}
	if files > 0 {
		ix.recent = append(ix.recent, deleted{now, files})
	}
	for _, o := range ix.deferred {
		if o.erase {
			ix.ok(o.rel)
		}
		ix.batch = append(ix.batch, op{rel: o.rel, e: o.e, erase: o.erase})
		if err := ix.maybeFlush(); err != nil {
			return err
		}
	}
	return ix.flush()
}
