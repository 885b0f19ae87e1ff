package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/schollz/progressbar/v3"
	"golang.org/x/sys/unix"
	"golang.org/x/term"

	"github.com/adaptfs/adaptfs/fs"
	"github.com/adaptfs/adaptfs/stage"
)

func cmdSync(ctx context.Context, args []string) error {
	fl := flag.NewFlagSet("sync", flag.ContinueOnError)
	fl.SetOutput(io.Discard)
	timeout := fl.Duration("timeout", 0, "give up after this long (0: wait as long as it takes)")
	quiet := fl.Bool("quiet", false, "no progress output")
	if err := fl.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fmt.Println("Usage: adaptfs sync [--timeout D] [--quiet] MOUNTPOINT\n\nWaits until every file closed in the mount is complete in S3 (starting\nqueued uploads at once and retrying failed ones). Exits non-zero if an\nupload failed; the staged data is kept.")
			return errHelp
		}
		return usageError{err}
	}
	if fl.NArg() != 1 {
		return usageError{errors.New("want MOUNTPOINT")}
	}
	if *timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, *timeout)
		defer cancel()
	}
	return waitUploads(ctx, fl.Arg(0), *quiet)
}

func cmdUnmount(ctx context.Context, args []string) error {
	fl := flag.NewFlagSet("unmount", flag.ContinueOnError)
	fl.SetOutput(io.Discard)
	noWait := fl.Bool("no-wait", false, "unmount without waiting for uploads (staged data resumes on the next mount)")
	quiet := fl.Bool("quiet", false, "no progress output")
	if err := fl.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fmt.Println("Usage: adaptfs unmount [--no-wait] [--quiet] MOUNTPOINT\n\nWaits for pending uploads (with progress: bytes left, rate, ETA), then\nunmounts. Staged data that could not be uploaded stays on disk and resumes on\nthe next mount. SIGTERM or SIGINT to the daemon do the same; a second signal\nstops waiting. `umount MOUNTPOINT` as root unmounts without waiting.")
			return errHelp
		}
		return usageError{err}
	}
	if fl.NArg() != 1 {
		return usageError{errors.New("want MOUNTPOINT")}
	}
	dir, err := filepath.Abs(fl.Arg(0))
	if err != nil {
		return err
	}
	if !*noWait {
		if err := waitUploads(ctx, dir, *quiet); err != nil {
			fmt.Fprintf(os.Stderr, "adaptfs unmount: %v\nunmounting anyway: the staged data is kept and retried on the next mount\n", err)
		}
	}
	if err := unix.Unmount(dir, 0); err != nil {
		if errors.Is(err, syscall.EPERM) {
			out, ferr := execCombined("fusermount3", "-u", dir)
			if ferr != nil {
				return fmt.Errorf("unmount %s: %v: %s", dir, ferr, out)
			}
			return nil
		}
		return fmt.Errorf("unmount %s: %w", dir, err)
	}
	return nil
}

// queue reads the mount's upload queue through its control xattr.
func queue(dir string) (stage.Pending, error) {
	var p stage.Pending
	buf := make([]byte, 64<<10)
	for {
		n, err := unix.Getxattr(dir, fs.XattrQueue, buf)
		if errors.Is(err, syscall.ERANGE) {
			buf = make([]byte, len(buf)*4)
			continue
		}
		if err != nil {
			return p, fmt.Errorf("%s is not an adaptfs mount (or it stopped): %w", dir, err)
		}
		return p, json.Unmarshal(buf[:n], &p)
	}
}

// waitUploads starts queued uploads now and waits until none is pending,
// drawing a progress bar on a terminal.
func waitUploads(ctx context.Context, dir string, quiet bool) error {
	if err := unix.Setxattr(dir, fs.XattrFlush, []byte("1"), 0); err != nil {
		return fmt.Errorf("%s is not an adaptfs mount (or it stopped): %w", dir, err)
	}
	p, err := queue(dir)
	if err != nil {
		return err
	}
	start := p.UploadedBytes
	total := p.Bytes
	var bar *progressbar.ProgressBar
	if !quiet && term.IsTerminal(int(os.Stderr.Fd())) && p.Files > 0 {
		bar = progressbar.NewOptions64(total,
			progressbar.OptionSetWriter(os.Stderr),
			progressbar.OptionSetDescription("uploading"),
			progressbar.OptionShowBytes(true),
			progressbar.OptionShowCount(),
			progressbar.OptionSetPredictTime(true),
			progressbar.OptionThrottle(200*time.Millisecond),
			progressbar.OptionClearOnFinish())
	}
	tick := time.NewTicker(250 * time.Millisecond)
	defer tick.Stop()
	for {
		if p.Files == 0 && p.Aborting == 0 {
			if bar != nil {
				bar.Finish()
			}
			if len(p.Failed) > 0 {
				return fmt.Errorf("%d upload(s) failed (staged data kept; run `adaptfs sync` to retry):\n  %s", len(p.Failed), strings.Join(p.Failed, "\n  "))
			}
			return nil
		}
		if bar != nil {
			done := p.UploadedBytes - start
			if done+p.Bytes > total {
				total = done + p.Bytes
				bar.ChangeMax64(total)
			}
			bar.Describe(fmt.Sprintf("uploading %d file(s)", p.Files))
			bar.Set64(done)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("sync %s: %d file(s), %d bytes still pending: %w", dir, p.Files, p.Bytes, ctx.Err())
		case <-tick.C:
		}
		// Files closed just before the flush may be released after it.
		_ = unix.Setxattr(dir, fs.XattrFlush, []byte(fs.FlushQueued), 0)
		if p, err = queue(dir); err != nil {
			return err
		}
	}
}
