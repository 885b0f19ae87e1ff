package s3backend

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"

	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/smithy-go"
)

// sentinelFor sorts an SDK error into one of the package's sentinels, or
// returns nil when none applies (transient and unknown failures). ctx is the
// context of the failed call: once it is done, a timeout is the caller's.
func sentinelFor(ctx context.Context, err error) error {
	switch errorCode(err) {
	case "NoSuchKey", "NotFound":
		return ErrNotFound
	case "NoSuchBucket":
		return ErrNoSuchBucket
	case "NoSuchUpload":
		return ErrNoSuchUpload
	case "AccessDenied", "InvalidAccessKeyId", "SignatureDoesNotMatch",
		"AllAccessDisabled", "ExpiredToken", "InvalidToken", "AccountProblem":
		return ErrAccessDenied
	case "InvalidArgument", "InvalidRequest", "EntityTooSmall", "EntityTooLarge",
		"InvalidPart", "InvalidPartOrder", "KeyTooLongError", "MetadataTooLarge",
		"InvalidRange", "InvalidBucketName", "MalformedXML":
		return ErrInvalidRequest
	}
	switch httpStatus(err) {
	case http.StatusNotFound:
		return ErrNotFound
	case http.StatusForbidden:
		return ErrAccessDenied
	}
	if ctx.Err() == nil && isUnreachable(err) {
		return ErrUnreachable
	}
	return nil
}

// errorCode is the S3 error code ("NoSuchKey"), or "".
func errorCode(err error) string {
	var apiErr smithy.APIError
	if errors.As(err, &apiErr) {
		return apiErr.ErrorCode()
	}
	return ""
}

// httpStatus is the response status of a failed request, or 0.
func httpStatus(err error) int {
	var re *awshttp.ResponseError
	if errors.As(err, &re) {
		return re.HTTPStatusCode()
	}
	return 0
}

// isUnreachable reports connection-level failures: DNS, dial, and timeouts
// waiting for the server (net/http's timeouts also match
// context.DeadlineExceeded, so the caller's context is checked instead).
func isUnreachable(err error) bool {
	if errors.Is(err, context.Canceled) {
		return false
	}
	var dnsErr *net.DNSError
	if errors.As(err, &dnsErr) {
		return true
	}
	var opErr *net.OpError
	if errors.As(err, &opErr) && opErr.Op == "dial" {
		return true
	}
	var netErr net.Error
	return errors.As(err, &netErr) && netErr.Timeout()
}

// wrapErr adds the operation and object to err and, where one applies, a
// sentinel that callers can test with errors.Is.
func (c *Client) wrapErr(ctx context.Context, op, key string, err error) error {
	if err == nil {
		return nil
	}
	where := "s3://" + c.bucket + "/" + c.fullKey(key)
	if s := sentinelFor(ctx, err); s != nil {
		return fmt.Errorf("%s %s: %w: %w", op, where, s, err)
	}
	return fmt.Errorf("%s %s: %w", op, where, err)
}
