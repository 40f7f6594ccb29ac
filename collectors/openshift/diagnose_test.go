package openshift_test

import (
	"context"
	"strings"
	"testing"

	"github.com/quayctl/quayctl/collectors/gather"
	"github.com/quayctl/quayctl/collectors/openshift"
	"github.com/quayctl/quayctl/diag"
	"github.com/quayctl/quayctl/diag/checks"
)

// TestDiagnoseOverFakes gathers OpenShift-shaped facts from the collector
// (client-go fake clientsets) and runs diagnose's containers area over them:
// the same checks that run on podman name the crash loop, the OOM kill, the
// QuayRegistry's conditions and the warning events.
func TestDiagnoseOverFakes(t *testing.T) {
	ctx := context.Background()
	d := openshift.NewTroubledForTest(t)
	g := gather.New(ctx, d, gather.Options{URL: "http://127.0.0.1:1"})
	defer g.Close()
	sel, err := diag.Select(checks.All(), []string{"containers"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	rep := diag.Run(ctx, g, diag.Target{Kind: d.Kind(), Name: d.Name()}, sel, diag.Options{})
	var lines []string
	for _, f := range rep.Findings {
		lines = append(lines, f.Severity.String()+" "+f.ID+" "+f.Title+" | "+strings.Join(f.Evidence, " | "))
	}
	all := strings.Join(lines, "\n")
	for _, want := range []string{
		"fail containers.restarts", "CrashLoopBackOff",
		"fail containers.oom", "OOMKilled",
		"containers.quayregistry", "RolloutBlocked",
		"containers.events", "BackOff", "unauthorized",
	} {
		if !strings.Contains(all, want) {
			t.Errorf("no %q in the findings:\n%s", want, all)
		}
	}
	if rep.ExitCode() != 2 {
		t.Errorf("exit %d, want 2:\n%s", rep.ExitCode(), all)
	}
	for _, s := range []string{"s3cret", "hunter2"} {
		if strings.Contains(all, s) {
			t.Errorf("secret %s in the findings", s)
		}
	}
}

// TestInspectFact: the pods' objects become components/<c>/inspect.json,
// with literal secret env values and passwords in URIs redacted.
func TestInspectFact(t *testing.T) {
	ctx := context.Background()
	g := gather.New(ctx, openshift.NewTroubledForTest(t), gather.Options{URL: "http://127.0.0.1:1"})
	defer g.Close()
	b, err := g.Get(ctx, diag.FactInspect("quay"))
	if err != nil {
		t.Fatal(err)
	}
	s := string(b)
	for _, want := range []string{"registry-quay-app-6d9c7f8b4-crash", "registry-quay-app-6d9c7f8b4-ok", "CrashLoopBackOff", `"DB_PASSWORD"`, "<redacted>"} {
		if !strings.Contains(s, want) {
			t.Errorf("no %q in inspect.json", want)
		}
	}
	for _, secret := range []string{"s3cret", "hunter2"} {
		if strings.Contains(s, secret) {
			t.Errorf("secret %s in inspect.json", secret)
		}
	}
	if _, err := g.Get(ctx, diag.FactInspect("nosuch")); err == nil {
		t.Error("inspect of a missing component succeeded")
	}
}
