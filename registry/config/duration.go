package config

import (
	"fmt"
	"math"
	"regexp"
	"strconv"
	"time"
)

// quayDurationRE is the pattern Quay's schema uses for DEFAULT_TAG_EXPIRATION,
// TAG_EXPIRATION_OPTIONS and similar keys.
var quayDurationRE = regexp.MustCompile(`^([0-9]+)(w|m|d|h|s)$`)

var quayDurationUnits = map[string]time.Duration{
	"s": time.Second,
	"m": time.Minute,
	"h": time.Hour,
	"d": 24 * time.Hour,
	"w": 7 * 24 * time.Hour,
}

// ParseDuration parses Quay's duration strings: a whole number followed by
// one unit, w (weeks), d, h, m (minutes) or s, such as "2w" or "0s".
func ParseDuration(s string) (time.Duration, error) {
	m := quayDurationRE.FindStringSubmatch(s)
	if m == nil {
		return 0, fmt.Errorf("%q is not a duration like 2w, 14d, 24h, 30m or 0s", s)
	}
	n, err := strconv.ParseInt(m[1], 10, 64)
	unit := quayDurationUnits[m[2]]
	if err != nil || n > math.MaxInt64/int64(unit) {
		return 0, fmt.Errorf("%q is too long a duration", s)
	}
	return time.Duration(n) * unit, nil
}
