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
	"time"

	"golang.org/x/term"

	"github.com/adaptfs/adaptfs/fs"
	"github.com/adaptfs/adaptfs/stats"
)

const statsHelp = `Usage: adaptfs stats [--watch] [--json] MOUNTPOINT

Prints what the mount measures and decides (MOUNTPOINT/.adaptstats/summary).
  --watch      redraw every second: the summary, a bar per active upload and
               a sparkline of the upload rate (Ctrl-C to stop)
  --json       print stats.json (schema: docs/STATS.md)
  --interval   refresh interval of --watch (default 1s)`

func cmdStats(ctx context.Context, args []string) error {
	fl := flag.NewFlagSet("stats", flag.ContinueOnError)
	fl.SetOutput(io.Discard)
	watch := fl.Bool("watch", false, "redraw every interval")
	asJSON := fl.Bool("json", false, "print stats.json")
	interval := fl.Duration("interval", time.Second, "refresh interval of --watch")
	pos, err := parseArgs(fl, args, 1, "MOUNTPOINT", func() { fmt.Println(statsHelp) })
	if err != nil {
		return err
	}
	dir := filepath.Join(pos[0], fs.StatsDir)
	read := func(name string) ([]byte, error) {
		b, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			return nil, fmt.Errorf("%s is not an adaptfs mount (or it stopped): %w", pos[0], err)
		}
		return b, nil
	}
	switch {
	case *asJSON:
		b, err := read("stats.json")
		if err == nil {
			_, err = os.Stdout.Write(b)
		}
		return err
	case !*watch:
		b, err := read("summary")
		if err == nil {
			_, err = os.Stdout.Write(b)
		}
		return err
	}
	if *interval <= 0 {
		return usageError{errors.New("--interval must be positive")}
	}
	width := 80
	if w, _, err := term.GetSize(int(os.Stdout.Fd())); err == nil && w > 20 {
		width = w
	}
	var rates []float64
	var last *stats.Doc
	tick := time.NewTicker(*interval)
	defer tick.Stop()
	for {
		summary, err := read("summary")
		if err != nil {
			return err
		}
		b, err := read("stats.json")
		if err != nil {
			return err
		}
		var d stats.Doc
		if err := json.Unmarshal(b, &d); err != nil {
			return fmt.Errorf("stats.json: %w", err)
		}
		if last != nil {
			if dt := d.At.Sub(last.At).Seconds(); dt > 0 {
				rates = append(rates, float64(d.Queue.UploadedBytes-last.Queue.UploadedBytes)*8/dt)
			}
		}
		last = &d
		var sb strings.Builder
		sb.WriteString("\x1b[H\x1b[2J") // home, clear
		sb.Write(summary)
		if len(rates) > 0 {
			fmt.Fprintf(&sb, "\nrate  %s  %.1f Mbit/s\n", sparkline(rates, width-24), rates[len(rates)-1]/1e6)
		}
		if len(d.Uploads) > 0 {
			sb.WriteString("\n")
			for _, u := range d.Uploads {
				sb.WriteString(uploadBar(u, width) + "\n")
			}
		}
		os.Stdout.WriteString(sb.String())
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
	}
}

// sparkline draws the last n values with block characters, scaled to
// their maximum.
func sparkline(xs []float64, n int) string {
	const blocks = "▁▂▃▄▅▆▇█"
	levels := []rune(blocks)
	if len(xs) > n {
		xs = xs[len(xs)-n:]
	}
	var top float64
	for _, x := range xs {
		top = max(top, x)
	}
	var b strings.Builder
	for _, x := range xs {
		i := 0
		if top > 0 {
			i = int(x / top * float64(len(levels)-1))
		}
		b.WriteRune(levels[max(0, min(i, len(levels)-1))])
	}
	return b.String()
}

// uploadBar is one line: a bar of the upload's progress and its path.
func uploadBar(u stats.Upload, width int) string {
	barW := min(30, max(10, width/4))
	filled := int(u.Percent / 100 * float64(barW))
	filled = max(0, min(filled, barW))
	line := fmt.Sprintf("[%s%s] %5.1f%% %-9s %s", strings.Repeat("█", filled), strings.Repeat("·", barW-filled), u.Percent, u.State, u.Path)
	if r := []rune(line); len(r) > width {
		line = string(r[:width])
	}
	return line
}
