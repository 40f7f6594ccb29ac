package podman

import (
	"bytes"
	"context"
	"encoding/json"
	"sort"

	"github.com/quayctl/quayctl/collectors"
	"github.com/quayctl/quayctl/internal/redact"
)

var _ collectors.Inspector = (*Deployment)(nil)

// Inspect is `podman inspect` of the component's container. Its
// environment goes through the project's redaction by name, then the whole
// text through the text rules (passwords in URIs among the arguments,
// tokens, keys).
func (d *Deployment) Inspect(ctx context.Context, component string) ([]byte, error) {
	_, data, err := d.inspect(ctx, component)
	if err != nil {
		return nil, err
	}
	cp := *data
	if cp.Config != nil {
		cfg := *cp.Config
		env := redactEnv(cfg.Env)
		cfg.Env = make([]string, 0, len(env))
		for k, v := range env {
			cfg.Env = append(cfg.Env, k+"="+v)
		}
		sort.Strings(cfg.Env)
		cp.Config = &cfg
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false) // keep <redacted> readable
	enc.SetIndent("", "  ")
	if err := enc.Encode(cp); err != nil {
		return nil, err
	}
	s, _ := redact.String(buf.String())
	return []byte(s), nil
}
