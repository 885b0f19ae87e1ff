package test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/s3/transfermanager"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/adaptfs/adaptfs/test/harness"
)

// envInt reads a positive integer from the environment, else def.
func envInt(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil && v > 0 {
		return v
	}
	return def
}

type spread struct{ min, median, max float64 }

func spreadOf(xs []float64) spread {
	s := slices.Sorted(slices.Values(xs))
	return spread{s[0], s[len(s)/2], s[len(s)-1]}
}

func (s spread) String() string { return fmt.Sprintf("%.3g / %.3g / %.3g", s.min, s.median, s.max) }

// BenchmarkCopyLargeFile: `cp` of a large incompressible file into the mount
// until durable (`adaptfs sync`), against uploading the same file straight
// to the same server with the SDK's transfer manager at the same part size
// and concurrency, alternating, in one run. Reports min/median/max of both
// throughputs and of their ratio, and the daemon's peak RSS.
//
// ADAPTFS_BENCH_SIZE_MB (default 2048), ADAPTFS_BENCH_REPS (default 3).
func BenchmarkCopyLargeFile(b *testing.B) {
	size := int64(envInt("ADAPTFS_BENCH_SIZE_MB", 2048)) << 20
	reps := envInt("ADAPTFS_BENCH_REPS", 3)
	const partMB, conc, memMB = 16, 8, 256

	srv := harness.StartServerTB(b)
	const bucket = "bench"
	harness.CreateBucketTB(b, srv, bucket)
	src := filepath.Join(b.TempDir(), "big.bin")
	if err := harness.GenFile(src, size, 42); err != nil {
		b.Fatal(err)
	}
	m := harness.MountTB(b, harness.MountOptions{
		Bin: shared.bin, Server: srv, BucketPath: bucket,
		ExtraArgs: []string{"-o", fmt.Sprintf("adaptive=false,part_size_mb=%d,concurrency=%d,max_staging_memory_mb=%d", partMB, conc, memMB)},
	})
	tm := transfermanager.New(srv.Client, func(o *transfermanager.Options) {
		o.PartSizeBytes = partMB << 20
		o.Concurrency = conc
		o.RequestChecksumCalculation = aws.RequestChecksumCalculationWhenRequired
	})

	srcSums, err := harness.TreeSums(filepath.Dir(src))
	if err != nil {
		b.Fatal(err)
	}
	want := srcSums[filepath.Base(src)]
	var mountMBs, directMBs, ratios []float64
	for b.Loop() {
		for i := range reps {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Minute)
			key := fmt.Sprintf("m%d.bin", i)
			syscall.Sync() // no writeback of earlier data inside a timed section
			c0, s0, a0 := machineCPU(), harness.ProcessCPUSeconds(srv.PID()), harness.ProcessCPUSeconds(m.PID())
			start := time.Now()
			if out, err := exec.CommandContext(ctx, "cp", src, filepath.Join(m.Dir, key)).CombinedOutput(); err != nil {
				b.Fatalf("cp: %v: %s", err, out)
			}
			if err := m.Sync(ctx); err != nil {
				b.Fatal(err)
			}
			dm := time.Since(start)
			cm := machineCPU() - c0
			sm, am := harness.ProcessCPUSeconds(srv.PID())-s0, harness.ProcessCPUSeconds(m.PID())-a0

			f, err := os.Open(src)
			if err != nil {
				b.Fatal(err)
			}
			syscall.Sync()
			c0, s0 = machineCPU(), harness.ProcessCPUSeconds(srv.PID())
			start = time.Now()
			_, err = tm.UploadObject(ctx, &transfermanager.UploadObjectInput{Bucket: aws.String(bucket), Key: aws.String(fmt.Sprintf("d%d.bin", i)), Body: f})
			dd := time.Since(start)
			cd := machineCPU() - c0
			sd := harness.ProcessCPUSeconds(srv.PID()) - s0
			f.Close()
			if err != nil {
				b.Fatalf("direct upload: %v", err)
			}
			verifyObject(b, srv, bucket, key, want)
			for _, k := range []string{key, fmt.Sprintf("d%d.bin", i)} {
				srv.Client.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: aws.String(bucket), Key: aws.String(k)})
			}
			cancel()
			mb := float64(size) / 1e6
			mountMBs = append(mountMBs, mb/dm.Seconds())
			directMBs = append(directMBs, mb/dd.Seconds())
			ratios = append(ratios, dd.Seconds()/dm.Seconds())
			b.Logf("rep %d: mount %.0f MB/s (%v; CPU-s: machine %.1f, server %.1f, adaptfs %.1f), direct %.0f MB/s (%v; CPU-s: machine %.1f, server %.1f)", i+1,
				mb/dm.Seconds(), dm.Round(time.Millisecond), cm, sm, am, mb/dd.Seconds(), dd.Round(time.Millisecond), cd, sd)
		}
	}
	rss, err := m.RSSPeakBytes()
	if err != nil {
		b.Fatal(err)
	}
	r := spreadOf(ratios)
	b.Logf("%d MiB file, %d MiB parts × %d, %d reps (min / median / max):", size>>20, partMB, conc, reps)
	b.Logf("  mount  MB/s: %v", spreadOf(mountMBs))
	b.Logf("  direct MB/s: %v", spreadOf(directMBs))
	b.Logf("  ratio mount/direct: %v (target ≥ 0.85)", r)
	b.Logf("  adaptfs peak RSS: %d MiB (target < %d MiB)", rss>>20, memMB+64)
	b.ReportMetric(r.median, "ratio")
	b.ReportMetric(spreadOf(mountMBs).median, "mount-MB/s")
	b.ReportMetric(spreadOf(directMBs).median, "direct-MB/s")
	b.ReportMetric(float64(rss>>20), "peak-RSS-MiB")
}

// machineCPU returns the CPU seconds (user+nice+system+irq+softirq) the
// whole machine has spent, from /proc/stat.
func machineCPU() float64 {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0
	}
	f := strings.Fields(strings.SplitN(string(b), "\n", 2)[0])
	var ticks float64
	for _, i := range []int{1, 2, 3, 6, 7} {
		v, _ := strconv.ParseFloat(f[i], 64)
		ticks += v
	}
	return ticks / 100 // USER_HZ
}

// verifyObject compares an object on the server with the expected sum.
func verifyObject(b testing.TB, srv *harness.Server, bucket, key string, want harness.Sum) {
	b.Helper()
	got, err := harness.ObjectSum(context.Background(), srv.Client, bucket, key)
	if err != nil {
		b.Fatal(err)
	}
	if got != want {
		b.Fatalf("%s on the server differs from the source: %+v, want %+v", key, got, want)
	}
}

// BenchmarkCompressionLoopback: `cp -r` of a compressible data set (logs,
// CSV, JSON; about 4:1) into two mounts on the unshaped loopback until
// durable, one with compression = "auto" and one with "off", alternating in
// one run. On a link faster than compression, auto must not make the copy
// slower (target: auto's throughput ≥ 0.9 × off's). Reports min/median/max
// of both and of the ratio, and what auto stored.
//
// ADAPTFS_BENCH_SIZE_MB (default 1024, the data set's size), ADAPTFS_BENCH_REPS (default 5).
// ADAPTFS_BENCH_CONTROL=1 runs the "auto" mount with compression off too: an
// A/A control that shows the harness's own bias between the two mounts.
func BenchmarkCompressionLoopback(b *testing.B) {
	size := int64(envInt("ADAPTFS_BENCH_SIZE_MB", 1024)) << 20
	reps := envInt("ADAPTFS_BENCH_REPS", 5)
	logf := func(format string, args ...any) { fmt.Fprintf(os.Stderr, format+"\n", args...) }
	srv := harness.StartServerTB(b)
	const bucket = "bench"
	harness.CreateBucketTB(b, srv, bucket)
	src := filepath.Join(b.TempDir(), "src")
	files, payload := harness.GenTreeTB(b, src, harness.TreeSpec{
		Seed: 31, Text: true, LargeFiles: 2, LargeSize: size * 3 / 8,
		MediumFiles: 12, MediumMin: size / 64, MediumMax: size / 32, SmallFiles: 200, SmallMin: 1 << 10, SmallMax: 64 << 10, Depth: 3,
	})
	want, err := harness.TreeSums(src)
	if err != nil {
		b.Fatal(err)
	}
	mounts := map[string]*harness.Mount{}
	for _, mode := range []string{"auto", "off"} {
		opt := mode
		if os.Getenv("ADAPTFS_BENCH_CONTROL") == "1" {
			opt = "off"
		}
		mounts[mode] = harness.MountTB(b, harness.MountOptions{
			Bin: shared.bin, Server: srv, BucketPath: bucket + "/" + mode,
			ExtraArgs: []string{"-o", "compression=" + opt},
		})
	}
	mbs := map[string][]float64{}
	var ratios []float64
	for b.Loop() {
		for i := range reps {
			took := map[string]time.Duration{}
			order := []string{"auto", "off"}
			if i%2 == 1 { // whoever goes second inherits the first's dirty pages
				order[0], order[1] = order[1], order[0]
			}
			for _, mode := range order {
				m := mounts[mode]
				ctx, cancel := context.WithTimeout(context.Background(), 30*time.Minute)
				dst := filepath.Join(m.Dir, fmt.Sprintf("r%d", i))
				syscall.Sync()
				start := time.Now()
				if out, err := exec.CommandContext(ctx, "cp", "-r", src, dst).CombinedOutput(); err != nil {
					b.Fatalf("cp -r: %v: %s", err, out)
				}
				if err := m.Sync(ctx); err != nil {
					b.Fatal(err)
				}
				took[mode] = time.Since(start)
				cancel()
				got, _, err := harness.BucketContents(context.Background(), srv.Client, bucket, fmt.Sprintf("%s/r%d", mode, i))
				if err != nil {
					b.Fatal(err)
				}
				if d := harness.DiffSums(want, got); len(d) > 0 {
					b.Fatalf("%s rep %d: %d differences, first %s", mode, i+1, len(d), d[0])
				}
				mbs[mode] = append(mbs[mode], float64(payload)/1e6/took[mode].Seconds())
				st := readStats(b, m.Dir)
				level := "off"
				if st.Compression != nil {
					level = st.Compression.Level
				}
				levelChanges := 0
				for _, e := range st.Events {
					if e.Param == "compression_level" {
						levelChanges++
					}
				}
				logf("  %s rep %d: now %d MiB × %d, level %s (%d level changes), %d adaptations", mode, i+1,
					st.Params.PartSizeBytes>>20, st.Params.Concurrency, level, levelChanges, st.Params.Adaptations)
			}
			ratios = append(ratios, took["off"].Seconds()/took["auto"].Seconds())
			logf("rep %d (%s first): auto %.0f MB/s (%v), off %.0f MB/s (%v)", i+1, order[0],
				mbs["auto"][i], took["auto"].Round(time.Millisecond), mbs["off"][i], took["off"].Round(time.Millisecond))
		}
	}
	d := readStats(b, mounts["auto"].Dir)
	r := spreadOf(ratios)
	logf("%d files, %d MiB, %d reps (min / median / max):", files, payload>>20, reps)
	logf("  auto MB/s: %v", spreadOf(mbs["auto"]))
	logf("  off  MB/s: %v", spreadOf(mbs["off"]))
	logf("  ratio auto/off throughput: %v (target ≥ 0.9)", r)
	if z := d.Compression; z != nil && z.Ratio != nil {
		logf("  auto stored %d object(s) compressed, %.2f:1, level now %s", z.Files, *z.Ratio, z.Level)
	}
	b.ReportMetric(r.median, "ratio")
}
