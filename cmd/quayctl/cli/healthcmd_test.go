package cli

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

func TestHealthFlags(t *testing.T) {
	clear := func(o *HealthOptions) { o.IO, o.Deployment, o.HTTPClient = nil, nil, nil }
	def := func(eps ...string) HealthOptions {
		return HealthOptions{Endpoints: eps, Output: "table", Timeout: 30 * time.Second}
	}
	tkFlagTable(t, nil, NewCmdHealth, clear, []tkFlagCase[HealthOptions]{
		{name: "default instance", args: []string{"health"}, want: def("instance")},
		{name: "all", args: []string{"health", "all"}, want: def("instance", "endtoend", "warning")},
		{name: "endtoend with url", args: []string{"health", "endtoend", "--url", "https://q", "--insecure", "--timeout", "5s", "-o", "json"},
			want: HealthOptions{Endpoints: []string{"endtoend"}, Target: TargetOptions{Kind: "direct", URL: "https://q"}, Insecure: true, Timeout: 5 * time.Second, Output: "json"}},
		{name: "unknown endpoint", args: []string{"health", "status"}, wantErr: `unknown health endpoint "status": use instance, endtoend, warning or all`},
		{name: "bad timeout", args: []string{"health", "--timeout", "0s"}, wantErr: "--timeout 0s: use a positive duration such as 30s"},
		{name: "two args", args: []string{"health", "instance", "warning"}, wantErr: "quayctl health takes at most one argument: instance, endtoend, warning or all"},
	})
}

// fakeQuay answers the health endpoints with Quay's JSON.
func fakeQuay(t *testing.T, bodies map[string]string, codes map[string]int) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "" {
			t.Errorf("credentials sent: %s", r.Header.Get("Authorization"))
		}
		ep := strings.TrimPrefix(r.URL.Path, "/health/")
		body, ok := bodies[ep]
		if !ok {
			http.Error(w, "<html>not found</html>", http.StatusNotFound)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		code := codes[ep]
		if code == 0 {
			code = 200
		}
		w.WriteHeader(code)
		_, _ = w.Write([]byte(body))
	}))
	t.Cleanup(srv.Close)
	return srv
}

var healthyBodies = map[string]string{
	"instance": `{"data":{"services":{"auth":true,"database":true,"disk_space":true,"registry_gunicorn":true,"service_key":true,"web_gunicorn":true}},"status_code":200}` + "\n",
	"endtoend": `{"data":{"services":{"auth":true,"database":true,"redis":true,"storage":true}},"status_code":200}` + "\n",
	"warning":  `{"data":{"services":{"disk_space_warning":true}},"status_code":200}` + "\n",
}

func TestHealthRun(t *testing.T) {
	unhealthy := map[string]string{
		"instance": healthyBodies["instance"],
		"endtoend": `{"data":{"services":{"auth":true,"database":true,"redis":false,"storage":true}},"status_code":503}`,
		"warning":  `{"data":{"services":{"disk_space_warning":false}},"status_code":503}`,
	}
	codes := map[string]int{"endtoend": 503, "warning": 503}
	tests := []struct {
		name     string
		bodies   map[string]string
		codes    map[string]int
		eps      []string
		output   string
		tty      bool
		golden   string
		wantCode int
	}{
		{"instance table", healthyBodies, nil, []string{"instance"}, "table", true, "health_instance.tty.golden", 0},
		{"instance piped", healthyBodies, nil, []string{"instance"}, "table", false, "health_instance.txt.golden", 0},
		{"instance json unchanged", healthyBodies, nil, []string{"instance"}, "json", false, "", 0},
		{"all unhealthy table", unhealthy, codes, healthEndpoints, "table", false, "health_all_unhealthy.txt.golden", ExitUnhealthy},
		{"all unhealthy json", unhealthy, codes, healthEndpoints, "json", false, "health_all_unhealthy.json.golden", ExitUnhealthy},
		{"all yaml", healthyBodies, nil, healthEndpoints, "yaml", false, "health_all.yaml.golden", 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := fakeQuay(t, tt.bodies, tt.codes)
			io, out, errOut := tkIO("", tt.tty)
			opts := &HealthOptions{IO: io, Target: TargetOptions{Kind: TargetDirect, URL: srv.URL + "/"}, Endpoints: tt.eps,
				Output: tt.output, Timeout: 5 * time.Second, HTTPClient: healthClient}
			err := healthRun(context.Background(), opts)
			code := 0
			var ce *exitCodeError
			if errors.As(err, &ce) {
				code = ce.code
			} else if err != nil {
				t.Fatal(err)
			}
			if code != tt.wantCode {
				t.Errorf("exit code %d, want %d", code, tt.wantCode)
			}
			if errOut.String() != "" {
				t.Errorf("stderr = %q", errOut.String())
			}
			got := strings.ReplaceAll(out.String(), srv.URL, "http://quay.test")
			if tt.golden == "" {
				if out.String() != tt.bodies["instance"] {
					t.Errorf("json not passed through:\n got %q\nwant %q", out.String(), tt.bodies["instance"])
				}
				return
			}
			golden(t, tt.golden, got)
		})
	}
}

func TestHealthErrors(t *testing.T) {
	srv := fakeQuay(t, map[string]string{"instance": "not json"}, nil)
	run := func(url string) error {
		io, _, _ := tkIO("", false)
		return healthRun(context.Background(), &HealthOptions{IO: io, Target: TargetOptions{Kind: TargetDirect, URL: url},
			Endpoints: []string{"endtoend"}, Output: "table", Timeout: 2 * time.Second, HTTPClient: healthClient})
	}
	err := run(srv.URL)
	if err == nil || !strings.HasPrefix(err.Error(), srv.URL+"/health/endtoend did not answer Quay's health JSON (HTTP 404, text/plain; charset=utf-8, 23 bytes) — check that --url") {
		t.Errorf("404: %v", err)
	}
	io, _, _ := tkIO("", false)
	err = healthRun(context.Background(), &HealthOptions{IO: io, Target: TargetOptions{Kind: TargetDirect, URL: srv.URL},
		Endpoints: []string{"instance"}, Output: "table", Timeout: 2 * time.Second, HTTPClient: healthClient})
	if err == nil || !strings.Contains(err.Error(), "did not answer Quay's health JSON (HTTP 200, application/json, 8 bytes)") {
		t.Errorf("not json: %v", err)
	}
	srv.Close()
	err = run(srv.URL)
	var ue *UserError
	if !errors.As(err, &ue) || !strings.HasPrefix(err.Error(), "cannot reach "+srv.URL+"/health/endtoend: ") || !strings.Contains(err.Error(), "— check --url") {
		t.Errorf("refused: %v", err)
	}
	tls := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = w.Write([]byte(healthyBodies["endtoend"]))
	}))
	defer tls.Close()
	err = run(tls.URL)
	if err == nil || !strings.HasPrefix(err.Error(), "cannot verify the TLS certificate of "+tls.URL) || !strings.Contains(err.Error(), "--insecure") {
		t.Errorf("self-signed: %v", err)
	}
	io, out, _ := tkIO("", false)
	err = healthRun(context.Background(), &HealthOptions{IO: io, Target: TargetOptions{Kind: TargetDirect, URL: tls.URL}, Insecure: true,
		Endpoints: []string{"endtoend"}, Output: "json", Timeout: 2 * time.Second, HTTPClient: healthClient})
	if err != nil || out.String() != healthyBodies["endtoend"] {
		t.Errorf("--insecure: %v %q", err, out.String())
	}
}

// TestHealthURLFromConfig: without --url the URL comes from the quay
// component's config (SERVER_HOSTNAME, PREFERRED_URL_SCHEME), or on
// OpenShift from the QuayRegistry's endpoint.
func TestHealthURLFromConfig(t *testing.T) {
	srv := fakeQuay(t, healthyBodies, nil)
	host := strings.TrimPrefix(srv.URL, "http://")
	d := podmanFake()
	d.files = map[string]string{"quay:/conf/stack/config.yaml": "SERVER_HOSTNAME: " + host + "\nPREFERRED_URL_SCHEME: http\nDB_URI: postgresql://u:SEEDpw@db/q\n"}
	io, out, errOut := tkIO("", false)
	opts := &HealthOptions{IO: io, Deployment: deploymentOf(d), Endpoints: []string{"instance"}, Output: "table", Timeout: 5 * time.Second, HTTPClient: healthClient}
	if err := healthRun(context.Background(), opts); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(out.String(), srv.URL+": healthy\n") {
		t.Errorf("stdout = %s", out)
	}
	if errOut.String() != "quayctl: checking "+srv.URL+" (SERVER_HOSTNAME of /conf/stack/config.yaml in the quay component of podman unix:///run/podman/podman.sock; --url overrides)\n" {
		t.Errorf("stderr = %q", errOut.String())
	}

	o := openshiftFake()
	o.status.RegistryEndpoint = srv.URL
	io, out, _ = tkIO("", false)
	opts = &HealthOptions{IO: io, Deployment: deploymentOf(o), Endpoints: []string{"instance"}, Output: "table", Timeout: 5 * time.Second, HTTPClient: healthClient}
	if err := healthRun(context.Background(), opts); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(out.String(), srv.URL+": healthy\n") {
		t.Errorf("openshift: stdout = %s", out)
	}

	d.files["quay:/conf/stack/config.yaml"] = "DB_URI: x\n"
	io, _, _ = tkIO("", false)
	opts = &HealthOptions{IO: io, Deployment: deploymentOf(d), Endpoints: []string{"instance"}, Output: "table", Timeout: 5 * time.Second, HTTPClient: healthClient}
	err := healthRun(context.Background(), opts)
	if err == nil || err.Error() != "cannot tell the registry's URL: /conf/stack/config.yaml in the quay component of podman unix:///run/podman/podman.sock has no SERVER_HOSTNAME — pass it with --url https://quay.example.com" {
		t.Errorf("no hostname: %v", err)
	}
}
