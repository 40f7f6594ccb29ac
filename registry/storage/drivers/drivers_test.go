package drivers

import (
	"errors"
	"path/filepath"
	"strings"
	"testing"

	"github.com/quayctl/quayctl/registry/storage/local"
	"github.com/quayctl/quayctl/registry/storage/s3"
)

func TestNew(t *testing.T) {
	root := filepath.Join(t.TempDir(), "registry")
	for _, tc := range []struct {
		name      string
		driver    string
		params    map[string]any
		wantErr   any // nil, NotSupportedError{}, UnknownDriverError{}, or a message fragment
		wantKnown bool
		wantSupp  bool
	}{
		{"local", "LocalStorage", map[string]any{"storage_path": root}, nil, true, true},
		{"local without path", "LocalStorage", map[string]any{}, "storage_path is required", true, true},
		{"s3", "S3Storage", map[string]any{"storage_path": "/r", "s3_bucket": "b", "endpoint_url": "http://127.0.0.1:1", "s3_access_key": "a", "s3_secret_key": "s"}, nil, true, true},
		{"s3 without bucket", "S3Storage", map[string]any{"storage_path": "/r"}, "s3_bucket is required", true, true},
		{"radosgw", "RadosGWStorage", map[string]any{"hostname": "rgw", "is_secure": false, "storage_path": "/r", "access_key": "a", "secret_key": "s", "bucket_name": "b"}, nil, true, true},
		{"radosgw without bucket", "RadosGWStorage", map[string]any{"storage_path": "/r"}, "bucket_name is required", true, true},
		{"rhocs", "RHOCSStorage", map[string]any{"hostname": "s3.openshift-storage.svc", "is_secure": true, "storage_path": "/r", "access_key": "a", "secret_key": "s", "bucket_name": "b"}, nil, true, true},
		{"gcs", "GoogleCloudStorage", nil, NotSupportedError{}, true, false},
		{"azure", "AzureStorage", nil, NotSupportedError{}, true, false},
		{"swift", "SwiftStorage", nil, NotSupportedError{}, true, false},
		{"cloudfront", "CloudFrontedS3Storage", nil, NotSupportedError{}, true, false},
		{"sts", "STSS3Storage", nil, NotSupportedError{}, true, false},
		{"ibm", "IBMCloudStorage", nil, NotSupportedError{}, true, false},
		{"cloudflare", "CloudFlareStorage", nil, NotSupportedError{}, true, false},
		{"akamai", "AkamaiS3Storage", nil, NotSupportedError{}, true, false},
		{"multicdn", "MultiCDNStorage", nil, NotSupportedError{}, true, false},
		{"typo", "LocalStorag", nil, UnknownDriverError{}, false, false},
		{"wrong case", "localstorage", nil, UnknownDriverError{}, false, false},
		{"empty", "", nil, UnknownDriverError{}, false, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := Known(tc.driver); got != tc.wantKnown {
				t.Errorf("Known(%q) = %v", tc.driver, got)
			}
			if got := Supported(tc.driver); got != tc.wantSupp {
				t.Errorf("Supported(%q) = %v", tc.driver, got)
			}
			d, err := New(t.Context(), tc.driver, tc.params)
			switch want := tc.wantErr.(type) {
			case nil:
				if err != nil {
					t.Fatal(err)
				}
				if d.Name() != tc.driver {
					t.Errorf("Name() = %q", d.Name())
				}
				_, isLocal := d.(*local.Driver)
				_, isS3 := d.(*s3.Driver)
				if isLocal != (tc.driver == local.DriverName) || isS3 == isLocal {
					t.Errorf("New(%s) returned %T", tc.driver, d)
				}
			case NotSupportedError:
				var ns NotSupportedError
				if !errors.As(err, &ns) || ns.Driver != tc.driver {
					t.Fatalf("err = %v, want NotSupportedError", err)
				}
				wantMsg := "storage driver " + tc.driver + " is a Quay driver that quayctl does not support yet; use LocalStorage or RHOCSStorage or RadosGWStorage or S3Storage"
				if err.Error() != wantMsg {
					t.Errorf("message %q, want %q", err, wantMsg)
				}
			case UnknownDriverError:
				var ud UnknownDriverError
				if !errors.As(err, &ud) || ud.Driver != tc.driver {
					t.Fatalf("err = %v, want UnknownDriverError", err)
				}
				for _, n := range []string{"LocalStorage", "S3Storage", "MultiCDNStorage"} {
					if !strings.Contains(err.Error(), n) {
						t.Errorf("message %q does not list %s", err, n)
					}
				}
				if d != nil {
					t.Errorf("driver %v returned with an error", d)
				}
			case string:
				if err == nil || !strings.Contains(err.Error(), want) {
					t.Fatalf("err = %v, want %q", err, want)
				}
				if d != nil {
					t.Errorf("New returned a non-nil driver %#v with an error", d)
				}
			}
		})
	}
}

func TestUnknownSuggestsCase(t *testing.T) {
	_, err := New(t.Context(), "s3storage", nil)
	if err == nil || !strings.Contains(err.Error(), "did you mean S3Storage?") {
		t.Fatalf("err = %v, want a case suggestion", err)
	}
}

func TestKnownNames(t *testing.T) {
	names := KnownNames()
	if len(names) != 13 || names[0] != "LocalStorage" {
		t.Fatalf("KnownNames() = %v", names)
	}
	for _, n := range names {
		if !Known(n) {
			t.Errorf("Known(%q) = false", n)
		}
	}
}
