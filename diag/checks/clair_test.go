package checks

import (
	"fmt"
	"strings"
	"testing"

	"github.com/quayctl/quayctl/collectors"
	"github.com/quayctl/quayctl/diag"
)

const (
	clairStartLine = `{"level":"info","component":"main","version":"v4.7.4","time":"2024-05-14T06:00:01Z","message":"starting"}`
	clairInfoLines = `{"level":"info","component":"libvuln/updates/Manager.Start","time":"2024-05-14T06:00:05Z","message":"starting initial updates"}
{"level":"info","component":"libvuln/updates/Manager.driveUpdater","updater":"rhel-vex","time":"2024-05-14T06:01:12Z","message":"successful update"}
{"level":"info","component":"libvuln/updates/Manager.driveUpdater","updater":"alpine-main-v3.19-updater","time":"2024-05-14T06:01:13Z","message":"vulnerability database unchanged"}
`
	clairUpdaterError = `{"level":"error","component":"libvuln/updates/Manager.Start","error":"updating errors:\nubuntu/updater/jammy: Get \"https://security-metadata.canonical.com/oval/com.ubuntu.jammy.cve.oval.xml.bz2\": dial tcp 185.125.190.36:443: i/o timeout\nosv: unexpected status 403\n","time":"2024-05-14T06:02:30Z","message":"errors encountered during updater run"}`
	clairConfigOK     = `http_listen_addr: :8080
log_level: info
indexer:
  connstring: host=clair-postgres dbname=clair user=clair password=<redacted>
matcher:
  connstring: host=clair-postgres dbname=clair user=clair password=<redacted>
updaters:
  sets: [rhel, alpine, ubuntu]
`
)

var clairComponents = append(healthyComponents[:len(healthyComponents):len(healthyComponents)], comp("clair", "clair-app"))

type clairCase struct {
	name  string
	cs    []collectors.Component
	facts map[string]string
	want  []want
	evid  []string // evidence substrings of the first finding
	not   []string // …and what it must not say
	rem   []string // remedy substrings of the first finding
}

func runClairCases(t *testing.T, c diag.Check, tests []clairCase) {
	t.Helper()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			facts := containerFacts(t, tt.cs, tt.facts)
			if tt.cs == nil {
				delete(facts, diag.FactComponents)
			}
			got := runCheck(t, c, facts, tt.want...)
			if len(got) == 0 {
				return
			}
			for _, s := range tt.evid {
				if !strings.Contains(evidence(got[0]), s) {
					t.Errorf("evidence = %q\nwant %q", evidence(got[0]), s)
				}
			}
			for _, s := range tt.not {
				if strings.Contains(evidence(got[0]), s) {
					t.Errorf("evidence = %q\nmust not contain %q", evidence(got[0]), s)
				}
			}
			for _, s := range tt.rem {
				if !strings.Contains(got[0].Remedy, s) {
					t.Errorf("remedy = %q, want %q", got[0].Remedy, s)
				}
			}
		})
	}
}

func TestClairDeployment(t *testing.T) {
	scannerOn := "FEATURE_SECURITY_SCANNER: true\nSECURITY_SCANNER_V4_ENDPOINT: http://clair-app:8080\n"
	runClairCases(t, clairDeployment.With(checkClairDeployment), []clairCase{
		{
			name:  "deployed and enabled",
			cs:    clairComponents,
			facts: map[string]string{diag.FactConfig: scannerOn},
			want:  []want{{diag.OK, "clair.deployment", "Clair is deployed: clair (clair-app) running"}},
			evid:  []string{"SECURITY_SCANNER_V4_ENDPOINT: http://clair-app:8080"},
		},
		{
			name:  "deployed but the feature is off",
			cs:    clairComponents,
			facts: map[string]string{diag.FactConfig: "FEATURE_SECURITY_SCANNER: false\n"},
			want:  []want{{diag.Info, "", "Clair runs but FEATURE_SECURITY_SCANNER is off"}},
		},
		{
			name:  "feature on, no Clair",
			cs:    healthyComponents,
			facts: map[string]string{diag.FactConfig: scannerOn},
			want:  []want{{diag.Warn, "", "FEATURE_SECURITY_SCANNER is on but there is no Clair component"}},
			evid:  []string{"FEATURE_SECURITY_SCANNER: true", "http://clair-app:8080"},
			rem:   []string{"--component clair=CONTAINER", "quayctl config get"},
		},
		{
			name:  "feature on, direct target sees no containers",
			cs:    []collectors.Component{comp("quay", "quay.example.com", state("external"))},
			facts: map[string]string{diag.FactConfig: scannerOn},
			want:  []want{{diag.Info, "", "quayctl cannot see Clair from a direct target"}},
		},
		{
			name:  "not deployed, feature off",
			cs:    healthyComponents,
			facts: map[string]string{diag.FactConfig: "SERVER_HOSTNAME: quay.example.com\n"},
			want:  []want{{diag.Info, "", "Clair is not deployed (FEATURE_SECURITY_SCANNER is off)"}},
		},
		{
			name:  "not deployed, config unreadable",
			cs:    healthyComponents,
			facts: map[string]string{diag.FactConfig + ".error": "cannot read /conf/stack/config.yaml"},
			want:  []want{{diag.Info, "", "Clair is not deployed: images are not scanned"}},
		},
		{name: "components unreadable", cs: nil},
	})
}

func TestClairVersion(t *testing.T) {
	runClairCases(t, clairVersion.With(checkClairVersion), []clairCase{
		{name: "not deployed", cs: healthyComponents},
		{
			name:  "version and level from the log",
			cs:    clairComponents,
			facts: map[string]string{"components/clair/logs.txt": "clair starting\n" + clairStartLine + "\n" + clairInfoLines},
			want:  []want{{diag.OK, "clair.version", "Clair v4.7.4, logging at info level"}},
			evid:  []string{`"version":"v4.7.4"`, "log lines by level: info 4"},
		},
		{
			name: "version in the previous log, debug lines now",
			cs:   clairComponents,
			facts: map[string]string{
				"components/clair/logs-previous.txt": clairStartLine + "\n",
				"components/clair/logs.txt":          `{"level":"debug","component":"httptransport/New","time":"2024-05-14T06:40:00Z","message":"handling request"}` + "\n",
			},
			want: []want{{diag.OK, "", "Clair v4.7.4, logging at debug level"}},
		},
		{
			name:  "start line rotated away",
			cs:    clairComponents,
			facts: map[string]string{"components/clair/logs.txt": clairInfoLines},
			want:  []want{{diag.Info, "", "Clair's version is not in its recent log (Clair logs it once, at start); it logs at info level"}},
			rem:   []string{"quayctl logs clair", "quayctl status"},
		},
		{
			name:  "not Clair v4",
			cs:    clairComponents,
			facts: map[string]string{"components/clair/logs.txt": strings.Replace(clairStartLine, "v4.7.4", "v2.1.8", 1) + "\n"},
			want:  []want{{diag.Warn, "", "Clair v2.1.8 is not Clair v4"}},
		},
		{
			name:  "log unreadable: left to logs.scan",
			cs:    clairComponents,
			facts: map[string]string{"components/clair/logs.txt.error": "timed out"},
		},
	})
}

func TestClairConfig(t *testing.T) {
	runClairCases(t, clairConfig.With(checkClairConfig), []clairCase{
		{name: "not deployed", cs: healthyComponents, facts: map[string]string{diag.FactClairConfig: clairConfigOK}},
		{
			name:  "complete",
			cs:    clairComponents,
			facts: map[string]string{diag.FactClairConfig: clairConfigOK},
			want:  []want{{diag.OK, "clair.config", "Clair's config: log_level info, indexer and matcher set"}},
			evid:  []string{"log_level: info", "indexer.connstring: set", "updaters.sets: rhel, alpine, ubuntu"},
			not:   []string{"password"},
		},
		{
			name:  "debug logging",
			cs:    clairComponents,
			facts: map[string]string{diag.FactClairConfig: strings.Replace(clairConfigOK, "log_level: info", "log_level: debug-color", 1)},
			want:  []want{{diag.Info, "", "Clair logs at debug-color level"}},
			rem:   []string{"log_level: info"},
		},
		{
			name:  "default level, no matcher",
			cs:    clairComponents,
			facts: map[string]string{diag.FactClairConfig: "indexer:\n  connstring: host=db\n"},
			want:  []want{{diag.Warn, "", "Clair's config is incomplete: matcher.connstring is not set"}},
			evid:  []string{"log_level: info (the default)"},
			rem:   []string{"quayctl logs clair"},
		},
		{
			name:  "updaters disabled",
			cs:    clairComponents,
			facts: map[string]string{diag.FactClairConfig: strings.Replace(clairConfigOK, "matcher:\n", "matcher:\n  disable_updaters: true\n", 1)},
			want:  []want{{diag.Info, "", "Clair's updaters are disabled"}},
			evid:  []string{"updaters: disabled (matcher.disable_updaters: true)"},
		},
		{
			name:  "no updater sets",
			cs:    clairComponents,
			facts: map[string]string{diag.FactClairConfig: strings.Replace(clairConfigOK, "[rhel, alpine, ubuntu]", "[]", 1)},
			want:  []want{{diag.Info, "", "lists no updater sets"}},
		},
		{
			name:  "not YAML",
			cs:    clairComponents,
			facts: map[string]string{diag.FactClairConfig: "indexer: [\n"},
			want:  []want{{diag.Fail, "", "Clair's config.yaml is not valid YAML"}},
		},
		{
			name:  "could not be read",
			cs:    clairComponents,
			facts: map[string]string{diag.FactClairConfig + ".error": "no Clair config found at /clair/config.yaml, /config/config.yaml"},
			want:  []want{{diag.Warn, "", "could not gather clair/config.yaml: no Clair config found"}},
			rem:   []string{"cat /clair/config.yaml"},
		},
		{
			name:  "not applicable (a bundle without it, a direct target)",
			cs:    clairComponents,
			facts: map[string]string{diag.FactClairConfig + ".error": "read file: " + diag.ErrNotApplicable.Error()},
		},
	})
}

func TestClairUpdaters(t *testing.T) {
	var many strings.Builder
	for i := range 7 {
		fmt.Fprintf(&many, `{"level":"warn","component":"libvuln/updates/Manager.Run","updater":"updater-%d","error":"timeout","time":"2024-05-14T07:0%d:00Z","message":"failed configuring updater, excluding from current run"}`+"\n", i, i)
	}
	runClairCases(t, clairUpdaters.With(checkClairUpdaters), []clairCase{
		{name: "not deployed", cs: healthyComponents, facts: map[string]string{"components/clair/logs.txt": clairUpdaterError}},
		{
			name: "no errors; an indexer error is not an updater's",
			cs:   clairComponents,
			facts: map[string]string{"components/clair/logs.txt": clairStartLine + "\n" + clairInfoLines +
				`{"level":"error","component":"libindex/fetcher","error":"tls: failed to verify certificate","time":"2024-05-14T07:00:00Z","message":"layer fetch failed"}` + "\n" +
				"not json at all\n"},
			want: []want{{diag.OK, "clair.updaters", "no updater errors in 6 Clair log lines"}},
			evid: []string{"updater runs that finished: 2"},
		},
		{
			name:  "updater errors with the failing updaters named",
			cs:    clairComponents,
			facts: map[string]string{"components/clair/logs.txt": clairStartLine + "\n" + clairInfoLines + clairUpdaterError + "\n"},
			want:  []want{{diag.Warn, "clair.updaters", "Clair's updaters logged 1 error or warning (osv, ubuntu/updater/jammy)"}},
			evid: []string{"1 updater warnings and errors; updater runs that finished: 2",
				"2024-05-14T06:02:30Z error errors encountered during updater run: updating errors: ubuntu/updater/jammy: Get"},
			rem: []string{"6.6.1.2", "quayctl logs clair"},
		},
		{
			name:  "many: the last five",
			cs:    clairComponents,
			facts: map[string]string{"components/clair/logs.txt": many.String()},
			want:  []want{{diag.Warn, "", "Clair's updaters logged 7 errors and warnings (updater-0, updater-1"}},
			evid:  []string{"; the last 5:", "warn [updater-6] failed configuring updater"},
			not:   []string{"[updater-1]"},
		},
		{
			name:  "log unreadable: left to logs.scan",
			cs:    clairComponents,
			facts: map[string]string{"components/clair/logs.txt.error": "timed out"},
		},
	})
}
