package podman

import (
	"strings"

	"github.com/quayctl/quayctl/internal/redact"
)

// redactEnv turns a container's KEY=VALUE entries into Component.Env with
// the project's one redaction (internal/redact): secret-looking names
// (POSTGRESQL_PASSWORD, SECRET_KEY, …TOKEN…) lose their values, and
// passwords inside other values (a DB URI) are replaced.
func redactEnv(env []string) map[string]string {
	if len(env) == 0 {
		return nil
	}
	m := make(map[string]string, len(env))
	for _, kv := range env {
		k, v, _ := strings.Cut(kv, "=")
		m[k] = v
	}
	out, _ := redact.Env(m)
	return out
}
