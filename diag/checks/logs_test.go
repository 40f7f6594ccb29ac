package checks

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/quayctl/quayctl/diag"
)

// updateLogsGolden rewrites the golden findings of the broken deployment
// (go test ./diag/checks -run TestBrokenDeploymentGolden -update-logs).
var updateLogsGolden = flag.Bool("update-logs", false, "rewrite diag/checks/testdata golden files of the containers, logs and clair checks")

const logsSampleDir = "testdata/logs"

// logsSampleProblems says what is wrong with the samples of sigs in dir:
// a signature without a sample, a sample its signature does not match, a
// sample another signature matches, a sample without a signature.
func logsSampleProblems(sigs []logsSignature, dir string) []string {
	var problems []string
	known := map[string]bool{}
	for i := range sigs {
		s := &sigs[i]
		known[s.ID+".txt"] = true
		b, err := os.ReadFile(filepath.Join(dir, s.ID+".txt"))
		if err != nil {
			problems = append(problems, fmt.Sprintf("signature %s has no sample: write a real-looking log excerpt to %s/%s.txt (%v)", s.ID, dir, s.ID, err))
			continue
		}
		lines := logsLines(b)
		for j := range sigs {
			o := &sigs[j]
			n := 0
			for _, l := range lines {
				if o.matches(l) {
					n++
				}
			}
			switch {
			case o.ID == s.ID && n == 0:
				problems = append(problems, fmt.Sprintf("sample %s.txt does not match its signature's regexp %q", s.ID, s.Regexp))
			case o.ID != s.ID && n > 0:
				problems = append(problems, fmt.Sprintf("sample %s.txt also matches signature %s (%d lines): tighten one of the regexps or use exclude", s.ID, o.ID, n))
			}
		}
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return append(problems, err.Error())
	}
	for _, e := range entries {
		if !known[e.Name()] {
			problems = append(problems, fmt.Sprintf("%s/%s belongs to no signature in signatures.yaml", dir, e.Name()))
		}
	}
	return problems
}

func TestLogSignatureSamples(t *testing.T) {
	if len(logsSignatures) < 20 {
		t.Fatalf("only %d signatures parsed from signatures.yaml", len(logsSignatures))
	}
	for _, p := range logsSampleProblems(logsSignatures, logsSampleDir) {
		t.Error(p)
	}
}

// A new signature without a sample must fail TestLogSignatureSamples.
func TestLogSignatureNeedsSample(t *testing.T) {
	extra, err := logsParseSignatures([]byte(`
- id: brand-new-signature
  regexp: 'something new happened'
  severity: warn
  title: something new
  remedy: run quayctl logs COMPONENT
  doc: logs-workers
`))
	if err != nil {
		t.Fatal(err)
	}
	sigs := append(slices.Clone(logsSignatures), extra...)
	problems := logsSampleProblems(sigs, logsSampleDir)
	if len(problems) != 1 || !strings.Contains(problems[0], "signature brand-new-signature has no sample") {
		t.Fatalf("problems = %q, want one saying brand-new-signature has no sample", problems)
	}
	// And a sample for a signature that is gone is reported too.
	dir := t.TempDir()
	for _, s := range logsSignatures {
		b, err := os.ReadFile(filepath.Join(logsSampleDir, s.ID+".txt"))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, s.ID+".txt"), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(dir, "removed-signature.txt"), []byte("x\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	problems = logsSampleProblems(logsSignatures, dir)
	if len(problems) != 1 || !strings.Contains(problems[0], "removed-signature.txt belongs to no signature") {
		t.Fatalf("problems = %q", problems)
	}
}

func TestLogSignaturesParse(t *testing.T) {
	const good = `
- id: x-y
  regexp: 'boom'
  severity: fail
  title: boom
  remedy: quayctl logs COMPONENT
  doc: logs-workers
`
	if _, err := logsParseSignatures([]byte(good)); err != nil {
		t.Fatalf("good file: %v", err)
	}
	tests := []struct {
		name, yaml, want string
	}{
		{"bad id", strings.Replace(good, "x-y", "X_Y", 1), "lower-case words"},
		{"duplicate", good + strings.TrimPrefix(good, "\n"), "duplicate id"},
		{"no title", strings.Replace(good, "  title: boom\n", "", 1), "required"},
		{"remedy without command", strings.Replace(good, "quayctl logs COMPONENT", "look at it", 1), "must name a quayctl command"},
		{"bad severity", strings.Replace(good, "severity: fail", "severity: bad", 1), `severity "bad"`},
		{"ok severity", strings.Replace(good, "severity: fail", "severity: ok", 1), `severity "ok"`},
		{"bad regexp", strings.Replace(good, "'boom'", "'(boom'", 1), "regexp"},
		{"bad exclude", strings.Replace(good, "  severity:", "  exclude: '[x'\n  severity:", 1), "exclude"},
		{"unknown field", strings.Replace(good, "  severity:", "  sevrity: warn\n  severity:", 1), "sevrity"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := logsParseSignatures([]byte(tt.yaml))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want it to contain %q", err, tt.want)
			}
		})
	}
	// Every signature is a check of the logs area with its own id and doc.
	ids := map[string]bool{}
	for _, c := range All() {
		if ids[c.ID] {
			t.Errorf("check id %s appears twice", c.ID)
		}
		ids[c.ID] = true
	}
	for _, s := range logsSignatures {
		if !ids["logs."+s.ID] {
			t.Errorf("signature %s has no check logs.%s", s.ID, s.ID)
		}
	}
}

func logsCheck(t *testing.T, id string) diag.Check {
	t.Helper()
	for _, c := range logChecks {
		if c.ID == id {
			return c
		}
	}
	t.Fatalf("no check %s", id)
	return diag.Check{}
}

// logsFacts is a deployment of components (name:state:restarts) with logs.
func logsFacts(components string, logs map[string]string) diag.MapFacts {
	m := diag.MapFacts{}
	var cs []string
	for _, c := range strings.Fields(components) {
		p := strings.Split(c, ":")
		cs = append(cs, fmt.Sprintf(`{"name":%q,"instance":"%s-1","state":%q,"ready":true,"restarts":%s}`, p[0], p[0], p[1], p[2]))
	}
	m[diag.FactComponents] = []byte("[" + strings.Join(cs, ",") + "]")
	for k, v := range logs {
		m[k] = []byte(v)
	}
	return m
}

func sample(t *testing.T, id string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(logsSampleDir, id+".txt"))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

const quietQuayLog = `nginx stdout | 10.88.0.1 () - - [14/May/2024:08:11:58 +0000] "GET /health/instance HTTP/1.1" 200 152 "-" "kube-probe/1.27" (0.041 2135 0.040)
gunicorn-web stdout | 2024-05-14 08:12:00,001 [251] [INFO] [gunicorn.access] 10.88.0.1 - - "GET /api/v1/discovery HTTP/1.1" 200 -
`

func TestLogsScan(t *testing.T) {
	na := "no previous instance: " + diag.ErrNotApplicable.Error()
	tests := []struct {
		name  string
		facts diag.MapFacts
		want  []want
		evid  map[int]string // finding index → evidence substring
	}{
		{
			name: "healthy: one ok per component",
			facts: logsFacts("quay:running:0 database:running:0 redis:running:0", map[string]string{
				"components/quay/logs.txt":                    quietQuayLog,
				"components/quay/logs-previous.txt.error":     na,
				"components/database/logs.txt":                "2024-05-14 10:02:11.431 UTC [1] LOG:  database system is ready to accept connections\n",
				"components/database/logs-previous.txt.error": na,
				"components/redis/logs.txt":                   "",
				"components/redis/logs-previous.txt.error":    na,
			}),
			want: []want{
				{diag.OK, "logs.scan", "quay: no known error signatures in 2 log lines"},
				{diag.OK, "logs.scan", "database: no known error signatures in 1 log line"},
				{diag.OK, "logs.scan", "redis: no known error signatures in 0 log lines"},
			},
			evid: map[int]string{0: "components/quay/logs.txt: 2 lines"},
		},
		{
			name: "a component with matches gets no ok; unreadable logs are findings",
			facts: logsFacts("quay:running:2 database:running:0 clair:running:0", map[string]string{
				"components/quay/logs.txt":                    quietQuayLog,
				"components/quay/logs-previous.txt.error":     "podman: context deadline exceeded",
				"components/database/logs.txt":                sample(t, "db-password-auth-failed"),
				"components/database/logs-previous.txt.error": na,
				"components/clair/logs.txt.error":             "logs of clair: permission denied on pods/log",
				"components/clair/logs-previous.txt.error":    na,
			}),
			want: []want{
				{diag.Info, "logs.scan", "could not gather components/quay/logs-previous.txt"},
				{diag.OK, "logs.scan", "quay: no known error signatures in 2 log lines"},
				{diag.Warn, "logs.scan", "could not gather components/clair/logs.txt: logs of clair: permission denied"},
			},
		},
		{
			name: "direct target: external components and not-applicable logs are skipped",
			facts: logsFacts("quay:external:0 database:external:0", map[string]string{
				"components/quay/logs.txt.error": "logs: " + diag.ErrNotApplicable.Error(),
			}),
		},
		{
			name:  "components.json unreadable: containers.running says so",
			facts: diag.MapFacts{"components.json.error": []byte("podman: connection refused")},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := runCheck(t, logsCheck(t, "logs.scan"), tt.facts, tt.want...)
			for i, s := range tt.evid {
				if !strings.Contains(evidence(got[i]), s) {
					t.Errorf("finding %d evidence = %q, want %q", i, evidence(got[i]), s)
				}
			}
		})
	}
}

func TestLogSignatureChecks(t *testing.T) {
	many := &strings.Builder{}
	for i := range 8 {
		fmt.Fprintf(many, "gunicorn-web stdout | 2024-05-14 18:02:0%d,101 [251] [ERROR] [data.buildlogs] redis.exceptions.ConnectionError: Error 111 connecting to quay-redis:6379. Connection refused.\n", i)
	}
	tests := []struct {
		name  string
		check string
		facts diag.MapFacts
		want  []want
		evid  []string // evidence substrings of the first finding
		not   []string // …and what it must not say
	}{
		{
			name:  "password failure seen by quay and by the database",
			check: "logs.db-password-auth-failed",
			facts: logsFacts("database:running:0 quay:running:0", map[string]string{
				"components/database/logs.txt": sample(t, "db-password-auth-failed"),
				"components/quay/logs.txt":     quietQuayLog + sample(t, "db-password-auth-failed"),
			}),
			want: []want{
				{diag.Fail, "logs.db-password-auth-failed", "database: the database rejected the password (2 log lines)"},
				{diag.Fail, "logs.db-password-auth-failed", "quay: the database rejected the password (2 log lines)"},
			},
			evid: []string{"2 matching lines (2 in components/database/logs.txt) of 4 scanned", `FATAL:  password authentication failed for user "quayuser"`},
		},
		{
			name:  "healthy logs: no findings",
			check: "logs.db-password-auth-failed",
			facts: logsFacts("quay:running:0", map[string]string{"components/quay/logs.txt": quietQuayLog}),
		},
		{
			name:  "more than five matches: the count and the last five",
			check: "logs.redis-unreachable",
			facts: logsFacts("quay:running:0", map[string]string{"components/quay/logs.txt": many.String()}),
			want:  []want{{diag.Fail, "logs.redis-unreachable", "quay: cannot connect to Redis (8 log lines)"}},
			evid:  []string{"8 matching lines (8 in components/quay/logs.txt) of 8 scanned; the last 5:", "18:02:07,101"},
			not:   []string{"18:02:02,101"},
		},
		{
			name:  "previous log: marked, and lines the current log repeats counted once",
			check: "logs.supervisord-fatal",
			facts: logsFacts("quay:running:1", map[string]string{
				"components/quay/logs.txt": sample(t, "supervisord-fatal") +
					"2024-05-14 22:30:06,233 INFO gave up: gunicorn-web entered FATAL state, too many start retries too quickly\n",
				"components/quay/logs-previous.txt": sample(t, "supervisord-fatal") +
					"2024-05-14 20:00:00,000 INFO gave up: securityworker entered FATAL state, too many start retries too quickly\n",
			}),
			want: []want{{diag.Fail, "logs.supervisord-fatal", "quay: a Quay process keeps failing and supervisord gave up on it (FATAL state) (3 log lines)"}},
			evid: []string{"3 matching lines (2 in components/quay/logs.txt, 1 in components/quay/logs-previous.txt) of 6 scanned",
				"[previous] 2024-05-14 20:00:00,000 INFO gave up: securityworker"},
		},
		{
			name:  "signature limited to other components: quay's FATAL lines are not PostgreSQL's",
			check: "logs.postgres-fatal",
			facts: logsFacts("quay:running:0 database:running:0", map[string]string{
				"components/quay/logs.txt":     sample(t, "postgres-fatal"),
				"components/database/logs.txt": sample(t, "postgres-fatal"),
			}),
			want: []want{{diag.Warn, "logs.postgres-fatal", "database: PostgreSQL refused or ended sessions (FATAL) (2 log lines)"}},
			evid: []string{`role "clair" does not exist`, "no pg_hba.conf entry"},
			not:  []string{"starting up"},
		},
		{
			name:  "remedy names the component",
			check: "logs.out-of-memory",
			facts: logsFacts("quay:running:3", map[string]string{"components/quay/logs.txt": sample(t, "out-of-memory")}),
			want:  []want{{diag.Fail, "logs.out-of-memory", "quay: a process ran out of memory (2 log lines)"}},
			evid:  []string{"Perhaps out of memory?"},
		},
		{
			name:  "unreadable logs are left to logs.scan",
			check: "logs.disk-full",
			facts: logsFacts("quay:running:0", map[string]string{"components/quay/logs.txt.error": "timed out"}),
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := runCheck(t, logsCheck(t, tt.check), tt.facts, tt.want...)
			if len(got) == 0 {
				return
			}
			ev := evidence(got[0])
			for _, s := range tt.evid {
				if !strings.Contains(ev, s) {
					t.Errorf("evidence = %q\nwant it to contain %q", ev, s)
				}
			}
			for _, s := range tt.not {
				if strings.Contains(ev, s) {
					t.Errorf("evidence = %q\nmust not contain %q", ev, s)
				}
			}
			if len(got[0].Evidence) > logsMaxEvidence+1 {
				t.Errorf("%d evidence lines, want at most %d", len(got[0].Evidence), logsMaxEvidence+1)
			}
			if strings.Contains(got[0].Remedy, "COMPONENT") || !strings.Contains(got[0].Remedy, "quayctl ") {
				t.Errorf("remedy = %q", got[0].Remedy)
			}
			if got[0].Subject == "" || got[0].Doc == "" {
				t.Errorf("subject %q, doc %q", got[0].Subject, got[0].Doc)
			}
		})
	}
}

func TestLogsShorten(t *testing.T) {
	long := strings.Repeat("é", logsMaxLine) // 2 bytes each
	got := logsShorten(long)
	if !strings.HasSuffix(got, "…") || len(got) > logsMaxLine+len("…") {
		t.Fatalf("len %d: %q…", len(got), got[:20])
	}
	if !utf8Valid(got) {
		t.Fatal("cut inside a rune")
	}
}

func utf8Valid(s string) bool { return strings.ToValidUTF8(s, "\uFFFD") == s }

// loadFactsDir reads a directory laid out as a support bundle (facts by
// name, NAME.error for a fact that failed) into MapFacts.
func loadFactsDir(t *testing.T, dir string) diag.MapFacts {
	t.Helper()
	m := diag.MapFacts{}
	err := filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		m[filepath.ToSlash(rel)] = b
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// TestBrokenDeploymentGolden runs the containers, logs and clair checks
// over one broken podman deployment (testdata/broken/: quay crash-looping
// and OOMKilled, redis stopped, the database refusing quay's password,
// Clair's updaters failing) and compares the findings' JSON with
// testdata/broken.findings.golden.json.
func TestBrokenDeploymentGolden(t *testing.T) {
	old := containersNow
	containersNow = func() time.Time { return time.Date(2024, 5, 14, 12, 0, 0, 0, time.UTC) }
	defer func() { containersNow = old }()
	facts := loadFactsDir(t, "testdata/broken")
	checks := slices.Concat(containerChecks, clairChecks, logChecks)
	fixed := func() time.Time { return time.Date(2024, 5, 14, 12, 0, 0, 0, time.UTC) }
	rep := diag.Run(context.Background(), facts, diag.Target{Kind: "podman", Name: "localhost"}, checks, diag.Options{Now: fixed})
	got, err := json.MarshalIndent(rep, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	got = append(got, '\n')
	const golden = "testdata/broken.findings.golden.json"
	if *updateLogsGolden {
		if err := os.WriteFile(golden, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatalf("%v (run with -update-logs to create it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("findings differ from %s (run with -update-logs and review the diff):\n%s", golden, got)
	}
	// The exit code and the headline findings, independent of wording.
	if rep.ExitCode() != 2 {
		t.Errorf("exit code %d, want 2", rep.ExitCode())
	}
	for _, id := range []string{"containers.running", "containers.restarts", "containers.oom", "containers.resources",
		"logs.db-password-auth-failed", "logs.out-of-memory", "clair.updaters"} {
		if !slices.ContainsFunc(rep.Findings, func(f diag.Finding) bool { return f.ID == id && f.Severity >= diag.Warn }) {
			t.Errorf("no warn or fail finding %s", id)
		}
	}
}

// BenchmarkLogChecks runs every log check over five components with a full
// log each (gather's default tail, 5000 lines), the worst case of a run.
func BenchmarkLogChecks(b *testing.B) {
	var log strings.Builder
	for i := 0; log.Len() < 5000*len(quietQuayLog)/2; i++ {
		log.WriteString(quietQuayLog)
	}
	logs := map[string]string{}
	for _, c := range []string{"quay", "database", "redis", "clair", "mirror"} {
		logs["components/"+c+"/logs.txt"] = log.String()
	}
	facts := logsFacts("quay:running:0 database:running:0 redis:running:0 clair:running:0 mirror:running:0", logs)
	ctx := context.Background()
	b.ResetTimer()
	for range b.N {
		for _, c := range logChecks {
			c.Run(ctx, facts)
		}
	}
}

// The literal prefilter never hides a line the regexp matches, and every
// signature has one (a signature without one makes every run slow).
func TestLogSignaturePrefilter(t *testing.T) {
	for i := range logsSignatures {
		s := &logsSignatures[i]
		if s.required == nil {
			t.Errorf("%s: no literal every match must hold; anchor the regexp on some fixed text", s.ID)
		}
		for _, l := range logsLines([]byte(sample(t, s.ID))) {
			if s.re.Match(l) && !slices.ContainsFunc(s.required, func(lit []byte) bool { return bytes.Contains(l, lit) }) {
				t.Errorf("%s: the prefilter %q drops a line the regexp matches: %s", s.ID, s.required, l)
			}
		}
	}
	tests := []struct {
		expr string
		want []string
	}{
		{`password authentication failed for user`, []string{"password authentication failed for user"}},
		{`\bFATAL:  `, []string{"FATAL:  "}},
		{`^(panic: |fatal error: )`, []string{"panic: ", "fatal error: "}},
		{`Worker \(pid:\d+\) (exited with code [1-9]\d*|was sent code \d+)`, []string{"exited with code ", "was sent code "}},
		{`a*b?`, nil},
		{`(?i)nosuchbucket`, nil},
		{`x|.*`, nil},
	}
	for _, tt := range tests {
		var got []string
		for _, l := range logsRequiredLiterals(tt.expr) {
			got = append(got, string(l))
		}
		if !slices.Equal(got, tt.want) {
			t.Errorf("logsRequiredLiterals(%q) = %q, want %q", tt.expr, got, tt.want)
		}
	}
}
