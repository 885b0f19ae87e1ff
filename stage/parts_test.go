package stage

import "testing"

// TestPartScheduleFitsS3Limits streams simulated files through the part
// cutter and checks S3's limits hold for every size up to 5 TiB.
func TestPartScheduleFitsS3Limits(t *testing.T) {
	tests := []struct {
		name      string
		requested func(part int) int64 // the controller's wish per part
		total     int64
	}{
		{"5TiB at min size", func(int) int64 { return MinPartSize }, MaxObjectSize},
		{"5TiB at 16MiB", func(int) int64 { return 16 * MiB }, MaxObjectSize},
		{"5TiB at max size", func(int) int64 { return MaxPartSize }, MaxObjectSize},
		{"5TiB below S3 minimum asked", func(int) int64 { return 1 }, MaxObjectSize},
		{"5TiB with changing wishes", func(p int) int64 { return int64(5+(p*7)%100) * MiB }, MaxObjectSize},
		{"1GiB at 8MiB", func(int) int64 { return 8 * MiB }, 1 << 30},
		{"odd size", func(int) int64 { return 5 * MiB }, 123456789},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var sealed int64
			parts := 0
			prev := int64(0)
			for sealed < tt.total {
				size := nextPartSize(tt.requested(parts), sealed)
				if size < MinPartSize || size > MaxPartSize {
					t.Fatalf("part %d size %d outside S3 limits", parts+1, size)
				}
				if rem := tt.total - sealed; size > rem {
					size = rem // the final part takes what is left
				} else if rem-size > 0 && size < MinPartSize {
					t.Fatalf("non-final part %d under 5 MiB: %d", parts+1, size)
				}
				if prev > 0 && size < prev && sealed+size < tt.total && tt.requested(parts) >= prev {
					t.Fatalf("part %d shrank from %d to %d though the wish did not", parts+1, prev, size)
				}
				prev = size
				sealed += size
				parts++
			}
			if parts > MaxParts {
				t.Fatalf("%d bytes took %d parts, over S3's %d", tt.total, parts, MaxParts)
			}
			t.Logf("%d bytes in %d parts, last full part %d MiB", tt.total, parts, prev/MiB)
		})
	}
}
