package stats

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/adaptfs/adaptfs/adapt"
	"github.com/adaptfs/adaptfs/stage"
)

func collector(snap adapt.Snapshot, ups []stage.Upload) *Collector {
	c := New()
	c.SetSources(Sources{
		Queue: func() stage.Pending {
			return stage.Pending{Files: len(ups), UploadedBytes: 3 << 20, UploadedFiles: 2, PartSizeBytes: 8 << 20, Concurrency: 8}
		},
		Uploads:    func() []stage.Upload { return ups },
		Controller: func() adapt.Snapshot { return snap },
		Config:     func() ([]byte, error) { return []byte("part_size_mb = 8\n"), nil },
		StagingDir: "/nonexistent", MemoryBudgetBytes: 256 << 20, Started: time.Now().Add(-10 * time.Second),
	})
	return c
}

// TestUnmeasuredIsAbsent: before the controller has samples, the link
// figures are missing from stats.json, not zero.
func TestUnmeasuredIsAbsent(t *testing.T) {
	tests := []struct {
		name        string
		snap        adapt.Snapshot
		wantNetwork bool
		wantTCPLoss bool
	}{
		{"no samples", adapt.Snapshot{}, false, false},
		{"samples without TCP_INFO", adapt.Snapshot{
			Counters:  adapt.Counters{Ticks: 3, Requests: 10},
			Estimates: adapt.Estimates{GoodputBps: 5e7, TCPLossRate: -1},
		}, true, false},
		{"samples with TCP_INFO", adapt.Snapshot{
			Counters:  adapt.Counters{Ticks: 3, Requests: 10, TCPSamples: 4},
			Estimates: adapt.Estimates{GoodputBps: 5e7, TCPLossRate: 0.001},
		}, true, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, err := collector(tt.snap, nil).Render("stats.json")
			if err != nil {
				t.Fatal(err)
			}
			var m map[string]any
			if err := json.Unmarshal(b, &m); err != nil {
				t.Fatal(err)
			}
			net, hasNet := m["network"].(map[string]any)
			_, hasNow := m["throughput"].(map[string]any)["now_bps"]
			if hasNet != tt.wantNetwork || hasNow != tt.wantNetwork {
				t.Errorf("network present %v, now_bps present %v, want %v", hasNet, hasNow, tt.wantNetwork)
			}
			if _, ok := net["tcp_loss_rate"]; ok != tt.wantTCPLoss {
				t.Errorf("tcp_loss_rate present %v, want %v", ok, tt.wantTCPLoss)
			}
			if m["schema_version"] != float64(SchemaVersion) {
				t.Errorf("schema_version %v", m["schema_version"])
			}
		})
	}
}

// TestRenderEveryFile: every file renders; events are JSON lines; metrics
// parse and agree with the document.
func TestRenderEveryFile(t *testing.T) {
	g := 0.05
	snap := adapt.Snapshot{
		Adaptive: true,
		Counters: adapt.Counters{Ticks: 1, Requests: 4, Adaptations: 1},
		Events: []adapt.Event{
			{Seq: 1, At: time.Now(), Param: adapt.ParamConcurrency, Old: 8, New: 12, Reason: "probe", MeasuredGain: &g},
			{Seq: 2, At: time.Now(), Param: adapt.ParamPartSize, Old: 8 << 20, New: 5 << 20, Reason: "smaller"},
		},
	}
	c := collector(snap, []stage.Upload{{Key: "a/b.bin", SizeBytes: 100, UploadedBytes: 25, State: "uploading"}})
	c.ObservePart(8<<20, 2*time.Second)
	for _, name := range c.Files() {
		b, err := c.Render(name)
		if err != nil || len(b) == 0 {
			t.Errorf("%s: %d bytes, %v", name, len(b), err)
		}
	}
	ev, _ := c.Render("events")
	if lines := strings.Split(strings.TrimSpace(string(ev)), "\n"); len(lines) != 2 {
		t.Errorf("events: %d lines, want 2", len(lines))
	}
	up, _ := c.Render("uploads")
	if !strings.Contains(string(up), "25.0%") || !strings.Contains(string(up), "a/b.bin") {
		t.Errorf("uploads: %q", up)
	}
	mb, _ := c.Render("metrics")
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(bytes.NewReader(mb))
	if err != nil {
		t.Fatalf("metrics: %v\n%s", err, mb)
	}
	if v := fams["adaptfs_uploaded_bytes_total"].Metric[0].Counter.GetValue(); v != 3<<20 {
		t.Errorf("adaptfs_uploaded_bytes_total = %v", v)
	}
	if n := fams["adaptfs_part_duration_seconds"].Metric[0].Histogram.GetSampleCount(); n != 1 {
		t.Errorf("part duration histogram has %d samples", n)
	}
	if _, err := c.Render("nope"); err == nil {
		t.Error("rendering an unknown file succeeded")
	}
}
