package s3backend

import (
	"cmp"
	"context"
	"crypto/tls"
	"encoding/base64"
	"errors"
	"fmt"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"hash/crc32"
	"io"
	"log/slog"
	"net"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/smithy-go"
)

const (
	// maxHostConns bounds idle connections kept per host. Concurrency is
	// limited above us (Limiter); the transport must never be the queue,
	// or request timings would include invisible waiting.
	maxHostConns = 256
	// connectTimeout bounds one TCP (and TLS) connection attempt.
	connectTimeout = 10 * time.Second
	// checkTimeout and checkAttempts keep CheckBucket fast for a user who
	// typed the wrong endpoint: one retry, then a clear error.
	checkTimeout  = 10 * time.Second
	checkAttempts = 2
	// deleteBatch is S3's limit of keys per DeleteObjects request.
	deleteBatch = 1000
)

// Client is the S3 implementation of Backend.
type Client struct {
	s3       *s3.Client
	bucket   string
	prefix   string // "" or ends in "/"
	endpoint string // for error messages
	log      *slog.Logger
	conns    *connSet // open connections, for TCP_INFO
}

var _ Backend = (*Client)(nil)

// New builds a client from cfg. It makes no request; call CheckBucket to
// verify the bucket and credentials. Credentials come from the standard AWS
// chain only (environment, shared files, cfg.Profile, instance roles).
// sampler may be nil; then requests are not instrumented.
func New(ctx context.Context, cfg Config, sampler Sampler, log *slog.Logger) (*Client, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("s3 configuration: %w", err)
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}

	conns := newConnSet()
	opts := []func(*config.LoadOptions) error{
		// A BuildableClient, so that the loader can add a custom CA bundle
		// (AWS_CA_BUNDLE, ca_bundle in the profile) to its transport.
		config.WithHTTPClient(newBuildableClient(cfg, conns)),
		config.WithRetryer(func() aws.Retryer { return newRetryer(cfg.MaxRetries) }),
	}
	if cfg.Region != "" {
		opts = append(opts, config.WithRegion(cfg.Region))
	}
	if cfg.Profile != "" {
		opts = append(opts, config.WithSharedConfigProfile(cfg.Profile))
	}
	awsCfg, err := config.LoadDefaultConfig(ctx, opts...)
	if err != nil {
		return nil, fmt.Errorf("load AWS configuration: %w", err)
	}
	if awsCfg.Region == "" {
		awsCfg.Region = "us-east-1"
	}
	// Credential providers resolved above keep the plain client; S3 gets
	// the instrumented one.
	bc, ok := awsCfg.HTTPClient.(*awshttp.BuildableClient)
	if !ok {
		return nil, fmt.Errorf("load AWS configuration: unexpected HTTP client %T", awsCfg.HTTPClient)
	}
	awsCfg.HTTPClient = newHTTPClient(bc.GetTransport(), sampler)

	client := s3.NewFromConfig(awsCfg, func(o *s3.Options) {
		if cfg.Endpoint != "" {
			o.BaseEndpoint = aws.String(cfg.Endpoint)
		}
		o.UsePathStyle = cfg.PathStyle
		// No checksums of the SDK's own: bulk bodies carry the CRC32C we
		// compute (declared on Create, listed in Complete, verified by the
		// server); see Put and UploadPart.
		o.RequestChecksumCalculation = aws.RequestChecksumCalculationWhenRequired
		o.ResponseChecksumValidation = aws.ResponseChecksumValidationWhenRequired
		// No "Expect: 100-continue": it costs a round trip per part before
		// the body flows, which is exactly the per-request overhead the
		// controller tries to amortize. Bad credentials are caught by
		// CheckBucket before any large body is sent.
		o.ContinueHeaderThresholdBytes = -1
	})

	endpoint := cfg.Endpoint
	if endpoint == "" {
		endpoint = "AWS S3 (region " + awsCfg.Region + ")"
	}
	return &Client{
		s3:       client,
		bucket:   cfg.Bucket,
		prefix:   normalizePrefix(cfg.Prefix),
		endpoint: endpoint,
		log:      log,
		conns:    conns,
	}, nil
}

// newBuildableClient starts from the SDK's transport defaults (proxy from
// the environment, TLS settings) and sizes it for many parallel parts.
func newBuildableClient(cfg Config, conns *connSet) *awshttp.BuildableClient {
	return awshttp.NewBuildableClient().
		WithDialerOptions(func(d *net.Dialer) { d.Timeout = connectTimeout }).
		WithTransportOptions(func(tr *http.Transport) {
			tr.MaxIdleConns = 2 * maxHostConns
			tr.MaxIdleConnsPerHost = maxHostConns
			tr.MaxConnsPerHost = 0 // unlimited, see maxHostConns
			// Counted from the moment the whole body was written: a
			// response that never comes fails this attempt, and the
			// retryer tries again, however long the upload itself took.
			tr.ResponseHeaderTimeout = cfg.RequestTimeout
			// HTTP/1.1 only: HTTP/2 would multiplex every part over one
			// TCP connection, and parallel streams are what the
			// controller tunes (and what AWS S3 speaks anyway).
			tr.ForceAttemptHTTP2 = false
			tr.TLSNextProto = map[string]func(string, *tls.Conn) http.RoundTripper{}
			tr.DialContext = conns.wrapDial(tr.DialContext)
		})
}

// newHTTPClient wraps tr with the instrumentation when there is a sampler.
// It is our own http.Client rather than the BuildableClient so that the SDK
// does not add its inactivity read timeout, which would fire while a long
// part upload is still sending. Redirects are not followed: for S3 they mean
// a wrong region or endpoint, and the SDK reports them as errors.
func newHTTPClient(tr *http.Transport, sampler Sampler) *http.Client {
	var rt http.RoundTripper = tr
	if sampler != nil {
		rt = &instrumentedTransport{next: tr, sampler: sampler}
	}
	return &http.Client{
		Transport: rt,
		CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse
		},
	}
}

// normalizePrefix makes "/a/b" and "a/b/" both "a/b/"; "" stays "".
func normalizePrefix(p string) string {
	p = strings.TrimLeft(p, "/")
	if p != "" && !strings.HasSuffix(p, "/") {
		p += "/"
	}
	return p
}

func (c *Client) fullKey(key string) string { return c.prefix + key }

// relKey strips the configured prefix from a key the server returned.
func (c *Client) relKey(full string) (string, bool) {
	if !strings.HasPrefix(full, c.prefix) {
		return "", false
	}
	return full[len(c.prefix):], true
}

// CheckBucket lists at most one key under the prefix: that needs only the
// permission the mount needs anyway (s3:ListBucket, possibly restricted to
// the prefix) and returns error codes in the body, unlike HeadBucket.
func (c *Client) CheckBucket(ctx context.Context) error {
	cctx, cancel := context.WithTimeout(ctx, checkTimeout)
	defer cancel()
	in := &s3.ListObjectsV2Input{Bucket: &c.bucket, MaxKeys: aws.Int32(1)}
	if c.prefix != "" {
		in.Prefix = aws.String(c.prefix)
	}
	_, err := c.s3.ListObjectsV2(cctx, in, func(o *s3.Options) {
		o.Retryer = retry.AddWithMaxBackoffDelay(retry.AddWithMaxAttempts(o.Retryer, checkAttempts), time.Second)
	})
	if err == nil {
		return nil
	}
	if ctx.Err() != nil {
		return fmt.Errorf("check bucket %q: %w", c.bucket, ctx.Err())
	}
	code := errorCode(err)
	switch sentinelFor(cctx, err) {
	case ErrNoSuchBucket, ErrNotFound:
		return fmt.Errorf("bucket %q at %s: %w", c.bucket, c.endpoint, ErrNoSuchBucket)
	case ErrAccessDenied:
		if code == "" {
			code = "HTTP 403"
		}
		return fmt.Errorf("bucket %q at %s: %w: %s", c.bucket, c.endpoint, ErrAccessDenied, code)
	case ErrUnreachable:
		return fmt.Errorf("%s: %w: %v", c.endpoint, ErrUnreachable, err)
	}
	if errors.Is(err, context.DeadlineExceeded) { // our checkTimeout
		return fmt.Errorf("%s: %w: no answer within %s", c.endpoint, ErrUnreachable, checkTimeout)
	}
	switch code {
	case "PermanentRedirect", "AuthorizationHeaderMalformed", "IllegalLocationConstraintException":
		return fmt.Errorf("bucket %q at %s: %w: wrong region? (%s)", c.bucket, c.endpoint, ErrInvalidRequest, code)
	}
	return fmt.Errorf("check bucket %q at %s: %w", c.bucket, c.endpoint, err)
}

// Put uploads body as one object.
func (c *Client) Put(ctx context.Context, key string, body io.ReadSeeker, size int64, meta ObjectMeta) (string, error) {
	sum, err := crc32cOf(body)
	if err != nil {
		return "", fmt.Errorf("put %s: %w", key, err)
	}
	in := &s3.PutObjectInput{
		Bucket:         &c.bucket,
		Key:            aws.String(c.fullKey(key)),
		Body:           body,
		ContentLength:  aws.Int64(size),
		Metadata:       meta.s3Metadata(),
		ChecksumCRC32C: aws.String(sum),
	}
	if meta.ContentEncoding != "" {
		in.ContentEncoding = aws.String(meta.ContentEncoding)
	}
	out, err := c.s3.PutObject(ctx, in, unsignedPayload)
	if err != nil {
		return "", c.wrapErr(ctx, "put", key, err)
	}
	return aws.ToString(out.ETag), nil
}

// CreateMultipart starts a multipart upload; meta is stored on the object.
func (c *Client) CreateMultipart(ctx context.Context, key string, meta ObjectMeta) (string, error) {
	in := &s3.CreateMultipartUploadInput{
		Bucket:            &c.bucket,
		Key:               aws.String(c.fullKey(key)),
		Metadata:          meta.s3Metadata(),
		ChecksumAlgorithm: types.ChecksumAlgorithmCrc32c,
	}
	if meta.ContentEncoding != "" {
		in.ContentEncoding = aws.String(meta.ContentEncoding)
	}
	out, err := c.s3.CreateMultipartUpload(ctx, in)
	if err != nil {
		return "", c.wrapErr(ctx, "create multipart upload", key, err)
	}
	return aws.ToString(out.UploadId), nil
}

// UploadPart uploads part number (1..10000) of an upload.
func (c *Client) UploadPart(ctx context.Context, key, uploadID string, number int32, body io.ReadSeeker, size int64) (CompletedPart, error) {
	sum, err := crc32cOf(body)
	if err != nil {
		return CompletedPart{}, fmt.Errorf("upload part %d of %s: %w", number, key, err)
	}
	out, err := c.s3.UploadPart(ctx, &s3.UploadPartInput{
		Bucket:         &c.bucket,
		Key:            aws.String(c.fullKey(key)),
		UploadId:       &uploadID,
		PartNumber:     &number,
		Body:           body,
		ContentLength:  aws.Int64(size),
		ChecksumCRC32C: aws.String(sum),
	}, unsignedPayload)
	if err != nil {
		if p, ok := c.verifyPart(ctx, key, uploadID, number, size, sum, err); ok {
			return p, nil
		}
		return CompletedPart{}, c.wrapErr(ctx, fmt.Sprintf("upload part %d of", number), key, err)
	}
	return CompletedPart{Number: number, ETag: aws.ToString(out.ETag), Size: size, CRC32C: sum}, nil
}

// verifyPart looks for part number in the server's list after an upload
// whose last answer never came (the body may well have arrived): a part
// with our size and CRC32C is ours, and its ETag is taken instead of
// sending the part again. An error the server answered is not a lost
// response, and neither is a cancelled context.
func (c *Client) verifyPart(ctx context.Context, key, uploadID string, number int32, size int64, sum string, uploadErr error) (CompletedPart, bool) {
	var apiErr smithy.APIError
	if ctx.Err() != nil || errors.As(uploadErr, &apiErr) {
		return CompletedPart{}, false
	}
	vctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	parts, err := c.ListParts(vctx, key, uploadID)
	if err != nil {
		return CompletedPart{}, false
	}
	for _, p := range parts {
		if p.Number == number && p.Size == size && p.CRC32C == sum && p.ETag != "" {
			if c.log != nil {
				c.log.Info("part verified on the server after its response was lost", "key", key, "part", number, "err", uploadErr)
			}
			return CompletedPart{Number: number, ETag: p.ETag, Size: size, CRC32C: sum}, true
		}
	}
	return CompletedPart{}, false
}

// CompleteMultipart assembles the parts; their order in parts is irrelevant.
func (c *Client) CompleteMultipart(ctx context.Context, key, uploadID string, parts []CompletedPart) (string, error) {
	sorted := slices.Clone(parts)
	slices.SortFunc(sorted, func(a, b CompletedPart) int { return cmp.Compare(a.Number, b.Number) })
	done := make([]types.CompletedPart, len(sorted))
	for i, p := range sorted {
		done[i] = types.CompletedPart{PartNumber: aws.Int32(p.Number), ETag: aws.String(p.ETag)}
		if p.CRC32C != "" {
			done[i].ChecksumCRC32C = aws.String(p.CRC32C)
		}
	}
	out, err := c.s3.CompleteMultipartUpload(ctx, &s3.CompleteMultipartUploadInput{
		Bucket:          &c.bucket,
		Key:             aws.String(c.fullKey(key)),
		UploadId:        &uploadID,
		MultipartUpload: &types.CompletedMultipartUpload{Parts: done},
	})
	if err != nil {
		return "", c.wrapErr(ctx, "complete multipart upload", key, err)
	}
	return aws.ToString(out.ETag), nil
}

// AbortMultipart discards an upload; one that is already gone is fine.
func (c *Client) AbortMultipart(ctx context.Context, key, uploadID string) error {
	_, err := c.s3.AbortMultipartUpload(ctx, &s3.AbortMultipartUploadInput{
		Bucket:   &c.bucket,
		Key:      aws.String(c.fullKey(key)),
		UploadId: &uploadID,
	})
	if err != nil && !errors.Is(sentinelFor(ctx, err), ErrNoSuchUpload) {
		return c.wrapErr(ctx, "abort multipart upload", key, err)
	}
	return nil
}

// ListParts returns the parts the server holds for an upload, in order.
func (c *Client) ListParts(ctx context.Context, key, uploadID string) ([]CompletedPart, error) {
	var parts []CompletedPart
	p := s3.NewListPartsPaginator(c.s3, &s3.ListPartsInput{
		Bucket:   &c.bucket,
		Key:      aws.String(c.fullKey(key)),
		UploadId: &uploadID,
	})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, c.wrapErr(ctx, "list parts of", key, err)
		}
		for _, part := range page.Parts {
			parts = append(parts, CompletedPart{
				Number: aws.ToInt32(part.PartNumber),
				ETag:   aws.ToString(part.ETag),
				Size:   aws.ToInt64(part.Size),
				CRC32C: aws.ToString(part.ChecksumCRC32C),
			})
		}
	}
	return parts, nil
}

// ListMultipartUploads lists in-progress uploads whose key starts with
// prefix (relative to the configured prefix).
func (c *Client) ListMultipartUploads(ctx context.Context, prefix string) ([]Upload, error) {
	in := &s3.ListMultipartUploadsInput{Bucket: &c.bucket}
	if full := c.fullKey(prefix); full != "" {
		in.Prefix = aws.String(full)
	}
	var uploads []Upload
	p := s3.NewListMultipartUploadsPaginator(c.s3, in)
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, c.wrapErr(ctx, "list multipart uploads under", prefix, err)
		}
		for _, u := range page.Uploads {
			key, ok := c.relKey(aws.ToString(u.Key))
			if !ok {
				continue
			}
			uploads = append(uploads, Upload{
				Key:       key,
				UploadID:  aws.ToString(u.UploadId),
				Initiated: aws.ToTime(u.Initiated),
			})
		}
	}
	return uploads, nil
}

// Head returns an object's size, ETag and metadata.
func (c *Client) Head(ctx context.Context, key string) (ObjectInfo, error) {
	out, err := c.headObject(ctx, key)
	if err != nil {
		return ObjectInfo{}, c.wrapErr(ctx, "head", key, err)
	}
	return ObjectInfo{
		Key:          key,
		Size:         aws.ToInt64(out.ContentLength),
		ETag:         aws.ToString(out.ETag),
		LastModified: aws.ToTime(out.LastModified),
		Meta:         metaFromS3(out.Metadata, aws.ToString(out.ContentEncoding)),
	}, nil
}

func (c *Client) headObject(ctx context.Context, key string) (*s3.HeadObjectOutput, error) {
	return c.s3.HeadObject(ctx, &s3.HeadObjectInput{
		Bucket: &c.bucket,
		Key:    aws.String(c.fullKey(key)),
	})
}

// Get reads [off, off+length) of an object (to the end if length < 0). As
// with pread, a range starting at or beyond the end yields an empty reader.
func (c *Client) Get(ctx context.Context, key string, off, length int64) (io.ReadCloser, error) {
	if off < 0 {
		return nil, fmt.Errorf("get %s: offset %d: %w", key, off, ErrInvalidRequest)
	}
	if length == 0 {
		return io.NopCloser(strings.NewReader("")), nil
	}
	in := &s3.GetObjectInput{Bucket: &c.bucket, Key: aws.String(c.fullKey(key))}
	switch {
	case length > 0:
		in.Range = aws.String(fmt.Sprintf("bytes=%d-%d", off, off+length-1))
	case off > 0:
		in.Range = aws.String(fmt.Sprintf("bytes=%d-", off))
	}
	out, err := c.s3.GetObject(ctx, in)
	if err != nil {
		if in.Range != nil && (errorCode(err) == "InvalidRange" || httpStatus(err) == http.StatusRequestedRangeNotSatisfiable) {
			return io.NopCloser(strings.NewReader("")), nil
		}
		return nil, c.wrapErr(ctx, "get", key, err)
	}
	return out.Body, nil
}

// Delete removes an object; a missing one is not an error.
func (c *Client) Delete(ctx context.Context, key string) error {
	_, err := c.s3.DeleteObject(ctx, &s3.DeleteObjectInput{
		Bucket: &c.bucket,
		Key:    aws.String(c.fullKey(key)),
	})
	if err != nil && !errors.Is(sentinelFor(ctx, err), ErrNotFound) {
		return c.wrapErr(ctx, "delete", key, err)
	}
	return nil
}

// DeleteMany removes keys with DeleteObjects, 1000 at a time. Keys that do
// not exist are not errors; every other per-key failure is reported.
func (c *Client) DeleteMany(ctx context.Context, keys []string) error {
	var errs []error
	for batch := range slices.Chunk(keys, deleteBatch) {
		ids := make([]types.ObjectIdentifier, len(batch))
		for i, k := range batch {
			ids[i] = types.ObjectIdentifier{Key: aws.String(c.fullKey(k))}
		}
		out, err := c.s3.DeleteObjects(ctx, &s3.DeleteObjectsInput{
			Bucket: &c.bucket,
			Delete: &types.Delete{Objects: ids, Quiet: aws.Bool(true)},
		})
		if err != nil {
			errs = append(errs, c.wrapErr(ctx, fmt.Sprintf("delete %d objects starting at", len(batch)), batch[0], err))
			return errors.Join(errs...)
		}
		for _, e := range out.Errors {
			if err := c.deleteError(e); err != nil {
				errs = append(errs, err)
			}
		}
	}
	return errors.Join(errs...)
}

func (c *Client) deleteError(e types.Error) error {
	code := aws.ToString(e.Code)
	where := "s3://" + c.bucket + "/" + aws.ToString(e.Key)
	switch code {
	case "NoSuchKey":
		return nil
	case "AccessDenied":
		return fmt.Errorf("delete %s: %w: %s", where, ErrAccessDenied, aws.ToString(e.Message))
	}
	return fmt.Errorf("delete %s: %s: %s", where, code, aws.ToString(e.Message))
}

// unsignedPayload skips SigV4's SHA-256 of the body for bulk data: the
// CRC32C we send with every part and PUT is verified by the server instead,
// at a fraction of the CPU on both ends (see docs/ARCHITECTURE.md).
func unsignedPayload(o *s3.Options) {
	o.APIOptions = append(o.APIOptions, v4.SwapComputePayloadSHA256ForUnsignedPayloadMiddleware)
}

// crc32cOf reads body to its end for the CRC32C and rewinds it.
func crc32cOf(body io.ReadSeeker) (string, error) {
	h := crc32.New(crc32.MakeTable(crc32.Castagnoli))
	if body == nil {
		return base64.StdEncoding.EncodeToString(h.Sum(nil)), nil
	}
	if _, err := io.Copy(h, body); err != nil {
		return "", fmt.Errorf("checksum body: %w", err)
	}
	if _, err := body.Seek(0, io.SeekStart); err != nil {
		return "", fmt.Errorf("rewind body: %w", err)
	}
	return base64.StdEncoding.EncodeToString(h.Sum(nil)), nil
}
