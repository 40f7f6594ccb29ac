package checks

import (
	"strings"
	"testing"

	"github.com/quayctl/quayctl/diag"
)

const validQuayConfig = `SERVER_HOSTNAME: quay.example.com
PREFERRED_URL_SCHEME: http
DB_URI: postgresql://quay:<redacted>@db:5432/quay
AUTHENTICATION_TYPE: Database
SECRET_KEY: <redacted>
DATABASE_SECRET_KEY: <redacted>
SETUP_COMPLETE: true
TESTING: false
DISTRIBUTED_STORAGE_CONFIG:
  default:
    - LocalStorage
    - storage_path: /datastorage/registry
DISTRIBUTED_STORAGE_PREFERENCE: [default]
DISTRIBUTED_STORAGE_DEFAULT_LOCATIONS: [default]
BUILDLOGS_REDIS: {host: redis, port: 6379}
USER_EVENTS_REDIS: {host: redis, port: 6379}
TAG_EXPIRATION_OPTIONS: [2w]
DEFAULT_TAG_EXPIRATION: 2w
`

func TestConfigCheck(t *testing.T) {
	c := configChecks[0]
	t.Run("valid", func(t *testing.T) {
		runCheck(t, c, diag.MapFacts{diag.FactConfig: []byte(validQuayConfig),
			diag.FactConfigSource: []byte(`{"source":"/conf/stack/config.yaml in the quay component"}`)},
			want{diag.OK, "config.validation", "passes Quay's rules"})
	})
	t.Run("problems", func(t *testing.T) {
		bad := strings.Replace(validQuayConfig, "DISTRIBUTED_STORAGE_PREFERENCE: [default]", "DISTRIBUTED_STORAGE_PREFERENCE: [us-east]", 1)
		bad = strings.Replace(bad, "BUILDLOGS_REDIS: {host: redis, port: 6379}\n", "FEATURE_PROXY_STROAGE: true\n", 1)
		fs := runCheck(t, c, diag.MapFacts{diag.FactConfig: []byte(bad)},
			want{diag.Fail, "", `DISTRIBUTED_STORAGE_PREFERENCE "us-east" is not a location`},
			want{diag.Fail, "", "BUILDLOGS_REDIS is required by Quay"},
			want{diag.Warn, "", "FEATURE_PROXY_STROAGE not a Quay configuration key"})
		if !strings.Contains(fs[2].Remedy, "FEATURE_PROXY_STORAGE") {
			t.Errorf("remedy: %s", fs[2].Remedy)
		}
	})
	t.Run("unreadable", func(t *testing.T) {
		runCheck(t, c, diag.MapFacts{diag.FactConfig + ".error": []byte("cannot read /conf/stack/config.yaml: permission denied")},
			want{diag.Warn, "", "could not gather config/config.yaml"})
	})
}
