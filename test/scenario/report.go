package scenario

import (
	"encoding/json"
	"fmt"
	"html"
	"io"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

// Spread is min / median / max.
type Spread struct {
	Min    float64 `json:"min"`
	Median float64 `json:"median"`
	Max    float64 `json:"max"`
}

func spreadOf(xs []float64) Spread {
	if len(xs) == 0 {
		return Spread{}
	}
	s := slices.Sorted(slices.Values(xs))
	return Spread{Min: s[0], Median: s[len(s)/2], Max: s[len(s)-1]}
}

// ConfigSummary aggregates the runs of one configuration.
type ConfigSummary struct {
	Config      Config      `json:"config"`
	Seconds     Spread      `json:"seconds_to_durable"`
	GoodputMbit Spread      `json:"goodput_mbit"`
	Efficiency  Spread      `json:"link_efficiency"`
	Runs        []RunResult `json:"runs"`
	// Reactions, per step of the schedule after the first (stepped
	// scenarios only), over the runs.
	Reactions []StepReaction `json:"reactions,omitempty"`
}

// StepReaction is how the parameters answered one step of the link.
type StepReaction struct {
	StepAtSeconds float64 `json:"step_at_seconds"`
	// FirstChange is the time from the step to the first change of part
	// size or concurrency; Settled to the last change before the next step
	// (or the run's end). Runs that did not change are left out; Unchanged
	// counts them.
	FirstChangeSeconds Spread `json:"first_change_seconds"`
	SettledSeconds     Spread `json:"settled_seconds"`
	Unchanged          int    `json:"unchanged_runs"`
}

// reactions measures each step after the first from the runs' samples.
func reactions(sched []Link, runs []RunResult) []StepReaction {
	var out []StepReaction
	for i := 1; i < len(sched); i++ {
		at := sched[i].At.Seconds()
		end := math.Inf(1)
		if i+1 < len(sched) {
			end = sched[i+1].At.Seconds()
		}
		sr := StepReaction{StepAtSeconds: at}
		var first, settled []float64
		for _, r := range runs {
			if r.Seconds <= at {
				continue // the run was over before this step
			}
			f, l := math.NaN(), math.NaN()
			for k := 1; k < len(r.Samples); k++ {
				a, b := r.Samples[k-1], r.Samples[k]
				if b.T < at || b.T >= end {
					continue
				}
				if a.PartSizeMiB != b.PartSizeMiB || a.Concurrency != b.Concurrency {
					if math.IsNaN(f) {
						f = b.T - at
					}
					l = b.T - at
				}
			}
			if math.IsNaN(f) {
				sr.Unchanged++
				continue
			}
			first, settled = append(first, f), append(settled, l)
		}
		sr.FirstChangeSeconds, sr.SettledSeconds = spreadOf(first), spreadOf(settled)
		out = append(out, sr)
	}
	return out
}

// Report is the result of one scenario.
type Report struct {
	Scenario     string          `json:"scenario"`
	Description  string          `json:"description"`
	When         time.Time       `json:"when"`
	PayloadBytes int64           `json:"payload_bytes"`
	Files        int             `json:"files"`
	Schedule     []Link          `json:"schedule"`
	Configs      []ConfigSummary `json:"configs"`
	// SpeedupMedian is, per configuration, the median time of the
	// 5 MiB × 4 baseline divided by its median time (> 1 is faster).
	SpeedupMedian map[string]float64 `json:"speedup_vs_fixed_5MiBx4"`
}

// NewReport summarises runs (any order) of the scenario.
func NewReport(sc *Scenario, files int, payload int64, configs []Config, runs []RunResult) *Report {
	rep := &Report{
		Scenario: sc.Name, Description: sc.Description, When: time.Now().UTC(),
		PayloadBytes: payload, Files: files, Schedule: sc.Schedule(), SpeedupMedian: map[string]float64{},
	}
	if sc.Volatile != nil { // the walk is long; keep what the runs could have seen
		var longest float64
		for _, r := range runs {
			longest = max(longest, r.Seconds)
		}
		cut := time.Duration(longest*float64(time.Second)) + 10*time.Second
		rep.Schedule = slices.DeleteFunc(slices.Clone(rep.Schedule), func(l Link) bool { return l.At > cut })
	}
	for _, c := range configs {
		s := ConfigSummary{Config: c}
		var secs, good, eff []float64
		for _, r := range runs {
			if r.Config != c.Name {
				continue
			}
			s.Runs = append(s.Runs, r)
			secs, good, eff = append(secs, r.Seconds), append(good, r.GoodputMbit), append(eff, r.Efficiency)
		}
		if len(s.Runs) == 0 {
			continue
		}
		s.Seconds, s.GoodputMbit, s.Efficiency = spreadOf(secs), spreadOf(good), spreadOf(eff)
		if sc.Volatile == nil && c.Adaptive() {
			s.Reactions = reactions(sc.Schedule(), s.Runs)
		}
		rep.Configs = append(rep.Configs, s)
	}
	var base float64
	for _, c := range rep.Configs {
		if c.Config.Name == "fixed-5MiBx4" {
			base = c.Seconds.Median
		}
	}
	if base > 0 {
		for _, c := range rep.Configs {
			rep.SpeedupMedian[c.Config.Name] = base / c.Seconds.Median
		}
	}
	return rep
}

// WriteTable prints the summary.
func (r *Report) WriteTable(w io.Writer) {
	fmt.Fprintf(w, "\n%s — %s\n%d files, %.1f MiB; min / median / max of %d run(s)\n", r.Scenario, r.Description, r.Files, float64(r.PayloadBytes)/(1<<20), len(r.Configs[0].Runs))
	fmt.Fprintf(w, "%-16s %-26s %-26s %-22s %s\n", "config", "seconds to durable", "goodput Mbit/s", "link efficiency", "× vs 5MiB×4")
	for _, c := range r.Configs {
		speedup := "—" // the scenario did not run the baseline
		if x, ok := r.SpeedupMedian[c.Config.Name]; ok {
			speedup = fmt.Sprintf("%.2f", x)
		}
		fmt.Fprintf(w, "%-16s %-26s %-26s %-22s %s\n", c.Config.Name,
			fmt.Sprintf("%.1f / %.1f / %.1f", c.Seconds.Min, c.Seconds.Median, c.Seconds.Max),
			fmt.Sprintf("%.1f / %.1f / %.1f", c.GoodputMbit.Min, c.GoodputMbit.Median, c.GoodputMbit.Max),
			fmt.Sprintf("%.0f%% / %.0f%% / %.0f%%", 100*c.Efficiency.Min, 100*c.Efficiency.Median, 100*c.Efficiency.Max),
			speedup)
	}
	for _, c := range r.Configs {
		for _, sr := range c.Reactions {
			fmt.Fprintf(w, "%s: step at %.0f s: first change after %.0f / %.0f / %.0f s, settled after %.0f / %.0f / %.0f s (%d run(s) unchanged)\n",
				c.Config.Name, sr.StepAtSeconds, sr.FirstChangeSeconds.Min, sr.FirstChangeSeconds.Median, sr.FirstChangeSeconds.Max,
				sr.SettledSeconds.Min, sr.SettledSeconds.Median, sr.SettledSeconds.Max, sr.Unchanged)
		}
	}
}

// Save writes DIR/<scenario>.json and DIR/<scenario>.svg.
func (r *Report) Save(dir string) (jsonPath, svgPath string, err error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", "", err
	}
	jsonPath = filepath.Join(dir, r.Scenario+".json")
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return "", "", err
	}
	if err := os.WriteFile(jsonPath, b, 0o644); err != nil {
		return "", "", err
	}
	svgPath = filepath.Join(dir, r.Scenario+".svg")
	return jsonPath, svgPath, os.WriteFile(svgPath, []byte(r.SVG()), 0o644)
}

// series is one line of a panel.
type series struct {
	name  string
	color string
	pts   [][2]float64
}

var palette = []string{"#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b"}

// SVG draws the timeline of the first run of each configuration: link rate
// and achieved goodput, RTT, part size and concurrency.
func (r *Report) SVG() string {
	const w, ph, left, top = 900, 170, 70, 40
	panels := []struct {
		title string
		unit  string
		get   func(Sample) float64
		link  func(Link) float64
	}{
		{"goodput on the wire (lines) vs link rate (grey)", "Mbit/s", func(s Sample) float64 { return s.WireMbit }, func(l Link) float64 { return l.RateMbit }},
		{"RTT: link (grey) and as adaptfs measured it", "ms", func(s Sample) float64 { return s.MeasuredRTTms }, func(l Link) float64 { return l.RTTms }},
		{"part size", "MiB", func(s Sample) float64 { return s.PartSizeMiB }, nil},
		{"concurrency (limit)", "requests", func(s Sample) float64 { return float64(s.Concurrency) }, nil},
		{"requests in flight", "requests", func(s Sample) float64 { return float64(s.InFlight) }, nil},
	}
	var tmax float64
	for _, c := range r.Configs {
		if len(c.Runs) > 0 && len(c.Runs[0].Samples) > 0 {
			tmax = max(tmax, c.Runs[0].Samples[len(c.Runs[0].Samples)-1].T)
		}
	}
	tmax = math.Max(tmax, 1)
	height := top + len(panels)*(ph+40) + 30
	var b strings.Builder
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" font-family="sans-serif" font-size="11">`+"\n", w, height)
	fmt.Fprintf(&b, `<rect width="100%%" height="100%%" fill="white"/><text x="%d" y="20" font-size="14">%s — %s</text>`+"\n", left, html.EscapeString(r.Scenario), html.EscapeString(r.Description))
	for i, c := range r.Configs {
		fmt.Fprintf(&b, `<text x="%d" y="34" fill="%s">■ %s</text>`, left+i*170, palette[i%len(palette)], html.EscapeString(c.Config.Name))
	}
	for pi, p := range panels {
		y0 := top + pi*(ph+40) + 20
		var lines []series
		if p.link != nil {
			var pts [][2]float64
			prev := 0.0
			for _, l := range r.Schedule {
				t := l.At.Seconds()
				if t > tmax {
					break
				}
				if len(pts) > 0 {
					pts = append(pts, [2]float64{t, prev})
				}
				pts = append(pts, [2]float64{t, p.link(l)})
				prev = p.link(l)
			}
			pts = append(pts, [2]float64{tmax, prev})
			lines = append(lines, series{"link", "#999", pts})
		}
		if p.get != nil {
			for i, c := range r.Configs {
				if len(c.Runs) == 0 {
					continue
				}
				var pts [][2]float64
				for _, s := range c.Runs[0].Samples {
					pts = append(pts, [2]float64{s.T, p.get(s)})
				}
				lines = append(lines, series{c.Config.Name, palette[i%len(palette)], pts})
			}
		}
		var ymax float64
		for _, s := range lines {
			for _, pt := range s.pts {
				ymax = max(ymax, pt[1])
			}
		}
		ymax = niceCeil(ymax)
		fmt.Fprintf(&b, `<text x="%d" y="%d">%s (%s)</text>`+"\n", left, y0-6, html.EscapeString(p.title), p.unit)
		fmt.Fprintf(&b, `<rect x="%d" y="%d" width="%d" height="%d" fill="none" stroke="#ccc"/>`+"\n", left, y0, w-left-20, ph)
		fmt.Fprintf(&b, `<text x="%d" y="%d" text-anchor="end">%g</text><text x="%d" y="%d" text-anchor="end">0</text>`+"\n", left-4, y0+10, ymax, left-4, y0+ph)
		fmt.Fprintf(&b, `<text x="%d" y="%d" text-anchor="end">%.0f s</text>`+"\n", w-20, y0+ph+14, tmax)
		for _, s := range lines {
			var pts []string
			for _, pt := range s.pts {
				x := float64(left) + pt[0]/tmax*float64(w-left-20)
				y := float64(y0+ph) - pt[1]/ymax*float64(ph)
				pts = append(pts, fmt.Sprintf("%.1f,%.1f", x, y))
			}
			fmt.Fprintf(&b, `<polyline fill="none" stroke="%s" stroke-width="1.5" points="%s"/>`+"\n", s.color, strings.Join(pts, " "))
		}
	}
	b.WriteString("</svg>\n")
	return b.String()
}

func niceCeil(v float64) float64 {
	if v <= 0 {
		return 1
	}
	p := math.Pow(10, math.Floor(math.Log10(v)))
	for _, m := range []float64{1, 2, 2.5, 5, 10} {
		if m*p >= v {
			return m * p
		}
	}
	return 10 * p
}
