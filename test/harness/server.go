package harness

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
)

// Region is the region the test server and its clients use.
const Region = "us-east-1"

const serverReadyTimeout = 10 * time.Second

// Server is a running versitygw (posix backend) on a loopback port.
type Server struct {
	Endpoint  string // http://127.0.0.1:PORT
	DataDir   string // posix backend root: objects are files under DataDir/BUCKET/
	LogPath   string // versitygw's stdout and stderr
	AccessKey string
	SecretKey string
	Region    string
	Client    *s3.Client // path style, static credentials, checksums only when required

	cmd      *exec.Cmd
	done     chan struct{} // closed when the process has exited
	waitErr  error         // valid after done is closed
	stopOnce sync.Once
}

// StartServer starts versitygw with its data under workDir/data and its log
// at workDir/versitygw.log, and returns once it answers ListBuckets.
func StartServer(ctx context.Context, versitygwPath, workDir string) (*Server, error) {
	return StartServerWith(ctx, versitygwPath, workDir, ServerOptions{})
}

// ServerOptions place the server elsewhere than loopback, e.g. inside the
// network namespace of an emulated link.
type ServerOptions struct {
	Host string   // address to listen on and to reach it at (default 127.0.0.1)
	Wrap []string // command prefix, e.g. ["ip", "netns", "exec", "NS"]
}

// StartServerWith is StartServer with options.
func StartServerWith(ctx context.Context, versitygwPath, workDir string, opts ServerOptions) (*Server, error) {
	if opts.Host == "" {
		opts.Host = "127.0.0.1"
	}
	workDir, err := filepath.Abs(workDir)
	if err != nil {
		return nil, fmt.Errorf("start versitygw: %w", err)
	}
	dataDir := filepath.Join(workDir, "data")
	if err := os.MkdirAll(dataDir, 0o755); err != nil {
		return nil, fmt.Errorf("start versitygw: %w", err)
	}
	// A port picked by listening on :0 can be taken by someone else before
	// versitygw binds it: try a few ports.
	var lastErr error
	for range 3 {
		s, err := startServerOnce(ctx, versitygwPath, workDir, dataDir, opts)
		if err == nil {
			return s, nil
		}
		lastErr = err
		if ctx.Err() != nil {
			break
		}
	}
	return nil, lastErr
}

func startServerOnce(ctx context.Context, bin, workDir, dataDir string, opts ServerOptions) (*Server, error) {
	port, err := freePort()
	if err != nil {
		return nil, fmt.Errorf("start versitygw: %w", err)
	}
	s := &Server{
		Endpoint:  fmt.Sprintf("http://%s:%d", opts.Host, port),
		DataDir:   dataDir,
		LogPath:   filepath.Join(workDir, "versitygw.log"),
		AccessKey: "AK" + randomHex(9),
		SecretKey: randomHex(20),
		Region:    Region,
		done:      make(chan struct{}),
	}
	logFile, err := os.OpenFile(s.LogPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, fmt.Errorf("start versitygw: %w", err)
	}
	defer logFile.Close() // the child has its own descriptor
	fmt.Fprintf(logFile, "--- %s starting versitygw on %s:%d\n", time.Now().Format(time.RFC3339), opts.Host, port)

	// Credentials go through the environment, not argv, so that they do not
	// show up in ps or in error messages.
	args := append(append([]string{}, opts.Wrap...), bin, "--port", fmt.Sprintf("%s:%d", opts.Host, port), "--keep-alive", "--quiet", "posix", dataDir)
	s.cmd = exec.Command(args[0], args[1:]...)
	s.cmd.Env = append(os.Environ(), "ROOT_ACCESS_KEY="+s.AccessKey, "ROOT_SECRET_KEY="+s.SecretKey)
	s.cmd.Stdout = logFile
	s.cmd.Stderr = logFile
	s.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := s.cmd.Start(); err != nil {
		return nil, fmt.Errorf("start versitygw %s: %w", bin, err)
	}
	go func() {
		s.waitErr = s.cmd.Wait()
		close(s.done)
	}()
	s.Client = NewClient(s.Endpoint, s.AccessKey, s.SecretKey)

	if err := s.waitReady(ctx); err != nil {
		s.Stop()
		return nil, fmt.Errorf("start versitygw: %w\n--- %s (tail)\n%s", err, s.LogPath, fileTail(s.LogPath, 20))
	}
	return s, nil
}

func (s *Server) waitReady(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, serverReadyTimeout)
	defer cancel()
	addr := strings.TrimPrefix(s.Endpoint, "http://")
	var lastErr error
	for {
		select {
		case <-s.done:
			return fmt.Errorf("versitygw exited before it was ready: %v", s.waitErr)
		default:
		}
		if c, err := net.DialTimeout("tcp", addr, time.Second); err != nil {
			lastErr = err
		} else {
			c.Close()
			reqCtx, reqCancel := context.WithTimeout(ctx, 2*time.Second)
			_, err := s.Client.ListBuckets(reqCtx, &s3.ListBucketsInput{})
			reqCancel()
			if err == nil {
				return nil
			}
			lastErr = err
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("versitygw not ready after %v: %w (last error: %v)", serverReadyTimeout, ctx.Err(), lastErr)
		case <-s.done:
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// NewClient returns a plain S3 client for an S3-compatible endpoint: path
// style, static credentials, region us-east-1, checksums computed and
// validated only when an operation requires them.
func NewClient(endpoint, accessKey, secretKey string) *s3.Client {
	cfg := aws.Config{
		Region:                     Region,
		Credentials:                credentials.NewStaticCredentialsProvider(accessKey, secretKey, ""),
		RequestChecksumCalculation: aws.RequestChecksumCalculationWhenRequired,
		ResponseChecksumValidation: aws.ResponseChecksumValidationWhenRequired,
	}
	return s3.NewFromConfig(cfg, func(o *s3.Options) {
		o.BaseEndpoint = aws.String(endpoint)
		o.UsePathStyle = true
	})
}

// Stop terminates the server (SIGTERM, then SIGKILL after 5 s) and waits for
// it to exit. It is safe to call more than once.
func (s *Server) Stop() {
	s.stopOnce.Do(func() {
		if s.cmd == nil || s.cmd.Process == nil {
			return
		}
		select {
		case <-s.done:
			return
		default:
		}
		_ = s.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-s.done:
		case <-time.After(5 * time.Second):
			_ = s.cmd.Process.Kill()
			<-s.done
		}
	})
}

// Exited reports whether the server process has exited.
func (s *Server) Exited() bool {
	select {
	case <-s.done:
		return true
	default:
		return false
	}
}

// CreateBucket creates a bucket with the S3 CreateBucket call.
func (s *Server) CreateBucket(ctx context.Context, name string) error {
	if _, err := s.Client.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String(name)}); err != nil {
		return fmt.Errorf("create bucket %q: %w", name, err)
	}
	return nil
}

// Env returns the environment entries a child process (adaptfs) needs to
// reach this server with the standard AWS credential chain.
func (s *Server) Env() []string {
	return []string{
		"AWS_ACCESS_KEY_ID=" + s.AccessKey,
		"AWS_SECRET_ACCESS_KEY=" + s.SecretKey,
		"AWS_REGION=" + s.Region,
	}
}

// LogTail returns the last n lines of the server's log.
func (s *Server) LogTail(n int) string { return fileTail(s.LogPath, n) }

// childEnv is the current environment without any AWS_* variable (so that
// a developer's profile or endpoint cannot leak into a test), plus the
// server's credentials and extra.
func childEnv(s *Server, extra []string) []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "AWS_") {
			env = append(env, kv)
		}
	}
	if s != nil {
		env = append(env, s.Env()...)
		env = append(env, "AWS_EC2_METADATA_DISABLED=true")
	}
	return append(env, extra...)
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("pick a free port: %w", err)
	}
	defer l.Close()
	addr, ok := l.Addr().(*net.TCPAddr)
	if !ok {
		return 0, errors.New("pick a free port: not a TCP address")
	}
	return addr.Port, nil
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b) // crypto/rand.Read never fails on Linux
	return hex.EncodeToString(b)
}

// PID returns the server's process id.
func (s *Server) PID() int { return s.cmd.Process.Pid }

// RunAdaptfs runs a one-shot adaptfs command (probe, sync…) against s:
// args follow the subcommand, with --endpoint, --path-style and --region
// added. It returns the combined output.
func RunAdaptfs(ctx context.Context, bin string, s *Server, sub string, args ...string) ([]byte, error) {
	all := append([]string{sub, "--endpoint", s.Endpoint, "--path-style", "--region", s.Region}, args...)
	cmd := exec.CommandContext(ctx, bin, all...)
	cmd.Env = childEnv(s, nil)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return out, fmt.Errorf("adaptfs %s: %w\n%s", sub, err, out)
	}
	return out, nil
}
