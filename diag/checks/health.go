package checks

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"strings"

	"github.com/quayctl/quayctl/diag"
)

var healthEndpoints = diag.Check{ID: "health.endpoints", Area: AreaHealth, Title: "Quay's /health/instance, /health/endtoend and /health/warning", Doc: doc("health")}

var healthChecks = []diag.Check{healthEndpoints.With(checkHealth)}

// healthRemedies say where to look when a service of Quay's health answer is
// false (reference: health/services.py).
var healthRemedies = map[string]string{
	"database":           "the database is unreachable or failing: quayctl diagnose --only database",
	"redis":              "Redis (BUILDLOGS_REDIS) is unreachable: check the redis component (quayctl status, quayctl logs redis) and BUILDLOGS_REDIS in config.yaml",
	"storage":            "a preferred storage location failed its write/read: quayctl storage probe",
	"preferred_storage":  "the preferred storage location failed: quayctl storage probe",
	"disk_space":         "the quay container's disk is (nearly) full: free space on its volume, or grow it",
	"disk_space_warning": "the quay container's disk has less than 10% free: free space before it fills",
	"auth":               "the authentication backend (LDAP, OIDC, Keystone …) does not answer: check AUTHENTICATION_TYPE's settings and that its server is reachable from quay",
	"service_key":        "the instance's service key is missing, unapproved or expired: restart the quay component to rotate it, then check the servicekey table",
	"registry_gunicorn":  "the registry worker of quay does not answer its internal ping: quayctl logs quay (look for gunicorn errors)",
	"web_gunicorn":       "the web worker of quay does not answer its internal ping: quayctl logs quay (look for gunicorn errors)",
}

type healthBody struct {
	Data struct {
		Services map[string]bool `json:"services"`
	} `json:"data"`
	StatusCode *int `json:"status_code"`
}

func checkHealth(ctx context.Context, f diag.Facts) []diag.Finding {
	c := healthEndpoints
	var out []diag.Finding
	for _, ep := range diag.HealthEndpoints {
		name := diag.FactHealth(ep)
		a, err := diag.GetJSON[diag.HealthAnswer](ctx, f, name)
		if err != nil {
			fe := c.FactError(name, err)
			fe.Subject = ep
			if fe.Severity == diag.Warn {
				fe.Remedy = "pass the registry's URL with --url, or check it by hand: curl -k URL/health/" + ep
			}
			out = append(out, fe)
			continue
		}
		out = append(out, healthFinding(c, ep, a))
	}
	return out
}

func healthFinding(c diag.Check, ep string, a diag.HealthAnswer) diag.Finding {
	path := "/health/" + ep
	fd := c.Finding(diag.OK, "")
	fd.Subject = ep
	if a.Error != "" {
		fd.Severity = diag.Fail
		fd.Title = fmt.Sprintf("%s: cannot reach %s", path, a.URL)
		fd.Evidence = []string{a.Error}
		fd.Remedy = "check that the quay component is running (quayctl status) and that the URL is reachable from here (route, port mapping); pass --url if it is not SERVER_HOSTNAME"
		return fd
	}
	var body healthBody
	if err := json.Unmarshal([]byte(a.Body), &body); err != nil || body.StatusCode == nil {
		fd.Severity = diag.Fail
		fd.Title = fmt.Sprintf("%s did not answer Quay's health JSON (HTTP %d)", path, a.HTTPStatus)
		fd.Evidence = []string{"answer starts: " + truncate(a.Body, 200)}
		fd.Remedy = "check that the URL is the registry itself, not a proxy or route to something else (pass --url)"
		return fd
	}
	var bad []string
	names := make([]string, 0, len(body.Data.Services))
	for n, ok := range body.Data.Services {
		names = append(names, n)
		if !ok {
			bad = append(bad, n)
		}
	}
	sort.Strings(names)
	sort.Strings(bad)
	for _, n := range names {
		fd.Evidence = append(fd.Evidence, fmt.Sprintf("%s: %s", n, map[bool]string{true: "healthy", false: "UNHEALTHY"}[body.Data.Services[n]]))
	}
	fd.Evidence = append(fd.Evidence, fmt.Sprintf("HTTP %d, status_code %d, %.0f ms", a.HTTPStatus, *body.StatusCode, a.ElapsedMS))
	if len(bad) == 0 && a.HTTPStatus == 200 && *body.StatusCode == 200 {
		fd.Title = fmt.Sprintf("%s healthy (%d services)", path, len(names))
		return fd
	}
	fd.Severity = diag.Fail
	if ep == "warning" {
		fd.Severity = diag.Warn
	}
	if len(bad) == 0 {
		fd.Title = fmt.Sprintf("%s answered HTTP %d", path, a.HTTPStatus)
		fd.Remedy = "read the quay component's logs around this time: quayctl logs quay --since 10m"
		return fd
	}
	fd.Title = fmt.Sprintf("%s unhealthy: %s", path, strings.Join(bad, ", "))
	var rem []string
	for _, n := range bad {
		if r, ok := healthRemedies[n]; ok {
			rem = append(rem, n+": "+r)
		} else {
			rem = append(rem, n+": read quayctl logs quay")
		}
	}
	fd.Remedy = strings.Join(rem, "; ")
	return fd
}

func truncate(s string, n int) string {
	s = strings.TrimSpace(s)
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
