package config

import (
	"slices"
	"strings"
)

// SupportedStorageDrivers are the DISTRIBUTED_STORAGE_CONFIG drivers quayctl
// serve can run. Other Quay drivers are recognised and refused with "not
// supported yet"; extend this list as drivers land in registry/storage.
var SupportedStorageDrivers = []string{"LocalStorage", "S3Storage", "RadosGWStorage", "RHOCSStorage"}

// storageDriverParams lists, for every driver Quay knows, the parameters its
// constructor cannot do without. Optional parameters are not listed.
var storageDriverParams = map[string][]string{
	"LocalStorage":          {"storage_path"},
	"S3Storage":             {"storage_path", "s3_bucket"},
	"RadosGWStorage":        {"hostname", "is_secure", "storage_path", "access_key", "secret_key", "bucket_name"},
	"RHOCSStorage":          {"hostname", "is_secure", "storage_path", "access_key", "secret_key", "bucket_name"},
	"GoogleCloudStorage":    {"storage_path", "access_key", "secret_key", "bucket_name"},
	"AzureStorage":          {"azure_container", "storage_path", "azure_account_name"},
	"SwiftStorage":          {"swift_container", "storage_path", "auth_url", "swift_user", "swift_password"},
	"CloudFrontedS3Storage": {"cloudfront_distribution_domain", "cloudfront_key_id", "cloudfront_privatekey_filename", "storage_path", "s3_bucket", "s3_region"},
	"STSS3Storage":          {"sts_role_arn", "storage_path", "s3_bucket"},
	"IBMCloudStorage":       {"hostname", "storage_path", "access_key", "secret_key", "bucket_name"},
	"CloudFlareStorage":     {"cloudflare_domain", "cloudflare_privatekey_filename", "storage_path", "s3_bucket", "s3_region"},
	"AkamaiS3Storage":       {"akamai_domain", "akamai_shared_secret", "storage_path", "s3_bucket", "s3_region"},
	"MultiCDNStorage":       {"storage_config", "providers", "default_provider", "rules"},
}

// StorageDrivers returns every driver name Quay knows, sorted.
func StorageDrivers() []string {
	names := make([]string, 0, len(storageDriverParams))
	for name := range storageDriverParams {
		names = append(names, name)
	}
	slices.Sort(names)
	return names
}

// StorageDriverSupported reports whether quayctl serve can run driver.
func StorageDriverSupported(driver string) bool {
	return slices.Contains(SupportedStorageDrivers, driver)
}

// missingStorageParams returns the required parameters of driver that are
// absent, null or empty strings in params.
func missingStorageParams(driver string, params map[string]any) []string {
	var missing []string
	for _, p := range storageDriverParams[driver] {
		v, ok := params[p]
		if s, isStr := v.(string); !ok || v == nil || (isStr && strings.TrimSpace(s) == "") {
			missing = append(missing, p)
		}
	}
	return missing
}
