package test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/adaptfs/adaptfs/test/harness"
	"github.com/adaptfs/adaptfs/test/wan"
)

// TestSoak (make soak; skipped unless ADAPTFS_SOAK=1) pushes
// ADAPTFS_SOAK_GB (default 20) GiB of mixed data through the emulated link
// whose rate and RTT wander at random every 10 s, behind a proxy that
// injects server errors, resets and stalls, in rounds of about 0.8 GiB:
// copy, sync, verify every object, delete. The daemon's RSS, sampled every second, must
// stay under max_staging_memory_mb + 64 MiB and its goroutine count flat
// (the last round's at most 1.5× the first's + 20).
func TestSoak(t *testing.T) {
	if os.Getenv("ADAPTFS_SOAK") != "1" {
		t.Skip("the soak runs with make soak (ADAPTFS_SOAK=1)")
	}
	gib := envInt("ADAPTFS_SOAK_GB", 20)
	const memMB = 256
	requireFuse(t)
	wan.Require(t)
	link := wan.UpForTest(t, wan.Config{Name: "adaptsoak", RateMbit: 400, RTTms: 20})
	srv := serverBehind(t, link)
	proxy, err := harness.StartFaultProxy(srv.Endpoint, harness.Faults{Seed: 99, Status: 0.02, Reset: 0.005, Stall: 0.002, StallFor: 8 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(proxy.Close)
	r := &rig{srv: srv, bucket: "adaptfs-soak"}
	harness.CreateBucketTB(t, srv, r.bucket)
	r.mnt = r.mount(t, "--endpoint", proxy.URL, "-o", fmt.Sprintf("max_staging_memory_mb=%d,request_timeout=4s", memMB))

	ctx, stop := context.WithCancel(t.Context())
	defer stop()
	var wg sync.WaitGroup
	// The volatile link: rate 50–400 Mbit/s, RTT 10–80 ms, every 10 s.
	wg.Go(func() {
		rng := rand.New(rand.NewPCG(5, 5))
		for {
			select {
			case <-ctx.Done():
				return
			case <-time.After(10 * time.Second):
			}
			if err := link.Set(wan.Config{RateMbit: float64(50 + rng.IntN(351)), RTTms: float64(10 + rng.IntN(71))}); err != nil {
				t.Errorf("link set: %v", err)
			}
		}
	})
	var (
		mu      sync.Mutex
		rssPeak int64
		samples int
	)
	wg.Go(func() {
		for {
			select {
			case <-ctx.Done():
				return
			case <-time.After(time.Second):
			}
			if rss, err := harness.ProcStatusBytes(r.mnt.PID(), "VmRSS"); err == nil {
				mu.Lock()
				rssPeak = max(rssPeak, rss)
				samples++
				mu.Unlock()
			}
		}
	})

	var goroutines []int
	start := time.Now()
	var bytes int64
	for round := 0; bytes < int64(gib)<<30; round++ {
		src := filepath.Join(t.TempDir(), "src")
		want := mixedTree(t, src, 1<<30, uint64(1000+round))
		dst := fmt.Sprintf("round%02d", round)
		run(t, "cp", "-r", src, r.path(dst))
		r.sync(t)
		got, _, err := harness.BucketContents(t.Context(), srv.Client, r.bucket, dst)
		if err != nil {
			t.Fatal(err)
		}
		requireSame(t, "round "+dst, want, got)
		for _, s := range want {
			bytes += s.Size
		}
		goroutines = append(goroutines, readStats(t, r.mnt.Dir).Process.Goroutines)
		run(t, "rm", "-rf", r.path(dst))
		os.RemoveAll(src)
		mu.Lock()
		t.Logf("round %d: %.1f of %d GiB in %v, RSS peak %d MiB, goroutines %d, proxy %+v", round+1,
			float64(bytes)/(1<<30), gib, time.Since(start).Round(time.Second), rssPeak>>20, goroutines[len(goroutines)-1], proxy.Counts())
		mu.Unlock()
	}
	stop()
	wg.Wait()
	t.Logf("soak: %.1f GiB in %v (%.0f Mbit/s), zero differences, RSS peak %d MiB over %d samples (limit %d), goroutines per round %v",
		float64(bytes)/(1<<30), time.Since(start).Round(time.Second), float64(bytes)*8/1e6/time.Since(start).Seconds(),
		rssPeak>>20, samples, memMB+64, goroutines)
	if rssPeak > int64(memMB+64)<<20 {
		t.Errorf("RSS peak %d MiB over max_staging_memory_mb + 64 = %d MiB", rssPeak>>20, memMB+64)
	}
	if first, last := goroutines[0], goroutines[len(goroutines)-1]; float64(last) > 1.5*float64(first)+20 {
		t.Errorf("goroutines grew from %d to %d: %v", first, last, slices.Clip(goroutines))
	}
}
