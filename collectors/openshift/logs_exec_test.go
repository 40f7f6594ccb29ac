package openshift

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"reflect"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	k8stesting "k8s.io/client-go/testing"

	"github.com/quayctl/quayctl/collectors"
)

func i64(v int64) *int64 { return &v }

func TestLogs(t *testing.T) {
	tests := []struct {
		name      string
		component string
		opts      collectors.LogOptions
		wantNS    string
		want      corev1.PodLogOptions
	}{
		{
			name: "default: the quay container", component: "quay",
			wantNS: testNS, want: corev1.PodLogOptions{Container: "quay-app"},
		},
		{
			name: "oc logs --previous -c", component: "database",
			opts:   collectors.LogOptions{Previous: true, Container: "postgres"},
			wantNS: testNS, want: corev1.PodLogOptions{Container: "postgres", Previous: true},
		},
		{
			name: "tail and since", component: "quay",
			opts:   collectors.LogOptions{Tail: 200, Since: 90 * time.Second},
			wantNS: testNS, want: corev1.PodLogOptions{Container: "quay-app", TailLines: i64(200), SinceSeconds: i64(90)},
		},
		{
			name: "since rounds up to a whole second", component: "redis",
			opts:   collectors.LogOptions{Since: 1500 * time.Millisecond},
			wantNS: testNS, want: corev1.PodLogOptions{Container: "redis-master", SinceSeconds: i64(2)},
		},
		{
			name: "follow", component: "mirror",
			opts:   collectors.LogOptions{Follow: true},
			wantNS: testNS, want: corev1.PodLogOptions{Container: "quay-mirror", Follow: true},
		},
		{
			name: "previous of the crash-looping pod by name", component: "registry-quay-app-6d9c7f8b4-crash",
			opts:   collectors.LogOptions{Previous: true},
			wantNS: testNS, want: corev1.PodLogOptions{Container: "quay-app", Previous: true},
		},
		{
			name: "a pod that is not running still has logs", component: "clair",
			wantNS: testNS, want: corev1.PodLogOptions{Container: "clair-app"},
		},
		{
			name: "the operator, in its own namespace", component: "operator", opts: collectors.LogOptions{Tail: 50},
			wantNS: DefaultOperatorNamespace, want: corev1.PodLogOptions{Container: "quay-operator", TailLines: i64(50)},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newTestEnv(t, nil)
			e.kube.ClearActions()
			var w bytes.Buffer
			if err := e.d.Logs(t.Context(), tt.component, tt.opts, &w); err != nil {
				t.Fatal(err)
			}
			if w.String() != "fake logs" {
				t.Errorf("w got %q, want the fake clientset's %q", w.String(), "fake logs")
			}
			var got []corev1.PodLogOptions
			for _, a := range e.kube.Actions() {
				if a.GetSubresource() != "log" {
					continue
				}
				ga, ok := a.(k8stesting.GenericAction)
				if !ok {
					t.Fatalf("log action %T", a)
				}
				if a.GetNamespace() != tt.wantNS || a.GetVerb() != "get" || a.GetResource().Resource != "pods" {
					t.Errorf("action %s %s in %s", a.GetVerb(), a.GetResource().Resource, a.GetNamespace())
				}
				got = append(got, *ga.GetValue().(*corev1.PodLogOptions))
			}
			if len(got) != 1 {
				t.Fatalf("got %d log requests, want 1", len(got))
			}
			if !reflect.DeepEqual(got[0], tt.want) {
				t.Errorf("PodLogOptions:\n got %s\nwant %s", fmtPLO(got[0]), fmtPLO(tt.want))
			}
		})
	}
}

func fmtPLO(o corev1.PodLogOptions) string {
	deref := func(p *int64) any {
		if p == nil {
			return nil
		}
		return *p
	}
	return fmt.Sprintf("container=%s previous=%t follow=%t tail=%v since=%v",
		o.Container, o.Previous, o.Follow, deref(o.TailLines), deref(o.SinceSeconds))
}

func TestLogsBadContainer(t *testing.T) {
	e := newTestEnv(t, nil)
	err := e.d.Logs(t.Context(), "quay", collectors.LogOptions{Container: "nginx"}, io.Discard)
	var cnf *ContainerNotFoundError
	if !errors.As(err, &cnf) {
		t.Fatalf("error = %v, want *ContainerNotFoundError", err)
	}
	want := `container "nginx" not found in pod registry-quay-app-6d9c7f8b4-ok (quay); it has: quay-app — pass one of them with -c/--container`
	if err.Error() != want {
		t.Errorf("message:\n got %q\nwant %q", err.Error(), want)
	}
}

func TestExec(t *testing.T) {
	tests := []struct {
		name      string
		component string
		argv      []string
		opts      collectors.ExecOptions
		stdin     string
		exec      canned
		wantCall  execCall
		wantCode  int
		wantOut   string
		wantErr   string
	}{
		{
			name: "psql in the database pod (guide 6.1.1.1)", component: "database",
			argv: []string{"psql", "-U", "postgres", "-d", "quay", "-f", "-"}, stdin: "SELECT 1;\n",
			exec:     canned{stdout: " ?column? \n----------\n        1\n"},
			wantCall: execCall{Namespace: testNS, Pod: "registry-quay-database-5f7d9c6b8-db", Container: "postgres", Command: []string{"psql", "-U", "postgres", "-d", "quay", "-f", "-"}, Stdin: "SELECT 1;\n", HadStdin: true},
			wantOut:  " ?column? \n----------\n        1\n",
		},
		{
			name: "df in the quay pod picks the ready replica (guide 6.1.1.4)", component: "quay",
			argv:     []string{"df", "-ah"},
			exec:     canned{stdout: "Filesystem Size Used Avail Use% Mounted on\n"},
			wantCall: execCall{Namespace: testNS, Pod: "registry-quay-app-6d9c7f8b4-ok", Container: "quay-app", Command: []string{"df", "-ah"}},
			wantOut:  "Filesystem Size Used Avail Use% Mounted on\n",
		},
		{
			name: "non-zero exit code is returned, not an error", component: "redis",
			argv: []string{"redis-cli", "ping"}, opts: collectors.ExecOptions{Container: "redis-master"},
			exec:     canned{stderr: "Could not connect\n", code: 1},
			wantCall: execCall{Namespace: testNS, Pod: "registry-quay-redis-7b8c9d-rd", Container: "redis-master", Command: []string{"redis-cli", "ping"}},
			wantCode: 1,
		},
		{
			name: "executor failure is an error", component: "mirror", argv: []string{"true"},
			exec:     canned{err: errors.New("upgrade request required")},
			wantCall: execCall{Namespace: testNS, Pod: "registry-quay-mirror-7c6d5e-mi", Container: "quay-mirror", Command: []string{"true"}},
			wantErr:  "exec in mirror (pod registry-quay-mirror-7c6d5e-mi, container quay-mirror): upgrade request required",
		},
		{
			name: "pending pod: not running", component: "clair", argv: []string{"true"},
			wantErr: "component clair (registry-clair-app-8c7b6a-cl) is ImagePullBackOff, not running — start it, or read its previous logs with: quayctl logs clair --previous",
		},
		{
			name: "crash-looping container: not running", component: "registry-quay-app-6d9c7f8b4-crash", argv: []string{"true"},
			wantErr: "component quay (registry-quay-app-6d9c7f8b4-crash/quay-app) is CrashLoopBackOff, not running — start it, or read its previous logs with: quayctl logs quay --previous",
		},
		{
			name: "finished job: not running", component: "quay-app-upgrade", argv: []string{"true"},
			wantErr: "component quay-app-upgrade (registry-quay-app-upgrade-xk2p9) is Succeeded, not running — start it, or read its previous logs with: quayctl logs quay-app-upgrade --previous",
		},
		{
			name: "no command", component: "quay", wantErr: "exec: no command given",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newTestEnv(t, nil)
			e.exec.stdout, e.exec.stderr, e.exec.code, e.exec.err = tt.exec.stdout, tt.exec.stderr, tt.exec.code, tt.exec.err
			e.d.exec = e.exec
			var out, errOut bytes.Buffer
			opts := tt.opts
			opts.Stdout, opts.Stderr = &out, &errOut
			if tt.stdin != "" {
				opts.Stdin = strings.NewReader(tt.stdin)
			}
			code, err := e.d.Exec(t.Context(), tt.component, tt.argv, opts)
			if tt.wantErr != "" {
				if err == nil || err.Error() != tt.wantErr {
					t.Fatalf("error:\n got %v\nwant %s", err, tt.wantErr)
				}
				if strings.Contains(tt.wantErr, "not running") {
					var nr *collectors.NotRunningError
					if !errors.As(err, &nr) {
						t.Errorf("error %T is not *collectors.NotRunningError", err)
					}
					if len(e.exec.Calls()) != 0 {
						t.Errorf("nothing should run in a pod that is not running")
					}
				}
				if tt.wantCall.Pod == "" {
					return
				}
			} else if err != nil {
				t.Fatal(err)
			}
			calls := e.exec.Calls()
			if len(calls) != 1 || !reflect.DeepEqual(calls[0], tt.wantCall) {
				t.Fatalf("executor calls:\n got %+v\nwant [%+v]", calls, tt.wantCall)
			}
			if tt.wantErr != "" {
				return
			}
			if code != tt.wantCode {
				t.Errorf("exit code = %d, want %d", code, tt.wantCode)
			}
			if out.String() != tt.wantOut {
				t.Errorf("stdout = %q, want %q", out.String(), tt.wantOut)
			}
			if errOut.String() != tt.exec.stderr {
				t.Errorf("stderr = %q, want %q", errOut.String(), tt.exec.stderr)
			}
		})
	}
}

// canned is what the recording executor answers.
type canned struct {
	stdout, stderr string
	code           int
	err            error
}

func TestReadFile(t *testing.T) {
	const config = "DISTRIBUTED_STORAGE_DEFAULT_LOCATIONS:\n- local_us\nSERVER_HOSTNAME: quay.example.com\n"
	t.Run("config.yaml (guide 4.1: oc exec POD -- cat /conf/stack/config.yaml)", func(t *testing.T) {
		e := newTestEnv(t, nil)
		e.exec.stdout = config
		rc, err := e.d.ReadFile(t.Context(), "quay", "/conf/stack/config.yaml")
		if err != nil {
			t.Fatal(err)
		}
		b, err := io.ReadAll(rc)
		if err != nil {
			t.Fatal(err)
		}
		if err := rc.Close(); err != nil {
			t.Fatal(err)
		}
		if string(b) != config {
			t.Errorf("got %q", b)
		}
		want := []execCall{{Namespace: testNS, Pod: "registry-quay-app-6d9c7f8b4-ok", Container: "quay-app", Command: []string{"cat", "/conf/stack/config.yaml"}}}
		if got := e.exec.Calls(); !reflect.DeepEqual(got, want) {
			t.Errorf("calls:\n got %+v\nwant %+v", got, want)
		}
	})
	t.Run("postgresql.conf (guide 4.2)", func(t *testing.T) {
		e := newTestEnv(t, nil)
		e.exec.stdout = "max_connections = 2000\n"
		rc, err := e.d.ReadFile(t.Context(), "database", "/var/lib/pgsql/data/userdata/postgresql.conf")
		if err != nil {
			t.Fatal(err)
		}
		defer rc.Close()
		b, _ := io.ReadAll(rc)
		if string(b) != "max_connections = 2000\n" {
			t.Errorf("got %q", b)
		}
		if c := e.exec.Calls()[0]; c.Container != "postgres" || !reflect.DeepEqual(c.Command, []string{"cat", "/var/lib/pgsql/data/userdata/postgresql.conf"}) {
			t.Errorf("call %+v", c)
		}
	})
	t.Run("empty file", func(t *testing.T) {
		e := newTestEnv(t, nil)
		rc, err := e.d.ReadFile(t.Context(), "quay", "/empty")
		if err != nil {
			t.Fatal(err)
		}
		b, err := io.ReadAll(rc)
		if err != nil || len(b) != 0 {
			t.Errorf("got %q, %v", b, err)
		}
		rc.Close()
	})
	t.Run("missing file", func(t *testing.T) {
		e := newTestEnv(t, nil)
		e.exec.stderr, e.exec.code = "cat: /conf/stack/nope.yaml: No such file or directory\n", 1
		_, err := e.d.ReadFile(t.Context(), "quay", "/conf/stack/nope.yaml")
		if !errors.Is(err, fs.ErrNotExist) {
			t.Fatalf("error = %v, want fs.ErrNotExist", err)
		}
		if !strings.Contains(err.Error(), "/conf/stack/nope.yaml") {
			t.Errorf("error should name the path: %v", err)
		}
	})
	t.Run("large file streams", func(t *testing.T) {
		e := newTestEnv(t, nil)
		big := strings.Repeat("0123456789abcdef", 1<<16) // 1 MiB
		e.exec.stdout = big
		rc, err := e.d.ReadFile(t.Context(), "quay", "/big")
		if err != nil {
			t.Fatal(err)
		}
		n, err := io.Copy(io.Discard, rc)
		if err != nil || n != int64(len(big)) {
			t.Errorf("read %d bytes, %v", n, err)
		}
		rc.Close()
	})
	t.Run("close early cancels the exec", func(t *testing.T) {
		e := newTestEnv(t, nil)
		e.exec.stdout, e.exec.blockCtx = "first chunk\n", true
		rc, err := e.d.ReadFile(t.Context(), "quay", "/dev/stdin-like")
		if err != nil {
			t.Fatal(err)
		}
		buf := make([]byte, 5)
		if _, err := io.ReadFull(rc, buf); err != nil || string(buf) != "first" {
			t.Fatalf("read %q, %v", buf, err)
		}
		done := make(chan struct{})
		go func() { rc.Close(); close(done) }()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			t.Fatal("Close did not return")
		}
	})
	t.Run("not running", func(t *testing.T) {
		e := newTestEnv(t, nil)
		_, err := e.d.ReadFile(t.Context(), "clair", "/clair/config.yaml")
		var nr *collectors.NotRunningError
		if !errors.As(err, &nr) {
			t.Fatalf("error = %v, want *collectors.NotRunningError", err)
		}
	})
}
