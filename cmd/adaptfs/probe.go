package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"flag"
	"fmt"
	"io"
	"os"
	"sync"
	"time"

	"github.com/adaptfs/adaptfs/adapt"
	"github.com/adaptfs/adaptfs/s3backend"
)

// cmdProbe measures the link to the endpoint with real uploads to a
// temporary multipart upload (aborted afterwards: nothing is stored), prints
// the estimates and the parameters the controller would start with, and
// saves them as the endpoint's profile for the next mount.
func cmdProbe(ctx context.Context, args []string) error {
	var cf commonFlags
	fl := flag.NewFlagSet("probe", flag.ContinueOnError)
	fl.SetOutput(io.Discard)
	cf.register(fl)
	dur := fl.Duration("duration", 20*time.Second, "how long to upload")
	pos, err := parseArgs(fl, args, 1, "BUCKET[/PREFIX]", func() {
		fmt.Print("Usage: adaptfs probe [flags] BUCKET[/PREFIX]\n\nUploads parts of random data to a temporary multipart upload for --duration\n(then aborts it: nothing is stored), letting the adaptive controller measure\nthe link, prints what it measured and the parameters a mount would start\nwith, and saves them as the endpoint's profile.\n\nFlags:\n")
		fl.SetOutput(os.Stdout)
		fl.PrintDefaults()
	})
	if err != nil {
		return err
	}
	cfg, err := cf.config(pos[0])
	if err != nil {
		return err
	}
	log, closer, err := newLogger(cfg, false)
	if err != nil {
		return err
	}
	defer closer.Close()
	if err := os.MkdirAll(cfg.StagingDir, 0o700); err != nil {
		return fmt.Errorf("staging_dir %s: %w", cfg.StagingDir, err)
	}
	prof := loadProfile(cfg.StagingDir, log)
	levels := newLevelChooser(cfg, prof) // carries the saved level over: a probe compresses nothing
	ctrl := adapt.NewController(cfg.Adapt, wallClock{}, prof, adapt.WithMemoryBudget(int64(cfg.MaxStagingMemoryMB)<<20))
	be, err := s3backend.New(ctx, cfg.S3, sampleBridge{c: ctrl}, log)
	if err != nil {
		return err
	}
	if err := be.CheckBucket(ctx); err != nil {
		return err
	}
	suffix := make([]byte, 6)
	rand.Read(suffix)
	key := ".adaptfs-probe-" + hex.EncodeToString(suffix)
	id, err := be.CreateMultipart(ctx, key, s3backend.ObjectMeta{})
	if err != nil {
		return err
	}
	defer func() {
		actx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := be.AbortMultipart(actx, key, id); err != nil {
			fmt.Fprintf(os.Stderr, "adaptfs probe: could not abort the probe upload %s (%s): %v\n", key, id, err)
		}
	}()
	fmt.Fprintf(os.Stderr, "probing %s for %v with a temporary upload...\n", cfg.Bucket, *dur)
	pctx, cancel := context.WithTimeout(ctx, *dur)
	defer cancel()
	var (
		mu       sync.Mutex
		inFlight int
		part     int32
		wg       sync.WaitGroup
		sent     int64
	)
	data := make([]byte, cfg.MaxChunkSizeMB<<20)
	rand.Read(data)
	done := make(chan struct{})
	go func() {
		defer close(done)
		runController(pctx, ctrl, levels, cfg.MonitoringInterval, be, func() int { mu.Lock(); defer mu.Unlock(); return inFlight }, nil, cfg.StagingDir, log)
	}()
	for pctx.Err() == nil {
		p := ctrl.Params()
		mu.Lock()
		if inFlight >= p.Concurrency || part >= 10000 {
			mu.Unlock()
			time.Sleep(5 * time.Millisecond)
			continue
		}
		inFlight++
		part++
		n := part
		mu.Unlock()
		size := min(p.PartSize, int64(len(data)))
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := be.UploadPart(pctx, key, id, n, bytes.NewReader(data[:size]), size)
			mu.Lock()
			inFlight--
			if err == nil {
				sent += size
			}
			mu.Unlock()
		}()
	}
	wg.Wait()
	<-done // saves the profile
	snap := ctrl.Snapshot()
	e := snap.Estimates
	fmt.Printf("completed parts       %.1f MiB in %v (parts still in flight at the end are not counted)\n", float64(sent)/(1<<20), *dur)
	fmt.Printf("goodput               %.1f Mbit/s (bottleneck estimate %.1f Mbit/s)\n", e.GoodputBps/1e6, e.BottleneckBandwidthBps/1e6)
	fmt.Printf("propagation RTT       %.1f ms (%s), smoothed %.1f ms, inflation %.0f%%\n", 1000*e.PropagationRTTSeconds, e.RTTSource, 1000*e.SmoothedRTTSeconds, 100*e.RTTInflation)
	fmt.Printf("errors                %.2f%% of requests, retries %.2f%%\n", 100*e.ErrorRate, 100*e.RetryRate)
	fmt.Printf("health                %s, trend %s\n", snap.Health, snap.Trend.Direction)
	fmt.Printf("start parameters      part size %d MiB, concurrency %d\n", snap.Params.PartSizeBytes>>20, snap.Params.Concurrency)
	fmt.Printf("profile saved in      %s\n", cfg.StagingDir)
	return nil
}
