package config

import "time"

// QuotaTotalDelay is how long the quota backfill worker waits after start
// (QUOTA_TOTAL_DELAY_SECONDS, Quay's 1800 s when unset).
func (c *Config) QuotaTotalDelay() time.Duration {
	return time.Duration(c.QuotaTotalDelaySeconds) * time.Second
}

// validateQuota checks the quota keys' values (FEATURE_EDIT_QUOTA and
// FEATURE_VERIFY_QUOTA default to true in load.go, as in Quay).
func (c *Config) validateQuota(ps *problems) {
	if c.DefaultSystemRejectQuotaBytes < 0 {
		ps.errorf("DEFAULT_SYSTEM_REJECT_QUOTA_BYTES", "use a number of bytes, such as 107374182400 (100 GiB), or 0 for no default limit",
			"is %d, which is negative", c.DefaultSystemRejectQuotaBytes)
	}
	if c.QuotaTotalDelaySeconds < 0 {
		ps.errorf("QUOTA_TOTAL_DELAY_SECONDS", "use a number of seconds, such as 1800 (Quay's default)", "is %d, which is negative", c.QuotaTotalDelaySeconds)
	}
}
