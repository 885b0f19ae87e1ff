package stage

import (
	"context"
	"io"
	"sync/atomic"
	"testing"
	"time"

	"github.com/adaptfs/adaptfs/adapt"
	"github.com/adaptfs/adaptfs/s3backend"
)

// switchParams is a parameter source the test changes while uploads run.
type switchParams struct{ conc atomic.Int64 }

func (s *switchParams) Params() adapt.Params {
	return adapt.Params{PartSize: 5 * MiB, Concurrency: int(s.conc.Load())}
}

type slowBackend struct {
	*memBackend
	inFlight, peak atomic.Int64
}

func (b *slowBackend) UploadPart(ctx context.Context, key, id string, n int32, body io.ReadSeeker, size int64) (s3backend.CompletedPart, error) {
	v := b.inFlight.Add(1)
	defer b.inFlight.Add(-1)
	for p := b.peak.Load(); v > p && !b.peak.CompareAndSwap(p, v); p = b.peak.Load() {
	}
	time.Sleep(30 * time.Millisecond)
	return b.memBackend.UploadPart(ctx, key, id, n, body, size)
}

// TestConcurrencyFollowsParams: when the controller lowers concurrency,
// the requests in flight follow as soon as the ones running end.
func TestConcurrencyFollowsParams(t *testing.T) {
	be := &slowBackend{memBackend: newMemBackend()}
	params := &switchParams{}
	params.conc.Store(8)
	a := newTestArea(t, be, params, 0)
	f, _ := a.Create("obj", s3backend.ObjectMeta{})
	data := make([]byte, 200*MiB)
	if _, err := f.WriteAt(data, 0); err != nil {
		t.Fatal(err)
	}
	f.Flush()
	f.Release(true)
	time.Sleep(100 * time.Millisecond)
	params.conc.Store(1)
	// The requests holding a slot (granted under the old limit) end.
	for deadline := time.Now().Add(10 * time.Second); a.lim.InUse() > 1; {
		if time.Now().After(deadline) {
			t.Fatalf("%d slots still held 10 s after concurrency went to 1", a.lim.InUse())
		}
		time.Sleep(time.Millisecond)
	}
	be.peak.Store(0)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := a.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if p := be.peak.Load(); p > 1 {
		t.Fatalf("%d requests in flight after concurrency went to 1", p)
	}
}
