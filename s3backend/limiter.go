package s3backend

import (
	"context"
	"sync"
)

// Limiter is a counting semaphore whose size can change while it is in use.
// One Limiter is shared by every upload of a mount, so the concurrency limit
// is global across files. Shrinking never interrupts holders: the limit
// takes effect as they release.
type Limiter struct {
	mu      sync.Mutex
	limit   int
	held    int
	waiters []chan struct{} // FIFO; a closed channel means granted
}

// NewLimiter returns a Limiter allowing n concurrent holders (n >= 1).
func NewLimiter(n int) *Limiter {
	return &Limiter{limit: max(n, 1)}
}

// Acquire blocks until a slot is free or ctx is done.
func (l *Limiter) Acquire(ctx context.Context) error {
	l.mu.Lock()
	if l.held < l.limit && len(l.waiters) == 0 {
		l.held++
		l.mu.Unlock()
		return nil
	}
	ch := make(chan struct{})
	l.waiters = append(l.waiters, ch)
	l.mu.Unlock()

	select {
	case <-ch:
		return nil
	case <-ctx.Done():
		l.mu.Lock()
		defer l.mu.Unlock()
		select {
		case <-ch: // granted while we were giving up: pass it on
			l.held--
			l._grant()
		default:
			l._removeWaiter(ch)
		}
		return ctx.Err()
	}
}

// Release frees a slot taken by Acquire.
func (l *Limiter) Release() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.held--
	l._grant()
}

// SetLimit changes the number of slots (n >= 1).
func (l *Limiter) SetLimit(n int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.limit = max(n, 1)
	l._grant()
}

// Limit returns the current number of slots.
func (l *Limiter) Limit() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.limit
}

// InUse returns the number of slots held.
func (l *Limiter) InUse() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.held
}

func (l *Limiter) _grant() {
	for l.held < l.limit && len(l.waiters) > 0 {
		ch := l.waiters[0]
		l.waiters = l.waiters[1:]
		l.held++
		close(ch)
	}
}

func (l *Limiter) _removeWaiter(ch chan struct{}) {
	for i, w := range l.waiters {
		if w == ch {
			l.waiters = append(l.waiters[:i], l.waiters[i+1:]...)
			return
		}
	}
}
