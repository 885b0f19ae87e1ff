package test

import (
	"context"
	"io"
	"io/fs"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/adaptfs/adaptfs/test/harness"
)

// mixedTree writes a data set of both kinds under dir: random bytes and
// compressible text, small, medium and large files; about total bytes.
func mixedTree(t *testing.T, dir string, total int64, seed uint64) map[string]harness.Sum {
	t.Helper()
	harness.GenTreeTB(t, filepath.Join(dir, "bin"), harness.TreeSpec{
		Seed: seed, SmallFiles: 150, SmallMin: 1, SmallMax: 64 << 10,
		MediumFiles: 12, MediumMin: total / 80, MediumMax: total / 40, LargeFiles: 1, LargeSize: total / 4, Depth: 3,
	})
	harness.GenTreeTB(t, filepath.Join(dir, "txt"), harness.TreeSpec{
		Seed: seed + 1, Text: true, SmallFiles: 50, SmallMin: 8 << 10, SmallMax: 256 << 10,
		MediumFiles: 8, MediumMin: total / 80, MediumMax: total / 40, LargeFiles: 1, LargeSize: total / 5, Depth: 2,
	})
	want, err := harness.TreeSums(dir)
	if err != nil {
		t.Fatal(err)
	}
	return want
}

// TestFaultyServer copies about 1 GiB of mixed data with real cp -r through
// a proxy that answers 5 % of requests with 500 / 503 / SlowDown, resets
// 1 % mid-body and stalls 1 % past the request timeout: every object must
// arrive byte-identical, the controller must see the errors, and no
// multipart upload may be left behind.
func TestFaultyServer(t *testing.T) {
	requireFuse(t)
	srv := harness.StartServerTB(t)
	proxy, err := harness.StartFaultProxy(srv.Endpoint, harness.Faults{
		Seed: 11, Status: 0.05, Reset: 0.01, Stall: 0.01, StallFor: 8 * time.Second,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(proxy.Close)
	r := &rig{srv: srv, bucket: "adaptfs-test", prefix: "f/"}
	harness.CreateBucketTB(t, srv, r.bucket)
	r.mnt = r.mount(t, "--endpoint", proxy.URL, "-o", "request_timeout=3s")

	src := filepath.Join(t.TempDir(), "src")
	want := mixedTree(t, src, 1<<30, 21)
	start := time.Now()
	run(t, "cp", "-r", src, r.path("set"))
	r.sync(t)
	c := proxy.Counts()
	t.Logf("durable after %v; proxy: %d requests, %d errors, %d resets, %d stalls",
		time.Since(start).Round(time.Millisecond), c.Requests, c.Status, c.Resets, c.Stalls)
	if c.Status == 0 || c.Resets == 0 || c.Stalls == 0 {
		t.Fatalf("the proxy injected too little to test anything: %+v", c)
	}
	d := readStats(t, r.mnt.Dir)
	if d.Requests.Failed == 0 || d.Requests.Retried == 0 {
		t.Fatalf("the controller saw no failed or retried requests: %+v", d.Requests)
	}
	proxy.SetFaults(harness.Faults{}) // check the bucket without faults
	got, _ := r.objects(t)
	requireSame(t, "the data set behind a faulty server", want, subtree(got, "set"))
	if ups, _ := harness.ListMultipartUploads(t.Context(), srv.Client, r.bucket); len(ups) > 0 {
		t.Errorf("multipart uploads left: %v", ups)
	}
}

// TestEndpointOutage: the endpoint refuses every connection for 30 s in
// the middle of a copy. It costs time, not data.
func TestEndpointOutage(t *testing.T) {
	requireFuse(t)
	srv := harness.StartServerTB(t)
	proxy, err := harness.StartFaultProxy(srv.Endpoint, harness.Faults{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(proxy.Close)
	r := &rig{srv: srv, bucket: "adaptfs-test", prefix: "o/"}
	harness.CreateBucketTB(t, srv, r.bucket)
	r.mnt = r.mount(t, "--endpoint", proxy.URL, "-o", "request_timeout=5s")
	src := filepath.Join(t.TempDir(), "src")
	want := mixedTree(t, src, 256<<20, 31)

	proxy.SetDown(true)
	go func() {
		time.Sleep(30 * time.Second)
		proxy.SetDown(false)
	}()
	start := time.Now()
	run(t, "cp", "-r", src, r.path("set"))
	r.sync(t)
	t.Logf("durable after %v (30 s of outage); %d connections refused", time.Since(start).Round(time.Millisecond), proxy.Counts().Refused)
	if proxy.Counts().Refused == 0 {
		t.Fatal("no request met the outage")
	}
	got, _ := r.objects(t)
	requireSame(t, "the data set after an outage", want, subtree(got, "set"))
}

// copyTracked copies every file of src into dst with open/write/close,
// sorted by path, and records each file whose close returned success. It
// stops at the first error (the daemon was killed).
func copyTracked(src, dst string, closed *[]string, mu *sync.Mutex) {
	var files []string
	filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() {
			rel, _ := filepath.Rel(src, p)
			files = append(files, rel)
		}
		return nil
	})
	sort.Strings(files)
	for _, rel := range files {
		target := filepath.Join(dst, rel)
		if err := os.MkdirAll(filepath.Dir(target), 0o755); err != nil {
			return
		}
		in, err := os.Open(filepath.Join(src, rel))
		if err != nil {
			return
		}
		out, err := os.Create(target)
		if err != nil {
			in.Close()
			return
		}
		_, err = io.Copy(out, in)
		in.Close()
		if cerr := out.Close(); err != nil || cerr != nil {
			return
		}
		mu.Lock()
		*closed = append(*closed, filepath.ToSlash(rel))
		mu.Unlock()
	}
}

// TestKillNineAnywhere kills the daemon with SIGKILL at random moments of
// a 600 MiB copy (5 times, seeded): while files are being written, while
// they are queued and while their parts upload. After a remount and
// `adaptfs sync`, every file whose close had succeeded is in the bucket
// byte for byte, and no multipart upload is left.
func TestKillNineAnywhere(t *testing.T) {
	requireFuse(t)
	src := filepath.Join(t.TempDir(), "src")
	want := mixedTree(t, src, 600<<20, 41)
	seed := uint64(envInt("ADAPTFS_KILL_SEED", 7))
	rng := rand.New(rand.NewPCG(seed, 0x9))
	r := newRig(t, "")
	for i := range 5 {
		prefix := "kill" + string(rune('a'+i))
		var (
			mu     sync.Mutex
			closed []string
		)
		done := make(chan struct{})
		go func() {
			defer close(done)
			copyTracked(src, r.path(prefix), &closed, &mu)
		}()
		after := time.Duration(200+rng.IntN(9000)) * time.Millisecond
		time.Sleep(after)
		r.mnt.Kill()
		<-done
		mu.Lock()
		n := len(closed)
		mu.Unlock()
		t.Logf("run %d (seed %d): killed after %v, %d of %d files closed", i+1, seed, after, n, len(want))

		r.mnt = r.mount(t)
		r.sync(t)
		got, _ := r.objects(t)
		sub := subtree(got, prefix)
		for _, rel := range closed {
			if g, ok := sub[rel]; !ok || g != want[rel] {
				t.Fatalf("run %d: %s was closed before the kill but the bucket has %+v (want %+v)", i+1, rel, g, want[rel])
			}
		}
		ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
		ups, _ := harness.ListMultipartUploads(ctx, r.srv.Client, r.bucket)
		cancel()
		if len(ups) > 0 {
			t.Fatalf("run %d: multipart uploads left: %v", i+1, ups)
		}
	}
}

// TestStagingFullENOSPC: with the endpoint down, new files can still be
// created (in a directory listed before) and fill the staging quota; the
// next write waits staging_full_wait and fails with ENOSPC, nothing staged
// is lost, and once the endpoint is back the same copy succeeds.
func TestStagingFullENOSPC(t *testing.T) {
	requireFuse(t)
	srv := harness.StartServerTB(t)
	proxy, err := harness.StartFaultProxy(srv.Endpoint, harness.Faults{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(proxy.Close)
	r := &rig{srv: srv, bucket: "adaptfs-test", prefix: "q/"}
	harness.CreateBucketTB(t, srv, r.bucket)
	r.mnt = r.mount(t, "--endpoint", proxy.URL, "-o", "max_staging_disk_mb=64,staging_full_wait=2s,compression=off")
	src := t.TempDir()
	for i, name := range []string{"a.bin", "b.bin"} {
		if err := harness.GenFile(filepath.Join(src, name), 40<<20, uint64(60+i)); err != nil {
			t.Fatal(err)
		}
	}
	want, _ := harness.TreeSums(src)
	run(t, "ls", r.mnt.Dir) // a listing to go on with while the endpoint is down
	proxy.SetDown(true)
	run(t, "cp", filepath.Join(src, "a.bin"), r.path("a.bin"))
	out, err := exec.CommandContext(t.Context(), "cp", filepath.Join(src, "b.bin"), r.path("b.bin")).CombinedOutput()
	if err == nil || !strings.Contains(string(out), "No space left on device") {
		t.Fatalf("cp past the staging quota: %v: %s; want No space left on device", err, out)
	}
	t.Logf("cp past the quota: %s", strings.TrimSpace(string(out)))
	if !strings.Contains(r.mnt.LogTail(50), "max_staging_disk_mb") {
		t.Errorf("the log does not say which limit was hit:\n%s", r.mnt.LogTail(20))
	}
	proxy.SetDown(false)
	r.sync(t)
	run(t, "cp", filepath.Join(src, "b.bin"), r.path("b.bin"))
	r.sync(t)
	got, _ := r.objects(t)
	requireSame(t, "both files after the quota freed", want, got)
}
