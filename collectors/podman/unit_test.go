package podman

import (
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/containers/podman/v5/libpod/define"

	"github.com/quayctl/quayctl/internal/redact"
)

func TestClassify(t *testing.T) {
	tests := []struct {
		name, image string
		cmd         []string
		want        string
	}{
		{"quay", "registry.redhat.io/quay/quay-rhel8:v3.11.0", nil, "quay"},
		{"my-registry", "quay.io/projectquay/quay:3.11", nil, "quay"},
		{"registry", "localhost/quayctl:dev", []string{"serve"}, "quay"},
		{"mirror-1", "registry.redhat.io/quay/quay-rhel8:v3.11.0", []string{"repomirror"}, "mirror"},
		{"cfg", "registry.redhat.io/quay/quay-rhel8:v3.11.0", []string{"config", "secret"}, "configeditor"},
		{"quay-mirror", "whatever", nil, "mirror"},
		{"postgresql-quay", "registry.redhat.io/rhel8/postgresql-13:1-109", nil, "database"},
		{"/Quay-Postgresql", "x", nil, "database"},
		{"db", "docker.io/library/postgres:15", nil, "database"},
		{"postgresql-clairv4", "registry.redhat.io/rhel8/postgresql-15", nil, "clairpostgres"},
		{"redis", "registry.redhat.io/rhel8/redis-6:1-110", nil, "redis"},
		{"cache", "docker.io/library/redis@sha256:abc", nil, "redis"},
		{"clair", "registry.redhat.io/quay/clair-rhel8:v3.11", nil, "clair"},
		{"scanner", "quay.io/projectquay/clair:4.7", nil, "clair"},
		{"nginx", "docker.io/library/nginx", nil, ""},
		{"quayfoo", "localhost/quayfoo", nil, ""},
	}
	for _, tt := range tests {
		if got := classify(tt.name, tt.image, tt.cmd); got != tt.want {
			t.Errorf("classify(%q, %q, %q) = %q, want %q", tt.name, tt.image, tt.cmd, got, tt.want)
		}
	}
}

func TestRedactEnv(t *testing.T) {
	got := redactEnv([]string{
		"PATH=/usr/bin",
		"POSTGRESQL_PASSWORD=pw1",
		"POSTGRESQL_USER=quay",
		"SECRET_KEY=abc",
		"AWS_SECRET_ACCESS_KEY=xyz",
		"GITHUB_TOKEN=t",
		"DB_URI=postgresql://quay:pw2@db:5432/quay",
		"PROXY=http://user@proxy:3128",
		"URL=http://example.com:8080/x",
		"EMPTY_PASSWORD=",
		"DEBUGLOG=true",
		"NOVALUE",
	})
	want := map[string]string{
		"PATH":                  "/usr/bin",
		"POSTGRESQL_PASSWORD":   redact.Marker,
		"POSTGRESQL_USER":       "quay",
		"SECRET_KEY":            redact.Marker,
		"AWS_SECRET_ACCESS_KEY": redact.Marker,
		"GITHUB_TOKEN":          redact.Marker,
		"DB_URI":                "postgresql://quay:" + redact.Marker + "@db:5432/quay",
		"PROXY":                 "http://user@proxy:3128",
		"URL":                   "http://example.com:8080/x",
		"EMPTY_PASSWORD":        "",
		"DEBUGLOG":              "true",
		"NOVALUE":               "",
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("redactEnv =\n%v\nwant\n%v", got, want)
	}
}

func TestDefaultURL(t *testing.T) {
	env := func(m map[string]string) func(string) string { return func(k string) string { return m[k] } }
	tests := []struct {
		env  map[string]string
		euid int
		want string
	}{
		{map[string]string{"CONTAINER_HOST": "tcp://h:8888"}, 0, "tcp://h:8888"},
		{nil, 0, "unix:///run/podman/podman.sock"},
		{map[string]string{"XDG_RUNTIME_DIR": "/run/user/1000"}, 1000, "unix:///run/user/1000/podman/podman.sock"},
		{nil, 1001, "unix:///run/user/1001/podman/podman.sock"},
	}
	for _, tt := range tests {
		if got := defaultURL(env(tt.env), tt.euid); got != tt.want {
			t.Errorf("defaultURL(%v, %d) = %q, want %q", tt.env, tt.euid, got, tt.want)
		}
	}
}

func TestUnreachableErrorHints(t *testing.T) {
	for u, want := range map[string]string{
		"unix:///run/podman/podman.sock":           "systemctl start podman.socket (or podman system service --time=0 unix:///run/podman/podman.sock)",
		"unix:///run/user/1000/podman/podman.sock": "systemctl --user start podman.socket",
		"tcp://10.0.0.5:8888":                      "podman system service --time=0 tcp://10.0.0.5:8888",
	} {
		err := &UnreachableError{URL: u, Err: errString("connection refused")}
		if !strings.Contains(err.Error(), want) || !strings.HasPrefix(err.Error(), "podman service not reachable at "+u) {
			t.Errorf("%s: %q lacks %q", u, err, want)
		}
	}
}

type errString string

func (e errString) Error() string { return string(e) }

func TestComponentState(t *testing.T) {
	started := time.Date(2024, 5, 1, 10, 0, 0, 0, time.UTC)
	base := func(st define.InspectContainerState) *define.InspectContainerData {
		return &define.InspectContainerData{
			Name: "quay", ImageName: "registry.redhat.io/quay/quay-rhel8:v3.11", RestartCount: 3,
			Config: &define.InspectContainerConfig{Env: []string{"DB_PASSWORD=x", "A=b"}},
			State:  &st,
		}
	}
	tests := []struct {
		name   string
		st     define.InspectContainerState
		state  string
		code   *int
		reason string
		ready  bool
	}{
		{"running", define.InspectContainerState{Status: "running", Running: true, StartedAt: started}, "running", nil, "", true},
		{"oom", define.InspectContainerState{Status: "exited", ExitCode: 137, OOMKilled: true, StartedAt: started, FinishedAt: started.Add(time.Hour)}, "exited", intp(137), "OOMKilled", false},
		{"error", define.InspectContainerState{Status: "exited", ExitCode: 1, FinishedAt: started}, "exited", intp(1), "Error", false},
		{"completed", define.InspectContainerState{Status: "exited", ExitCode: 0, FinishedAt: started}, "exited", intp(0), "Completed", false},
		{"restarted", define.InspectContainerState{Status: "running", Running: true, ExitCode: 2, FinishedAt: started}, "running", intp(2), "Error", true},
		{"created", define.InspectContainerState{Status: "configured"}, "created", nil, "", false},
		{"unhealthy", define.InspectContainerState{Status: "running", Running: true, Health: &define.HealthCheckResults{Status: define.HealthCheckUnhealthy}}, "running", nil, "", false},
	}
	for _, tt := range tests {
		c := component("quay", base(tt.st))
		if c.State != tt.state || c.Reason != tt.reason || c.Ready != tt.ready || !reflect.DeepEqual(c.ExitCode, tt.code) {
			t.Errorf("%s: state %q reason %q ready %v code %v", tt.name, c.State, c.Reason, c.Ready, deref(c.ExitCode))
		}
		if c.Restarts != 3 || c.Instance != "quay" || c.Env["DB_PASSWORD"] != redact.Marker || c.Env["A"] != "b" {
			t.Errorf("%s: %+v", tt.name, c)
		}
	}
}

func intp(n int) *int { return &n }

func deref(p *int) any {
	if p == nil {
		return nil
	}
	return *p
}

func TestPlan(t *testing.T) {
	data := &define.InspectContainerData{
		ID: "0123456789abcdef", Name: "quay", Image: "fedcba9876543210", ImageName: "quay.io/projectquay/quay:3.11",
		Config: &define.InspectContainerConfig{Env: []string{"A=b"}, Labels: map[string]string{"PODMAN_SYSTEMD_UNIT": "quay.service"}},
		State:  &define.InspectContainerState{Running: true},
	}
	p := plan(data, true)
	all := strings.Join(p.Changes, "\n")
	for _, want := range []string{"add env DEBUGLOG=true", "stop container quay (0123456789ab)", "rename it to quay-quayctl-previous", "re-create container quay from quay.io/projectquay/quay:3.11", "systemd unit quay.service"} {
		if !strings.Contains(all, want) {
			t.Errorf("plan lacks %q:\n%s", want, all)
		}
	}
	if p.NoOp || p.Target != "container quay" {
		t.Errorf("plan = %+v", p)
	}
	if p := plan(data, false); !p.NoOp {
		t.Errorf("plan(off) without DEBUGLOG = %+v, want NoOp", p)
	}
	data.Config.Env = []string{"DEBUGLOG=TRUE"}
	if p := plan(data, true); !p.NoOp {
		t.Errorf("plan(on) with DEBUGLOG=TRUE = %+v, want NoOp", p)
	}
	if p := plan(data, false); p.NoOp || !strings.Contains(p.Changes[0], "remove env DEBUGLOG=TRUE") {
		t.Errorf("plan(off) = %+v", p)
	}
	data.HostConfig = &define.InspectContainerHostConfig{AutoRemove: true}
	if err := recreatable(data); err == nil || !strings.Contains(err.Error(), "--rm") {
		t.Errorf("recreatable(--rm container) = %v", err)
	}
}

func TestSpecFromInspect(t *testing.T) {
	data := &define.InspectContainerData{
		ID: "0123456789abcdef0123", Name: "quay", Image: "imageid", ImageName: "quay.io/projectquay/quay:3.11",
		Config: &define.InspectContainerConfig{
			Hostname: "0123456789ab", User: "1001", WorkingDir: "/quay-registry",
			Env: []string{"HOSTNAME=0123456789ab", "A=b"}, Cmd: []string{"registry"}, Entrypoint: []string{"/quay-registry/quay-entrypoint.sh"},
			Labels: map[string]string{"l": "v"}, StopSignal: "SIGTERM", StopTimeout: 10,
			Annotations: map[string]string{"io.kubernetes.cri-o.Created": "x", "custom": "y"},
		},
		HostConfig: &define.InspectContainerHostConfig{
			NetworkMode:   "bridge",
			PortBindings:  map[string][]define.InspectHostPort{"8080/tcp": {{HostPort: "80"}}, "8443/tcp": {{HostIP: "127.0.0.1", HostPort: "443"}}},
			RestartPolicy: &define.InspectRestartPolicy{Name: "on-failure", MaximumRetryCount: 4},
			Memory:        1 << 30, MemorySwap: 2 << 30, MemorySwappiness: -1, PidsLimit: 2048,
			Ulimits:   []define.InspectUlimit{{Name: "RLIMIT_NOFILE", Soft: 1024, Hard: 1024}},
			Tmpfs:     map[string]string{"/run": "rw,size=1m"},
			LogConfig: &define.InspectLogConfig{Type: "k8s-file", Path: "/var/lib/containers/storage/overlay-containers/0123456789abcdef0123/userdata/ctr.log", Size: "10MB"},
		},
		Mounts: []define.InspectMount{
			{Type: "bind", Source: "/srv/quay/config", Destination: "/conf/stack", Options: []string{"rbind"}, RW: false, Propagation: "rprivate", Mode: "Z"},
			{Type: "volume", Name: "quay-storage", Destination: "/datastorage", Options: []string{"nodev", "exec", "nosuid", "rbind"}, RW: true, Propagation: "rprivate"},
		},
		NetworkSettings: &define.InspectNetworkSettings{Networks: map[string]*define.InspectAdditionalNetwork{
			"quay-net": {Aliases: []string{"0123456789ab", "registry"}},
		}},
	}
	s, err := specFromInspect(data, withDebug(data.Config.Env, true))
	if err != nil {
		t.Fatal(err)
	}
	if s.Image != "imageid" || s.RawImageName != "quay.io/projectquay/quay:3.11" || s.Name != "quay" {
		t.Errorf("image/name: %q %q %q", s.Image, s.RawImageName, s.Name)
	}
	if !reflect.DeepEqual(s.Env, map[string]string{"A": "b", "DEBUGLOG": "true"}) {
		t.Errorf("env = %v", s.Env)
	}
	if s.Hostname != "" {
		t.Errorf("hostname %q: the default (short ID) must not be carried", s.Hostname)
	}
	if len(s.PortMappings) != 2 || s.PortMappings[0].ContainerPort != 8080 || s.PortMappings[0].HostPort != 80 ||
		s.PortMappings[1].HostIP != "127.0.0.1" || s.PortMappings[1].HostPort != 443 || s.PortMappings[1].Protocol != "tcp" {
		t.Errorf("ports = %+v", s.PortMappings)
	}
	if n, ok := s.Networks["quay-net"]; !ok || !reflect.DeepEqual(n.Aliases, []string{"registry"}) || s.NetNS.NSMode != "bridge" {
		t.Errorf("networks = %+v, netns %v", s.Networks, s.NetNS)
	}
	if s.RestartPolicy != "on-failure" || s.RestartRetries == nil || *s.RestartRetries != 4 {
		t.Errorf("restart = %q %v", s.RestartPolicy, s.RestartRetries)
	}
	if len(s.Volumes) != 1 || s.Volumes[0].Name != "quay-storage" || !reflect.DeepEqual(s.Volumes[0].Options, []string{"nodev", "exec", "nosuid"}) {
		t.Errorf("volumes = %+v", s.Volumes[0])
	}
	if len(s.Mounts) != 2 || !reflect.DeepEqual(s.Mounts[0].Options, []string{"rbind", "ro", "Z"}) || s.Mounts[1].Type != "tmpfs" || s.Mounts[1].Destination != "/run" {
		t.Errorf("mounts = %+v", s.Mounts)
	}
	if s.ResourceLimits == nil || *s.ResourceLimits.Memory.Limit != 1<<30 || s.ResourceLimits.Memory.Swap != nil || s.ResourceLimits.Pids.Limit != 2048 {
		t.Errorf("resources = %+v", s.ResourceLimits)
	}
	if len(s.Rlimits) != 1 || s.Rlimits[0].Type != "nofile" {
		t.Errorf("rlimits = %+v", s.Rlimits)
	}
	if s.LogConfiguration.Driver != "k8s-file" || s.LogConfiguration.Path != "" || s.LogConfiguration.Size != 10e6 {
		t.Errorf("log = %+v", s.LogConfiguration)
	}
	if s.StopSignal == nil || *s.StopSignal != 15 || *s.StopTimeout != 10 || s.User != "1001" || s.WorkDir != "/quay-registry" {
		t.Errorf("stop/user/workdir: %v %v %q %q", s.StopSignal, s.StopTimeout, s.User, s.WorkDir)
	}
	if !reflect.DeepEqual(s.Annotations, map[string]string{"custom": "y"}) || s.Labels["l"] != "v" {
		t.Errorf("annotations %v labels %v", s.Annotations, s.Labels)
	}
	if err := s.Validate(); err != nil {
		t.Errorf("Validate: %v", err)
	}

	// Host network, host UTS: no hostname; a custom hostname elsewhere is kept.
	data.HostConfig.NetworkMode, data.HostConfig.UTSMode = "host", "host"
	data.Config.Hostname = "myhost"
	s, _ = specFromInspect(data, data.Config.Env)
	if s.NetNS.NSMode != "host" || s.Hostname != "" || len(s.Networks) != 0 {
		t.Errorf("host network: netns %v hostname %q networks %v", s.NetNS, s.Hostname, s.Networks)
	}
	data.HostConfig.NetworkMode, data.HostConfig.UTSMode = "bridge", "private"
	s, _ = specFromInspect(data, data.Config.Env)
	if s.Hostname != "myhost" || s.Env["HOSTNAME"] != "" {
		t.Errorf("custom hostname: %q, env %v", s.Hostname, s.Env)
	}
	if err := s.Validate(); err != nil {
		t.Errorf("Validate: %v", err)
	}
	// In a pod, networking belongs to the pod.
	data.Pod = "podid"
	s, _ = specFromInspect(data, data.Config.Env)
	if s.Pod != "podid" || len(s.PortMappings) != 0 || len(s.Networks) != 0 {
		t.Errorf("pod: %q ports %v networks %v", s.Pod, s.PortMappings, s.Networks)
	}
}

func TestWithDebug(t *testing.T) {
	env := []string{"A=1", "DEBUGLOG=false", "B=2"}
	if got := withDebug(env, true); !reflect.DeepEqual(got, []string{"A=1", "B=2", "DEBUGLOG=true"}) {
		t.Errorf("on: %v", got)
	}
	if got := withDebug(env, false); !reflect.DeepEqual(got, []string{"A=1", "B=2"}) {
		t.Errorf("off: %v", got)
	}
}
