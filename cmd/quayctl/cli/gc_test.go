package cli

import (
	"context"
	"reflect"
	"strings"
	"testing"
)

func TestGCRunFlags(t *testing.T) {
	tests := []struct {
		args    []string
		want    GCRunOptions
		wantErr string
	}{
		{args: nil, want: GCRunOptions{DataDir: "./quay-data", Output: "table"}},
		{args: []string{"--dry-run", "-o", "json", "--config", "c.yaml"}, want: GCRunOptions{DryRun: true, ConfigPath: "c.yaml", DataDir: "./quay-data", Output: "json"}},
		{args: []string{"-o", "xml"}, wantErr: `--output "xml" is not one of table, json, yaml`},
		{args: []string{"extra"}, wantErr: "no arguments"},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			io, _, errOut := testIO("")
			f := testFactory(io, nil)
			var got *GCRunOptions
			cmd := NewCmdGCRun(f, func(o *GCRunOptions) error { got = o; return nil })
			root := withCmd(t, f, cmd, "gc")
			code := execute(context.Background(), root, append([]string{"gc", "run"}, tt.args...), io.ErrOut)
			if tt.wantErr != "" {
				if code == 0 || !strings.Contains(errOut.String(), tt.wantErr) {
					t.Fatalf("code %d, stderr %q, want error %q", code, errOut.String(), tt.wantErr)
				}
				return
			}
			if got == nil {
				t.Fatalf("not run: code %d, stderr %s", code, errOut.String())
			}
			got.IO, got.Getenv = nil, nil
			if !reflect.DeepEqual(*got, tt.want) {
				t.Errorf("options = %+v, want %+v", *got, tt.want)
			}
		})
	}
}

// TestGCRun runs a real pass on the embedded default (an empty registry:
// nothing to remove) in each output form.
func TestGCRun(t *testing.T) {
	needEmbeddedDefault(t)
	dir := t.TempDir()
	tests := []struct {
		name   string
		args   []string
		golden string
	}{
		{"table", nil, "gc-run.txt"},
		{"dry run table", []string{"--dry-run"}, "gc-run-dry.txt"},
		{"json", []string{"-o", "json"}, "gc-run.json"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, stdout, stderr := run(t, context.Background(), nil, "", append([]string{"gc", "run", "--data-dir", dir}, tt.args...)...)
			if code != 0 {
				t.Fatalf("exit %d, stderr %s", code, stderr)
			}
			golden(t, tt.golden, stdout)
		})
	}
}
