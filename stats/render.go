package stats

import (
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/common/expfmt"
)

func mbit(bps float64) string { return fmt.Sprintf("%.1f Mbit/s", bps/1e6) }

func mib(n int64) string { return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20)) }

func writeSummary(w io.Writer, d Doc) {
	fmt.Fprintf(w, "adaptfs — up %s\n", time.Duration(d.UptimeSeconds*float64(time.Second)).Round(time.Second))
	if d.Network != nil {
		n := d.Network
		fmt.Fprintf(w, "health      %s; trend %s (confidence %.0f%%)\n", d.Health, n.Trend.Direction, 100*n.Trend.Confidence)
		fmt.Fprintf(w, "link        bottleneck %s, goodput %s, RTT %.0f ms (propagation %.0f ms, +%.0f%%), errors %.2f%%\n",
			mbit(n.BottleneckBandwidthBps), mbit(n.GoodputBps), 1000*n.SmoothedRTTSeconds, 1000*n.PropagationRTTSeconds,
			100*n.RTTInflation, 100*n.ErrorRate)
	} else {
		fmt.Fprintf(w, "link        not measured yet (the controller has no samples)\n")
	}
	mode := "adaptive"
	if !d.Params.Adaptive {
		mode = "fixed"
	}
	fmt.Fprintf(w, "params      %s parts × %d streams (%s; %d adaptations, %d rolled back)\n",
		mib(d.Params.PartSizeBytes), d.Params.Concurrency, mode, d.Params.Adaptations, d.Params.Rollbacks)
	if z := d.Compression; z != nil {
		saved := ""
		if z.Ratio != nil {
			saved = fmt.Sprintf("; %d object(s), %s stored as %s (%.2f:1)", z.Files, mib(z.RawBytes), mib(z.StoredBytes), *z.Ratio)
		}
		fmt.Fprintf(w, "compression %s, level %s%s\n", z.Mode, z.Level, saved)
	}
	now := "—"
	if d.Throughput.NowBps != nil {
		now = mbit(*d.Throughput.NowBps)
	}
	fmt.Fprintf(w, "throughput  now %s, average %s\n", now, mbit(d.Throughput.AverageBps))
	fmt.Fprintf(w, "queue       %d file(s), %s pending; %d uploaded (%s); %d failed; %d request(s) in flight\n",
		d.Queue.PendingFiles, mib(d.Queue.PendingBytes), d.Queue.UploadedFiles, mib(d.Queue.UploadedBytes),
		d.Queue.FailedFiles, d.Queue.RequestsInFlight)
	fmt.Fprintf(w, "staging     %s on disk, %s of %s RAM (%s)\n", mib(d.Staging.DiskUsedBytes),
		mib(d.Staging.MemoryInUseBytes), mib(d.Staging.MemoryBudgetBytes), d.Staging.Dir)
	if k := len(d.Events); k > 0 {
		fmt.Fprintf(w, "last adaptations:\n")
		for _, e := range d.Events[max(0, k-5):] {
			fmt.Fprintf(w, "  %s  %s %g → %g: %s\n", e.At.Local().Format("15:04:05"), e.Param, e.Old, e.New, e.Reason)
		}
	}
}

func writeNetwork(w io.Writer, d Doc) {
	n := d.Network
	if n == nil {
		fmt.Fprintln(w, "not measured yet (the controller has no samples)")
		return
	}
	kv := [][2]string{
		{"health", d.Health},
		{"bottleneck_bandwidth", mbit(n.BottleneckBandwidthBps)},
		{"goodput", mbit(n.GoodputBps)},
		{"utilization", fmt.Sprintf("%.0f%%", 100*n.Utilization)},
		{"rtt_smoothed", fmt.Sprintf("%.1f ms (%s)", 1000*n.SmoothedRTTSeconds, n.RTTSource)},
		{"rtt_propagation", fmt.Sprintf("%.1f ms", 1000*n.PropagationRTTSeconds)},
		{"rtt_inflation", fmt.Sprintf("%.0f%%", 100*n.RTTInflation)},
		{"jitter", fmt.Sprintf("%.1f ms", 1000*n.JitterSeconds)},
		{"error_rate", fmt.Sprintf("%.2f%%", 100*n.ErrorRate)},
		{"retry_rate", fmt.Sprintf("%.2f%%", 100*n.RetryRate)},
		{"loss_kind", n.LossKind},
		{"per_stream", mbit(n.PerStreamBps)},
		{"trend", fmt.Sprintf("%s, confidence %.0f%%, %+.0f%% per minute", n.Trend.Direction, 100*n.Trend.Confidence, 100*n.Trend.ChangePerMinute)},
	}
	if n.TCPLossRate != nil {
		kv = append(kv, [2]string{"tcp_loss_rate", fmt.Sprintf("%.3f%%", 100**n.TCPLossRate)})
	}
	for _, p := range kv {
		fmt.Fprintf(w, "%-22s %s\n", p[0], p[1])
	}
}

func writeParams(w io.Writer, d Doc) {
	p := d.Params
	fmt.Fprintf(w, "%-16s %v\n", "adaptive", p.Adaptive)
	fmt.Fprintf(w, "%-16s %d (bounds %d–%d)\n", "part_size_bytes", p.PartSizeBytes, p.MinPartSizeBytes, p.MaxPartSizeBytes)
	fmt.Fprintf(w, "%-16s %d (bounds %d–%d)\n", "concurrency", p.Concurrency, p.MinConcurrency, p.MaxConcurrency)
	fmt.Fprintf(w, "%-16s %d\n", "adaptations", p.Adaptations)
	fmt.Fprintf(w, "%-16s %d\n", "rollbacks", p.Rollbacks)
	if z := d.Compression; z != nil {
		fmt.Fprintf(w, "%-16s %s (%s, %d workers)\n", "compression", z.Level, z.Mode, z.Workers)
		for _, c := range z.Curves {
			if c.Level == 0 {
				fmt.Fprintf(w, "  %-14s ratio 1.00, delivers %s\n", c.Name, mbit(c.PredictedRawBps))
				continue
			}
			fmt.Fprintf(w, "  %-14s ratio %.2f, %.0f MB/s per worker, delivers %s (%d frames, %.0f s ago)\n",
				c.Name, c.Ratio, c.RawBytesPerSecond/1e6, mbit(c.PredictedRawBps), c.Frames, c.AgeSeconds)
		}
	}
}

func writeUploads(w io.Writer, d Doc) {
	for _, u := range d.Uploads {
		line := fmt.Sprintf("%-10s %5.1f%%  %s / %s  %s", u.State, u.Percent, mib(u.UploadedBytes), mib(u.SizeBytes), u.Path)
		if u.Error != "" {
			line += "  (" + strings.ReplaceAll(u.Error, "\n", " ") + ")"
		}
		fmt.Fprintln(w, line)
	}
}

// docMetrics exposes one Doc as constant metrics.
type docMetrics struct{ d Doc }

func desc(name, help string, labels ...string) *prometheus.Desc {
	return prometheus.NewDesc(name, help, labels, nil)
}

var (
	mUptime        = desc("adaptfs_uptime_seconds", "Seconds since the mount started.")
	mUploadedBytes = desc("adaptfs_uploaded_bytes_total", "Object bytes complete in S3.")
	mUploadedFiles = desc("adaptfs_uploaded_files_total", "Objects complete in S3.")
	mPendingFiles  = desc("adaptfs_pending_files", "Closed files not yet complete in S3.")
	mPendingBytes  = desc("adaptfs_pending_bytes", "Bytes of closed files not yet confirmed by S3.")
	mFailedFiles   = desc("adaptfs_failed_files", "Files whose upload failed (data kept).")
	mInFlight      = desc("adaptfs_requests_in_flight", "Upload requests holding a slot.")
	mRequests      = desc("adaptfs_requests_total", "HTTP request attempts to S3.")
	mFailed        = desc("adaptfs_requests_failed_total", "HTTP request attempts to S3 that failed.")
	mRetried       = desc("adaptfs_requests_retried_total", "HTTP request attempts that were retries.")
	mPartSize      = desc("adaptfs_part_size_bytes", "Part size in force.")
	mConcurrency   = desc("adaptfs_concurrency", "Concurrency in force.")
	mAdaptations   = desc("adaptfs_adaptations_total", "Parameter changes made by the controller (rollbacks excluded).")
	mRollbacks     = desc("adaptfs_rollbacks_total", "Parameter changes rolled back.")
	mMemory        = desc("adaptfs_staging_memory_bytes", "RAM held by part buffers.")
	mDisk          = desc("adaptfs_staging_disk_bytes", "Disk space used by the staging directory.")
	mGoodput       = desc("adaptfs_goodput_bps", "Goodput the controller measured (bits per second).")
	mBottleneck    = desc("adaptfs_bottleneck_bandwidth_bps", "Bottleneck bandwidth estimate (bits per second).")
	mRTT           = desc("adaptfs_rtt_seconds", "Round-trip time as measured.", "kind")
	mErrorRate     = desc("adaptfs_error_rate", "Share of requests that failed, recent window.")
	mGoroutines    = desc("adaptfs_goroutines", "Goroutines of the daemon.")
	mHeap          = desc("adaptfs_heap_in_use_bytes", "Go heap in use.")
	mZLevel        = desc("adaptfs_compression_level", "Compression level in force (0 = none, 1 = zstd-fast … 4 = zstd-max).")
	mZRaw          = desc("adaptfs_compressed_raw_bytes_total", "Raw bytes of objects completed compressed.")
	mZStored       = desc("adaptfs_compressed_stored_bytes_total", "Stored bytes of objects completed compressed.")
)

func (m docMetrics) Describe(ch chan<- *prometheus.Desc) { prometheus.DescribeByCollect(m, ch) }

func (m docMetrics) Collect(ch chan<- prometheus.Metric) {
	d := m.d
	c := func(desc *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(desc, prometheus.CounterValue, v, labels...)
	}
	g := func(desc *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(desc, prometheus.GaugeValue, v, labels...)
	}
	g(mUptime, d.UptimeSeconds)
	c(mUploadedBytes, float64(d.Queue.UploadedBytes))
	c(mUploadedFiles, float64(d.Queue.UploadedFiles))
	g(mPendingFiles, float64(d.Queue.PendingFiles))
	g(mPendingBytes, float64(d.Queue.PendingBytes))
	g(mFailedFiles, float64(d.Queue.FailedFiles))
	g(mInFlight, float64(d.Queue.RequestsInFlight))
	c(mRequests, float64(d.Requests.Total))
	c(mFailed, float64(d.Requests.Failed))
	c(mRetried, float64(d.Requests.Retried))
	g(mPartSize, float64(d.Params.PartSizeBytes))
	g(mConcurrency, float64(d.Params.Concurrency))
	c(mAdaptations, float64(d.Params.Adaptations))
	c(mRollbacks, float64(d.Params.Rollbacks))
	g(mMemory, float64(d.Staging.MemoryInUseBytes))
	g(mGoroutines, float64(d.Process.Goroutines))
	g(mHeap, float64(d.Process.HeapInUseBytes))
	g(mDisk, float64(d.Staging.DiskUsedBytes))
	if z := d.Compression; z != nil {
		g(mZLevel, float64(z.LevelNumber))
		c(mZRaw, float64(z.RawBytes))
		c(mZStored, float64(z.StoredBytes))
	}
	if n := d.Network; n != nil {
		g(mGoodput, n.GoodputBps)
		g(mBottleneck, n.BottleneckBandwidthBps)
		g(mRTT, n.SmoothedRTTSeconds, "smoothed")
		g(mRTT, n.PropagationRTTSeconds, "propagation")
		g(mErrorRate, n.ErrorRate)
	}
}

func (c *Collector) writeMetrics(w io.Writer, d Doc) error {
	reg := prometheus.NewPedanticRegistry()
	if err := reg.Register(docMetrics{d}); err != nil {
		return err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, h := range []prometheus.Collector{c.partSeconds, c.partBytes} {
		if err := reg.Register(h); err != nil {
			return err
		}
	}
	mfs, err := reg.Gather()
	if err != nil {
		return err
	}
	enc := expfmt.NewEncoder(w, expfmt.NewFormat(expfmt.TypeTextPlain))
	for _, mf := range mfs {
		if err := enc.Encode(mf); err != nil {
			return err
		}
	}
	return nil
}
