// Command adaptfs mounts an S3 bucket as a file system whose writes are
// staged locally and uploaded with parameters that follow the network.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

const usage = `adaptfs — S3 as a file system, uploads that follow the network

Usage:
  adaptfs mount [flags] BUCKET[/PREFIX] MOUNTPOINT   mount (backgrounds once ready)
  adaptfs sync MOUNTPOINT                            wait until every closed file is in S3
  adaptfs unmount [--no-wait] MOUNTPOINT             wait for uploads, then unmount
  adaptfs probe [flags] BUCKET[/PREFIX]              measure the link, save the start profile
  adaptfs stats [--watch] [--json] MOUNTPOINT        what the mount measures and decides
  adaptfs version                                    print the version
  mount.adaptfs BUCKET[/PREFIX] DIR [-sfnv] [-o OPTS] mount(8) helper (fstab; see mount.adaptfs --help)

Run 'adaptfs COMMAND --help' for a command's flags. Credentials come from the
standard AWS chain only (environment, shared files, --profile, instance role).
`

func main() {
	if isMountHelper(os.Args[0]) {
		os.Exit(report("mount.adaptfs", cmdMountHelper(context.Background(), os.Args[1:])))
	}
	os.Exit(run(context.Background(), os.Args[1:]))
}

func run(ctx context.Context, args []string) int {
	if len(args) == 0 {
		fmt.Fprint(os.Stderr, usage)
		return 2
	}
	var err error
	switch args[0] {
	case "mount":
		err = cmdMount(ctx, args[1:])
	case "sync":
		err = cmdSync(ctx, args[1:])
	case "unmount", "umount":
		err = cmdUnmount(ctx, args[1:])
	case "probe":
		err = cmdProbe(ctx, args[1:])
	case "stats":
		sctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
		err = cmdStats(sctx, args[1:])
		stop()
	case "version", "--version":
		fmt.Println("adaptfs", version)
	case "help", "-h", "--help":
		fmt.Print(usage)
	default:
		fmt.Fprintf(os.Stderr, "adaptfs: unknown command %q\n\n%s", args[0], usage)
		return 2
	}
	return report("adaptfs "+args[0], err)
}

// report prints err for the user, prefixed with the command, and returns
// the exit status: 0, 1, or 2 for a usage mistake.
func report(cmd string, err error) int {
	if err == nil || errors.Is(err, errHelp) {
		return 0
	}
	var ue usageError
	if errors.As(err, &ue) {
		fmt.Fprintf(os.Stderr, "%s: %v\n", cmd, ue.err)
		return 2
	}
	var se silentExit
	if errors.As(err, &se) {
		return se.code
	}
	fmt.Fprintf(os.Stderr, "%s: %s\n", cmd, strings.TrimSpace(err.Error()))
	return 1
}

// usageError is a mistake on the command line (exit status 2).
type usageError struct{ err error }

func (u usageError) Error() string { return u.err.Error() }

var errHelp = errors.New("help shown")
