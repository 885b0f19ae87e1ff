package adapt

import (
	"fmt"
	"os"
	"testing"
	"time"
)

func TestExplore(t *testing.T) {
	if os.Getenv("EXPLORE") == "" {
		t.Skip()
	}
	cfg := DefaultConfig()
	cfg.MaxConcurrency = 16
	cfg.Concurrency = 4
	clock := &simClock{t: time.Unix(1e9, 0)}
	ctl := NewController(cfg, clock, nil)
	fast := simLink{RateMbit: 200, RTT: 20 * time.Millisecond, StreamCapMbit: 25, QueueBytes: 512 << 10}
	slow := fast
	slow.RateMbit = 20
	link := func(e time.Duration) simLink {
		if e >= 180*time.Second && e < 300*time.Second {
			return slow
		}
		return fast
	}
	s := newSim(simConfig{link: link, seed: 1}, clock, ctl)
	s.run(420*time.Second, func() {
		sn := ctl.Snapshot()
		e := sn.Estimates
		fmt.Printf("t=%5.0f c=%2d P=%3dMiB g=%6.1f btl=%6.1f infl=%5.2f rtt=%5.1fms prop=%5.1f ps=%5.1f ovh=%4.0fms inF=%4.1f al=%v err=%.3f tgtP=%d %s %s\n",
			s.elapsed().Seconds(), sn.Params.Concurrency, sn.Params.PartSizeBytes/MiB, e.GoodputBps/1e6, e.BottleneckBandwidthBps/1e6,
			e.RTTInflation, e.SmoothedRTTSeconds*1000, e.PropagationRTTSeconds*1000, e.PerStreamBps/1e6, e.RequestOverheadSeconds*1000, e.InFlight, e.AppLimited, e.ErrorRate, e.TargetPartSizeBytes/MiB, sn.Health, sn.Trend.Direction)
	})
	for _, e := range ctl.Snapshot().Events {
		mg := "nil"
		if e.MeasuredGain != nil {
			mg = fmt.Sprintf("%.2f", *e.MeasuredGain)
		}
		fmt.Printf("%5.0f %s %v->%v rb=%v pred=%.2f meas=%s %s\n", e.At.Sub(time.Unix(1e9, 0)).Seconds(), e.Param, e.Old, e.New, e.RolledBack, e.PredictedGain, mg, e.Reason)
	}
}
