package test

// TestReference is a model-based (state-machine) test: rapid generates
// sequences of file-system operations, each is applied to a plain in-memory
// reference model and to a real adaptfs mount over the real test server, and
// after every step the mount is walked (readdir + stat + read) and compared
// with the model. After `adaptfs sync` the bucket itself is compared too.
//
// Running it:
//
//	go test -run TestReference -count=1 -v ./test/     bounded (part of make test)
//	make reftest                                      long run (20 min)
//
// A failure prints the minimal sequence as a Go script; add it to refCases
// (reftest_cases_test.go), which TestReferenceCases replays in make test.
// The bugs it found, each kept there: a zero-length write, rmdir over a
// cached listing, a rename or an unlink while an upload was being
// committed, a kill -9 after a change in place to a file whose manifest
// said closed, an object replaced behind the kernel's writeback cache
// (TestReferenceWritebackStaleSize), 20 bytes lost by an append after
// close, a file's old name taken again while its multipart upload, bound
// to that name, still ran, sync returning before a given-up multipart
// upload was aborted; and in the model itself, a durable content that
// shared its bytes with the current one. And one behaviour the model accepts
// instead: a flush from a fork+exec of the writer counts as close
// (TestReferenceExecFlushMarksClosed, skipped).
//
// Environment:
//
//	ADAPTFS_REFTEST_SECONDS  run for this long instead of a fixed number of
//	                         sequences (make reftest sets 1200)
//	ADAPTFS_REFTEST_SEED     base seed (default: fixed for the bounded run,
//	                         random for the long one; always printed)
//	ADAPTFS_REFTEST_CHECKS   sequences of the bounded run (default 6)
//
// rapid's own flags work as usual (-rapid.seed, -rapid.checks, -rapid.steps,
// -rapid.failfile, -rapid.v). A failing sequence is shrunk, logged action by
// action, and saved by rapid under testdata/rapid/TestReference/ (not
// committed: a fail file replays rapid's raw bits, which mean another
// sequence once a generator changes; the Go script does not).
//
// The model's choices where S3 and POSIX disagree are written down in
// docs/ARCHITECTURE.md ("Reference model: where S3 and POSIX disagree") and
// next to the code below.

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"math/rand/v2"
	"os"
	"path"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"pgregory.net/rapid"

	adaptfs "github.com/adaptfs/adaptfs/fs"
	"github.com/adaptfs/adaptfs/test/harness"
)

const (
	refDefaultChecks = 6 // sequences in the bounded run (make test)
	// refDefaultSeed is the bounded run's seed unless one is given.
	refDefaultSeed = 3819761384775210832
	refMaxOpen     = 3 // files open for writing at once
	refMaxDepth    = 3 // directory depth
)

// Names: ASCII letters mostly, now and then a space or UTF-8. Files and
// directories draw from different pools so that most operations are valid;
// errors are still exercised (rmdir of a non-empty directory, mkdir of an
// existing one).
var (
	refFileNames = []string{"a", "b", "c", "d", "e", "f", "Log", "data", "a b", "ünï"}
	refDirNames  = []string{"da", "db", "dc", "sub", "x y", "dír"}
)

// refFile is one regular file of the model.
type refFile struct {
	data []byte
	perm os.FileMode
	// durable is the content as of the last successful close(2) or fsync
	// (nil: never closed). After kill -9 a file that is not open keeps
	// data; a file open for writing comes back as durable, or, when it had
	// been closed before, possibly as data (see the ARCHITECTURE note: a
	// closed file reopened while still staged is updated in place).
	durable []byte
	// flushes: the content at each FUSE flush the daemon saw since the
	// last close/fsync without the file being closed (see Kill).
	flushes [][]byte
}

// refModel is the reference: paths (slash-separated, relative to the mount
// root, "" is the root) to files, and the set of directories. Every
// directory in the model was made by mkdir (or moved by a rename), so it
// has a marker object in the bucket; a directory therefore exists exactly
// while the model says so, and outlives its last file.
type refModel struct {
	files map[string]*refFile
	dirs  map[string]bool // "" (root) included
}

func (m *refModel) isDir(p string) bool { return m.dirs[p] }

// children returns the names directly in dir, with whether each is a dir.
func (m *refModel) children(dir string) map[string]bool {
	out := map[string]bool{}
	for p := range m.files {
		if path.Dir(p) == dirOrDot(dir) {
			out[path.Base(p)] = false
		}
	}
	for p := range m.dirs {
		if p != "" && path.Dir(p) == dirOrDot(dir) {
			out[path.Base(p)] = true
		}
	}
	return out
}

func dirOrDot(dir string) string {
	if dir == "" {
		return "."
	}
	return dir
}

func join(dir, name string) string {
	if dir == "" {
		return name
	}
	return dir + "/" + name
}

func under(p, dir string) bool { return strings.HasPrefix(p, dir+"/") }

func depth(p string) int {
	if p == "" {
		return 0
	}
	return strings.Count(p, "/") + 1
}

// refHandle is a file open for writing (O_RDWR).
type refHandle struct {
	f    *os.File
	path string
}

// refMachine is one sequence: the model, the mount and the action log.
type refMachine struct {
	srv     *harness.Server
	bucket  string
	mntDir  string
	staging string
	extra   []string
	ttlWait time.Duration // how long a change behind the mount's back may stay unseen
	// writeback: the kernel's writeback cache is on (it keeps the size of
	// an inode it holds whatever the daemon says; adaptfs hands out a new
	// inode when a lookup finds another version, TestReferenceWritebackStaleSize).
	writeback bool
	mnt       *harness.Mount

	model   refModel
	open    []*refHandle
	step    int
	actions []string

	// For the Go replay of a failure: the draws of the setup, of every step
	// done, and of the step under way; replay holds a script's draws.
	setup     []refDraw
	steps     []refStep
	cur       *refStep
	replay    []refDraw
	replaying bool
}

var refCase atomic.Int64

func TestReference(t *testing.T) {
	requireFuse(t)
	seconds, _ := strconv.Atoi(os.Getenv("ADAPTFS_REFTEST_SECONDS"))
	seed, _ := strconv.ParseUint(os.Getenv("ADAPTFS_REFTEST_SEED"), 0, 64)
	set := map[string]bool{}
	// From the command line only: flag.Visit also lists flags that other
	// tests set with flag.Set (TestReferenceCases sets rapid.checks), and
	// the bounded run then took rapid's default of 100 sequences.
	for _, a := range os.Args[1:] {
		name, _, _ := strings.Cut(strings.TrimLeft(a, "-"), "=")
		if strings.HasPrefix(a, "-") {
			set[name] = true
		}
	}
	if set["rapid.seed"] {
		seed, _ = strconv.ParseUint(flag.Lookup("rapid.seed").Value.String(), 0, 64)
	}
	if seed == 0 && seconds <= 0 {
		// make test: the same sequences every run, so that CI fails only
		// on a change, not on a new random draw (make reftest draws).
		seed = refDefaultSeed
	}
	if seed == 0 {
		seed = rand.Uint64() >> 1
	}
	checks := refDefaultChecks
	if n, err := strconv.Atoi(os.Getenv("ADAPTFS_REFTEST_CHECKS")); err == nil && n > 0 {
		checks = n
	}
	if set["rapid.checks"] {
		checks, _ = strconv.Atoi(flag.Lookup("rapid.checks").Value.String())
	}
	restore := func(name string) {
		old := flag.Lookup(name).Value.String()
		t.Cleanup(func() { _ = flag.Set(name, old) })
	}
	restore("rapid.seed")
	restore("rapid.checks")
	if !set["rapid.shrinktime"] && os.Getenv("RAPID_SHRINKTIME") == "" {
		// A step takes tens of milliseconds to seconds: rapid's 30 s
		// leave sequences long.
		restore("rapid.shrinktime")
		mustSet(t, "rapid.shrinktime", "2m")
	}

	srv := harness.StartServerTB(t)
	prop := func(rt *rapid.T) { runReference(rt, srv, t.TempDir(), nil) }

	if seconds <= 0 {
		t.Logf("reference test: %d sequences, seed %d (replay: ADAPTFS_REFTEST_SEED=%d)", checks, seed, seed)
		mustSet(t, "rapid.seed", strconv.FormatUint(seed, 10))
		mustSet(t, "rapid.checks", strconv.Itoa(checks))
		start := time.Now()
		rapid.Check(t, prop)
		t.Logf("reference test: %d sequences in %v", checks, time.Since(start).Round(time.Second))
		return
	}
	// Long run: rounds of a few sequences each, until the time is up.
	deadline := time.Now().Add(time.Duration(seconds) * time.Second)
	t.Logf("reference test: running for %ds from seed %d (replay a round with ADAPTFS_REFTEST_SEED=<round seed>)", seconds, seed)
	const perRound = 4
	rounds := 0
	for time.Now().Before(deadline) {
		s := seed + uint64(rounds)*1000
		t.Logf("round %d: seed %d", rounds, s)
		mustSet(t, "rapid.seed", strconv.FormatUint(s, 10))
		mustSet(t, "rapid.checks", strconv.Itoa(perRound))
		rapid.Check(t, prop)
		rounds++
	}
	t.Logf("reference test: %d rounds, %d sequences, %d actions in %ds", rounds, rounds*perRound, refActions.Load(), seconds)
}

var refActions atomic.Int64

func mustSet(t *testing.T, name, value string) {
	t.Helper()
	if err := flag.Set(name, value); err != nil {
		t.Fatal(err)
	}
}

// runReference is one rapid test case: a fresh bucket and mount, then a
// random sequence of actions.
func runReference(t *rapid.T, srv *harness.Server, tmp string, script *refScript) {
	n := refCase.Add(1)
	dir, err := os.MkdirTemp(tmp, "case-")
	if err != nil {
		t.Fatal(err)
	}
	// Mount options: the listing and attribute caches either off (a change
	// behind the mount's back shows at once) or at 1 s (the action waits);
	// the write-back delay at its default, 0 or 1 h (nothing uploads before
	// sync, fsync or unmount: kill -9 then finds everything staged); the
	// kernel's writeback cache on (the default) or off.
	sm := &refMachine{
		srv:     srv,
		bucket:  fmt.Sprintf("ref-%d", n),
		mntDir:  filepath.Join(dir, "mnt"),
		staging: filepath.Join(dir, "staging"),
		model:   refModel{files: map[string]*refFile{}, dirs: map[string]bool{"": true}},
		cur:     &refStep{},
	}
	if script != nil {
		sm.replay = script.Setup
		sm.steps = make([]refStep, 0, len(script.Steps))
	}
	ttl := draw(sm, t, rapid.SampledFrom([]string{"0s", "1s"}), "cache_ttl")
	wbd := draw(sm, t, rapid.SampledFrom([]string{"500ms", "0s", "1h"}), "write_back_delay")
	wbc := draw(sm, t, rapid.Bool(), "writeback_cache")
	sm.extra = []string{"-o", fmt.Sprintf("dir_cache_ttl=%s,attr_cache_ttl=%s,write_back_delay=%s,writeback_cache=%v", ttl, ttl, wbd, wbc)}
	sm.writeback = wbc
	sm.setup, sm.cur = sm.cur.Draws, nil
	if ttl != "0s" {
		sm.ttlWait = 1500 * time.Millisecond
	}
	t.Logf("case %d: bucket %s, options %s", n, sm.bucket, sm.extra[1])
	if err := srv.CreateBucket(t.Context(), sm.bucket); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		sm.closeAll()
		if sm.mnt != nil {
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()
			if err := sm.mnt.Unmount(ctx); err != nil {
				t.Logf("cleanup: %v", err)
			}
		}
		os.RemoveAll(dir)
	})
	sm.mount(t)
	if script != nil {
		sm.replaySteps(t, script.Steps)
		return
	}
	actions := rapid.StateMachineActions(sm)
	for name, act := range actions {
		if name == "" {
			continue // Check
		}
		actions[name] = func(t *rapid.T) {
			sm.cur = &refStep{Action: name}
			act(t) // a skip ends here, and the step is not recorded
			sm.steps, sm.cur = append(sm.steps, *sm.cur), nil
		}
	}
	t.Repeat(actions)
}

func (sm *refMachine) mount(t *rapid.T) {
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	m, err := harness.StartMount(ctx, harness.MountOptions{
		Bin: shared.bin, Server: sm.srv, BucketPath: sm.bucket,
		Dir: sm.mntDir, StagingDir: sm.staging, ExtraArgs: sm.extra,
	})
	if err != nil {
		t.Fatal(err)
	}
	sm.mnt = m
}

func (sm *refMachine) p(rel string) string { return filepath.Join(sm.mntDir, rel) }

// log records an action; rapid prints the log of the minimal failing case.
func (sm *refMachine) log(t *rapid.T, format string, args ...any) {
	sm.step++
	refActions.Add(1)
	s := fmt.Sprintf(format, args...)
	sm.actions = append(sm.actions, s)
	t.Logf("step %d: %s", sm.step, s)
}

func (sm *refMachine) fail(t *rapid.T, format string, args ...any) {
	t.Helper()
	t.Fatalf("%s\nactions so far:\n  %s\n%s\nas a Go test case (add it to refCases in reftest_cases_test.go):\n%s",
		fmt.Sprintf(format, args...), strings.Join(sm.actions, "\n  "), sm.mnt.LogTail(25), sm.goCase())
}

func (sm *refMachine) isOpen(p string) bool {
	return slices.ContainsFunc(sm.open, func(h *refHandle) bool { return h.path == p })
}

// openUnder reports whether a file under dir is open.
func (sm *refMachine) openUnder(dir string) bool {
	return slices.ContainsFunc(sm.open, func(h *refHandle) bool { return under(h.path, dir) })
}

func (sm *refMachine) closeAll() {
	for _, h := range sm.open {
		h.f.Close()
	}
	sm.open = nil
}

// --- drawing ---------------------------------------------------------------

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

func (sm *refMachine) drawDir(t *rapid.T, label string) string {
	return draw(sm, t, rapid.SampledFrom(sortedKeys(sm.model.dirs)), label)
}

// drawFile returns an existing file not open for writing; skips if none.
func (sm *refMachine) drawClosedFile(t *rapid.T, label string) string {
	var cands []string
	for _, p := range sortedKeys(sm.model.files) {
		if !sm.isOpen(p) {
			cands = append(cands, p)
		}
	}
	if len(cands) == 0 {
		t.Skip("no closed file")
	}
	return draw(sm, t, rapid.SampledFrom(cands), label)
}

// drawFileTarget returns a path for a file in an existing directory that is
// neither a directory nor open (it may be an existing file).
func (sm *refMachine) drawFileTarget(t *rapid.T, label string) string {
	dir := sm.drawDir(t, label+"_dir")
	name := draw(sm, t, rapid.SampledFrom(refFileNames), label+"_name")
	p := join(dir, name)
	if sm.model.isDir(p) || sm.isOpen(p) {
		t.Skip("target is a directory or open")
	}
	return p
}

// content is deterministic bytes from a drawn size and seed: drawing every
// byte would make sequences slow to generate and huge to store.
type content struct {
	size int
	seed uint64
}

func (c content) bytes() []byte {
	b := make([]byte, c.size)
	var key [32]byte
	for i := range 8 {
		key[i] = byte(c.seed >> (8 * i))
	}
	rand.NewChaCha8(key).Read(b)
	return b
}

// drawContent: mostly 0–200 KiB, sometimes up to ~12 MiB so that files
// stream as multipart uploads (parts are at least 5 MiB).
func (sm *refMachine) drawContent(t *rapid.T, label string, small int) content {
	var size int
	if draw(sm, t, rapid.IntRange(0, 14), label+"_big") == 0 {
		size = draw(sm, t, rapid.IntRange(5<<20, 12<<20), label+"_size")
	} else {
		size = draw(sm, t, rapid.IntRange(0, small), label+"_size")
	}
	return content{size: size, seed: draw(sm, t, rapid.Uint64(), label+"_seed")}
}

func (sm *refMachine) drawHandle(t *rapid.T) *refHandle {
	if len(sm.open) == 0 {
		t.Skip("nothing open")
	}
	return sm.open[draw(sm, t, rapid.IntRange(0, len(sm.open)-1), "handle")]
}

// --- actions on the file system --------------------------------------------

// CreateWriteClose creates (or overwrites, O_TRUNC) a file, writes it and
// closes it in one step.
func (sm *refMachine) CreateWriteClose(t *rapid.T) {
	p := sm.drawFileTarget(t, "path")
	c := sm.drawContent(t, "data", 200<<10)
	perm := draw(sm, t, rapid.SampledFrom([]os.FileMode{0o644, 0o600}), "perm")
	sm.log(t, "create+write+close %q size=%d seed=%d perm=%o", p, c.size, c.seed, perm)
	data := c.bytes()
	f, err := os.OpenFile(sm.p(p), os.O_WRONLY|os.O_CREATE|os.O_TRUNC, perm)
	if err != nil {
		sm.fail(t, "create %q: %v", p, err)
	}
	if _, err := f.Write(data); err != nil {
		sm.fail(t, "write %q: %v", p, err)
	}
	if err := f.Close(); err != nil {
		sm.fail(t, "close %q: %v", p, err)
	}
	if old := sm.model.files[p]; old != nil {
		perm = old.perm // O_CREAT does not change an existing file's mode
	}
	sm.model.files[p] = &refFile{data: data, perm: perm, durable: data}
}

// Open opens a file for writing (O_RDWR|O_CREAT, no truncation): a new
// empty file or an existing one for update.
func (sm *refMachine) Open(t *rapid.T) {
	if len(sm.open) >= refMaxOpen {
		t.Skip("enough files open")
	}
	p := sm.drawFileTarget(t, "path")
	sm.log(t, "open %q O_RDWR|O_CREAT as h%d", p, len(sm.open))
	f, err := os.OpenFile(sm.p(p), os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		sm.fail(t, "open %q: %v", p, err)
	}
	sm.open = append(sm.open, &refHandle{f: f, path: p})
	if sm.model.files[p] == nil {
		sm.model.files[p] = &refFile{data: []byte{}, perm: 0o644}
	}
}

// WriteAt writes at an offset of an open file, possibly past its end.
func (sm *refMachine) WriteAt(t *rapid.T) {
	h := sm.drawHandle(t)
	mf := sm.model.files[h.path]
	off := draw(sm, t, rapid.IntRange(0, len(mf.data)+64<<10), "off")
	if draw(sm, t, rapid.Bool(), "at_end") {
		off = len(mf.data)
	}
	c := sm.drawContent(t, "data", 64<<10)
	sm.log(t, "write %q at %d size=%d seed=%d", h.path, off, c.size, c.seed)
	data := c.bytes()
	if _, err := h.f.WriteAt(data, int64(off)); err != nil {
		sm.fail(t, "pwrite %q: %v", h.path, err)
	}
	if len(data) == 0 {
		return // POSIX: a write of nothing changes nothing, not even the size
	}
	// A new slice: durable (and an ambiguity list) may share the old one.
	mf.data = slices.Clone(mf.data)
	if end := off + len(data); end > len(mf.data) {
		mf.data = append(mf.data, make([]byte, end-len(mf.data))...)
	}
	copy(mf.data[off:], data)
}

// Truncate changes the size of an open file (ftruncate).
func (sm *refMachine) Truncate(t *rapid.T) {
	h := sm.drawHandle(t)
	mf := sm.model.files[h.path]
	size := draw(sm, t, rapid.IntRange(0, len(mf.data)+len(mf.data)/2+1000), "size")
	sm.log(t, "ftruncate %q to %d", h.path, size)
	if err := h.f.Truncate(int64(size)); err != nil {
		sm.fail(t, "ftruncate %q: %v", h.path, err)
	}
	if size <= len(mf.data) {
		mf.data = mf.data[:size:size]
	} else {
		mf.data = append(mf.data, make([]byte, size-len(mf.data))...)
	}
}

// Fsync waits until the open file's content is complete in S3.
func (sm *refMachine) Fsync(t *rapid.T) {
	h := sm.drawHandle(t)
	sm.log(t, "fsync %q", h.path)
	if err := h.f.Sync(); err != nil {
		sm.fail(t, "fsync %q: %v", h.path, err)
	}
	mf := sm.model.files[h.path]
	mf.durable, mf.flushes = slices.Clone(mf.data), nil
}

// Close closes an open file.
func (sm *refMachine) Close(t *rapid.T) {
	h := sm.drawHandle(t)
	sm.log(t, "close %q", h.path)
	sm.open = slices.DeleteFunc(sm.open, func(x *refHandle) bool { return x == h })
	if err := h.f.Close(); err != nil {
		sm.fail(t, "close %q: %v", h.path, err)
	}
	mf := sm.model.files[h.path]
	mf.durable, mf.flushes = slices.Clone(mf.data), nil
}

// Append opens an existing file with O_APPEND, writes and closes.
func (sm *refMachine) Append(t *rapid.T) {
	p := sm.drawClosedFile(t, "path")
	c := sm.drawContent(t, "data", 64<<10)
	sm.log(t, "append to %q size=%d seed=%d", p, c.size, c.seed)
	data := c.bytes()
	f, err := os.OpenFile(sm.p(p), os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		sm.fail(t, "open %q O_APPEND: %v", p, err)
	}
	if _, err := f.Write(data); err != nil {
		sm.fail(t, "append %q: %v", p, err)
	}
	if err := f.Close(); err != nil {
		sm.fail(t, "close %q: %v", p, err)
	}
	mf := sm.model.files[p]
	mf.data = append(slices.Clone(mf.data), data...)
	mf.durable = mf.data
}

// RenameFile renames a closed file, possibly over an existing closed file.
func (sm *refMachine) RenameFile(t *rapid.T) {
	from := sm.drawClosedFile(t, "from")
	to := sm.drawFileTarget(t, "to")
	if to == from {
		t.Skip("same name")
	}
	sm.log(t, "rename file %q -> %q (target exists: %v)", from, to, sm.model.files[to] != nil)
	if err := os.Rename(sm.p(from), sm.p(to)); err != nil {
		sm.fail(t, "rename %q -> %q: %v", from, to, err)
	}
	sm.model.files[to] = sm.model.files[from]
	delete(sm.model.files, from)
}

// RenameDir renames a directory (with no open file below it) to a new name
// in an existing directory that is not below it.
func (sm *refMachine) RenameDir(t *rapid.T) {
	var cands []string
	for _, d := range sortedKeys(sm.model.dirs) {
		if d != "" && !sm.openUnder(d) {
			cands = append(cands, d)
		}
	}
	if len(cands) == 0 {
		t.Skip("no directory to rename")
	}
	from := draw(sm, t, rapid.SampledFrom(cands), "from")
	parent := sm.drawDir(t, "to_parent")
	to := join(parent, draw(sm, t, rapid.SampledFrom(refDirNames), "to_name"))
	if parent == from || under(parent, from) || sm.model.isDir(to) || sm.model.files[to] != nil {
		t.Skip("target inside the source or existing")
	}
	// Keep the tree within refMaxDepth.
	maxBelow := 0
	for d := range sm.model.dirs {
		if d == from || under(d, from) {
			maxBelow = max(maxBelow, depth(d)-depth(from))
		}
	}
	if depth(to)+maxBelow > refMaxDepth {
		t.Skip("too deep")
	}
	sm.log(t, "rename dir %q -> %q", from, to)
	if err := os.Rename(sm.p(from), sm.p(to)); err != nil {
		sm.fail(t, "rename dir %q -> %q: %v", from, to, err)
	}
	for _, p := range sortedKeys(sm.model.files) {
		if under(p, from) {
			sm.model.files[to+strings.TrimPrefix(p, from)] = sm.model.files[p]
			delete(sm.model.files, p)
		}
	}
	for _, d := range sortedKeys(sm.model.dirs) {
		if d == from || under(d, from) {
			delete(sm.model.dirs, d)
			sm.model.dirs[to+strings.TrimPrefix(d, from)] = true
		}
	}
}

// Unlink removes a closed file.
func (sm *refMachine) Unlink(t *rapid.T) {
	p := sm.drawClosedFile(t, "path")
	sm.log(t, "unlink %q", p)
	if err := os.Remove(sm.p(p)); err != nil {
		sm.fail(t, "unlink %q: %v", p, err)
	}
	delete(sm.model.files, p)
}

// Mkdir makes a directory; an existing one fails with EEXIST.
func (sm *refMachine) Mkdir(t *rapid.T) {
	parent := sm.drawDir(t, "parent")
	if depth(parent) >= refMaxDepth {
		t.Skip("too deep")
	}
	p := join(parent, draw(sm, t, rapid.SampledFrom(refDirNames), "name"))
	exists := sm.model.isDir(p)
	sm.log(t, "mkdir %q (exists: %v)", p, exists)
	err := syscall.Mkdir(sm.p(p), 0o755)
	switch {
	case exists && !errors.Is(err, syscall.EEXIST):
		sm.fail(t, "mkdir of existing %q: want EEXIST, got %v", p, errString(err))
	case !exists && err != nil:
		sm.fail(t, "mkdir %q: %v", p, err)
	}
	sm.model.dirs[p] = true
}

// Rmdir removes a directory; a non-empty one fails with ENOTEMPTY.
func (sm *refMachine) Rmdir(t *rapid.T) {
	if len(sm.model.dirs) < 2 {
		t.Skip("no directory")
	}
	var cands []string
	for _, d := range sortedKeys(sm.model.dirs) {
		if d != "" {
			cands = append(cands, d)
		}
	}
	p := draw(sm, t, rapid.SampledFrom(cands), "path")
	empty := len(sm.model.children(p)) == 0
	sm.log(t, "rmdir %q (empty: %v)", p, empty)
	err := syscall.Rmdir(sm.p(p))
	switch {
	case !empty && !errors.Is(err, syscall.ENOTEMPTY):
		sm.fail(t, "rmdir of non-empty %q: want ENOTEMPTY, got %v", p, errString(err))
	case empty && err != nil:
		sm.fail(t, "rmdir %q: %v", p, err)
	}
	if empty {
		delete(sm.model.dirs, p)
	}
}

// ReadRandom reads a file at random offsets, through a new read-only
// handle or through the file's open writer.
func (sm *refMachine) ReadRandom(t *rapid.T) {
	paths := sortedKeys(sm.model.files)
	if len(paths) == 0 {
		t.Skip("no file")
	}
	p := draw(sm, t, rapid.SampledFrom(paths), "path")
	data := sm.model.files[p].data
	var f *os.File
	if i := slices.IndexFunc(sm.open, func(h *refHandle) bool { return h.path == p }); i >= 0 && draw(sm, t, rapid.Bool(), "via_writer") {
		f = sm.open[i].f
		sm.log(t, "read %q at random offsets through its writer", p)
	} else {
		sm.log(t, "read %q at random offsets", p)
		var err error
		if f, err = os.Open(sm.p(p)); err != nil {
			sm.fail(t, "open %q: %v", p, err)
		}
		defer f.Close()
	}
	n := draw(sm, t, rapid.IntRange(1, 5), "reads")
	for range n {
		off := draw(sm, t, rapid.IntRange(0, len(data)+10), "off")
		size := draw(sm, t, rapid.IntRange(1, 300<<10), "len")
		buf := make([]byte, size)
		got, err := f.ReadAt(buf, int64(off))
		if err != nil && !errors.Is(err, io.EOF) {
			sm.fail(t, "pread %q (%d bytes at %d): %v", p, size, off, err)
		}
		want := data[min(off, len(data)):min(off+size, len(data))]
		if !bytes.Equal(buf[:got], want) {
			sm.fail(t, "pread %q (%d bytes at %d): got %d bytes, want %d (or different bytes)", p, size, off, got, len(want))
		}
	}
}

// --- sync, remount, crash ---------------------------------------------------

// Sync runs `adaptfs sync` and compares the bucket with the model: every
// file that is not open for writing is an object with the model's bytes,
// every directory has its marker, and there is nothing else (the objects of
// files open for writing may be absent or hold an earlier version).
func (sm *refMachine) Sync(t *rapid.T) {
	sm.log(t, "adaptfs sync")
	sm.sync(t)
	sums, markers, err := harness.BucketContents(t.Context(), sm.srv.Client, sm.bucket, "")
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]harness.Sum{}
	for p, f := range sm.model.files {
		if sm.isOpen(p) {
			delete(sums, p)
			continue
		}
		want[p] = sumOf(f.data)
	}
	if d := harness.DiffSums(want, sums); len(d) > 0 {
		sm.fail(t, "bucket after sync differs from the model:\n%s", strings.Join(d, "\n"))
	}
	var wantMarkers []string
	for d := range sm.model.dirs {
		if d != "" {
			wantMarkers = append(wantMarkers, d+"/")
		}
	}
	sort.Strings(wantMarkers)
	if !slices.Equal(markers, wantMarkers) {
		sm.fail(t, "directory markers after sync: %q, want %q", markers, wantMarkers)
	}
	if ups, _ := harness.ListMultipartUploads(t.Context(), sm.srv.Client, sm.bucket); len(ups) > 0 && len(sm.open) == 0 {
		sm.fail(t, "multipart uploads left after sync with nothing open: %v", ups)
	}
}

func (sm *refMachine) sync(t *rapid.T) {
	// Exec'ing `adaptfs sync` closes this process's descriptors in the
	// child: a FUSE flush for every open file.
	for _, h := range sm.open {
		mf := sm.model.files[h.path]
		mf.flushes = append(mf.flushes, slices.Clone(mf.data))
	}
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Minute)
	defer cancel()
	if err := sm.mnt.Sync(ctx); err != nil {
		sm.fail(t, "adaptfs sync: %v", err)
	}
}

// Remount closes every open file, unmounts (which waits for the uploads)
// and mounts again over the same staging directory.
func (sm *refMachine) Remount(t *rapid.T) {
	sm.log(t, "close all, unmount, mount")
	for _, h := range sm.open {
		if err := h.f.Close(); err != nil {
			sm.fail(t, "close %q: %v", h.path, err)
		}
		mf := sm.model.files[h.path]
		mf.durable, mf.flushes = slices.Clone(mf.data), nil
	}
	sm.open = nil
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Minute)
	defer cancel()
	if err := sm.mnt.Unmount(ctx); err != nil {
		sm.fail(t, "unmount: %v", err)
	}
	sm.mnt = nil
	sm.mount(t)
}

// Kill kills the daemon with SIGKILL and mounts again. Files that were
// closed (or fsynced) survive with their content. A file open for writing
// at the kill comes back as of its last close/fsync (absent if it never had
// one), or as the daemon last saw it "closed": FUSE sends a flush for every
// close of a descriptor, also of the copy a fork+exec of the writing
// process closes (CLOEXEC), and adaptfs takes a flush for close. This test
// process execs `adaptfs sync`, so open files get such flushes (flushes);
// and a closed file reopened while still staged is updated in place, so it
// may come back as it was at the kill.
func (sm *refMachine) Kill(t *rapid.T) {
	sm.log(t, "kill -9, mount")
	sm.mnt.Kill()

	ambiguous := map[string][][]byte{}
	for _, h := range sm.open {
		h.f.Close() // the mount is gone: errors are expected
		mf := sm.model.files[h.path]
		var alt [][]byte
		if mf.durable != nil || len(mf.flushes) > 0 {
			alt = append(slices.Clone(mf.flushes), mf.data)
		}
		if mf.durable == nil {
			delete(sm.model.files, h.path)
		} else {
			mf.data = mf.durable
		}
		if len(alt) > 0 {
			ambiguous[h.path] = alt
		}
		mf.flushes = nil
	}
	sm.open = nil
	sm.mount(t)
	for _, p := range sortedKeys(ambiguous) {
		got, err := os.ReadFile(sm.p(p))
		if err != nil {
			continue // absent: the model says so unless it had a durable version
		}
		for i, c := range ambiguous[p] {
			if bytes.Equal(got, c) {
				t.Logf("  %q came back as at its flush #%d of %d (the last is its content at the kill)", p, i+1, len(ambiguous[p]))
				mf := sm.model.files[p]
				if mf == nil {
					mf = &refFile{perm: 0o644}
					sm.model.files[p] = mf
				}
				mf.data, mf.durable = c, c
				break
			}
		}
	}
}

// --- changes behind the mount's back ----------------------------------------

// S3Put puts an object with a plain S3 client: a new file or a new version
// of a closed one. Everything closed is synced first, so that no pending
// upload of ours replaces it afterwards.
func (sm *refMachine) S3Put(t *rapid.T) {
	p := sm.drawFileTarget(t, "path")
	c := sm.drawContent(t, "data", 200<<10)
	sm.log(t, "sync, then S3 PutObject %q size=%d seed=%d (exists: %v)", p, c.size, c.seed, sm.model.files[p] != nil)
	sm.sync(t)
	data := c.bytes()
	_, err := sm.srv.Client.PutObject(t.Context(), &s3.PutObjectInput{
		Bucket: aws.String(sm.bucket), Key: aws.String(p), Body: bytes.NewReader(data),
	})
	if err != nil {
		t.Fatal(err)
	}
	// Objects without our metadata get 0666 &^ umask (022).
	sm.model.files[p] = &refFile{data: data, perm: 0o644, durable: data}
	sm.awaitVisible(t, p)
}

// S3Delete deletes a closed file's object with a plain S3 client, after a
// sync (a staged copy would upload it again).
func (sm *refMachine) S3Delete(t *rapid.T) {
	p := sm.drawClosedFile(t, "path")
	sm.log(t, "sync, then S3 DeleteObject %q", p)
	sm.sync(t)
	if _, err := sm.srv.Client.DeleteObject(t.Context(), &s3.DeleteObjectInput{Bucket: aws.String(sm.bucket), Key: aws.String(p)}); err != nil {
		t.Fatal(err)
	}
	delete(sm.model.files, p)
	sm.awaitVisible(t, p)
}

// awaitVisible waits until the mount shows p as the model has it: at once
// with the caches off, within the cache TTL otherwise. A synced file's
// staged copy is dropped right after its upload, which can take a moment
// more.
func (sm *refMachine) awaitVisible(t *rapid.T, p string) {
	deadline := time.Now().Add(sm.ttlWait + 3*time.Second)
	for {
		err := sm.checkFile(p)
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			sm.fail(t, "change behind the mount's back not visible after %v: %v", sm.ttlWait+3*time.Second, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// checkFile compares one path of the mount with the model.
func (sm *refMachine) checkFile(p string) error {
	mf := sm.model.files[p]
	st, err := os.Stat(sm.p(p))
	if mf == nil {
		if err == nil {
			return fmt.Errorf("%q exists in the mount, not in the model", p)
		}
		if !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("stat %q: %v, want ENOENT", p, err)
		}
		return nil
	}
	if err != nil {
		return fmt.Errorf("stat %q: %w", p, err)
	}
	if !st.Mode().IsRegular() || st.Size() != int64(len(mf.data)) || st.Mode().Perm() != mf.perm {
		return fmt.Errorf("stat %q: mode %v size %d, want -%v size %d", p, st.Mode(), st.Size(), mf.perm, len(mf.data))
	}
	got, err := os.ReadFile(sm.p(p))
	if err != nil {
		return fmt.Errorf("read %q: %w", p, err)
	}
	if !bytes.Equal(got, mf.data) {
		i := 0
		for i < min(len(got), len(mf.data)) && got[i] == mf.data[i] {
			i++
		}
		return fmt.Errorf("read %q: %d bytes, want %d; first difference at %d", p, len(got), len(mf.data), i)
	}
	return nil
}

// Check walks the whole mount after every action: readdir of every
// directory, stat and read of every file.
func (sm *refMachine) Check(t *rapid.T) {
	for _, dir := range sortedKeys(sm.model.dirs) {
		ents, err := os.ReadDir(sm.p(dir))
		if err != nil {
			sm.fail(t, "readdir %q: %v", dir, err)
		}
		got := map[string]bool{}
		for _, e := range ents {
			if dir == "" && e.Name() == adaptfs.StatsDir {
				continue
			}
			got[e.Name()] = e.IsDir()
		}
		want := sm.model.children(dir)
		if !mapsEqual(got, want) {
			sm.fail(t, "readdir %q: got %v, want %v (true: directory)", dir, got, want)
		}
		for name, isDir := range want {
			if isDir {
				st, err := os.Stat(sm.p(join(dir, name)))
				if err != nil || !st.IsDir() {
					sm.fail(t, "stat of directory %q: %v", join(dir, name), errString(err))
				}
			}
		}
	}
	for _, p := range sortedKeys(sm.model.files) {
		if err := sm.checkFile(p); err != nil {
			sm.fail(t, "%v", err)
		}
	}
}

func mapsEqual(a, b map[string]bool) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}

// TestReferenceWritebackStaleSize is the minimal sequence TestReference
// found with the kernel's writeback cache on (the default): an object
// replaced behind the mount's back kept its old size in the mount for as
// long as the kernel held the file's inode. In writeback mode the kernel
// trusts its own i_size for regular files and ignores the size in FUSE
// replies, so a lookup that finds another version of the object (ETag)
// under a name now gets a new inode (dirNode.objectChild).
func TestReferenceWritebackStaleSize(t *testing.T) {
	r := newRig(t, "", "-o", "dir_cache_ttl=0s,attr_cache_ttl=0s")
	if err := os.WriteFile(r.path("b"), []byte("1"), 0o644); err != nil {
		t.Fatal(err)
	}
	r.sync(t)
	if _, err := os.Stat(r.path("b")); err != nil { // the kernel now holds the inode
		t.Fatal(err)
	}
	data := []byte("fifteen bytes!!")
	if _, err := r.srv.Client.PutObject(t.Context(), &s3.PutObjectInput{
		Bucket: aws.String(r.bucket), Key: aws.String("b"), Body: bytes.NewReader(data),
	}); err != nil {
		t.Fatal(err)
	}
	time.Sleep(3 * time.Second) // the staged copy is dropped after its upload
	got, err := os.ReadFile(r.path("b"))
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("after S3 PutObject the mount reads %q (%v), want %q", got, err, data)
	}
}

// TestReferenceExecFlushMarksClosed is the minimal sequence behind a
// TestReference failure: a file created and never closed survives kill -9
// if the writing process ran another program meanwhile (here `adaptfs
// sync`). Go opens files O_CLOEXEC; exec closes the child's copy of the
// descriptor, the kernel sends FUSE FLUSH, and adaptfs takes every flush
// for close(2): it records the manifest as closed, so the next mount
// uploads whatever was staged at the kill. FUSE cannot tell that flush
// from the last close (only RELEASE can, and close(2) does not wait for
// it), so this is not fixed here; the model accepts any content the file
// had at such a flush (refFile.flushes).
func TestReferenceExecFlushMarksClosed(t *testing.T) {
	t.Skip("known: a flush from a fork+exec of the writer counts as close (see comment)")
	r := newRig(t, "", "-o", "write_back_delay=1h")
	f, err := os.OpenFile(r.path("d"), os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.Write([]byte("never closed")); err != nil {
		t.Fatal(err)
	}
	r.sync(t) // fork+exec: FUSE FLUSH of f
	r.mnt.Kill()
	r.mnt = r.mount(t)
	if _, err := os.Stat(r.path("d")); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("a file never closed is in the mount after kill -9: stat: %v", errString(err))
	}
}

// TestReferenceUnlinkDuringUpload is a sequence TestReference found: a file
// is closed, reopened, appended to and closed (its upload starts at once
// with write_back_delay=0s), then unlinked. Unlink cancelled the upload and
// deleted the key, but a PutObject whose body the server already had was
// committed after the DeleteObject, so the bucket kept an object the mount
// no longer showed. A drop now waits for a PutObject in flight as for a
// Complete (stage.TestCommitInFlight is the deterministic version).
func TestReferenceUnlinkDuringUpload(t *testing.T) {
	r := newRig(t, "", "-o", "write_back_delay=0s")
	data := refContent(5243477, 267)
	for i := range 10 {
		name := fmt.Sprintf("e%d", i)
		if err := os.WriteFile(r.path(name), nil, 0o644); err != nil {
			t.Fatal(err)
		}
		f, err := os.OpenFile(r.path(name), os.O_WRONLY|os.O_APPEND, 0)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := f.Write(data); err != nil {
			t.Fatal(err)
		}
		if err := f.Close(); err != nil {
			t.Fatal(err)
		}
		if err := os.Remove(r.path(name)); err != nil {
			t.Fatal(err)
		}
	}
	r.sync(t)
	time.Sleep(time.Second)
	if got, _ := r.objects(t); len(got) > 0 {
		t.Fatalf("unlinked files are in the bucket: %v", got)
	}
}

func refContent(size int, seed uint64) []byte { return content{size: size, seed: seed}.bytes() }
