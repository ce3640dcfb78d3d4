// Package bell wakes every goroutine waiting for something to happen, as
// often as it happens: a broadcast that, unlike sync.Cond, can be waited on
// in a select with a timeout or a context.
package bell

import "sync"

// Bell is rung when something happened; the zero value is ready to use.
type Bell struct {
	mu sync.Mutex
	ch chan struct{}
}

// Wait returns a channel that the next Ring closes.
func (b *Bell) Wait() <-chan struct{} {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.ch == nil {
		b.ch = make(chan struct{})
	}
	return b.ch
}

// Ring wakes everyone waiting on a channel Wait returned before it.
func (b *Bell) Ring() {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.ch != nil {
		close(b.ch)
	}
	b.ch = make(chan struct{})
}
