package s3backend

import (
	"errors"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/ratelimit"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/smithy-go"
	smithyhttp "github.com/aws/smithy-go/transport/http"
)

// maxRetryAfter bounds how long a server's Retry-After can hold one retry.
const maxRetryAfter = 30 * time.Second

// newRetryer is the SDK's standard retryer (exponential backoff with
// jitter; SlowDown and 503 count as throttling) without its client-side
// retry quota: on a lossy link with many parts in flight the quota would
// turn retryable failures into permanent ones. Backing off as a whole is
// the controller's job (it lowers concurrency). A server's Retry-After is
// honoured when it asks for longer than the backoff.
func newRetryer(maxRetries int) aws.Retryer {
	return retryAfterRetryer{retry.NewStandard(func(o *retry.StandardOptions) {
		o.MaxAttempts = maxRetries + 1
		o.RateLimiter = ratelimit.None
		o.Retryables = append(slices.Clone(o.Retryables), retry.IsErrorRetryableFunc(cutResponse))
	})}
}

// cutResponse makes a response whose body broke off mid-way retryable: the
// SDK retries failures of the round trip but not a 200 whose XML body the
// connection cut short (seen in the soak: ListObjectsV2 failed with
// "deserialization failed ... unexpected EOF", and rmdir with EIO).
func cutResponse(err error) aws.Ternary {
	var de *smithy.DeserializationError
	if errors.As(err, &de) && (errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF)) {
		return aws.TrueTernary
	}
	return aws.UnknownTernary
}

type retryAfterRetryer struct{ *retry.Standard }

func (r retryAfterRetryer) RetryDelay(attempt int, err error) (time.Duration, error) {
	d, derr := r.Standard.RetryDelay(attempt, err)
	if derr != nil {
		return d, derr
	}
	if ra, ok := retryAfter(err, time.Now()); ok && ra > d {
		d = min(ra, maxRetryAfter)
	}
	return d, nil
}

// retryAfter reads the Retry-After header of a failed response: seconds or
// an HTTP date.
func retryAfter(err error, now time.Time) (time.Duration, bool) {
	var re *smithyhttp.ResponseError
	if !errors.As(err, &re) || re.Response == nil {
		return 0, false
	}
	v := strings.TrimSpace(re.Response.Header.Get("Retry-After"))
	if v == "" {
		return 0, false
	}
	if s, err := strconv.Atoi(v); err == nil && s >= 0 {
		return time.Duration(s) * time.Second, true
	}
	if t, err := http.ParseTime(v); err == nil {
		return max(0, t.Sub(now)), true
	}
	return 0, false
}
