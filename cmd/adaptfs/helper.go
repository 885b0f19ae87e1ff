package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/user"
	"path/filepath"
	"strings"

	"github.com/adaptfs/adaptfs/cmd/adaptfs/config"
)

// mount(8) runs /sbin/mount.TYPE SPEC DIR [-sfnv] [-o OPTIONS] for an
// fstab line of type TYPE; `make install` links mount.adaptfs to adaptfs.

const helperUsage = `Usage: mount.adaptfs BUCKET[/PREFIX] MOUNTPOINT [-sfnv] [-o OPTIONS]

The mount(8) helper: an /etc/fstab line such as
  mybucket/prefix /mnt/data adaptfs _netdev,allow_other,config=/etc/adaptfs/adaptfs.toml,endpoint=http://127.0.0.1:9000 0 0
mounts with 'mount /mnt/data'. OPTIONS: config=FILE, any configuration key
as key=value (booleans also bare), FUSE's allow_other, default_permissions,
ro, uid=, gid=, umask=. mount(8)'s own (_netdev, nofail, noauto, auto, user,
nouser, users, defaults, rw, nosuid, nodev, x-*, comment=) are accepted and
ignored. Anything else is an error that names the option.
  -s  sloppy: ignore unknown options (with a warning) instead of failing
  -f  fake: check everything, do not mount
  -n  do not write /etc/mtab (never written anyway)
  -v  verbose: log at debug level
`

// isMountHelper reports whether the binary runs as mount(8)'s helper.
func isMountHelper(argv0 string) bool {
	b := filepath.Base(argv0)
	return b == "mount.adaptfs" || b == "mount.fuse.adaptfs"
}

// helperArgs are the parsed arguments of the helper.
type helperArgs struct {
	spec, dir             string
	opts                  []string // -o values, in order
	sloppy, fake, verbose bool
}

func parseHelperArgs(args []string) (helperArgs, error) {
	var h helperArgs
	var pos []string
	for i := 0; i < len(args); i++ {
		a := args[i]
		switch {
		case a == "-h" || a == "--help":
			return h, errHelp
		case a == "-o":
			if i+1 == len(args) {
				return h, usageError{errors.New("-o needs OPTIONS")}
			}
			i++
			h.opts = append(h.opts, args[i])
		case strings.HasPrefix(a, "-o"):
			h.opts = append(h.opts, a[2:])
		case strings.HasPrefix(a, "-") && len(a) > 1:
			for _, c := range a[1:] {
				switch c {
				case 's':
					h.sloppy = true
				case 'f':
					h.fake = true
				case 'n':
				case 'v':
					h.verbose = true
				default:
					return h, usageError{fmt.Errorf("unknown flag -%c (mount(8) helpers take -s, -f, -n, -v and -o)", c)}
				}
			}
		default:
			pos = append(pos, a)
		}
	}
	if len(pos) != 2 {
		return h, usageError{fmt.Errorf("want BUCKET[/PREFIX] MOUNTPOINT, got %d argument(s)", len(pos))}
	}
	h.spec, h.dir = pos[0], pos[1]
	return h, nil
}

// informational reports whether a mount(8) option is for mount(8),
// systemd or fstab readers, not for us.
func informational(key string) bool {
	switch key {
	case "_netdev", "nofail", "noauto", "auto", "user", "nouser", "users", "owner", "group",
		"defaults", "rw", "nosuid", "nodev", "comment":
		return true
	}
	return strings.HasPrefix(key, "x-")
}

// mountCommandArgs turns the helper's options into `adaptfs mount`
// arguments. Unknown options are errors naming them, or, sloppy, warnings.
func (h helperArgs) mountCommandArgs() ([]string, error) {
	var out, keys []string
	probe := config.Default()
	for _, o := range h.opts {
		for item := range strings.SplitSeq(o, ",") {
			item = strings.TrimSpace(item)
			key, value, hasValue := strings.Cut(item, "=")
			switch {
			case item == "" || informational(key):
			case key == "config":
				if !hasValue || value == "" {
					return nil, fmt.Errorf("option %q: needs a file (config=/etc/adaptfs/adaptfs.toml)", item)
				}
				out = append(out, "--config", value)
			default:
				if err := probe.ApplyOptions(item); err != nil {
					if !h.sloppy {
						return nil, err
					}
					fmt.Fprintf(os.Stderr, "mount.adaptfs: ignoring option %q (sloppy): %v\n", item, err)
					continue
				}
				keys = append(keys, item)
			}
		}
	}
	if len(keys) > 0 {
		out = append(out, "-o", strings.Join(keys, ","))
	}
	if h.verbose {
		out = append(out, "--log-level", "debug")
	}
	return append(out, h.spec, h.dir), nil
}

func cmdMountHelper(ctx context.Context, args []string) error {
	// mount(8) runs helpers without HOME: the AWS chain's shared files
	// (~/.aws) and the default staging directory need it.
	if os.Getenv("HOME") == "" {
		if u, err := user.Current(); err == nil && u.HomeDir != "" {
			os.Setenv("HOME", u.HomeDir)
		}
	}
	h, err := parseHelperArgs(args)
	if errors.Is(err, errHelp) {
		fmt.Print(helperUsage)
		return err
	}
	if err != nil {
		return err
	}
	margs, err := h.mountCommandArgs()
	if err != nil {
		return err
	}
	if h.fake {
		ma, err := parseMount(margs)
		if err != nil {
			return err
		}
		_, err = checkMountpoint(ma.mountpoint, ma.cfg.AllowNonEmpty)
		return err
	}
	return cmdMount(ctx, margs)
}
