package wan

import "testing"

// Require skips t, with Check's message naming what is missing, when this
// machine cannot build a link (not root, or a kernel feature missing).
func Require(t testing.TB) {
	t.Helper()
	if err := Check(); err != nil {
		t.Skip(err)
	}
}

// UpForTest skips t when no link can be built here (see Require), brings
// up a link and removes it when t ends, even if the test fails.
func UpForTest(t testing.TB, cfg Config) *Link {
	t.Helper()
	Require(t)
	l, err := Up(t.Context(), cfg)
	if err != nil {
		t.Fatalf("wan.Up(%+v): %v", cfg, err)
	}
	t.Cleanup(l.Down)
	return l
}
