package scenario

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/adaptfs/adaptfs/test/harness"
)

// Emulator is the emulated link as the runner needs it.
type Emulator interface {
	// Apply sets rate, RTT, loss, jitter and queue now.
	Apply(l Link) error
	// Wrap is the command prefix that runs a program inside the server's
	// network namespace.
	Wrap() []string
	// ServerAddr is the server side's address.
	ServerAddr() string
	// SentBytes counts bytes sent from the client side toward the server.
	SentBytes() (int64, error)
}

// Config is one adaptfs configuration under comparison.
type Config struct {
	Name    string `json:"name"`
	Options string `json:"options"` // adaptfs mount -o value
	// Warm: `adaptfs probe` runs on the scenario's first link for
	// WarmProbe before the mount (not timed), so the mount starts from the
	// endpoint's saved profile, as a second transfer to the same endpoint
	// would.
	Warm bool `json:"warm,omitempty"`
}

// WarmProbe is how long a warm configuration's probe measures the link.
const WarmProbe = 20 * time.Second

// Configs returns the configurations every scenario compares: adaptfs's
// own (adaptive once the controller lands) and the fixed ones of the tools
// users use today.
func Configs() []Config {
	return []Config{
		{Name: "adaptfs", Options: ""},
		{Name: "fixed-5MiBx4", Options: "adaptive=false,part_size_mb=5,concurrency=4,max_concurrency=4"},
		{Name: "fixed-10MiBx10", Options: "adaptive=false,part_size_mb=10,concurrency=10,max_concurrency=10"},
		{Name: "fixed-64MiBx16", Options: "adaptive=false,part_size_mb=64,concurrency=16,max_concurrency=16"},
	}
}

// ExtraConfigs are configurations a scenario runs only when it names them
// in its configs list: compression off or at one fixed level (adaptive
// parts and streams otherwise).
func ExtraConfigs() []Config {
	return []Config{
		{Name: "compression-off", Options: "compression=off"},
		{Name: "zstd-fast", Options: "compression=zstd-fast"},
		{Name: "zstd-max", Options: "compression=zstd-max"},
		{Name: "adaptfs-warm", Warm: true},
	}
}

// ConfigsFor returns the configurations sc runs.
func ConfigsFor(sc *Scenario) ([]Config, error) {
	if len(sc.Configs) == 0 {
		return Configs(), nil
	}
	var out []Config
	for _, name := range sc.Configs {
		found := false
		for _, c := range append(Configs(), ExtraConfigs()...) {
			if c.Name == name {
				out, found = append(out, c), true
			}
		}
		if !found {
			return nil, fmt.Errorf("scenario %s: unknown configuration %q", sc.Name, name)
		}
	}
	return out, nil
}

// Sample is one second of a run, as the link and adaptfs saw it.
type Sample struct {
	T              float64 `json:"t_seconds"`
	LinkRateMbit   float64 `json:"link_rate_mbit"`
	LinkRTTms      float64 `json:"link_rtt_ms"`
	LinkLossPct    float64 `json:"link_loss_pct"`
	WireMbit       float64 `json:"wire_mbit"`     // bytes the client sent on the link in that second
	UploadedMbit   float64 `json:"uploaded_mbit"` // object bytes adaptfs completed in that second
	PartSizeMiB    float64 `json:"part_size_mib"`
	Concurrency    int     `json:"concurrency"`
	InFlight       int     `json:"requests_in_flight"`
	PendingFiles   int     `json:"pending_files"`
	MemoryInUseMiB float64 `json:"memory_in_use_mib"`
	// What adaptfs's controller measured (absent before it has samples).
	MeasuredRTTms float64 `json:"measured_rtt_ms,omitempty"`
	EstimatedMbit float64 `json:"estimated_bottleneck_mbit,omitempty"`
	Adaptations   int     `json:"adaptations"`
}

// RunResult is one copy of the data set with one configuration.
type RunResult struct {
	Config       string   `json:"config"`
	Rep          int      `json:"rep"`
	Seconds      float64  `json:"seconds_to_durable"`
	PayloadBytes int64    `json:"payload_bytes"`
	GoodputMbit  float64  `json:"goodput_mbit"`
	Efficiency   float64  `json:"link_efficiency"` // payload ÷ what the schedule could carry in that time
	Samples      []Sample `json:"samples"`
	// Events are the controller's decisions (adaptfs configurations only).
	Events []json.RawMessage `json:"events,omitempty"`
}

// Runner runs scenarios against one server behind one link.
type Runner struct {
	Bin     string // adaptfs
	Link    Emulator
	Server  *harness.Server
	WorkDir string
	Logf    func(format string, args ...any)
}

var (
	bucketChars = regexp.MustCompile(`[^a-z0-9-]+`)
	startParams = regexp.MustCompile(`start parameters.*`)
)

// Run copies src (whose sums are want) into a fresh bucket through a fresh
// mount with cfg, following the scenario's schedule, until durable, and
// verifies every object on the server.
func (r *Runner) Run(ctx context.Context, sc *Scenario, src string, want map[string]harness.Sum, cfg Config, rep int) (RunResult, error) {
	res := RunResult{Config: cfg.Name, Rep: rep}
	ctx, cancel := context.WithTimeout(ctx, sc.Timeout.Duration)
	defer cancel()
	bucket := strings.Trim(bucketChars.ReplaceAllString(strings.ToLower(fmt.Sprintf("%s-%s-%d", sc.Name, cfg.Name, rep)), "-"), "-")
	if err := r.Link.Apply(fast); err != nil {
		return res, err
	}
	if err := r.Server.CreateBucket(ctx, bucket); err != nil {
		return res, err
	}
	defer os.RemoveAll(filepath.Join(r.Server.DataDir, bucket))
	dir := filepath.Join(r.WorkDir, bucket)
	var extra []string
	if cfg.Options != "" {
		extra = []string{"-o", cfg.Options}
	}
	// Mount over the scenario's link, as a user would: the first
	// connections and the first RTT samples see the real path.
	sched := sc.Schedule()
	if err := r.Link.Apply(sched[0]); err != nil {
		return res, err
	}
	staging := filepath.Join(dir, "staging")
	if cfg.Warm {
		out, err := harness.RunAdaptfs(ctx, r.Bin, r.Server, "probe", "--staging-dir", staging, "--duration", WarmProbe.String(), bucket)
		if err != nil {
			return res, err
		}
		if r.Logf != nil {
			r.Logf("%s rep %d: %s", cfg.Name, rep, bytes.TrimSpace(startParams.Find(out)))
		}
	}
	m, err := harness.StartMount(ctx, harness.MountOptions{
		Bin: r.Bin, Server: r.Server, BucketPath: bucket,
		Dir: filepath.Join(dir, "mnt"), StagingDir: staging, ExtraArgs: extra,
	})
	if err != nil {
		return res, err
	}
	defer func() {
		r.Link.Apply(fast)
		uctx, ucancel := context.WithTimeout(context.Background(), 5*time.Minute)
		defer ucancel()
		m.Unmount(uctx)
		os.RemoveAll(dir)
	}()

	start := time.Now()
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); r.follow(sched, start, stop) }()
	go func() { defer wg.Done(); res.Samples = r.sample(sc, m.Dir, start, stop) }()

	out, err := exec.CommandContext(ctx, "cp", "-r", src, filepath.Join(m.Dir, "data")).CombinedOutput()
	if err == nil {
		err = m.Sync(ctx)
	} else {
		err = fmt.Errorf("cp -r: %w: %s", err, out)
	}
	elapsed := time.Since(start)
	close(stop)
	wg.Wait()
	if v, err := readController(m.Dir); err == nil {
		res.Events = v.Events
	}
	if err != nil {
		return res, fmt.Errorf("%s rep %d: %w\n%s", cfg.Name, rep, err, m.LogTail(20))
	}

	// Verify at full speed: the schedule is over.
	if err := r.Link.Apply(fast); err != nil {
		return res, err
	}
	got, err := harness.BucketSums(ctx, r.Server.Client, bucket, "data/")
	if err != nil {
		return res, err
	}
	if d := harness.DiffSums(want, got); len(d) > 0 {
		return res, fmt.Errorf("%s rep %d: the bucket differs from the source:\n%s", cfg.Name, rep, strings.Join(d, "\n"))
	}
	res.Seconds = elapsed.Seconds()
	res.PayloadBytes = harness.TotalBytes(want)
	res.GoodputMbit = float64(res.PayloadBytes) * 8 / 1e6 / res.Seconds
	res.Efficiency = float64(res.PayloadBytes) / sc.CapacityBytes(elapsed)
	return res, nil
}

// fast is the link between runs: no shaping to speak of.
var fast = Link{RateMbit: 10000, RTTms: 0, QueueMs: 5}

// follow applies each step of the schedule at its time.
func (r *Runner) follow(sched []Link, start time.Time, stop <-chan struct{}) {
	for _, l := range sched[1:] {
		select {
		case <-time.After(time.Until(start.Add(l.At))):
			if err := r.Link.Apply(l); err != nil && r.Logf != nil {
				r.Logf("link change at %v failed: %v", l.At, err)
			}
		case <-stop:
			return
		}
	}
}

// queue mirrors the JSON of adaptfs's user.adaptfs.queue attribute.
type queue struct {
	PendingFiles     int   `json:"pending_files"`
	UploadedBytes    int64 `json:"uploaded_bytes"`
	PartSizeBytes    int64 `json:"part_size_bytes"`
	Concurrency      int   `json:"concurrency"`
	RequestsInFlight int   `json:"requests_in_flight"`
	MemoryInUseBytes int64 `json:"memory_in_use_bytes"`
}

// controllerView mirrors the parts of user.adaptfs.controller it plots.
type controllerView struct {
	Estimates struct {
		SmoothedRTTSeconds     float64 `json:"smoothed_rtt_seconds"`
		BottleneckBandwidthBps float64 `json:"bottleneck_bandwidth_bps"`
	} `json:"estimates"`
	Events []json.RawMessage `json:"events"`
}

func readController(mnt string) (controllerView, error) {
	var v controllerView
	buf := make([]byte, 4<<20)
	n, err := unix.Getxattr(mnt, "user.adaptfs.controller", buf)
	if err != nil {
		return v, fmt.Errorf("read adaptfs controller: %w", err)
	}
	return v, json.Unmarshal(buf[:n], &v)
}

func readQueue(mnt string) (queue, error) {
	var q queue
	buf := make([]byte, 1<<20)
	n, err := unix.Getxattr(mnt, "user.adaptfs.queue", buf)
	if err != nil {
		return q, fmt.Errorf("read adaptfs queue: %w", err)
	}
	return q, json.Unmarshal(buf[:n], &q)
}

// sample records one Sample per second until stop.
func (r *Runner) sample(sc *Scenario, mnt string, start time.Time, stop <-chan struct{}) []Sample {
	var out []Sample
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	lastWire, _ := r.Link.SentBytes()
	var lastUp int64
	last := start
	for {
		select {
		case <-stop:
			return out
		case now := <-tick.C:
			q, qerr := readQueue(mnt)
			wire, werr := r.Link.SentBytes()
			if qerr != nil || werr != nil {
				if errors.Is(qerr, syscall.ENOTCONN) {
					return out
				}
				continue
			}
			dt := now.Sub(last).Seconds()
			l := sc.At(now.Sub(start))
			cv, _ := readController(mnt)
			out = append(out, Sample{
				MeasuredRTTms: 1000 * cv.Estimates.SmoothedRTTSeconds,
				EstimatedMbit: cv.Estimates.BottleneckBandwidthBps / 1e6,
				Adaptations:   len(cv.Events),
				T:             now.Sub(start).Seconds(),
				LinkRateMbit:  l.RateMbit, LinkRTTms: l.RTTms, LinkLossPct: l.LossPct,
				WireMbit:       float64(wire-lastWire) * 8 / 1e6 / dt,
				UploadedMbit:   float64(q.UploadedBytes-lastUp) * 8 / 1e6 / dt,
				PartSizeMiB:    float64(q.PartSizeBytes) / (1 << 20),
				Concurrency:    q.Concurrency,
				InFlight:       q.RequestsInFlight,
				PendingFiles:   q.PendingFiles,
				MemoryInUseMiB: float64(q.MemoryInUseBytes) / (1 << 20),
			})
			lastWire, lastUp, last = wire, q.UploadedBytes, now
		}
	}
}

// Adaptive reports whether the configuration lets the controller decide.
func (c Config) Adaptive() bool { return !strings.Contains(c.Options, "adaptive=false") }
