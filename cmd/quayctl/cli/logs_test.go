package cli

import (
	"bytes"
	"context"
	"errors"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/quayctl/quayctl/collectors"
)

func TestLogsFlags(t *testing.T) {
	clear := func(o *LogsOptions) { o.IO, o.Deployment = nil, nil }
	quay := LogsOptions{Component: "quay"}
	tkFlagTable(t, nil, NewCmdLogs, clear, []tkFlagCase[LogsOptions]{
		{name: "default component", args: []string{"logs"}, want: quay},
		{name: "component and all flags", args: []string{"logs", "database", "--previous", "-c", "postgres", "--since", "10m", "--tail", "200", "-f", "--grep", "ERROR|FATAL", "--podman"},
			want: LogsOptions{Target: TargetOptions{Kind: "podman"}, Component: "database", Container: "postgres", Previous: true, Since: 10 * time.Minute, Tail: 200, Follow: true, Grep: regexp.MustCompile("ERROR|FATAL")}},
		{name: "short flags", args: []string{"logs", "-p", "-f"}, want: LogsOptions{Component: "quay", Previous: true, Follow: true}},
		{name: "tail -1 is all", args: []string{"logs", "--tail", "-1"}, want: quay},
		{name: "bad tail", args: []string{"logs", "--tail", "-5"}, wantErr: "--tail -5: use a number of lines, or -1 for all"},
		{name: "bad since", args: []string{"logs", "--since", "ten"}, wantErr: `invalid argument "ten" for "--since" flag: time: invalid duration "ten"`},
		{name: "negative since", args: []string{"logs", "--since", "-1h"}, wantErr: "--since -1h0m0s: use a positive duration such as 10m or 2h"},
		{name: "bad grep", args: []string{"logs", "--grep", "("}, wantErr: "--grep \"(\" is not a regular expression: error parsing regexp: missing closing ): `(`"},
		{name: "two components", args: []string{"logs", "quay", "redis"}, wantErr: "quayctl logs takes at most one argument: COMPONENT (default quay)"},
	})
}

const quayLog = `gunicorn-web stdout | 2024-03-01 10:00:00,000 [205] [DEBUG] [app] Starting request: urn:request:0d88 (/api/v1/user/) {'X-Forwarded-For': '10.0.0.1', 'Authorization': 'Bearer SEEDbearer0123456789abcdef'}
gunicorn-registry stdout | 2024-03-01 10:00:01,000 [88] [INFO] [data.database] Connecting to postgresql://quay:SEEDdbpass@postgresql-quay:5432/quay
gunicorn-registry stdout | 2024-03-01 10:00:02,000 [88] [ERROR] [data.database] could not connect: password authentication failed
gunicorn-web stdout | 2024-03-01 10:00:03,000 [205] [INFO] [gunicorn.access] 10.0.0.1 - - "GET /health/instance HTTP/1.1" 200 152
`

func logsFake() *fakeDeployment {
	d := podmanFake()
	d.logs = map[string]string{
		"quay":              quayLog,
		"previous:quay":     "nginx stdout | crashed before: OOM\n",
		"database":          "LOG:  database system is ready to accept connections",
		"previous:database": "FATAL:  could not write to file: No space left on device\n",
	}
	return d
}

func TestLogsRun(t *testing.T) {
	tests := []struct {
		name       string
		opts       LogsOptions
		wantOut    string
		wantErrOut string
	}{
		{"redacted", LogsOptions{Component: "quay"}, `gunicorn-web stdout | 2024-03-01 10:00:00,000 [205] [DEBUG] [app] Starting request: urn:request:0d88 (/api/v1/user/) {'X-Forwarded-For': '10.0.0.1', 'Authorization': 'Bearer <redacted>'}
gunicorn-registry stdout | 2024-03-01 10:00:01,000 [88] [INFO] [data.database] Connecting to postgresql://quay:<redacted>@postgresql-quay:5432/quay
gunicorn-registry stdout | 2024-03-01 10:00:02,000 [88] [ERROR] [data.database] could not connect: password authentication failed
gunicorn-web stdout | 2024-03-01 10:00:03,000 [205] [INFO] [gunicorn.access] 10.0.0.1 - - "GET /health/instance HTTP/1.1" 200 152
`, "quayctl: 2 values redacted (authorization-header: 1, uri-password: 1) in the logs of quay\n"},
		{"grep", LogsOptions{Component: "quay", Grep: regexp.MustCompile(`ERROR|postgresql`)},
			"gunicorn-registry stdout | 2024-03-01 10:00:01,000 [88] [INFO] [data.database] Connecting to postgresql://quay:<redacted>@postgresql-quay:5432/quay\ngunicorn-registry stdout | 2024-03-01 10:00:02,000 [88] [ERROR] [data.database] could not connect: password authentication failed\n",
			"quayctl: 2 values redacted (authorization-header: 1, uri-password: 1) in the logs of quay\n"},
		{"grep never matches a secret", LogsOptions{Component: "quay", Grep: regexp.MustCompile(`SEEDdbpass`)}, "",
			"quayctl: 2 values redacted (authorization-header: 1, uri-password: 1) in the logs of quay\n"},
		{"previous", LogsOptions{Component: "quay", Previous: true}, "nginx stdout | crashed before: OOM\n", ""},
		{"last line without newline", LogsOptions{Component: "database"}, "LOG:  database system is ready to accept connections", ""},
		{"grep last line without newline", LogsOptions{Component: "database", Grep: regexp.MustCompile("ready")}, "LOG:  database system is ready to accept connections", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			io, out, errOut := tkIO("", false)
			d := logsFake()
			opts := tt.opts
			opts.IO, opts.Deployment = io, deploymentOf(d)
			if err := logsRun(context.Background(), &opts); err != nil {
				t.Fatal(err)
			}
			if out.String() != tt.wantOut {
				t.Errorf("stdout:\n got %q\nwant %q", out.String(), tt.wantOut)
			}
			if errOut.String() != tt.wantErrOut {
				t.Errorf("stderr:\n got %q\nwant %q", errOut.String(), tt.wantErrOut)
			}
			if len(d.logOpts) != 1 || d.logOpts[0].Previous != tt.opts.Previous {
				t.Errorf("log options passed: %+v", d.logOpts)
			}
		})
	}
}

func TestLogsOptionsPassedThrough(t *testing.T) {
	io, _, _ := tkIO("", false)
	d := logsFake()
	opts := &LogsOptions{IO: io, Deployment: deploymentOf(d), Component: "database", Container: "postgres", Previous: true, Since: time.Hour, Tail: 50}
	if err := logsRun(context.Background(), opts); err != nil {
		t.Fatal(err)
	}
	want := collectors.LogOptions{Container: "postgres", Previous: true, Since: time.Hour, Tail: 50}
	if len(d.logOpts) != 1 || d.logOpts[0] != want {
		t.Errorf("Logs got %+v, want %+v", d.logOpts, want)
	}
}

func TestLogsFollowCancel(t *testing.T) {
	io, out, _ := tkIO("", false)
	ctx, cancel := context.WithCancel(context.Background())
	d := logsFake()
	opts := &LogsOptions{IO: io, Deployment: deploymentOf(d), Component: "quay", Follow: true}
	done := make(chan error, 1)
	go func() { done <- logsRun(ctx, opts) }()
	deadline := time.Now().Add(5 * time.Second)
	for !strings.Contains(out.String(), "GET /health/instance") {
		if time.Now().After(deadline) {
			t.Fatalf("no output while following: %q", out.String())
		}
		time.Sleep(5 * time.Millisecond)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Ctrl-C during --follow: %v, want nil", err)
	}
}

func TestLogsErrors(t *testing.T) {
	io, _, _ := tkIO("", false)
	opts := &LogsOptions{IO: io, Deployment: deploymentOf(logsFake()), Component: "clair"}
	err := logsRun(context.Background(), opts)
	var ue *UserError
	var nf *collectors.ComponentNotFoundError
	if !errors.As(err, &ue) || !errors.As(err, &nf) {
		t.Fatalf("%T %v", err, err)
	}
	if got := err.Error(); got != `cannot read the logs of clair: component "clair" not found (have: database, quay, redis) — check the name, or map it with --component clair=CONTAINER` {
		t.Errorf("error = %s", got)
	}
	// Through the real tree: a direct target has no logs (exit 1, the
	// flags that have them named).
	code, stdout, stderr := tkRun(t, context.Background(), nil, "logs", "--url", "http://127.0.0.1:1")
	if code != ExitError || stdout != "" || !strings.Contains(stderr, "--podman[=URL] (standalone) or --openshift") {
		t.Errorf("exit %d, stderr %s", code, stderr)
	}
}

func TestGrepWriter(t *testing.T) {
	var out bytes.Buffer
	g := newGrepWriter(&out, regexp.MustCompile("keep"))
	g.max = 16
	input := "keep 1\ndrop 2\n" + "keep a very long line that is cut\n" + "drop a very long line that is cut\nkeep last"
	for i := 0; i < len(input); i += 5 {
		if _, err := g.Write([]byte(input[i:min(i+5, len(input))])); err != nil {
			t.Fatal(err)
		}
	}
	if err := g.Close(); err != nil {
		t.Fatal(err)
	}
	want := "keep 1\nkeep a very long line that is cut\nkeep last"
	if out.String() != want {
		t.Errorf("got %q\nwant %q", out.String(), want)
	}
	if cap(g.buf) > 64 {
		t.Errorf("buffer grew to %d with max 16", cap(g.buf))
	}
}
