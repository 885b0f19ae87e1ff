package stage

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// Subdirectories of the staging directory for files recovery will not
// upload: corrupt manifests, and files whose writer never closed them.
const (
	quarantineDir = "quarantine"
	unclosedDir   = "unclosed"
)

// RecoveryReport says what Recover found.
type RecoveryReport struct {
	Resumed     []string // keys queued for upload again
	Unclosed    []string // keys whose writer died before close: kept aside, not uploaded
	Quarantined []string // manifest files that could not be read
}

// Recover re-queues every file that was closed but not uploaded when the
// previous process stopped, so that nothing a user saw close succeed on is
// lost. A file that was never closed is moved aside (the user did not see
// its write finish); a manifest that cannot be decoded is quarantined with
// its data, never silently dropped. Multipart uploads recorded in the
// manifests are aborted; the upload restarts from the staged bytes.
func (a *Area) Recover(ctx context.Context) (RecoveryReport, error) {
	var rep RecoveryReport
	var stale []string // keys that may have an upload with no id recorded
	entries, err := os.ReadDir(a.dir)
	if err != nil {
		return rep, fmt.Errorf("read staging dir: %w", err)
	}
	for _, e := range entries {
		name := e.Name()
		if strings.HasSuffix(name, ".json.tmp") {
			os.Remove(filepath.Join(a.dir, name)) // torn write of a manifest that was replaced
			continue
		}
		if (strings.HasSuffix(name, ".zst") || strings.HasSuffix(name, putSuffix)) && !e.IsDir() {
			// Compressed bytes, or a PutObject's snapshot, of an upload
			// that restarts: remade from the staging file.
			os.Remove(filepath.Join(a.dir, name))
			continue
		}
		id, ok := strings.CutSuffix(name, ".json")
		if !ok || e.IsDir() || !isStagedID(id) {
			continue // not a manifest (the daemon keeps link-profile.json here too)
		}
		path := filepath.Join(a.dir, name)
		m, err := readManifest(path)
		if err != nil {
			a.log.Error("corrupt staging manifest quarantined", "manifest", path, "err", err)
			a.moveAside(quarantineDir, id)
			rep.Quarantined = append(rep.Quarantined, name)
			continue
		}
		if m.UploadID == "" && m.UploadKey != "" {
			// Killed while CreateMultipartUpload was in flight: an upload
			// of that key may exist with no id recorded.
			stale = append(stale, m.UploadKey)
		}
		if m.UploadID != "" {
			upKey := m.UploadKey
			if upKey == "" {
				upKey = m.Key
			}
			actx, cancel := context.WithTimeout(ctx, 30*time.Second)
			if err := a.be.AbortMultipart(actx, upKey, m.UploadID); err != nil {
				a.log.Warn("could not abort a multipart upload left by the previous run", "key", upKey, "err", err)
			}
			cancel()
		}
		if m.State == stateWriting {
			a.log.Warn("staged file was never closed; kept aside, not uploaded", "key", m.Key, "dir", filepath.Join(a.dir, unclosedDir))
			a.moveAside(unclosedDir, id)
			rep.Unclosed = append(rep.Unclosed, m.Key)
			continue
		}
		if err := a.resume(id, m); err != nil {
			a.log.Error("staged file could not be resumed; quarantined", "key", m.Key, "err", err)
			a.moveAside(quarantineDir, id)
			rep.Quarantined = append(rep.Quarantined, name)
			continue
		}
		rep.Resumed = append(rep.Resumed, m.Key)
	}
	// Data files without a manifest were created and never closed.
	for _, e := range entries {
		id, ok := strings.CutSuffix(e.Name(), ".data")
		if !ok || e.IsDir() {
			continue
		}
		if _, err := os.Stat(filepath.Join(a.dir, e.Name())); err != nil {
			continue // moved aside above with its manifest
		}
		if _, err := os.Stat(filepath.Join(a.dir, id+".json")); !os.IsNotExist(err) {
			continue
		}
		a.log.Warn("staged data of a file that was never closed; kept aside, not uploaded", "file", e.Name(), "dir", filepath.Join(a.dir, unclosedDir))
		a.moveAside(unclosedDir, id)
		rep.Unclosed = append(rep.Unclosed, e.Name())
	}
	if len(rep.Resumed) > 0 || len(stale) > 0 {
		// Before the resumed uploads start, so that none of theirs is taken
		// for a stale one.
		a.abortStaleUploads(ctx, append(stale, rep.Resumed...))
	}
	if len(rep.Resumed) > 0 {
		a.log.Info("resuming uploads left by the previous run", "files", len(rep.Resumed))
		a.Retry()
	}
	return rep, nil
}

// abortStaleUploads aborts in-progress multipart uploads of the keys being
// resumed. A process killed while CreateMultipartUpload was in flight never
// recorded the upload id; the key is about to be uploaded again from the
// staged bytes, so any upload of it still open now is ours or stale.
func (a *Area) abortStaleUploads(ctx context.Context, keys []string) {
	want := make(map[string]bool, len(keys))
	for _, k := range keys {
		want[k] = true
	}
	lctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	ups, err := a.be.ListMultipartUploads(lctx, "")
	if err != nil {
		a.log.Warn("could not list multipart uploads to clean up after the previous run", "err", err)
		return
	}
	for _, u := range ups {
		if !want[u.Key] {
			continue
		}
		if err := a.be.AbortMultipart(lctx, u.Key, u.UploadID); err != nil {
			a.log.Warn("could not abort a multipart upload left by the previous run", "key", u.Key, "err", err)
		}
	}
}

func (a *Area) resume(id string, m manifest) error {
	data, err := os.OpenFile(filepath.Join(a.dir, id+".data"), os.O_RDWR, 0o600)
	if err != nil {
		return fmt.Errorf("open staged data: %w", err)
	}
	st, err := data.Stat()
	if err != nil {
		data.Close()
		return fmt.Errorf("stat staged data: %w", err)
	}
	if m.Reopened {
		m.Size = st.Size() // as it was at the crash (see manifest.Reopened)
	}
	if st.Size() < m.Size {
		data.Close()
		return fmt.Errorf("staged data has %d bytes, manifest says %d", st.Size(), m.Size)
	}
	f := &File{area: a, id: id, key: m.Key, data: data, size: m.Size, contig: m.Size, meta: m.meta(), state: Queued}
	f._countDisk(m.Size)
	a.mu.Lock()
	old := a.files[m.Key]
	a.files[m.Key] = f
	a.mu.Unlock()
	if old != nil {
		old.drop() // two manifests for one key: the later (higher id) wins
	}
	f.mu.Lock()
	f._writeManifest(stateClosed) // drop the aborted upload id
	f._schedule()
	f.mu.Unlock()
	return nil
}

// isStagedID reports whether id has the form newID gives staged files (16
// lower-case hex digits).
func isStagedID(id string) bool {
	if len(id) != 16 {
		return false
	}
	for _, c := range id {
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

func (a *Area) moveAside(sub, id string) {
	dir := filepath.Join(a.dir, sub)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		a.log.Error("cannot create staging subdirectory", "dir", dir, "err", err)
		return
	}
	for _, ext := range []string{".json", ".data"} {
		from := filepath.Join(a.dir, id+ext)
		if _, err := os.Stat(from); err == nil {
			if err := os.Rename(from, filepath.Join(dir, id+ext)); err != nil {
				a.log.Error("cannot move staged file aside", "file", from, "err", err)
			}
		}
	}
}
