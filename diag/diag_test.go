package diag

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

var update = flag.Bool("update", false, "rewrite golden files")

func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	p := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(p, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(p)
	if err != nil {
		t.Fatalf("%v (run go test -update)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs:\n--- got\n%s\n--- want\n%s", name, got, want)
	}
}

func fixedClock() func() time.Time {
	t0 := time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)
	var n atomic.Int64
	return func() time.Time { return t0.Add(time.Duration(n.Add(1)) * 1500 * time.Millisecond) }
}

var (
	cUp   = Check{ID: "health.endpoints", Area: "health", Doc: "docs/diagnose.md#health"}
	cDB   = Check{ID: "database.connection", Area: "database", Doc: "docs/diagnose.md#database-connection"}
	cLogs = Check{ID: "logs.signatures", Area: "logs", Doc: "docs/diagnose.md#logs"}
)

func sampleChecks() []Check {
	return []Check{
		cUp.With(func(ctx context.Context, f Facts) []Finding {
			a, err := GetJSON[HealthAnswer](ctx, f, FactHealth("instance"))
			if err != nil {
				return []Finding{cUp.FactError(FactHealth("instance"), err)}
			}
			fd := cUp.Finding(OK, "/health/instance answered "+fmt.Sprint(a.HTTPStatus))
			fd.Evidence = []string{"elapsed " + fmt.Sprint(a.ElapsedMS) + " ms"}
			return []Finding{fd}
		}),
		cDB.With(func(ctx context.Context, f Facts) []Finding {
			if _, err := f.Get(ctx, FactDBConnection); err != nil {
				return []Finding{cDB.FactError(FactDBConnection, err)}
			}
			fd := cDB.Finding(Fail, "cannot connect to the database at postgresql://quay:<redacted>@db:5432/quay")
			fd.Evidence = []string{"dial tcp 10.0.0.5:5432: connect: connection refused", "second line\ncontinued"}
			fd.Remedy = "is the database running? quayctl status"
			return []Finding{fd}
		}),
		cLogs.With(func(ctx context.Context, f Facts) []Finding {
			fd := Finding{Severity: Warn, Title: "2 lines match redis-refused", Evidence: []string{"Error 111 connecting to redis:6379. Connection refused."}, Remedy: "check redis"}
			return []Finding{fd, {Severity: Info, Title: "clair not deployed"}}
		}),
	}
}

func sampleFacts() MapFacts {
	return MapFacts{
		FactHealth("instance"): []byte(`{"url":"http://q/health/instance","http_status":200,"elapsed_ms":3}`),
		FactDBConnection:       []byte(`{}`),
	}
}

func TestRunSortsAndFillsIdentity(t *testing.T) {
	rep := Run(context.Background(), sampleFacts(), Target{Kind: "podman", Name: "unix:///run/podman/podman.sock"}, sampleChecks(), Options{Now: fixedClock()})
	var got []string
	for _, f := range rep.Findings {
		got = append(got, f.Severity.String()+" "+f.ID+" "+f.Doc)
	}
	want := []string{
		"fail database.connection docs/diagnose.md#database-connection",
		"warn logs.signatures docs/diagnose.md#logs",
		"info logs.signatures docs/diagnose.md#logs",
		"ok health.endpoints docs/diagnose.md#health",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("findings:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if rep.ExitCode() != 2 || rep.Summary != (Summary{OK: 1, Info: 1, Warn: 1, Fail: 1, Worst: "fail"}) {
		t.Errorf("exit %d summary %+v", rep.ExitCode(), rep.Summary)
	}
}

func TestExitCodes(t *testing.T) {
	for _, tt := range []struct {
		sevs []Severity
		want int
	}{{nil, 0}, {[]Severity{OK, Info}, 0}, {[]Severity{OK, Warn, Info}, 1}, {[]Severity{Warn, Fail}, 2}} {
		var r Report
		for _, s := range tt.sevs {
			r.Findings = append(r.Findings, Finding{Severity: s})
		}
		if got := r.ExitCode(); got != tt.want {
			t.Errorf("%v: exit %d, want %d", tt.sevs, got, tt.want)
		}
	}
}

func TestPanickingCheckFails(t *testing.T) {
	c := Check{ID: "x.boom", Area: "x"}
	c = c.With(func(ctx context.Context, f Facts) []Finding { panic("index out of range") })
	rep := Run(context.Background(), MapFacts{}, Target{}, []Check{c}, Options{})
	if len(rep.Findings) != 1 || rep.Findings[0].Severity != Fail || !strings.Contains(rep.Findings[0].Title, "crashed: index out of range") {
		t.Fatalf("findings: %+v", rep.Findings)
	}
}

func TestFactErrors(t *testing.T) {
	for _, tt := range []struct {
		name string
		err  error
		want Severity
	}{
		{"not applicable", fmt.Errorf("no clair component: %w", ErrNotApplicable), Info},
		{"offline", ErrOffline, Info},
		{"recorded not applicable", factError("the database is SQLite: " + ErrNotApplicable.Error()), Info},
		{"other", errors.New("exec: permission denied"), Warn},
	} {
		f := cDB.FactError("database/df.txt", tt.err)
		if f.Severity != tt.want || f.ID != cDB.ID {
			t.Errorf("%s: %+v", tt.name, f)
		}
	}
	_, err := MapFacts{"a.json.error": []byte("timed out")}.Get(context.Background(), "a.json")
	if err == nil || err.Error() != "timed out" {
		t.Errorf("recorded error: %v", err)
	}
	_, err = MapFacts{}.Get(context.Background(), "b.json")
	if !errors.Is(err, ErrMissing) {
		t.Errorf("missing: %v", err)
	}
}

func TestSelect(t *testing.T) {
	all := sampleChecks()
	for _, tt := range []struct {
		only, skip []string
		want       string
		err        string
	}{
		{nil, nil, "health.endpoints database.connection logs.signatures", ""},
		{[]string{"database"}, nil, "database.connection", ""},
		{[]string{"database", "logs.signatures"}, nil, "database.connection logs.signatures", ""},
		{nil, []string{"logs"}, "health.endpoints database.connection", ""},
		{[]string{"databse"}, nil, "", `unknown area or check "databse" (areas: health, database, logs)`},
	} {
		got, err := Select(all, tt.only, tt.skip)
		if tt.err != "" {
			if err == nil || err.Error() != tt.err {
				t.Errorf("%v/%v: err %v, want %s", tt.only, tt.skip, err, tt.err)
			}
			continue
		}
		var ids []string
		for _, c := range got {
			ids = append(ids, c.ID)
		}
		if strings.Join(ids, " ") != tt.want {
			t.Errorf("%v/%v: %v", tt.only, tt.skip, ids)
		}
	}
}

func TestSeverityJSON(t *testing.T) {
	b, _ := json.Marshal(Finding{Severity: Warn})
	if !strings.Contains(string(b), `"severity":"warn"`) {
		t.Fatal(string(b))
	}
	var f Finding
	if err := json.Unmarshal([]byte(`{"severity":"FAIL"}`), &f); err != nil || f.Severity != Fail {
		t.Fatal(f, err)
	}
	if err := json.Unmarshal([]byte(`{"severity":"bad"}`), &f); err == nil {
		t.Fatal("accepted an unknown severity")
	}
}

func TestReportGolden(t *testing.T) {
	rep := Run(context.Background(), sampleFacts(), Target{Kind: "podman", Name: "unix:///run/podman/podman.sock"}, sampleChecks(), Options{Now: fixedClock()})
	var text, verbose bytes.Buffer
	if err := WriteText(&text, rep, TextOptions{}); err != nil {
		t.Fatal(err)
	}
	golden(t, "report.txt.golden", text.Bytes())
	if err := WriteText(&verbose, rep, TextOptions{Verbose: true}); err != nil {
		t.Fatal(err)
	}
	golden(t, "report_verbose.txt.golden", verbose.Bytes())
	js, _ := json.MarshalIndent(rep, "", "  ")
	golden(t, "report.json.golden", append(js, '\n'))
}
