// Command fakeadaptfs speaks the adaptfs command line (mount, sync,
// unmount) over a plain go-fuse loopback of the staging directory. The
// harness tests use it to exercise mounting, unmounting, killing and
// daemonizing without the real adaptfs. It talks to no S3 server.
package main

import (
	"flag"
	"fmt"
	"io"
	"log"
	"os"
	"os/exec"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/hanwen/go-fuse/v2/fs"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: fakeadaptfs mount|sync|unmount ...")
		os.Exit(2)
	}
	var err error
	switch os.Args[1] {
	case "mount":
		err = mount(os.Args[2:])
	case "sync":
		err = nil
	case "unmount":
		args := os.Args[2:]
		if len(args) > 0 && args[0] == "--no-wait" {
			args = args[1:]
		}
		if len(args) != 1 {
			err = fmt.Errorf("unmount: want MOUNTPOINT")
		} else {
			err = syscall.Unmount(args[0], 0)
		}
	default:
		err = fmt.Errorf("unknown command %q", os.Args[1])
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "fakeadaptfs:", err)
		os.Exit(1)
	}
}

func mount(args []string) error {
	fl := flag.NewFlagSet("mount", flag.ContinueOnError)
	foreground := fl.Bool("foreground", false, "")
	fl.String("endpoint", "", "")
	fl.Bool("path-style", false, "")
	fl.String("region", "", "")
	staging := fl.String("staging-dir", "", "")
	logFile := fl.String("log-file", "", "")
	fail := fl.Bool("fail", false, "exit with an error before mounting")
	if err := fl.Parse(args); err != nil {
		return err
	}
	if fl.NArg() != 2 || *staging == "" || *logFile == "" {
		return fmt.Errorf("mount: want --staging-dir, --log-file, BUCKET and MOUNTPOINT")
	}
	dir := fl.Arg(1)
	if !*foreground {
		return daemonize(dir)
	}

	lf, err := os.OpenFile(*logFile, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	logger := log.New(io.MultiWriter(lf, os.Stderr), "", log.LstdFlags)
	if os.Getenv("AWS_ACCESS_KEY_ID") == "" || os.Getenv("AWS_SECRET_ACCESS_KEY") == "" {
		logger.Print("no AWS credentials in the environment")
		return fmt.Errorf("no credentials")
	}
	if *fail {
		logger.Print("fake failure: bucket not reachable")
		return fmt.Errorf("fake failure")
	}
	root, err := fs.NewLoopbackRoot(*staging)
	if err != nil {
		return err
	}
	srv, err := fs.Mount(dir, root, &fs.Options{})
	if err != nil {
		logger.Printf("mount: %v", err)
		return err
	}
	logger.Printf("mounted %s on %s", fl.Arg(0), dir)
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT)
	go func() {
		<-sigs
		_ = srv.Unmount()
	}()
	srv.Wait()
	logger.Print("unmounted")
	return nil
}

// daemonize re-runs the command in the foreground in a new session and
// returns once dir is mounted.
func daemonize(dir string) error {
	args := append([]string{"mount", "--foreground"}, os.Args[2:]...)
	cmd := exec.Command(os.Args[0], args...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		return err
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	deadline := time.After(10 * time.Second)
	escaped := strings.ReplaceAll(dir, " ", `\040`) // as mountinfo writes it
	for {
		raw, err := os.ReadFile("/proc/self/mountinfo")
		if err != nil {
			return err
		}
		for line := range strings.Lines(string(raw)) {
			if f := strings.Fields(line); len(f) > 4 && f[4] == escaped {
				return nil
			}
		}
		select {
		case err := <-exited:
			return fmt.Errorf("mount failed: %v", err)
		case <-deadline:
			return fmt.Errorf("not mounted after 10s")
		case <-time.After(20 * time.Millisecond):
		}
	}
}
