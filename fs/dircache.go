package fs

import (
	"context"
	"errors"
	"strings"
	"sync"
	"time"

	"github.com/adaptfs/adaptfs/s3backend"
)

// dirEntry is what the mount knows of one name in a directory.
type dirEntry struct {
	isDir     bool
	info      s3backend.ObjectInfo
	metaKnown bool // info.Meta came from HEAD or our own upload
}

// change is a local mutation of a directory (create, upload, delete) that a
// listing fetched before it would not show.
type change struct {
	at      time.Time
	entry   *dirEntry // nil: the name was removed
	removed bool
	dirGone bool // removed was a directory (rmdir, rename): it hides a listed directory too
}

// listing is the cached content of one directory.
type listing struct {
	mu      sync.Mutex // held while fetching, so concurrent lookups share one LIST
	fetched time.Time  // when the fetch that filled entries started
	entries map[string]*dirEntry
	changes map[string]change
}

// dirCache caches ListObjectsV2 results per directory for a short TTL, with
// our own changes overlaid until a listing newer than them arrives.
type dirCache struct {
	be  s3backend.Backend
	ttl time.Duration
	// onStale hears about a refresh that failed and was served from the
	// previous listing.
	onStale func(dir string, err error)

	mu   sync.Mutex
	dirs map[string]*listing // by directory prefix ("" or ending in "/")
}

func newDirCache(be s3backend.Backend, ttl time.Duration) *dirCache {
	return &dirCache{be: be, ttl: ttl, dirs: make(map[string]*listing)}
}

func (c *dirCache) listingFor(dir string) *listing {
	c.mu.Lock()
	defer c.mu.Unlock()
	l := c.dirs[dir]
	if l == nil {
		l = &listing{changes: make(map[string]change)}
		c.dirs[dir] = l
	}
	return l
}

// staleRetry is how soon a directory whose refresh failed is listed again.
const staleRetry = 10 * time.Second

// fresh refetches l when it is stale; called with l.mu held.
func (c *dirCache) _refresh(ctx context.Context, dir string, l *listing) error {
	if l.entries != nil && time.Since(l.fetched) <= c.ttl {
		return nil
	}
	start := time.Now()
	fresh := make(map[string]*dirEntry)
	err := c.be.List(ctx, dir, false, func(e s3backend.Entry) error {
		if e.Name == "" || e.Name == "." || e.Name == ".." {
			return nil // not representable as a file name
		}
		if e.IsPrefix {
			fresh[e.Name] = &dirEntry{isDir: true}
			return nil
		}
		if old := fresh[e.Name]; old != nil && old.isDir {
			return nil // a key "a" and a prefix "a/": the directory wins
		}
		fresh[e.Name] = &dirEntry{info: s3backend.ObjectInfo{Key: dir + e.Name, Size: e.Size, ETag: e.ETag, LastModified: e.LastModified}}
		return nil
	})
	if err != nil {
		if l.entries != nil && !errors.Is(err, s3backend.ErrNoSuchBucket) && !errors.Is(err, s3backend.ErrAccessDenied) {
			// The endpoint is unreachable: go on with what we listed last
			// (new files can still be created and staged), and try again
			// after staleRetry instead of making every lookup wait out
			// the retries.
			l.fetched = time.Now().Add(staleRetry - c.ttl)
			if c.onStale != nil {
				c.onStale(dir, err)
			}
			return nil
		}
		return err
	}
	// Keep the metadata we know (from HEAD or our own upload) for objects
	// that did not change.
	for name, e := range fresh {
		if e.isDir {
			continue
		}
		for _, old := range []*dirEntry{l.entries[name], l.changes[name].entry} {
			if old != nil && old.metaKnown && sameObject(old.info, e.info) {
				e.info.Meta, e.metaKnown = old.info.Meta, true
			}
		}
	}
	l.entries, l.fetched = fresh, start
	for name, ch := range l.changes {
		if ch.at.Before(start) {
			delete(l.changes, name)
		}
	}
	return nil
}

func sameObject(a, b s3backend.ObjectInfo) bool {
	return a.Size == b.Size && a.ETag != "" && strings.Trim(a.ETag, `"`) == strings.Trim(b.ETag, `"`)
}

// _resolve returns what name is in l; called with l.mu held.
func _resolve(l *listing, name string) (dirEntry, bool) {
	e := l.entries[name]
	if ch, ok := l.changes[name]; ok && (e == nil || !e.isDir || ch.dirGone) {
		if ch.removed {
			return dirEntry{}, false
		}
		e = ch.entry
	}
	if e == nil {
		return dirEntry{}, false
	}
	return *e, true
}

// entries returns the directory's entries, fetching when the cache is stale.
func (c *dirCache) entries(ctx context.Context, dir string) (map[string]dirEntry, error) {
	l := c.listingFor(dir)
	l.mu.Lock()
	defer l.mu.Unlock()
	if err := c._refresh(ctx, dir, l); err != nil {
		return nil, err
	}
	out := make(map[string]dirEntry, len(l.entries)+len(l.changes))
	for name := range l.entries {
		if e, ok := _resolve(l, name); ok {
			out[name] = e
		}
	}
	for name := range l.changes {
		if e, ok := _resolve(l, name); ok {
			out[name] = e
		}
	}
	return out, nil
}

// lookup returns the entry for name in dir.
func (c *dirCache) lookup(ctx context.Context, dir, name string) (dirEntry, bool, error) {
	l := c.listingFor(dir)
	l.mu.Lock()
	defer l.mu.Unlock()
	if err := c._refresh(ctx, dir, l); err != nil {
		return dirEntry{}, false, err
	}
	e, ok := _resolve(l, name)
	return e, ok, nil
}

func (c *dirCache) record(dir, name string, e *dirEntry) {
	l := c.listingFor(dir)
	l.mu.Lock()
	l.changes[name] = change{at: time.Now(), entry: e, removed: e == nil}
	l.mu.Unlock()
}

// putFile records an object we wrote, with its metadata.
func (c *dirCache) putFile(key string, info s3backend.ObjectInfo) {
	dir, name := splitKey(key)
	c.record(dir, name, &dirEntry{info: info, metaKnown: true})
	c.putParents(dir)
}

// putDir records a directory we created; it is known to be empty.
func (c *dirCache) putDir(key string) {
	dir, name := splitKey(key)
	c.record(dir, name, &dirEntry{isDir: true})
	c.putParents(dir)
	l := c.listingFor(key + "/")
	l.mu.Lock()
	if l.entries == nil {
		l.entries, l.fetched = map[string]*dirEntry{}, time.Now()
	}
	l.mu.Unlock()
}

// putParents makes sure the directories above dir are listed as such.
func (c *dirCache) putParents(dir string) {
	for dir != "" {
		parent, name := splitKey(dir[:len(dir)-1])
		l := c.listingFor(parent)
		l.mu.Lock()
		if e := l.entries[name]; e == nil || !e.isDir {
			if ch, ok := l.changes[name]; !ok || ch.removed || !ch.entry.isDir {
				l.changes[name] = change{at: time.Now(), entry: &dirEntry{isDir: true}}
			}
		}
		l.mu.Unlock()
		dir = parent
	}
}

// remove records that key (a file or a directory) is gone.
func (c *dirCache) remove(key string) {
	dir, name := splitKey(key)
	c.record(dir, name, nil)
}

// removeDir records that the directory key is gone (rmdir, rename): unlike
// remove, this also hides the directory in a listing cached before.
func (c *dirCache) removeDir(key string) {
	dir, name := splitKey(key)
	l := c.listingFor(dir)
	l.mu.Lock()
	l.changes[name] = change{at: time.Now(), removed: true, dirGone: true}
	l.mu.Unlock()
}

// setMeta stores metadata learned by HEAD or changed by setattr.
func (c *dirCache) setMeta(key string, info s3backend.ObjectInfo) {
	dir, name := splitKey(key)
	l := c.listingFor(dir)
	l.mu.Lock()
	defer l.mu.Unlock()
	if ch, ok := l.changes[name]; ok && !ch.removed && !ch.entry.isDir {
		ch.entry.info, ch.entry.metaKnown = info, true
		return
	}
	if e := l.entries[name]; e != nil && !e.isDir {
		e.info, e.metaKnown = info, true
	}
}

// invalidate forgets every listing under prefix (after a directory rename).
func (c *dirCache) invalidate(prefix string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for d := range c.dirs {
		if len(d) >= len(prefix) && d[:len(prefix)] == prefix {
			delete(c.dirs, d)
		}
	}
}
