package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/adaptfs/adaptfs/adapt"
	"github.com/adaptfs/adaptfs/s3backend"
)

// profileFile is the learned link profile of the endpoint, kept in the
// staging directory (which is per endpoint, bucket and prefix).
const profileFile = "link-profile.json"

type wallClock struct{}

func (wallClock) Now() time.Time { return time.Now() }

// sampleBridge hands the S3 client's measurements to the controller, and
// those of successful bulk requests to the stats histograms (if any).
type sampleBridge struct {
	c     *adapt.Controller
	parts interface{ ObservePart(int64, time.Duration) }
}

var _ s3backend.Sampler = sampleBridge{}

func (b sampleBridge) Observe(s s3backend.Sample) {
	if b.parts != nil && s.Err == nil && (s.Op == s3backend.OpPart || s.Op == s3backend.OpPut) {
		b.parts.ObservePart(s.Bytes, s.End.Sub(s.Start))
	}
	b.c.Observe(adapt.RequestSample{
		Bulk:  s.Op == s3backend.OpPart || s.Op == s3backend.OpPut,
		Bytes: s.Bytes,
		Start: s.Start, BodyDone: s.BodyDone, FirstByte: s.FirstByte, End: s.End,
		Failed: s.Err != nil,
		Retry:  s.Attempt > 1,
	})
}

func (b sampleBridge) BodyProgress(n int64, at time.Time) { b.c.Progress(n, at) }

func loadProfile(dir string, log *slog.Logger) *adapt.Profile {
	b, err := os.ReadFile(filepath.Join(dir, profileFile))
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	var p adapt.Profile
	if err == nil {
		err = json.Unmarshal(b, &p)
	}
	if err != nil || p.Version != adapt.ProfileVersion {
		log.Warn("ignoring the saved link profile", "file", filepath.Join(dir, profileFile), "err", err, "version", p.Version)
		return nil
	}
	log.Info("starting from the link profile learned last time", "part_size_bytes", p.PartSizeBytes, "concurrency", p.Concurrency, "updated_at", p.UpdatedAt)
	return &p
}

func saveProfile(dir string, p adapt.Profile) error {
	b, err := json.MarshalIndent(p, "", "  ")
	if err != nil {
		return err
	}
	tmp := filepath.Join(dir, profileFile+".tmp")
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		return fmt.Errorf("save link profile: %w", err)
	}
	return os.Rename(tmp, filepath.Join(dir, profileFile))
}

// tcpSource is where the controller's TCP_INFO samples come from.
type tcpSource interface{ TCPInfo() []s3backend.TCPInfo }

// runController drives the controller: every monitoring interval it reads
// TCP_INFO, ticks, and logs new decisions; changed (if not nil) is called
// when the parameters changed. Every minute and at the end it saves the
// profile, with the compression level of levels (if not nil).
func runController(ctx context.Context, c *adapt.Controller, levels *adapt.LevelChooser, interval time.Duration, tcp tcpSource, inFlight func() int, changed func(), dir string, log *slog.Logger) {
	profile := func() adapt.Profile {
		p := c.Profile()
		if levels != nil {
			p.CompressionLevel = levels.State().Name
		}
		return p
	}
	tick := time.NewTicker(interval)
	defer tick.Stop()
	lastSave := time.Now()
	var lastSeq uint64
	defer func() {
		if err := saveProfile(dir, profile()); err != nil {
			log.Warn("could not save the link profile", "err", err)
		}
	}()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		for _, ti := range tcp.TCPInfo() {
			c.ObserveTCP(adapt.TCPSample{
				Conn: ti.Conn, At: ti.At, SRTT: ti.SRTT, RTTVar: ti.RTTVar, MinRTT: ti.MinRTT,
				SegsOut: ti.SegsOut, TotalRetrans: ti.TotalRetrans,
				DeliveryRateBps: ti.DeliveryRateBps, Cwnd: ti.Cwnd,
			})
		}
		before := c.Params()
		c.Tick(inFlight())
		if changed != nil && c.Params() != before {
			changed()
		}
		for _, e := range c.Snapshot().Events {
			if e.Seq > lastSeq {
				log.Info("adaptation", "param", e.Param, "old", e.Old, "new", e.New, "reason", e.Reason, "rolled_back", e.RolledBack)
				lastSeq = e.Seq
			}
		}
		if time.Since(lastSave) > time.Minute {
			if err := saveProfile(dir, profile()); err != nil {
				log.Warn("could not save the link profile", "err", err)
			}
			lastSave = time.Now()
		}
	}
}
