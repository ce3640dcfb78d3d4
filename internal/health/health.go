// Package health keeps the lasting conditions of one part of a node (a
// folder): each named, with a severity and the reason an operator reads
// in `syncd status`. A condition is reported when it starts and when it
// ends, not on every retry: Set and Clear say whether anything changed,
// so the caller logs once per condition.
package health

import (
	"slices"
	"sync"
	"time"
)

// Severity orders conditions: a folder's state is its worst condition's.
type Severity int

// The severities, mildest first.
const (
	// Degraded: the folder works, but something an operator must fix
	// makes it slower or incomplete (a full disk, the inotify limit).
	Degraded Severity = iota + 1
	// Failed: the folder stopped; it sends and applies nothing until the
	// condition clears (the folder marker is missing, the folder is gone).
	Failed
)

// String returns the state name a severity gives a folder.
func (s Severity) String() string {
	switch s {
	case Degraded:
		return "degraded"
	case Failed:
		return "failed"
	}
	return "ok"
}

// Condition is one lasting condition.
type Condition struct {
	Name     string    `json:"name"` // stable, for scripts: "disk-full", "marker-missing", …
	Severity Severity  `json:"-"`
	State    string    `json:"severity"` // Severity.String()
	Reason   string    `json:"reason"`   // one line: what is wrong and what to do
	Since    time.Time `json:"since"`
}

// Conditions is a set of conditions keyed by name. The zero value is
// ready to use; its methods are safe for concurrent use.
type Conditions struct {
	mu  sync.Mutex
	m   map[string]Condition
	now func() time.Time // nil: time.Now
}

// NewConditions returns an empty set whose Since times come from now
// (nil: time.Now).
func NewConditions(now func() time.Time) *Conditions {
	return &Conditions{now: now}
}

// Set records the condition name with sev and reason. It reports whether
// the condition is new or its severity changed: the moment to log it. A
// new reason alone updates the text silently (a retry count, a path).
func (c *Conditions) Set(name string, sev Severity, reason string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil {
		c.m = map[string]Condition{}
	}
	old, ok := c.m[name]
	if ok && old.Severity == sev {
		old.Reason = reason
		c.m[name] = old
		return false
	}
	now := time.Now
	if c.now != nil {
		now = c.now
	}
	since := now()
	if ok {
		since = old.Since
	}
	c.m[name] = Condition{Name: name, Severity: sev, State: sev.String(), Reason: reason, Since: since}
	return true
}

// Clear removes the condition name and reports whether it was set: the
// moment to log that it ended.
func (c *Conditions) Clear(name string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	_, ok := c.m[name]
	delete(c.m, name)
	return ok
}

// Get returns the condition name and whether it is set.
func (c *Conditions) Get(name string) (Condition, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	v, ok := c.m[name]
	return v, ok
}

// List returns the conditions, worst first, then by name.
func (c *Conditions) List() []Condition {
	c.mu.Lock()
	out := make([]Condition, 0, len(c.m))
	for _, v := range c.m {
		out = append(out, v)
	}
	c.mu.Unlock()
	slices.SortFunc(out, func(a, b Condition) int {
		if a.Severity != b.Severity {
			return int(b.Severity - a.Severity)
		}
		if a.Name < b.Name {
			return -1
		}
		if a.Name > b.Name {
			return 1
		}
		return 0
	})
	return out
}

// Worst returns the highest severity set (0 when there is none).
func (c *Conditions) Worst() Severity {
	c.mu.Lock()
	defer c.mu.Unlock()
	var w Severity
	for _, v := range c.m {
		w = max(w, v.Severity)
	}
	return w
}

// Failed reports whether a Failed condition is set: the folder must send
// and apply nothing.
func (c *Conditions) Failed() bool { return c.Worst() >= Failed }
