package checks

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/quayctl/quayctl/diag"
)

// Storage checks (troubleshooting guide chapter 6.3).
var (
	storageConfigCheck = diag.Check{ID: "storage.config", Area: AreaStorage, Doc: doc("storage-config"),
		Title: "every location named in DISTRIBUTED_STORAGE_PREFERENCE and DISTRIBUTED_STORAGE_DEFAULT_LOCATIONS is configured in DISTRIBUTED_STORAGE_CONFIG"}
	storageProbeCheck = diag.Check{ID: "storage.probe", Area: AreaStorage, Doc: doc("storage-probe"),
		Title: "each storage location: a probe object written, stat'ed, read back, compared and deleted, with timings; fetched through a signed URL where the driver signs one"}
	storageProxyCheck = diag.Check{ID: "storage.proxy", Area: AreaStorage, Doc: doc("storage-proxy"),
		Title: "how clients download blobs: redirected to the storage, or through the registry (FEATURE_PROXY_STORAGE)"}
)

var storageChecks = []diag.Check{
	storageConfigCheck.With(checkStorageConfig),
	storageProbeCheck.With(checkStorageProbe),
	storageProxyCheck.With(checkStorageProxy),
}

// storageSkipped starts the Error of a probe that did not run (the
// gatherer's gather.StorageSkipped: a driver quayctl cannot probe yet, or
// a location it cannot reach from where it runs).
const storageSkipped = "skipped: "

// storageSlowMS is the step time above which a probe is slow: Quay's own
// storage health check and every pull wait on the same calls.
const storageSlowMS = 2000

// storageLocalDriver is the one driver whose location is a directory.
const storageLocalDriver = "LocalStorage"

// storageConfig reads config/config.yaml (redacted, keys kept).
func storageConfig(ctx context.Context, f diag.Facts) (map[string]any, error) {
	b, err := f.Get(ctx, diag.FactConfig)
	if err != nil {
		return nil, err
	}
	var m map[string]any
	if err := yaml.Unmarshal(b, &m); err != nil {
		return nil, fmt.Errorf("%s is not valid YAML: %w", diag.FactConfig, err)
	}
	if m == nil {
		m = map[string]any{}
	}
	return m, nil
}

// storageList reads a list of names (a YAML sequence, or Quay's
// space-separated string form).
func storageList(v any) []string {
	var out []string
	switch t := v.(type) {
	case []any:
		for _, e := range t {
			if s, ok := e.(string); ok && strings.TrimSpace(s) != "" {
				out = append(out, strings.TrimSpace(s))
			}
		}
	case string:
		out = strings.Fields(t)
	}
	return out
}

// storageTrue reads a boolean feature flag as Quay does (true, "true").
func storageTrue(v any) bool {
	switch t := v.(type) {
	case bool:
		return t
	case string:
		return strings.EqualFold(strings.TrimSpace(t), "true")
	}
	return false
}

func checkStorageConfig(ctx context.Context, f diag.Facts) []diag.Finding {
	c := storageConfigCheck
	cfg, err := storageConfig(ctx, f)
	if err != nil {
		return []diag.Finding{c.FactError(diag.FactConfig, err)}
	}
	raw, ok := cfg["DISTRIBUTED_STORAGE_CONFIG"].(map[string]any)
	if !ok || len(raw) == 0 {
		fd := c.Finding(diag.Fail, "DISTRIBUTED_STORAGE_CONFIG is missing or empty: Quay has nowhere to store blobs")
		fd.Remedy = "configure at least one location, for example DISTRIBUTED_STORAGE_CONFIG: {default: [LocalStorage, {storage_path: /datastorage/registry}]}, and name it in DISTRIBUTED_STORAGE_PREFERENCE"
		return []diag.Finding{fd}
	}
	configured := make([]string, 0, len(raw))
	for n := range raw {
		configured = append(configured, n)
	}
	sort.Strings(configured)
	pref := storageList(cfg["DISTRIBUTED_STORAGE_PREFERENCE"])
	defaults := storageList(cfg["DISTRIBUTED_STORAGE_DEFAULT_LOCATIONS"])
	var out []diag.Finding
	for _, key := range []struct {
		name  string
		names []string
	}{{"DISTRIBUTED_STORAGE_PREFERENCE", pref}, {"DISTRIBUTED_STORAGE_DEFAULT_LOCATIONS", defaults}} {
		for _, n := range key.names {
			if _, ok := raw[n]; ok {
				continue
			}
			fd := c.Finding(diag.Fail, fmt.Sprintf("%s names location %q, which DISTRIBUTED_STORAGE_CONFIG does not configure", key.name, n))
			fd.Subject = n
			fd.Evidence = []string{
				fmt.Sprintf("%s: [%s]", key.name, strings.Join(key.names, ", ")),
				fmt.Sprintf("DISTRIBUTED_STORAGE_CONFIG has: %s", strings.Join(configured, ", ")),
			}
			fd.Remedy = fmt.Sprintf("add %q to DISTRIBUTED_STORAGE_CONFIG, or remove it from %s (location names are case-sensitive); then restart quay", n, key.name)
			out = append(out, fd)
		}
	}
	if len(pref) == 0 {
		fd := c.Finding(diag.Warn, "DISTRIBUTED_STORAGE_PREFERENCE is empty: Quay requires it to know where uploads go")
		fd.Evidence = []string{"DISTRIBUTED_STORAGE_CONFIG has: " + strings.Join(configured, ", ")}
		fd.Remedy = fmt.Sprintf("set DISTRIBUTED_STORAGE_PREFERENCE: [%s] (the first entry receives uploads)", configured[0])
		out = append(out, fd)
	}
	if len(out) > 0 {
		return out
	}
	fd := c.Finding(diag.OK, fmt.Sprintf("%d storage location(s) configured (%s); uploads go to %s", len(configured), strings.Join(configured, ", "), pref[0]))
	fd.Evidence = []string{"DISTRIBUTED_STORAGE_PREFERENCE: [" + strings.Join(pref, ", ") + "]"}
	if len(defaults) > 0 {
		fd.Evidence = append(fd.Evidence, "DISTRIBUTED_STORAGE_DEFAULT_LOCATIONS: ["+strings.Join(defaults, ", ")+"]")
	}
	return []diag.Finding{fd}
}

func checkStorageProbe(ctx context.Context, f diag.Facts) []diag.Finding {
	c := storageProbeCheck
	locs, err := diag.GetJSON[[]string](ctx, f, diag.FactStorageLocations)
	if err != nil {
		fd := c.FactError(diag.FactStorageLocations, err)
		if fd.Severity == diag.Warn {
			fd.Remedy = "check DISTRIBUTED_STORAGE_CONFIG in config.yaml (quayctl config validate)"
		}
		return []diag.Finding{fd}
	}
	if len(locs) == 0 {
		return []diag.Finding{c.Finding(diag.Info, "no storage locations to probe")}
	}
	out := make([]diag.Finding, 0, len(locs))
	for _, loc := range locs {
		name := diag.FactStorageProbe(loc)
		p, err := diag.GetJSON[diag.StorageProbe](ctx, f, name)
		if err != nil {
			fd := c.FactError(name, err)
			fd.Subject = loc
			out = append(out, fd)
			continue
		}
		out = append(out, storageProbeFinding(c, loc, p))
	}
	return out
}

// storageProbeFinding judges one location's probe.
func storageProbeFinding(c diag.Check, loc string, p diag.StorageProbe) diag.Finding {
	fd := c.Finding(diag.OK, "")
	fd.Subject = loc
	where := p.Where
	if where == "" {
		where = "(not known)"
	}
	if reason, ok := strings.CutPrefix(p.Error, storageSkipped); ok && !p.OK {
		fd.Evidence = []string{"driver: " + p.Driver, "where: " + where, reason}
		if p.Driver == storageLocalDriver {
			fd.Severity = diag.Info
			fd.Title = fmt.Sprintf("%s: could not probe %s from here", loc, p.Driver)
			fd.Remedy = "quay's own storage check covers it: quayctl health endtoend (the storage service); or run quayctl on the host that mounts it, or with --podman/--openshift so quayctl can look inside the quay container"
			return fd
		}
		fd.Severity = diag.Warn
		fd.Title = fmt.Sprintf("%s: quayctl cannot probe %s yet", loc, p.Driver)
		fd.Remedy = "check it with the registry's own storage check (quayctl health endtoend) and the provider's tools; see docs/storage-probe.md"
		return fd
	}
	fd.Evidence = []string{"driver: " + p.Driver, "where: " + where}
	if t := storageTimings(p); t != "" {
		fd.Evidence = append(fd.Evidence, t)
	}
	if !p.OK {
		fd.Severity = diag.Fail
		step := "probe"
		for _, s := range p.Steps {
			if !s.OK {
				step = s.Step
				break
			}
		}
		fd.Title = fmt.Sprintf("%s: storage probe failed at %s", loc, step)
		if p.Error != "" {
			fd.Evidence = append(fd.Evidence, p.Error)
		}
		for _, s := range p.Steps {
			if !s.OK && s.Error != "" && s.Error != p.Error {
				fd.Evidence = append(fd.Evidence, s.Step+": "+s.Error)
			}
		}
		fd.Remedy = storageRemedy(p.Driver, step)
		return fd
	}
	if d := p.Download; d != nil && !d.OK {
		fd.Severity = diag.Fail
		fd.Title = fmt.Sprintf("%s: the probe object could not be fetched through a signed URL, as clients are redirected to", loc)
		fd.Evidence = append(fd.Evidence, d.Step+": "+d.Error)
		fd.Remedy = "signed URLs point at the storage endpoint: clients (and with FEATURE_PROXY_STORAGE the quay component) must reach and resolve it, and the clocks must agree (signatures expire); check endpoint_url/hostname and the bucket's policy"
		return fd
	}
	var slow []string
	for _, s := range storageAllSteps(p) {
		if s.ElapsedMS > storageSlowMS {
			slow = append(slow, fmt.Sprintf("%s %s", s.Step, storageDuration(s.ElapsedMS)))
		}
	}
	if len(slow) > 0 {
		fd.Severity = diag.Warn
		fd.Title = fmt.Sprintf("%s: storage is slow (%s; over %s a step)", loc, strings.Join(slow, ", "), storageDuration(storageSlowMS))
		fd.Remedy = "pushes and pulls wait on these calls: check the storage's load and latency from the quay component (network path, disk I/O with iostat, the object store's metrics)"
		return fd
	}
	total := 0.0
	for _, s := range p.Steps {
		total += s.ElapsedMS
	}
	fd.Title = fmt.Sprintf("%s (%s): write, read back and delete in %s", loc, p.Driver, storageDuration(total))
	if p.Download != nil {
		fd.Title += ", signed URL fetch in " + storageDuration(p.Download.ElapsedMS)
	}
	return fd
}

func storageAllSteps(p diag.StorageProbe) []diag.StorageProbeStep {
	steps := slices.Clone(p.Steps)
	if p.Download != nil {
		steps = append(steps, *p.Download)
	}
	return steps
}

// storageTimings is "write 1.2ms, stat 0.3ms, …".
func storageTimings(p diag.StorageProbe) string {
	var parts []string
	for _, s := range storageAllSteps(p) {
		st := s.Step + " " + storageDuration(s.ElapsedMS)
		if !s.OK {
			st += " (failed)"
		}
		parts = append(parts, st)
	}
	if len(parts) == 0 {
		return ""
	}
	return "steps: " + strings.Join(parts, ", ")
}

// storageDuration prints milliseconds readably.
func storageDuration(ms float64) string {
	if ms >= 1000 {
		return fmt.Sprintf("%.1fs", ms/1000)
	}
	return fmt.Sprintf("%.1fms", ms)
}

// storageRemedy says what to look at when a step fails on a driver.
func storageRemedy(driver, step string) string {
	if driver == storageLocalDriver {
		switch step {
		case "open":
			return "create storage_path (or fix it in DISTRIBUTED_STORAGE_CONFIG) on the volume the quay container mounts; if the registry runs on another machine, run quayctl there or with --podman/--openshift; troubleshooting guide 6.3"
		default:
			return "the quay container's user (UID 1001 in Quay's image) must be able to write storage_path: check its owner and mode (ls -ld), that the volume is not mounted read-only, SELinux labels (:Z on podman volumes) and free space (df); troubleshooting guide 6.3"
		}
	}
	if step == "open" {
		return "fix the location's entry in DISTRIBUTED_STORAGE_CONFIG (driver name and parameters, as in docs/storage.md); quayctl config validate names the wrong key"
	}
	return "check that the bucket exists, that the endpoint is reachable from the quay component, and that the access key may put, get and delete objects in it (for example aws s3 ls s3://BUCKET --endpoint-url URL); the error above is the storage's own answer; troubleshooting guide 6.3"
}

func checkStorageProxy(ctx context.Context, f diag.Facts) []diag.Finding {
	c := storageProxyCheck
	cfg, err := storageConfig(ctx, f)
	if err != nil {
		return []diag.Finding{c.FactError(diag.FactConfig, err)}
	}
	quayKey, guideKey := storageTrue(cfg["FEATURE_PROXY_STORAGE"]), storageTrue(cfg["FEATURE_STORAGE_PROXY"])
	switch {
	case quayKey:
		fd := c.Finding(diag.Info, "clients download blobs through the registry (FEATURE_PROXY_STORAGE), not straight from the storage")
		fd.Evidence = []string{"FEATURE_PROXY_STORAGE: true"}
		fd.Remedy = "the quay component fetches each blob from the storage for the client: the storage must be reachable from quay, and the registry carries the download traffic"
		return []diag.Finding{fd}
	case guideKey:
		fd := c.Finding(diag.Warn, "FEATURE_STORAGE_PROXY is set, but Quay reads FEATURE_PROXY_STORAGE: a Quay registry still redirects clients to the storage")
		fd.Evidence = []string{"FEATURE_STORAGE_PROXY: true", "FEATURE_PROXY_STORAGE: not set"}
		fd.Remedy = "set FEATURE_PROXY_STORAGE: true (the troubleshooting guide's FEATURE_STORAGE_PROXY is accepted by quayctl serve only)"
		return []diag.Finding{fd}
	}
	return nil
}
