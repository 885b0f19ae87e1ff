package test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/adaptfs/adaptfs/adapt"
	"github.com/adaptfs/adaptfs/stats"
	"github.com/adaptfs/adaptfs/test/harness"
	"github.com/adaptfs/adaptfs/test/wan"
)

// newWANRig is newRig with the server behind an emulated link.
func newWANRig(t *testing.T, lc wan.Config, extra ...string) (*rig, *wan.Link) {
	t.Helper()
	requireFuse(t)
	wan.Require(t)
	link := wan.UpForTest(t, lc)
	srv := serverBehind(t, link)
	r := &rig{srv: srv, bucket: "adaptfs-wan", prefix: ""}
	harness.CreateBucketTB(t, srv, r.bucket)
	r.mnt = r.mount(t, extra...)
	return r, link
}

// serverBehind starts versitygw in link's server namespace.
func serverBehind(t *testing.T, link *wan.Link) *harness.Server {
	t.Helper()
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
	return srv
}

// controllerEvents reads the adaptation events from .adaptstats/events
// (JSON lines).
func controllerEvents(t *testing.T, mnt string) []adapt.Event {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(mnt, ".adaptstats", "events"))
	if err != nil {
		t.Fatalf("read .adaptstats/events: %v", err)
	}
	var out []adapt.Event
	dec := json.NewDecoder(bytes.NewReader(b))
	for dec.More() {
		var e adapt.Event
		if err := dec.Decode(&e); err != nil {
			t.Fatalf(".adaptstats/events is not JSON lines: %v\n%s", err, b)
		}
		out = append(out, e)
	}
	return out
}

// readStats parses .adaptstats/stats.json.
func readStats(t testing.TB, mnt string) stats.Doc {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(mnt, ".adaptstats", "stats.json"))
	if err != nil {
		t.Fatalf("read .adaptstats/stats.json: %v", err)
	}
	var d stats.Doc
	if err := json.Unmarshal(b, &d); err != nil {
		t.Fatalf("stats.json: %v\n%s", err, b)
	}
	return d
}

// statsWatch samples stats.json every second until stopped.
type statsWatch struct {
	stop chan struct{}
	done chan struct{}
	docs []stats.Doc
}

func watchStats(t *testing.T, mnt string) *statsWatch {
	w := &statsWatch{stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(w.done)
		for {
			b, err := os.ReadFile(filepath.Join(mnt, ".adaptstats", "stats.json"))
			var d stats.Doc
			if err == nil && json.Unmarshal(b, &d) == nil {
				w.docs = append(w.docs, d)
			}
			select {
			case <-w.stop:
				return
			case <-time.After(time.Second):
			}
		}
	}()
	return w
}

func (w *statsWatch) end() []stats.Doc { close(w.stop); <-w.done; return w.docs }

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

	watch := watchStats(t, r.mnt.Dir)
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
	var reacted *adapt.Event
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

	// What .adaptstats showed while it ran.
	docs := watch.end()
	var rises, listed int
	var partsDone []int64 // big.bin's bytes confirmed by S3, per sample that lists it
	for i, d := range docs {
		if i > 0 && d.Requests.BodyBytes > docs[i-1].Requests.BodyBytes {
			rises++
		}
		for _, u := range d.Uploads {
			if u.Path == "big.bin" {
				listed++
				partsDone = append(partsDone, u.UploadedBytes)
			}
		}
	}
	if len(partsDone) < 2 || partsDone[len(partsDone)-1] <= partsDone[0] {
		t.Errorf("big.bin's uploaded bytes in stats.json did not rise: %v", partsDone)
	}
	if rises < len(docs)/2 {
		t.Errorf("request body bytes rose in only %d of %d stats.json samples", rises, len(docs))
	}
	if listed == 0 {
		t.Error("big.bin never appeared in stats.json's uploads while it was uploading")
	}
	final := readStats(t, r.mnt.Dir)
	for _, u := range final.Uploads {
		t.Errorf("after sync, uploads still lists %+v", u)
	}
	if final.Queue.UploadedBytes != got["big.bin"].Size || final.Queue.UploadedFiles != 1 {
		t.Errorf("stats.json says %d bytes in %d file(s) uploaded, the server has %d in 1",
			final.Queue.UploadedBytes, final.Queue.UploadedFiles, got["big.bin"].Size)
	}
	if final.Network == nil || final.Network.BottleneckBandwidthBps <= 0 {
		t.Errorf("stats.json has no link estimate after a 400 MiB upload: %+v", final.Network)
	}
}

// TestProbe: `adaptfs probe` measures the link with a temporary upload
// (nothing stays in the bucket), prints what it measured, saves the
// endpoint's profile, and the next mount starts from it. A missing bucket
// is an error that names it.
func TestProbe(t *testing.T) {
	requireFuse(t)
	wan.Require(t)
	link := wan.UpForTest(t, wan.Config{Name: "probetest", RateMbit: 50, RTTms: 40})
	srv := serverBehind(t, link)
	harness.CreateBucketTB(t, srv, "probed")
	staging := filepath.Join(t.TempDir(), "staging")
	out, err := harness.RunAdaptfs(t.Context(), shared.bin, srv, "probe", "--staging-dir", staging, "--duration", "8s", "probed")
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("adaptfs probe:\n%s", out)
	num := func(re string) float64 {
		t.Helper()
		m := regexp.MustCompile(re).FindSubmatch(out)
		if m == nil {
			t.Fatalf("probe output lacks %q", re)
		}
		v, err := strconv.ParseFloat(string(m[1]), 64)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	if g := num(`goodput\s+([0-9.]+) Mbit/s`); g < 20 || g > 52 {
		t.Errorf("goodput %.1f Mbit/s on a 50 Mbit/s link", g)
	}
	if rtt := num(`propagation RTT\s+([0-9.]+) ms`); rtt < 38 || rtt > 80 {
		t.Errorf("propagation RTT %.1f ms on a 40 ms link", rtt)
	}
	partMiB := num(`start parameters\s+part size ([0-9]+) MiB`)
	conc := num(`start parameters\s+part size [0-9]+ MiB, concurrency ([0-9]+)`)
	if _, err := os.Stat(filepath.Join(staging, "link-profile.json")); err != nil {
		t.Errorf("no profile saved: %v", err)
	}
	// Nothing stays behind: no object, no multipart upload.
	sums, markers, err := harness.BucketContents(t.Context(), srv.Client, "probed", "")
	if err != nil {
		t.Fatal(err)
	}
	if len(sums)+len(markers) > 0 {
		t.Errorf("the probe left objects: %v %v", sums, markers)
	}
	if ups, err := harness.ListMultipartUploads(t.Context(), srv.Client, "probed"); err != nil || len(ups) > 0 {
		t.Errorf("the probe left multipart uploads: %v (%v)", ups, err)
	}

	// The next mount on that staging directory starts where the probe ended.
	m := harness.MountTB(t, harness.MountOptions{Bin: shared.bin, Server: srv, BucketPath: "probed", StagingDir: staging})
	log := m.LogTail(50)
	want := fmt.Sprintf("part_size_bytes=%d concurrency=%d", int64(partMiB)<<20, int(conc))
	if !strings.Contains(log, "starting from the link profile learned last time") || !strings.Contains(log, want) {
		t.Errorf("the mount did not start from the probed profile (%s):\n%s", want, log)
	}

	// A bucket that does not exist: an error that names it.
	out, err = harness.RunAdaptfs(t.Context(), shared.bin, srv, "probe", "--staging-dir", t.TempDir(), "--duration", "2s", "no-such-bucket")
	if err == nil || !strings.Contains(string(out), "no-such-bucket") {
		t.Errorf("probe of a missing bucket: err %v, output %q", err, out)
	}
}
