// Package scenario runs adaptfs benchmark scenarios: a schedule of link
// conditions on the emulated WAN link (package wan) and a data set to copy
// into the mount. It is independent of adaptfs's own packages: it drives the
// binary and reads its control attributes, like a user would.
package scenario

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/BurntSushi/toml"

	"github.com/adaptfs/adaptfs/test/harness"
)

// Step is the link from At on. Absent fields keep the previous step's value.
type Step struct {
	At       duration `toml:"at"`
	RateMbit *float64 `toml:"rate_mbit"`
	RTTms    *float64 `toml:"rtt_ms"`
	LossPct  *float64 `toml:"loss_pct"`
	JitterMs *float64 `toml:"jitter_ms"`
	QueueMs  *float64 `toml:"queue_ms"`
}

// Link is one fully specified link condition.
type Link struct {
	At       time.Duration `json:"at_seconds"`
	RateMbit float64       `json:"rate_mbit"`
	RTTms    float64       `json:"rtt_ms"`
	LossPct  float64       `json:"loss_pct"`
	JitterMs float64       `json:"jitter_ms"`
	QueueMs  float64       `json:"queue_ms"`
}

// Volatile generates a seeded random walk of link conditions.
type Volatile struct {
	Seed        uint64   `toml:"seed"`
	Every       duration `toml:"every"`
	Duration    duration `toml:"duration"`
	MinRateMbit float64  `toml:"min_rate_mbit"`
	MaxRateMbit float64  `toml:"max_rate_mbit"`
	MinRTTms    float64  `toml:"min_rtt_ms"`
	MaxRTTms    float64  `toml:"max_rtt_ms"`
	MaxLossPct  float64  `toml:"max_loss_pct"`
	QueueMs     float64  `toml:"queue_ms"`
}

// Data is the data set copied with cp -r.
type Data struct {
	Seed        uint64 `toml:"seed"`
	LargeFiles  int    `toml:"large_files"`
	LargeSizeMB int64  `toml:"large_size_mb"`
	MediumFiles int    `toml:"medium_files"`
	MediumMinMB int64  `toml:"medium_min_mb"`
	MediumMaxMB int64  `toml:"medium_max_mb"`
	SmallFiles  int    `toml:"small_files"`
	SmallMinKB  int64  `toml:"small_min_kb"`
	SmallMaxKB  int64  `toml:"small_max_kb"`
	Depth       int    `toml:"depth"`
	// Text makes the files compressible text (log, CSV, JSON) instead of
	// random bytes.
	Text bool `toml:"text"`
}

// Scenario is one benchmark scenario file.
type Scenario struct {
	Name        string   `toml:"name"`
	Description string   `toml:"description"`
	CongCtl     string   `toml:"congctl"`
	Timeout     duration `toml:"timeout"`
	Data        Data     `toml:"data"`
	Steps       []Step   `toml:"step"`
	// Configs names the configurations this scenario runs (default: the
	// general ones of Configs; see also ExtraConfigs).
	Configs  []string  `toml:"configs"`
	Volatile *Volatile `toml:"volatile"`

	schedule []Link
}

type duration struct{ time.Duration }

func (d *duration) UnmarshalText(b []byte) error {
	v, err := time.ParseDuration(string(b))
	if err != nil {
		return fmt.Errorf("%q is not a duration like \"20s\"", b)
	}
	d.Duration = v
	return nil
}

// Load reads and checks a scenario file.
func Load(path string) (*Scenario, error) {
	var s Scenario
	md, err := toml.DecodeFile(path, &s)
	if err != nil {
		return nil, fmt.Errorf("scenario %s: %w", path, err)
	}
	if und := md.Undecoded(); len(und) > 0 {
		return nil, fmt.Errorf("scenario %s: unknown key %q", path, und[0].String())
	}
	if s.Name == "" {
		s.Name = strings.TrimSuffix(filepath.Base(path), ".toml")
	}
	if s.CongCtl == "" {
		s.CongCtl = "cubic"
	}
	if s.Timeout.Duration == 0 {
		s.Timeout.Duration = 15 * time.Minute
	}
	if err := s.expand(); err != nil {
		return nil, fmt.Errorf("scenario %s: %w", path, err)
	}
	if s.Data.LargeFiles+s.Data.MediumFiles+s.Data.SmallFiles == 0 {
		return nil, fmt.Errorf("scenario %s: [data] copies no files", path)
	}
	return &s, nil
}

// LoadDir loads every *.toml in dir, sorted by name.
func LoadDir(dir string) ([]*Scenario, error) {
	paths, err := filepath.Glob(filepath.Join(dir, "*.toml"))
	if err != nil {
		return nil, err
	}
	sort.Strings(paths)
	var out []*Scenario
	for _, p := range paths {
		s, err := Load(p)
		if err != nil {
			return nil, err
		}
		out = append(out, s)
	}
	return out, nil
}

func (s *Scenario) expand() error {
	if s.Volatile != nil {
		if len(s.Steps) > 0 {
			return errors.New("use either [[step]] or [volatile], not both")
		}
		s.schedule = s.Volatile.walk()
		return nil
	}
	if len(s.Steps) == 0 {
		return errors.New("no [[step]]")
	}
	var cur Link
	cur.QueueMs = 50
	for i, st := range s.Steps {
		if i == 0 && (st.RateMbit == nil || st.RTTms == nil) {
			return errors.New("the first step needs rate_mbit and rtt_ms")
		}
		if i > 0 && st.At.Duration <= s.Steps[i-1].At.Duration {
			return fmt.Errorf("step %d: at %v is not after the previous step", i+1, st.At.Duration)
		}
		cur.At = st.At.Duration
		for _, f := range []struct {
			from *float64
			to   *float64
		}{{st.RateMbit, &cur.RateMbit}, {st.RTTms, &cur.RTTms}, {st.LossPct, &cur.LossPct}, {st.JitterMs, &cur.JitterMs}, {st.QueueMs, &cur.QueueMs}} {
			if f.from != nil {
				*f.to = *f.from
			}
		}
		if cur.RateMbit <= 0 || cur.RTTms < 0 || cur.LossPct < 0 || cur.LossPct >= 100 {
			return fmt.Errorf("step %d: rate must be > 0, rtt >= 0, loss within [0, 100)", i+1)
		}
		s.schedule = append(s.schedule, cur)
	}
	return nil
}

// walk generates the volatile schedule: every Every, the rate moves by a
// factor within [0.5, 2] and the RTT by ±30 %, clamped to the bounds.
func (v *Volatile) walk() []Link {
	rng := rand.New(rand.NewPCG(v.Seed, 0x5eed))
	every := v.Every.Duration
	if every <= 0 {
		every = 5 * time.Second
	}
	total := v.Duration.Duration
	if total <= 0 {
		total = 10 * time.Minute
	}
	q := v.QueueMs
	if q == 0 {
		q = 50
	}
	rate := (v.MinRateMbit + v.MaxRateMbit) / 2
	rtt := (v.MinRTTms + v.MaxRTTms) / 2
	var out []Link
	for at := time.Duration(0); at < total; at += every {
		out = append(out, Link{At: at, RateMbit: rate, RTTms: rtt, LossPct: rng.Float64() * v.MaxLossPct, QueueMs: q})
		rate = clamp(rate*(0.5+1.5*rng.Float64()), v.MinRateMbit, v.MaxRateMbit)
		rtt = clamp(rtt*(0.7+0.6*rng.Float64()), v.MinRTTms, v.MaxRTTms)
	}
	return out
}

func clamp(x, lo, hi float64) float64 { return max(lo, min(hi, x)) }

// Schedule returns the link conditions in order.
func (s *Scenario) Schedule() []Link { return s.schedule }

// At returns the link condition in force at t.
func (s *Scenario) At(t time.Duration) Link {
	cur := s.schedule[0]
	for _, l := range s.schedule {
		if l.At > t {
			break
		}
		cur = l
	}
	return cur
}

// CapacityBytes is how many bytes the schedule's link rate can carry in
// [0, d): the denominator of link efficiency.
func (s *Scenario) CapacityBytes(d time.Duration) float64 {
	var total float64
	for i, l := range s.schedule {
		end := d
		if i+1 < len(s.schedule) && s.schedule[i+1].At < d {
			end = s.schedule[i+1].At
		}
		if l.At >= d {
			break
		}
		total += l.RateMbit * 1e6 / 8 * (end - l.At).Seconds()
	}
	return total
}

// TreeSpec is the harness spec of the scenario's data set.
func (d Data) TreeSpec() harness.TreeSpec {
	depth := d.Depth
	if depth == 0 {
		depth = 3
	}
	return harness.TreeSpec{
		Seed:       d.Seed,
		LargeFiles: d.LargeFiles, LargeSize: d.LargeSizeMB << 20,
		MediumFiles: d.MediumFiles, MediumMin: d.MediumMinMB << 20, MediumMax: max(d.MediumMaxMB, d.MediumMinMB) << 20,
		SmallFiles: d.SmallFiles, SmallMin: max(d.SmallMinKB<<10, 1), SmallMax: max(d.SmallMaxKB, d.SmallMinKB) << 10,
		Depth: depth, Text: d.Text,
	}
}

// Dir returns the scenarios folder of the module.
func Dir() (string, error) {
	root, err := harness.ModuleRoot()
	if err != nil {
		return "", err
	}
	dir := filepath.Join(root, "test", "scenarios")
	if _, err := os.Stat(dir); err != nil {
		return "", fmt.Errorf("scenarios: %w", err)
	}
	return dir, nil
}
