package s3backend

import (
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
)

// TestCutListingRetried: the first ListObjectsV2 answer breaks off in the
// middle of its XML body (status 200, connection reset). The listing is
// retried and succeeds instead of failing with a deserialization error.
func TestCutListingRetried(t *testing.T) {
	ctx := t.Context()
	direct := newBucket(t, "", nil)
	for _, k := range []string{"a", "b", "c"} {
		if _, err := direct.Put(ctx, k, strings.NewReader(k), 1, ObjectMeta{}); err != nil {
			t.Fatal(err)
		}
	}
	u, _ := url.Parse(testEndpoint)
	rp := httputil.NewSingleHostReverseProxy(u)
	var cut atomic.Int64
	proxy := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodGet && r.URL.Query().Get("list-type") == "2" && cut.Add(1) == 1 {
			rec := httptest.NewRecorder()
			rp.ServeHTTP(rec, r)
			body := rec.Body.Bytes()
			c, buf, err := w.(http.Hijacker).Hijack()
			if err != nil {
				return
			}
			buf.WriteString("HTTP/1.1 200 OK\r\nContent-Type: application/xml\r\nContent-Length: " + strconv.Itoa(len(body)) + "\r\n\r\n")
			buf.Write(body[:len(body)/2])
			buf.Flush()
			c.(*net.TCPConn).SetLinger(0)
			c.Close()
			return
		}
		rp.ServeHTTP(w, r)
	}))
	t.Cleanup(proxy.Close)
	cfg := testConfig(direct.bucket, "")
	cfg.Endpoint = proxy.URL
	c := newTestClient(t, cfg, nil)
	names := names(collect(t, c, "", false))
	if strings.Join(names, ",") != "a,b,c" || cut.Load() < 2 {
		t.Fatalf("listing after a cut response: %v (%d list requests)", names, cut.Load())
	}
}
