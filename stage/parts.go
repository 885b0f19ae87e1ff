package stage

// S3's multipart limits, and the part-size schedule that keeps any object up
// to MaxObjectSize within MaxParts.
const (
	MiB           = 1 << 20
	MinPartSize   = 5 * MiB
	MaxPartSize   = 5 << 30
	MaxParts      = 10000
	MaxObjectSize = 5 << 40

	// growthDivisor: once an upload holds more than growthDivisor parts' worth
	// of bytes at the requested size, each next part is at least
	// bytesSoFar/growthDivisor. Sizes then grow geometrically (×e every
	// growthDivisor parts), which reaches 5 TiB well within 10,000 parts
	// (the unit tests prove it) while keeping the final parts under 5 GiB
	// (5 TiB / 1100 ≈ 4.65 GiB).
	growthDivisor = 1100
)

// nextPartSize returns the size of the part to cut at offset sealed (bytes
// already cut) when the controller asks for requested bytes. It never goes
// below MinPartSize or above MaxPartSize and rounds growth up to whole MiB so
// part sizes stay readable.
func nextPartSize(requested, sealed int64) int64 {
	size := max(requested, MinPartSize)
	if grow := sealed / growthDivisor; grow > size {
		size = (grow + MiB - 1) / MiB * MiB
	}
	return min(size, MaxPartSize)
}

// tailPartSize plans the tail of a closed file: the part size at which its
// last avail bytes (at most conc parts of size) split evenly over conc
// parts, not under MinPartSize and not into more parts than partsLeft. It
// returns 0 while avail is more than conc parts of size away from the end,
// and size when an even split would not be smaller. Cut at the full size, a
// tail leaves a few streams sending big parts while the others idle (seen
// at 0.5 % loss: 12 s of a 32 s upload on 8 MiB parts at 5 Mbit/s per
// stream).
func tailPartSize(avail, size int64, conc, partsLeft int) int64 {
	if conc < 1 || size <= 0 || avail > int64(conc)*size {
		return 0
	}
	k := max(1, min(int64(conc), int64(partsLeft), avail/MinPartSize))
	return min((avail+k-1)/k, size)
}
