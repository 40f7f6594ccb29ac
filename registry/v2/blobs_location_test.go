package v2

import (
	"slices"
	"testing"
	"time"
)

// A location that failed recently is tried last, until it serves again or
// failingFor passes.
func TestFailingLocationsLast(t *testing.T) {
	tests := []struct {
		name   string
		failed []string
		ok     []string
		expire []string // failed long ago
		want   []string
	}{
		{"none failed", nil, nil, nil, []string{"eu", "us", "ap"}},
		{"preferred failed", []string{"eu"}, nil, nil, []string{"us", "ap", "eu"}},
		{"two failed keep their order", []string{"ap", "eu"}, nil, nil, []string{"us", "eu", "ap"}},
		{"served again", []string{"eu"}, []string{"eu"}, nil, []string{"eu", "us", "ap"}},
		{"failure expired", nil, nil, []string{"eu"}, []string{"eu", "us", "ap"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var f failingLocations
			for _, n := range tt.failed {
				f.failed(n)
			}
			for _, n := range tt.ok {
				f.ok(n)
			}
			for _, n := range tt.expire {
				f.failed(n)
				f.until[n] = time.Now().Add(-time.Second)
			}
			if got := f.last([]string{"eu", "us", "ap"}); !slices.Equal(got, tt.want) {
				t.Errorf("last = %v, want %v", got, tt.want)
			}
		})
	}
}
