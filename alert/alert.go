// Package alert tells operators when a node breaks: it POSTs each alert as
// JSON to webhooks (docs/ALERTS.md) when it starts, again every repeat
// interval while it lasts, and once more when it is resolved.
//
// The daemon's parts report conditions to an [Alerter] with [Alerter.Fire]
// and [Alerter.Resolve]; these never block on delivery. Each webhook has
// its own bounded queue and sender, which retries with capped exponential
// backoff, so a webhook that is down or slow delays nothing but itself.
package alert

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/syncd/syncd/internal/clock"
)

// The severities of an alert.
const (
	Warning  = "warning"  // something to look at during working hours
	Critical = "critical" // something to fix now
)

// The alert names syncd sends (the "alert" field of a [Message]).
const (
	PeerDown              = "peer down"
	SnapshotFailed        = "snapshot failed"
	SnapshotOverdue       = "snapshot overdue"
	FolderFailed          = "folder failed"
	RepositoryUnreachable = "repository unreachable"
	LocalChanges          = "local changes"
	DrillOverdue          = "drill overdue"
	DrillFailed           = "drill failed"
	CopyFailed            = "copy failed" // a repository.copies target's last copy failed
)

// The statuses of a [Message].
const (
	Firing   = "firing"
	Resolved = "resolved"
)

// Defaults for the zero fields of [Options].
const (
	DefaultRepeat     = 4 * time.Hour
	DefaultTimeout    = 10 * time.Second
	DefaultQueueSize  = 256
	DefaultMinBackoff = time.Second
	DefaultMaxBackoff = 5 * time.Minute
)

// Options configure an [Alerter].
type Options struct {
	Node     string    // this node's name, the "node" of every message
	Webhooks []Webhook // where messages go; none: alerts are only tracked
	// Repeat is how often an alert that is still active is sent again
	// (DefaultRepeat when 0).
	Repeat time.Duration
	// QueueSize bounds each webhook's queue of undelivered messages
	// (DefaultQueueSize when 0); when it is full the oldest is dropped.
	QueueSize int
	// MinBackoff and MaxBackoff bound the wait between the tries of a
	// message: it starts at MinBackoff and doubles up to MaxBackoff
	// (DefaultMinBackoff, DefaultMaxBackoff when 0).
	MinBackoff, MaxBackoff time.Duration
	Clock                  Clock        // nil: the system clock
	Logger                 *slog.Logger // nil: no logs
}

// Webhook is one receiver of alerts.
type Webhook struct {
	URL string // http:// or https://
	// TokenFile, when set, holds the bearer token sent with each request
	// (Authorization: Bearer TOKEN); it must not be readable by group or
	// others.
	TokenFile string
	Timeout   time.Duration // per request (DefaultTimeout when 0)
}

// Alert is an active alert, as [Alerter.Active] lists it.
type Alert struct {
	Key      string    // the source of the episode, like "peer-down/web2"
	Name     string    // the alert name, like [PeerDown]
	Severity string    // [Warning] or [Critical]
	Details  string    // the latest details given to Fire
	Since    time.Time // when the episode started
}

// Alerter tracks the active alerts of a node and sends their messages.
// Its methods are safe for concurrent use; Fire and Resolve never wait
// for a webhook.
type Alerter struct {
	node   string
	repeat time.Duration
	clock  Clock
	log    *slog.Logger
	hooks  []*webhook
	wake   chan struct{} // a new episode: the repeat loop recomputes its timer
	ran    atomic.Bool

	mu     sync.Mutex
	active map[string]*episode
}

type episode struct {
	Alert
	next time.Time // when it is sent again
}

// New returns an Alerter for o. It reads each webhook's token file now and
// fails when one is missing, empty, or readable by group or others; the
// error names the file, never the token.
func New(o Options) (*Alerter, error) {
	a := &Alerter{
		node:   o.Node,
		repeat: or(o.Repeat, DefaultRepeat),
		clock:  o.Clock,
		log:    o.Logger,
		wake:   make(chan struct{}, 1),
		active: map[string]*episode{},
	}
	if a.clock == nil {
		a.clock = clock.System
	}
	if a.log == nil {
		a.log = slog.New(slog.DiscardHandler)
	}
	size := o.QueueSize
	if size <= 0 {
		size = DefaultQueueSize
	}
	minB := or(o.MinBackoff, DefaultMinBackoff)
	maxB := max(or(o.MaxBackoff, DefaultMaxBackoff), minB)
	client := newClient()
	for i, w := range o.Webhooks {
		h, err := newWebhook(w, client, size, minB, maxB, a.clock, a.log)
		if err != nil {
			return nil, fmt.Errorf("alert webhook %d: %w", i+1, err)
		}
		a.hooks = append(a.hooks, h)
	}
	return a, nil
}

func or(d, def time.Duration) time.Duration {
	if d <= 0 {
		return def
	}
	return d
}

// Run delivers messages and sends repeats until ctx ends, then returns
// nil. Messages still queued then are lost. Fire and Resolve may be
// called before Run starts: their messages wait in the queues.
func (a *Alerter) Run(ctx context.Context) error {
	if a.ran.Swap(true) {
		return errors.New("alert: Run called twice")
	}
	var wg sync.WaitGroup
	for _, h := range a.hooks {
		wg.Go(func() { h.run(ctx) })
	}
	a.repeatLoop(ctx)
	wg.Wait()
	return nil
}

// Fire reports that the condition key (one episode source, like
// "peer-down/web2") is active, as alert name with severity ([Warning] or
// [Critical]; anything else is sent as critical) and details (one line
// for people). The first Fire of an episode queues a firing message for
// every webhook; a Fire of a key already active only updates its severity
// and details, which the repeats and the resolved message carry.
func (a *Alerter) Fire(key, name, severity, details string) {
	if severity != Warning {
		severity = Critical
	}
	now := a.clock.Now()
	a.mu.Lock()
	if e, ok := a.active[key]; ok {
		e.Severity, e.Details = severity, details
		a.mu.Unlock()
		return
	}
	e := &episode{Alert: Alert{Key: key, Name: name, Severity: severity, Details: details, Since: now}, next: now.Add(a.repeat)}
	a.active[key] = e
	body := a.message(e.Alert, Firing, now)
	a.mu.Unlock()
	a.send(body)
	select {
	case a.wake <- struct{}{}:
	default:
	}
}

// Resolve reports that the condition key cleared. When it was active, a
// resolved message is queued for every webhook; otherwise Resolve does
// nothing, so callers may call it whenever the condition is fine.
func (a *Alerter) Resolve(key string) {
	now := a.clock.Now()
	a.mu.Lock()
	e, ok := a.active[key]
	if !ok {
		a.mu.Unlock()
		return
	}
	delete(a.active, key)
	body := a.message(e.Alert, Resolved, now)
	a.mu.Unlock()
	a.send(body)
}

// Active returns the active alerts, oldest first (for the status page).
func (a *Alerter) Active() []Alert {
	a.mu.Lock()
	out := make([]Alert, 0, len(a.active))
	for _, e := range a.active {
		out = append(out, e.Alert)
	}
	a.mu.Unlock()
	slices.SortFunc(out, func(x, y Alert) int {
		if c := x.Since.Compare(y.Since); c != 0 {
			return c
		}
		return strings.Compare(x.Key, y.Key)
	})
	return out
}

// Stats returns the delivery counters of each webhook, in the order of
// Options.Webhooks.
func (a *Alerter) Stats() []Stats {
	out := make([]Stats, len(a.hooks))
	for i, h := range a.hooks {
		out[i] = h.stats()
	}
	return out
}

// send queues body for every webhook.
func (a *Alerter) send(body []byte) {
	for _, h := range a.hooks {
		h.enqueue(body)
	}
}

// repeatLoop sends the repeats of active alerts when they are due.
func (a *Alerter) repeatLoop(ctx context.Context) {
	for {
		next, ok := a.repeatDue()
		var fired <-chan time.Time
		var t Timer
		if ok {
			t = a.clock.NewTimer(next.Sub(a.clock.Now()))
			fired = t.C()
		}
		select {
		case <-ctx.Done():
		case <-a.wake:
		case <-fired:
		}
		if t != nil {
			t.Stop()
		}
		if ctx.Err() != nil {
			return
		}
	}
}

// repeatDue queues the repeats that are due and returns when the next one
// is, if any alert is active.
func (a *Alerter) repeatDue() (next time.Time, ok bool) {
	now := a.clock.Now()
	var due [][]byte
	a.mu.Lock()
	for _, e := range a.active {
		if !e.next.After(now) {
			due = append(due, a.message(e.Alert, Firing, now))
			for !e.next.After(now) {
				e.next = e.next.Add(a.repeat)
			}
		}
		if !ok || e.next.Before(next) {
			next, ok = e.next, true
		}
	}
	a.mu.Unlock()
	for _, body := range due {
		a.send(body)
	}
	return next, ok
}

// Message is the JSON body POSTed to webhooks; docs/ALERTS.md documents it.
type Message struct {
	Node     string `json:"node"`     // node.name of the sender
	Alert    string `json:"alert"`    // the alert name, like "peer down"
	Key      string `json:"key"`      // the episode source, like "peer-down/web2"
	Severity string `json:"severity"` // "warning" or "critical"
	Status   string `json:"status"`   // "firing" (first and repeats) or "resolved"
	Since    string `json:"since"`    // RFC 3339, UTC: when the episode started
	Time     string `json:"time"`     // RFC 3339, UTC: when this message was made
	Details  string `json:"details"`  // what is wrong, for people
	Text     string `json:"text"`     // one line that chat webhooks display
}

// message encodes the message of e with status at now.
func (a *Alerter) message(e Alert, status string, now time.Time) []byte {
	m := Message{
		Node: a.node, Alert: e.Name, Key: e.Key, Severity: e.Severity, Status: status,
		Since: e.Since.UTC().Format(time.RFC3339), Time: now.UTC().Format(time.RFC3339),
		Details: e.Details,
	}
	m.Text = text(m, now.Sub(e.Since))
	body, err := json.Marshal(m)
	if err != nil {
		panic("alert: encode message: " + err.Error()) // strings only: cannot fail
	}
	return body
}

// text is the one line a chat shows, like "[FIRING] web1: peer down
// (critical): no heartbeat from web2 for 45s".
func text(m Message, age time.Duration) string {
	var b strings.Builder
	switch {
	case m.Status == Resolved:
		fmt.Fprintf(&b, "[RESOLVED] %s: %s (after %s)", m.Node, m.Alert, age.Round(time.Second))
	case age > 0:
		fmt.Fprintf(&b, "[FIRING] %s: %s (%s, since %s)", m.Node, m.Alert, m.Severity, m.Since)
	default:
		fmt.Fprintf(&b, "[FIRING] %s: %s (%s)", m.Node, m.Alert, m.Severity)
	}
	if m.Details != "" {
		b.WriteString(": ")
		b.WriteString(m.Details)
	}
	return strings.NewReplacer("\r\n", " ", "\n", " ", "\r", " ").Replace(b.String())
}
