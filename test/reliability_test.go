package test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"syscall"
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

// newProxiedRig is a rig whose mount reaches the server through a
// FaultProxy injecting faults.
func newProxiedRig(t *testing.T, prefix string, faults harness.Faults, extra ...string) (*rig, *harness.FaultProxy) {
	t.Helper()
	requireFuse(t)
	srv := harness.StartServerTB(t)
	proxy, err := harness.StartFaultProxy(srv.Endpoint, faults)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(proxy.Close)
	r := &rig{srv: srv, bucket: "adaptfs-test", prefix: prefix}
	harness.CreateBucketTB(t, srv, r.bucket)
	r.mnt = r.mount(t, append([]string{"--endpoint", proxy.URL}, extra...)...)
	return r, proxy
}

// TestFaultyServer copies about 1 GiB of mixed data with real cp -r through
// a proxy that answers 5 % of requests with 500 / 503 / SlowDown, resets
// 1 % mid-body and stalls 1 % past the request timeout: every object must
// arrive byte-identical, the controller must see the errors, and no
// multipart upload may be left behind.
func TestFaultyServer(t *testing.T) {
	r, proxy := newProxiedRig(t, "f/", harness.Faults{
		Seed: 11, Status: 0.05, Reset: 0.01, Stall: 0.01, StallFor: 8 * time.Second,
	}, "-o", "request_timeout=3s")

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
	if ups, _ := harness.ListMultipartUploads(t.Context(), r.srv.Client, r.bucket); len(ups) > 0 {
		t.Errorf("multipart uploads left: %v", ups)
	}
}

// TestEndpointOutage: the endpoint refuses every connection for 30 s in
// the middle of a copy. It costs time, not data.
func TestEndpointOutage(t *testing.T) {
	r, proxy := newProxiedRig(t, "o/", harness.Faults{}, "-o", "request_timeout=5s")
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
	r, proxy := newProxiedRig(t, "q/", harness.Faults{}, "-o", "max_staging_disk_mb=64,staging_full_wait=2s,compression=off")
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

// TestPermanentFaults: revoked credentials and a deleted bucket are not
// retried forever: fsync returns EIO, the file's xattr and
// .adaptstats/uploads say why, the staged data is kept, the log says what
// to do, and `adaptfs sync` uploads it once the fault is gone.
func TestPermanentFaults(t *testing.T) {
	for _, deny := range []string{"AccessDenied", "NoSuchBucket"} {
		t.Run(deny, func(t *testing.T) {
			r, proxy := newProxiedRig(t, "p/", harness.Faults{})
			src := filepath.Join(t.TempDir(), "f.bin")
			if err := harness.GenFile(src, 12<<20, 71); err != nil {
				t.Fatal(err)
			}
			want, _ := harness.TreeSums(filepath.Dir(src))
			run(t, "ls", r.mnt.Dir)
			proxy.SetFaults(harness.Faults{Deny: deny})

			data, _ := os.ReadFile(src)
			f, err := os.Create(r.path("f.bin"))
			if err != nil {
				t.Fatal(err)
			}
			f.Write(data)
			start := time.Now()
			err = f.Sync()
			f.Close()
			if !errors.Is(err, syscall.EIO) {
				t.Fatalf("fsync with %s: %v, want EIO", deny, err)
			}
			t.Logf("fsync failed after %v: %v", time.Since(start).Round(time.Millisecond), err)
			// Close queued the upload again (its RELEASE may come after
			// the fsync's failure is visible); it fails again the same way.
			var state, ups string
			for deadline := time.Now().Add(15 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
				buf := make([]byte, 4096)
				n, err := syscall.Getxattr(r.path("f.bin"), "user.adaptfs.state", buf)
				if err != nil {
					t.Fatal(err)
				}
				state, ups = string(buf[:n]), run(t, "cat", r.path(".adaptstats/uploads"))
				if strings.HasPrefix(state, "failed") && strings.Contains(ups, deny) {
					break
				}
			}
			if !strings.HasPrefix(state, "failed") || !strings.Contains(state, deny) {
				t.Errorf("user.adaptfs.state = %q, want failed and the reason", state)
			}
			if !strings.Contains(ups, deny) {
				t.Errorf(".adaptstats/uploads does not say why:\n%s", ups)
			}
			if !strings.Contains(r.mnt.LogTail(40), "adaptfs sync") {
				t.Errorf("the log does not say what to do:\n%s", r.mnt.LogTail(10))
			}
			if staged, _ := filepath.Glob(filepath.Join(r.mnt.StagingDir(), "*.data")); len(staged) != 1 {
				t.Errorf("staged data not kept: %v", staged)
			}
			proxy.SetFaults(harness.Faults{})
			r.sync(t)
			got, _ := r.objects(t)
			requireSame(t, "the file once the fault is gone", want, got)
		})
	}
}

// TestConcurrentWork: 8 writers on different files and 2 appenders on
// their own files while readers list and read, files renamed while their
// uploads run, and a file unlinked while uploading. The bucket ends equal
// to what the writers left, with no orphan object or multipart upload.
func TestConcurrentWork(t *testing.T) {
	r := newRig(t, "c/")
	var (
		mu   sync.Mutex
		want = map[string][]byte{}
	)
	put := func(name string, b []byte) {
		mu.Lock()
		want[name] = b
		mu.Unlock()
	}
	var wg sync.WaitGroup
	errs := make(chan error, 64)
	fail := func(err error) {
		select {
		case errs <- err:
		default:
		}
	}
	for w := range 8 {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(w), 1))
			for i := range 5 {
				name := filepath.Join("w", string(rune('a'+w)), string(rune('0'+i))+".bin")
				b := make([]byte, rng.IntN(12<<20))
				rand.NewChaCha8([32]byte{byte(w), byte(i)}).Read(b)
				if err := os.MkdirAll(filepath.Dir(r.path(name)), 0o755); err != nil {
					fail(err)
					return
				}
				if err := os.WriteFile(r.path(name), b, 0o644); err != nil {
					fail(err)
					return
				}
				if i%2 == 1 { // renamed while its upload runs
					renamed := name + ".done"
					if err := os.Rename(r.path(name), r.path(renamed)); err != nil {
						fail(err)
						return
					}
					name = renamed
				}
				put(filepath.ToSlash(name), b)
			}
		})
	}
	for a := range 2 {
		wg.Go(func() {
			name := "append-" + string(rune('a'+a)) + ".log"
			var all []byte
			for i := range 12 {
				line := []byte(strings.Repeat(string(rune('A'+i)), 100<<10))
				f, err := os.OpenFile(r.path(name), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
				if err != nil {
					fail(err)
					return
				}
				_, err = f.Write(line)
				if cerr := f.Close(); err == nil {
					err = cerr
				}
				if err != nil {
					fail(err)
					return
				}
				all = append(all, line...)
				time.Sleep(50 * time.Millisecond)
			}
			put(name, all)
		})
	}
	stop := make(chan struct{})
	var readers sync.WaitGroup
	for range 2 {
		readers.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				filepath.WalkDir(r.mnt.Dir, func(p string, d fs.DirEntry, err error) error {
					if err != nil || d.IsDir() {
						return nil
					}
					if _, err := os.ReadFile(p); err != nil && !errors.Is(err, os.ErrNotExist) {
						fail(fmt.Errorf("read %s: %w", p, err))
					}
					return nil
				})
			}
		})
	}
	// A file unlinked while it uploads: no object, no upload left.
	big := make([]byte, 64<<20)
	rand.NewChaCha8([32]byte{9}).Read(big)
	if err := os.WriteFile(r.path("doomed.bin"), big, 0o644); err != nil {
		t.Fatal(err)
	}
	time.Sleep(700 * time.Millisecond) // past the write-back delay: uploading
	if err := os.Remove(r.path("doomed.bin")); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	close(stop)
	readers.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	r.sync(t)
	got, _ := r.objects(t)
	wantSums := map[string]harness.Sum{}
	for name, b := range want {
		h := sha256.Sum256(b)
		wantSums[name] = harness.Sum{Size: int64(len(b)), SHA256: hex.EncodeToString(h[:])}
	}
	requireSame(t, "the bucket after concurrent work", wantSums, got)
	if ups, _ := harness.ListMultipartUploads(t.Context(), r.srv.Client, r.bucket); len(ups) > 0 {
		t.Errorf("multipart uploads left: %v", ups)
	}
}

// TestStagingAndSecrets: the staging directory is 0700 and its files 0600,
// owned by the mounting user; the secret key appears in no log line, no
// .adaptstats file and no config output; without allow_other another user
// cannot even list the mount.
func TestStagingAndSecrets(t *testing.T) {
	r := newRig(t, "s/")
	src := filepath.Join(t.TempDir(), "src")
	harness.GenTreeTB(t, src, harness.TreeSpec{Seed: 81, SmallFiles: 10, SmallMin: 1, SmallMax: 32 << 10, MediumFiles: 1, MediumMin: 20 << 20, MediumMax: 20 << 20, Depth: 1})
	run(t, "cp", "-r", src, r.path("t"))
	dir := r.mnt.StagingDir()
	st, err := os.Stat(dir)
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o700 || st.Sys().(*syscall.Stat_t).Uid != uint32(os.Getuid()) {
		t.Errorf("staging dir %s: mode %v, uid %d", dir, st.Mode().Perm(), st.Sys().(*syscall.Stat_t).Uid)
	}
	entries, _ := os.ReadDir(dir)
	checked := 0
	for _, e := range entries {
		info, err := e.Info()
		if err != nil || info.IsDir() {
			continue
		}
		checked++
		if info.Mode().Perm()&0o077 != 0 {
			t.Errorf("staging file %s is %v: readable by others", e.Name(), info.Mode().Perm())
		}
	}
	if checked == 0 {
		t.Fatal("no staging files to check (the copy was already uploaded?)")
	}
	r.sync(t)

	secret := r.srv.SecretKey
	var texts []string
	if b, err := os.ReadFile(r.mnt.LogPath); err == nil {
		texts = append(texts, string(b))
	}
	for _, name := range []string{"summary", "stats.json", "network", "params", "events", "uploads", "metrics", "config"} {
		b, _ := os.ReadFile(r.path(".adaptstats/" + name))
		texts = append(texts, string(b))
	}
	for _, s := range texts {
		if strings.Contains(s, secret) {
			t.Fatal("the secret key appears in the log or .adaptstats")
		}
	}
	out, err := exec.CommandContext(t.Context(), "setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "ls", r.mnt.Dir).CombinedOutput()
	if err == nil || !strings.Contains(string(out), "Permission denied") {
		t.Fatalf("another user listed the mount without allow_other: %v: %s", err, out)
	}
}

// TestCorruptManifestQuarantined: after a crash, a torn manifest and a
// manifest of garbage in the staging directory are reported and moved to
// quarantine with their data (never silently dropped), and the intact
// staged file is uploaded as usual.
func TestCorruptManifestQuarantined(t *testing.T) {
	r := newRig(t, "m/", "-o", "write_back_delay=1h")
	src := t.TempDir()
	for i, name := range []string{"good.bin", "torn.bin"} {
		if err := harness.GenFile(filepath.Join(src, name), 3<<20, uint64(90+i)); err != nil {
			t.Fatal(err)
		}
		run(t, "cp", filepath.Join(src, name), r.path(name))
	}
	r.mnt.Kill()
	dir := r.mnt.StagingDir()
	manifests, _ := filepath.Glob(filepath.Join(dir, "*.json"))
	var torn string
	for _, m := range manifests {
		b, err := os.ReadFile(m)
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(string(b), `"torn.bin"`) {
			torn = m
			os.WriteFile(m, b[:len(b)/2], 0o600)
		}
	}
	if torn == "" {
		t.Fatalf("no manifest for torn.bin among %v", manifests)
	}
	garbage := filepath.Join(dir, "00000000deadbeef.json")
	os.WriteFile(garbage, []byte("\x00\xffnot json at all"), 0o600)
	os.WriteFile(strings.TrimSuffix(garbage, ".json")+".data", []byte("data"), 0o600)

	r.mnt = r.mount(t)
	r.sync(t)
	got, _ := r.objects(t)
	want, _ := harness.TreeSums(src)
	if got["good.bin"] != want["good.bin"] {
		t.Errorf("the intact file was not uploaded: %+v", got)
	}
	if _, ok := got["torn.bin"]; ok {
		t.Error("a file with a torn manifest was uploaded")
	}
	for _, m := range []string{torn, garbage} {
		base := filepath.Base(m)
		if _, err := os.Stat(filepath.Join(dir, "quarantine", base)); err != nil {
			t.Errorf("%s not in quarantine: %v", base, err)
		}
		if _, err := os.Stat(filepath.Join(dir, "quarantine", strings.TrimSuffix(base, ".json")+".data")); err != nil {
			t.Errorf("the data of %s not kept in quarantine: %v", base, err)
		}
	}
	if n := strings.Count(r.mnt.LogTail(200), "corrupt staging manifest quarantined"); n != 2 {
		t.Errorf("%d quarantine reports in the log, want 2:\n%s", n, r.mnt.LogTail(20))
	}
}

// TestStagingFullWriteENOSPC: without the kernel's writeback cache the
// write(2) itself that finds the quota full returns ENOSPC (with it, as in
// TestStagingFullENOSPC, the error comes at close).
func TestStagingFullWriteENOSPC(t *testing.T) {
	r, proxy := newProxiedRig(t, "w/", harness.Faults{}, "-o", "max_staging_disk_mb=64,staging_full_wait=2s,writeback_cache=false")
	run(t, "ls", r.mnt.Dir)
	proxy.SetDown(true)
	f, err := os.Create(r.path("big.bin"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	chunk := make([]byte, 1<<20)
	var written int64
	for written < 100<<20 {
		n, err := f.Write(chunk)
		written += int64(n)
		if err != nil {
			if !errors.Is(err, syscall.ENOSPC) {
				t.Fatalf("write at %d MiB: %v, want ENOSPC", written>>20, err)
			}
			t.Logf("write(2) returned ENOSPC after %d MiB", written>>20)
			proxy.SetDown(false)
			return
		}
	}
	t.Fatalf("wrote %d MiB past a 64 MiB quota without ENOSPC", written>>20)
}

// TestCrashDumpHasNoSecrets: the daemon's crash output (here the Go
// runtime's dump of every goroutine on SIGQUIT, in the foreground as under
// systemd, where it lands in the journal) does not contain the secret key,
// though the key is in the daemon's environment and memory.
func TestCrashDumpHasNoSecrets(t *testing.T) {
	srv, dir, mnt := bareMount(t, "dump")
	cmd := exec.CommandContext(t.Context(), shared.bin, "mount", "--foreground", "--endpoint", srv.Endpoint, "--path-style",
		"--staging-dir", filepath.Join(dir, "staging"), "dump", mnt)
	cmd.Env = append(cleanEnv(), srv.Env()...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); harness.LazyUnmount(mnt) })
	deadline := time.Now().Add(30 * time.Second)
	for {
		if ok, _ := harness.IsMountPoint(mnt); ok {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("not mounted after 30 s:\n%s", out.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	if err := os.WriteFile(filepath.Join(mnt, "f"), []byte("x"), 0o644); err != nil { // the S3 client in use
		t.Fatal(err)
	}
	cmd.Process.Signal(syscall.SIGQUIT)
	cmd.Wait()
	dump := out.String()
	if !strings.Contains(dump, "goroutine ") {
		t.Fatalf("no goroutine dump after SIGQUIT:\n%s", dump)
	}
	if strings.Contains(dump, srv.SecretKey) {
		t.Fatal("the secret key appears in the crash dump")
	}
	t.Logf("crash dump: %d bytes, %d goroutines, no secret", len(dump), strings.Count(dump, "goroutine "))
}

// TestKillWhileRewritingUploaded: a closed file that is uploaded but still
// staged (a reader holds it open) is reopened with O_TRUNC and rewritten,
// and the daemon is killed before that close: the next mount keeps the
// uploaded version, not the half-written one.
func TestKillWhileRewritingUploaded(t *testing.T) {
	r := newRig(t, "", "-o", "write_back_delay=1h")
	data := randBytes(3<<20, 12)
	rd := writeHeldOpen(t, r.path("a"), data)
	defer rd.Close()
	r.sync(t)
	w, err := os.OpenFile(r.path("a"), os.O_WRONLY|os.O_TRUNC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	if _, err := w.Write([]byte("half of a new version")); err != nil {
		t.Fatal(err)
	}
	r.mnt.Kill()
	r.mnt = r.mount(t)
	r.sync(t)
	got, _ := r.objects(t)
	if got["a"] != sumOf(data) {
		t.Fatalf("after kill -9 during a rewrite, a is %+v, want the uploaded version %+v", got["a"], sumOf(data))
	}
}
