package gather

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"sync"
	"time"

	"github.com/quayctl/quayctl/diag"
)

// MaxHealthBytes bounds a health answer.
const MaxHealthBytes = 1 << 20

// FetchHealth asks base's /health/<endpoint>. A transport failure is
// recorded in the answer's Error (and returned, for callers that stop on
// it); any HTTP answer, even a 503, is a successful fetch.
func FetchHealth(ctx context.Context, client *http.Client, base *url.URL, endpoint string) (diag.HealthAnswer, []byte, error) {
	u := base.JoinPath("health", endpoint)
	a := diag.HealthAnswer{URL: u.String()}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return a, nil, err
	}
	req.Header.Set("Accept", "application/json")
	start := time.Now()
	resp, err := client.Do(req)
	a.ElapsedMS = ms(time.Since(start))
	if err != nil {
		a.Error = err.Error()
		return a, nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, MaxHealthBytes))
	a.HTTPStatus, a.ContentType, a.Body = resp.StatusCode, resp.Header.Get("Content-Type"), string(body)
	if err != nil {
		a.Error = "reading the answer: " + err.Error()
		return a, body, fmt.Errorf("reading %s: %w", u, err)
	}
	return a, body, nil
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// registryURL works the base URL out once.
type registryURL struct {
	once sync.Once
	u    *url.URL
	src  string
	err  error
}

func (g *Gatherer) health(endpoint string) producer {
	return func(ctx context.Context, w io.Writer) error {
		g.url.once.Do(func() {
			g.url.u, g.url.src, g.url.err = RegistryURL(ctx, g.d, g.opts.URL, func() ([]byte, string, error) {
				rc := g.rawConfig(ctx)
				return rc.bytes, rc.source, rc.err
			})
			if g.url.err == nil && g.url.src != "--url" {
				g.opts.Warn(fmt.Sprintf("checking %s (%s; --url overrides)", g.url.u, g.url.src))
			}
		})
		if g.url.err != nil {
			return g.url.err
		}
		a, _, err := FetchHealth(ctx, g.opts.HTTPClient, g.url.u, endpoint)
		if err != nil && errors.Is(err, context.Canceled) {
			return err
		}
		// An unreachable endpoint is a fact (the check names it), not a
		// gathering failure.
		return writeJSON(w, a)
	}
}
