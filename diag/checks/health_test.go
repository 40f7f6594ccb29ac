package checks

import (
	"fmt"
	"strings"
	"testing"

	"github.com/quayctl/quayctl/diag"
)

func healthFacts(instance, endtoend, warning string) diag.MapFacts {
	m := diag.MapFacts{}
	for ep, body := range map[string]string{"instance": instance, "endtoend": endtoend, "warning": warning} {
		if body != "" {
			m[diag.FactHealth(ep)] = []byte(body)
		}
	}
	return m
}

func answer(status int, body string) string {
	return fmt.Sprintf(`{"url":"http://q/health","http_status":%d,"elapsed_ms":4,"body":%q}`, status, body)
}

func TestHealthCheck(t *testing.T) {
	okInstance := answer(200, `{"data":{"services":{"database":true,"disk_space":true,"auth":true}},"status_code":200}`)
	okE2E := answer(200, `{"data":{"services":{"database":true,"redis":true,"storage":true,"auth":true}},"status_code":200}`)
	okWarn := answer(200, `{"data":{"services":{"disk_space_warning":true}},"status_code":200}`)
	c := healthChecks[0]
	t.Run("healthy", func(t *testing.T) {
		runCheck(t, c, healthFacts(okInstance, okE2E, okWarn),
			want{diag.OK, "health.endpoints", "/health/instance healthy (3 services)"},
			want{diag.OK, "", "/health/endtoend healthy (4 services)"},
			want{diag.OK, "", "/health/warning healthy"})
	})
	t.Run("unhealthy services named", func(t *testing.T) {
		bad := answer(503, `{"data":{"services":{"database":false,"redis":true,"storage":false,"auth":true}},"status_code":503}`)
		fs := runCheck(t, c, healthFacts(okInstance, bad, okWarn),
			want{diag.OK, "", "/health/instance"},
			want{diag.Fail, "", "/health/endtoend unhealthy: database, storage"},
			want{diag.OK, "", "/health/warning"})
		if !strings.Contains(fs[1].Remedy, "quayctl diagnose --only database") || !strings.Contains(fs[1].Remedy, "quayctl storage probe") {
			t.Errorf("remedy: %s", fs[1].Remedy)
		}
		if !strings.Contains(evidence(fs[1]), "storage: UNHEALTHY") {
			t.Errorf("evidence: %s", evidence(fs[1]))
		}
	})
	t.Run("disk warning is a warning", func(t *testing.T) {
		low := answer(503, `{"data":{"services":{"disk_space_warning":false}},"status_code":503}`)
		runCheck(t, c, healthFacts(okInstance, okE2E, low),
			want{diag.OK, "", ""}, want{diag.OK, "", ""}, want{diag.Warn, "", "/health/warning unhealthy: disk_space_warning"})
	})
	t.Run("unreachable and not JSON", func(t *testing.T) {
		down := `{"url":"http://q/health/instance","elapsed_ms":1,"error":"dial tcp 127.0.0.1:8080: connect: connection refused"}`
		html := answer(200, "<html>Application is not available</html>")
		fs := runCheck(t, c, healthFacts(down, html, ""),
			want{diag.Fail, "", "/health/instance: cannot reach http://q/health/instance"},
			want{diag.Fail, "", "/health/endtoend did not answer Quay's health JSON (HTTP 200)"},
			want{diag.Warn, "", "could not gather health/warning.json"})
		if !strings.Contains(evidence(fs[0]), "connection refused") {
			t.Errorf("evidence: %s", evidence(fs[0]))
		}
	})
}
