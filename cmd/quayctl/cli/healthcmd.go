package cli

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/quayctl/quayctl/collectors"
	"github.com/quayctl/quayctl/collectors/direct"
	"github.com/quayctl/quayctl/collectors/gather"
)

// Quay's health endpoints (troubleshooting guide, chapter 5).
var healthEndpoints = []string{"instance", "endtoend", "warning"}

// ExitUnhealthy is health's exit code when a service is unhealthy.
const ExitUnhealthy = 2

// HealthOptions are the flags of `quayctl health`.
type HealthOptions struct {
	IO         *IOStreams
	Target     TargetOptions
	Deployment func(context.Context) (collectors.Deployment, error)
	Endpoints  []string // instance, endtoend, warning
	Output     string
	Insecure   bool
	Timeout    time.Duration
	// HTTPClient returns the client for the health requests (tests may
	// replace it).
	HTTPClient func(insecure bool, timeout time.Duration) *http.Client
}

// healthResult is the stable YAML (and table) schema of `quayctl health`;
// -o json passes Quay's own JSON through instead.
type healthResult struct {
	URL       string           `json:"url"`
	Healthy   bool             `json:"healthy"`
	Endpoints []endpointHealth `json:"endpoints"`
}

type endpointHealth struct {
	Endpoint   string          `json:"endpoint"`
	URL        string          `json:"url"`
	HTTPStatus int             `json:"http_status"`
	StatusCode int             `json:"status_code"`
	Healthy    bool            `json:"healthy"`
	Services   map[string]bool `json:"services"`
	raw        []byte
}

// NewCmdHealth builds `quayctl health`.
func NewCmdHealth(f *Factory, runF func(*HealthOptions) error) *cobra.Command {
	opts := &HealthOptions{IO: f.IO, HTTPClient: healthClient}
	opts.Deployment = f.deploymentFunc(&opts.Target)
	cmd := &cobra.Command{
		Use:   "health [instance|endtoend|warning|all]",
		Short: "Call the registry's health endpoints and show each service",
		Long: `Call Quay's health endpoints (troubleshooting guide, chapter 5) and show
each service as a row:

  instance   /health/instance: this instance — registry_gunicorn, web_gunicorn,
             service_key, disk_space, database, auth (the default)
  endtoend   /health/endtoend: every dependency — database, redis, storage, auth
  warning    /health/warning: disk_space_warning
  all        the three

The registry's URL is --url, else the target's: the QuayRegistry's
status.registryEndpoint on OpenShift, else SERVER_HOSTNAME and
PREFERRED_URL_SCHEME from the quay component's config.yaml (or --config).
-o json prints Quay's JSON unchanged ({"data":{"services":{…}},"status_code":…};
with "all", one object keyed by endpoint).

Exit codes: 0 healthy, 2 a service is unhealthy (HTTP 503), 1 the registry
cannot be reached or answers something other than Quay's health JSON.`,
		Example: `  quayctl health --url https://quay.example.com
  quayctl health endtoend --podman
  quayctl health all --openshift -n quay -o json
  quayctl health --url https://quay.example.com --insecure`,
		Args: targetArgs(func(cmd *cobra.Command, args []string) error {
			if len(args) > 1 {
				return argsError{fmt.Errorf("%s takes at most one argument: instance, endtoend, warning or all", cmd.CommandPath())}
			}
			return nil
		}),
		RunE: func(cmd *cobra.Command, args []string) error {
			t, err := targetFromFlags(cmd.Flags())
			if err != nil {
				return err
			}
			opts.Target = t
			which := "instance"
			if len(args) == 1 {
				which = args[0]
			}
			switch {
			case which == "all":
				opts.Endpoints = healthEndpoints
			case slices.Contains(healthEndpoints, which):
				opts.Endpoints = []string{which}
			default:
				return argsError{fmt.Errorf("unknown health endpoint %q: use instance, endtoend, warning or all", which)}
			}
			if err := checkOutput(opts.Output); err != nil {
				return err
			}
			if opts.Timeout <= 0 {
				return flagError{fmt.Errorf("--timeout %s: use a positive duration such as 30s", opts.Timeout)}
			}
			if runF != nil {
				return runF(opts)
			}
			return healthRun(cmd.Context(), opts)
		},
	}
	addTargetFlags(cmd)
	addOutputFlag(cmd, &opts.Output)
	cmd.Flags().BoolVar(&opts.Insecure, "insecure", false, "do not verify the registry's TLS certificate (self-signed)")
	cmd.Flags().DurationVar(&opts.Timeout, "timeout", 30*time.Second, "time allowed for each endpoint")
	return cmd
}

// healthClient is an HTTP client that never sends credentials.
func healthClient(insecure bool, timeout time.Duration) *http.Client {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	if insecure {
		tr.TLSClientConfig = &tls.Config{InsecureSkipVerify: true} //nolint:gosec // --insecure, asked for
	}
	return &http.Client{Transport: tr, Timeout: timeout}
}

func healthRun(ctx context.Context, opts *HealthOptions) error {
	base, err := healthBaseURL(ctx, opts)
	if err != nil {
		return err
	}
	client := opts.HTTPClient(opts.Insecure, opts.Timeout)
	res := healthResult{URL: base.String(), Healthy: true}
	for _, ep := range opts.Endpoints {
		eh, err := fetchHealth(ctx, client, base, ep)
		if err != nil {
			return err
		}
		res.Healthy = res.Healthy && eh.Healthy
		res.Endpoints = append(res.Endpoints, eh)
	}
	if err := writeHealth(opts.IO.Out, opts.IO.OutTTY, opts.Output, res); err != nil {
		return err
	}
	if !res.Healthy {
		return &exitCodeError{code: ExitUnhealthy}
	}
	return nil
}

// healthBaseURL finds the registry's URL: --url, a direct target's URL,
// the QuayRegistry's endpoint, else the quay component's config.
func healthBaseURL(ctx context.Context, opts *HealthOptions) (*url.URL, error) {
	if opts.Target.URL != "" {
		u, err := direct.ParseURL(opts.Target.URL)
		if err != nil {
			return nil, flagError{err}
		}
		return u, nil
	}
	d, err := opts.Deployment(ctx)
	if err != nil {
		return nil, err
	}
	u, src, err := gather.RegistryURL(ctx, d, "", func() ([]byte, string, error) {
		return readDeploymentConfig(ctx, d, fromAuto, opts.IO.ErrOut)
	})
	var nk *gather.URLNotKnownError
	if errors.As(err, &nk) {
		return nil, &UserError{Msg: "cannot tell the registry's URL", Err: errors.New(nk.Reason), Remedy: "pass it with --url https://quay.example.com"}
	}
	if err != nil {
		return nil, err
	}
	if strings.HasPrefix(src, "SERVER_HOSTNAME") {
		fmt.Fprintf(opts.IO.ErrOut, "quayctl: checking %s (%s; --url overrides)\n", u, src)
	}
	return u, nil
}

func fetchHealth(ctx context.Context, client *http.Client, base *url.URL, ep string) (endpointHealth, error) {
	a, body, err := gather.FetchHealth(ctx, client, base, ep)
	eh := endpointHealth{Endpoint: ep, URL: a.URL}
	if err != nil {
		if errors.Is(err, context.Canceled) || a.HTTPStatus != 0 {
			return eh, err
		}
		return eh, reachError(a.URL, err)
	}
	eh.HTTPStatus, eh.raw = a.HTTPStatus, body
	var doc struct {
		Data struct {
			Services map[string]bool `json:"services"`
		} `json:"data"`
		StatusCode *int `json:"status_code"`
	}
	if err := json.Unmarshal(body, &doc); err != nil || doc.StatusCode == nil {
		return eh, &UserError{
			Msg:    fmt.Sprintf("%s did not answer Quay's health JSON (HTTP %d, %s)", a.URL, a.HTTPStatus, describeBody(a.ContentType, body)),
			Remedy: "check that --url is the registry's base URL (not a route to something else)",
		}
	}
	eh.StatusCode, eh.Services = *doc.StatusCode, doc.Data.Services
	if eh.Services == nil {
		eh.Services = map[string]bool{}
	}
	eh.Healthy = a.HTTPStatus == http.StatusOK && eh.StatusCode == http.StatusOK
	for _, ok := range eh.Services {
		eh.Healthy = eh.Healthy && ok
	}
	return eh, nil
}

func describeBody(ctype string, body []byte) string {
	if ctype == "" {
		ctype = "no content type"
	}
	return fmt.Sprintf("%s, %d bytes", ctype, len(body))
}

// reachError explains a failed request and what to try.
func reachError(u string, err error) error {
	var cert *tls.CertificateVerificationError
	var unknown x509.UnknownAuthorityError
	var host x509.HostnameError
	switch {
	case errors.As(err, &cert), errors.As(err, &unknown), errors.As(err, &host):
		return &UserError{Msg: "cannot verify the TLS certificate of " + u, Err: err,
			Remedy: "trust its CA (SSL_CERT_FILE=/path/to/ca.pem), or pass --insecure for a self-signed certificate"}
	}
	return &UserError{Msg: "cannot reach " + u, Err: err,
		Remedy: "check --url, and that the host resolves and is reachable from here (on OpenShift: the route, or oc port-forward)"}
}

func writeHealth(w io.Writer, tty bool, format string, res healthResult) error {
	if format == OutputJSON {
		return writeHealthJSON(w, res)
	}
	return render(w, format, res, func(w io.Writer) error {
		verdict := "healthy"
		if !res.Healthy {
			verdict = "UNHEALTHY"
		}
		if err := heading(w, tty, res.URL+": "+verdict); err != nil {
			return err
		}
		t := newTable("ENDPOINT", "SERVICE", "HEALTHY")
		t.toneOf = func(col int, v string) tone {
			if col == 2 {
				return stateTone(v)
			}
			return toneNone
		}
		for _, ep := range res.Endpoints {
			names := make([]string, 0, len(ep.Services))
			for n := range ep.Services {
				names = append(names, n)
			}
			sort.Strings(names)
			for _, n := range names {
				t.row(ep.Endpoint, n, fmt.Sprint(ep.Services[n]))
			}
			if len(names) == 0 {
				t.row(ep.Endpoint, "(none reported)", fmt.Sprint(ep.Healthy))
			}
		}
		if err := t.render(w, tty); err != nil {
			return err
		}
		for _, ep := range res.Endpoints {
			if ep.HTTPStatus != http.StatusOK || ep.StatusCode != http.StatusOK {
				if _, err := fmt.Fprintf(w, "%s: HTTP %d, status_code %d\n", ep.URL, ep.HTTPStatus, ep.StatusCode); err != nil {
					return err
				}
			}
		}
		return nil
	})
}

// writeHealthJSON passes Quay's JSON through: one endpoint's body as is,
// several as {"instance": …, "endtoend": …, "warning": …}.
func writeHealthJSON(w io.Writer, res healthResult) error {
	var b bytes.Buffer
	if len(res.Endpoints) == 1 {
		b.Write(res.Endpoints[0].raw)
	} else {
		b.WriteString("{")
		for i, ep := range res.Endpoints {
			if i > 0 {
				b.WriteString(",")
			}
			fmt.Fprintf(&b, "\n  %q: %s", ep.Endpoint, bytes.TrimSpace(ep.raw))
		}
		b.WriteString("\n}")
	}
	if !bytes.HasSuffix(b.Bytes(), []byte("\n")) {
		b.WriteByte('\n')
	}
	_, err := w.Write(b.Bytes())
	return err
}
