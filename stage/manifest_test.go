package stage

import (
	"encoding/json"
	"strings"
	"testing"
	"time"
)

// FuzzDecodeManifest feeds arbitrary bytes to the manifest decoder (what
// recovery reads from a staging directory that may hold torn, truncated or
// hostile files): it must never panic, and what it accepts must be a
// manifest recovery can act on, that encodes and decodes to itself.
func FuzzDecodeManifest(f *testing.F) {
	good, _ := json.Marshal(manifest{Version: manifestVersion, Key: "a/b.txt", State: stateClosed, Size: 42,
		Mtime: time.Unix(1_700_000_000, 5), Mode: 0o100644, UploadID: "u1", UploadKey: "a/old.txt"})
	for _, seed := range []string{
		string(good),
		string(good[:len(good)/2]),
		"",
		"null",
		"[]",
		`{"version":1,"key":"k","state":"writing","size":-1}`,
		`{"version":1,"key":"k","state":"closed","size":99999999999999999999}`,
		`{"version":2,"key":"k","state":"closed"}`,
		`{"version":1,"key":"","state":"closed"}`,
		`{"version":1,"key":"k","state":"gone"}`,
		`{"version":1,"key":"k","state":"closed","mtime":"not a time"}`,
		`{"version":1,"key":"k\u0000/../x","state":"closed","mode":4294967295}`,
		strings.Repeat(`{"a":`, 10000),
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := decodeManifest(b)
		if err != nil {
			if !strings.Contains(err.Error(), "manifest") {
				t.Fatalf("error does not say what was wrong: %v", err)
			}
			return
		}
		if m.Key == "" || (m.State != stateWriting && m.State != stateClosed) || m.Size < 0 || m.Size > MaxObjectSize {
			t.Fatalf("accepted an unusable manifest: %+v", m)
		}
		again, err := json.Marshal(m)
		if err != nil {
			t.Fatalf("accepted manifest does not encode: %v", err)
		}
		m2, err := decodeManifest(again)
		if err != nil || m2.Key != m.Key || m2.Size != m.Size || m2.State != m.State {
			t.Fatalf("round trip: %+v → %v, %+v", m, err, m2)
		}
	})
}
