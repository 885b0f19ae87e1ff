package s3backend

import (
	"errors"
	"net/http"
	"testing"
	"time"

	"github.com/aws/smithy-go"
	smithyhttp "github.com/aws/smithy-go/transport/http"
)

func slowDown(retryAfter string) error {
	resp := &http.Response{StatusCode: 503, Header: http.Header{}}
	if retryAfter != "" {
		resp.Header.Set("Retry-After", retryAfter)
	}
	return &smithyhttp.ResponseError{
		Response: &smithyhttp.Response{Response: resp},
		Err:      &smithy.GenericAPIError{Code: "SlowDown", Message: "reduce your request rate"},
	}
}

// TestRetryAfter: a server's Retry-After lengthens the backoff (capped),
// never shortens it, and a throttling error without one backs off as usual.
func TestRetryAfter(t *testing.T) {
	r := newRetryer(5).(retryAfterRetryer)
	now := time.Date(2026, 11, 28, 6, 0, 0, 0, time.UTC)
	tests := []struct {
		name     string
		err      error
		min, max time.Duration
	}{
		{"seconds", slowDown("7"), 7 * time.Second, 7 * time.Second},
		{"capped", slowDown("3600"), maxRetryAfter, maxRetryAfter},
		{"none", slowDown(""), 0, 20 * time.Second},
		{"garbage", slowDown("soon"), 0, 20 * time.Second},
		{"not a response", errors.New("connection reset"), 0, 20 * time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if !r.IsErrorRetryable(tt.err) && tt.name != "not a response" {
				t.Fatalf("%v is not retryable", tt.err)
			}
			d, err := r.RetryDelay(1, tt.err)
			if err != nil {
				t.Fatal(err)
			}
			if d < tt.min || d > tt.max {
				t.Fatalf("delay %s, want within [%s, %s]", d, tt.min, tt.max)
			}
		})
	}
	if d, ok := retryAfter(slowDown(now.Add(5*time.Second).Format(http.TimeFormat)), now); !ok || d != 5*time.Second {
		t.Fatalf("HTTP-date Retry-After: %s %v", d, ok)
	}
}
