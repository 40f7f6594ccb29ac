package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"runtime"
	"slices"
	"testing"

	"go.yaml.in/yaml/v3"

	"github.com/quayctl/quayctl/internal/version"
)

func TestVersion(t *testing.T) {
	want := map[string]string{
		"version":    version.Version,
		"go_version": runtime.Version(),
		"platform":   runtime.GOOS + "/" + runtime.GOARCH,
	}
	tests := []struct {
		output string
		decode func([]byte, any) error
	}{
		{"table", nil},
		{"json", json.Unmarshal},
		{"yaml", yaml.Unmarshal},
	}
	for _, tt := range tests {
		t.Run(tt.output, func(t *testing.T) {
			code, stdout, stderr := run(t, context.Background(), nil, "", "version", "-o", tt.output)
			if code != ExitOK || stderr != "" {
				t.Fatalf("exit code %d, stderr %q", code, stderr)
			}
			if tt.decode == nil {
				if w := fmt.Sprintf("quayctl %s (%s, %s)\n", want["version"], want["go_version"], want["platform"]); stdout != w {
					t.Errorf("stdout = %q, want %q", stdout, w)
				}
				return
			}
			var got map[string]string
			if err := tt.decode([]byte(stdout), &got); err != nil {
				t.Fatalf("%v:\n%s", err, stdout)
			}
			if !maps.Equal(got, want) {
				t.Errorf("keys and values = %v, want %v (keys %v)", got, want, slices.Sorted(maps.Keys(want)))
			}
		})
	}
}
