package checks

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"sort"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/quayctl/quayctl/collectors"
	"github.com/quayctl/quayctl/diag"
)

// Clair, the security scanner (troubleshooting guide 6.6): is it deployed
// when Quay's config wants it, which version runs and at which log level,
// what its config holds, and whether its updaters fail to fetch
// vulnerability data.
var (
	clairDeployment = diag.Check{ID: "clair.deployment", Area: AreaClair,
		Title: "a Clair component runs when FEATURE_SECURITY_SCANNER is on", Doc: doc("clair-deployment")}
	clairVersion = diag.Check{ID: "clair.version", Area: AreaClair,
		Title: "Clair's version and log level, from its log", Doc: doc("clair-version")}
	clairConfig = diag.Check{ID: "clair.config", Area: AreaClair,
		Title: "Clair's config.yaml: log_level, indexer, matcher and updaters", Doc: doc("clair-config")}
	clairUpdaters = diag.Check{ID: "clair.updaters", Area: AreaClair,
		Title: "errors of Clair's updaters (the vulnerability data fetchers) in its log", Doc: doc("clair-updaters")}
)

var clairChecks = []diag.Check{
	clairDeployment.With(checkClairDeployment),
	clairVersion.With(checkClairVersion),
	clairConfig.With(checkClairConfig),
	clairUpdaters.With(checkClairUpdaters),
}

// clairComponent finds the Clair component. ok is false when Clair is not
// deployed or components.json could not be read (other checks report that).
func clairComponent(ctx context.Context, f diag.Facts) (collectors.Component, bool) {
	cs, err := diag.GetJSON[[]collectors.Component](ctx, f, diag.FactComponents)
	if err != nil {
		return collectors.Component{}, false
	}
	for _, c := range cs {
		if c.Name == collectors.ComponentClair {
			return c, true
		}
	}
	return collectors.Component{}, false
}

// clairQuaySettings are the keys of Quay's config.yaml about the scanner.
type clairQuaySettings struct {
	Scanner  *bool  `yaml:"FEATURE_SECURITY_SCANNER"`
	Endpoint string `yaml:"SECURITY_SCANNER_V4_ENDPOINT"`
}

func checkClairDeployment(ctx context.Context, f diag.Facts) []diag.Finding {
	c := clairDeployment
	cs, err := diag.GetJSON[[]collectors.Component](ctx, f, diag.FactComponents)
	if err != nil {
		return nil // containers.running reports it
	}
	clair, deployed := clairComponent(ctx, f)
	var qs clairQuaySettings
	raw, err := f.Get(ctx, diag.FactConfig)
	haveConfig := err == nil && yaml.Unmarshal(raw, &qs) == nil
	scanner := haveConfig && qs.Scanner != nil && *qs.Scanner
	external := len(cs) > 0 && !slices.ContainsFunc(cs, func(x collectors.Component) bool {
		return !strings.EqualFold(x.State, containersStateExternal)
	})
	switch {
	case deployed && haveConfig && !scanner:
		fd := c.Finding(diag.Info, "Clair runs but FEATURE_SECURITY_SCANNER is off: Quay sends it nothing to scan")
		fd.Subject = collectors.ComponentClair
		fd.Evidence = []string{"clair: " + containersLabel(clair) + " " + clair.State, "FEATURE_SECURITY_SCANNER: false or unset"}
		fd.Remedy = "set FEATURE_SECURITY_SCANNER: true and SECURITY_SCANNER_V4_ENDPOINT in config.yaml if scanning is wanted, else remove the Clair component"
		return []diag.Finding{fd}
	case deployed:
		fd := c.Finding(diag.OK, "Clair is deployed: "+containersLabel(clair)+" "+clair.State)
		fd.Subject = collectors.ComponentClair
		if qs.Endpoint != "" {
			fd.Evidence = []string{"SECURITY_SCANNER_V4_ENDPOINT: " + qs.Endpoint}
		}
		return []diag.Finding{fd}
	case scanner:
		fd := c.Finding(diag.Warn, "FEATURE_SECURITY_SCANNER is on but there is no Clair component")
		fd.Subject = collectors.ComponentClair
		fd.Evidence = []string{"FEATURE_SECURITY_SCANNER: true"}
		if qs.Endpoint != "" {
			fd.Evidence = append(fd.Evidence, "SECURITY_SCANNER_V4_ENDPOINT: "+qs.Endpoint)
		}
		fd.Remedy = "deploy Clair (on OpenShift: the QuayRegistry's clair component managed: true), or if it runs " +
			"elsewhere name its container with --component clair=CONTAINER; if scanning is not wanted set " +
			"FEATURE_SECURITY_SCANNER: false (quayctl config get shows the setting)"
		if external {
			// A direct target shows no containers: Clair may well run.
			fd.Severity = diag.Info
			fd.Title = "FEATURE_SECURITY_SCANNER is on; quayctl cannot see Clair from a direct target"
			fd.Remedy = "point quayctl at the deployment (--podman or --openshift) to check Clair"
		}
		return []diag.Finding{fd}
	}
	title := "Clair is not deployed (FEATURE_SECURITY_SCANNER is off): images are not scanned"
	if !haveConfig {
		title = "Clair is not deployed: images are not scanned"
	}
	return []diag.Finding{c.Finding(diag.Info, title)}
}

// clairLogLine is a Clair v4 (zerolog) JSON log line. zerolog may repeat
// "component"; the last one wins, which is the innermost.
type clairLogLine struct {
	Level     string `json:"level"`
	Component string `json:"component"`
	Updater   string `json:"updater"`
	Version   string `json:"version"`
	Message   string `json:"message"`
	Error     string `json:"error"`
	Time      string `json:"time"`
}

// clairLog is Clair's log as lines: the previous instance first (it is
// older), then the current one. ok is false when Clair is not deployed or
// its log could not be read (logs.scan reports that).
func clairLog(ctx context.Context, f diag.Facts) ([][]byte, bool) {
	if _, ok := clairComponent(ctx, f); !ok {
		return nil, false
	}
	cur, err := f.Get(ctx, diag.FactLogs(collectors.ComponentClair, false))
	if err != nil {
		return nil, false
	}
	var lines [][]byte
	if prev, err := f.Get(ctx, diag.FactLogs(collectors.ComponentClair, true)); err == nil {
		lines = logsLines(prev)
	}
	return append(lines, logsLines(cur)...), true
}

// clairParse decodes a JSON log line; ok is false for anything else.
func clairParse(line []byte) (clairLogLine, bool) {
	var l clairLogLine
	line = bytes.TrimSpace(line)
	if len(line) == 0 || line[0] != '{' {
		return l, false
	}
	if err := json.Unmarshal(line, &l); err != nil {
		return l, false
	}
	return l, true
}

var clairVersionPattern = regexp.MustCompile(`^v?(\d+)\.\d+`)

func checkClairVersion(ctx context.Context, f diag.Facts) []diag.Finding {
	c := clairVersion
	lines, ok := clairLog(ctx, f)
	if !ok {
		return nil
	}
	var version, versionLine string
	levels := map[string]int{}
	for _, raw := range lines {
		l, ok := clairParse(raw)
		if !ok {
			continue
		}
		if l.Level != "" {
			levels[l.Level]++
		}
		if l.Version != "" {
			version, versionLine = l.Version, logsShorten(string(raw)) // the latest start wins
		}
	}
	level := clairLevelFromLog(levels)
	fd := c.Finding(diag.OK, "")
	fd.Subject = collectors.ComponentClair
	if len(levels) > 0 {
		fd.Evidence = append(fd.Evidence, "log lines by level: "+clairCounts(levels))
	}
	if version == "" {
		fd.Severity = diag.Info
		fd.Title = "Clair's version is not in its recent log (Clair logs it once, at start)"
		if level != "" {
			fd.Title += "; it logs at " + level + " level"
		}
		fd.Remedy = "find it with quayctl logs clair --grep '\"version\"' (the whole log), or read the image tag with quayctl status"
		return []diag.Finding{fd}
	}
	fd.Evidence = append([]string{versionLine}, fd.Evidence...)
	fd.Title = "Clair " + version
	if level != "" {
		fd.Title += ", logging at " + level + " level"
	}
	if m := clairVersionPattern.FindStringSubmatch(version); m != nil && m[1] != "4" {
		fd.Severity = diag.Warn
		fd.Title = "Clair " + version + " is not Clair v4, the version Quay 3 works with"
		fd.Remedy = "deploy Clair v4 (the clair-rhel8 image matching your Quay release)"
	}
	return []diag.Finding{fd}
}

// clairLevelFromLog guesses the log level from the levels seen: the
// lowest one that appears.
func clairLevelFromLog(levels map[string]int) string {
	for _, l := range []string{"trace", "debug", "info", "warn", "error"} {
		if levels[l] > 0 {
			return l
		}
	}
	return ""
}

func clairCounts(m map[string]int) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, 0, len(keys))
	for _, k := range keys {
		parts = append(parts, fmt.Sprintf("%s %d", k, m[k]))
	}
	return strings.Join(parts, ", ")
}

// clairConfigFile is the part of Clair v4's config.yaml this check reads.
type clairConfigFile struct {
	LogLevel string `yaml:"log_level"`
	Indexer  *struct {
		ConnString string `yaml:"connstring"`
	} `yaml:"indexer"`
	Matcher *struct {
		ConnString      string `yaml:"connstring"`
		IndexerAddr     string `yaml:"indexer_addr"`
		DisableUpdaters bool   `yaml:"disable_updaters"`
		Period          string `yaml:"period"`
	} `yaml:"matcher"`
	Updaters *struct {
		Sets *[]string `yaml:"sets"`
	} `yaml:"updaters"`
}

func checkClairConfig(ctx context.Context, f diag.Facts) []diag.Finding {
	c := clairConfig
	if _, ok := clairComponent(ctx, f); !ok {
		return nil
	}
	raw, err := f.Get(ctx, diag.FactClairConfig)
	if err != nil {
		if errors.Is(err, diag.ErrNotApplicable) {
			return nil
		}
		fe := c.FactError(diag.FactClairConfig, err)
		fe.Subject = collectors.ComponentClair
		if fe.Severity == diag.Warn {
			fe.Remedy = "read it by hand (chapter 6.6.1.4): podman exec CLAIR cat /clair/config.yaml, or oc exec CLAIR_POD -- cat /clair/config.yaml"
		}
		return []diag.Finding{fe}
	}
	var cfg clairConfigFile
	if err := yaml.Unmarshal(raw, &cfg); err != nil {
		fd := c.Finding(diag.Fail, "Clair's config.yaml is not valid YAML")
		fd.Subject = collectors.ComponentClair
		fd.Evidence = []string{err.Error()}
		fd.Remedy = "fix the file (chapter 6.6.1.5) and restart Clair; quayctl logs clair shows whether it started"
		return []diag.Finding{fd}
	}
	level := cfg.LogLevel
	if level == "" {
		level = "info (the default)"
	}
	evidence := []string{"log_level: " + level}
	var problems []string
	if cfg.Indexer == nil || strings.TrimSpace(cfg.Indexer.ConnString) == "" {
		problems = append(problems, "indexer.connstring is not set")
	} else {
		evidence = append(evidence, "indexer.connstring: set")
	}
	if cfg.Matcher == nil || strings.TrimSpace(cfg.Matcher.ConnString) == "" {
		problems = append(problems, "matcher.connstring is not set")
	} else {
		evidence = append(evidence, "matcher.connstring: set")
		if cfg.Matcher.IndexerAddr != "" {
			evidence = append(evidence, "matcher.indexer_addr: "+cfg.Matcher.IndexerAddr)
		}
	}
	updaters := "updaters: the default sets"
	noUpdates := ""
	switch {
	case cfg.Matcher != nil && cfg.Matcher.DisableUpdaters:
		updaters = "updaters: disabled (matcher.disable_updaters: true)"
		noUpdates = "Clair's updaters are disabled: its vulnerability data is only as new as the last import"
	case cfg.Updaters != nil && cfg.Updaters.Sets != nil && len(*cfg.Updaters.Sets) == 0:
		updaters = "updaters.sets: [] (none)"
		noUpdates = "Clair's config lists no updater sets: it has no vulnerability data to match"
	case cfg.Updaters != nil && cfg.Updaters.Sets != nil:
		updaters = "updaters.sets: " + strings.Join(*cfg.Updaters.Sets, ", ")
	}
	evidence = append(evidence, updaters)
	fd := c.Finding(diag.OK, "")
	fd.Subject = collectors.ComponentClair
	fd.Evidence = evidence
	switch {
	case len(problems) > 0:
		fd.Severity = diag.Warn
		fd.Title = "Clair's config is incomplete: " + strings.Join(problems, ", ")
		fd.Remedy = "a combined Clair needs both indexer.connstring and matcher.connstring (the clairpostgres " +
			"database); fix /clair/config.yaml (chapter 6.6.1.5) and restart Clair, then check quayctl logs clair"
	case noUpdates != "":
		fd.Severity = diag.Info
		fd.Title = noUpdates
		fd.Remedy = "fine when disconnected if you import updates (clairctl export-updaters / import-updaters); " +
			"otherwise enable the updaters and check quayctl diagnose --only clair.updaters"
	case strings.HasPrefix(cfg.LogLevel, "debug"):
		fd.Severity = diag.Info
		fd.Title = "Clair logs at " + cfg.LogLevel + " level: verbose, meant for troubleshooting"
		fd.Remedy = "set log_level: info in Clair's config.yaml and restart Clair when you are done (chapter 6.6.1.4)"
	default:
		fd.Title = "Clair's config: log_level " + level + ", indexer and matcher set"
	}
	return []diag.Finding{fd}
}

// clairUpdaterComponent marks the log lines of Clair's update machinery
// (claircore's libvuln/updates and its updaters).
var clairUpdaterComponent = regexp.MustCompile(`"component":"[^"]*(updates|updater)[^"]*"`)

// clairIsUpdaterProblem reports whether a Clair log line is an updater
// warning or error.
func clairIsUpdaterProblem(raw []byte, l clairLogLine) bool {
	switch l.Level {
	case "warn", "error", "fatal", "panic":
	default:
		return false
	}
	return l.Updater != "" || clairUpdaterComponent.Match(raw) ||
		strings.Contains(strings.ToLower(l.Message), "updat")
}

func checkClairUpdaters(ctx context.Context, f diag.Facts) []diag.Finding {
	c := clairUpdaters
	lines, ok := clairLog(ctx, f)
	if !ok {
		return nil
	}
	var problems []string
	updaters := map[string]bool{}
	updates := 0
	for _, raw := range lines {
		l, ok := clairParse(raw)
		if !ok {
			continue
		}
		if l.Message == "successful update" || l.Message == "vulnerability database unchanged" {
			updates++
		}
		if !clairIsUpdaterProblem(raw, l) {
			continue
		}
		if l.Updater != "" {
			updaters[l.Updater] = true
		}
		for _, n := range clairFailedUpdaters(l.Error) {
			updaters[n] = true
		}
		problems = append(problems, clairSummary(l))
	}
	fd := c.Finding(diag.OK, "")
	fd.Subject = collectors.ComponentClair
	if len(problems) == 0 {
		fd.Title = fmt.Sprintf("no updater errors in %d Clair log lines", len(lines))
		fd.Evidence = []string{fmt.Sprintf("updater runs that finished: %d", updates)}
		return []diag.Finding{fd}
	}
	names := make([]string, 0, len(updaters))
	for n := range updaters {
		names = append(names, n)
	}
	sort.Strings(names)
	fd.Severity = diag.Warn
	fd.Title = fmt.Sprintf("Clair's updaters logged %d %s", len(problems), logsPlural(len(problems), "error or warning", "errors and warnings"))
	if len(names) > 0 {
		fd.Title += " (" + strings.Join(names, ", ") + ")"
	}
	head := fmt.Sprintf("%d updater warnings and errors; updater runs that finished: %d", len(problems), updates)
	if len(problems) > logsMaxEvidence {
		head += fmt.Sprintf("; the last %d:", logsMaxEvidence)
		problems = problems[len(problems)-logsMaxEvidence:]
	}
	fd.Evidence = append([]string{head}, problems...)
	fd.Remedy = "Clair fetches vulnerability data from the internet every 30 minutes: allow its updater URLs " +
		"through the proxy or firewall (chapter 6.6.1.2; HTTP_PROXY/HTTPS_PROXY in Clair's environment), or run " +
		"disconnected with clairctl export-updaters/import-updaters; quayctl logs clair --grep '\"level\":\"error\"' shows them all"
	return []diag.Finding{fd}
}

// clairFailedUpdaters are the updater names of claircore's summary error
// ("updating errors:\n<updater>: <error>\n…").
func clairFailedUpdaters(errText string) []string {
	first, rest, ok := strings.Cut(errText, "\n")
	if !ok || !strings.EqualFold(strings.TrimSpace(first), "updating errors:") {
		return nil
	}
	var out []string
	for _, line := range strings.Split(rest, "\n") {
		if name, _, ok := strings.Cut(line, ": "); ok && name != "" && !strings.ContainsAny(name, " \t") {
			out = append(out, name)
		}
	}
	return out
}

// clairSummary is one updater problem as a short line.
func clairSummary(l clairLogLine) string {
	var b strings.Builder
	if t, err := time.Parse(time.RFC3339Nano, l.Time); err == nil {
		b.WriteString(t.UTC().Format(time.RFC3339) + " ")
	} else if l.Time != "" {
		b.WriteString(l.Time + " ")
	}
	b.WriteString(l.Level)
	if l.Updater != "" {
		b.WriteString(" [" + l.Updater + "]")
	}
	b.WriteString(" " + l.Message)
	if l.Error != "" {
		b.WriteString(": " + strings.Join(strings.Fields(l.Error), " "))
	}
	return logsShorten(b.String())
}
