package chunkstore

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/syncd/syncd/chunkstore/backend"
)

// Locks keep a prune from deleting what a running snapshot is about to
// reference. A snapshot holds a shared lock from before it reads the index
// until its snapshot object is written; a prune holds an exclusive lock
// while it reads and deletes. docs/FORMAT.md ("Locks") gives the scheme
// and why it is safe.

// LockPrefix is the backend prefix of lock objects.
const LockPrefix = "locks/"

// Lock defaults.
const (
	DefaultLockExpiry = 30 * time.Minute // a lock not refreshed for this long is stale
	DefaultLockPoll   = 5 * time.Second  // how often a waiting locker looks again
)

// LockInfo is the content of a "locks/<id>" object.
type LockInfo struct {
	Version   int       `json:"version"`
	Exclusive bool      `json:"exclusive"`
	Host      string    `json:"host"`
	PID       int       `json:"pid"`
	Program   string    `json:"program,omitempty"`
	Created   time.Time `json:"created"`
	Expires   time.Time `json:"expires"` // stale after this instant, unless refreshed
}

// String describes the holder, e.g. "exclusive lock of syncd prune (pid 42 on web1)".
func (l LockInfo) String() string {
	kind := "shared"
	if l.Exclusive {
		kind = "exclusive"
	}
	prog := l.Program
	if prog == "" {
		prog = "syncd"
	}
	return fmt.Sprintf("%s lock of %s (pid %d on %s, since %s)", kind, prog, l.PID, l.Host,
		l.Created.UTC().Format(time.RFC3339))
}

// maxLockField bounds the host and program names of a lock.
const maxLockField = 256

// DecodeLock decodes and validates the JSON of a lock object.
func DecodeLock(data []byte) (LockInfo, error) {
	var l LockInfo
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&l); err != nil {
		return LockInfo{}, fmt.Errorf("decode lock: %w", err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return LockInfo{}, errors.New("decode lock: trailing data")
	}
	switch {
	case l.Version != 1:
		return LockInfo{}, fmt.Errorf("decode lock: unknown version %d", l.Version)
	case l.Host == "" || len(l.Host) > maxLockField || len(l.Program) > maxLockField:
		return LockInfo{}, errors.New("decode lock: invalid host or program")
	case l.PID < 0:
		return LockInfo{}, fmt.Errorf("decode lock: invalid pid %d", l.PID)
	case l.Created.IsZero() || l.Expires.Before(l.Created):
		return LockInfo{}, errors.New("decode lock: invalid times")
	}
	return l, nil
}

// LockOptions configure Repository.Lock. Zero values choose the defaults.
type LockOptions struct {
	Exclusive bool   // a prune; otherwise shared (a snapshot)
	Program   string // recorded in the lock, e.g. "syncd prune"

	Now    func() time.Time // the clock; nil: time.Now
	Expiry time.Duration    // validity of each refresh; 0: DefaultLockExpiry
	// Refresh is the period of the background refresh; 0: Expiry/6, < 0:
	// none (the caller calls Lock.Refresh).
	Refresh time.Duration
	Poll    time.Duration // 0: DefaultLockPoll
	Wait    time.Duration // how long to wait for conflicting locks; 0: fail at once

	Host  string         // "": os.Hostname
	PID   int            // 0: os.Getpid
	Alive func(int) bool // whether a pid of this host runs; nil: signal 0

	// OnWait is called with the conflicting locks each time the locker
	// starts or goes on waiting for them.
	OnWait func([]LockInfo)
	// OnStale is called for each stale lock before it is removed.
	OnStale func(name string, l LockInfo, why string)
}

func (o *LockOptions) defaults() {
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Expiry <= 0 {
		o.Expiry = DefaultLockExpiry
	}
	if o.Refresh == 0 {
		o.Refresh = o.Expiry / 6
	}
	if o.Poll <= 0 {
		o.Poll = DefaultLockPoll
	}
	if o.Host == "" {
		o.Host, _ = os.Hostname()
		if o.Host == "" {
			o.Host = "unknown"
		}
	}
	if o.PID == 0 {
		o.PID = os.Getpid()
	}
	if o.Alive == nil {
		o.Alive = pidAlive
	}
}

// pidAlive reports whether process pid exists on this host.
func pidAlive(pid int) bool {
	if pid <= 0 {
		return false
	}
	err := syscall.Kill(pid, 0)
	return err == nil || errors.Is(err, syscall.EPERM)
}

// LockedError is returned by Repository.Lock when conflicting locks were
// still held when the wait ended.
type LockedError struct {
	Holders []LockInfo
}

func (e *LockedError) Error() string {
	var s []string
	for _, h := range e.Holders {
		s = append(s, h.String())
	}
	return "repository is locked: " + strings.Join(s, "; ")
}

// ErrLockLost is matched by the error of Lock.Check when the lock was
// removed by another node (as stale) or could not be refreshed in time.
var ErrLockLost = errors.New("repository lock lost")

// Lock is a held repository lock. Its methods are safe for concurrent use.
type Lock struct {
	r    *Repository
	opts LockOptions
	info LockInfo

	mu   sync.Mutex
	name string // current object name
	lost error
	stop chan struct{}
	done chan struct{}
}

// Lock takes a lock on the repository, waiting up to opts.Wait for
// conflicting locks to go. Stale locks that would conflict (expired, or of
// a dead process on this host) are removed, reported through opts.OnStale,
// and ignored even when they cannot be removed. A shared lock
// is also remembered by the repository: SaveSnapshot refuses to write once
// it is lost. Writers do not call Lock themselves: BeginWrite and
// BeginExclusive take the lock, after checking the repository is there.
func (r *Repository) Lock(ctx context.Context, opts LockOptions) (*Lock, error) {
	opts.defaults()
	now := opts.Now()
	l := &Lock{r: r, opts: opts, info: LockInfo{Version: 1, Exclusive: opts.Exclusive, Host: opts.Host,
		PID: opts.PID, Program: opts.Program, Created: now.UTC(), Expires: now.Add(opts.Expiry).UTC()}}
	deadline := now.Add(opts.Wait)
	reported := ""
	for {
		if l.name == "" {
			if err := l.put(ctx); err != nil {
				return nil, err
			}
		}
		conflicts, backOff, err := l.conflicts(ctx)
		if err != nil {
			l.remove()
			return nil, err
		}
		if len(conflicts) == 0 {
			break
		}
		if backOff {
			l.remove()
		}
		if !opts.Now().Before(deadline) {
			l.remove()
			return nil, &LockedError{Holders: conflicts}
		}
		if opts.OnWait != nil {
			if s := fmt.Sprint(conflicts); s != reported {
				reported = s
				opts.OnWait(conflicts)
			}
		}
		select {
		case <-ctx.Done():
			l.remove()
			return nil, ctx.Err()
		case <-time.After(opts.Poll):
		}
		if l.name != "" && opts.Now().After(l.info.Expires.Add(-opts.Expiry/2)) {
			if err := l.Refresh(ctx); err != nil {
				l.remove()
				return nil, err
			}
		}
	}
	if !opts.Exclusive {
		r.heldLock.Store(l)
	}
	if opts.Refresh > 0 {
		l.stop, l.done = make(chan struct{}), make(chan struct{})
		go l.refreshLoop()
	}
	return l, nil
}

// put writes the lock under a new random name.
func (l *Lock) put(ctx context.Context) error {
	sealed, err := l.r.sealMeta(l.info)
	if err != nil {
		return err
	}
	name := LockPrefix + RandomID().String()
	if err := backend.SaveBytes(ctx, l.r.raw, name, sealed); err != nil {
		return fmt.Errorf("write lock: %w", err)
	}
	l.mu.Lock()
	l.name = name
	l.mu.Unlock()
	return nil
}

// remove deletes the lock object, if any (best effort).
func (l *Lock) remove() {
	l.mu.Lock()
	name := l.name
	l.name = ""
	l.mu.Unlock()
	if name != "" {
		l.r.raw.Remove(context.WithoutCancel(context.Background()), name)
	}
}

// conflicts lists the other locks, removes the stale ones and returns those
// that conflict with l; backOff says that l must withdraw its own object
// while it waits (a shared lock waiting for a prune, or the younger of two
// exclusive locks), rather than keep it to hold newcomers off.
func (l *Lock) conflicts(ctx context.Context) ([]LockInfo, bool, error) {
	others, err := l.r.ReadLocks(ctx)
	if err != nil {
		return nil, false, err
	}
	now := l.opts.Now()
	var out []LockInfo
	backOff := false
	for _, o := range others {
		if o.Name == l.name {
			continue
		}
		if o.Err != nil {
			return nil, false, fmt.Errorf("%s: %w (remove it if no syncd process uses the repository)", o.Name, o.Err)
		}
		if why := l.stale(o.Info, now); why != "" {
			if !l.info.Exclusive && !o.Info.Exclusive {
				continue // a stale shared lock is nothing to a shared locker
			}
			// Stale: ignored whether or not it can be removed (a web node
			// may delete only locks; a store may refuse).
			if err := l.r.raw.Remove(ctx, o.Name); err != nil && !errors.Is(err, backend.ErrNotExist) {
				why += fmt.Sprintf(" (could not remove it: %v)", err)
			}
			if l.opts.OnStale != nil {
				l.opts.OnStale(o.Name, o.Info, why)
			}
			continue
		}
		if !l.info.Exclusive && !o.Info.Exclusive {
			continue
		}
		out = append(out, o.Info)
		switch {
		case !l.info.Exclusive:
			backOff = true
		case o.Info.Exclusive && older(o.Info, o.Name, l.info, l.name):
			backOff = true
		}
	}
	return out, backOff, nil
}

// older orders exclusive locks: the older one waits, the younger backs off.
func older(a LockInfo, aname string, b LockInfo, bname string) bool {
	if c := a.Created.Compare(b.Created); c != 0 {
		return c < 0
	}
	return aname < bname
}

// stale says why lock o is stale as of now, or "" when it is live.
func (l *Lock) stale(o LockInfo, now time.Time) string {
	if now.After(o.Expires) {
		return fmt.Sprintf("expired at %s", o.Expires.UTC().Format(time.RFC3339))
	}
	if o.Host == l.opts.Host && o.PID != l.opts.PID && !l.opts.Alive(o.PID) {
		return fmt.Sprintf("process %d no longer runs on %s", o.PID, o.Host)
	}
	return ""
}

// LockObject is one lock object as ReadLocks found it.
type LockObject struct {
	Name string
	Info LockInfo
	Err  error // the object could not be read or decoded
}

// ReadLocks reads every lock object. Locks removed while being read are
// left out.
func (r *Repository) ReadLocks(ctx context.Context) ([]LockObject, error) {
	var names []string
	err := r.be.List(ctx, LockPrefix, func(fi backend.Info) error {
		names = append(names, fi.Name)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("list locks: %w", err)
	}
	slices.Sort(names)
	var out []LockObject
	for _, name := range names {
		sealed, err := backend.ReadAll(ctx, r.be, name)
		if errors.Is(err, backend.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("read lock %s: %w", name, err)
		}
		var info LockInfo
		err = r.openMetaWith(name, sealed, func(body []byte) error {
			info, err = DecodeLock(body)
			return err
		})
		out = append(out, LockObject{Name: name, Info: info, Err: err})
	}
	return out, nil
}

// Refresh rewrites the lock with a new expiry (under a new name, then
// removes the old object). It fails with ErrLockLost when another node
// removed the lock meanwhile or the lock expired before the refresh.
func (l *Lock) Refresh(ctx context.Context) error {
	if err := l.Check(); err != nil {
		return err
	}
	l.mu.Lock()
	old := l.name
	l.mu.Unlock()
	if old != "" {
		if _, err := l.r.raw.Stat(ctx, old); errors.Is(err, backend.ErrNotExist) {
			return l.fail(fmt.Errorf("%w: %s was removed by another node", ErrLockLost, old))
		}
	}
	now := l.opts.Now()
	l.mu.Lock()
	l.info.Expires = now.Add(l.opts.Expiry).UTC()
	l.mu.Unlock()
	if err := l.put(ctx); err != nil {
		return err
	}
	if old != "" {
		if err := l.r.raw.Remove(ctx, old); errors.Is(err, backend.ErrNotExist) {
			l.remove() // the object just written
			return l.fail(fmt.Errorf("%w: %s was removed by another node", ErrLockLost, old))
		}
	}
	return nil
}

func (l *Lock) fail(err error) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.lost == nil {
		l.lost = err
	}
	return l.lost
}

// Check returns an error matching ErrLockLost when the lock can no longer
// be trusted: removed by another node, or past its expiry by our clock.
func (l *Lock) Check() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.lost != nil {
		return l.lost
	}
	if l.opts.Now().After(l.info.Expires) {
		l.lost = fmt.Errorf("%w: not refreshed before its expiry %s", ErrLockLost, l.info.Expires.Format(time.RFC3339))
	}
	return l.lost
}

func (l *Lock) refreshLoop() {
	defer close(l.done)
	t := time.NewTicker(l.opts.Refresh)
	defer t.Stop()
	for {
		select {
		case <-l.stop:
			return
		case <-t.C:
			ctx, cancel := context.WithTimeout(context.Background(), l.opts.Refresh)
			err := l.Refresh(ctx)
			cancel()
			if errors.Is(err, ErrLockLost) {
				return
			}
		}
	}
}

// Unlock stops the refresh and removes the lock object.
func (l *Lock) Unlock() {
	if l.stop != nil {
		close(l.stop)
		<-l.done
		l.stop = nil
	}
	l.r.heldLock.CompareAndSwap(l, nil)
	l.remove()
}

// Info returns what the lock records.
func (l *Lock) Info() LockInfo {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.info
}
