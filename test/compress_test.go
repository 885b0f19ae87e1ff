package test

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"image"
	"image/color"
	"image/jpeg"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/adaptfs/adaptfs/test/harness"
	"github.com/adaptfs/adaptfs/zseek"
)

// countingProxy sits between the mount and the server and records what
// each request carried: the bytes GETs returned per key, and the body size
// of every UploadPart per key.
type countingProxy struct {
	srv *httptest.Server

	mu       sync.Mutex
	getBytes map[string]int64
	gets     map[string]int
	parts    map[string]map[int]int64 // key → part number → body bytes
}

func newCountingProxy(t *testing.T, target string) *countingProxy {
	t.Helper()
	u, err := url.Parse(target)
	if err != nil {
		t.Fatal(err)
	}
	p := &countingProxy{getBytes: map[string]int64{}, gets: map[string]int{}, parts: map[string]map[int]int64{}}
	rp := httputil.NewSingleHostReverseProxy(u)
	p.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		key := r.URL.Path // /bucket/key (path style)
		if r.Method == http.MethodPut && r.URL.Query().Has("partNumber") {
			n, _ := strconv.Atoi(r.URL.Query().Get("partNumber"))
			p.mu.Lock()
			if p.parts[key] == nil {
				p.parts[key] = map[int]int64{}
			}
			p.parts[key][n] = r.ContentLength
			p.mu.Unlock()
		}
		if r.Method == http.MethodGet && !r.URL.Query().Has("list-type") && !r.URL.Query().Has("uploads") {
			cw := &countingWriter{ResponseWriter: w}
			rp.ServeHTTP(cw, r)
			p.mu.Lock()
			p.getBytes[key] += cw.n
			p.gets[key]++
			p.mu.Unlock()
			return
		}
		rp.ServeHTTP(w, r)
	}))
	t.Cleanup(p.srv.Close)
	return p
}

func (p *countingProxy) resetGets() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.getBytes, p.gets = map[string]int64{}, map[string]int{}
}

func (p *countingProxy) got(key string) (bytes int64, requests int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.getBytes[key], p.gets[key]
}

func (p *countingProxy) partSizes(key string) map[int]int64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := map[int]int64{}
	for k, v := range p.parts[key] {
		out[k] = v
	}
	return out
}

type countingWriter struct {
	http.ResponseWriter
	n int64
}

func (w *countingWriter) Write(b []byte) (int, error) {
	n, err := w.ResponseWriter.Write(b)
	w.n += int64(n)
	return n, err
}

func (w *countingWriter) Flush() {
	if f, ok := w.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

// rawObject is one object as stored: bytes, encoding and user metadata.
type rawObject struct {
	body     []byte
	encoding string
	meta     map[string]string
}

func getRaw(t *testing.T, r *rig, key string) rawObject {
	t.Helper()
	out, err := r.srv.Client.GetObject(t.Context(), &s3.GetObjectInput{Bucket: aws.String(r.bucket), Key: aws.String(r.prefix + key)})
	if err != nil {
		t.Fatalf("get %s: %v", key, err)
	}
	defer out.Body.Close()
	b, err := io.ReadAll(out.Body)
	if err != nil {
		t.Fatal(err)
	}
	return rawObject{body: b, encoding: aws.ToString(out.ContentEncoding), meta: out.Metadata}
}

// zstdCLI decodes b with the zstd command-line tool.
func zstdCLI(t *testing.T, b []byte) []byte {
	t.Helper()
	cmd := exec.CommandContext(t.Context(), "zstd", "-d", "-q", "-c")
	cmd.Stdin = bytes.NewReader(b)
	var out, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("zstd -d: %v\n%s", err, stderr.String())
	}
	return out.Bytes()
}

func sha(b []byte) string { s := sha256.Sum256(b); return hex.EncodeToString(s[:]) }

func fileSHA(t *testing.T, path string) (string, int64) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return sha(b), int64(len(b))
}

// noisyJPEG writes a JPEG of random pixels (already compressed, and its
// entropy-coded noise does not shrink further).
func noisyJPEG(t *testing.T, path string) {
	t.Helper()
	img := image.NewRGBA(image.Rect(0, 0, 640, 480))
	rng := rand.New(rand.NewPCG(7, 7))
	for i := range img.Pix {
		img.Pix[i] = uint8(rng.Uint32())
	}
	img.Set(0, 0, color.White)
	var b bytes.Buffer
	if err := jpeg.Encode(&b, img, &jpeg.Options{Quality: 95}); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, b.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestCompression copies a mixed tree with real cp -r into a mount with
// compression = "auto" (the default) and a rule that keeps tree/media/*.mp4
// as-is (and rules that compress the two big files), then checks every object from the server: compressible files are
// zstd objects with Content-Encoding and raw size that the zstd CLI decodes
// to the original bytes; random bytes, an existing .zst, a JPEG, the rule's
// file and a tiny file are stored byte for byte, without Content-Encoding.
// After a remount, stat shows raw sizes and reads decode; random reads of a
// 300 MiB compressed object fetch only the frames they touch; no non-final
// part is under 5 MiB, even for 1 GiB of zeros.
func TestCompression(t *testing.T) {
	if _, err := exec.LookPath("zstd"); err != nil {
		t.Fatal("the zstd command-line tool is needed (Debian package zstd; make deps installs it)")
	}
	requireFuse(t)
	srv := harness.StartServerTB(t)
	proxy := newCountingProxy(t, srv.Endpoint)
	r := &rig{srv: srv, bucket: "adaptfs-test", prefix: "z/"}
	harness.CreateBucketTB(t, srv, r.bucket)
	// The two big files are compressed by rule: under auto, on the
	// loopback (a 7–9 Gbit/s "link"), storing as-is can be the faster
	// choice, and whether the policy gets there first depends on the
	// machine; these two are about the compressed stream's parts.
	opts := []string{"--endpoint", proxy.srv.URL, "-o", "compression_rules=tree/media/*.mp4=off;big.csv=zstd-fast;zeros=zstd-fast"}
	r.mnt = r.mount(t, opts...)

	src := filepath.Join(t.TempDir(), "src")
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(os.MkdirAll(filepath.Join(src, "media"), 0o755))
	must(harness.GenText(filepath.Join(src, "app.log"), harness.TextLog, 40<<20, 1))       // streamed, multipart
	must(harness.GenText(filepath.Join(src, "table.csv"), harness.TextCSV, 3<<20, 2))      // one PUT
	must(harness.GenText(filepath.Join(src, "events.json"), harness.TextJSON, 200<<10, 3)) // one PUT
	must(harness.GenFile(filepath.Join(src, "random.bin"), 12<<20, 4))
	must(harness.GenText(filepath.Join(src, "media", "clip.mp4"), harness.TextLog, 1<<20, 5)) // compressible, but the rule says off
	must(os.WriteFile(filepath.Join(src, "tiny.txt"), []byte(strings.Repeat("tiny ", 100)), 0o644))
	noisyJPEG(t, filepath.Join(src, "photo.jpg"))
	must(harness.GenText(filepath.Join(src, "old.log"), harness.TextLog, 2<<20, 6))
	run(t, "zstd", "-q", "--rm", filepath.Join(src, "old.log")) // old.log.zst: already compressed

	run(t, "cp", "-r", src, r.path("tree"))
	r.sync(t)

	want, err := harness.TreeSums(src)
	must(err)
	compressed := map[string]bool{"app.log": true, "table.csv": true, "events.json": true}
	for name, sum := range want {
		obj := getRaw(t, r, "tree/"+name)
		if !compressed[name] {
			if obj.encoding != "" || sha(obj.body) != sum.SHA256 {
				t.Errorf("%s: want it stored as-is, got Content-Encoding %q, %d bytes (source %d)", name, obj.encoding, len(obj.body), sum.Size)
			}
			continue
		}
		if obj.encoding != "zstd" || obj.meta["adaptfs-format"] != "zstd-seekable" {
			t.Errorf("%s: Content-Encoding %q, metadata %v: want zstd, zstd-seekable", name, obj.encoding, obj.meta)
			continue
		}
		if rs := obj.meta["adaptfs-raw-size"]; rs != "" && rs != strconv.FormatInt(sum.Size, 10) {
			t.Errorf("%s: adaptfs-raw-size %s, source is %d bytes", name, rs, sum.Size)
		}
		dec := zstdCLI(t, obj.body)
		if sha(dec) != sum.SHA256 {
			t.Errorf("%s: zstd -d gives %d bytes that differ from the source (%d bytes)", name, len(dec), sum.Size)
		}
		t.Logf("%s: %d → %d bytes (%.2f:1)", name, sum.Size, len(obj.body), float64(sum.Size)/float64(len(obj.body)))
	}

	// Written with one cp: a 300 MiB compressible file and 1 GiB of zeros.
	big := filepath.Join(t.TempDir(), "big.csv")
	must(harness.GenText(big, harness.TextCSV, 300<<20, 8))
	run(t, "cp", big, r.path("big.csv"))
	run(t, "dd", "if=/dev/zero", "of="+r.path("zeros"), "bs=1M", "count=1024", "status=none")
	r.sync(t)
	for _, key := range []string{"big.csv", "zeros"} {
		parts := proxy.partSizes("/" + r.bucket + "/" + r.prefix + key)
		last := 0
		for n := range parts {
			last = max(last, n)
		}
		for n, size := range parts {
			if n != last && size < 5<<20 {
				t.Errorf("%s: part %d of %d is %d bytes, under S3's 5 MiB minimum", key, n, last, size)
			}
		}
		t.Logf("%s: %d part(s) %v", key, len(parts), parts)
	}
	zeros := getRaw(t, r, "zeros")
	if zeros.encoding != "zstd" {
		t.Fatalf("1 GiB of zeros stored with Content-Encoding %q", zeros.encoding)
	}
	dec := zstdCLI(t, zeros.body)
	if int64(len(dec)) != 1<<30 || len(bytes.TrimLeft(dec, "\x00")) != 0 {
		t.Fatalf("zeros decode to %d bytes, not 1 GiB of zeros", len(dec))
	}
	bigObj := getRaw(t, r, "big.csv")
	bigSum, bigSize := fileSHA(t, big)
	if sha(zstdCLI(t, bigObj.body)) != bigSum {
		t.Fatal("big.csv: zstd -d differs from the source")
	}

	// .adaptstats accounts for what was compressed, against the server.
	var rawBytes, storedBytes int64
	for name := range compressed {
		rawBytes += want[name].Size
		storedBytes += int64(len(getRaw(t, r, "tree/"+name).body))
	}
	rawBytes += bigSize + 1<<30
	storedBytes += int64(len(bigObj.body) + len(zeros.body))
	d := readStats(t, r.mnt.Dir)
	z := d.Compression
	if z == nil || z.Mode != "auto" || z.Files != 5 || z.RawBytes != rawBytes || z.StoredBytes != storedBytes || z.Ratio == nil {
		t.Fatalf("stats.json compression = %+v, want mode auto, 5 files, %d raw bytes stored as %d", z, rawBytes, storedBytes)
	}
	if _, err := zseek.ParseLevel(z.Level); err != nil {
		t.Fatalf("stats.json compression level %q: %v", z.Level, err)
	}
	measured := false
	for _, c := range z.Curves {
		if c.Name == "zstd-fast" && c.Frames > 0 && c.Ratio > 1.5 && c.RawBytesPerSecond > 0 {
			measured = true
		}
	}
	if !measured {
		t.Fatalf("stats.json compression curves lack a measured zstd-fast: %+v", z.Curves)
	}
	if sum := run(t, "cat", r.path(".adaptstats/summary")); !strings.Contains(sum, "compression auto, level ") {
		t.Fatalf("summary does not show compression:\n%s", sum)
	}

	// A fresh mount knows nothing staged: sizes and bytes come from the
	// objects.
	must(r.mnt.Unmount(t.Context()))
	// The level the policy ended at is saved with the link profile, and
	// the next mount starts from it.
	var prof struct {
		CompressionLevel string `json:"compression_level"`
	}
	pb, err := os.ReadFile(filepath.Join(r.mnt.StagingDir(), "link-profile.json"))
	must(err)
	must(json.Unmarshal(pb, &prof))
	if _, err := zseek.ParseLevel(prof.CompressionLevel); err != nil {
		t.Fatalf("link-profile.json compression_level %q: %v", prof.CompressionLevel, err)
	}
	r.mnt = r.mount(t, opts...)
	wantLevel := prof.CompressionLevel
	if wantLevel == "none" {
		wantLevel = "zstd-fast" // a mount never starts at none (it would never measure)
	}
	if z := readStats(t, r.mnt.Dir).Compression; z == nil || z.Level != wantLevel {
		t.Fatalf("remounted at level %+v, saved %q", z, prof.CompressionLevel)
	}
	got, err := harness.TreeSums(r.path("tree"))
	must(err)
	requireSame(t, "the tree read back through the mount", want, got)
	st, err := os.Stat(r.path("big.csv"))
	must(err)
	if st.Size() != bigSize {
		t.Fatalf("stat big.csv: %d bytes, want the raw size %d", st.Size(), bigSize)
	}

	// Random reads: only the frames touched are fetched.
	table := bigObj.body
	tsize, _, err := zseek.ParseFooter(table[len(table)-zseek.FooterSize:])
	must(err)
	frames, err := zseek.ParseSeekTable(table[len(table)-tsize:])
	must(err)
	idx := zseek.NewIndex(frames)
	srcBytes, err := os.ReadFile(big)
	must(err)
	proxy.resetGets()
	f, err := os.Open(r.path("big.csv"))
	must(err)
	defer f.Close()
	rng := rand.New(rand.NewPCG(9, 9))
	var budget int64 = 64 << 10 // the seek table fetch at open
	const reads = 25
	for range reads {
		off := rng.Int64N(bigSize - 300<<10)
		n := 1 + rng.IntN(256<<10)
		buf := make([]byte, n)
		if _, err := f.ReadAt(buf, off); err != nil {
			t.Fatalf("read %d at %d: %v", n, off, err)
		}
		if !bytes.Equal(buf, srcBytes[off:off+int64(n)]) {
			t.Fatalf("read %d at %d differs from the source", n, off)
		}
		// The kernel may read ahead up to 1 MiB past the request.
		lo, hi := idx.Range(off, int64(n)+1<<20)
		budget += idx.CompOffset(hi) - idx.CompOffset(lo)
	}
	gotBytes, gets := proxy.got("/" + r.bucket + "/" + r.prefix + "big.csv")
	t.Logf("%d random reads fetched %d bytes in %d GETs (budget %d; object %d bytes)", reads, gotBytes, gets, budget, len(bigObj.body))
	if gotBytes == 0 || gotBytes > budget {
		t.Fatalf("%d random reads fetched %d bytes, more than the %d bytes of the frames they touch", reads, gotBytes, budget)
	}
}
