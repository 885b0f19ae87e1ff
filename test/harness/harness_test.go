package harness

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
)

func sumOf(b []byte) Sum {
	h := sha256.Sum256(b)
	return Sum{Size: int64(len(b)), SHA256: hex.EncodeToString(h[:])}
}

func TestServerBucketSums(t *testing.T) {
	s := StartServerTB(t)
	ctx := t.Context()
	CreateBucketTB(t, s, "harness")

	objects := map[string][]byte{
		"top.txt":                  []byte("top"),
		"p/a.txt":                  []byte("hello"),
		"p/dir with space/é.bin":   bytes.Repeat([]byte{7}, 3<<20),
		"p/データ/empty":              {},
		"other/not-under-prefix":   []byte("x"),
		"p/deep/er/still/file.dat": []byte("deep"),
	}
	for k, v := range objects {
		if _, err := s.Client.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("harness"), Key: aws.String(k), Body: bytes.NewReader(v)}); err != nil {
			t.Fatalf("put %s: %v", k, err)
		}
	}
	if _, err := s.Client.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("harness"), Key: aws.String("p/emptydir/"), Body: bytes.NewReader(nil)}); err != nil {
		t.Fatalf("put marker: %v", err)
	}

	want := map[string]Sum{}
	for k, v := range objects {
		if rel, ok := strings.CutPrefix(k, "p/"); ok {
			want[rel] = sumOf(v)
		}
	}
	for _, prefix := range []string{"p", "p/"} {
		got, markers, err := BucketContents(ctx, s.Client, "harness", prefix)
		if err != nil {
			t.Fatal(err)
		}
		if d := DiffSums(want, got); d != nil {
			t.Errorf("prefix %q: diff:\n%s", prefix, strings.Join(d, "\n"))
		}
		if len(markers) != 1 || markers[0] != "emptydir/" {
			t.Errorf("prefix %q: markers = %q, want [emptydir/]", prefix, markers)
		}
	}
	all, err := BucketSums(ctx, s.Client, "harness", "")
	if err != nil {
		t.Fatal(err)
	}
	if len(all) != len(objects) {
		t.Errorf("whole bucket: %d objects, want %d", len(all), len(objects))
	}

	// In-progress multipart uploads and their parts.
	cu, err := s.Client.CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{Bucket: aws.String("harness"), Key: aws.String("p/big one")})
	if err != nil {
		t.Fatal(err)
	}
	part := bytes.Repeat([]byte("z"), 5<<20)
	if _, err := s.Client.UploadPart(ctx, &s3.UploadPartInput{
		Bucket: aws.String("harness"), Key: aws.String("p/big one"), UploadId: cu.UploadId,
		PartNumber: aws.Int32(1), Body: bytes.NewReader(part),
	}); err != nil {
		t.Fatal(err)
	}
	keys, err := ListMultipartUploads(ctx, s.Client, "harness")
	if err != nil {
		t.Fatal(err)
	}
	if len(keys) != 1 || keys[0] != "p/big one" {
		t.Errorf("multipart uploads = %q, want [p/big one]", keys)
	}
	parts, err := ListParts(ctx, s.Client, "harness", "p/big one", aws.ToString(cu.UploadId))
	if err != nil {
		t.Fatal(err)
	}
	if len(parts) != 1 || parts[0].Number != 1 || parts[0].Size != int64(len(part)) || parts[0].ETag == "" {
		t.Errorf("parts = %+v, want one part of %d bytes", parts, len(part))
	}
	if _, err := s.Client.AbortMultipartUpload(ctx, &s3.AbortMultipartUploadInput{Bucket: aws.String("harness"), Key: aws.String("p/big one"), UploadId: cu.UploadId}); err != nil {
		t.Fatal(err)
	}
	if keys, err := ListMultipartUploads(ctx, s.Client, "harness"); err != nil || len(keys) != 0 {
		t.Errorf("after abort: uploads %q, err %v", keys, err)
	}

	// Env carries exactly the credentials and region.
	env := s.Env()
	if len(env) != 3 || env[0] != "AWS_ACCESS_KEY_ID="+s.AccessKey || env[1] != "AWS_SECRET_ACCESS_KEY="+s.SecretKey || env[2] != "AWS_REGION=us-east-1" {
		t.Errorf("Env() has unexpected entries (%d)", len(env))
	}

	s.Stop()
	if !s.Exited() {
		t.Error("server still running after Stop")
	}
	s.Stop() // idempotent
}

func TestServerRejectsBadCredentials(t *testing.T) {
	s := StartServerTB(t)
	bad := NewClient(s.Endpoint, s.AccessKey, "wrong-secret")
	if _, err := bad.ListBuckets(t.Context(), &s3.ListBucketsInput{}); err == nil {
		t.Error("ListBuckets with a wrong secret succeeded; SigV4 not enforced?")
	}
}

func TestFindVersitygw(t *testing.T) {
	t.Setenv(VersitygwEnv, filepath.Join(t.TempDir(), "nope"))
	if _, err := FindVersitygw(); err == nil {
		t.Error("FindVersitygw with a missing $ADAPTFS_VERSITYGW succeeded")
	}
	t.Setenv(VersitygwEnv, "")
	if _, err := FindVersitygw(); err != nil && !strings.Contains(err.Error(), "make bin/versitygw") {
		t.Errorf("error does not say how to fix it: %v", err)
	}
}

func TestStartServerFailsFast(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	start := time.Now()
	if _, err := StartServer(ctx, "/bin/false", t.TempDir()); err == nil {
		t.Fatal("StartServer with /bin/false succeeded")
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("StartServer took %v to notice the server exited", d)
	}
}

func testSpec(seed uint64) TreeSpec {
	return TreeSpec{
		Seed:       seed,
		SmallFiles: 120, SmallMin: 0, SmallMax: 4 * KiB,
		MediumFiles: 4, MediumMin: 100 * KiB, MediumMax: 300 * KiB,
		LargeFiles: 1, LargeSize: 3*MiB + 17,
		Depth: 4,
	}
}

func TestGenTreeDeterministic(t *testing.T) {
	spec := testSpec(42)
	a, b, c := t.TempDir(), t.TempDir(), t.TempDir()
	files, n, err := GenTree(a, spec)
	if err != nil {
		t.Fatal(err)
	}
	if want := spec.SmallFiles + spec.MediumFiles + spec.LargeFiles; files != want {
		t.Errorf("files = %d, want %d", files, want)
	}
	if _, _, err := GenTree(b, spec); err != nil {
		t.Fatal(err)
	}
	sa, err := TreeSums(a)
	if err != nil {
		t.Fatal(err)
	}
	sb, err := TreeSums(b)
	if err != nil {
		t.Fatal(err)
	}
	if d := DiffSums(sa, sb); d != nil {
		t.Errorf("same seed, different trees:\n%s", strings.Join(d, "\n"))
	}
	if len(sa) != files || TotalBytes(sa) != n {
		t.Errorf("TreeSums: %d files %d bytes, GenTree said %d files %d bytes", len(sa), TotalBytes(sa), files, n)
	}

	// Shape: sizes in range, depth reached and not exceeded, interesting
	// names, no file path that is also a directory prefix.
	var large, medium, maxDepth int
	var space, nonASCII bool
	for k, s := range sa {
		switch {
		case s.Size == spec.LargeSize:
			large++
		case s.Size >= spec.MediumMin && s.Size <= spec.MediumMax:
			medium++
		case s.Size > spec.SmallMax:
			t.Errorf("%s: size %d fits no class", k, s.Size)
		}
		maxDepth = max(maxDepth, strings.Count(k, "/"))
		space = space || strings.Contains(k, " ")
		nonASCII = nonASCII || len(k) != utf8.RuneCountInString(k)
		for p := k; ; {
			i := strings.LastIndexByte(p, '/')
			if i < 0 {
				break
			}
			p = p[:i]
			if _, ok := sa[p]; ok {
				t.Errorf("file %q is also a directory of %q", p, k)
			}
		}
	}
	if large != spec.LargeFiles || medium != spec.MediumFiles {
		t.Errorf("large %d medium %d, want %d and %d", large, medium, spec.LargeFiles, spec.MediumFiles)
	}
	if maxDepth != spec.Depth {
		t.Errorf("deepest file is %d levels down, want %d", maxDepth, spec.Depth)
	}
	if !space || !nonASCII {
		t.Errorf("names lack spaces (%v) or UTF-8 (%v)", space, nonASCII)
	}

	if _, _, err := GenTree(c, testSpec(43)); err != nil {
		t.Fatal(err)
	}
	sc, err := TreeSums(c)
	if err != nil {
		t.Fatal(err)
	}
	if maps.Equal(sa, sc) {
		t.Error("different seeds gave the same tree")
	}
}

func TestGenFile(t *testing.T) {
	dir := t.TempDir()
	p1, p2, p3 := filepath.Join(dir, "1"), filepath.Join(dir, "2"), filepath.Join(dir, "3")
	const size = 2*genBufSize + 5
	for _, c := range []struct {
		path string
		seed uint64
	}{{p1, 9}, {p2, 9}, {p3, 10}} {
		if err := GenFile(c.path, size, c.seed); err != nil {
			t.Fatal(err)
		}
	}
	s, err := TreeSums(dir)
	if err != nil {
		t.Fatal(err)
	}
	if s["1"] != s["2"] || s["1"] == s["3"] || s["1"].Size != size {
		t.Errorf("sums %+v", s)
	}
	if err := GenFile(filepath.Join(dir, "empty"), 0, 1); err != nil {
		t.Fatal(err)
	}
	if st, err := os.Stat(filepath.Join(dir, "empty")); err != nil || st.Size() != 0 {
		t.Errorf("empty file: %v %v", st, err)
	}
}

func BenchmarkGenFile(b *testing.B) {
	const size = 64 * MiB
	b.SetBytes(size)
	dir := b.TempDir()
	for i := 0; b.Loop(); i++ {
		if err := GenFile(filepath.Join(dir, "big"), size, uint64(i)); err != nil {
			b.Fatal(err)
		}
	}
}

func TestDiffSums(t *testing.T) {
	a, b, c := Sum{1, "aa"}, Sum{2, "bb"}, Sum{1, "cc"}
	if d := DiffSums(map[string]Sum{"x": a}, map[string]Sum{"x": a}); d != nil {
		t.Errorf("equal: %q", d)
	}
	want := map[string]Sum{"missing": a, "size": a, "hash": a, "same": a}
	got := map[string]Sum{"extra": b, "size": b, "hash": c, "same": a}
	d := DiffSums(want, got)
	wantLines := []string{
		`extra: "extra" (2 bytes)`,
		`content mismatch: "hash" (1 bytes) want sha256 aa…, got cc…`,
		`missing: "missing" (1 bytes)`,
		`size mismatch: "size" want 1 bytes, got 2`,
	}
	if strings.Join(d, "\n") != strings.Join(wantLines, "\n") {
		t.Errorf("got\n%s\nwant\n%s", strings.Join(d, "\n"), strings.Join(wantLines, "\n"))
	}

	many := map[string]Sum{}
	for i := range 25 {
		many[fmt.Sprintf("f%02d", i)] = a
	}
	d = DiffSums(many, nil)
	if len(d) != 21 || d[0] != `missing: "f00" (1 bytes)` || d[20] != "... 5 more" {
		t.Errorf("capped output: %d lines, first %q, last %q", len(d), d[0], d[len(d)-1])
	}
}

func TestMountInfo(t *testing.T) {
	if got := unescapeMountinfo(`/tmp/dir\040with\040space/x\134y`); got != `/tmp/dir with space/x\y` {
		t.Errorf("unescape = %q", got)
	}
	if ok, err := IsMountPoint("/proc"); err != nil || !ok {
		t.Errorf("IsMountPoint(/proc) = %v, %v", ok, err)
	}
	if ok, err := IsFuseMount("/proc"); err != nil || ok {
		t.Errorf("IsFuseMount(/proc) = %v, %v", ok, err)
	}
	if ok, err := IsMountPoint(t.TempDir()); err != nil || ok {
		t.Errorf("IsMountPoint(tempdir) = %v, %v", ok, err)
	}
	if processExited(os.Getpid()) || !processExited(1<<30) {
		t.Error("processExited is wrong")
	}
	if rss, err := procStatusKB(os.Getpid(), "VmHWM"); err != nil || rss <= 0 {
		t.Errorf("VmHWM of self = %d, %v", rss, err)
	}
}

func TestStartMountValidates(t *testing.T) {
	if _, err := StartMount(t.Context(), MountOptions{}); err == nil {
		t.Error("StartMount with no options succeeded")
	}
}
