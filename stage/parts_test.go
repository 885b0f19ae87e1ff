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

// TestTailSpreadsEvenly cuts closed files the way the uploader does (full
// parts until the tail is planned, then the planned size) and checks the
// tail is even, never under MinPartSize unless final, and within S3's part
// count.
func TestTailSpreadsEvenly(t *testing.T) {
	tests := []struct {
		name      string
		avail     int64
		size      int64
		conc      int
		partsLeft int
		want      []int64 // sizes of the last parts, MiB
	}{
		{"192MiB over 16 streams", 192 * MiB, 8 * MiB, 16, MaxParts, []int64{8, 8, 8, 8}},
		{"100MiB over 16 streams", 100 * MiB, 8 * MiB, 16, MaxParts, []int64{6, 6, 6, 6}},
		{"40MiB over 8 streams", 40 * MiB, 8 * MiB, 8, MaxParts, []int64{5, 5, 5, 5, 5, 5, 5, 5}},
		{"6MiB at 5MiB parts", 6 * MiB, 5 * MiB, 8, MaxParts, []int64{5, 1}},
		{"11MiB at 8MiB parts", 11 * MiB, 8 * MiB, 8, MaxParts, []int64{6, 6}},
		{"few parts left to spread into", 64 * MiB, 8 * MiB, 1024, 10, []int64{6, 6, 6, 6, 6, 6, 6, 6, 6, 6}},
		{"one stream", 20 * MiB, 8 * MiB, 1, MaxParts, []int64{8, 8, 4}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			avail, left := tt.avail, tt.partsLeft
			var sizes []int64
			var plan int64
			for avail > 0 {
				size := tt.size
				if plan == 0 {
					plan = tailPartSize(avail, tt.size, tt.conc, left)
				}
				if plan > 0 {
					size = min(size, plan)
				}
				size = min(size, avail)
				if size < avail && size < MinPartSize {
					t.Fatalf("non-final part %d under 5 MiB: %d", len(sizes)+1, size)
				}
				sizes = append(sizes, size)
				avail -= size
				left--
			}
			if len(sizes) > tt.partsLeft {
				t.Fatalf("%d parts, only %d allowed", len(sizes), tt.partsLeft)
			}
			tail := sizes[max(0, len(sizes)-len(tt.want)):]
			for i, w := range tt.want {
				if got := (tail[i] + MiB/2) / MiB; got != w {
					t.Fatalf("last parts %v (bytes), want %v MiB", tail, tt.want)
				}
			}
		})
	}
}
