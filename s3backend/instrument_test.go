package s3backend

import (
	"errors"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
)

func TestOpOf(t *testing.T) {
	tests := []struct {
		method, query string
		copySource    bool
		want          Op
	}{
		{"PUT", "x-id=PutObject", false, OpPut},
		{"PUT", "partNumber=3&uploadId=abc&x-id=UploadPart", false, OpPart},
		{"PUT", "partNumber=3&uploadId=abc", true, OpCopy},
		{"PUT", "x-id=CopyObject", true, OpCopy},
		{"POST", "uploads&x-id=CreateMultipartUpload", false, OpCreate},
		{"POST", "uploads=", false, OpCreate},
		{"POST", "uploadId=abc", false, OpComplete},
		{"POST", "delete", false, OpOther},
		{"DELETE", "uploadId=abc&x-id=AbortMultipartUpload", false, OpAbort},
		{"DELETE", "x-id=DeleteObject", false, OpDelete},
		{"GET", "list-type=2&prefix=a%2F", false, OpList},
		{"GET", "x-id=GetObject", false, OpGet},
		{"GET", "uploadId=abc", false, OpOther},
		{"GET", "prefix=uploadId%3D", false, OpGet}, // a value that looks like a key
		{"HEAD", "", false, OpHead},
		{"OPTIONS", "", false, OpOther},
	}
	for _, tt := range tests {
		req := &http.Request{Method: tt.method, URL: &url.URL{Path: "/b/k", RawQuery: tt.query}, Header: http.Header{}}
		if tt.copySource {
			req.Header.Set("X-Amz-Copy-Source", "b/src")
		}
		if got := opOf(req); got != tt.want {
			t.Errorf("opOf(%s ?%s copy=%v) = %s, want %s", tt.method, tt.query, tt.copySource, got, tt.want)
		}
	}
}

func TestParseAttempt(t *testing.T) {
	tests := map[string]int{
		"attempt=1; max=6":  1,
		"attempt=12; max=3": 12,
		"max=3; attempt=2":  2,
		"":                  1,
		"attempt=; max=1":   1,
		"attempt=x":         1,
	}
	for in, want := range tests {
		if got := parseAttempt(in); got != want {
			t.Errorf("parseAttempt(%q) = %d, want %d", in, got, want)
		}
	}
}

// fakeTransport answers every request with status and body after reading
// the request body, or fails with err.
type fakeTransport struct {
	status int
	body   string
	err    error
}

func (f *fakeTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.Body != nil {
		_, _ = io.Copy(io.Discard, req.Body)
		req.Body.Close()
	}
	if f.err != nil {
		return nil, f.err
	}
	body := io.NopCloser(strings.NewReader(f.body))
	if f.body == "" {
		body = http.NoBody
	}
	return &http.Response{StatusCode: f.status, Body: body, Request: req}, nil
}

func TestInstrumentedTransport(t *testing.T) {
	boom := errors.New("connection reset")
	tests := []struct {
		name       string
		method     string
		reqBody    string
		next       fakeTransport
		wantStatus int
		wantErr    bool
		wantResp   int64
	}{
		{"put ok", "PUT", "0123456789", fakeTransport{status: 200}, 200, false, 0},
		{"get ok", "GET", "", fakeTransport{status: 200, body: "hello"}, 200, false, 5},
		{"not found is not a link error", "GET", "", fakeTransport{status: 404, body: "<Error/>"}, 404, false, 8},
		{"server error", "PUT", "abc", fakeTransport{status: 500, body: "<Error/>"}, 500, true, 8},
		{"slow down", "PUT", "abc", fakeTransport{status: 503}, 503, true, 0},
		{"throttled", "GET", "", fakeTransport{status: 429}, 429, true, 0},
		{"transport error", "PUT", "abc", fakeTransport{err: boom}, 0, true, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := &recordingSampler{}
			next := tt.next
			rt := &instrumentedTransport{next: &next, sampler: rec}
			req, err := http.NewRequest(tt.method, "http://h/b/k?x-id=X", strings.NewReader(tt.reqBody))
			if err != nil {
				t.Fatal(err)
			}
			req.Header.Set("Amz-Sdk-Request", "attempt=3; max=6")
			resp, err := rt.RoundTrip(req)
			if err == nil {
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				resp.Body.Close() // a second Close must not report again
			}
			ss := rec.take()
			if len(ss) != 1 {
				t.Fatalf("got %d samples, want 1", len(ss))
			}
			s := ss[0]
			if s.Status != tt.wantStatus || (s.Err != nil) != tt.wantErr || s.Attempt != 3 ||
				s.Bytes != int64(len(tt.reqBody)) || s.RespBytes != tt.wantResp {
				t.Errorf("sample = %+v, want status %d err %v attempt 3 bytes %d resp %d",
					s, tt.wantStatus, tt.wantErr, len(tt.reqBody), tt.wantResp)
			}
			if tt.next.err != nil && !errors.Is(s.Err, boom) {
				t.Errorf("Err = %v, want the transport's error", s.Err)
			}
			if rec.progress.Load() != int64(len(tt.reqBody)) {
				t.Errorf("BodyProgress summed to %d, want %d", rec.progress.Load(), len(tt.reqBody))
			}
			if s.Start.IsZero() || s.End.Before(s.Start) {
				t.Errorf("Start %v End %v", s.Start, s.End)
			}
		})
	}
}

func TestNormalizePrefix(t *testing.T) {
	for in, want := range map[string]string{"": "", "/": "", "a": "a/", "/a/b": "a/b/", "a/b/": "a/b/", "//x": "x/"} {
		if got := normalizePrefix(in); got != want {
			t.Errorf("normalizePrefix(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestEscapePath(t *testing.T) {
	for in, want := range map[string]string{
		"bucket/dir/file.txt": "bucket/dir/file.txt",
		"b/a b+c%&=.txt":      "b/a%20b%2Bc%25%26%3D.txt",
		"b/ü":                 "b/%C3%BC",
	} {
		if got := escapePath(in); got != want {
			t.Errorf("escapePath(%q) = %q, want %q", in, got, want)
		}
	}
}
