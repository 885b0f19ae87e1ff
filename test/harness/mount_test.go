package harness

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// fakeAdaptfs builds internal/fakeadaptfs, which speaks the adaptfs
// command line over a go-fuse loopback of the staging directory.
func fakeAdaptfs(t *testing.T) string {
	t.Helper()
	if _, err := os.Stat("/dev/fuse"); err != nil {
		t.Skipf("no /dev/fuse: %v", err)
	}
	root, err := ModuleRoot()
	if err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(t.TempDir(), "fakeadaptfs")
	out, err := runCmd(t, root, "go", "build", "-o", bin, "./test/harness/internal/fakeadaptfs")
	if err != nil {
		t.Fatalf("build fakeadaptfs: %v\n%s", err, out)
	}
	return bin
}

func mountOpts(t *testing.T, bin string, s *Server) MountOptions {
	dir := t.TempDir()
	return MountOptions{
		Bin: bin, Server: s, BucketPath: "bucket/prefix",
		Dir: filepath.Join(dir, "mnt with space"), StagingDir: filepath.Join(dir, "staging"),
	}
}

func TestMountForeground(t *testing.T) {
	bin := fakeAdaptfs(t)
	s := StartServerTB(t)
	opts := mountOpts(t, bin, s)
	m, err := StartMount(t.Context(), opts)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Kill()
	if m.PID() != m.Cmd.Process.Pid {
		t.Errorf("PID %d, child %d", m.PID(), m.Cmd.Process.Pid)
	}
	if err := os.WriteFile(filepath.Join(m.Dir, "f.txt"), []byte("through fuse"), 0o644); err != nil {
		t.Fatal(err)
	}
	if b, err := os.ReadFile(filepath.Join(opts.StagingDir, "f.txt")); err != nil || string(b) != "through fuse" {
		t.Errorf("staging has %q, %v", b, err)
	}
	if rss, err := m.RSSPeakBytes(); err != nil || rss < 1<<20 {
		t.Errorf("RSSPeakBytes = %d, %v", rss, err)
	}
	if err := m.Sync(t.Context()); err != nil {
		t.Error(err)
	}
	if _, err := StartMount(t.Context(), opts); err == nil || !strings.Contains(err.Error(), "already a mount point") {
		t.Errorf("second mount on the same dir: %v", err)
	}
	if err := m.Unmount(t.Context()); err != nil {
		t.Fatal(err)
	}
	if ok, _ := IsMountPoint(m.Dir); ok || !m.Exited() {
		t.Errorf("after Unmount: mounted %v, exited %v", ok, m.Exited())
	}
	if err := m.Unmount(t.Context()); err != nil {
		t.Errorf("second Unmount: %v", err)
	}
	if !strings.Contains(m.LogTail(5), "unmounted") {
		t.Errorf("log tail lacks the last line:\n%s", m.LogTail(5))
	}
}

func TestMountKill(t *testing.T) {
	bin := fakeAdaptfs(t)
	s := StartServerTB(t)
	m, err := StartMount(t.Context(), mountOpts(t, bin, s))
	if err != nil {
		t.Fatal(err)
	}
	m.Kill()
	if ok, err := IsMountPoint(m.Dir); ok || err != nil {
		t.Errorf("after Kill: mounted %v, %v", ok, err)
	}
	if !m.Exited() {
		t.Error("adaptfs still running after Kill")
	}
	if err := m.Unmount(t.Context()); err != nil {
		t.Errorf("Unmount after Kill: %v", err)
	}
}

func TestMountChildExitsEarly(t *testing.T) {
	bin := fakeAdaptfs(t)
	s := StartServerTB(t)
	opts := mountOpts(t, bin, s)
	opts.ExtraArgs = []string{"--fail"}
	start := time.Now()
	_, err := StartMount(t.Context(), opts)
	if err == nil || !strings.Contains(err.Error(), "fake failure: bucket not reachable") {
		t.Fatalf("want an error with the log tail, got %v", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("took %v to notice the exit", d)
	}
	if ok, _ := IsMountPoint(opts.Dir); ok {
		t.Error("left mounted")
	}
}

func TestMountBackground(t *testing.T) {
	bin := fakeAdaptfs(t)
	s := StartServerTB(t)
	opts := mountOpts(t, bin, s)
	opts.Background = true
	m, err := StartMount(t.Context(), opts)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Kill()
	if m.Cmd != nil || m.PID() == 0 {
		t.Errorf("background: Cmd %v, PID %d", m.Cmd, m.PID())
	}
	if rss, err := m.RSSPeakBytes(); err != nil || rss <= 0 {
		t.Errorf("RSSPeakBytes = %d, %v", rss, err)
	}
	pid := m.PID()
	if err := m.Unmount(t.Context()); err != nil {
		t.Fatal(err)
	}
	if ok, _ := IsMountPoint(m.Dir); ok || !processExited(pid) {
		t.Errorf("after Unmount: mounted %v, daemon exited %v", ok, processExited(pid))
	}
}

func TestMountTBCleanup(t *testing.T) {
	bin := fakeAdaptfs(t)
	s := StartServerTB(t)
	var dir string
	t.Run("inner", func(t *testing.T) {
		m := MountTB(t, MountOptions{Bin: bin, Server: s, BucketPath: "b"})
		dir = m.Dir
		if ok, _ := IsFuseMount(dir); !ok {
			t.Fatal("not mounted")
		}
	})
	if ok, _ := IsMountPoint(dir); ok {
		t.Error("MountTB left the mount behind")
	}
}

func runCmd(t *testing.T, dir, name string, args ...string) (string, error) {
	t.Helper()
	cmd := exec.CommandContext(t.Context(), name, args...)
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	return string(out), err
}
