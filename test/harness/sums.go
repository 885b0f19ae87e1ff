package harness

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/klauspost/compress/zstd"
	"golang.org/x/sync/errgroup"
)

// hashWorkers is how many objects or files are hashed at once.
const hashWorkers = 8

// maxDiffLines caps the output of DiffSums.
const maxDiffLines = 20

// Sum is the size and SHA-256 (lower-case hex) of one file or object.
type Sum struct {
	Size   int64
	SHA256 string
}

// BucketSums lists every object under prefix (ListObjectsV2, no delimiter)
// and hashes the bytes as stored. Keys are relative to prefix; directory
// markers (keys ending in "/") are left out. Objects stored compressed
// (Content-Encoding: zstd) hash as their compressed bytes.
func BucketSums(ctx context.Context, client *s3.Client, bucket, prefix string) (map[string]Sum, error) {
	sums, _, err := BucketContents(ctx, client, bucket, prefix)
	return sums, err
}

// BucketContents is BucketSums that also returns the directory markers
// (keys ending in "/", relative to prefix, sorted).
func BucketContents(ctx context.Context, client *s3.Client, bucket, prefix string) (sums map[string]Sum, markers []string, err error) {
	if prefix != "" && !strings.HasSuffix(prefix, "/") {
		prefix += "/"
	}
	var keys []string
	p := s3.NewListObjectsV2Paginator(client, &s3.ListObjectsV2Input{Bucket: aws.String(bucket), Prefix: aws.String(prefix)})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, nil, fmt.Errorf("list s3://%s/%s: %w", bucket, prefix, err)
		}
		for _, o := range page.Contents {
			key := aws.ToString(o.Key)
			if strings.HasSuffix(key, "/") {
				markers = append(markers, strings.TrimPrefix(key, prefix))
				continue
			}
			keys = append(keys, key)
		}
	}
	sort.Strings(markers)

	results := make([]Sum, len(keys))
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(hashWorkers)
	for i, key := range keys {
		g.Go(func() error {
			s, err := objectSum(gctx, client, bucket, key)
			results[i] = s
			return err
		})
	}
	if err := g.Wait(); err != nil {
		return nil, nil, err
	}
	sums = make(map[string]Sum, len(keys))
	for i, key := range keys {
		sums[strings.TrimPrefix(key, prefix)] = results[i]
	}
	return sums, markers, nil
}

// ObjectSum hashes one object as the user wrote it (decoded if the mount
// stored it compressed).
func ObjectSum(ctx context.Context, client *s3.Client, bucket, key string) (Sum, error) {
	return objectSum(ctx, client, bucket, key)
}

// ObjectBytes reads one object as the user wrote it (decoded if the mount
// stored it compressed).
func ObjectBytes(ctx context.Context, client *s3.Client, bucket, key string) ([]byte, error) {
	out, err := client.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String(key)})
	if err != nil {
		return nil, fmt.Errorf("get s3://%s/%s: %w", bucket, key, err)
	}
	defer out.Body.Close()
	if aws.ToString(out.ContentEncoding) != "zstd" {
		return io.ReadAll(out.Body)
	}
	zr, err := zstd.NewReader(out.Body)
	if err != nil {
		return nil, fmt.Errorf("decode s3://%s/%s: %w", bucket, key, err)
	}
	defer zr.Close()
	return io.ReadAll(zr)
}

func objectSum(ctx context.Context, client *s3.Client, bucket, key string) (Sum, error) {
	out, err := client.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String(key)})
	if err != nil {
		return Sum{}, fmt.Errorf("get s3://%s/%s: %w", bucket, key, err)
	}
	defer out.Body.Close()
	var body io.Reader = out.Body
	if aws.ToString(out.ContentEncoding) == "zstd" {
		// Compressed by the mount: what the user wrote is the decoded
		// stream (a plain zstd decoder, which skips the seek table).
		zr, err := zstd.NewReader(out.Body)
		if err != nil {
			return Sum{}, fmt.Errorf("decode s3://%s/%s: %w", bucket, key, err)
		}
		defer zr.Close()
		body = zr
	}
	h := sha256.New()
	n, err := io.Copy(h, body)
	if err != nil {
		return Sum{}, fmt.Errorf("read s3://%s/%s: %w", bucket, key, err)
	}
	return Sum{Size: n, SHA256: hex.EncodeToString(h.Sum(nil))}, nil
}

// StatsDirName is the mount root's generated stats directory, which
// TreeSums leaves out.
const StatsDirName = ".adaptstats"

// TreeSums hashes every regular file under dir; keys are slash-separated
// paths relative to dir. Directories, symlinks and special files are left
// out, and so is dir/.adaptstats.
func TreeSums(dir string) (map[string]Sum, error) {
	var paths []string
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && path == filepath.Join(dir, StatsDirName) {
			return fs.SkipDir // a mount's generated stats, not data
		}
		if d.Type().IsRegular() {
			paths = append(paths, path)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("walk %s: %w", dir, err)
	}
	results := make([]Sum, len(paths))
	var g errgroup.Group
	g.SetLimit(hashWorkers)
	for i, path := range paths {
		g.Go(func() error {
			s, err := fileSum(path)
			results[i] = s
			return err
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	sums := make(map[string]Sum, len(paths))
	for i, path := range paths {
		rel, err := filepath.Rel(dir, path)
		if err != nil {
			return nil, fmt.Errorf("tree sums: %w", err)
		}
		sums[filepath.ToSlash(rel)] = results[i]
	}
	return sums, nil
}

func fileSum(path string) (Sum, error) {
	f, err := os.Open(path)
	if err != nil {
		return Sum{}, fmt.Errorf("hash %s: %w", path, err)
	}
	defer f.Close()
	h := sha256.New()
	n, err := io.Copy(h, f)
	if err != nil {
		return Sum{}, fmt.Errorf("hash %s: %w", path, err)
	}
	return Sum{Size: n, SHA256: hex.EncodeToString(h.Sum(nil))}, nil
}

// DiffSums describes how got differs from want, one line per key, sorted by
// key: missing, extra, size mismatch, content mismatch. At most 20 lines are
// returned, followed by "... N more". Nil means equal.
func DiffSums(want, got map[string]Sum) []string {
	type diff struct{ key, line string }
	var diffs []diff
	for k, w := range want {
		g, ok := got[k]
		switch {
		case !ok:
			diffs = append(diffs, diff{k, fmt.Sprintf("missing: %q (%d bytes)", k, w.Size)})
		case g.Size != w.Size:
			diffs = append(diffs, diff{k, fmt.Sprintf("size mismatch: %q want %d bytes, got %d", k, w.Size, g.Size)})
		case g.SHA256 != w.SHA256:
			diffs = append(diffs, diff{k, fmt.Sprintf("content mismatch: %q (%d bytes) want sha256 %.12s…, got %.12s…", k, w.Size, w.SHA256, g.SHA256)})
		}
	}
	for k, g := range got {
		if _, ok := want[k]; !ok {
			diffs = append(diffs, diff{k, fmt.Sprintf("extra: %q (%d bytes)", k, g.Size)})
		}
	}
	if len(diffs) == 0 {
		return nil
	}
	sort.Slice(diffs, func(i, j int) bool { return diffs[i].key < diffs[j].key })
	var lines []string
	for i, d := range diffs {
		if i == maxDiffLines {
			lines = append(lines, fmt.Sprintf("... %d more", len(diffs)-maxDiffLines))
			break
		}
		lines = append(lines, d.line)
	}
	return lines
}

// TotalBytes is the sum of the sizes in sums.
func TotalBytes(sums map[string]Sum) int64 {
	var n int64
	for _, s := range sums {
		n += s.Size
	}
	return n
}

// Upload is an in-progress multipart upload.
type Upload struct {
	Key      string
	UploadID string
}

// MultipartUploads lists the in-progress multipart uploads of a bucket.
func MultipartUploads(ctx context.Context, client *s3.Client, bucket string) ([]Upload, error) {
	var uploads []Upload
	p := s3.NewListMultipartUploadsPaginator(client, &s3.ListMultipartUploadsInput{Bucket: aws.String(bucket)})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, fmt.Errorf("list multipart uploads of %s: %w", bucket, err)
		}
		for _, u := range page.Uploads {
			uploads = append(uploads, Upload{Key: aws.ToString(u.Key), UploadID: aws.ToString(u.UploadId)})
		}
	}
	return uploads, nil
}

// ListMultipartUploads returns the keys of the in-progress multipart
// uploads of a bucket, sorted.
func ListMultipartUploads(ctx context.Context, client *s3.Client, bucket string) ([]string, error) {
	uploads, err := MultipartUploads(ctx, client, bucket)
	if err != nil {
		return nil, err
	}
	keys := make([]string, len(uploads))
	for i, u := range uploads {
		keys[i] = u.Key
	}
	sort.Strings(keys)
	return keys, nil
}

// Part is one uploaded part of a multipart upload.
type Part struct {
	Number int32
	Size   int64
	ETag   string
}

// ListParts returns the parts uploaded so far to a multipart upload, in
// part-number order.
func ListParts(ctx context.Context, client *s3.Client, bucket, key, uploadID string) ([]Part, error) {
	var parts []Part
	p := s3.NewListPartsPaginator(client, &s3.ListPartsInput{
		Bucket: aws.String(bucket), Key: aws.String(key), UploadId: aws.String(uploadID),
	})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, fmt.Errorf("list parts of s3://%s/%s (upload %s): %w", bucket, key, uploadID, err)
		}
		for _, pt := range page.Parts {
			parts = append(parts, Part{Number: aws.ToInt32(pt.PartNumber), Size: aws.ToInt64(pt.Size), ETag: aws.ToString(pt.ETag)})
		}
	}
	sort.Slice(parts, func(i, j int) bool { return parts[i].Number < parts[j].Number })
	return parts, nil
}
