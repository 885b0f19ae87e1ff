package s3backend

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"golang.org/x/sync/errgroup"
)

const (
	// maxCopyObjectSize is the largest source CopyObject accepts; larger
	// objects are copied with UploadPartCopy.
	maxCopyObjectSize = 5 << 30
	// copyPartSize is the range copied per UploadPartCopy; it grows for
	// objects that would otherwise need more than maxParts parts.
	copyPartSize = 512 << 20
	// maxParts is S3's limit of parts per upload.
	maxParts = 10000
	// copyConcurrency is the number of UploadPartCopy requests in flight:
	// they move no bytes over our link, so the controller's limit does not
	// apply, but the server should not get thousands at once.
	copyConcurrency = 4
	// abortTimeout bounds the cleanup of a failed copy.
	abortTimeout = 30 * time.Second
)

// Copy copies src to dst server-side. The source is read with HEAD first:
// its size picks CopyObject or a multipart copy, and its Content-Type is
// kept when meta replaces the metadata.
func (c *Client) Copy(ctx context.Context, src, dst string, meta *ObjectMeta) error {
	return c.copyObject(ctx, src, dst, meta, maxCopyObjectSize, copyPartSize)
}

// copyObject is Copy with the multipart threshold and range size as
// parameters, so that tests can exercise the multipart path with small
// objects.
func (c *Client) copyObject(ctx context.Context, src, dst string, meta *ObjectMeta, threshold, partSize int64) error {
	head, err := c.headObject(ctx, src)
	if err != nil {
		return c.wrapErr(ctx, "copy: head source", src, err)
	}
	if size := aws.ToInt64(head.ContentLength); size > threshold {
		return c.copyMultipart(ctx, src, dst, meta, head, size, partSize)
	}

	in := &s3.CopyObjectInput{
		Bucket:            &c.bucket,
		Key:               aws.String(c.fullKey(dst)),
		CopySource:        aws.String(c.copySource(src)),
		MetadataDirective: types.MetadataDirectiveCopy,
	}
	if meta != nil {
		in.MetadataDirective = types.MetadataDirectiveReplace
		in.Metadata = meta.s3Metadata()
		in.ContentEncoding = nonEmpty(meta.ContentEncoding)
		in.ContentType = head.ContentType // REPLACE would reset it
	}
	if _, err := c.s3.CopyObject(ctx, in); err != nil {
		return c.wrapErr(ctx, "copy "+src+" to", dst, err)
	}
	return nil
}

func (c *Client) copyMultipart(ctx context.Context, src, dst string, meta *ObjectMeta, head *s3.HeadObjectOutput, size, partSize int64) error {
	create := &s3.CreateMultipartUploadInput{
		Bucket:      &c.bucket,
		Key:         aws.String(c.fullKey(dst)),
		ContentType: head.ContentType,
	}
	if meta != nil {
		create.Metadata = meta.s3Metadata()
		create.ContentEncoding = nonEmpty(meta.ContentEncoding)
	} else {
		// What CopyObject's COPY directive would have kept.
		create.Metadata = head.Metadata
		create.ContentEncoding = head.ContentEncoding
		create.CacheControl = head.CacheControl
		create.ContentDisposition = head.ContentDisposition
		create.ContentLanguage = head.ContentLanguage
	}
	out, err := c.s3.CreateMultipartUpload(ctx, create)
	if err != nil {
		return c.wrapErr(ctx, "copy "+src+": create multipart upload", dst, err)
	}
	uploadID := aws.ToString(out.UploadId)

	partSize = max(partSize, (size+maxParts-1)/maxParts)
	parts := make([]types.CompletedPart, (size+partSize-1)/partSize)
	source := aws.String(c.copySource(src))
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(copyConcurrency)
	for i := range parts {
		first := int64(i) * partSize
		last := min(first+partSize, size) - 1
		number := int32(i + 1)
		g.Go(func() error {
			r, err := c.s3.UploadPartCopy(gctx, &s3.UploadPartCopyInput{
				Bucket:          &c.bucket,
				Key:             aws.String(c.fullKey(dst)),
				UploadId:        &uploadID,
				PartNumber:      &number,
				CopySource:      source,
				CopySourceRange: aws.String(fmt.Sprintf("bytes=%d-%d", first, last)),
				// Every range must come from the same version of src.
				CopySourceIfMatch: head.ETag,
			})
			if err != nil {
				return c.wrapErr(gctx, fmt.Sprintf("copy %s: part %d of", src, number), dst, err)
			}
			if r.CopyPartResult == nil {
				return fmt.Errorf("copy %s: part %d of %s: no ETag in response", src, number, dst)
			}
			parts[i] = types.CompletedPart{PartNumber: &number, ETag: r.CopyPartResult.ETag}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		c.abortQuietly(ctx, dst, uploadID)
		return err
	}
	_, err = c.s3.CompleteMultipartUpload(ctx, &s3.CompleteMultipartUploadInput{
		Bucket:          &c.bucket,
		Key:             aws.String(c.fullKey(dst)),
		UploadId:        &uploadID,
		MultipartUpload: &types.CompletedMultipartUpload{Parts: parts},
	})
	if err != nil {
		c.abortQuietly(ctx, dst, uploadID)
		return c.wrapErr(ctx, "copy "+src+": complete multipart upload", dst, err)
	}
	return nil
}

// abortQuietly cleans up a failed multipart copy, even when ctx is already
// cancelled; a leftover upload only costs storage until the next sweep.
func (c *Client) abortQuietly(ctx context.Context, key, uploadID string) {
	actx, cancel := context.WithTimeout(context.WithoutCancel(ctx), abortTimeout)
	defer cancel()
	if err := c.AbortMultipart(actx, key, uploadID); err != nil {
		c.log.Warn("abort of failed multipart copy", "key", c.fullKey(key), "upload_id", uploadID, "err", err)
	}
}

// copySource is the x-amz-copy-source value: "bucket/key", URL-encoded.
func (c *Client) copySource(key string) string {
	return escapePath(c.bucket + "/" + c.fullKey(key))
}

// escapePath percent-encodes everything but unreserved characters and "/".
// url.PathEscape would leave characters such as '+' that S3 may decode.
func escapePath(s string) string {
	const hex = "0123456789ABCDEF"
	var b strings.Builder
	b.Grow(len(s))
	for i := 0; i < len(s); i++ {
		ch := s[i]
		if 'a' <= ch && ch <= 'z' || 'A' <= ch && ch <= 'Z' || '0' <= ch && ch <= '9' ||
			ch == '-' || ch == '_' || ch == '.' || ch == '~' || ch == '/' {
			b.WriteByte(ch)
			continue
		}
		b.WriteByte('%')
		b.WriteByte(hex[ch>>4])
		b.WriteByte(hex[ch&15])
	}
	return b.String()
}

func nonEmpty(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}
