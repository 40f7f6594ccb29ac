package mirror_test

import (
	"context"
	"crypto/tls"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/quayctl/quayctl/internal/testpg"
	"github.com/quayctl/quayctl/internal/testregistry"
	"github.com/quayctl/quayctl/registry/mirror"
)

// fakeHost names the source in the proxy cases: it resolves nowhere, so
// only the test's dialer (the proxy's, and the syncer's for no_proxy)
// reaches it. Go never proxies loopback addresses (neither does skopeo),
// so a proxied source cannot be 127.0.0.1.
const fakeHost = "registry.mirror.test"

func dialMapped(ctx context.Context, network, addr string) (net.Conn, error) {
	if host, port, err := net.SplitHostPort(addr); err == nil && host == fakeHost {
		addr = net.JoinHostPort("127.0.0.1", port)
	}
	return (&net.Dialer{}).DialContext(ctx, network, addr)
}

// forwardProxy is a small HTTP forward proxy (absolute-URI requests and
// CONNECT tunnels) that records what it was asked for.
type forwardProxy struct {
	mu   sync.Mutex
	seen []string
	url  string
}

func newForwardProxy(t *testing.T) *forwardProxy {
	p := &forwardProxy{}
	tr := &http.Transport{DialContext: dialMapped}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodConnect {
			p.record("CONNECT " + r.Host)
			up, err := dialMapped(r.Context(), "tcp", r.Host)
			if err != nil {
				http.Error(w, err.Error(), http.StatusBadGateway)
				return
			}
			conn, rw, err := http.NewResponseController(w).Hijack()
			if err != nil {
				up.Close()
				return
			}
			_, _ = rw.WriteString("HTTP/1.1 200 Connection established\r\n\r\n")
			_ = rw.Flush()
			go func() { _, _ = io.Copy(up, rw); up.Close() }()
			_, _ = io.Copy(conn, up)
			conn.Close()
			return
		}
		p.record(r.Method + " " + r.URL.String())
		out := r.Clone(r.Context())
		out.RequestURI = ""
		resp, err := tr.RoundTrip(out)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		defer resp.Body.Close()
		for k, v := range resp.Header {
			w.Header()[k] = v
		}
		w.WriteHeader(resp.StatusCode)
		_, _ = io.Copy(w, resp.Body)
	}))
	t.Cleanup(srv.Close)
	t.Cleanup(tr.CloseIdleConnections)
	p.url = srv.URL
	return p
}

func (p *forwardProxy) record(s string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.seen = append(p.seen, s)
}

// take returns what the proxy saw since the last call.
func (p *forwardProxy) take() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := p.seen
	p.seen = nil
	return out
}

// tlsFront serves src over TLS with httptest's self-signed certificate
// (valid for 127.0.0.1), passing the Host on and saying X-Forwarded-Proto
// https, so the source's token realm points back at the front.
func tlsFront(t *testing.T, src *testregistry.Registry) *httptest.Server {
	u, _ := url.Parse(src.URL)
	rp := &httputil.ReverseProxy{Rewrite: func(pr *httputil.ProxyRequest) {
		pr.SetURL(u)
		pr.Out.Host = pr.In.Host
		pr.SetXForwarded()
	}}
	srv := httptest.NewTLSServer(rp)
	t.Cleanup(srv.Close)
	return srv
}

// TestMirrorSourceTLSAndProxy syncs from a TLS source (verify_tls on and
// off, trusted and not) and through a forward proxy set in
// external_registry_config.proxy (http_proxy for a plain-HTTP source,
// https_proxy with CONNECT for a TLS one, no_proxy bypassing it, a proxy
// that is down failing the sync).
func TestMirrorSourceTLSAndProxy(t *testing.T) {
	if testing.Short() {
		t.Skip("starts two registries")
	}
	for name, uri := range map[string]func() string{
		"sqlite":     func() string { return "sqlite:///" + filepath.Join(t.TempDir(), "quay.db") },
		"postgresql": func() string { return testpg.NewDatabase(t) },
	} {
		t.Run(name, func(t *testing.T) { testSourceTLSAndProxy(t, uri()) })
	}
}

func testSourceTLSAndProxy(t *testing.T, dstURI string) {
	e := newMirrorEnv(t, dstURI)
	if _, err := e.sp.image("amd64", "v1 layer", "v1"); err != nil {
		t.Fatal(err)
	}
	front := tlsFront(t, e.src)
	tlsPort := front.Listener.Addr().(*net.TCPAddr).Port
	_, srcPort, _ := net.SplitHostPort(e.src.Addr)
	proxy := newForwardProxy(t)

	// The syncer dials fakeHost like the proxy does; it trusts the front's
	// certificate only where a case says so.
	plain := e.syncer(mirror.Options{Transport: &http.Transport{DialContext: dialMapped}})
	trusting := e.syncer(mirror.Options{Transport: &http.Transport{DialContext: dialMapped,
		TLSClientConfig: &tls.Config{RootCAs: front.Client().Transport.(*http.Transport).TLSClientConfig.RootCAs}}})
	e.create(front.Listener.Addr().String()+"/"+srcRepo, []string{"v*"}, map[string]any{
		"external_registry_config": map[string]any{"verify_tls": true}})

	noProxy := map[string]any{"http_proxy": nil, "https_proxy": nil, "no_proxy": nil}
	for i, tc := range []struct {
		name    string
		ref     string
		verify  bool
		proxy   map[string]any
		syncer  *mirror.Syncer
		tag     string   // pushed at the source first, so the sync has work
		status  string   // SUCCESS or FAIL
		reason  []string // in last_error when FAIL
		proxied []string // prefixes of what the proxy must see (nil: nothing)
	}{
		{name: "TLS, verify_tls true, untrusted certificate", ref: front.Listener.Addr().String(), verify: true, proxy: noProxy,
			syncer: plain, status: "FAIL", reason: []string{"x509: certificate signed by unknown authority", "verify_tls to false"}},
		{name: "TLS, verify_tls false", ref: front.Listener.Addr().String(), verify: false, proxy: noProxy,
			syncer: plain, tag: "v2", status: "SUCCESS"},
		{name: "TLS, verify_tls true, trusted certificate", ref: front.Listener.Addr().String(), verify: true, proxy: noProxy,
			syncer: trusting, tag: "v3", status: "SUCCESS"},
		{name: "plain HTTP through http_proxy", ref: fakeHost + ":" + srcPort, verify: false,
			proxy:  map[string]any{"http_proxy": proxy.url, "https_proxy": nil, "no_proxy": nil},
			syncer: plain, tag: "v4", status: "SUCCESS",
			proxied: []string{"GET http://" + fakeHost + ":" + srcPort + "/v2/" + srcRepo + "/tags/list", "GET http://" + fakeHost + ":" + srcPort + "/v2/auth?",
				"GET http://" + fakeHost + ":" + srcPort + "/v2/" + srcRepo + "/manifests/v4", "GET http://" + fakeHost + ":" + srcPort + "/v2/" + srcRepo + "/blobs/"}},
		{name: "TLS through https_proxy (CONNECT)", ref: fakeHost + ":" + strconv.Itoa(tlsPort), verify: false,
			proxy:  map[string]any{"http_proxy": nil, "https_proxy": proxy.url, "no_proxy": nil},
			syncer: plain, tag: "v5", status: "SUCCESS", proxied: []string{"CONNECT " + fakeHost + ":" + strconv.Itoa(tlsPort)}},
		{name: "no_proxy names the source", ref: fakeHost + ":" + srcPort, verify: false,
			proxy:  map[string]any{"http_proxy": proxy.url, "https_proxy": proxy.url, "no_proxy": "localhost," + fakeHost},
			syncer: plain, tag: "v6", status: "SUCCESS"},
		{name: "proxy down", ref: fakeHost + ":" + srcPort, verify: false,
			proxy:  map[string]any{"http_proxy": "http://proxyuser:proxy-secret-1@127.0.0.1:1", "https_proxy": nil, "no_proxy": nil},
			syncer: plain, status: "FAIL", reason: []string{"proxyconnect tcp", "connection refused", "external_registry_config.proxy"}},
	} {
		if tc.tag != "" {
			if _, err := e.sp.image("amd64", tc.tag+" layer", tc.tag); err != nil {
				t.Fatal(err)
			}
		}
		e.update(map[string]any{"external_reference": tc.ref + "/" + srcRepo,
			"external_registry_config": map[string]any{"verify_tls": tc.verify, "proxy": tc.proxy}})
		proxy.take()
		v := e.runOnce(tc.syncer)
		seen := proxy.take()
		reason := toString(v["last_error"])
		t.Logf("case %d %s: %v %q; proxy saw %q", i, tc.name, v["sync_status"], reason, seen)
		if v["sync_status"] != tc.status {
			t.Errorf("case %d %s: status %v (%s), want %s", i, tc.name, v["sync_status"], reason, tc.status)
			continue
		}
		for _, w := range tc.reason {
			if !strings.Contains(reason, w) {
				t.Errorf("case %d %s: last_error %q does not contain %q", i, tc.name, reason, w)
			}
		}
		if strings.Contains(reason, "proxy-secret-1") {
			t.Errorf("case %d %s: the proxy password is in last_error %q", i, tc.name, reason)
		}
		if tc.tag != "" && !slices.Contains(tagsOf(t, e.st, e.repo.ID), tc.tag) {
			t.Errorf("case %d %s: tag %s not mirrored", i, tc.name, tc.tag)
		}
		for _, w := range tc.proxied {
			if !slices.ContainsFunc(seen, func(s string) bool { return strings.HasPrefix(s, w) }) {
				t.Errorf("case %d %s: the proxy did not see %q; it saw %v", i, tc.name, w, seen)
			}
		}
		if tc.proxied == nil && len(seen) > 0 {
			t.Errorf("case %d %s: the proxy was used: %v", i, tc.name, seen)
		}
	}
}
