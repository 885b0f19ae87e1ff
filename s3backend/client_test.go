package s3backend

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/sync/errgroup"
)

const mib = 1 << 20

func randomBytes(n int, seed uint64) []byte {
	r := rand.New(rand.NewPCG(seed, 0x5eed))
	b := make([]byte, n)
	for i := 0; i+8 <= n; i += 8 {
		v := r.Uint64()
		for j := range 8 {
			b[i+j] = byte(v >> (8 * j))
		}
	}
	for i := n - n%8; i < n; i++ {
		b[i] = byte(r.Uint32())
	}
	return b
}

// getAll reads [off, off+length) of key.
func getAll(t *testing.T, c *Client, key string, off, length int64) []byte {
	t.Helper()
	rc, err := c.Get(t.Context(), key, off, length)
	if err != nil {
		t.Fatalf("get: %v", err)
	}
	defer rc.Close()
	b, err := io.ReadAll(rc)
	if err != nil {
		t.Fatalf("read body: %v", err)
	}
	return b
}

func sampleMeta() ObjectMeta {
	return ObjectMeta{
		Mtime:           time.Unix(1700000000, 123456789),
		Mode:            0o100640,
		UID:             1000,
		GID:             1001,
		HasOwner:        true,
		ContentEncoding: "zstd",
		Extra:           map[string]string{"raw-size": "12345"},
	}
}

func checkMeta(t *testing.T, got, want ObjectMeta) {
	t.Helper()
	if !got.Mtime.Equal(want.Mtime) || got.Mode != want.Mode || got.UID != want.UID ||
		got.GID != want.GID || got.HasOwner != want.HasOwner || got.ContentEncoding != want.ContentEncoding {
		t.Errorf("meta = %+v, want %+v", got, want)
	}
	for k, v := range want.Extra {
		if got.Extra[k] != v {
			t.Errorf("meta extra %q = %q, want %q (all: %v)", k, got.Extra[k], v, got.Extra)
		}
	}
}

func TestPutHeadGet(t *testing.T) {
	ctx := t.Context()
	c := newBucket(t, "", nil)
	data := randomBytes(100_000, 1)
	meta := sampleMeta()

	etag, err := c.Put(ctx, "dir/file.bin", bytes.NewReader(data), int64(len(data)), meta)
	if err != nil {
		t.Fatalf("Put: %v", err)
	}
	info, err := c.Head(ctx, "dir/file.bin")
	if err != nil {
		t.Fatalf("Head: %v", err)
	}
	if info.Key != "dir/file.bin" || info.Size != int64(len(data)) || info.ETag != etag || info.LastModified.IsZero() {
		t.Errorf("Head = %+v, want key dir/file.bin size %d etag %s", info, len(data), etag)
	}
	checkMeta(t, info.Meta, meta)

	got := getAll(t, c, "dir/file.bin", 0, -1)
	if !bytes.Equal(got, data) {
		t.Errorf("Get returned %d bytes, differing from the %d put", len(got), len(data))
	}

	// An object without metadata has none.
	if _, err := c.Put(ctx, "plain", strings.NewReader("x"), 1, ObjectMeta{}); err != nil {
		t.Fatalf("Put plain: %v", err)
	}
	info, err = c.Head(ctx, "plain")
	if err != nil {
		t.Fatalf("Head plain: %v", err)
	}
	if !info.Meta.Mtime.IsZero() || info.Meta.Mode != 0 || info.Meta.HasOwner || info.Meta.ContentEncoding != "" {
		t.Errorf("Head plain meta = %+v, want empty", info.Meta)
	}

	if _, err := c.Head(ctx, "missing"); !errors.Is(err, ErrNotFound) {
		t.Errorf("Head missing: %v, want ErrNotFound", err)
	}
	if rc, err := c.Get(ctx, "missing", 0, -1); !errors.Is(err, ErrNotFound) || rc != nil {
		t.Errorf("Get missing: %v (reader %v), want ErrNotFound and nil reader", err, rc)
	}
}

func TestGetRange(t *testing.T) {
	ctx := t.Context()
	c := newBucket(t, "", nil)
	data := randomBytes(10_000, 2)
	if _, err := c.Put(ctx, "obj", bytes.NewReader(data), int64(len(data)), ObjectMeta{}); err != nil {
		t.Fatalf("Put: %v", err)
	}
	n := int64(len(data))
	tests := []struct {
		name        string
		off, length int64
		want        []byte
	}{
		{"whole", 0, -1, data},
		{"head", 0, 10, data[:10]},
		{"tail from offset", 5000, -1, data[5000:]},
		{"middle", 10, 5, data[10:15]},
		{"last byte", n - 1, 1, data[n-1:]},
		{"past end truncated", n - 10, 100, data[n-10:]},
		{"exact length", 0, n, data},
		{"at end", n, 10, nil},
		{"beyond end to eof", n + 5, -1, nil},
		{"zero length", 3, 0, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := getAll(t, c, "obj", tt.off, tt.length)
			if !bytes.Equal(got, tt.want) {
				t.Errorf("Get(%d, %d) = %d bytes, want %d", tt.off, tt.length, len(got), len(tt.want))
			}
		})
	}
	if _, err := c.Get(ctx, "obj", -1, 1); !errors.Is(err, ErrInvalidRequest) {
		t.Errorf("negative offset: %v, want ErrInvalidRequest", err)
	}
}

func TestMultipart(t *testing.T) {
	ctx := t.Context()
	c := newBucket(t, "", nil)
	sizes := []int{5 * mib, 5 * mib, 1}
	var parts [][]byte
	var whole []byte
	for i, n := range sizes {
		p := randomBytes(n, uint64(10+i))
		parts = append(parts, p)
		whole = append(whole, p...)
	}
	meta := sampleMeta()

	id, err := c.CreateMultipart(ctx, "big/object", meta)
	if err != nil {
		t.Fatalf("CreateMultipart: %v", err)
	}
	done := make([]CompletedPart, len(parts))
	g, gctx := errgroup.WithContext(ctx)
	for i, p := range parts {
		g.Go(func() error {
			part, err := c.UploadPart(gctx, "big/object", id, int32(i+1), bytes.NewReader(p), int64(len(p)))
			done[i] = part
			return err
		})
	}
	if err := g.Wait(); err != nil {
		t.Fatalf("UploadPart: %v", err)
	}

	listed, err := c.ListParts(ctx, "big/object", id)
	if err != nil {
		t.Fatalf("ListParts: %v", err)
	}
	if !slices.Equal(listed, done) {
		t.Errorf("ListParts = %+v, want %+v", listed, done)
	}

	slices.Reverse(done) // Complete must sort
	if _, err := c.CompleteMultipart(ctx, "big/object", id, done); err != nil {
		t.Fatalf("CompleteMultipart: %v", err)
	}
	info, err := c.Head(ctx, "big/object")
	if err != nil {
		t.Fatalf("Head: %v", err)
	}
	if info.Size != int64(len(whole)) {
		t.Errorf("size = %d, want %d", info.Size, len(whole))
	}
	checkMeta(t, info.Meta, meta)
	got := getAll(t, c, "big/object", 0, -1)
	if sha256.Sum256(got) != sha256.Sum256(whole) {
		t.Errorf("content sha256 differs (got %d bytes, want %d)", len(got), len(whole))
	}
	if ups, err := c.ListMultipartUploads(ctx, ""); err != nil || len(ups) != 0 {
		t.Errorf("ListMultipartUploads after Complete = %v, %v; want none", ups, err)
	}
}

func TestAbortAndListUploads(t *testing.T) {
	ctx := t.Context()
	c := newBucket(t, "", nil)
	id1, err := c.CreateMultipart(ctx, "a/one", ObjectMeta{})
	if err != nil {
		t.Fatalf("CreateMultipart: %v", err)
	}
	id2, err := c.CreateMultipart(ctx, "b/two", ObjectMeta{})
	if err != nil {
		t.Fatalf("CreateMultipart: %v", err)
	}
	if _, err := c.UploadPart(ctx, "a/one", id1, 1, strings.NewReader("part"), 4); err != nil {
		t.Fatalf("UploadPart: %v", err)
	}

	ups, err := c.ListMultipartUploads(ctx, "")
	if err != nil {
		t.Fatalf("ListMultipartUploads: %v", err)
	}
	got := map[string]string{}
	for _, u := range ups {
		got[u.Key] = u.UploadID
		if u.Initiated.IsZero() {
			t.Errorf("upload %s has no Initiated time", u.Key)
		}
	}
	if len(got) != 2 || got["a/one"] != id1 || got["b/two"] != id2 {
		t.Errorf("ListMultipartUploads = %+v, want a/one=%s b/two=%s", ups, id1, id2)
	}
	ups, err = c.ListMultipartUploads(ctx, "b/")
	if err != nil || len(ups) != 1 || ups[0].Key != "b/two" {
		t.Errorf("ListMultipartUploads(b/) = %+v, %v; want only b/two", ups, err)
	}

	if err := c.AbortMultipart(ctx, "a/one", id1); err != nil {
		t.Fatalf("AbortMultipart: %v", err)
	}
	if err := c.AbortMultipart(ctx, "a/one", id1); err != nil {
		t.Errorf("second AbortMultipart: %v, want nil", err)
	}
	if _, err := c.UploadPart(ctx, "a/one", id1, 2, strings.NewReader("x"), 1); !errors.Is(err, ErrNoSuchUpload) {
		t.Errorf("UploadPart after abort: %v, want ErrNoSuchUpload", err)
	}
	if _, err := c.ListParts(ctx, "a/one", id1); !errors.Is(err, ErrNoSuchUpload) {
		t.Errorf("ListParts after abort: %v, want ErrNoSuchUpload", err)
	}
	if err := c.AbortMultipart(ctx, "b/two", id2); err != nil {
		t.Fatalf("AbortMultipart: %v", err)
	}
	if ups, err := c.ListMultipartUploads(ctx, ""); err != nil || len(ups) != 0 {
		t.Errorf("ListMultipartUploads after aborts = %+v, %v; want none", ups, err)
	}
}

func collect(t *testing.T, c *Client, prefix string, recursive bool) []Entry {
	t.Helper()
	var out []Entry
	if err := c.List(t.Context(), prefix, recursive, func(e Entry) error {
		out = append(out, e)
		return nil
	}); err != nil {
		t.Fatalf("List(%q, %v): %v", prefix, recursive, err)
	}
	return out
}

// names renders entries as "name" for objects and "name/" for prefixes.
func names(es []Entry) []string {
	var out []string
	for _, e := range es {
		if e.IsPrefix {
			out = append(out, e.Name+"/")
		} else {
			out = append(out, e.Name)
		}
	}
	return out
}

func TestList(t *testing.T) {
	ctx := t.Context()
	c := newBucket(t, "", nil)
	for _, k := range []string{"d/", "d/a.txt", "d/b/x", "d/b/y", "d/c/", "d/e", "d.txt", "top"} {
		body := "content of " + k
		if strings.HasSuffix(k, "/") {
			body = "" // directory markers are empty
		}
		if _, err := c.Put(ctx, k, strings.NewReader(body), int64(len(body)), ObjectMeta{}); err != nil {
			t.Fatalf("Put %s: %v", k, err)
		}
	}
	tests := []struct {
		prefix    string
		recursive bool
		want      []string
	}{
		{"", false, []string{"d.txt", "d/", "top"}},
		{"d/", false, []string{"a.txt", "b/", "c/", "e"}},
		{"d/", true, []string{"a.txt", "b/x", "b/y", "c/", "e"}},
		{"d/b/", false, []string{"x", "y"}},
		{"nothing/", false, nil},
		{"", true, []string{"d.txt", "d/", "d/a.txt", "d/b/x", "d/b/y", "d/c/", "d/e", "top"}},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%q recursive=%v", tt.prefix, tt.recursive), func(t *testing.T) {
			if got := names(collect(t, c, tt.prefix, tt.recursive)); !slices.Equal(got, tt.want) {
				t.Errorf("List = %q, want %q", got, tt.want)
			}
		})
	}

	es := collect(t, c, "d/", false)
	if es[0].Name != "a.txt" || es[0].Size != int64(len("content of d/a.txt")) || es[0].ETag == "" || es[0].LastModified.IsZero() {
		t.Errorf("entry a.txt = %+v, want size, etag and time", es[0])
	}

	stop := errors.New("stop")
	calls := 0
	err := c.List(ctx, "d/", false, func(Entry) error { calls++; return stop })
	if !errors.Is(err, stop) || calls != 1 {
		t.Errorf("List with failing fn: %v after %d calls, want stop after 1", err, calls)
	}
}

func TestListPagination(t *testing.T) {
	c := newBucket(t, "", nil)
	var keys []string
	for i := range 1100 {
		keys = append(keys, fmt.Sprintf("many/k%05d", i))
	}
	putMany(t.Context(), t, c, append(keys, "many/sub/x"))

	want := make([]string, 0, len(keys)+1)
	for _, k := range keys {
		want = append(want, strings.TrimPrefix(k, "many/"))
	}
	want = append(want, "sub/")
	if got := names(collect(t, c, "many/", false)); !slices.Equal(got, want) {
		t.Errorf("List(many/) returned %d entries (first %q), want %d in order", len(got), got[:min(3, len(got))], len(want))
	}
	want[len(want)-1] = "sub/x"
	if got := names(collect(t, c, "many/", true)); !slices.Equal(got, want) {
		t.Errorf("recursive List(many/) returned %d entries, want %d in order", len(got), len(want))
	}
}

func TestCopy(t *testing.T) {
	ctx := t.Context()
	c := newBucket(t, "", nil)
	const src = "dir/a b+c%&=.txt" // keys that need escaping in x-amz-copy-source
	data := randomBytes(64_000, 3)
	meta := sampleMeta()
	if _, err := c.Put(ctx, src, bytes.NewReader(data), int64(len(data)), meta); err != nil {
		t.Fatalf("Put: %v", err)
	}
	replaced := ObjectMeta{Mtime: time.Unix(1600000000, 5), Mode: 0o100600, Extra: map[string]string{"k": "v"}}

	tests := []struct {
		name      string
		meta      *ObjectMeta
		wantMeta  ObjectMeta
		threshold int64
	}{
		{"keep metadata", nil, meta, maxCopyObjectSize},
		{"replace metadata", &replaced, replaced, maxCopyObjectSize},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dst := "copy/" + tt.name
			if err := c.Copy(ctx, src, dst, tt.meta); err != nil {
				t.Fatalf("Copy: %v", err)
			}
			info, err := c.Head(ctx, dst)
			if err != nil {
				t.Fatalf("Head: %v", err)
			}
			checkMeta(t, info.Meta, tt.wantMeta)
			if tt.meta != nil && info.Meta.Extra["raw-size"] != "" {
				t.Errorf("replaced metadata kept old key raw-size: %v", info.Meta.Extra)
			}
			if got := getAll(t, c, dst, 0, -1); !bytes.Equal(got, data) {
				t.Errorf("copied content differs")
			}
		})
	}

	// Copy onto itself with new metadata is how chmod/utimes are applied;
	// the caller passes the whole new ObjectMeta, Content-Encoding included.
	chmod := meta
	chmod.Mode = 0o100600
	if err := c.Copy(ctx, src, src, &chmod); err != nil {
		t.Fatalf("Copy onto itself: %v", err)
	}
	info, err := c.Head(ctx, src)
	if err != nil {
		t.Fatalf("Head: %v", err)
	}
	checkMeta(t, info.Meta, chmod)

	if err := c.Copy(ctx, "missing", "x", nil); !errors.Is(err, ErrNotFound) {
		t.Errorf("Copy of missing source: %v, want ErrNotFound", err)
	}
}

func TestCopyMultipart(t *testing.T) {
	ctx := t.Context()
	c := newBucket(t, "", nil)
	data := randomBytes(12*mib, 4)
	meta := sampleMeta()
	if _, err := c.Put(ctx, "src", bytes.NewReader(data), int64(len(data)), meta); err != nil {
		t.Fatalf("Put: %v", err)
	}
	replaced := ObjectMeta{Mode: 0o100444, ContentEncoding: "gzip"}
	tests := []struct {
		name     string
		meta     *ObjectMeta
		wantMeta ObjectMeta
	}{
		{"keep", nil, meta},
		{"replace", &replaced, replaced},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dst := "dst-" + tt.name
			// 12 MiB in 5 MiB ranges: 5 + 5 + 2.
			if err := c.copyObject(ctx, "src", dst, tt.meta, 1*mib, 5*mib); err != nil {
				t.Fatalf("copyObject: %v", err)
			}
			info, err := c.Head(ctx, dst)
			if err != nil {
				t.Fatalf("Head: %v", err)
			}
			checkMeta(t, info.Meta, tt.wantMeta)
			if !strings.HasSuffix(strings.Trim(info.ETag, `"`), "-3") {
				t.Errorf("ETag %s: want a 3-part multipart ETag", info.ETag)
			}
			got := getAll(t, c, dst, 0, -1)
			if sha256.Sum256(got) != sha256.Sum256(data) {
				t.Errorf("copied content sha256 differs (%d bytes)", len(got))
			}
		})
	}
	if ups, err := c.ListMultipartUploads(ctx, ""); err != nil || len(ups) != 0 {
		t.Errorf("uploads left behind: %+v, %v", ups, err)
	}
}

func TestDelete(t *testing.T) {
	ctx := t.Context()
	c := newBucket(t, "", nil)
	if err := c.Delete(ctx, "missing"); err != nil {
		t.Errorf("Delete missing: %v, want nil", err)
	}
	if _, err := c.Put(ctx, "x", strings.NewReader("x"), 1, ObjectMeta{}); err != nil {
		t.Fatalf("Put: %v", err)
	}
	if err := c.Delete(ctx, "x"); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	if _, err := c.Head(ctx, "x"); !errors.Is(err, ErrNotFound) {
		t.Errorf("Head after Delete: %v, want ErrNotFound", err)
	}

	// More than one batch, plus a key that does not exist.
	var keys []string
	for i := range 1050 {
		keys = append(keys, fmt.Sprintf("del/k%04d", i))
	}
	putMany(ctx, t, c, keys)
	if err := c.DeleteMany(ctx, append(keys, "del/missing")); err != nil {
		t.Fatalf("DeleteMany: %v", err)
	}
	if left := collect(t, c, "", true); len(left) != 0 {
		t.Errorf("after DeleteMany %d objects left, first %q", len(left), left[0].Name)
	}
	if err := c.DeleteMany(ctx, nil); err != nil {
		t.Errorf("DeleteMany(nil): %v", err)
	}
}

func TestPrefix(t *testing.T) {
	ctx := t.Context()
	root := newBucket(t, "", nil)
	pre := newTestClient(t, testConfig(root.bucket, "/pre/fix"), nil)
	if pre.prefix != "pre/fix/" {
		t.Fatalf("prefix = %q, want pre/fix/", pre.prefix)
	}
	for _, k := range []string{"outside", "pre/other", "pre/fixed"} {
		if _, err := root.Put(ctx, k, strings.NewReader("o"), 1, ObjectMeta{}); err != nil {
			t.Fatalf("Put %s: %v", k, err)
		}
	}
	if _, err := pre.Put(ctx, "a", strings.NewReader("a"), 1, ObjectMeta{}); err != nil {
		t.Fatalf("Put: %v", err)
	}
	if _, err := pre.Put(ctx, "sub/b", strings.NewReader("b"), 1, ObjectMeta{}); err != nil {
		t.Fatalf("Put: %v", err)
	}

	if info, err := root.Head(ctx, "pre/fix/a"); err != nil || info.Size != 1 {
		t.Errorf("root Head pre/fix/a = %+v, %v", info, err)
	}
	if info, err := pre.Head(ctx, "a"); err != nil || info.Key != "a" {
		t.Errorf("prefixed Head a = %+v, %v; want key a", info, err)
	}
	if got, want := names(collect(t, pre, "", false)), []string{"a", "sub/"}; !slices.Equal(got, want) {
		t.Errorf("prefixed List = %q, want %q", got, want)
	}
	if got, want := names(collect(t, pre, "", true)), []string{"a", "sub/b"}; !slices.Equal(got, want) {
		t.Errorf("prefixed recursive List = %q, want %q", got, want)
	}
	if err := pre.Copy(ctx, "a", "c", nil); err != nil {
		t.Fatalf("prefixed Copy: %v", err)
	}
	if _, err := root.Head(ctx, "pre/fix/c"); err != nil {
		t.Errorf("copy target not under prefix: %v", err)
	}

	id, err := pre.CreateMultipart(ctx, "up", ObjectMeta{})
	if err != nil {
		t.Fatalf("CreateMultipart: %v", err)
	}
	if _, err := root.CreateMultipart(ctx, "elsewhere", ObjectMeta{}); err != nil {
		t.Fatalf("CreateMultipart: %v", err)
	}
	ups, err := pre.ListMultipartUploads(ctx, "")
	if err != nil || len(ups) != 1 || ups[0].Key != "up" || ups[0].UploadID != id {
		t.Errorf("prefixed ListMultipartUploads = %+v, %v; want only up", ups, err)
	}

	if err := pre.DeleteMany(ctx, []string{"a", "c", "sub/b"}); err != nil {
		t.Fatalf("DeleteMany: %v", err)
	}
	if got, want := names(collect(t, root, "", true)), []string{"outside", "pre/fixed", "pre/other"}; !slices.Equal(got, want) {
		t.Errorf("root after prefixed DeleteMany = %q, want %q", got, want)
	}
}

func TestCheckBucket(t *testing.T) {
	c := newBucket(t, "some/prefix", nil)
	if err := c.CheckBucket(t.Context()); err != nil {
		t.Fatalf("CheckBucket: %v", err)
	}

	closed, err := freeAddr() // nothing listens there any more
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name     string
		bucket   string
		endpoint string
		secret   string
		want     error
		contains string
	}{
		{"missing bucket", "no-such-bucket-here", testEndpoint, testSecret, ErrNoSuchBucket, "no-such-bucket-here"},
		{"wrong secret", c.bucket, testEndpoint, "wrong-secret", ErrAccessDenied, c.bucket},
		{"closed port", c.bucket, "http://" + closed, testSecret, ErrUnreachable, closed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv("AWS_SECRET_ACCESS_KEY", tt.secret)
			cfg := testConfig(tt.bucket, "")
			cfg.Endpoint = tt.endpoint
			cl := newTestClient(t, cfg, nil)
			start := time.Now()
			err := cl.CheckBucket(t.Context())
			if !errors.Is(err, tt.want) {
				t.Fatalf("CheckBucket = %v, want %v", err, tt.want)
			}
			if !strings.Contains(err.Error(), tt.contains) {
				t.Errorf("error %q does not name %q", err, tt.contains)
			}
			if d := time.Since(start); d > 10*time.Second {
				t.Errorf("CheckBucket took %s, want < 10s", d)
			}
		})
	}
}

// silentServer accepts connections, reads requests and never answers.
func silentServer(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var conns []net.Conn
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			conn, err := ln.Accept()
			if err != nil {
				for _, c := range conns {
					c.Close()
				}
				return
			}
			conns = append(conns, conn)
			go func() { _, _ = io.Copy(io.Discard, conn) }()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		<-done
	})
	return ln.Addr().String()
}

func TestResponseTimeoutRetried(t *testing.T) {
	addr := silentServer(t)
	cfg := testConfig("bucket", "")
	cfg.Endpoint = "http://" + addr
	cfg.RequestTimeout = 200 * time.Millisecond
	cfg.MaxRetries = 1
	rec := &recordingSampler{}
	c := newTestClient(t, cfg, rec)

	start := time.Now()
	_, err := c.Put(t.Context(), "k", strings.NewReader("hello"), 5, ObjectMeta{})
	if !errors.Is(err, ErrUnreachable) {
		t.Errorf("Put to a silent server: %v, want ErrUnreachable", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("took %s", d)
	}
	samples := rec.take()
	if len(samples) != 2 {
		t.Fatalf("got %d samples, want 2 (one per attempt): %+v", len(samples), samples)
	}
	for i, s := range samples {
		if s.Op != OpPut || s.Attempt != i+1 || s.Err == nil || s.Status != 0 || s.Bytes != 5 || s.BodyDone.IsZero() {
			t.Errorf("sample %d = %+v, want PutObject attempt %d, 5 bytes, error, no status", i, s, i+1)
		}
	}

	if err := c.CheckBucket(t.Context()); !errors.Is(err, ErrUnreachable) {
		t.Errorf("CheckBucket on a silent server: %v, want ErrUnreachable", err)
	}
}

func checkTimes(t *testing.T, s Sample) {
	t.Helper()
	if s.Start.IsZero() || s.End.Before(s.Start) {
		t.Errorf("%s: bad Start/End %v %v", s.Op, s.Start, s.End)
	}
	if s.BodyDone.IsZero() || s.BodyDone.Before(s.Start) || s.FirstByte.IsZero() || s.FirstByte.Before(s.BodyDone) || s.End.Before(s.FirstByte) {
		t.Errorf("%s: times out of order: start %v body %v first %v end %v", s.Op, s.Start, s.BodyDone, s.FirstByte, s.End)
	}
}

func TestSampler(t *testing.T) {
	ctx := t.Context()
	rec := &recordingSampler{}
	c := newBucket(t, "", rec)
	rec.take() // nothing expected, but be independent of setup
	part := randomBytes(5*mib+3, 5)

	expect := func(op Op, bytes, respBytes int64) Sample {
		t.Helper()
		ss := rec.take()
		if len(ss) != 1 {
			t.Fatalf("%s: got %d samples, want 1: %+v", op, len(ss), ss)
		}
		s := ss[0]
		if s.Op != op || s.Attempt != 1 || s.Err != nil || s.Status/100 != 2 {
			t.Errorf("sample = %+v, want %s attempt 1 with 2xx and no error", s, op)
		}
		if bytes >= 0 && s.Bytes != bytes {
			t.Errorf("%s: Bytes = %d, want %d", op, s.Bytes, bytes)
		}
		if respBytes >= 0 && s.RespBytes != respBytes {
			t.Errorf("%s: RespBytes = %d, want %d", op, s.RespBytes, respBytes)
		}
		checkTimes(t, s)
		return s
	}

	if _, err := c.Put(ctx, "small", strings.NewReader("hello"), 5, ObjectMeta{}); err != nil {
		t.Fatal(err)
	}
	expect(OpPut, 5, -1)
	id, err := c.CreateMultipart(ctx, "big", ObjectMeta{})
	if err != nil {
		t.Fatal(err)
	}
	expect(OpCreate, 0, -1)
	done, err := c.UploadPart(ctx, "big", id, 1, bytes.NewReader(part), int64(len(part)))
	if err != nil {
		t.Fatal(err)
	}
	expect(OpPart, int64(len(part)), -1)
	if _, err := c.CompleteMultipart(ctx, "big", id, []CompletedPart{done}); err != nil {
		t.Fatal(err)
	}
	if s := expect(OpComplete, -1, -1); s.Bytes == 0 {
		t.Errorf("Complete sent no body")
	}
	if _, err := c.Head(ctx, "big"); err != nil {
		t.Fatal(err)
	}
	expect(OpHead, 0, 0)
	getAll(t, c, "big", 0, -1)
	expect(OpGet, 0, int64(len(part)))
	getAll(t, c, "big", 10, 100)
	expect(OpGet, 0, 100)
	collect(t, c, "", false)
	expect(OpList, 0, -1)
	if err := c.Delete(ctx, "small"); err != nil {
		t.Fatal(err)
	}
	expect(OpDelete, 0, -1)
	id, err = c.CreateMultipart(ctx, "aborted", ObjectMeta{})
	if err != nil {
		t.Fatal(err)
	}
	rec.take()
	if err := c.AbortMultipart(ctx, "aborted", id); err != nil {
		t.Fatal(err)
	}
	expect(OpAbort, 0, -1)

	// A 404 is an answer, not a link failure.
	if _, err := c.Head(ctx, "missing"); !errors.Is(err, ErrNotFound) {
		t.Fatal(err)
	}
	if ss := rec.take(); len(ss) != 1 || ss[0].Status != http.StatusNotFound || ss[0].Err != nil {
		t.Errorf("404 samples = %+v, want one with Status 404 and no Err", ss)
	}

	// Everything the transport read was reported as progress.
	rec.progress.Store(0)
	if _, err := c.Put(ctx, "again", bytes.NewReader(part), int64(len(part)), ObjectMeta{}); err != nil {
		t.Fatal(err)
	}
	if s := expect(OpPut, int64(len(part)), -1); rec.progress.Load() != s.Bytes {
		t.Errorf("BodyProgress summed to %d, sample Bytes %d", rec.progress.Load(), s.Bytes)
	}
}

// TestSamplerRetry puts a proxy in front of the server that fails the first
// UploadPart with a 500: the SDK retries, and each attempt is one Sample.
func TestSamplerRetry(t *testing.T) {
	ctx := t.Context()
	target, err := url.Parse(testEndpoint)
	if err != nil {
		t.Fatal(err)
	}
	proxy := httputil.NewSingleHostReverseProxy(target)
	var failed atomic.Bool
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPut && r.URL.Query().Has("partNumber") && failed.CompareAndSwap(false, true) {
			_, _ = io.Copy(io.Discard, r.Body)
			w.Header().Set("Content-Type", "application/xml")
			w.WriteHeader(http.StatusInternalServerError)
			_, _ = io.WriteString(w, `<Error><Code>InternalError</Code><Message>injected</Message></Error>`)
			return
		}
		proxy.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)

	direct := newBucket(t, "", nil)
	cfg := testConfig(direct.bucket, "")
	cfg.Endpoint = srv.URL
	rec := &recordingSampler{}
	c := newTestClient(t, cfg, rec)

	id, err := c.CreateMultipart(ctx, "obj", ObjectMeta{})
	if err != nil {
		t.Fatal(err)
	}
	rec.take()
	rec.progress.Store(0)
	part := randomBytes(5*mib, 6)
	if _, err := c.UploadPart(ctx, "obj", id, 1, bytes.NewReader(part), int64(len(part))); err != nil {
		t.Fatalf("UploadPart through failing proxy: %v", err)
	}
	ss := rec.take()
	if len(ss) != 2 {
		t.Fatalf("got %d samples, want 2: %+v", len(ss), ss)
	}
	if s := ss[0]; s.Op != OpPart || s.Attempt != 1 || s.Status != 500 || s.Err == nil || s.Bytes != int64(len(part)) {
		t.Errorf("first attempt = %+v, want UploadPart attempt 1, status 500, error, full body", s)
	}
	if s := ss[1]; s.Op != OpPart || s.Attempt != 2 || s.Status != 200 || s.Err != nil || s.Bytes != int64(len(part)) {
		t.Errorf("second attempt = %+v, want UploadPart attempt 2, status 200", s)
	}
	if got := rec.progress.Load(); got != 2*int64(len(part)) {
		t.Errorf("BodyProgress = %d, want %d (two attempts)", got, 2*len(part))
	}
	if err := c.AbortMultipart(ctx, "obj", id); err != nil {
		t.Fatal(err)
	}
}

func TestNilSamplerNotWrapped(t *testing.T) {
	tr := newBuildableClient(DefaultConfig(), newConnSet()).GetTransport()
	if tr.ResponseHeaderTimeout != DefaultConfig().RequestTimeout || tr.MaxIdleConnsPerHost < 256 {
		t.Errorf("transport: ResponseHeaderTimeout %s, MaxIdleConnsPerHost %d", tr.ResponseHeaderTimeout, tr.MaxIdleConnsPerHost)
	}
	hc := newHTTPClient(tr, nil)
	if hc.Transport != tr {
		t.Errorf("transport is %T, want the bare *http.Transport without a sampler", hc.Transport)
	}
	hc = newHTTPClient(tr, &recordingSampler{})
	if _, ok := hc.Transport.(*instrumentedTransport); !ok {
		t.Errorf("transport is %T, want instrumentedTransport", hc.Transport)
	}
}

// TestTCPInfo: the kernel's view of the client's connections is readable
// while they are open.
func TestTCPInfo(t *testing.T) {
	c := newBucket(t, "", nil)
	if _, err := c.Put(t.Context(), "tcpinfo", strings.NewReader("x"), 1, ObjectMeta{}); err != nil {
		t.Fatal(err)
	}
	infos := c.TCPInfo()
	if len(infos) == 0 {
		t.Fatal("no open connection after a request (keep-alive)")
	}
	for _, i := range infos {
		if i.SRTT <= 0 || i.SegsOut == 0 || i.Cwnd == 0 {
			t.Errorf("implausible TCP_INFO: %+v", i)
		}
	}
}
