// Package s3backend is adaptfs's S3 client. It owns every request to the
// object store: instrumented requests (each HTTP attempt is reported as a
// Sample), multipart sessions, listing, ranged reads and the mapping of file
// metadata to S3 user metadata. It does not decide part sizes or concurrency;
// it is told them.
package s3backend

import (
	"context"
	"errors"
	"io"
	"time"
)

// Sentinel errors. Every error returned by Backend wraps one of these when
// the condition applies, so callers can test with errors.Is.
var (
	ErrNotFound       = errors.New("object not found")
	ErrNoSuchBucket   = errors.New("bucket does not exist")
	ErrAccessDenied   = errors.New("access denied (check credentials and bucket policy)")
	ErrNoSuchUpload   = errors.New("multipart upload no longer exists")
	ErrUnreachable    = errors.New("endpoint unreachable")
	ErrNotEmpty       = errors.New("directory not empty")
	ErrInvalidRequest = errors.New("invalid request")
)

// ObjectMeta is what adaptfs keeps about a file besides its bytes. It maps to
// x-amz-meta-* keys that rclone (mtime) and s3fs (mode, uid, gid) also use.
type ObjectMeta struct {
	Mtime           time.Time // zero: not set
	Mode            uint32    // full st_mode incl. type bits (s3fs style); 0: not set
	UID, GID        uint32
	HasOwner        bool   // UID/GID are set
	ContentEncoding string // e.g. "zstd"; "" for none
	// RawSize and Format describe an object stored compressed
	// (ContentEncoding "zstd"): its size once decoded, and the layout
	// ("zstd-seekable": independent frames and a seek table). RawSize is
	// -1 when only the seek table knows it (the upload started before
	// the file was closed).
	RawSize int64
	Format  string
	// Extra holds any other user metadata (lower-case keys, no prefix).
	Extra map[string]string
}

// ObjectInfo describes one object.
type ObjectInfo struct {
	Key          string // relative to the configured prefix
	Size         int64
	ETag         string
	LastModified time.Time
	Meta         ObjectMeta // filled by Head; empty from List
}

// Compressed reports whether the object is stored in adaptfs's compressed
// format, which the file system decodes on read.
func (m ObjectMeta) Compressed() bool {
	return m.ContentEncoding == "zstd" && m.Format == FormatZstdSeekable
}

// FormatZstdSeekable is the zstd seekable format (independent frames and a
// seek table in a skippable frame).
const FormatZstdSeekable = "zstd-seekable"

// LogicalSize is the size a reader of the file sees: the raw size of a
// compressed object, else the stored size. ok is false for a compressed
// object whose raw size only its seek table holds.
func (o ObjectInfo) LogicalSize() (size int64, ok bool) {
	if o.Meta.Compressed() {
		return o.Meta.RawSize, o.Meta.RawSize >= 0
	}
	return o.Size, true
}

// Entry is one item of a delimited listing: an object or a common prefix.
type Entry struct {
	Name         string // last path element, without trailing "/"
	IsPrefix     bool   // a common prefix ("directory")
	Size         int64
	LastModified time.Time
	ETag         string
}

// CompletedPart is one uploaded part of a multipart upload.
type CompletedPart struct {
	Number int32
	ETag   string
	Size   int64
	CRC32C string // base64 CRC32C of the part, as sent and verified by the server
}

// Upload is one in-progress multipart upload as listed by the server.
type Upload struct {
	Key       string
	UploadID  string
	Initiated time.Time
}

// Backend is the narrow storage interface the rest of adaptfs uses. Keys are
// relative to the configured prefix; implementations prepend it.
//
// Bodies are io.ReadSeeker so that SigV4 payload hashing and retries can
// rewind them; the caller keeps ownership and must not touch the body until
// the call returns.
type Backend interface {
	// CheckBucket verifies the bucket exists and the credentials work.
	CheckBucket(ctx context.Context) error
	Put(ctx context.Context, key string, body io.ReadSeeker, size int64, meta ObjectMeta) (etag string, err error)
	CreateMultipart(ctx context.Context, key string, meta ObjectMeta) (uploadID string, err error)
	UploadPart(ctx context.Context, key, uploadID string, number int32, body io.ReadSeeker, size int64) (CompletedPart, error)
	CompleteMultipart(ctx context.Context, key, uploadID string, parts []CompletedPart) (etag string, err error)
	AbortMultipart(ctx context.Context, key, uploadID string) error
	ListParts(ctx context.Context, key, uploadID string) ([]CompletedPart, error)
	ListMultipartUploads(ctx context.Context, prefix string) ([]Upload, error)
	// Head returns ErrNotFound (wrapped) for a missing key.
	Head(ctx context.Context, key string) (ObjectInfo, error)
	// Get returns the bytes [off, off+length); length < 0 reads to the end.
	// The reader must be closed; on error it is nil.
	Get(ctx context.Context, key string, off, length int64) (io.ReadCloser, error)
	// List calls fn for every entry directly under prefix (which is "" or
	// ends in "/"), in key order, following pagination. With recursive set
	// it lists every key under prefix (no delimiter) and Entry.Name is the
	// key relative to prefix.
	List(ctx context.Context, prefix string, recursive bool, fn func(Entry) error) error
	// Copy copies src to dst server-side (multipart copy above 5 GiB).
	// A nil meta keeps the source metadata; otherwise it is replaced.
	Copy(ctx context.Context, src, dst string, meta *ObjectMeta) error
	// Delete removes key; a missing key is not an error.
	Delete(ctx context.Context, key string) error
	// DeleteMany removes keys in batches of up to 1000.
	DeleteMany(ctx context.Context, keys []string) error
}

// Op names the kind of request in a Sample.
type Op string

const (
	OpPut      Op = "PutObject"
	OpCreate   Op = "CreateMultipartUpload"
	OpPart     Op = "UploadPart"
	OpComplete Op = "CompleteMultipartUpload"
	OpAbort    Op = "AbortMultipartUpload"
	OpGet      Op = "GetObject"
	OpHead     Op = "HeadObject"
	OpList     Op = "ListObjectsV2"
	OpCopy     Op = "CopyObject"
	OpDelete   Op = "DeleteObject"
	OpOther    Op = "Other"
)

// Sample is the measurement of one HTTP attempt.
type Sample struct {
	Op        Op
	Bytes     int64     // request body bytes handed to the connection
	RespBytes int64     // response body bytes read (GET)
	Start     time.Time // request started
	BodyDone  time.Time // last request byte written (zero if never)
	FirstByte time.Time // first response byte (zero if none)
	End       time.Time
	Status    int   // HTTP status, 0 if none
	Err       error // transport error or error status
	Attempt   int   // 1 for the first try, 2.. for retries
}

// Sampler receives measurements. Implementations must be cheap and safe for
// concurrent use: they are called on the request path.
type Sampler interface {
	// Observe is called once per HTTP attempt when it ends.
	Observe(Sample)
	// BodyProgress is called as request body bytes are handed to the kernel.
	BodyProgress(n int64, at time.Time)
}
