package stage

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/adaptfs/adaptfs/s3backend"
)

// manifestVersion is bumped when the manifest format changes incompatibly.
const manifestVersion = 1

// Manifest states.
const (
	stateWriting = "writing" // open for writing; close has not been seen
	stateClosed  = "closed"  // closed by the user: must reach S3
)

// manifest is the on-disk record of one staged file, next to its data file.
// It is what crash recovery reads.
type manifest struct {
	Version   int       `json:"version"`
	Key       string    `json:"key"`                  // target key (relative to the prefix)
	State     string    `json:"state"`                // stateWriting or stateClosed
	Size      int64     `json:"size"`                 // bytes of the data file that belong to the object
	Mtime     time.Time `json:"mtime"`                // file mtime (metadata)
	Mode      uint32    `json:"mode"`                 // st_mode incl. type bits
	UID       uint32    `json:"uid"`                  // owner
	GID       uint32    `json:"gid"`                  // group
	UploadID  string    `json:"upload_id,omitempty"`  // multipart upload in progress, if any
	UploadKey string    `json:"upload_key,omitempty"` // the key that upload targets (differs after a rename)
	// Reopened: closed, then opened for writing again. The data file is
	// updated in place, so Size may be stale; recovery takes the data file
	// whole, as it was at the crash.
	Reopened bool      `json:"reopened,omitempty"`
	Written  time.Time `json:"written"` // when this manifest was written
}

func (m manifest) meta() s3backend.ObjectMeta {
	return s3backend.ObjectMeta{Mtime: m.Mtime, Mode: m.Mode, UID: m.UID, GID: m.GID, HasOwner: true}
}

// writeManifest replaces path atomically (temp file, fsync, rename) so a
// crash leaves either the old or the new manifest, never a torn one.
// With sync set it is also fsynced (staging_sync = "close"); without, a
// process crash still cannot tear it, only a power loss can lose it.
func writeManifest(path string, m manifest, sync bool) error {
	m.Version = manifestVersion
	m.Written = time.Now()
	b, err := json.Marshal(m)
	if err != nil {
		return fmt.Errorf("encode manifest %s: %w", path, err)
	}
	tmp := path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return fmt.Errorf("write manifest: %w", err)
	}
	if _, err := f.Write(b); err != nil {
		f.Close()
		return fmt.Errorf("write manifest %s: %w", tmp, err)
	}
	if sync {
		if err := f.Sync(); err != nil {
			f.Close()
			return fmt.Errorf("sync manifest %s: %w", tmp, err)
		}
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("close manifest %s: %w", tmp, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("install manifest %s: %w", path, err)
	}
	return nil
}

// decodeManifest parses and checks a manifest. Every problem is an error
// that names what is wrong; it never panics on hostile bytes.
func decodeManifest(b []byte) (manifest, error) {
	var m manifest
	if err := json.Unmarshal(b, &m); err != nil {
		return m, fmt.Errorf("not a manifest: %w", err)
	}
	switch {
	case m.Version != manifestVersion:
		return m, fmt.Errorf("manifest version %d, want %d", m.Version, manifestVersion)
	case m.Key == "":
		return m, errors.New("manifest has no key")
	case m.State != stateWriting && m.State != stateClosed:
		return m, fmt.Errorf("manifest state %q unknown", m.State)
	case m.Size < 0 || m.Size > MaxObjectSize:
		return m, fmt.Errorf("manifest size %d out of range", m.Size)
	}
	return m, nil
}

func readManifest(path string) (manifest, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return manifest{}, fmt.Errorf("read manifest: %w", err)
	}
	m, err := decodeManifest(b)
	if err != nil {
		return m, fmt.Errorf("%s: %w", filepath.Base(path), err)
	}
	return m, nil
}
