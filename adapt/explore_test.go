package adapt

import (
	"fmt"
	"os"
	"testing"
	"time"
)

func TestExplore(t *testing.T) {
	sc := os.Getenv("EXPLORE")
	if sc == "" {
		t.Skip()
	}
	cfg := DefaultConfig()
	cfg.MaxConcurrency = 16
	cfg.Concurrency = 4
	var link func(time.Duration) simLink
	tcp := false
	dur := 420 * time.Second
	switch sc {
	case "step":
		fast := simLink{RateMbit: 200, RTT: 20 * time.Millisecond, WindowBytes: 64 << 10, QueueBytes: 512 << 10}
		slow := fast
		slow.RateMbit = 20
		link = func(e time.Duration) simLink {
			if e >= 180*time.Second && e < 300*time.Second {
				return slow
			}
			return fast
		}
	case "rtt10", "rtt150", "err0", "err2":
		l := simLink{RateMbit: 100, RTT: 10 * time.Millisecond, QueueBytes: 256 << 10}
		if sc != "rtt10" {
			l.RTT = 150 * time.Millisecond
		}
		if sc == "err2" {
			l.ErrRate = 0.02
		}
		link = constLink(l)
	case "loss":
		cfg.MaxConcurrency = 32
		link = constLink(simLink{RateMbit: 100, RTT: 40 * time.Millisecond, Loss: 0.005})
		tcp = true
	case "lossnotcp":
		cfg.MaxConcurrency = 32
		link = constLink(simLink{RateMbit: 100, RTT: 40 * time.Millisecond, Loss: 0.005})
	case "server":
		link = constLink(simLink{RateMbit: 200, RTT: 20 * time.Millisecond, WindowBytes: 64 << 10, ServerKnee: 4, ServerDecay: 0.6})
	}
	clock := &simClock{t: time.Unix(1e9, 0)}
	ctl := NewController(cfg, clock, nil)
	s := newSim(simConfig{link: link, seed: 1, tcp: tcp}, clock, ctl)
	s.run(dur, func() {
		sn := ctl.Snapshot()
		e := sn.Estimates
		if int(s.elapsed().Seconds())%6 != 0 {
			return
		}
		fmt.Printf("t=%5.0f c=%2d P=%3dMiB g=%6.1f btl=%6.1f infl=%5.2f rtt=%5.1fms prop=%5.1f src=%s ps=%5.1f ovh=%4.0fms inF=%4.1f al=%v err=%.3f loss=%.4f %s tgtP=%d %s %s\n",
			s.elapsed().Seconds(), sn.Params.Concurrency, sn.Params.PartSizeBytes/MiB, e.GoodputBps/1e6, e.BottleneckBandwidthBps/1e6,
			e.RTTInflation, e.SmoothedRTTSeconds*1000, e.PropagationRTTSeconds*1000, e.RTTSource, e.PerStreamBps/1e6, e.RequestOverheadSeconds*1000, e.InFlight, e.AppLimited, e.ErrorRate, e.TCPLossRate, e.LossKind, e.TargetPartSizeBytes/MiB, sn.Health, sn.Trend.Direction)
	})
	for _, e := range ctl.Snapshot().Events {
		mg := "nil"
		if e.MeasuredGain != nil {
			mg = fmt.Sprintf("%.2f", *e.MeasuredGain)
		}
		fmt.Printf("%5.0f %s %v->%v rb=%v pred=%.2f meas=%s %s\n", e.At.Sub(time.Unix(1e9, 0)).Seconds(), e.Param, e.Old, e.New, e.RolledBack, e.PredictedGain, mg, e.Reason)
	}
	fmt.Printf("goodput %.1f Mbit/s\n", s.goodputMbit())
}
