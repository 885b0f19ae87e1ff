package fs

import (
	"context"
	"testing"

	"github.com/adaptfs/adaptfs/s3backend"
)

// listBackend answers List with fixed entries; the cache calls nothing else.
type listBackend struct {
	s3backend.Backend
	entries []s3backend.Entry
}

func (b listBackend) List(ctx context.Context, prefix string, recursive bool, fn func(s3backend.Entry) error) error {
	for _, e := range b.entries {
		if err := fn(e); err != nil {
			return err
		}
	}
	return nil
}

// TestListingSkipsUnnamable: keys no path can name (an empty segment, as
// in "d//y", "." and "..") are left out of a directory, and a key "a" next
// to keys under "a/" shows as the directory. The real test server cannot
// store such keys (it maps keys to files), hence a listing of our own.
func TestListingSkipsUnnamable(t *testing.T) {
	be := listBackend{entries: []s3backend.Entry{
		{Name: "", IsPrefix: true}, // "d//"
		{Name: "."}, {Name: ".."},
		{Name: "ok", Size: 3},
		{Name: "a", Size: 5}, {Name: "a", IsPrefix: true},
		{Name: "b", IsPrefix: true}, {Name: "b", Size: 7},
	}}
	c := newDirCache(be, 0)
	got, err := c.entries(t.Context(), "d/")
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]bool{"ok": false, "a": true, "b": true}
	if len(got) != len(want) {
		t.Fatalf("entries %v, want %v (true: directory)", got, want)
	}
	for name, dir := range want {
		if e, ok := got[name]; !ok || e.isDir != dir {
			t.Errorf("%q: %+v (present %v), want directory %v", name, e, ok, dir)
		}
	}
}
