package s3backend

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptrace"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// instrumentedTransport reports every HTTP attempt to a Sampler. It sits
// below the SDK's retry loop, so each retry is its own Sample, and it sees
// the bytes the transport actually pulls from the body, which is what the
// controller needs to estimate goodput. It is only installed when a Sampler
// is configured.
type instrumentedTransport struct {
	next    http.RoundTripper
	sampler Sampler
}

func (t *instrumentedTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	a := &attempt{sampler: t.sampler}
	a.s.Op = opOf(req)
	a.s.Attempt = parseAttempt(req.Header.Get("Amz-Sdk-Request"))
	a.s.Start = time.Now()

	trace := &httptrace.ClientTrace{
		WroteRequest:         a.wroteRequest,
		GotFirstResponseByte: a.gotFirstResponseByte,
	}
	// A shallow copy: a RoundTripper must not modify the caller's request.
	r := req.WithContext(httptrace.WithClientTrace(req.Context(), trace))
	if req.Body != nil && req.Body != http.NoBody {
		r.Body = &countingBody{rc: req.Body, a: a}
	}

	resp, err := t.next.RoundTrip(r)
	if err != nil {
		a.finish(err)
		return nil, err
	}
	a.s.Status = resp.StatusCode
	if resp.Body == nil || resp.Body == http.NoBody || req.Method == http.MethodHead {
		a.finish(nil) // nothing more will arrive
		return resp, nil
	}
	resp.Body = &observedBody{rc: resp.Body, a: a}
	return resp, nil
}

// attempt is the state of one HTTP attempt. The request body is read on the
// transport's write goroutine and the trace hooks fire on its goroutines,
// possibly after RoundTrip returned, hence the atomics and the mutex.
type attempt struct {
	sampler Sampler
	s       Sample // Op, Attempt, Start, Status: set before the body is handed out

	sent atomic.Int64
	recv atomic.Int64
	done atomic.Bool

	mu        sync.Mutex
	bodyDone  time.Time // guarded by mu
	firstByte time.Time // guarded by mu
}

func (a *attempt) wroteRequest(info httptrace.WroteRequestInfo) {
	if info.Err != nil {
		return // the request never got out whole
	}
	now := time.Now()
	a.mu.Lock()
	a.bodyDone = now
	a.mu.Unlock()
}

func (a *attempt) gotFirstResponseByte() {
	now := time.Now()
	a.mu.Lock()
	a.firstByte = now
	a.mu.Unlock()
}

// finish reports the attempt once; later calls do nothing.
func (a *attempt) finish(err error) {
	if !a.done.CompareAndSwap(false, true) {
		return
	}
	s := a.s
	s.End = time.Now()
	s.Bytes = a.sent.Load()
	s.RespBytes = a.recv.Load()
	a.mu.Lock()
	s.BodyDone, s.FirstByte = a.bodyDone, a.firstByte
	a.mu.Unlock()
	if err == nil {
		err = statusError(s.Status)
	}
	s.Err = err
	a.sampler.Observe(s)
}

// countingBody reports request body bytes as the transport reads them.
type countingBody struct {
	rc io.ReadCloser
	a  *attempt
}

func (b *countingBody) Read(p []byte) (int, error) {
	n, err := b.rc.Read(p)
	if n > 0 {
		b.a.sent.Add(int64(n))
		b.a.sampler.BodyProgress(int64(n), time.Now())
	}
	return n, err
}

func (b *countingBody) Close() error { return b.rc.Close() }

// observedBody counts response bytes and ends the attempt at EOF, on a read
// error, or on Close, whichever comes first.
type observedBody struct {
	rc io.ReadCloser
	a  *attempt
}

func (b *observedBody) Read(p []byte) (int, error) {
	n, err := b.rc.Read(p)
	if n > 0 {
		b.a.recv.Add(int64(n))
	}
	switch {
	case err == io.EOF:
		b.a.finish(nil)
	case err != nil:
		b.a.finish(err)
	}
	return n, err
}

func (b *observedBody) Close() error {
	err := b.rc.Close()
	b.a.finish(nil) // closing early is the caller's choice, not a failure
	return err
}

// httpStatusError marks a Sample whose response was a server-side failure
// or throttling; plain 4xx answers (404, 403) are not link trouble.
type httpStatusError struct{ code int }

func (e *httpStatusError) Error() string {
	return fmt.Sprintf("HTTP %d %s", e.code, http.StatusText(e.code))
}

func statusError(code int) error {
	if code >= 500 || code == http.StatusTooManyRequests {
		return &httpStatusError{code: code}
	}
	return nil
}

// opOf names the S3 operation of a request from its method, query and
// headers, without parsing the query into a map.
func opOf(req *http.Request) Op {
	q := req.URL.RawQuery
	switch req.Method {
	case http.MethodPut:
		if req.Header.Get("X-Amz-Copy-Source") != "" {
			return OpCopy // CopyObject and UploadPartCopy: no body bytes to count
		}
		if hasQueryKey(q, "partNumber") && hasQueryKey(q, "uploadId") {
			return OpPart
		}
		return OpPut
	case http.MethodPost:
		if hasQueryKey(q, "uploads") {
			return OpCreate
		}
		if hasQueryKey(q, "uploadId") {
			return OpComplete
		}
	case http.MethodGet:
		if hasQueryKey(q, "list-type") {
			return OpList
		}
		if hasQueryKey(q, "uploadId") || hasQueryKey(q, "uploads") {
			return OpOther // ListParts, ListMultipartUploads
		}
		return OpGet
	case http.MethodHead:
		return OpHead
	case http.MethodDelete:
		if hasQueryKey(q, "uploadId") {
			return OpAbort
		}
		return OpDelete
	}
	return OpOther
}

// hasQueryKey reports whether the raw query has parameter key. Keys and
// values are escaped, so '&' and '=' only appear as separators.
func hasQueryKey(raw, key string) bool {
	for raw != "" {
		var part string
		part, raw, _ = strings.Cut(raw, "&")
		if k, _, _ := strings.Cut(part, "="); k == key {
			return true
		}
	}
	return false
}

// parseAttempt reads N from the SDK's "amz-sdk-request: attempt=N; max=M".
func parseAttempt(h string) int {
	i := strings.Index(h, "attempt=")
	if i < 0 {
		return 1
	}
	n := 0
	for _, c := range h[i+len("attempt="):] {
		if c < '0' || c > '9' {
			break
		}
		n = n*10 + int(c-'0')
	}
	return max(n, 1)
}
