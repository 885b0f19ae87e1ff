package test

import (
	"encoding/json"
	"fmt"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/adaptfs/adaptfs/test/harness"
	"github.com/adaptfs/adaptfs/test/wan"
)

// newWANRig is newRig with the server behind an emulated link.
func newWANRig(t *testing.T, lc wan.Config, extra ...string) (*rig, *wan.Link) {
	t.Helper()
	requireFuse(t)
	wan.Require(t)
	link := wan.UpForTest(t, lc)
	vgw, err := harness.FindVersitygw()
	if err != nil {
		t.Fatal(err)
	}
	srv, err := harness.StartServerWith(t.Context(), vgw, t.TempDir(), harness.ServerOptions{
		Host: link.ServerAddr().String(), Wrap: []string{"ip", "netns", "exec", link.NSName()},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Stop)
	r := &rig{srv: srv, bucket: "adaptfs-wan", prefix: ""}
	harness.CreateBucketTB(t, srv, r.bucket)
	r.mnt = r.mount(t, extra...)
	return r, link
}

// controllerEvent is the part of an adaptation event the test reads.
type controllerEvent struct {
	Seq    uint64    `json:"seq"`
	At     time.Time `json:"at"`
	Param  string    `json:"param"`
	Old    float64   `json:"old"`
	New    float64   `json:"new"`
	Reason string    `json:"reason"`
}

func controllerEvents(t *testing.T, mnt string) []controllerEvent {
	t.Helper()
	buf := make([]byte, 4<<20)
	n, err := unix.Getxattr(mnt, "user.adaptfs.controller", buf)
	if err != nil {
		t.Fatalf("read the controller snapshot: %v", err)
	}
	var snap struct {
		Events []controllerEvent `json:"events"`
	}
	if err := json.Unmarshal(buf[:n], &snap); err != nil {
		t.Fatal(err)
	}
	return snap.Events
}

// TestBandwidthDropAdapts: a bandwidth drop in the middle of a real upload
// through the emulated link shows up as an adaptation event within 10 s, and
// the data arrives intact.
func TestBandwidthDropAdapts(t *testing.T) {
	// With the default min_adaptation_interval (10 s) a probe that starts
	// just before the drop is measured for 10 s before anything else may
	// change, so the first event can come ~12 s after the drop; 5 s keeps
	// the worst case under the 10 s this test demands.
	r, link := newWANRig(t, wan.Config{Name: "adapttest", RateMbit: 100, RTTms: 20}, "-o", "min_adaptation_interval=5s")
	src := filepath.Join(t.TempDir(), "big.bin")
	if err := harness.GenFile(src, 400<<20, 21); err != nil {
		t.Fatal(err)
	}
	want, _ := harness.TreeSums(filepath.Dir(src))

	cpDone := make(chan error, 1)
	go func() {
		out, err := exec.CommandContext(t.Context(), "cp", src, r.path("big.bin")).CombinedOutput()
		if err != nil {
			err = fmt.Errorf("%w: %s", err, out)
		}
		cpDone <- err
	}()
	time.Sleep(15 * time.Second) // let the controller settle on the fast link
	before := controllerEvents(t, r.mnt.Dir)
	var last uint64
	for _, e := range before {
		last = max(last, e.Seq)
	}
	drop := time.Now()
	if err := link.Set(wan.Config{RateMbit: 10, RTTms: 20}); err != nil {
		t.Fatal(err)
	}
	var reacted *controllerEvent
	for time.Since(drop) < 12*time.Second && reacted == nil {
		time.Sleep(500 * time.Millisecond)
		for _, e := range controllerEvents(t, r.mnt.Dir) {
			if e.Seq > last {
				reacted = &e
				break
			}
		}
	}
	if reacted == nil {
		t.Fatalf("no adaptation event within 12 s of the drop to 10 Mbit/s (events before: %+v)", before)
	}
	after := reacted.At.Sub(drop)
	t.Logf("first event %v after the drop: %s %.0f → %.0f (%s)", after.Round(100*time.Millisecond), reacted.Param, reacted.Old, reacted.New, reacted.Reason)
	if after > 10*time.Second {
		t.Errorf("the controller took %v to react, want ≤ 10 s", after)
	}

	if err := link.Set(wan.Config{RateMbit: 1000, RTTms: 1}); err != nil { // finish quickly
		t.Fatal(err)
	}
	if err := <-cpDone; err != nil {
		t.Fatal(err)
	}
	r.sync(t)
	got, _ := r.objects(t)
	requireSame(t, "object after the drop", map[string]harness.Sum{"big.bin": want["big.bin"]}, got)
}
