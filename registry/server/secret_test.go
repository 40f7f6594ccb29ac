package server

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/quayctl/quayctl/registry/encfield"
)

func TestSecretKey(t *testing.T) {
	dir := t.TempDir()
	sqlite := "sqlite:///" + filepath.Join(dir, "quay.db")
	for _, tc := range []struct {
		name      string
		s         Settings
		want      string // "" with wantFile: generated into the file
		wantFile  bool
		wantEmpty bool
		wantErr   string
	}{
		{name: "configured wins", s: Settings{DBURI: sqlite, DatabaseSecretKey: "configured"}, want: "configured"},
		{name: "sqlite without key: generated next to the database", s: Settings{DBURI: sqlite}, wantFile: true},
		{name: "postgresql without key: none", s: Settings{DBURI: "postgresql://u@h/db"}, wantEmpty: true},
		{name: "unusable configured key", s: Settings{DBURI: sqlite, DatabaseSecretKey: "\u0100\u0101"}, wantErr: "DATABASE_SECRET_KEY"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := SecretKey(tc.s)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			switch {
			case tc.wantEmpty && got != "":
				t.Fatalf("key = %q, want none", got)
			case tc.want != "" && got != tc.want:
				t.Fatalf("key = %q, want %q", got, tc.want)
			case tc.wantFile:
				b, err := os.ReadFile(filepath.Join(dir, encfield.SecretKeyFileName))
				if err != nil || strings.TrimSpace(string(b)) != got {
					t.Fatalf("file holds %q (%v), key %q", b, err, got)
				}
				if again, _ := SecretKey(tc.s); again != got {
					t.Fatalf("second call = %q, want %q", again, got)
				}
			}
		})
	}
}
