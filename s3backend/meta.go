package s3backend

import (
	"strconv"
	"strings"
	"time"
)

// User metadata keys (x-amz-meta-*). mtime is what rclone writes; mode, uid
// and gid are what s3fs writes, so objects look right to both tools.
const (
	metaMtime = "mtime"
	metaMode  = "mode"
	metaUID   = "uid"
	metaGID   = "gid"
	// Ours, for compressed objects.
	metaRawSize = "adaptfs-raw-size"
	metaFormat  = "adaptfs-format"
)

// s3Metadata returns the user metadata map for m (nil if there is none).
// Content-Encoding travels as a header, not here.
func (m ObjectMeta) s3Metadata() map[string]string {
	md := make(map[string]string, len(m.Extra)+4)
	for k, v := range m.Extra {
		k = strings.ToLower(k)
		if isReservedMetaKey(k) {
			continue // the typed fields own these keys
		}
		md[k] = v
	}
	if !m.Mtime.IsZero() {
		md[metaMtime] = formatMtime(m.Mtime)
	}
	if m.Mode != 0 {
		md[metaMode] = strconv.FormatUint(uint64(m.Mode), 10)
	}
	if m.HasOwner {
		md[metaUID] = strconv.FormatUint(uint64(m.UID), 10)
		md[metaGID] = strconv.FormatUint(uint64(m.GID), 10)
	}
	if m.Format != "" {
		md[metaFormat] = m.Format
		if m.RawSize >= 0 { // unknown when the upload started before close
			md[metaRawSize] = strconv.FormatInt(m.RawSize, 10)
		}
	}
	if len(md) == 0 {
		return nil
	}
	return md
}

func isReservedMetaKey(k string) bool {
	switch k {
	case metaMtime, metaMode, metaUID, metaGID, metaRawSize, metaFormat:
		return true
	}
	return false
}

// metaFromS3 is the inverse of s3Metadata. Values that do not parse are
// dropped (the field stays zero): foreign tools write what they like, and a
// bad mtime must not make a file unreadable.
func metaFromS3(md map[string]string, contentEncoding string) ObjectMeta {
	m := ObjectMeta{ContentEncoding: contentEncoding}
	hasRaw := false
	for k, v := range md {
		k = strings.ToLower(k)
		switch k {
		case metaMtime:
			if t, ok := parseMtime(v); ok {
				m.Mtime = t
			}
		case metaMode:
			if n, err := strconv.ParseUint(strings.TrimSpace(v), 10, 32); err == nil {
				m.Mode = uint32(n)
			}
		case metaUID:
			if n, err := strconv.ParseUint(strings.TrimSpace(v), 10, 32); err == nil {
				m.UID, m.HasOwner = uint32(n), true
			}
		case metaGID:
			if n, err := strconv.ParseUint(strings.TrimSpace(v), 10, 32); err == nil {
				m.GID, m.HasOwner = uint32(n), true
			}
		case metaFormat:
			m.Format = v
		case metaRawSize:
			if n, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64); err == nil && n >= 0 {
				m.RawSize, hasRaw = n, true
			}
		default:
			if m.Extra == nil {
				m.Extra = make(map[string]string)
			}
			m.Extra[k] = v
		}
	}
	if m.Format != "" && !hasRaw {
		m.RawSize = -1 // in the seek table only
	}
	return m
}

// formatMtime writes seconds since the epoch with nine fractional digits,
// as rclone does ("1700000000.123456789").
func formatMtime(t time.Time) string {
	sec, nsec := t.Unix(), int64(t.Nanosecond())
	sign := ""
	if sec < 0 && nsec > 0 {
		// Unix() floors; write -0.5 s as "-0.500000000", not "-1.500000000".
		sign, sec, nsec = "-", -(sec + 1), 1e9-nsec
	} else if sec < 0 {
		sign, sec = "-", -sec
	}
	var b strings.Builder
	b.Grow(21)
	b.WriteString(sign)
	b.WriteString(strconv.FormatInt(sec, 10))
	b.WriteByte('.')
	frac := strconv.FormatInt(nsec, 10)
	b.WriteString(strings.Repeat("0", 9-len(frac)))
	b.WriteString(frac)
	return b.String()
}

// parseMtime reads rclone's "sec.nanos" and s3fs's integer seconds. It
// parses the two halves as integers so that nanoseconds survive (a float64
// keeps only ~microseconds at today's epoch values).
func parseMtime(s string) (time.Time, bool) {
	s = strings.TrimSpace(s)
	neg := strings.HasPrefix(s, "-")
	intPart, frac, hasFrac := strings.Cut(strings.TrimPrefix(s, "-"), ".")
	if intPart == "" && !hasFrac {
		return time.Time{}, false
	}
	sec := int64(0)
	if intPart != "" {
		n, err := strconv.ParseUint(intPart, 10, 63)
		if err != nil {
			return parseFloatMtime(s)
		}
		sec = int64(n)
	}
	nsec := int64(0)
	if hasFrac {
		if frac == "" || len(frac) > 9 && !allDigits(frac) {
			return parseFloatMtime(s)
		}
		if len(frac) > 9 {
			frac = frac[:9] // sub-nanosecond digits: truncate
		}
		n, err := strconv.ParseUint(frac, 10, 32)
		if err != nil {
			return parseFloatMtime(s)
		}
		nsec = int64(n)
		for i := len(frac); i < 9; i++ {
			nsec *= 10
		}
	}
	if neg {
		sec, nsec = -sec, -nsec
	}
	return time.Unix(sec, nsec), true
}

// parseFloatMtime accepts anything else strconv reads as a float
// ("1.7e9"), at float precision.
func parseFloatMtime(s string) (time.Time, bool) {
	f, err := strconv.ParseFloat(s, 64)
	if err != nil || f != f || f > 1e15 || f < -1e15 {
		return time.Time{}, false
	}
	sec := int64(f)
	return time.Unix(sec, int64((f-float64(sec))*1e9)), true
}

func allDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}
