package test

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/adaptfs/adaptfs/test/harness"
	"github.com/adaptfs/adaptfs/test/scenario"
	"github.com/adaptfs/adaptfs/test/wan"
)

// wanLink adapts a wan.Link to what the scenario runner needs.
type wanLink struct {
	l       *wan.Link
	congctl string
}

func (w wanLink) Apply(l scenario.Link) error {
	return w.l.Set(wan.Config{RateMbit: l.RateMbit, RTTms: l.RTTms, LossPct: l.LossPct, JitterMs: l.JitterMs, QueueMs: l.QueueMs, CongCtl: w.congctl})
}

func (w wanLink) Wrap() []string     { return []string{"ip", "netns", "exec", w.l.NSName()} }
func (w wanLink) ServerAddr() string { return w.l.ServerAddr().String() }

func (w wanLink) SentBytes() (int64, error) {
	c, err := w.l.Counters()
	return int64(c.Up.Bytes), err
}

// runScenario brings up the link and a server behind it, generates the
// scenario's data set, and runs every configuration reps times, in rounds
// (one run of each configuration per round) so that slow drift of the
// machine touches them all alike.
func runScenario(tb testing.TB, sc *scenario.Scenario, configs []scenario.Config, reps int, outDir string) *scenario.Report {
	if err := wan.Check(); err != nil {
		tb.Skipf("no emulated link on this machine: %v", err)
	}
	ctx := context.Background()
	first := sc.Schedule()[0]
	link, err := wan.Up(ctx, wan.Config{Name: "adaptbench", RateMbit: first.RateMbit, RTTms: first.RTTms, QueueMs: first.QueueMs, CongCtl: sc.CongCtl})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(link.Down)
	emu := wanLink{l: link, congctl: sc.CongCtl}
	vgw, err := harness.FindVersitygw()
	if err != nil {
		tb.Fatal(err)
	}
	srv, err := harness.StartServerWith(ctx, vgw, tb.TempDir(), harness.ServerOptions{Host: emu.ServerAddr(), Wrap: emu.Wrap()})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(srv.Stop)

	src := filepath.Join(tb.TempDir(), "data")
	files, payload := harness.GenTreeTB(tb, src, sc.Data.TreeSpec())
	want, err := harness.TreeSums(src)
	if err != nil {
		tb.Fatal(err)
	}
	r := &scenario.Runner{Bin: shared.bin, Link: emu, Server: srv, WorkDir: tb.TempDir(), Logf: tb.Logf}
	var runs []scenario.RunResult
	for rep := 1; rep <= reps; rep++ {
		for _, cfg := range configs {
			res, err := r.Run(ctx, sc, src, want, cfg, rep)
			if err != nil {
				tb.Fatalf("%s: %v", sc.Name, err)
			}
			tb.Logf("%s %s rep %d: %.1f s to durable, %.1f Mbit/s, efficiency %.0f%%", sc.Name, cfg.Name, rep, res.Seconds, res.GoodputMbit, 100*res.Efficiency)
			runs = append(runs, res)
		}
	}
	rep := scenario.NewReport(sc, files, payload, configs, runs)
	var table strings.Builder
	rep.WriteTable(&table)
	tb.Log(table.String())
	os.Stdout.WriteString(table.String())
	jsonPath, svgPath, err := rep.Save(outDir)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Logf("wrote %s and %s", jsonPath, svgPath)
	return rep
}

func benchOutDir(tb testing.TB) string {
	if d := os.Getenv("ADAPTFS_BENCH_OUT"); d != "" {
		return d
	}
	root, err := harness.ModuleRoot()
	if err != nil {
		tb.Fatal(err)
	}
	return filepath.Join(root, "bench-results")
}

// TestBenchSmoke runs the short smoke scenario once with two
// configurations, so the benchmark harness cannot rot unnoticed: its
// numbers are printed, not asserted; what is asserted is that it ran, the
// data arrived intact (the runner verifies every object), and it wrote a
// valid JSON report and a picture.
func TestBenchSmoke(t *testing.T) {
	requireFuse(t)
	sc, err := scenario.Load(filepath.Join("scenarios-smoke", "smoke.toml"))
	if err != nil {
		t.Fatal(err)
	}
	all := scenario.Configs()
	configs := []scenario.Config{all[0], all[1]}
	out := t.TempDir()
	if os.Getenv("ADAPTFS_BENCH_OUT") != "" {
		out = benchOutDir(t)
	}
	start := time.Now()
	rep := runScenario(t, sc, configs, 1, out)
	t.Logf("smoke scenario took %v", time.Since(start).Round(time.Second))

	b, err := os.ReadFile(filepath.Join(out, "smoke.json"))
	if err != nil {
		t.Fatal(err)
	}
	var back scenario.Report
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatalf("smoke.json is not valid JSON: %v", err)
	}
	if len(back.Configs) != 2 || len(back.Configs[0].Runs) != 1 || len(back.Configs[0].Runs[0].Samples) < 5 {
		t.Fatalf("report lacks runs or samples: %+v", back.Configs)
	}
	for _, c := range rep.Configs {
		if c.Efficiency.Median <= 0 || c.Efficiency.Median > 1.05 {
			t.Errorf("%s: efficiency %.2f is not a fraction of the link", c.Config.Name, c.Efficiency.Median)
		}
	}
	svg, err := os.ReadFile(filepath.Join(out, "smoke.svg"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(string(svg), "<svg") || !strings.Contains(string(svg), "<polyline") {
		t.Fatal("smoke.svg is not a picture with lines")
	}
}

// benchConfigs are sc's configurations, those named in
// ADAPTFS_BENCH_CONFIGS (comma separated) if set.
func benchConfigs(tb testing.TB, sc *scenario.Scenario) []scenario.Config {
	all, err := scenario.ConfigsFor(sc)
	if err != nil {
		tb.Fatal(err)
	}
	only := map[string]bool{}
	for _, n := range strings.Split(os.Getenv("ADAPTFS_BENCH_CONFIGS"), ",") {
		if n = strings.TrimSpace(n); n != "" {
			only[n] = true
		}
	}
	if len(only) == 0 {
		return all
	}
	return slices.DeleteFunc(all, func(c scenario.Config) bool { return !only[c.Name] })
}

// BenchmarkScenarios runs every scenario in test/scenarios with every
// configuration, ADAPTFS_BENCH_REPS times (default 3), and writes
// bench-results/<scenario>.json and .svg. ADAPTFS_BENCH_SCENARIOS (comma
// separated names) selects scenarios.
func BenchmarkScenarios(b *testing.B) {
	requireFuse(b)
	scs, err := scenario.LoadDir("scenarios")
	if err != nil {
		b.Fatal(err)
	}
	only := map[string]bool{}
	for _, n := range strings.Split(os.Getenv("ADAPTFS_BENCH_SCENARIOS"), ",") {
		if n = strings.TrimSpace(n); n != "" {
			only[n] = true
		}
	}
	reps := envInt("ADAPTFS_BENCH_REPS", 3)
	for b.Loop() {
		for _, sc := range scs {
			if len(only) > 0 && !only[sc.Name] {
				continue
			}
			b.Run(sc.Name, func(b *testing.B) {
				for b.Loop() {
					rep := runScenario(b, sc, benchConfigs(b, sc), reps, benchOutDir(b))
					for _, c := range rep.Configs {
						b.ReportMetric(c.Efficiency.Median, c.Config.Name+"-efficiency")
					}
				}
			})
		}
	}
}
