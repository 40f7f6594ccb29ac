// Package quota holds the parts of quota management that are not SQL:
// reading and writing human sizes the way Quay's API does (bitmath).
// Sizes, limits and enforcement live in registry/store (quota.go), inside
// the transactions that change what a namespace holds.
package quota

import (
	"fmt"
	"math"
	"math/big"
	"strings"
	"unicode"
)

// units maps a lower-cased unit to its multiplier. As bitmath's lenient
// parser, a bare prefix ("G", "g") is decimal (SI) and "Gi" is binary.
var units = map[string]int64{
	"": 1, "b": 1, "byte": 1, "bytes": 1,
	"k": 1e3, "kb": 1e3, "m": 1e6, "mb": 1e6, "g": 1e9, "gb": 1e9,
	"t": 1e12, "tb": 1e12, "p": 1e15, "pb": 1e15, "e": 1e18, "eb": 1e18,
	"ki": 1 << 10, "kib": 1 << 10, "mi": 1 << 20, "mib": 1 << 20, "gi": 1 << 30, "gib": 1 << 30,
	"ti": 1 << 40, "tib": 1 << 40, "pi": 1 << 50, "pib": 1 << 50, "ei": 1 << 60, "eib": 1 << 60,
}

// ParseSize reads "10 GiB", "10GiB", "1.5 TB", "500 mib", "10 G" (decimal)
// or a bare number of bytes. The result is rounded down to whole bytes and
// must be positive.
func ParseSize(s string) (int64, error) {
	in := strings.TrimSpace(s)
	i := strings.IndexFunc(in, func(r rune) bool { return !(unicode.IsDigit(r) || r == '.') })
	if i < 0 {
		i = len(in)
	}
	num, unit := in[:i], strings.ToLower(strings.TrimSpace(in[i:]))
	mult, ok := units[unit]
	if num == "" || !ok {
		return 0, fmt.Errorf("cannot read %q as a size: use a number with a unit such as \"10 GiB\", \"500 MiB\" or \"2 TB\"", s)
	}
	r, ok := new(big.Rat).SetString(num)
	if !ok {
		return 0, fmt.Errorf("cannot read %q as a size: %q is not a number", s, num)
	}
	r.Mul(r, new(big.Rat).SetInt64(mult))
	n := new(big.Int).Quo(r.Num(), r.Denom())
	if !n.IsInt64() {
		return 0, fmt.Errorf("size %q is too large", s)
	}
	if n.Int64() <= 0 {
		return 0, fmt.Errorf("size %q must be more than zero bytes", s)
	}
	return n.Int64(), nil
}

// FormatSize writes bytes with the best binary prefix and one decimal, as
// Quay's quota views ("10.0 GiB").
func FormatSize(n int64) string {
	names := []string{"Bytes", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"}
	v, i := float64(n), 0
	for math.Abs(v) >= 1024 && i < len(names)-1 {
		v /= 1024
		i++
	}
	return fmt.Sprintf("%.1f %s", v, names[i])
}
