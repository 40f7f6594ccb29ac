package openshift

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	kubefake "k8s.io/client-go/kubernetes/fake"
	"k8s.io/client-go/kubernetes/scheme"
	corev1client "k8s.io/client-go/kubernetes/typed/core/v1"
	"k8s.io/client-go/rest"
	fakerest "k8s.io/client-go/rest/fake"

	"github.com/quayctl/quayctl/collectors"
	"github.com/quayctl/quayctl/collectors/testsuite"
)

// The contract every collectors.Deployment passes, run against the
// fake-backed OpenShift deployment. The fakes get just enough behaviour for
// it: a log endpoint that honours the PodLogOptions sent over the wire
// (tailLines, sinceSeconds, previous, follow), an executor with a tiny
// filesystem and a few commands, and a PodMetrics sample.
func TestContract(t *testing.T) {
	kube := kubefake.NewClientset(clusterPods()...)
	logs := &fakeLogs{
		t: t,
		lines: map[string][]logLine{
			"registry-quay-app-6d9c7f8b4-ok/quay-app": {
				{t0.Add(-3 * time.Hour), "quay stdout | 2024-05-01 07:00:00,000 [1] [INFO] [app] Starting Quay"},
				{t0.Add(-2 * time.Hour), "gunicorn-web stdout | 2024-05-01 08:00:00,000 [205] [DEBUG] [app] Starting request: urn:request:0d88de25"},
				{t0.Add(-time.Hour), "nginx stdout | 10.0.0.1 - - [01/May/2024:09:00:00 +0000] \"GET /health/instance HTTP/1.1\" 200"},
			},
		},
	}
	e := &testEnv{kube: kube, dyn: newDyn(mustObj(t, registryYAML)), exec: &recordingExecutor{}}
	if err := e.dyn.Tracker().Create(PodMetricsGVR, mustObj(t, quayPodMetrics), testNS); err != nil {
		t.Fatal(err)
	}
	files := map[string]string{
		"/conf/stack/config.yaml": "SERVER_HOSTNAME: quay.example.com\nDATABASE_SECRET_KEY: <redacted in the fixture>\n",
	}
	e.exec.respond = func(req ExecRequest) (string, string, int, error) {
		switch argv := req.Command; {
		case len(argv) == 2 && argv[0] == "cat":
			if c, ok := files[argv[1]]; ok {
				return c, "", 0, nil
			}
			return "", "cat: " + argv[1] + ": No such file or directory\n", 1, nil
		case argv[0] == "echo":
			return strings.Join(argv[1:], " ") + "\n", "", 0, nil
		case len(argv) == 3 && argv[0] == "sh" && argv[1] == "-c" && strings.HasPrefix(argv[2], "exit "):
			var code int
			fmt.Sscanf(argv[2], "exit %d", &code)
			return "", "", code, nil
		}
		return "", "sh: " + req.Command[0] + ": command not found\n", 127, nil
	}
	d, err := NewFromClients(&logClientset{Clientset: kube, logs: logs}, e.dyn, e.exec, testNS, "")
	if err != nil {
		t.Fatal(err)
	}
	testsuite.Run(t, testsuite.Fixture{
		Deployment: d,
		Kind:       "openshift",
		Components: map[string]string{
			"quay":             "running",
			"database":         "running",
			"redis":            "running",
			"clair":            "ImagePullBackOff",
			"mirror":           "running",
			"operator":         "running",
			"quay-app-upgrade": "Succeeded",
		},
		LogComponent:   "quay",
		LogLine:        "Starting request: urn:request:0d88de25",
		LogFollow:      true,
		FileComponent:  "quay",
		FilePath:       "/conf/stack/config.yaml",
		FileContent:    []byte(files["/conf/stack/config.yaml"]),
		ExecComponent:  "quay",
		Exec:           []testsuite.ExecCase{{Argv: []string{"echo", "quayctl"}, Stdout: "quayctl"}, {Argv: []string{"sh", "-c", "exit 3"}, ExitCode: 3}},
		StatsComponent: "quay",
		Stopped:        "clair",
		Secrets:        []string{"s3cret", "hunter2"},
		Timeout:        10 * time.Second,
	})
}

type logLine struct {
	at   time.Time
	text string
}

// fakeLogs serves pod logs keyed "pod/container".
type fakeLogs struct {
	t     *testing.T
	lines map[string][]logLine
}

func (f *fakeLogs) serve(ns, pod string, req *http.Request) (*http.Response, error) {
	// The query string as the API server reads it.
	q := req.URL.Query()
	o := corev1.PodLogOptions{Container: q.Get("container"), Previous: q.Get("previous") == "true", Follow: q.Get("follow") == "true"}
	for key, dst := range map[string]**int64{"tailLines": &o.TailLines, "sinceSeconds": &o.SinceSeconds} {
		if v := q.Get(key); v != "" {
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil {
				return nil, err
			}
			*dst = &n
		}
	}
	key := pod + "/" + o.Container
	if o.Previous {
		key += "/previous"
	}
	lines, ok := f.lines[key]
	if !ok && o.Previous {
		// What the kubelet answers for a container that never restarted.
		return statusResponse(http.StatusBadRequest, metav1.StatusReasonBadRequest,
			fmt.Sprintf("previous terminated container %q in pod %q not found", o.Container, pod)), nil
	}
	if !ok {
		return statusResponse(http.StatusNotFound, metav1.StatusReasonNotFound, fmt.Sprintf("pods %q not found", pod)), nil
	}
	if o.SinceSeconds != nil {
		cut := t0.Add(-time.Duration(*o.SinceSeconds) * time.Second)
		var kept []logLine
		for _, l := range lines {
			if !l.at.Before(cut) {
				kept = append(kept, l)
			}
		}
		lines = kept
	}
	if o.TailLines != nil && int(*o.TailLines) < len(lines) {
		lines = lines[len(lines)-int(*o.TailLines):]
	}
	var b strings.Builder
	for _, l := range lines {
		b.WriteString(l.text + "\n")
	}
	var body io.ReadCloser = io.NopCloser(strings.NewReader(b.String()))
	if o.Follow {
		body = &followBody{r: strings.NewReader(b.String()), done: req.Context().Done()}
	}
	return &http.Response{StatusCode: http.StatusOK, Header: http.Header{"Content-Type": {"text/plain"}}, Body: body}, nil
}

func statusResponse(code int, reason metav1.StatusReason, msg string) *http.Response {
	st := metav1.Status{TypeMeta: metav1.TypeMeta{Kind: "Status", APIVersion: "v1"}, Status: metav1.StatusFailure, Code: int32(code), Reason: reason, Message: msg}
	b, _ := json.Marshal(st)
	return &http.Response{StatusCode: code, Header: http.Header{"Content-Type": {"application/json"}}, Body: io.NopCloser(bytes.NewReader(b))}
}

// followBody returns the log, then blocks until the request ends.
type followBody struct {
	r    io.Reader
	done <-chan struct{}
}

func (b *followBody) Read(p []byte) (int, error) {
	if n, err := b.r.Read(p); err != io.EOF {
		return n, err
	}
	<-b.done
	return 0, io.ErrUnexpectedEOF
}

func (b *followBody) Close() error { return nil }

// logClientset is the fake clientset with a real-ish log endpoint.
type logClientset struct {
	*kubefake.Clientset
	logs *fakeLogs
}

var _ kubernetes.Interface = (*logClientset)(nil)

func (c *logClientset) CoreV1() corev1client.CoreV1Interface {
	return logCore{CoreV1Interface: c.Clientset.CoreV1(), logs: c.logs}
}

type logCore struct {
	corev1client.CoreV1Interface
	logs *fakeLogs
}

func (c logCore) Pods(ns string) corev1client.PodInterface {
	return logPods{PodInterface: c.CoreV1Interface.Pods(ns), ns: ns, logs: c.logs}
}

type logPods struct {
	corev1client.PodInterface
	ns   string
	logs *fakeLogs
}

func (p logPods) GetLogs(name string, opts *corev1.PodLogOptions) *rest.Request {
	c := &fakerest.RESTClient{
		Client: fakerest.CreateHTTPClient(func(req *http.Request) (*http.Response, error) {
			return p.logs.serve(p.ns, name, req)
		}),
		NegotiatedSerializer: scheme.Codecs.WithoutConversion(),
		GroupVersion:         corev1.SchemeGroupVersion,
		VersionedAPIPath:     fmt.Sprintf("/api/v1/namespaces/%s/pods/%s/log", p.ns, name),
	}
	return c.Request().VersionedParams(opts, scheme.ParameterCodec)
}

// Over the wire: a --previous with no previous instance, and the query
// string the options become.
func TestLogsOverTheWire(t *testing.T) {
	kube := kubefake.NewClientset(clusterPods()...)
	logs := &fakeLogs{t: t, lines: map[string][]logLine{
		"registry-quay-database-5f7d9c6b8-db/postgres":          {{t0, "LOG:  database system is ready to accept connections"}},
		"registry-quay-database-5f7d9c6b8-db/postgres/previous": {{t0.Add(-11 * time.Minute), "LOG:  server process (PID 42) was terminated by signal 9: Killed"}},
	}}
	d, err := NewFromClients(&logClientset{Clientset: kube, logs: logs}, newDyn(mustObj(t, registryYAML)), nil, testNS, "")
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	if err := d.Logs(t.Context(), "database", collectors.LogOptions{Previous: true}, &b); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(b.String(), "terminated by signal 9") {
		t.Errorf("previous log = %q", b.String())
	}
	err = d.Logs(t.Context(), "redis", collectors.LogOptions{Previous: true}, io.Discard)
	if !errors.Is(err, fs.ErrNotExist) || !apierrors.IsBadRequest(err) || !strings.Contains(err.Error(), "drop --previous") {
		t.Errorf("previous of a container that never restarted: %v", err)
	}
}
