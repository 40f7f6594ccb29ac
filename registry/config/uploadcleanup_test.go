package config

import (
	"testing"
	"time"
)

// TestUploadCleanupKeys: Quay's blobuploadcleanupworker keys and their
// defaults (two days, one hour, sweep the upload folder).
func TestUploadCleanupKeys(t *testing.T) {
	tests := []struct {
		name      string
		patch     map[string]any
		wantAge   time.Duration
		wantEvery time.Duration
		wantSweep bool
	}{
		{"defaults", nil, 48 * time.Hour, time.Hour, true},
		{"set", map[string]any{"BLOBUPLOAD_DELETION_DATE_THRESHOLD": 90, "BLOBUPLOAD_CLEANUP_FREQUENCY": 600,
			"CLEAN_BLOB_UPLOAD_FOLDER": false}, 90 * time.Minute, 10 * time.Minute, false},
		{"sweep on explicitly", map[string]any{"CLEAN_BLOB_UPLOAD_FOLDER": true}, 48 * time.Hour, time.Hour, true},
		{"zero means the default", map[string]any{"BLOBUPLOAD_DELETION_DATE_THRESHOLD": 0, "BLOBUPLOAD_CLEANUP_FREQUENCY": 0},
			48 * time.Hour, time.Hour, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, _, err := Load(LoadOptions{Path: writeConfig(t, tt.patch, ""), Env: noEnv})
			if err != nil {
				t.Fatal(err)
			}
			if got := cfg.BlobUploadDeletionAge(); got != tt.wantAge {
				t.Errorf("BlobUploadDeletionAge = %v, want %v", got, tt.wantAge)
			}
			if got := cfg.BlobUploadCleanupInterval(); got != tt.wantEvery {
				t.Errorf("BlobUploadCleanupInterval = %v, want %v", got, tt.wantEvery)
			}
			if got := cfg.CleansUploadFolder(); got != tt.wantSweep {
				t.Errorf("CleansUploadFolder = %v, want %v", got, tt.wantSweep)
			}
			for _, w := range cfg.Warnings() {
				t.Errorf("unexpected warning: %v", w)
			}
		})
	}
}
