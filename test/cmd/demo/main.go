// Command demo shows adaptfs end to end on one machine, with no cloud
// account: it starts the local S3-compatible test server (versitygw),
// mounts a bucket with adaptfs as a user would, copies a generated data set
// in with cp -r, waits until it is durable with `adaptfs sync`, and checks
// every object byte for byte directly against the server.
//
// It builds nothing: `make demo` builds bin/adaptfs and bin/versitygw first.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/adaptfs/adaptfs/test/harness"
)

const bucket = "demo"

type config struct {
	adaptfs, versitygw, dir string
}

func main() {
	var cfg config
	flag.StringVar(&cfg.adaptfs, "adaptfs", "./bin/adaptfs", "adaptfs binary")
	flag.StringVar(&cfg.versitygw, "versitygw", "./bin/versitygw", "versitygw binary")
	flag.StringVar(&cfg.dir, "dir", "./demo", "working directory (server data, source, staging, mount point, log)")
	flag.Parse()

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, cfg)
	stop()
	if err != nil {
		fmt.Fprintf(os.Stderr, "\ndemo FAILED: %v\n", err)
		os.Exit(1)
	}
}

func step(format string, args ...any) {
	fmt.Printf("==> "+format+"\n", args...)
}

func run(ctx context.Context, cfg config) (err error) {
	for _, p := range []*string{&cfg.adaptfs, &cfg.versitygw, &cfg.dir} {
		if *p, err = filepath.Abs(*p); err != nil {
			return err
		}
	}
	if err := checkBinary(cfg.adaptfs, "make build"); err != nil {
		return err
	}
	if err := checkBinary(cfg.versitygw, "make bin/versitygw"); err != nil {
		return err
	}
	if err := os.MkdirAll(cfg.dir, 0o755); err != nil {
		return err
	}
	if cfg.dir, err = filepath.EvalSymlinks(cfg.dir); err != nil {
		return err
	}
	var (
		serverDir  = filepath.Join(cfg.dir, "server")
		sourceDir  = filepath.Join(cfg.dir, "source")
		stagingDir = filepath.Join(cfg.dir, "staging")
		mnt        = filepath.Join(cfg.dir, "mnt")
		logPath    = filepath.Join(cfg.dir, "adaptfs.log")
	)

	// Leftovers of an earlier run: a stale mount first, then its files.
	if mounted, err := harness.IsMountPoint(mnt); err != nil {
		return err
	} else if mounted {
		step("removing stale mount at %s (umount -l)", mnt)
		if err := harness.LazyUnmount(mnt); err != nil {
			return err
		}
	}
	for _, p := range []string{serverDir, sourceDir, stagingDir, logPath, logPath + ".out"} {
		if err := os.RemoveAll(p); err != nil {
			return fmt.Errorf("clean up earlier run: %w", err)
		}
	}

	step("starting versitygw (data in %s)", serverDir)
	srv, err := harness.StartServer(ctx, cfg.versitygw, serverDir)
	if err != nil {
		return err
	}
	defer func() {
		step("stopping versitygw")
		srv.Stop()
	}()
	fmt.Printf("    S3 endpoint %s\n", srv.Endpoint)

	step("creating bucket %q", bucket)
	if err := srv.CreateBucket(ctx, bucket); err != nil {
		return err
	}

	spec := harness.SpecDemo()
	step("generating the data set in %s", sourceDir)
	t0 := time.Now()
	files, size, err := harness.GenTree(sourceDir, spec)
	if err != nil {
		return err
	}
	fmt.Printf("    %d files, %s in %v\n", files, mib(size), time.Since(t0).Round(time.Millisecond))

	step("mounting s3://%s on %s (adaptfs mount, log in %s)", bucket, mnt, logPath)
	m, err := harness.StartMount(ctx, harness.MountOptions{
		Bin: cfg.adaptfs, Server: srv, BucketPath: bucket,
		Dir: mnt, StagingDir: stagingDir, LogPath: logPath,
		Background: true, Output: os.Stdout,
	})
	if err != nil {
		return err
	}
	unmounted := false
	defer func() {
		if unmounted {
			return
		}
		step("unmounting %s", mnt)
		uctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		if uerr := m.Unmount(uctx); uerr != nil {
			err = errors.Join(err, uerr)
		}
	}()

	step("cp -r %s %s/", sourceDir, mnt)
	tStart := time.Now()
	cp := exec.CommandContext(ctx, "cp", "-r", sourceDir, mnt+"/")
	cp.Stdout, cp.Stderr = os.Stdout, os.Stderr
	if err := cp.Run(); err != nil {
		return fmt.Errorf("cp -r: %w\n%s", err, m.LogTail(20))
	}
	cpTime := time.Since(tStart)
	fmt.Printf("    %v (%s into the mount)\n", cpTime.Round(time.Millisecond), rate(size, cpTime))

	step("adaptfs sync %s (wait until every file is in S3)", mnt)
	tSync := time.Now()
	if err := m.Sync(ctx); err != nil {
		return err
	}
	syncTime := time.Since(tSync)
	durable := time.Since(tStart)
	fmt.Printf("    %v\n", syncTime.Round(time.Millisecond))
	rss, rssErr := m.RSSPeakBytes()

	step("verifying every object directly against the server (SHA-256)")
	want, err := harness.TreeSums(sourceDir)
	if err != nil {
		return err
	}
	got, err := harness.BucketSums(ctx, srv.Client, bucket, filepath.Base(sourceDir))
	if err != nil {
		return err
	}
	diffs := harness.DiffSums(want, got)
	pending, err := harness.ListMultipartUploads(ctx, srv.Client, bucket)
	if err != nil {
		return err
	}

	fmt.Println()
	fmt.Println("adaptfs demo")
	fmt.Printf("  data set          %d files, %s\n", files, mib(size))
	fmt.Printf("  cp -r             %v (%s)\n", cpTime.Round(time.Millisecond), rate(size, cpTime))
	fmt.Printf("  sync              %v\n", syncTime.Round(time.Millisecond))
	fmt.Printf("  time to durable   %v (%s end to end)\n", durable.Round(time.Millisecond), rate(size, durable))
	if rssErr == nil {
		fmt.Printf("  adaptfs peak RSS  %s\n", mib(rss))
	}
	if len(pending) > 0 {
		fmt.Printf("  warning: %d multipart uploads still in progress: %s\n", len(pending), strings.Join(pending[:min(len(pending), 5)], ", "))
	}
	if diffs != nil {
		fmt.Printf("  MISMATCH between %s and s3://%s/%s/:\n", sourceDir, bucket, filepath.Base(sourceDir))
		for _, d := range diffs {
			fmt.Println("    " + d)
		}
		fmt.Println()
		return fmt.Errorf("the bucket does not hold the data set (%d objects, want %d)", len(got), len(want))
	}
	fmt.Printf("  verified %d objects byte for byte\n\n", len(got))

	step("adaptfs unmount %s", mnt)
	unmounted = true
	uctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	return m.Unmount(uctx)
}

func checkBinary(path, fix string) error {
	st, err := os.Stat(path)
	if err != nil || st.IsDir() {
		return fmt.Errorf("%s not found: run `%s` (or pass its path)", path, fix)
	}
	return nil
}

func mib(n int64) string { return fmt.Sprintf("%.1f MiB", float64(n)/float64(1<<20)) }

func rate(n int64, d time.Duration) string {
	if d <= 0 {
		return "-"
	}
	return fmt.Sprintf("%.1f MB/s", float64(n)/1e6/d.Seconds())
}
