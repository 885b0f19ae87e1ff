package test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/adaptfs/adaptfs/test/harness"
)

// installHelper makes /sbin/mount.adaptfs (where mount(8) looks) a link to
// the binary under test, putting back whatever was there afterwards.
func installHelper(t *testing.T) {
	t.Helper()
	const path = "/sbin/mount.adaptfs"
	saved := ""
	if _, err := os.Lstat(path); err == nil {
		saved = path + ".saved-by-adaptfs-test"
		if err := os.Rename(path, saved); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Symlink(shared.bin, path); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		os.Remove(path)
		if saved != "" {
			os.Rename(saved, path)
		}
	})
}

// fstabRig is a server, a bucket, a mount point and a temporary fstab.
type fstabRig struct {
	srv                        *harness.Server
	dir, mnt, staging, cfgFile string
}

func newFstabRig(t *testing.T, bucket string) *fstabRig {
	t.Helper()
	requireFuse(t)
	installHelper(t)
	f := &fstabRig{srv: harness.StartServerTB(t), dir: t.TempDir()}
	harness.CreateBucketTB(t, f.srv, bucket)
	f.mnt, f.staging, f.cfgFile = filepath.Join(f.dir, "mnt"), filepath.Join(f.dir, "staging"), filepath.Join(f.dir, "adaptfs.toml")
	if err := os.Mkdir(f.mnt, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(f.cfgFile, []byte("path_style = true\nwrite_back_delay = \"100ms\"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if mounted, _ := harness.IsMountPoint(f.mnt); mounted {
			harness.LazyUnmount(f.mnt)
		}
	})
	return f
}

// mount writes one fstab line for spec with opts and runs `mount -T`.
func (f *fstabRig) mount(t *testing.T, spec, opts string) (string, error) {
	t.Helper()
	fstab := filepath.Join(f.dir, "fstab")
	line := fmt.Sprintf("%s %s adaptfs %s 0 0\n", spec, f.mnt, opts)
	if err := os.WriteFile(fstab, []byte("# test fstab\n"+line), 0o644); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "mount", "-T", fstab, f.mnt)
	cmd.Env = append(cleanEnv(), f.srv.Env()...)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// TestFstabMount: the fstab line of the issue, with mount(8)'s own options
// mixed in, mounts with `mount -T FILE DIR`; a file copied in lands in the
// bucket; `umount DIR` unmounts and the daemon exits.
func TestFstabMount(t *testing.T) {
	f := newFstabRig(t, "fstab")
	opts := fmt.Sprintf("_netdev,nofail,allow_other,config=%s,endpoint=%s,staging_dir=%s,x-systemd.automount", f.cfgFile, f.srv.Endpoint, f.staging)
	if out, err := f.mount(t, "fstab/data", opts); err != nil {
		t.Fatalf("mount -T: %v\n%s", err, out)
	}
	if mounted, _ := harness.IsFuseMount(f.mnt); !mounted {
		t.Fatalf("%s is not a FUSE mount after mount -T", f.mnt)
	}
	want := bytes.Repeat([]byte("fstab line\n"), 100000)
	if err := os.WriteFile(filepath.Join(f.mnt, "hello.txt"), want, 0o644); err != nil {
		t.Fatal(err)
	}
	run(t, shared.bin, "sync", f.mnt)
	got, err := harness.ObjectBytes(t.Context(), f.srv.Client, "fstab", "data/hello.txt")
	if err != nil {
		t.Fatalf("the file is not in the bucket: %v", err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("object differs from the file (%d vs %d bytes)", len(got), len(want))
	}
	pid := daemonPID(t, f.mnt)
	run(t, "umount", f.mnt)
	if mounted, _ := harness.IsMountPoint(f.mnt); mounted {
		t.Fatal("still mounted after umount")
	}
	waitGone(t, pid, 30*time.Second)
}

// TestFstabBadOptions: a bad option in fstab fails `mount` with a message
// naming it, and nothing is mounted.
func TestFstabBadOptions(t *testing.T) {
	f := newFstabRig(t, "fstabbad")
	base := fmt.Sprintf("_netdev,endpoint=%s,path_style,staging_dir=%s", f.srv.Endpoint, f.staging)
	tests := []struct {
		name, opts, want string
	}{
		{"unknown option", base + ",bogus_opt=1", `unknown option "bogus_opt"`},
		{"bad value", base + ",part_size_mb=lots", `part_size_mb=lots`},
		{"missing config file", base + ",config=/nonexistent/adaptfs.toml", "/nonexistent/adaptfs.toml"},
		{"config without a file", base + ",config", `option "config": needs a file`},
		{"credentials in fstab", base + ",secret_access_key=x", "secret_access_key"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, err := f.mount(t, "fstabbad", tt.opts)
			if err == nil {
				t.Fatalf("mount succeeded with %q\n%s", tt.opts, out)
			}
			if !strings.Contains(out, tt.want) {
				t.Errorf("mount's message does not name the problem (want %q):\n%s", tt.want, out)
			}
			if mounted, _ := harness.IsMountPoint(f.mnt); mounted {
				harness.LazyUnmount(f.mnt)
				t.Fatal("mounted despite the bad option")
			}
		})
	}
}

// TestSIGTERMWaitsForUploads: SIGTERM to the daemon during a 300 MiB upload
// returns only once the object is complete on the server. Two signals stop
// the wait; the staged data is then completed by the next mount.
func TestSIGTERMWaitsForUploads(t *testing.T) {
	r := newRig(t, "", "-o", "write_back_delay=10m")
	src := filepath.Join(t.TempDir(), "big.bin")
	if err := harness.GenFile(src, 300<<20, 77); err != nil {
		t.Fatal(err)
	}
	sums, err := harness.TreeSums(filepath.Dir(src))
	if err != nil {
		t.Fatal(err)
	}
	want := sums["big.bin"]

	run(t, "cp", src, r.path("one.bin"))
	pid := r.mnt.PID()
	if err := syscall.Kill(pid, syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	waitGone(t, pid, 5*time.Minute)
	r.mnt.Kill() // already gone: only marks it stopped for the cleanup
	got, _ := r.objects(t)
	if got["one.bin"] != want {
		t.Fatalf("after SIGTERM the object is %+v, want %+v\n%s", got["one.bin"], want, r.mnt.LogTail(20))
	}
	if ups, _ := harness.ListMultipartUploads(t.Context(), r.srv.Client, r.bucket); len(ups) > 0 {
		t.Errorf("multipart uploads left: %v", ups)
	}

	// Two signals: stop waiting, keep the staged data. The file is written
	// back to front, so nothing streams while it is written and the whole
	// upload is still ahead when the signals come.
	r.mnt = r.mount(t, "-o", "write_back_delay=10m")
	writeBackwards(t, src, r.path("two.bin"))
	pid = r.mnt.PID()
	syscall.Kill(pid, syscall.SIGTERM)
	time.Sleep(50 * time.Millisecond)
	syscall.Kill(pid, syscall.SIGTERM)
	waitGone(t, pid, time.Minute)
	r.mnt.Kill()
	if log := r.mnt.LogTail(40); !strings.Contains(log, "second signal") {
		t.Errorf("the log does not say the second signal stopped the wait:\n%s", log)
	}
	if got, _ := r.objects(t); got["two.bin"] == want {
		t.Fatal("two.bin was complete before the restart: the second signal did not stop the wait")
	}
	r.mnt = r.mount(t)
	r.sync(t)
	got, _ = r.objects(t)
	if got["two.bin"] != want {
		t.Fatalf("after two signals and a remount the object is %+v, want %+v", got["two.bin"], want)
	}
}

// TestDaemonOutlivesItsShell: `adaptfs mount` started from a shell that
// then exits (as from an ssh session or setsid) keeps serving, and logs to
// its log file.
func TestDaemonOutlivesItsShell(t *testing.T) {
	srv, dir, mnt := bareMount(t, "shell")
	staging, logFile := filepath.Join(dir, "staging"), filepath.Join(dir, "adaptfs.log")
	script := fmt.Sprintf("%s mount --endpoint %s --path-style --staging-dir %s --log-file %s shell %s; echo mounted; exit 0",
		shared.bin, srv.Endpoint, staging, logFile, mnt)
	cmd := exec.CommandContext(t.Context(), "setsid", "--wait", "sh", "-c", script)
	cmd.Env = append(cleanEnv(), srv.Env()...)
	if out, err := cmd.CombinedOutput(); err != nil || !strings.Contains(string(out), "mounted") {
		t.Fatalf("mount from a shell: %v\n%s", err, out)
	}
	t.Cleanup(func() {
		if mounted, _ := harness.IsMountPoint(mnt); mounted {
			exec.Command(shared.bin, "unmount", "--no-wait", mnt).Run()
			harness.LazyUnmount(mnt)
		}
	})
	time.Sleep(500 * time.Millisecond) // the shell and its session are gone
	if err := os.WriteFile(filepath.Join(mnt, "after-shell.txt"), []byte("still here\n"), 0o644); err != nil {
		t.Fatalf("the mount stopped with its shell: %v", err)
	}
	sync := exec.CommandContext(t.Context(), shared.bin, "sync", mnt)
	if out, err := sync.CombinedOutput(); err != nil {
		t.Fatalf("adaptfs sync: %v\n%s", err, out)
	}
	if _, err := srv.Client.HeadObject(t.Context(), &s3.HeadObjectInput{Bucket: aws.String("shell"), Key: aws.String("after-shell.txt")}); err != nil {
		t.Fatalf("the file is not in the bucket: %v", err)
	}
	b, err := os.ReadFile(logFile)
	if err != nil || !strings.Contains(string(b), "mounted") {
		t.Fatalf("the daemon's log file lacks its start: %v\n%s", err, b)
	}
	pid := daemonPID(t, mnt)
	if out, err := exec.CommandContext(t.Context(), shared.bin, "unmount", mnt).CombinedOutput(); err != nil {
		t.Fatalf("adaptfs unmount: %v\n%s", err, out)
	}
	waitGone(t, pid, 30*time.Second)
}

// daemonPID finds the adaptfs process serving mnt.
func daemonPID(t *testing.T, mnt string) int {
	t.Helper()
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		var pid int
		if _, err := fmt.Sscanf(e.Name(), "%d", &pid); err != nil {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err != nil {
			continue
		}
		args := strings.Split(strings.TrimRight(string(b), "\x00"), "\x00")
		if len(args) > 2 && args[1] == "mount" && args[len(args)-1] == mnt {
			return pid
		}
	}
	t.Fatalf("no adaptfs process serves %s", mnt)
	return 0
}

// waitGone waits until process pid has exited.
func waitGone(t *testing.T, pid int, d time.Duration) {
	t.Helper()
	deadline := time.Now().Add(d)
	for syscall.Kill(pid, 0) == nil {
		if b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid)); strings.Contains(string(b), ") Z ") {
			return // a zombie: exited, not yet reaped by its parent
		}
		if time.Now().After(deadline) {
			t.Fatalf("adaptfs (pid %d) still running after %v", pid, d)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestUmountKeepsStaged: a plain `umount DIR` by root while uploads are
// pending ends the daemon at once; the next mount uploads what was staged.
func TestUmountKeepsStaged(t *testing.T) {
	r := newRig(t, "u/", "-o", "write_back_delay=10m")
	want := bytes.Repeat([]byte("staged, not yet uploaded\n"), 50000)
	if err := os.WriteFile(r.path("pending.txt"), want, 0o644); err != nil {
		t.Fatal(err)
	}
	pid := r.mnt.PID()
	run(t, "umount", r.mnt.Dir)
	waitGone(t, pid, 30*time.Second)
	r.mnt.Kill()
	if got, _ := r.objects(t); len(got) != 0 {
		t.Fatalf("objects uploaded before the remount: %v", got)
	}
	r.mnt = r.mount(t)
	r.sync(t)
	got, _ := r.objects(t)
	sum := sha256.Sum256(want)
	if s := got["pending.txt"]; s != (harness.Sum{Size: int64(len(want)), SHA256: hex.EncodeToString(sum[:])}) {
		t.Fatalf("after umount and remount: %+v", got)
	}
}

// bareMount is a bucket on a server of its own and an empty mount point,
// for tests that start the daemon themselves.
func bareMount(t *testing.T, bucket string) (srv *harness.Server, dir, mnt string) {
	requireFuse(t)
	srv = harness.StartServerTB(t)
	harness.CreateBucketTB(t, srv, bucket)
	dir = t.TempDir()
	mnt = filepath.Join(dir, "mnt")
	if err := os.Mkdir(mnt, 0o755); err != nil {
		t.Fatal(err)
	}
	return srv, dir, mnt
}

// TestNotifyReady: in the foreground (systemd Type=notify), adaptfs sends
// READY=1 to NOTIFY_SOCKET once the mount is ready, not before.
func TestNotifyReady(t *testing.T) {
	srv, dir, mnt := bareMount(t, "notify")
	sock := filepath.Join(dir, "notify.sock")
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: sock, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	cmd := exec.Command(shared.bin, "mount", "--foreground", "--endpoint", srv.Endpoint, "--path-style",
		"--staging-dir", filepath.Join(dir, "staging"), "--log-file", filepath.Join(dir, "log"), "notify", mnt)
	cmd.Env = append(cleanEnv(), append(srv.Env(), "NOTIFY_SOCKET="+sock)...)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	var waitErr error
	go func() { waitErr = cmd.Wait(); close(done) }()
	t.Cleanup(func() {
		if mounted, _ := harness.IsMountPoint(mnt); mounted {
			exec.Command(shared.bin, "unmount", mnt).Run()
		}
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			cmd.Process.Kill()
		}
	})
	conn.SetReadDeadline(time.Now().Add(15 * time.Second))
	buf := make([]byte, 256)
	n, _, err := conn.ReadFromUnix(buf)
	if err != nil {
		t.Fatalf("no sd_notify message: %v", err)
	}
	if got := string(buf[:n]); !strings.Contains(got, "READY=1") {
		t.Fatalf("sd_notify sent %q, want READY=1", got)
	}
	if mounted, _ := harness.IsFuseMount(mnt); !mounted {
		t.Fatal("READY=1 came before the mount was ready")
	}
	if out, err := exec.Command(shared.bin, "unmount", mnt).CombinedOutput(); err != nil {
		t.Fatalf("adaptfs unmount: %v\n%s", err, out)
	}
	select {
	case <-done:
		if waitErr != nil {
			t.Fatalf("adaptfs mount --foreground exited with %v after unmount", waitErr)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("adaptfs mount --foreground still running 30 s after unmount")
	}
}

// writeBackwards copies src to dst in 4 MiB pieces from the end to the
// start.
func writeBackwards(t *testing.T, src, dst string) {
	t.Helper()
	data, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	f, err := os.Create(dst)
	if err != nil {
		t.Fatal(err)
	}
	const piece = 4 << 20
	for end := len(data); end > 0; end -= piece {
		off := max(0, end-piece)
		if _, err := f.WriteAt(data[off:end], int64(off)); err != nil {
			t.Fatal(err)
		}
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
}

// TestSyncCatchesLateRelease: a file closed while `adaptfs sync` already
// waits (as a RELEASE that reaches the daemon after the flush does: FUSE
// sends it after close(2) returned) is uploaded before sync returns, not
// left to wait out write_back_delay.
func TestSyncCatchesLateRelease(t *testing.T) {
	r := newRig(t, "", "-o", "write_back_delay=1h")
	if err := harness.GenFile(r.path("big.bin"), 300<<20, 5); err != nil { // keeps sync busy
		t.Fatal(err)
	}
	late, err := os.Create(r.path("late.txt"))
	if err != nil {
		t.Fatal(err)
	}
	late.WriteString("closed while sync waits")
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- r.mnt.Sync(ctx) }()
	time.Sleep(300 * time.Millisecond)
	late.Close()
	if err := <-done; err != nil {
		t.Fatalf("sync with a file closed while it waited: %v", err)
	}
	got, _ := r.objects(t)
	if got["late.txt"] != sumOf([]byte("closed while sync waits")) {
		t.Fatalf("late.txt not uploaded when sync returned: %+v", got["late.txt"])
	}
}
