package s3backend

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"sync/atomic"
	"testing"
)

// TestLostResponseVerified: every UploadPart reaches the server, but its
// response never comes back (the proxy hangs up after forwarding). The
// client does not assume failure: it finds the part in ListParts with its
// size and CRC32C, takes that ETag, and the upload completes intact. A
// part the server never got is not "verified".
func TestLostResponseVerified(t *testing.T) {
	ctx := t.Context()
	direct := newBucket(t, "", nil)
	u, _ := url.Parse(testEndpoint)
	rp := httputil.NewSingleHostReverseProxy(u)
	var lost, dropped atomic.Int64
	var dropBody atomic.Bool
	proxy := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPut && r.URL.Query().Has("partNumber") {
			if dropBody.Load() {
				dropped.Add(1)
			} else {
				rp.ServeHTTP(httptest.NewRecorder(), r) // the server stores the part...
				lost.Add(1)
			}
			if c, _, err := w.(http.Hijacker).Hijack(); err == nil {
				c.Close() // ...and its answer is lost
			}
			return
		}
		rp.ServeHTTP(w, r)
	}))
	t.Cleanup(proxy.Close)
	cfg := testConfig(direct.bucket, "")
	cfg.Endpoint = proxy.URL
	cfg.MaxRetries = 0
	c := newTestClient(t, cfg, nil)

	id, err := c.CreateMultipart(ctx, "lost", ObjectMeta{})
	if err != nil {
		t.Fatal(err)
	}
	p1, p2 := randomBytes(5*mib, 31), randomBytes(1000, 32)
	var parts []CompletedPart
	for i, p := range [][]byte{p1, p2} {
		part, err := c.UploadPart(ctx, "lost", id, int32(i+1), bytes.NewReader(p), int64(len(p)))
		if err != nil {
			t.Fatalf("part %d with its response lost: %v", i+1, err)
		}
		parts = append(parts, part)
	}
	if lost.Load() != 2 {
		t.Fatalf("%d responses lost, want 2", lost.Load())
	}
	if _, err := c.CompleteMultipart(ctx, "lost", id, parts); err != nil {
		t.Fatalf("complete with verified parts: %v", err)
	}
	if got := getAll(t, direct, "lost", 0, -1); !bytes.Equal(got, append(p1, p2...)) {
		t.Fatal("object differs")
	}

	// A part whose body never reached the server is not found: an error.
	dropBody.Store(true)
	id2, err := c.CreateMultipart(ctx, "dropped", ObjectMeta{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.UploadPart(ctx, "dropped", id2, 1, bytes.NewReader(p1), int64(len(p1))); err == nil || dropped.Load() == 0 {
		t.Fatalf("a part the server never got was accepted (err %v)", err)
	}
	c.AbortMultipart(ctx, "dropped", id2)
}
