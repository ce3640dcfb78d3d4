package watcher

import (
	"os"
	"path/filepath"
	"slices"
	"time"
)

// pend is the state of a path with events not yet reported.
type pend struct {
	first   time.Time // first event: MaxHold counts from here
	last    time.Time // last event: Debounce counts from here
	changed time.Time // last change seen (event or stat): Settle counts from here
	statted bool      // size and mtime hold a stat of the file
	size    int64
	mtime   time.Time
}

// touch records an event for rel now.
func (s *session) touch(rel string) {
	now := s.opts.Clock.Now()
	e := s.pending[rel]
	if e == nil {
		e = &pend{first: now}
		s.pending[rel] = e
	}
	e.last, e.changed = now, now
	s.armFlush(now.Add(s.opts.Debounce))
}

// armFlush makes the flush timer fire at or before at (but not sooner than
// a tenth of Debounce after the last flush, so a stream of events makes
// fewer, larger batches).
func (s *session) armFlush(at time.Time) {
	if gap := s.lastFlush.Add(s.opts.Debounce / 10); at.Before(gap) {
		at = gap
	}
	if s.flushT != nil && !at.Before(s.flushAt) {
		return
	}
	stop(&s.flushT)
	s.flushT = s.opts.Clock.NewTimer(at.Sub(s.opts.Clock.Now()))
	s.flushAt = at
}

// flush sends a pending Rescan (re-adding watches first if needed, but
// not before refreshNotBefore) and moves the paths that are due into the
// outgoing batch, then arms the timer for the next path due.
func (s *session) flush() {
	now := s.opts.Clock.Now()
	var next time.Time
	if s.rescanReason != "" {
		refresh := s.needRefresh && !s.rootGone
		if refresh && now.Before(s.refreshNotBefore) {
			next = s.refreshNotBefore // the Rescan waits for its refresh
		} else {
			if refresh {
				s.refresh(false)
			}
			s.emitRescan(s.rescanReason)
			s.rescanReason, s.needRefresh = "", false
			now = s.opts.Clock.Now()
		}
	}
	s.lastFlush = now
	var due []string
	for rel, e := range s.pending {
		at := s.check(rel, e, now)
		if at.IsZero() {
			due = append(due, rel)
			delete(s.pending, rel)
			continue
		}
		if next.IsZero() || at.Before(next) {
			next = at
		}
	}
	s.emit(due)
	if !next.IsZero() {
		s.armFlush(next)
	}
}

// check decides whether rel is due now. It returns the zero time if it is,
// or when to look again: after Debounce of quiet, and for a regular file
// after Settle without a change of size or mtime; both bounded by MaxHold.
func (s *session) check(rel string, e *pend, now time.Time) time.Time {
	limit := e.first.Add(s.opts.MaxHold)
	if !now.Before(limit) {
		return time.Time{}
	}
	if quiet := e.last.Add(s.opts.Debounce); now.Before(quiet) {
		return earlier(quiet, limit)
	}
	if !e.statted && !now.Before(e.changed.Add(s.opts.Settle)) {
		return time.Time{} // quiet long enough; a stat could not hold it back
	}
	fi, err := os.Lstat(filepath.Join(s.root, filepath.FromSlash(rel)))
	if err != nil || !fi.Mode().IsRegular() {
		return time.Time{} // gone or not a file: report it as is
	}
	if e.statted && (fi.Size() != e.size || !fi.ModTime().Equal(e.mtime)) {
		e.changed = now // still being written
	}
	e.statted, e.size, e.mtime = true, fi.Size(), fi.ModTime()
	if settled := e.changed.Add(s.opts.Settle); now.Before(settled) {
		return earlier(settled, limit)
	}
	return time.Time{}
}

func earlier(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}

// emit adds paths to the outgoing batch.
func (s *session) emit(paths []string) {
	if len(paths) == 0 {
		return
	}
	s.outBatch()
	for _, p := range paths {
		if _, dup := s.outSet[p]; !dup {
			s.outSet[p] = struct{}{}
			s.out.Paths = append(s.out.Paths, p)
		}
	}
	slices.Sort(s.out.Paths)
}

// emitRescan marks the outgoing batch as a Rescan for reason.
func (s *session) emitRescan(reason string) {
	s.outBatch()
	s.out.Rescan = true
	s.out.Reason = joinReason(s.out.Reason, reason)
}

func (s *session) outBatch() {
	if s.out == nil {
		s.out = &Batch{}
		s.outSet = make(map[string]struct{})
	}
}

// sent records that the consumer received the outgoing batch.
func (s *session) sent() {
	s.w.batches.Add(1)
	s.w.paths.Add(uint64(len(s.out.Paths)))
	if s.out.Rescan {
		s.w.rescans.Add(1)
	}
	s.out, s.outSet = nil, nil
}
