// Package stats builds the documents of a mount's .adaptstats directory
// (and its Prometheus metrics) from one snapshot of the controller, the
// upload queue and the staging area. Every figure is measured; a figure
// that has not been measured yet is absent, never zero by default.
package stats

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io/fs"
	"net/http"
	"path/filepath"
	"runtime"
	"slices"
	"sync"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/common/expfmt"

	"github.com/adaptfs/adaptfs/adapt"
	"github.com/adaptfs/adaptfs/stage"
)

// SchemaVersion is the version of stats.json (docs/STATS.md). Fields are
// only added within a version; a rename or removal bumps it.
const SchemaVersion = 1

// Sources are where the figures come from.
type Sources struct {
	Queue      func() stage.Pending
	Uploads    func() []stage.Upload
	Controller func() adapt.Snapshot
	// Compression is the level chooser's state (nil: compression off).
	Compression     func() adapt.LevelState
	CompressionMode string
	// Config is the effective configuration as TOML, without secrets.
	Config            func() ([]byte, error)
	StagingDir        string
	MemoryBudgetBytes int64
	Started           time.Time
}

// Collector renders the stats files. ObservePart feeds the histograms.
type Collector struct {
	src Sources

	mu          sync.Mutex // the histograms are not shared with a registry
	partSeconds prometheus.Histogram
	partBytes   prometheus.Histogram
}

// New returns a collector; SetSources must be called before rendering.
func New() *Collector {
	return &Collector{
		partSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "adaptfs_part_duration_seconds", Help: "Time from the start to the end of each part or object upload request (successful).",
			Buckets: prometheus.ExponentialBuckets(0.05, 2, 12),
		}),
		partBytes: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "adaptfs_part_body_bytes", Help: "Body size of each successful part or object upload request.",
			Buckets: prometheus.ExponentialBuckets(1<<20, 2, 10),
		}),
	}
}

// SetSources sets where the figures come from (the histograms are fed
// from the start, the rest exists once the staging area does).
func (c *Collector) SetSources(src Sources) { c.src = src }

// ObservePart records one successful bulk request.
func (c *Collector) ObservePart(bytes int64, d time.Duration) {
	c.partSeconds.Observe(d.Seconds())
	c.partBytes.Observe(float64(bytes))
}

// Doc is stats.json.
type Doc struct {
	SchemaVersion int       `json:"schema_version"`
	At            time.Time `json:"at"`
	UptimeSeconds float64   `json:"uptime_seconds"`
	// Health and Network are absent until the controller has samples.
	Health     string        `json:"health,omitempty"`
	Network    *Network      `json:"network,omitempty"`
	Params     Params        `json:"params"`
	Throughput Throughput    `json:"throughput"`
	Queue      Queue         `json:"queue"`
	Uploads    []Upload      `json:"uploads"`
	Requests   Requests      `json:"requests"`
	Events     []adapt.Event `json:"events"`
	Staging    Staging       `json:"staging"`
	// Compression is absent when compression is off.
	Compression *Compression `json:"compression,omitempty"`
	Process     Process      `json:"process"`
}

// Process is the daemon itself (for leak hunting in long runs).
type Process struct {
	Goroutines     int    `json:"goroutines"`
	HeapInUseBytes uint64 `json:"heap_in_use_bytes"`
}

// Compression is what compression does: the level in force, the curves it
// was chosen from (levels measured on this data only), and what it saved.
type Compression struct {
	Mode        string             `json:"mode"` // the configured compression
	Level       string             `json:"level"`
	LevelNumber int                `json:"level_number"` // 0 = none … 4 = zstd-max
	Workers     int                `json:"workers"`
	Curves      []adapt.LevelCurve `json:"curves"`
	Files       int64              `json:"files"` // objects completed compressed
	RawBytes    int64              `json:"raw_bytes"`
	StoredBytes int64              `json:"stored_bytes"`
	// Ratio is raw over stored bytes of those objects; absent before one.
	Ratio *float64 `json:"ratio,omitempty"`
}

// Network is the controller's view of the link.
type Network struct {
	BottleneckBandwidthBps float64 `json:"bottleneck_bandwidth_bps"`
	GoodputBps             float64 `json:"goodput_bps"`
	Utilization            float64 `json:"utilization"`
	PropagationRTTSeconds  float64 `json:"propagation_rtt_seconds"`
	SmoothedRTTSeconds     float64 `json:"smoothed_rtt_seconds"`
	RTTSource              string  `json:"rtt_source"`
	RTTInflation           float64 `json:"rtt_inflation"`
	JitterSeconds          float64 `json:"jitter_seconds"`
	ErrorRate              float64 `json:"error_rate"`
	RetryRate              float64 `json:"retry_rate"`
	// TCPLossRate is absent without TCP_INFO samples.
	TCPLossRate  *float64 `json:"tcp_loss_rate,omitempty"`
	LossKind     string   `json:"loss_kind"`
	PerStreamBps float64  `json:"per_stream_bps"`
	Trend        Trend    `json:"trend"`
}

// Trend is the direction goodput has taken over the last minute.
type Trend struct {
	Direction       string  `json:"direction"`
	Confidence      float64 `json:"confidence"`
	ChangePerMinute float64 `json:"change_per_minute"`
}

// Params are the parameters in force and their bounds.
type Params struct {
	Adaptive         bool   `json:"adaptive"`
	PartSizeBytes    int64  `json:"part_size_bytes"`
	Concurrency      int    `json:"concurrency"`
	MinPartSizeBytes int64  `json:"min_part_size_bytes"`
	MaxPartSizeBytes int64  `json:"max_part_size_bytes"`
	MinConcurrency   int    `json:"min_concurrency"`
	MaxConcurrency   int    `json:"max_concurrency"`
	Adaptations      uint64 `json:"adaptations"`
	Rollbacks        uint64 `json:"rollbacks"`
}

// Throughput of object bytes confirmed by S3.
type Throughput struct {
	// NowBps is the controller's goodput over its last window; absent
	// before it has one.
	NowBps *float64 `json:"now_bps,omitempty"`
	// AverageBps is uploaded bytes over the uptime.
	AverageBps float64 `json:"average_bps"`
}

// Queue is the upload queue.
type Queue struct {
	PendingFiles     int   `json:"pending_files"`
	PendingBytes     int64 `json:"pending_bytes"`
	UploadedFiles    int64 `json:"uploaded_files"`
	UploadedBytes    int64 `json:"uploaded_bytes"`
	FailedFiles      int   `json:"failed_files"`
	RequestsInFlight int   `json:"requests_in_flight"`
}

// Upload is one file on its way.
type Upload struct {
	Path          string  `json:"path"`
	SizeBytes     int64   `json:"size_bytes"`
	UploadedBytes int64   `json:"uploaded_bytes"`
	Percent       float64 `json:"percent"`
	State         string  `json:"state"`
	Error         string  `json:"error,omitempty"`
}

// Requests counts HTTP request attempts to S3.
type Requests struct {
	Total     uint64 `json:"total"`
	Failed    uint64 `json:"failed"`
	Retried   uint64 `json:"retried"`
	BodyBytes uint64 `json:"body_bytes"` // request bodies handed to the kernel, retries included
}

// Staging is the local side.
type Staging struct {
	Dir               string `json:"dir"`
	DiskUsedBytes     int64  `json:"disk_used_bytes"`
	MemoryInUseBytes  int64  `json:"memory_in_use_bytes"`
	MemoryBudgetBytes int64  `json:"memory_budget_bytes"`
}

// Snapshot takes one consistent view of every source.
func (c *Collector) Snapshot() Doc {
	now := time.Now()
	q := c.src.Queue()
	ups := c.src.Uploads()
	snap := c.src.Controller()
	d := Doc{
		SchemaVersion: SchemaVersion, At: now.UTC(), UptimeSeconds: now.Sub(c.src.Started).Seconds(),
		Params: Params{
			Adaptive: snap.Adaptive, PartSizeBytes: q.PartSizeBytes, Concurrency: q.Concurrency,
			MinPartSizeBytes: snap.Bounds.MinPartSizeBytes, MaxPartSizeBytes: snap.Bounds.MaxPartSizeBytes,
			MinConcurrency: snap.Bounds.MinConcurrency, MaxConcurrency: snap.Bounds.MaxConcurrency,
			Adaptations: snap.Counters.Adaptations, Rollbacks: snap.Counters.Rollbacks,
		},
		Queue: Queue{
			PendingFiles: q.Files, PendingBytes: q.Bytes, UploadedFiles: q.UploadedFiles, UploadedBytes: q.UploadedBytes,
			FailedFiles: len(q.Failed), RequestsInFlight: q.RequestsInFlight,
		},
		Uploads: []Upload{},
		Requests: Requests{
			Total: snap.Counters.Requests, Failed: snap.Counters.FailedRequests, Retried: snap.Counters.RetriedRequests,
			BodyBytes: snap.Counters.ProgressBytes,
		},
		Events: snap.Events,
		Staging: Staging{
			Dir: c.src.StagingDir, DiskUsedBytes: diskUsed(c.src.StagingDir),
			MemoryInUseBytes: q.MemoryInUseBytes, MemoryBudgetBytes: c.src.MemoryBudgetBytes,
		},
	}
	if d.Events == nil {
		d.Events = []adapt.Event{}
	}
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	d.Process = Process{Goroutines: runtime.NumGoroutine(), HeapInUseBytes: ms.HeapInuse}
	if c.src.Compression != nil {
		ls := c.src.Compression()
		z := &Compression{
			Mode: c.src.CompressionMode, Level: ls.Name, LevelNumber: ls.Level, Workers: ls.Workers, Curves: ls.Curves,
			Files: q.CompressedFiles, RawBytes: q.CompressedRawBytes, StoredBytes: q.CompressedStoredBytes,
		}
		if z.Curves == nil {
			z.Curves = []adapt.LevelCurve{}
		}
		if z.StoredBytes > 0 {
			r := float64(z.RawBytes) / float64(z.StoredBytes)
			z.Ratio = &r
		}
		d.Compression = z
	}
	if up := d.UptimeSeconds; up > 0 {
		d.Throughput.AverageBps = float64(q.UploadedBytes) * 8 / up
	}
	if snap.Counters.Ticks > 0 && snap.Counters.Requests > 0 {
		e := snap.Estimates
		d.Health = snap.Health.String()
		n := &Network{
			BottleneckBandwidthBps: e.BottleneckBandwidthBps, GoodputBps: e.GoodputBps, Utilization: e.Utilization,
			PropagationRTTSeconds: e.PropagationRTTSeconds, SmoothedRTTSeconds: e.SmoothedRTTSeconds, RTTSource: e.RTTSource,
			RTTInflation: e.RTTInflation, JitterSeconds: e.JitterSeconds, ErrorRate: e.ErrorRate, RetryRate: e.RetryRate,
			LossKind: e.LossKind, PerStreamBps: e.PerStreamBps,
			Trend: Trend{Direction: string(snap.Trend.Direction), Confidence: snap.Trend.Confidence, ChangePerMinute: snap.Trend.ChangePerMinute},
		}
		if e.TCPLossRate >= 0 && snap.Counters.TCPSamples > 0 {
			v := e.TCPLossRate
			n.TCPLossRate = &v
		}
		d.Network = n
		g := e.GoodputBps
		d.Throughput.NowBps = &g
	}
	for _, u := range ups {
		x := Upload{Path: u.Key, SizeBytes: u.SizeBytes, UploadedBytes: u.UploadedBytes, State: u.State, Error: u.Error}
		if u.SizeBytes > 0 {
			x.Percent = 100 * float64(u.UploadedBytes) / float64(u.SizeBytes)
		}
		d.Uploads = append(d.Uploads, x)
	}
	return d
}

// diskUsed is the space the staging directory's files take.
func diskUsed(dir string) int64 {
	var n int64
	filepath.WalkDir(dir, func(path string, de fs.DirEntry, err error) error {
		if err != nil || de.IsDir() {
			return nil
		}
		if info, err := de.Info(); err == nil {
			if st, ok := info.Sys().(*syscall.Stat_t); ok {
				n += st.Blocks * 512
			}
		}
		return nil
	})
	return n
}

// The files of .adaptstats.
var files = []string{"summary", "stats.json", "network", "params", "events", "uploads", "metrics", "config"}

// Files lists the files of .adaptstats.
func (c *Collector) Files() []string { return slices.Clone(files) }

// Render generates one file from a fresh snapshot.
func (c *Collector) Render(name string) ([]byte, error) {
	if name == "config" {
		return c.src.Config()
	}
	d := c.Snapshot()
	var b bytes.Buffer
	switch name {
	case "stats.json":
		enc := json.NewEncoder(&b)
		enc.SetIndent("", "  ")
		if err := enc.Encode(d); err != nil {
			return nil, err
		}
	case "summary":
		writeSummary(&b, d)
	case "network":
		writeNetwork(&b, d)
	case "params":
		writeParams(&b, d)
	case "events":
		enc := json.NewEncoder(&b)
		for _, e := range d.Events {
			if err := enc.Encode(e); err != nil {
				return nil, err
			}
		}
	case "uploads":
		writeUploads(&b, d)
	case "metrics":
		if err := c.writeMetrics(&b, d); err != nil {
			return nil, err
		}
	default:
		return nil, fmt.Errorf("no stats file %q", name)
	}
	return b.Bytes(), nil
}

// Handler serves the metrics at /metrics (--metrics-addr).
func (c *Collector) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/metrics", func(w http.ResponseWriter, r *http.Request) {
		var b bytes.Buffer
		if err := c.writeMetrics(&b, c.Snapshot()); err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Type", string(expfmt.NewFormat(expfmt.TypeTextPlain)))
		w.Write(b.Bytes())
	})
	return mux
}
