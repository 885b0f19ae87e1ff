package harness

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"

	"golang.org/x/sync/errgroup"
)

const (
	KiB = int64(1) << 10
	MiB = int64(1) << 20
)

const (
	genBufSize = 1 << 20 // random contents are generated into buffers this big
	genWorkers = 4       // files written at once by GenTree
)

// TreeSpec describes a deterministic data set for GenTree.
type TreeSpec struct {
	Seed                 uint64
	SmallFiles           int
	SmallMin, SmallMax   int64 // sizes drawn uniformly from [min, max]
	MediumFiles          int
	MediumMin, MediumMax int64
	LargeFiles           int
	LargeSize            int64
	Depth                int // directories nest up to this many levels below the root
	// Text fills files with machine-made text (GenText: log, CSV and JSON
	// in turn, about 4:1 with zstd) instead of random bytes.
	Text bool
}

// SpecIssue2 is the data set the end-to-end tests copy: 2,000 small files
// (1 B–64 KiB), 30 medium (1–20 MiB), 2 large (300 MiB each), depth 5;
// about 1 GB.
func SpecIssue2() TreeSpec {
	return TreeSpec{
		Seed:       2,
		SmallFiles: 2000, SmallMin: 1, SmallMax: 64 * KiB,
		MediumFiles: 30, MediumMin: 1 * MiB, MediumMax: 20 * MiB,
		LargeFiles: 2, LargeSize: 300 * MiB,
		Depth: 5,
	}
}

// SpecDemo is the smaller data set of `make demo`: 300 small files, 8
// medium (1–8 MiB), 1 large (64 MiB), depth 4; about 110 MB.
func SpecDemo() TreeSpec {
	return TreeSpec{
		Seed:       1,
		SmallFiles: 300, SmallMin: 1, SmallMax: 64 * KiB,
		MediumFiles: 8, MediumMin: 1 * MiB, MediumMax: 8 * MiB,
		LargeFiles: 1, LargeSize: 64 * MiB,
		Depth: 4,
	}
}

// Name parts. Directory names never contain '.', file names always do, so
// no file can share its path with a directory (which S3-compatible
// servers with a file-system backend cannot store).
var (
	dirBases  = []string{"dir with space", "データ", "photos", "niño", "Ärger", "logs 2024", "δοκιμή", "src", "two  spaces", "a"}
	fileBases = []string{"résumé", "data", "データ", "notes with space", "IMG_", "report-final", "über", "日本語のファイル", "emoji 🎉", "x"}
	fileExts  = []string{".txt", ".bin", ".dat", ".jpg", ".tar.gz", ".json", ".csv"}
)

type genFile struct {
	rel  string
	size int64
	seed uint64
}

// GenTree writes the data set described by spec under dir (created if
// missing) and returns the number of files and bytes written. The same spec
// gives the same names, sizes and contents on every run; contents are
// pseudo-random (incompressible). Names include spaces and UTF-8.
func GenTree(dir string, spec TreeSpec) (files int, bytes int64, err error) {
	list, err := planTree(spec)
	if err != nil {
		return 0, 0, err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return 0, 0, fmt.Errorf("gen tree: %w", err)
	}
	// Contents depend only on each file's seed, so files can be written in
	// any order: a few writers keep both the generator and the disk busy.
	var g errgroup.Group
	g.SetLimit(genWorkers)
	bufs := make(chan []byte, genWorkers)
	for range genWorkers {
		bufs <- make([]byte, genBufSize)
	}
	for _, f := range list {
		g.Go(func() error {
			buf := <-bufs
			defer func() { bufs <- buf }()
			path := filepath.Join(dir, filepath.FromSlash(f.rel))
			if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
				return fmt.Errorf("gen tree: %w", err)
			}
			if spec.Text {
				kinds := []string{TextLog, TextCSV, TextJSON}
				return GenText(path, kinds[f.seed%3], f.size, f.seed)
			}
			if err := writeRandom(path, f.size, f.seed, buf); err != nil {
				return fmt.Errorf("gen tree: %w", err)
			}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return 0, 0, err
	}
	for _, f := range list {
		bytes += f.size
	}
	return len(list), bytes, nil
}

// planTree decides every file's relative path, size and content seed.
func planTree(spec TreeSpec) ([]genFile, error) {
	switch {
	case spec.SmallFiles < 0 || spec.MediumFiles < 0 || spec.LargeFiles < 0:
		return nil, errors.New("gen tree: negative file count")
	case spec.SmallFiles > 0 && (spec.SmallMin < 0 || spec.SmallMax < spec.SmallMin):
		return nil, fmt.Errorf("gen tree: bad small size range [%d, %d]", spec.SmallMin, spec.SmallMax)
	case spec.MediumFiles > 0 && (spec.MediumMin < 0 || spec.MediumMax < spec.MediumMin):
		return nil, fmt.Errorf("gen tree: bad medium size range [%d, %d]", spec.MediumMin, spec.MediumMax)
	case spec.LargeFiles > 0 && spec.LargeSize < 0:
		return nil, fmt.Errorf("gen tree: bad large size %d", spec.LargeSize)
	case spec.Depth < 0:
		return nil, fmt.Errorf("gen tree: bad depth %d", spec.Depth)
	}
	rng := rand.New(rand.NewPCG(spec.Seed, 0x6164617074667331))

	// Directories: one chain down to Depth so the deepest level exists, then
	// more under random parents, about one per 25 files.
	type dirInfo struct {
		rel   string
		depth int
	}
	dirs := []dirInfo{{"", 0}}
	total := spec.SmallFiles + spec.MediumFiles + spec.LargeFiles
	if spec.Depth > 0 {
		nDirs := max(spec.Depth, total/25)
		var shallow []int // indexes of dirs that may get children
		shallow = append(shallow, 0)
		for j := range nDirs {
			var parent dirInfo
			if j < spec.Depth {
				parent = dirs[len(dirs)-1]
			} else {
				parent = dirs[shallow[rng.IntN(len(shallow))]]
			}
			name := fmt.Sprintf("%s %d", dirBases[rng.IntN(len(dirBases))], j)
			d := dirInfo{rel: joinRel(parent.rel, name), depth: parent.depth + 1}
			dirs = append(dirs, d)
			if d.depth < spec.Depth {
				shallow = append(shallow, len(dirs)-1)
			}
		}
	}

	list := make([]genFile, 0, total)
	add := func(size int64) {
		i := len(list)
		name := fmt.Sprintf("%s %d%s", fileBases[rng.IntN(len(fileBases))], i, fileExts[rng.IntN(len(fileExts))])
		d := dirs[rng.IntN(len(dirs))]
		list = append(list, genFile{rel: joinRel(d.rel, name), size: size, seed: mixSeed(spec.Seed, uint64(i))})
	}
	for range spec.SmallFiles {
		add(spec.SmallMin + rng.Int64N(spec.SmallMax-spec.SmallMin+1))
	}
	for range spec.MediumFiles {
		add(spec.MediumMin + rng.Int64N(spec.MediumMax-spec.MediumMin+1))
	}
	for range spec.LargeFiles {
		add(spec.LargeSize)
	}
	return list, nil
}

func joinRel(parent, name string) string {
	if parent == "" {
		return name
	}
	return parent + "/" + name
}

// mixSeed derives a file's content seed from the tree seed and its index
// (splitmix64 finalizer).
func mixSeed(seed, i uint64) uint64 {
	z := seed + (i+1)*0x9e3779b97f4a7c15
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9
	z = (z ^ (z >> 27)) * 0x94d049bb133111eb
	return z ^ (z >> 31)
}

// GenFile writes size pseudo-random bytes determined by seed to path
// (created or truncated).
func GenFile(path string, size int64, seed uint64) error {
	if size < 0 {
		return fmt.Errorf("gen file %s: negative size %d", path, size)
	}
	if err := writeRandom(path, size, seed, make([]byte, min(size, genBufSize))); err != nil {
		return fmt.Errorf("gen file: %w", err)
	}
	return nil
}

func writeRandom(path string, size int64, seed uint64, buf []byte) (err error) {
	var key [32]byte
	binary.LittleEndian.PutUint64(key[0:], seed)
	copy(key[8:], "adaptfs harness content")
	src := rand.NewChaCha8(key)

	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o644)
	if err != nil {
		return err
	}
	defer func() {
		if cerr := f.Close(); err == nil && cerr != nil {
			err = cerr
		}
	}()
	for left := size; left > 0; {
		chunk := buf[:min(left, int64(len(buf)))]
		_, _ = src.Read(chunk) // ChaCha8.Read never fails
		if _, err := f.Write(chunk); err != nil {
			return err
		}
		left -= int64(len(chunk))
	}
	return nil
}

// Kinds of compressible text GenText writes.
const (
	TextLog  = "log"
	TextCSV  = "csv"
	TextJSON = "json"
)

// GenText writes size bytes of machine-made text determined by seed and
// kind (application log lines, CSV rows or JSON records, with varying
// numbers and identifiers): the compressible data sets of the compression
// tests and benchmarks, roughly 4:1 with zstd's default level.
func GenText(path, kind string, size int64, seed uint64) (err error) {
	var key [32]byte
	binary.LittleEndian.PutUint64(key[0:], seed)
	copy(key[8:], "adaptfs harness text")
	rng := rand.New(rand.NewChaCha8(key))
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o644)
	if err != nil {
		return fmt.Errorf("gen text: %w", err)
	}
	defer func() {
		if cerr := f.Close(); err == nil && cerr != nil {
			err = fmt.Errorf("gen text: %w", cerr)
		}
	}()
	levels := []string{"INFO", "INFO", "INFO", "DEBUG", "WARN", "ERROR"}
	words := []string{"upload", "part", "complete", "retry", "stream", "flush", "commit", "scan", "index", "merge", "sync", "cache"}
	hosts := []string{"edge-01", "edge-02", "lab-gw", "field-7", "cluster-a", "cluster-b"}
	ts := int64(1_790_000_000_000)
	buf := make([]byte, 0, genBufSize)
	var written int64
	for written < size {
		buf = buf[:0]
		for len(buf) < genBufSize-512 {
			ts += int64(rng.IntN(5000))
			switch kind {
			case TextCSV:
				buf = fmt.Appendf(buf, "%d,%s,%s,%d,%.1f,%d,ok\n", ts, hosts[rng.IntN(len(hosts))],
					words[rng.IntN(len(words))], rng.IntN(2000), rng.Float64()*100, 40+rng.IntN(20))
			case TextJSON:
				buf = fmt.Appendf(buf, `{"ts":%d,"host":"%s","op":"%s","bytes":%d,"ms":%d,"ok":%t,"id":"%04x"}`+"\n",
					ts, hosts[rng.IntN(len(hosts))], words[rng.IntN(len(words))], rng.IntN(1<<16), rng.IntN(500),
					rng.IntN(20) > 0, rng.IntN(1<<16))
			default:
				buf = fmt.Appendf(buf, "%d %s %s: %s %s key=obj/%03d/%03d.dat size=%d took=%dms\n", ts,
					levels[rng.IntN(len(levels))], hosts[rng.IntN(len(hosts))], words[rng.IntN(len(words))],
					words[rng.IntN(len(words))], rng.IntN(1000), rng.IntN(1000), rng.IntN(1<<16), rng.IntN(1000))
			}
		}
		chunk := buf[:min(int64(len(buf)), size-written)]
		if _, err := f.Write(chunk); err != nil {
			return fmt.Errorf("gen text %s: %w", path, err)
		}
		written += int64(len(chunk))
	}
	return nil
}
