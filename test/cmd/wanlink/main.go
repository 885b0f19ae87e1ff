// Command wanlink brings up, changes and removes an emulated WAN link
// (package test/wan) from the shell, for manual experiments.
//
//	wanlink up     --name N --rate-mbit R [--rtt-ms T] [--loss-pct L] [--jitter-ms J] [--queue-ms Q] [--congctl C]
//	wanlink set    --name N [any of the flags of up]
//	wanlink status --name N
//	wanlink down   --name N
//	wanlink exec   --name N -- CMD [ARGS...]
//
// `up` stays in the foreground (it runs the link's delay lines) until
// SIGINT/SIGTERM or `wanlink down`, then removes the link. `set`, `status`
// and `down` talk to it through the unix socket /run/adaptfs-wan-N.sock;
// `down` also removes the leftovers of an `up` that died. `exec` runs a
// command in the server namespace N (where an S3 test server would run);
// the client side is the root namespace.
//
// Needs root.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"os/signal"
	"syscall"

	"github.com/adaptfs/adaptfs/test/wan"
)

const usage = `usage:
  wanlink up     [--name N] --rate-mbit R [--rtt-ms T] [--loss-pct L] [--jitter-ms J] [--queue-ms Q] [--congctl C]
  wanlink set    [--name N] [--rate-mbit R] [--rtt-ms T] [--loss-pct L] [--jitter-ms J] [--queue-ms Q] [--congctl C]
  wanlink status [--name N]
  wanlink down   [--name N]
  wanlink exec   [--name N] -- CMD [ARGS...]

The link joins the root namespace (client side) to namespace N (server
side, default ` + wan.DefaultName + `); "up" stays in the foreground until SIGINT/SIGTERM
or "wanlink down".
`

func main() {
	slog.SetDefault(slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo})))
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	var err error
	switch args[0] {
	case "up":
		err = cmdUp(ctx, args[1:], stdout)
	case "set":
		err = cmdSet(ctx, args[1:], stdout)
	case "status":
		err = cmdStatus(ctx, args[1:], stdout)
	case "down":
		err = cmdDown(ctx, args[1:], stdout)
	case "exec":
		var code int
		code, err = cmdExec(ctx, args[1:])
		if err == nil {
			return code
		}
	case "-h", "--help", "help":
		fmt.Fprint(stdout, usage)
		return 0
	default:
		fmt.Fprintf(stderr, "wanlink: unknown command %q\n%s", args[0], usage)
		return 2
	}
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		fmt.Fprintf(stderr, "wanlink %s: %v\n", args[0], err)
		return 1
	}
	return 0
}

// linkFlags are the flags shared by up and set.
type linkFlags struct {
	fs  *flag.FlagSet
	cfg wan.Config
}

func newLinkFlags(cmd string, withLink bool) *linkFlags {
	f := &linkFlags{fs: flag.NewFlagSet("wanlink "+cmd, flag.ContinueOnError)}
	f.fs.StringVar(&f.cfg.Name, "name", wan.DefaultName, "link name (the server namespace's name)")
	if withLink {
		f.fs.Float64Var(&f.cfg.RateMbit, "rate-mbit", 0, "bottleneck rate of each direction, Mbit/s")
		f.fs.Float64Var(&f.cfg.RTTms, "rtt-ms", 0, "round-trip time, ms (each direction delays RTT/2)")
		f.fs.Float64Var(&f.cfg.LossPct, "loss-pct", 0, "random loss of each direction, percent")
		f.fs.Float64Var(&f.cfg.JitterMs, "jitter-ms", 0, "RTT variation: RTT stays within rtt±jitter; never reorders")
		f.fs.Float64Var(&f.cfg.QueueMs, "queue-ms", wan.DefaultQueueMs, "bottleneck queue size, ms at the rate")
		f.fs.StringVar(&f.cfg.CongCtl, "congctl", wan.DefaultCongCtl, "TCP congestion control set on both ends' routes")
	}
	return f
}

// changes returns the settings given on the command line, for set.
func (f *linkFlags) changes() changeRequest {
	var c changeRequest
	f.fs.Visit(func(fl *flag.Flag) {
		switch fl.Name {
		case "rate-mbit":
			c.RateMbit = &f.cfg.RateMbit
		case "rtt-ms":
			c.RTTms = &f.cfg.RTTms
		case "loss-pct":
			c.LossPct = &f.cfg.LossPct
		case "jitter-ms":
			c.JitterMs = &f.cfg.JitterMs
		case "queue-ms":
			c.QueueMs = &f.cfg.QueueMs
		case "congctl":
			c.CongCtl = &f.cfg.CongCtl
		}
	})
	return c
}

func noArgs(fs *flag.FlagSet) error {
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	return nil
}

func cmdUp(ctx context.Context, args []string, stdout io.Writer) error {
	f := newLinkFlags("up", true)
	if err := f.fs.Parse(args); err != nil {
		return err
	}
	if err := noArgs(f.fs); err != nil {
		return err
	}
	if f.cfg.RateMbit <= 0 {
		return errors.New("--rate-mbit is required (> 0)")
	}
	srv, err := listenControl(ctx, f.cfg.Name)
	if err != nil {
		return err
	}
	defer srv.close()
	link, err := wan.Up(ctx, f.cfg)
	if err != nil {
		return err
	}
	defer link.Down()
	srv.setLink(link)
	a := link.Addrs()
	fmt.Fprintf(stdout, "wanlink: %s up: client %s (root namespace) <-> server %s (ip netns exec %s ...); control %s\n",
		link.Name(), a.Client, a.Server, link.NSName(), srv.path)
	fmt.Fprintf(stdout, "wanlink: ctrl-c or `wanlink down --name %s` removes it\n", link.Name())
	select {
	case <-ctx.Done():
	case <-srv.downReq:
	}
	err = link.Close()
	close(srv.downDone)
	srv.close()
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "wanlink: %s down\n", link.Name())
	return nil
}

func cmdSet(ctx context.Context, args []string, stdout io.Writer) error {
	f := newLinkFlags("set", true)
	if err := f.fs.Parse(args); err != nil {
		return err
	}
	if err := noArgs(f.fs); err != nil {
		return err
	}
	ch := f.changes()
	resp, err := call(ctx, f.cfg.Name, request{Op: "set", Set: &ch})
	if err != nil {
		return err
	}
	printConfig(stdout, resp)
	return nil
}

func cmdStatus(ctx context.Context, args []string, stdout io.Writer) error {
	f := newLinkFlags("status", false)
	if err := f.fs.Parse(args); err != nil {
		return err
	}
	if err := noArgs(f.fs); err != nil {
		return err
	}
	resp, err := call(ctx, f.cfg.Name, request{Op: "status"})
	if err != nil {
		return err
	}
	printConfig(stdout, resp)
	if c := resp.Counters; c != nil {
		for _, d := range []struct {
			name string
			c    wan.DirCounters
		}{{"up (client->server)", c.Up}, {"down (server->client)", c.Down}} {
			fmt.Fprintf(stdout, "%-22s %d bytes %d pkts, queue drops %d, loss drops %d, backlog %d B, delayed %d (mean error %v, %d late > 1 ms, max late %v)\n",
				d.name, d.c.Bytes, d.c.Packets, d.c.QueueDrops, d.c.LossDrops, d.c.Backlog, d.c.Delayed, d.c.MeanDelayErr, d.c.Late1ms, d.c.MaxLate)
		}
	}
	return nil
}

func printConfig(w io.Writer, r *response) {
	if r.Config == nil {
		return
	}
	c := r.Config
	fmt.Fprintf(w, "%s: rate %g Mbit/s, rtt %g ms, loss %g %%, jitter %g ms, queue %g ms, congctl %s\n",
		c.Name, c.RateMbit, c.RTTms, c.LossPct, c.JitterMs, c.QueueMs, c.CongCtl)
	if r.Addrs != nil {
		fmt.Fprintf(w, "client %s <-> server %s\n", r.Addrs.Client, r.Addrs.Server)
	}
}

func cmdDown(ctx context.Context, args []string, stdout io.Writer) error {
	f := newLinkFlags("down", false)
	if err := f.fs.Parse(args); err != nil {
		return err
	}
	if err := noArgs(f.fs); err != nil {
		return err
	}
	_, err := call(ctx, f.cfg.Name, request{Op: "down"})
	if err == nil {
		fmt.Fprintf(stdout, "wanlink: %s down\n", f.cfg.Name)
		return nil
	}
	if !errors.Is(err, errNotRunning) {
		return err
	}
	// No live `up`: remove whatever a dead one left.
	if err := wan.Cleanup(f.cfg.Name); err != nil {
		return err
	}
	_ = os.Remove(socketPath(f.cfg.Name))
	fmt.Fprintf(stdout, "wanlink: %s removed (no running wanlink up)\n", f.cfg.Name)
	return nil
}

func cmdExec(ctx context.Context, args []string) (int, error) {
	f := newLinkFlags("exec", false)
	if err := f.fs.Parse(args); err != nil {
		return 0, err
	}
	cmdArgs := f.fs.Args()
	if len(cmdArgs) == 0 {
		return 0, errors.New("missing command (wanlink exec --name N -- CMD ARGS...)")
	}
	if _, err := os.Stat("/run/netns/" + f.cfg.Name); err != nil {
		return 0, fmt.Errorf("namespace %s: %w (is `wanlink up --name %s` running?)", f.cfg.Name, err, f.cfg.Name)
	}
	cmd := exec.CommandContext(ctx, "ip", append([]string{"netns", "exec", f.cfg.Name}, cmdArgs...)...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGTERM) }
	err := cmd.Run()
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return ee.ExitCode(), nil
	}
	if err != nil {
		return 0, fmt.Errorf("ip netns exec %s: %w", f.cfg.Name, err)
	}
	return 0, nil
}
