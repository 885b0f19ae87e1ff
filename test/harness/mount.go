package harness

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

const (
	mountReadyTimeout = 15 * time.Second
	exitAfterUnmount  = 30 * time.Second
)

// MountOptions says how to run `adaptfs mount`.
type MountOptions struct {
	Bin        string   // adaptfs binary
	Server     *Server  // endpoint and credentials
	BucketPath string   // "bucket" or "bucket/prefix"
	Dir        string   // mount point; created if missing
	StagingDir string   // --staging-dir; created if missing
	LogPath    string   // --log-file; default StagingDir + ".log"
	ExtraArgs  []string // more flags, before BUCKETPATH DIR
	Env        []string // more environment entries for every adaptfs command

	// Background runs `adaptfs mount` without --foreground: the command
	// daemonizes and exits 0 once the mount is ready. Cmd is then nil and
	// PID is looked up in /proc (0 if not found).
	Background bool

	// Output, if set, receives a copy of what `adaptfs sync` and
	// `adaptfs unmount` print (progress).
	Output io.Writer
}

// Mount is a running adaptfs mount.
type Mount struct {
	Dir     string    // absolute mount point
	Cmd     *exec.Cmd // the foreground child; nil in Background mode
	LogPath string    // adaptfs --log-file
	OutPath string    // stdout and stderr of `adaptfs mount` (panics land here)

	opts MountOptions
	pid  int

	done    chan struct{} // closed when the foreground child has exited
	waitErr error         // valid after done is closed

	mu      sync.Mutex
	stopped bool
}

// StartMount runs `adaptfs mount` and returns once Dir is a FUSE mount
// (at most 15 s). In foreground mode (the default) adaptfs is a child of
// this process; if it exits first, the error carries the tail of its log.
func StartMount(ctx context.Context, opts MountOptions) (*Mount, error) {
	if opts.Bin == "" || opts.Server == nil || opts.BucketPath == "" || opts.Dir == "" || opts.StagingDir == "" {
		return nil, errors.New("start mount: Bin, Server, BucketPath, Dir and StagingDir are required")
	}
	var err error
	for _, p := range []*string{&opts.Bin, &opts.Dir, &opts.StagingDir} {
		if *p, err = filepath.Abs(*p); err != nil {
			return nil, fmt.Errorf("start mount: %w", err)
		}
	}
	if opts.LogPath == "" {
		opts.LogPath = opts.StagingDir + ".log"
	}
	if opts.LogPath, err = filepath.Abs(opts.LogPath); err != nil {
		return nil, fmt.Errorf("start mount: %w", err)
	}
	if err := os.MkdirAll(opts.Dir, 0o755); err != nil {
		return nil, fmt.Errorf("start mount: %w", err)
	}
	if err := os.MkdirAll(opts.StagingDir, 0o700); err != nil {
		return nil, fmt.Errorf("start mount: %w", err)
	}
	// The kernel reports mount points with symlinks resolved.
	if opts.Dir, err = filepath.EvalSymlinks(opts.Dir); err != nil {
		return nil, fmt.Errorf("start mount: %w", err)
	}
	if mounted, err := IsMountPoint(opts.Dir); err != nil {
		return nil, fmt.Errorf("start mount: %w", err)
	} else if mounted {
		return nil, fmt.Errorf("start mount: %s is already a mount point", opts.Dir)
	}

	m := &Mount{
		Dir:     opts.Dir,
		LogPath: opts.LogPath,
		OutPath: opts.LogPath + ".out",
		opts:    opts,
		done:    make(chan struct{}),
	}
	out, err := os.OpenFile(m.OutPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, fmt.Errorf("start mount: %w", err)
	}
	defer out.Close() // the child has its own descriptor

	args := []string{"mount"}
	if !opts.Background {
		args = append(args, "--foreground")
	}
	args = append(args,
		"--endpoint", opts.Server.Endpoint, "--path-style", "--region", opts.Server.Region,
		"--staging-dir", opts.StagingDir, "--log-file", opts.LogPath)
	args = append(args, opts.ExtraArgs...)
	args = append(args, opts.BucketPath, opts.Dir)

	cmd := exec.Command(opts.Bin, args...)
	cmd.Env = childEnv(opts.Server, opts.Env)
	// Files, not pipes: a daemonized grandchild must not keep us waiting on
	// a pipe it inherited.
	cmd.Stdout = out
	cmd.Stderr = out

	if opts.Background {
		return m, m.startBackground(ctx, cmd)
	}
	return m, m.startForeground(ctx, cmd)
}

func (m *Mount) startForeground(ctx context.Context, cmd *exec.Cmd) error {
	// If the test binary dies, ask adaptfs to shut down cleanly.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM}
	if err := cmd.Start(); err != nil {
		close(m.done)
		m.stopped = true
		return fmt.Errorf("start mount: %w", err)
	}
	m.Cmd = cmd
	m.pid = cmd.Process.Pid
	go func() {
		m.waitErr = cmd.Wait()
		close(m.done)
	}()

	ctx, cancel := context.WithTimeout(ctx, mountReadyTimeout)
	defer cancel()
	tick := time.NewTicker(25 * time.Millisecond)
	defer tick.Stop()
	for {
		if ok, err := IsFuseMount(m.Dir); err != nil {
			m.Kill()
			return fmt.Errorf("start mount: %w", err)
		} else if ok {
			return nil
		}
		select {
		case <-m.done:
			m.Kill() // nothing to kill; clears a half-made mount
			return fmt.Errorf("start mount: adaptfs exited before %s was mounted: %v\n%s", m.Dir, m.waitErr, m.LogTail(30))
		case <-ctx.Done():
			m.Kill()
			return fmt.Errorf("start mount: %s not mounted after %v: %w\n%s", m.Dir, mountReadyTimeout, ctx.Err(), m.LogTail(30))
		case <-tick.C:
		}
	}
}

func (m *Mount) startBackground(ctx context.Context, cmd *exec.Cmd) error {
	close(m.done) // there is no child of ours to wait for once it has daemonized
	ctx, cancel := context.WithTimeout(ctx, mountReadyTimeout+15*time.Second)
	defer cancel()
	if err := cmd.Start(); err != nil {
		m.stopped = true
		return fmt.Errorf("start mount: %w", err)
	}
	waitErr := make(chan error, 1)
	go func() { waitErr <- cmd.Wait() }()
	select {
	case err := <-waitErr:
		if err != nil {
			m.stopped = true
			m.forceUnmount()
			return fmt.Errorf("start mount: adaptfs mount failed: %w\n%s", err, m.LogTail(30))
		}
	case <-ctx.Done():
		_ = cmd.Process.Kill()
		<-waitErr
		m.findDaemonPID()
		m.Kill()
		return fmt.Errorf("start mount: adaptfs mount did not return: %w\n%s", ctx.Err(), m.LogTail(30))
	}
	if ok, err := IsFuseMount(m.Dir); err != nil || !ok {
		m.findDaemonPID()
		m.Kill()
		return fmt.Errorf("start mount: adaptfs mount exited 0 but %s is not a FUSE mount (%v)\n%s", m.Dir, err, m.LogTail(30))
	}
	m.findDaemonPID()
	return nil
}

// findDaemonPID looks in /proc for the adaptfs process serving m.Dir.
func (m *Mount) findDaemonPID() {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return
	}
	self := os.Getpid()
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == self {
			continue
		}
		raw, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err != nil || len(raw) == 0 {
			continue
		}
		argv := strings.Split(strings.TrimRight(string(raw), "\x00"), "\x00")
		if filepath.Base(argv[0]) != filepath.Base(m.opts.Bin) || processExited(pid) {
			continue
		}
		for _, a := range argv[1:] {
			if a == m.Dir {
				m.pid = pid
				return
			}
		}
	}
}

// PID is the process id of the adaptfs serving the mount (0 if unknown).
func (m *Mount) PID() int { return m.pid }

// Sync runs `adaptfs sync DIR`: it returns once every closed file is
// complete in S3, or the error if an upload failed.
func (m *Mount) Sync(ctx context.Context) error {
	if out, err := m.run(ctx, "sync", m.Dir); err != nil {
		return fmt.Errorf("adaptfs sync %s: %w\n%s\n%s", m.Dir, err, tailLines(out, 20), m.LogTail(20))
	}
	return nil
}

// Unmount runs `adaptfs unmount DIR` (which waits for uploads) and waits
// for the adaptfs process to exit. If that fails, it falls back to
// `umount -l` and SIGKILL so that nothing stays mounted, and returns the
// error. Calling it again, or after Kill, does nothing.
func (m *Mount) Unmount(ctx context.Context) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.stopped {
		return nil
	}
	m.stopped = true

	out, err := m.run(ctx, "unmount", m.Dir)
	if err != nil {
		m.kill()
		return fmt.Errorf("adaptfs unmount %s: %w\n%s\n%s", m.Dir, err, tailLines(out, 20), m.LogTail(20))
	}
	if err := m.waitExit(ctx); err != nil {
		m.kill()
		return fmt.Errorf("adaptfs unmount %s: %w\n%s", m.Dir, err, m.LogTail(20))
	}
	if mounted, _ := IsMountPoint(m.Dir); mounted {
		m.kill()
		return fmt.Errorf("adaptfs unmount %s: still mounted after adaptfs exited", m.Dir)
	}
	if m.Cmd != nil && m.waitErr != nil {
		return fmt.Errorf("adaptfs mount %s exited with %w after unmount\n%s", m.Dir, m.waitErr, m.LogTail(20))
	}
	return nil
}

// waitExit waits until the adaptfs process has exited and the mount is gone.
func (m *Mount) waitExit(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, exitAfterUnmount)
	defer cancel()
	for {
		exited := false
		if m.Cmd != nil {
			select {
			case <-m.done:
				exited = true
			default:
			}
		} else {
			exited = m.pid == 0 || processExited(m.pid)
		}
		mounted, err := IsMountPoint(m.Dir)
		if err != nil {
			return err
		}
		if exited && !mounted {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("adaptfs still running or %s still mounted after unmount: %w", m.Dir, ctx.Err())
		case <-m.done: // closed at once in Background mode: fall through to the sleep
			if m.Cmd == nil {
				time.Sleep(25 * time.Millisecond)
			}
		case <-time.After(25 * time.Millisecond):
		}
	}
}

// Kill sends SIGKILL to adaptfs (as a crash would) and detaches the mount
// with `umount -l`. The staging directory is left as it is.
func (m *Mount) Kill() {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.stopped = true
	m.kill()
}

func (m *Mount) kill() {
	if m.Cmd != nil && m.Cmd.Process != nil {
		_ = m.Cmd.Process.Kill()
		select {
		case <-m.done:
		case <-time.After(10 * time.Second):
		}
	} else if m.pid != 0 && !processExited(m.pid) {
		_ = syscall.Kill(m.pid, syscall.SIGKILL)
		for i := 0; i < 400 && !processExited(m.pid); i++ {
			time.Sleep(25 * time.Millisecond)
		}
	}
	m.forceUnmount()
}

func (m *Mount) forceUnmount() {
	for range 3 {
		if mounted, err := IsMountPoint(m.Dir); err == nil && !mounted {
			return
		}
		if err := LazyUnmount(m.Dir); err != nil {
			time.Sleep(100 * time.Millisecond)
		}
	}
}

// Exited reports whether the foreground adaptfs process has exited (always
// true in Background mode).
func (m *Mount) Exited() bool {
	select {
	case <-m.done:
		return true
	default:
		return false
	}
}

// RSSPeakBytes returns the peak resident set size (VmHWM) of the adaptfs
// process, read from /proc/PID/status. It needs the process to be alive.
func (m *Mount) RSSPeakBytes() (int64, error) {
	if m.pid == 0 {
		return 0, errors.New("rss: adaptfs pid unknown")
	}
	return procStatusKB(m.pid, "VmHWM")
}

// LogTail returns the last n lines of the adaptfs log, followed by the last
// lines of its stdout/stderr if there are any (panics land there).
func (m *Mount) LogTail(n int) string {
	var b strings.Builder
	fmt.Fprintf(&b, "--- %s (tail)\n%s", m.LogPath, fileTail(m.LogPath, n))
	if out := fileTail(m.OutPath, n); out != "" {
		fmt.Fprintf(&b, "\n--- %s (tail)\n%s", m.OutPath, out)
	}
	return b.String()
}

// run runs an adaptfs subcommand with the mount's environment and returns
// its combined output.
func (m *Mount) run(ctx context.Context, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, m.opts.Bin, args...)
	cmd.Env = childEnv(m.opts.Server, m.opts.Env)
	cmd.WaitDelay = 5 * time.Second
	var buf bytes.Buffer
	var w io.Writer = &buf
	if m.opts.Output != nil {
		w = io.MultiWriter(&buf, m.opts.Output)
	}
	cmd.Stdout = w
	cmd.Stderr = w
	err := cmd.Run()
	return buf.String(), err
}

// IsFuseMount reports whether dir is a mount point whose file system type
// starts with "fuse" (per /proc/self/mountinfo).
func IsFuseMount(dir string) (bool, error) {
	fstype, err := mountType(dir)
	return strings.HasPrefix(fstype, "fuse"), err
}

// IsMountPoint reports whether dir is a mount point of any type.
func IsMountPoint(dir string) (bool, error) {
	fstype, err := mountType(dir)
	return fstype != "", err
}

// LazyUnmount detaches whatever is mounted on dir (`umount -l`).
func LazyUnmount(dir string) error {
	out, err := exec.Command("umount", "-l", dir).CombinedOutput()
	if err != nil {
		return fmt.Errorf("umount -l %s: %w: %s", dir, err, strings.TrimSpace(string(out)))
	}
	return nil
}

// mountType returns the file system type of the topmost mount on dir, or ""
// if dir is not a mount point. dir should be absolute with symlinks
// resolved; it is not stat'ed, so a dead FUSE mount is still reported.
func mountType(dir string) (string, error) {
	dir = filepath.Clean(dir)
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return "", fmt.Errorf("read mountinfo: %w", err)
	}
	defer f.Close()
	fstype := ""
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		// ID PARENT MAJ:MIN ROOT MOUNTPOINT OPTIONS [OPTIONAL...] - FSTYPE SOURCE SUPER
		line := sc.Text()
		pre, post, ok := strings.Cut(line, " - ")
		if !ok {
			continue
		}
		fields := strings.Fields(pre)
		if len(fields) < 5 || unescapeMountinfo(fields[4]) != dir {
			continue
		}
		if t := strings.Fields(post); len(t) > 0 {
			fstype = t[0] // later lines are mounted on top of earlier ones
		}
	}
	if err := sc.Err(); err != nil {
		return "", fmt.Errorf("read mountinfo: %w", err)
	}
	return fstype, nil
}

// unescapeMountinfo undoes the octal escapes (\040 for space, ...) the
// kernel uses in mountinfo paths.
func unescapeMountinfo(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) {
			if v, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(v))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// processExited reports whether pid is gone or a zombie.
func processExited(pid int) bool {
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return true
	}
	// pid (comm) STATE ...; comm may contain spaces and parentheses.
	s := string(raw)
	i := strings.LastIndexByte(s, ')')
	if i < 0 || i+2 >= len(s) {
		return false
	}
	return s[i+2] == 'Z' || s[i+2] == 'X'
}

// procStatusKB reads a "Key:   N kB" line of /proc/PID/status, in bytes.
func procStatusKB(pid int, key string) (int64, error) {
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, fmt.Errorf("rss of pid %d: %w", pid, err)
	}
	for line := range strings.Lines(string(raw)) {
		name, rest, ok := strings.Cut(line, ":")
		if !ok || name != key {
			continue
		}
		f := strings.Fields(rest)
		if len(f) == 0 {
			break
		}
		kb, err := strconv.ParseInt(f[0], 10, 64)
		if err != nil {
			return 0, fmt.Errorf("rss of pid %d: parse %s: %w", pid, key, err)
		}
		return kb << 10, nil
	}
	return 0, fmt.Errorf("rss of pid %d: no %s in /proc/%d/status", pid, key, pid)
}

// StagingDir returns the mount's staging directory (for a remount over the
// same staged data).
func (m *Mount) StagingDir() string { return m.opts.StagingDir }

// ProcessCPUSeconds returns user+system CPU seconds a process has used.
func ProcessCPUSeconds(pid int) float64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	s := string(b)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+2:])
	if len(f) < 13 {
		return 0
	}
	u, _ := strconv.ParseFloat(f[11], 64)
	k, _ := strconv.ParseFloat(f[12], 64)
	return (u + k) / 100 // USER_HZ
}

// ProcStatusBytes reads a "kB" field (VmRSS, VmHWM) of /proc/PID/status,
// in bytes.
func ProcStatusBytes(pid int, key string) (int64, error) { return procStatusKB(pid, key) }
