package main

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"runtime/pprof"
	"strings"
	"syscall"
	"time"

	gofs "github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"

	"github.com/adaptfs/adaptfs/adapt"
	"github.com/adaptfs/adaptfs/cmd/adaptfs/config"
	"github.com/adaptfs/adaptfs/fs"
	"github.com/adaptfs/adaptfs/s3backend"
	"github.com/adaptfs/adaptfs/stage"
	"github.com/adaptfs/adaptfs/stats"
)

const defaultConfigFile = "/etc/adaptfs/adaptfs.toml"

// Environment of the re-executed daemon: the fd it reports readiness on.
const readyFDEnv = "ADAPTFS_READY_FD"

type mountArgs struct {
	argv       []string // the mount command's arguments, for the daemon
	cfg        config.Config
	spec       string // BUCKET[/PREFIX]
	mountpoint string
	foreground bool
	// metricsAddr, if set, serves Prometheus metrics at /metrics.
	metricsAddr string
}

// commonFlags are the flags of every command that talks to a bucket.
type commonFlags struct {
	cfgFile, endpoint, region, profile   string
	stagingDir, logLevel, logFormat, log string
	pathStyle, allowNonEmpty             bool
	opts                                 []string
}

func (c *commonFlags) register(fl *flag.FlagSet) {
	fl.StringVar(&c.cfgFile, "config", "", "configuration file (TOML; default "+defaultConfigFile+" if it exists)")
	fl.Func("o", "options key=value[,key=value...]: any configuration key, or a FUSE option", func(s string) error {
		c.opts = append(c.opts, s)
		return nil
	})
	fl.StringVar(&c.endpoint, "endpoint", "", "S3 endpoint URL (default: AWS)")
	fl.StringVar(&c.region, "region", "", "S3 region")
	fl.StringVar(&c.profile, "profile", "", "AWS shared-config profile for credentials")
	fl.BoolVar(&c.pathStyle, "path-style", false, "path-style bucket addressing (most non-AWS servers)")
	fl.StringVar(&c.stagingDir, "staging-dir", "", "staging directory (default under the user's cache dir)")
	fl.StringVar(&c.logLevel, "log-level", "", "debug, info, warn or error")
	fl.StringVar(&c.logFormat, "log-format", "", "text or json")
	fl.StringVar(&c.log, "log-file", "", "log to this file (default: stderr in the foreground, STAGING_DIR/adaptfs.log in the background)")
}

// parseArgs reads flags and operands in any order (mount(8) and people both
// put options after the operands); it wants exactly n operands.
func parseArgs(fl *flag.FlagSet, args []string, n int, usageLine string, help func()) ([]string, error) {
	var pos []string
	for {
		if err := fl.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				help()
				return nil, errHelp
			}
			return nil, usageError{err}
		}
		args = fl.Args()
		if len(args) == 0 {
			break
		}
		pos = append(pos, args[0])
		args = args[1:]
	}
	if len(pos) != n {
		return nil, usageError{fmt.Errorf("want %s, got %d argument(s); see 'adaptfs %s --help'", usageLine, len(pos), fl.Name())}
	}
	return pos, nil
}

// config builds the configuration: defaults, the file, -o options, flags,
// then the BUCKET[/PREFIX] operand; validated.
func (c *commonFlags) config(spec string) (config.Config, error) {
	cfg := config.Default()
	file := c.cfgFile
	if file == "" {
		if _, err := os.Stat(defaultConfigFile); err == nil {
			file = defaultConfigFile
		}
	}
	if file != "" {
		if err := cfg.LoadFile(file); err != nil {
			return cfg, err
		}
	}
	for _, o := range c.opts {
		if err := cfg.ApplyOptions(o); err != nil {
			return cfg, err
		}
	}
	for _, kv := range [][2]string{
		{"endpoint", c.endpoint}, {"region", c.region}, {"profile", c.profile}, {"staging_dir", c.stagingDir},
		{"log_level", c.logLevel}, {"log_format", c.logFormat}, {"log_file", c.log},
	} {
		if kv[1] == "" {
			continue
		}
		if err := cfg.Set(kv[0], kv[1]); err != nil {
			return cfg, err
		}
	}
	if c.pathStyle {
		cfg.PathStyle = true
	}
	if c.allowNonEmpty {
		cfg.AllowNonEmpty = true
	}
	bucket, prefix, _ := strings.Cut(strings.TrimPrefix(spec, "s3://"), "/")
	cfg.Bucket = bucket
	if prefix != "" {
		cfg.Prefix = prefix
	}
	if cfg.StagingDir == "" {
		dir, err := defaultStagingDir(cfg)
		if err != nil {
			return cfg, err
		}
		cfg.StagingDir = dir
	}
	return cfg, cfg.Validate()
}

// parseMount reads the mount command line.
func parseMount(args []string) (mountArgs, error) {
	var (
		ma mountArgs
		cf commonFlags
	)
	fl := flag.NewFlagSet("mount", flag.ContinueOnError)
	fl.SetOutput(io.Discard)
	cf.register(fl)
	fl.BoolVar(&ma.foreground, "foreground", false, "stay in the foreground (systemd Type=simple, containers)")
	fl.BoolVar(&ma.foreground, "f", false, "same as --foreground")
	fl.BoolVar(&cf.allowNonEmpty, "allow-nonempty", false, "mount over a non-empty directory")
	fl.StringVar(&ma.metricsAddr, "metrics-addr", "", "serve Prometheus metrics at http://ADDR/metrics (e.g. 127.0.0.1:9464)")
	pos, err := parseArgs(fl, args, 2, "BUCKET[/PREFIX] MOUNTPOINT", func() { printMountHelp(fl) })
	if err != nil {
		return ma, err
	}
	ma.spec, ma.mountpoint, ma.argv = pos[0], pos[1], args
	if ma.cfg, err = cf.config(ma.spec); err != nil {
		return ma, err
	}
	return ma, nil
}

func printMountHelp(fl *flag.FlagSet) {
	fmt.Print(`Usage: adaptfs mount [flags] BUCKET[/PREFIX] MOUNTPOINT

Mounts BUCKET (optionally only PREFIX within it) at MOUNTPOINT. Writes land in
the staging directory at disk speed and upload to S3 behind them. The command
returns once the mount is ready (or fails with the reason); --foreground stays.

Flags:
`)
	fl.SetOutput(os.Stdout)
	fl.PrintDefaults()
	fmt.Printf("\nConfiguration keys (file or -o key=value):\n  %s\n", strings.Join(config.Keys(), ", "))
}

// defaultStagingDir is $XDG_CACHE_HOME/adaptfs/BUCKET-HASH, one per
// endpoint, bucket and prefix so that two mounts never share manifests.
func defaultStagingDir(cfg config.Config) (string, error) {
	base, err := os.UserCacheDir()
	if err != nil {
		return "", fmt.Errorf("staging_dir: no cache directory (%w); set staging_dir", err)
	}
	sum := sha256.Sum256([]byte(cfg.Endpoint + "\x00" + cfg.Bucket + "\x00" + cfg.Prefix))
	return filepath.Join(base, "adaptfs", cfg.Bucket+"-"+hex.EncodeToString(sum[:6])), nil
}

func cmdMount(ctx context.Context, args []string) error {
	ma, err := parseMount(args)
	if err != nil {
		return err
	}
	mnt, err := checkMountpoint(ma.mountpoint, ma.cfg.AllowNonEmpty)
	if err != nil {
		return err
	}
	ma.mountpoint = mnt
	if !ma.foreground && os.Getenv(readyFDEnv) == "" {
		return daemonize(ma)
	}
	return serve(ctx, ma)
}

// checkMountpoint refuses a missing, non-directory, non-empty (unless
// allowed) or already mounted mount point.
func checkMountpoint(dir string, allowNonEmpty bool) (string, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return "", fmt.Errorf("mountpoint %s: %w", dir, err)
	}
	st, err := os.Stat(abs)
	if err != nil {
		return "", fmt.Errorf("mountpoint %s does not exist (create it with mkdir): %w", abs, err)
	}
	if !st.IsDir() {
		return "", fmt.Errorf("mountpoint %s is not a directory", abs)
	}
	if mounted, _ := isMountpoint(abs); mounted {
		return "", fmt.Errorf("mountpoint %s is already a mount point (unmount it first)", abs)
	}
	if !allowNonEmpty {
		f, err := os.Open(abs)
		if err != nil {
			return "", fmt.Errorf("mountpoint %s: %w", abs, err)
		}
		names, _ := f.Readdirnames(1)
		f.Close()
		if len(names) > 0 {
			return "", fmt.Errorf("mountpoint %s is not empty (its files would be hidden); use --allow-nonempty or -o allow_nonempty to mount anyway", abs)
		}
	}
	return abs, nil
}

// isMountpoint reports whether dir appears as a mount point in mountinfo.
func isMountpoint(dir string) (bool, error) {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return false, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) > 4 && unescapeMountinfo(fields[4]) == dir {
			return true, nil
		}
	}
	return false, sc.Err()
}

func unescapeMountinfo(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) {
			var c byte
			if _, err := fmt.Sscanf(s[i+1:i+4], "%03o", &c); err == nil {
				b.WriteByte(c)
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// daemonize re-executes adaptfs in a new session and waits until it reports
// the mount ready, or exits with its error.
func daemonize(ma mountArgs) error {
	r, w, err := os.Pipe()
	if err != nil {
		return fmt.Errorf("daemonize: %w", err)
	}
	exe, err := os.Executable()
	if err != nil {
		return fmt.Errorf("daemonize: %w", err)
	}
	devnull, err := os.OpenFile(os.DevNull, os.O_RDWR, 0)
	if err != nil {
		return fmt.Errorf("daemonize: %w", err)
	}
	defer devnull.Close()
	cmd := exec.Command(exe)
	// Always the mount command, whatever name started us (mount.adaptfs).
	cmd.Args = append([]string{"adaptfs", "mount"}, ma.argv...)
	cmd.Env = append(os.Environ(), readyFDEnv+"=3")
	cmd.Stdin, cmd.Stdout, cmd.Stderr = devnull, devnull, os.Stderr // errors before ready reach the user
	cmd.ExtraFiles = []*os.File{w}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start daemon: %w", err)
	}
	w.Close()
	line, _ := bufio.NewReader(r).ReadString('\n')
	r.Close()
	if strings.TrimSpace(line) == "ready" {
		cmd.Process.Release()
		return nil
	}
	err = cmd.Wait()
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return silentExit{code: ee.ExitCode()}
	}
	return fmt.Errorf("daemon exited before the mount was ready: %v", err)
}

// silentExit ends the command with a status, the reason already printed.
type silentExit struct{ code int }

func (s silentExit) Error() string { return fmt.Sprintf("exit status %d", s.code) }

func newLogger(cfg config.Config, daemon bool) (*slog.Logger, io.Closer, error) {
	var out io.Writer = os.Stderr
	var closer io.Closer = io.NopCloser(nil)
	path := cfg.LogFile
	if path == "" && daemon {
		path = filepath.Join(cfg.StagingDir, "adaptfs.log")
	}
	if path != "" {
		if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
			return nil, nil, fmt.Errorf("log_file %s: %w", path, err)
		}
		f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
		if err != nil {
			return nil, nil, fmt.Errorf("log_file %s: %w", path, err)
		}
		out, closer = f, f
	}
	var level slog.Level
	if err := level.UnmarshalText([]byte(cfg.LogLevel)); err != nil {
		return nil, nil, fmt.Errorf("log_level: %w", err)
	}
	opts := &slog.HandlerOptions{Level: level}
	if cfg.LogFormat == "json" {
		return slog.New(slog.NewJSONHandler(out, opts)), closer, nil
	}
	return slog.New(slog.NewTextHandler(out, opts)), closer, nil
}

// Each FUSE request in flight holds a MaxWrite buffer; MaxBackground bounds
// how many the kernel queues. That RAM counts against max_staging_memory_mb.
const (
	fuseMaxWrite      = 1 << 20
	fuseMaxBackground = 16
)

// memoryHeadroom is the heap allowed beyond max_staging_memory_mb: the
// HTTP client, FUSE buffers and bookkeeping.
const memoryHeadroom = 40 << 20

// serve runs the mount in this process until it is unmounted or signalled.
func serve(ctx context.Context, ma mountArgs) error {
	cfg := ma.cfg
	daemon := os.Getenv(readyFDEnv) != ""
	log, logCloser, err := newLogger(cfg, daemon)
	if err != nil {
		return err
	}
	defer logCloser.Close()
	if path := os.Getenv("ADAPTFS_CPUPROFILE"); path != "" { // for developers: profile a whole mount
		if f, err := os.Create(path); err == nil {
			pprof.StartCPUProfile(f)
			defer pprof.StopCPUProfile()
		}
	}
	if path := os.Getenv("ADAPTFS_MEMPROFILE"); path != "" { // for developers: heap at its peak
		go heapPeakProfile(ctx, path)
	}

	if os.Getenv("GOMEMLIMIT") == "" {
		// Part buffers are the heap; a soft limit just above their budget
		// makes the GC return freed buffers before RSS drifts past it.
		debug.SetMemoryLimit(int64(cfg.MaxStagingMemoryMB)<<20 + memoryHeadroom)
	}
	prof := loadProfile(cfg.StagingDir, log)
	levels := newLevelChooser(cfg, prof)
	ctrl := adapt.NewController(cfg.Adapt, wallClock{}, prof,
		adapt.WithMemoryBudget(int64(cfg.MaxStagingMemoryMB)<<20), adapt.WithLevelPolicy(levels))
	levels.SetRecorder(ctrl)
	levels.SetConcurrencySource(func() int { return ctrl.Params().Concurrency })
	col := stats.New() // its sources are set once the staging area exists
	be, err := s3backend.New(ctx, cfg.S3, sampleBridge{c: ctrl, parts: col}, log)
	if err != nil {
		return err
	}
	if err := be.CheckBucket(ctx); err != nil {
		return err
	}
	cfg.Stage.OtherMemory = fuseMaxWrite * fuseMaxBackground
	cfg.Stage.OtherMemory += stage.CompressionMemory(cfg.Stage)
	area, err := stage.New(cfg.Stage, be, ctrl, log)
	if err != nil {
		return err
	}
	defer area.Close()
	area.SetLevelSource(levels)
	cctx, stopController := context.WithCancel(ctx)
	controllerDone := make(chan struct{})
	go func() {
		defer close(controllerDone)
		runController(cctx, ctrl, levels, cfg.MonitoringInterval, be, area.RequestsInFlight, area.ParamsChanged, cfg.StagingDir, log)
	}()
	defer func() { stopController(); <-controllerDone }()
	// The file system first: it observes uploads, also of recovered files.
	fsys, err := fs.New(cfg.FS, be, area, normalizedPrefix(cfg.Prefix), log)
	if err != nil {
		return err
	}
	if _, err := area.Recover(ctx); err != nil {
		return err
	}
	fsys.SetController(ctrl)
	col.SetSources(stats.Sources{
		Queue: area.Pending, Uploads: area.Uploads, Controller: ctrl.Snapshot,
		Compression: compressionState(cfg, levels), CompressionMode: cfg.Compression,
		Config: cfg.TOML, StagingDir: cfg.StagingDir,
		MemoryBudgetBytes: int64(cfg.MaxStagingMemoryMB) << 20, Started: time.Now(),
	})
	fsys.SetStats(col)
	if ma.metricsAddr != "" {
		ln, err := net.Listen("tcp", ma.metricsAddr)
		if err != nil {
			return fmt.Errorf("--metrics-addr %s: %w", ma.metricsAddr, err)
		}
		srv := &http.Server{Handler: col.Handler(), ReadHeaderTimeout: 10 * time.Second}
		go srv.Serve(ln)
		defer srv.Close()
		log.Info("serving metrics", "addr", ln.Addr().String(), "path", "/metrics")
	}
	opts := fsys.Options()
	opts.MountOptions = fuse.MountOptions{
		FsName:        "adaptfs:" + ma.spec,
		Name:          "adaptfs",
		AllowOther:    cfg.AllowOther,
		MaxWrite:      fuseMaxWrite,
		MaxReadAhead:  1 << 20,
		MaxBackground: fuseMaxBackground,
		DirectMount:   os.Geteuid() == 0,
		Logger:        nil,
	}
	if cfg.WritebackCache {
		// The kernel gathers cp's 128 KiB writes into 1 MiB requests: fewer
		// round trips through the daemon (measured: ~15 % less CPU per GB).
		opts.MountOptions.ExtraCapabilities = fuse.CAP_WRITEBACK_CACHE
	}
	if cfg.DefaultPermissions {
		opts.MountOptions.Options = append(opts.MountOptions.Options, "default_permissions")
	}
	if cfg.ReadOnly {
		opts.MountOptions.Options = append(opts.MountOptions.Options, "ro")
	}
	server, err := gofs.Mount(ma.mountpoint, fsys.Root(), opts)
	if err != nil {
		return fmt.Errorf("mount %s: %w (is fuse3 installed and /dev/fuse accessible?)", ma.mountpoint, err)
	}
	fsys.Mounted()
	log.Info("mounted", "bucket", cfg.Bucket, "prefix", cfg.Prefix, "mountpoint", ma.mountpoint,
		"staging_dir", cfg.StagingDir, "adaptive", cfg.Adaptive, "part_size_bytes", ctrl.Params().PartSize, "concurrency", ctrl.Params().Concurrency)
	signalReady(daemon, log)

	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT)
	done := make(chan struct{})
	go func() { server.Wait(); close(done) }()
	select {
	case <-done:
		log.Info("unmounted")
	case sig := <-sigs:
		log.Info("signal: waiting for pending uploads before unmounting (signal again to stop waiting)", "signal", sig.String())
		fctx, cancel := context.WithCancel(ctx)
		go func() {
			select {
			case <-sigs:
				log.Warn("second signal: not waiting; staged data is kept and resumes on the next mount")
				cancel()
			case <-fctx.Done():
			}
		}()
		if err := area.Flush(fctx); err != nil {
			log.Warn("unmounting with uploads pending", "err", err)
		}
		cancel()
		if err := server.Unmount(); err != nil {
			log.Error("unmount failed", "err", err)
		}
		<-done
	}
	return nil
}

func normalizedPrefix(p string) string {
	p = strings.Trim(p, "/")
	if p == "" {
		return ""
	}
	return p + "/"
}

// signalReady tells the waiting parent (and systemd, if it asked) that the
// mount is ready, then detaches from the terminal.
func signalReady(daemon bool, log *slog.Logger) {
	if sock := os.Getenv("NOTIFY_SOCKET"); sock != "" {
		if c, err := net.DialUnix("unixgram", nil, &net.UnixAddr{Name: sock, Net: "unixgram"}); err == nil {
			c.Write([]byte("READY=1"))
			c.Close()
		} else {
			log.Warn("sd_notify failed", "err", err)
		}
	}
	if !daemon {
		return
	}
	w := os.NewFile(3, "ready")
	fmt.Fprintln(w, "ready")
	w.Close()
	if devnull, err := os.OpenFile(os.DevNull, os.O_RDWR, 0); err == nil {
		syscall.Dup2(int(devnull.Fd()), 2)
		devnull.Close()
	}
}

func execCombined(name string, args ...string) (string, error) {
	out, err := exec.Command(name, args...).CombinedOutput()
	return strings.TrimSpace(string(out)), err
}

// heapPeakProfile writes a heap profile to path whenever the heap in use
// reaches a new high, checked twice a second.
func heapPeakProfile(ctx context.Context, path string) {
	var peak uint64
	t := time.NewTicker(500 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		if ms.HeapInuse <= peak {
			continue
		}
		peak = ms.HeapInuse
		if f, err := os.Create(path); err == nil {
			pprof.Lookup("heap").WriteTo(f, 0)
			f.Close()
		}
	}
}
