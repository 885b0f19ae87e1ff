package s3backend

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/s3"
)

// The integration tests run against one versitygw (posix backend) per
// package run: a real gateway that enforces SigV4.
const (
	testAccess = "AKTEST"
	testSecret = "SKTEST"
)

// testEndpoint is set once by TestMain before any test runs.
var testEndpoint string

func TestMain(m *testing.M) { os.Exit(runWithServer(m)) }

func runWithServer(m *testing.M) int {
	bin, err := filepath.Abs(filepath.Join("..", "bin", "versitygw"))
	if err == nil {
		_, err = os.Stat(bin)
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "FAIL: versitygw test server missing (%v): run `make bin/versitygw` in the module root\n", err)
		return 1
	}
	dir, err := os.MkdirTemp("", "s3backend-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "FAIL:", err)
		return 1
	}
	defer os.RemoveAll(dir)
	isolateAWSEnv(dir)

	data := filepath.Join(dir, "data")
	if err := os.Mkdir(data, 0o700); err != nil {
		fmt.Fprintln(os.Stderr, "FAIL:", err)
		return 1
	}
	addr, err := freeAddr()
	if err != nil {
		fmt.Fprintln(os.Stderr, "FAIL:", err)
		return 1
	}
	cmd := exec.Command(bin, "--access", testAccess, "--secret", testSecret,
		"--port", addr, "--keep-alive", "--quiet", "posix", data)
	logPath := filepath.Join(dir, "versitygw.log")
	logFile, err := os.Create(logPath)
	if err != nil {
		fmt.Fprintln(os.Stderr, "FAIL:", err)
		return 1
	}
	defer logFile.Close()
	cmd.Stdout, cmd.Stderr = logFile, logFile
	if err := cmd.Start(); err != nil {
		fmt.Fprintln(os.Stderr, "FAIL: start versitygw:", err)
		return 1
	}
	defer func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	}()
	if err := waitListening(addr, 10*time.Second); err != nil {
		out, _ := os.ReadFile(logPath)
		fmt.Fprintf(os.Stderr, "FAIL: versitygw: %v\n%s", err, out)
		return 1
	}
	testEndpoint = "http://" + addr
	return m.Run()
}

// isolateAWSEnv makes the standard credential chain find exactly the test
// keys, whatever the developer's machine has configured.
func isolateAWSEnv(dir string) {
	for _, k := range []string{"AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_SESSION_TOKEN",
		"AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3", "AWS_REGION", "AWS_DEFAULT_REGION"} {
		os.Unsetenv(k)
	}
	os.Setenv("AWS_ACCESS_KEY_ID", testAccess)
	os.Setenv("AWS_SECRET_ACCESS_KEY", testSecret)
	os.Setenv("AWS_CONFIG_FILE", filepath.Join(dir, "no-aws-config"))
	os.Setenv("AWS_SHARED_CREDENTIALS_FILE", filepath.Join(dir, "no-aws-credentials"))
	os.Setenv("AWS_EC2_METADATA_DISABLED", "true")
}

func freeAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

func waitListening(addr string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		conn, err := net.DialTimeout("tcp", addr, 200*time.Millisecond)
		if err == nil {
			return conn.Close()
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("not listening on %s after %s: %w", addr, timeout, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func testConfig(bucket, prefix string) Config {
	cfg := DefaultConfig()
	cfg.Bucket = bucket
	cfg.Prefix = prefix
	cfg.Endpoint = testEndpoint
	cfg.PathStyle = true
	cfg.MaxRetries = 2
	return cfg
}

func newTestClient(t *testing.T, cfg Config, sampler Sampler) *Client {
	t.Helper()
	c, err := New(t.Context(), cfg, sampler, nil)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return c
}

var bucketSeq atomic.Int64

var nonBucketChars = regexp.MustCompile(`[^a-z0-9]+`)

// newBucket creates a fresh bucket named after the test and returns a
// client for it.
func newBucket(t *testing.T, prefix string, sampler Sampler) *Client {
	t.Helper()
	name := fmt.Sprintf("t%d-%s", bucketSeq.Add(1), nonBucketChars.ReplaceAllString(strings.ToLower(t.Name()), "-"))
	name = strings.TrimRight(name[:min(len(name), 63)], "-")
	admin := newTestClient(t, testConfig(name, ""), nil)
	if _, err := admin.s3.CreateBucket(t.Context(), &s3.CreateBucketInput{Bucket: &name}); err != nil {
		t.Fatalf("CreateBucket %s: %v", name, err)
	}
	return newTestClient(t, testConfig(name, prefix), sampler)
}

// recordingSampler keeps every Sample and sums BodyProgress.
type recordingSampler struct {
	mu       sync.Mutex
	samples  []Sample
	progress atomic.Int64
}

func (r *recordingSampler) Observe(s Sample) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.samples = append(r.samples, s)
}

func (r *recordingSampler) BodyProgress(n int64, _ time.Time) { r.progress.Add(n) }

// take returns and forgets the samples so far.
func (r *recordingSampler) take() []Sample {
	r.mu.Lock()
	defer r.mu.Unlock()
	s := r.samples
	r.samples = nil
	return s
}

// putMany creates empty objects concurrently.
func putMany(ctx context.Context, t *testing.T, c *Client, keys []string) {
	t.Helper()
	var wg sync.WaitGroup
	errs := make(chan error, len(keys))
	sem := make(chan struct{}, 32)
	for _, k := range keys {
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			if _, err := c.Put(ctx, k, nil, 0, ObjectMeta{}); err != nil {
				errs <- err
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatalf("put: %v", err)
	}
}
