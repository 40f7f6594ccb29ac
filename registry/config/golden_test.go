package config

import (
	"bytes"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden from the current output")

// TestGolden loads every testdata/*.yaml and compares the problems and the
// effective configuration (Quay's defaults filled in) with testdata/*.golden.
func TestGolden(t *testing.T) {
	inputs, err := filepath.Glob("testdata/*.yaml")
	if err != nil || len(inputs) == 0 {
		t.Fatalf("no golden inputs: %v", err)
	}
	for _, in := range inputs {
		t.Run(filepath.Base(in), func(t *testing.T) {
			got := renderLoad(t, in)
			golden := strings.TrimSuffix(in, ".yaml") + ".golden"
			if *update {
				if err := os.WriteFile(golden, got, 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run go test -update to create it)", err)
			}
			if !bytes.Equal(got, want) {
				t.Errorf("%s differs from output (run go test -update and review the diff)\n--- got ---\n%s", golden, got)
			}
		})
	}
}

func renderLoad(t *testing.T, path string) []byte {
	t.Helper()
	cfg, src, err := Load(LoadOptions{Path: path, Env: noEnv})
	var b bytes.Buffer
	b.WriteString("source: " + src.String() + "\n")
	var verr *ValidationError
	switch {
	case errors.As(err, &verr):
		b.WriteString("result: invalid\nproblems:\n")
		for _, p := range verr.Problems {
			b.WriteString("  " + p.Severity.String() + ": " + p.String() + "\n")
		}
		return b.Bytes()
	case err != nil:
		t.Fatalf("Load(%s): %v", path, err)
	}
	b.WriteString("result: ok\nproblems:\n")
	for _, p := range cfg.Warnings() {
		b.WriteString("  " + p.Severity.String() + ": " + p.String() + "\n")
	}
	b.WriteString("storage preference: " + strings.Join(cfg.StoragePreference(), " ") + "\n")
	db, err := cfg.Database()
	if err != nil {
		t.Fatalf("Database: %v", err)
	}
	b.WriteString("database: " + db.Driver + " " + db.DSN + "\n")
	b.WriteString("effective config:\n")
	out, err := yaml.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	for line := range strings.Lines(string(out)) {
		b.WriteString("  " + line)
	}
	return b.Bytes()
}

func noEnv(string) string { return "" }
