package test

import (
	"bytes"
	"encoding/json"
	"errors"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"golang.org/x/sys/unix"

	"github.com/adaptfs/adaptfs/test/harness"
)

// TestStatsFiles: .adaptstats is a read-only directory at the mount root;
// its files read whole with cat, head, small dd blocks and jq; writes fail;
// nothing of it reaches the bucket; a real object of that name is hidden;
// the figures agree with the server and between stats.json and metrics.
func TestStatsFiles(t *testing.T) {
	r := newRig(t, "")
	dir := r.path(".adaptstats")
	// A real object of that name in the bucket is hidden, not shown twice.
	if _, err := r.srv.Client.PutObject(t.Context(), &s3.PutObjectInput{Bucket: aws.String(r.bucket), Key: aws.String(".adaptstats"), Body: strings.NewReader("real")}); err != nil {
		t.Fatal(err)
	}
	src := filepath.Join(t.TempDir(), "src")
	harness.GenTreeTB(t, src, harness.TreeSpec{Seed: 9, SmallFiles: 20, SmallMin: 1, SmallMax: 32 << 10, MediumFiles: 2, MediumMin: 6 << 20, MediumMax: 12 << 20, Depth: 2})
	run(t, "cp", "-r", src, r.path("data"))
	r.sync(t)

	ls := run(t, "ls", "-la", r.mnt.Dir)
	if strings.Count(ls, ".adaptstats") != 1 || !strings.Contains(ls, "dr-xr-xr-x") {
		t.Errorf("ls -la shows .adaptstats not once as a read-only directory:\n%s", ls)
	}
	if st, err := os.Stat(dir); err != nil || !st.IsDir() {
		t.Fatalf(".adaptstats is not a directory: %v", err)
	}
	names := strings.Fields(run(t, "ls", dir))
	for _, want := range []string{"summary", "stats.json", "network", "params", "events", "uploads", "metrics", "config"} {
		if !strings.Contains(" "+strings.Join(names, " ")+" ", " "+want+" ") {
			t.Errorf(".adaptstats lacks %s (has %v)", want, names)
		}
	}

	// Reads: whole, a prefix, in 7-byte blocks, through jq.
	whole := run(t, "cat", filepath.Join(dir, "stats.json"))
	if head := run(t, "head", "-c", "10", filepath.Join(dir, "stats.json")); len(head) != 10 || !strings.HasPrefix(whole, head[:1]) {
		t.Errorf("head -c 10 gave %q", head)
	}
	dd := exec.Command("dd", "if="+filepath.Join(dir, "stats.json"), "bs=7", "status=none")
	small, err := dd.Output()
	if err != nil {
		t.Fatal(err)
	}
	var viaDD, viaCat map[string]any
	if err := json.Unmarshal(small, &viaDD); err != nil {
		t.Fatalf("stats.json read in 7-byte blocks is not one JSON document: %v\n%s", err, small)
	}
	json.Unmarshal([]byte(whole), &viaCat)
	if v := run(t, "jq", "-r", ".schema_version", filepath.Join(dir, "stats.json")); strings.TrimSpace(v) != "1" {
		t.Errorf("jq .schema_version = %q", v)
	}
	for _, name := range []string{"summary", "params", "metrics", "config"} {
		if out := run(t, "cat", filepath.Join(dir, name)); len(out) == 0 {
			t.Errorf("%s is empty", name)
		}
	}

	// The figures against the server: files and bytes.
	got, _ := r.objects(t)
	var files, size int64
	for k, s := range got {
		if strings.HasPrefix(k, "data/") {
			files++
			size += s.Size
		}
	}
	d := readStats(t, r.mnt.Dir)
	if d.Queue.UploadedFiles != files || d.Queue.UploadedBytes != size {
		t.Errorf("stats.json: %d files, %d bytes uploaded; the server has %d files, %d bytes", d.Queue.UploadedFiles, d.Queue.UploadedBytes, files, size)
	}
	if d.Queue.PendingFiles != 0 || len(d.Uploads) != 0 {
		t.Errorf("after sync, stats.json still has pending uploads: %+v %+v", d.Queue, d.Uploads)
	}

	// metrics: Prometheus text that agrees with stats.json.
	mb, err := os.ReadFile(filepath.Join(dir, "metrics"))
	if err != nil {
		t.Fatal(err)
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(bytes.NewReader(mb))
	if err != nil {
		t.Fatalf("metrics do not parse as Prometheus text: %v\n%s", err, mb)
	}
	metric := func(name string) float64 {
		f, ok := families[name]
		if !ok || len(f.Metric) == 0 {
			t.Fatalf("metrics lack %s", name)
		}
		m := f.Metric[0]
		switch {
		case m.Counter != nil:
			return m.Counter.GetValue()
		case m.Gauge != nil:
			return m.Gauge.GetValue()
		}
		return 0
	}
	if v := metric("adaptfs_uploaded_bytes_total"); int64(v) != d.Queue.UploadedBytes {
		t.Errorf("metrics: adaptfs_uploaded_bytes_total %v, stats.json %d", v, d.Queue.UploadedBytes)
	}
	if v := metric("adaptfs_uploaded_files_total"); int64(v) != d.Queue.UploadedFiles {
		t.Errorf("metrics: adaptfs_uploaded_files_total %v, stats.json %d", v, d.Queue.UploadedFiles)
	}
	if h := families["adaptfs_part_body_bytes"]; h == nil || h.Metric[0].Histogram.GetSampleCount() == 0 {
		t.Error("metrics: no part size histogram samples after uploads")
	}

	// config: the effective configuration, no secrets.
	cfg := run(t, "cat", filepath.Join(dir, "config"))
	if strings.Contains(cfg, r.srv.SecretKey) || strings.Contains(cfg, r.srv.AccessKey) {
		t.Error("config shows the credentials")
	}
	if !strings.Contains(cfg, "max_concurrency") {
		t.Errorf("config is not the effective configuration:\n%s", cfg)
	}

	// Writes of every kind fail, and nothing reaches the bucket.
	for _, tc := range []struct {
		what string
		op   func() error
		want syscall.Errno
	}{
		{"write a stats file", func() error { return os.WriteFile(filepath.Join(dir, "summary"), []byte("x"), 0o644) }, syscall.EROFS},
		{"create a file inside", func() error { return os.WriteFile(filepath.Join(dir, "new"), []byte("x"), 0o644) }, syscall.EROFS},
		{"remove a stats file", func() error { return os.Remove(filepath.Join(dir, "summary")) }, syscall.EROFS},
		{"mkdir inside", func() error { return os.Mkdir(filepath.Join(dir, "d"), 0o755) }, syscall.EROFS},
		{"rename a stats file", func() error { return os.Rename(filepath.Join(dir, "summary"), filepath.Join(dir, "s2")) }, syscall.EROFS},
		{"move a file in", func() error { return os.Rename(r.path("data"), filepath.Join(dir, "data")) }, syscall.EROFS},
		{"rmdir it", func() error { return syscall.Rmdir(dir) }, syscall.EPERM},
		{"rename it", func() error { return os.Rename(dir, r.path("stats2")) }, syscall.EPERM},
		{"truncate a stats file", func() error { return os.Truncate(filepath.Join(dir, "params"), 0) }, syscall.EROFS},
	} {
		if err := tc.op(); !errors.Is(err, tc.want) {
			t.Errorf("%s: got %v, want %v", tc.what, err, tc.want)
		}
	}
	got, _ = r.objects(t)
	for k := range got {
		if strings.HasPrefix(k, ".adaptstats/") || k == "stats2" {
			t.Errorf("the bucket has %s: the stats directory leaked into it", k)
		}
	}
	if b, _ := os.ReadFile(r.mnt.LogPath); !bytes.Contains(b, []byte("hidden by adaptfs's stats directory")) {
		t.Error("the shadowed .adaptstats object was not logged")
	}
}

// TestStatsWatch: `adaptfs stats --watch` in a terminal (tmux) redraws the
// summary in place.
func TestStatsWatch(t *testing.T) {
	r := newRig(t, "")
	if err := os.WriteFile(r.path("f.bin"), bytes.Repeat([]byte{7}, 8<<20), 0o644); err != nil {
		t.Fatal(err)
	}
	r.sync(t)
	session := "adaptfs-watch-" + filepath.Base(filepath.Dir(r.mnt.Dir))
	run(t, "tmux", "new-session", "-d", "-s", session, "-x", "120", "-y", "30",
		shared.bin+" stats --watch --interval 300ms "+r.mnt.Dir)
	t.Cleanup(func() { exec.Command("tmux", "kill-session", "-t", session).Run() })
	capture := func() string {
		return run(t, "tmux", "capture-pane", "-p", "-t", session)
	}
	var first string
	for i := 0; i < 50 && !strings.Contains(first, "params"); i++ {
		time.Sleep(100 * time.Millisecond)
		first = capture()
	}
	if !strings.Contains(first, "adaptfs — up") || !strings.Contains(first, "1 uploaded") {
		t.Fatalf("the watch screen lacks the summary:\n%s", first)
	}
	if strings.Count(first, "adaptfs — up") != 1 {
		t.Errorf("the screen is not redrawn in place (summary %d times):\n%s", strings.Count(first, "adaptfs — up"), first)
	}
	time.Sleep(1500 * time.Millisecond)
	second := capture()
	if second == first {
		t.Errorf("the screen did not change in 1.5 s (no refresh):\n%s", second)
	}
	if !strings.Contains(second, "rate ") {
		t.Errorf("no rate sparkline after a few refreshes:\n%s", second)
	}
}

// TestMetricsAddr: --metrics-addr serves the same metrics over HTTP.
func TestMetricsAddr(t *testing.T) {
	addr := closedPort(t)
	r := newRig(t, "", "--metrics-addr", addr)
	if err := os.WriteFile(r.path("m.bin"), bytes.Repeat([]byte{1}, 6<<20), 0o644); err != nil {
		t.Fatal(err)
	}
	r.sync(t)
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatalf("/metrics does not parse: %v", err)
	}
	f := families["adaptfs_uploaded_bytes_total"]
	if f == nil || f.Metric[0].Counter.GetValue() != 6<<20 {
		t.Fatalf("/metrics: adaptfs_uploaded_bytes_total = %v, want %d", f, 6<<20)
	}
}

// TestFileStateXattr: user.adaptfs.state says where one file is.
func TestFileStateXattr(t *testing.T) {
	r := newRig(t, "", "-o", "write_back_delay=10m")
	p := r.path("f.txt")
	if err := os.WriteFile(p, []byte("hello"), 0o644); err != nil {
		t.Fatal(err)
	}
	state := func() string {
		buf := make([]byte, 256)
		n, err := unix.Getxattr(p, "user.adaptfs.state", buf)
		if err != nil {
			t.Fatalf("getxattr user.adaptfs.state: %v", err)
		}
		return string(buf[:n])
	}
	if s := state(); s != "staged" {
		t.Errorf("before the upload: %q, want staged", s)
	}
	if up := readStats(t, r.mnt.Dir).Uploads; len(up) != 1 || up[0].Path != "f.txt" || up[0].State != "queued" {
		t.Errorf("stats.json uploads before the upload: %+v", up)
	}
	r.sync(t)
	if s := state(); s != "uploaded" {
		t.Errorf("after sync: %q, want uploaded", s)
	}
}
