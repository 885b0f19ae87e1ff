package s3backend

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// TestLimiterShrinks: after SetLimit lowers the limit, holders finish and
// no more than the new limit ever hold a slot again.
func TestLimiterShrinks(t *testing.T) {
	l := NewLimiter(8)
	ctx := context.Background()
	var held, peak atomic.Int64
	var wg sync.WaitGroup
	work := func() {
		defer wg.Done()
		if err := l.Acquire(ctx); err != nil {
			t.Error(err)
			return
		}
		n := held.Add(1)
		for p := peak.Load(); n > p && !peak.CompareAndSwap(p, n); p = peak.Load() {
		}
		time.Sleep(2 * time.Millisecond)
		held.Add(-1)
		l.Release()
	}
	for range 8 {
		wg.Add(1)
		go work()
	}
	wg.Wait()
	l.SetLimit(2)
	peak.Store(0)
	for range 50 {
		wg.Add(1)
		go work()
	}
	wg.Wait()
	if p := peak.Load(); p > 2 {
		t.Fatalf("%d holders at once after SetLimit(2)", p)
	}
	if l.InUse() != 0 {
		t.Fatalf("InUse = %d after everyone released", l.InUse())
	}
}

// TestLimiterCancel: a cancelled waiter does not take or leak a slot.
func TestLimiterCancel(t *testing.T) {
	l := NewLimiter(1)
	if err := l.Acquire(context.Background()); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Millisecond)
	defer cancel()
	if err := l.Acquire(ctx); err == nil {
		t.Fatal("acquired a second slot of one")
	}
	l.Release()
	if l.InUse() != 0 {
		t.Fatalf("InUse = %d", l.InUse())
	}
	if err := l.Acquire(context.Background()); err != nil {
		t.Fatal(err)
	}
}
