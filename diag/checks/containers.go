package checks

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/dustin/go-humanize"

	"github.com/quayctl/quayctl/collectors"
	"github.com/quayctl/quayctl/diag"
)

// Containers and pods (troubleshooting guide 6.1.1.2 and 6.1.1.4): is every
// component up, is it crash-looping or being killed for memory, is it near
// its memory limit, and, on OpenShift, what the QuayRegistry and the
// namespace's events say.
var (
	containersRunning = diag.Check{ID: "containers.running", Area: AreaContainers,
		Title: "every component's container or pod is running and ready", Doc: doc("containers-running")}
	containersRestarts = diag.Check{ID: "containers.restarts", Area: AreaContainers,
		Title: "components that restart often or are in CrashLoopBackOff", Doc: doc("containers-restarts")}
	containersOOM = diag.Check{ID: "containers.oom", Area: AreaContainers,
		Title: "components killed for running out of memory (OOMKilled)", Doc: doc("containers-oom")}
	containersResources = diag.Check{ID: "containers.resources", Area: AreaContainers,
		Title: "memory use against each component's memory limit", Doc: doc("containers-resources")}
	containersQuayRegistry = diag.Check{ID: "containers.quayregistry", Area: AreaContainers,
		Title: "the QuayRegistry's status conditions (OpenShift)", Doc: doc("containers-quayregistry")}
	containersEvents = diag.Check{ID: "containers.events", Area: AreaContainers,
		Title: "warning events of the registry's namespace in the last hour (OpenShift)", Doc: doc("containers-events")}
)

var containerChecks = []diag.Check{
	containersRunning.With(checkContainersRunning),
	containersRestarts.With(checkContainersRestarts),
	containersOOM.With(checkContainersOOM),
	containersResources.With(checkContainersResources),
	containersQuayRegistry.With(checkContainersQuayRegistry),
	containersEvents.With(checkContainersEvents),
}

// Thresholds. A restart count is cumulative (podman counts since the
// container was created, Kubernetes since the pod was), so a few restarts
// are worth a look and many mean a crash loop even when the component
// happens to be up right now.
const (
	containersRestartsWarn = 3
	containersRestartsFail = 10
	containersMemWarnPct   = 90.0
	containersMemFailPct   = 97.0
	// containersRecentStart: a component that restarted several times and
	// started again less than this ago is crash-looping now.
	containersRecentStart = 10 * time.Minute
	// containersEventWindow is how far back namespace events count.
	containersEventWindow = time.Hour
)

// containersNow is the clock of the events window (tests fix it).
var containersNow = time.Now

// containersCritical are the components Quay cannot serve without; the
// others (Clair, mirror workers, the Operator's extras) degrade one feature,
// so their findings stop at warn. The Operator's upgrade jobs are critical:
// a failed migration blocks the rollout.
var containersCritical = []string{
	collectors.ComponentQuay, collectors.ComponentDatabase, collectors.ComponentRedis,
	collectors.ComponentAppUpgrade, collectors.ComponentPGUpgrade,
}

// containersJobs run to completion: Succeeded is their healthy end.
var containersJobs = []string{collectors.ComponentAppUpgrade, collectors.ComponentPGUpgrade}

// containersStateExternal is a direct target's component: quayctl knows of
// it but sees no container (collectors/direct.StateExternal).
const containersStateExternal = "external"

// containersSeverity caps sev at warn for components Quay can serve without.
func containersSeverity(component string, sev diag.Severity) diag.Severity {
	if sev == diag.Fail && !slices.Contains(containersCritical, component) {
		return diag.Warn
	}
	return sev
}

// containersLabel names a component the way an administrator finds it:
// "quay (quay-app)".
func containersLabel(c collectors.Component) string {
	if c.Instance == "" || c.Instance == c.Name {
		return c.Name
	}
	return fmt.Sprintf("%s (%s)", c.Name, c.Instance)
}

// containersEvidence is what `podman ps`/`oc get pods` would show of c.
func containersEvidence(c collectors.Component) []string {
	ev := []string{fmt.Sprintf("state: %s, ready: %t, restarts: %d", c.State, c.Ready, c.Restarts)}
	if c.ExitCode != nil || c.Reason != "" {
		last := "last exit:"
		if c.ExitCode != nil {
			last += fmt.Sprintf(" code %d", *c.ExitCode)
		}
		if c.Reason != "" {
			last += " (" + c.Reason + ")"
		}
		ev = append(ev, last)
	}
	if !c.StartedAt.IsZero() {
		ev = append(ev, "started at: "+c.StartedAt.UTC().Format(time.RFC3339))
	}
	if c.Image != "" {
		ev = append(ev, "image: "+c.Image)
	}
	return ev
}

// containersList reads components.json. ok is false when it cannot be
// read: containers.running reports that once, the other checks stay quiet.
func containersList(ctx context.Context, f diag.Facts) ([]collectors.Component, bool) {
	cs, err := diag.GetJSON[[]collectors.Component](ctx, f, diag.FactComponents)
	if err != nil {
		return nil, false
	}
	return cs, true
}

// containersTargetKind is target.json's kind ("" when unknown).
func containersTargetKind(ctx context.Context, f diag.Facts) string {
	t, err := diag.GetJSON[diag.Target](ctx, f, diag.FactTarget)
	if err != nil {
		return ""
	}
	return t.Kind
}

const containersRemedyStatus = "see every component's state with quayctl status"

func checkContainersRunning(ctx context.Context, f diag.Facts) []diag.Finding {
	c := containersRunning
	cs, err := diag.GetJSON[[]collectors.Component](ctx, f, diag.FactComponents)
	if err != nil {
		fe := c.FactError(diag.FactComponents, err)
		if fe.Severity == diag.Warn {
			fe.Remedy = "list the components by hand with quayctl status (it shows the same error with more detail); " +
				"on podman check that the podman service answers (systemctl --user status podman.socket)"
		}
		return []diag.Finding{fe}
	}
	direct := containersTargetKind(ctx, f) == "direct"
	if len(cs) == 0 {
		if direct {
			fd := c.Finding(diag.Info, "no containers or pods to look at: the target is a direct connection")
			fd.Remedy = "point quayctl at the deployment (--podman or --openshift) to check its containers"
			return []diag.Finding{fd}
		}
		fd := c.Finding(diag.Fail, "no Quay components found: no quay, database or redis container or pod")
		fd.Remedy = "check the target: quayctl status lists what quayctl recognises; name a container with " +
			"--component quay=CONTAINER (podman) or choose the namespace with -n (OpenShift)"
		return []diag.Finding{fd}
	}
	var out []diag.Finding
	if !direct && !slices.ContainsFunc(cs, func(x collectors.Component) bool { return x.Name == collectors.ComponentQuay }) {
		var have []string
		for _, x := range cs {
			if !slices.Contains(have, x.Name) {
				have = append(have, x.Name)
			}
		}
		fd := c.Finding(diag.Fail, "no quay component: the registry itself is not among the containers or pods")
		fd.Subject = collectors.ComponentQuay
		fd.Evidence = []string{"components found: " + strings.Join(have, ", ")}
		fd.Remedy = "start the Quay container (podman) or check the QuayRegistry's quay component (oc get pods -l quay-component=quay-app); " +
			"if it has an unusual name, map it with --component quay=CONTAINER; " + containersRemedyStatus
		out = append(out, fd)
	}
	for _, x := range cs {
		out = append(out, containersRunningFinding(c, x))
	}
	return out
}

func containersRunningFinding(c diag.Check, x collectors.Component) diag.Finding {
	label := containersLabel(x)
	fd := c.Finding(diag.OK, "")
	fd.Subject = x.Name
	fd.Evidence = containersEvidence(x)
	state := strings.ToLower(x.State)
	switch {
	case state == containersStateExternal:
		fd.Severity = diag.Info
		fd.Title = label + " is external: quayctl sees no container or pod for it"
		fd.Evidence = nil
	case x.Running() && x.Ready:
		fd.Title = fmt.Sprintf("%s running, %d restarts", label, x.Restarts)
	case x.Running():
		fd.Severity = diag.Warn
		fd.Title = label + " is running but not ready"
		fd.Remedy = fmt.Sprintf("its health check or readiness probe fails: it may still be starting (wait a minute and re-run), "+
			"else read its log with quayctl logs %s and run quayctl diagnose --only health", x.Name)
	case slices.Contains(containersJobs, x.Name) && (state == "succeeded" || state == "completed"):
		fd.Title = label + " completed"
	default:
		fd.Severity = containersSeverity(x.Name, diag.Fail)
		fd.Title = fmt.Sprintf("%s is not running (%s)", label, x.State)
		if x.Reason != "" && !strings.EqualFold(x.Reason, x.State) {
			fd.Title = fmt.Sprintf("%s is not running (%s, last exit %s)", label, x.State, x.Reason)
		}
		fd.Remedy = fmt.Sprintf("read why it stopped with quayctl logs %s --previous (and quayctl logs %s); %s; "+
			"once the cause is fixed start it again (podman start %s, or on OpenShift the pod restarts by itself)",
			x.Name, x.Name, containersRemedyStatus, x.Instance)
		if slices.Contains(containersJobs, x.Name) {
			fd.Remedy = fmt.Sprintf("the Operator's %s job failed: read its log with quayctl logs %s --openshift, "+
				"fix the cause (often the database or the config bundle) and let the Operator retry", x.Name, x.Name)
		}
	}
	return fd
}

func checkContainersRestarts(ctx context.Context, f diag.Facts) []diag.Finding {
	c := containersRestarts
	cs, ok := containersList(ctx, f)
	if !ok {
		return nil
	}
	var out []diag.Finding
	for _, x := range cs {
		crash := strings.EqualFold(x.State, "CrashLoopBackOff")
		restarting := strings.EqualFold(x.State, "restarting")
		if !crash && !restarting && x.Restarts < containersRestartsWarn {
			continue
		}
		recent := x.Restarts >= containersRestartsWarn && !x.StartedAt.IsZero() &&
			containersNow().Sub(x.StartedAt) < containersRecentStart
		sev := diag.Warn
		if crash || recent || x.Restarts >= containersRestartsFail {
			sev = diag.Fail
		}
		fd := c.Finding(containersSeverity(x.Name, sev), "")
		fd.Subject = x.Name
		label := containersLabel(x)
		switch {
		case crash:
			fd.Title = fmt.Sprintf("%s is in CrashLoopBackOff after %d restarts", label, x.Restarts)
		case restarting:
			fd.Title = fmt.Sprintf("%s is restarting (%d restarts so far)", label, x.Restarts)
		case recent:
			fd.Title = fmt.Sprintf("%s has restarted %d times, the last %s ago: it is crash-looping",
				label, x.Restarts, containersNow().Sub(x.StartedAt).Round(time.Second))
		default:
			fd.Title = fmt.Sprintf("%s has restarted %d times", label, x.Restarts)
		}
		fd.Evidence = containersEvidence(x)
		fd.Remedy = fmt.Sprintf("read the log of the instance that crashed with quayctl logs %s --previous; "+
			"quayctl diagnose --only logs scans it for known errors; the count is cumulative since the container "+
			"(or pod) was created, so compare the started-at time: a recent start means it is still crashing", x.Name)
		out = append(out, fd)
	}
	return out
}

// containersMemoryHint is how to raise a memory limit where the component
// runs.
const containersMemoryHint = "raise its memory limit: on podman re-create the container with a larger --memory " +
	"(for example --memory=8g); on OpenShift set resources.limits.memory in the component's overrides of the " +
	"QuayRegistry (oc edit quayregistry), and check the node has that much to give"

func checkContainersOOM(ctx context.Context, f diag.Facts) []diag.Finding {
	c := containersOOM
	cs, ok := containersList(ctx, f)
	if !ok {
		return nil
	}
	var out []diag.Finding
	for _, x := range cs {
		if !strings.EqualFold(x.Reason, "OOMKilled") && !strings.EqualFold(x.State, "OOMKilled") {
			continue
		}
		fd := c.Finding(containersSeverity(x.Name, diag.Fail),
			containersLabel(x)+" was killed for running out of memory (OOMKilled)")
		fd.Subject = x.Name
		fd.Evidence = containersEvidence(x)
		if st, err := diag.GetJSON[collectors.Stats](ctx, f, diag.FactStats(x.Name)); err == nil && x.Running() {
			fd.Evidence = append(fd.Evidence, containersMemoryLine(st))
		}
		fd.Remedy = containersMemoryHint + fmt.Sprintf("; see what it was doing with quayctl logs %s --previous", x.Name)
		out = append(out, fd)
	}
	return out
}

func containersMemoryLine(st collectors.Stats) string {
	limit := "no limit"
	if st.MemoryLimitBytes > 0 {
		limit = "limit " + humanize.IBytes(st.MemoryLimitBytes)
	}
	return fmt.Sprintf("memory: %s (%s), CPU %.1f%%", humanize.IBytes(st.MemoryBytes), limit, st.CPUPercent)
}

func checkContainersResources(ctx context.Context, f diag.Facts) []diag.Finding {
	c := containersResources
	cs, ok := containersList(ctx, f)
	if !ok {
		return nil
	}
	var out []diag.Finding
	seen := map[string]bool{}
	for _, x := range cs {
		// Stats are per component name; a component not running has none
		// (containers.running says so).
		if seen[x.Name] || !x.Running() {
			continue
		}
		seen[x.Name] = true
		name := diag.FactStats(x.Name)
		st, err := diag.GetJSON[collectors.Stats](ctx, f, name)
		if err != nil {
			if errors.Is(err, diag.ErrNotApplicable) || errors.Is(err, diag.ErrOffline) {
				continue
			}
			fe := c.FactError(name, err)
			fe.Subject = x.Name
			fe.Remedy = "read it by hand with podman stats " + x.Instance + " (or oc adm top pods on OpenShift)"
			out = append(out, fe)
			continue
		}
		if st.MemoryLimitBytes == 0 {
			continue // unlimited: nothing to be near
		}
		pct := 100 * float64(st.MemoryBytes) / float64(st.MemoryLimitBytes)
		if pct < containersMemWarnPct {
			continue
		}
		sev := diag.Warn
		if pct >= containersMemFailPct {
			sev = diag.Fail
		}
		fd := c.Finding(containersSeverity(x.Name, sev), fmt.Sprintf("%s uses %.0f%% of its memory limit (%s of %s)",
			containersLabel(x), pct, humanize.IBytes(st.MemoryBytes), humanize.IBytes(st.MemoryLimitBytes)))
		fd.Subject = x.Name
		fd.Evidence = []string{containersMemoryLine(st)}
		if st.PIDs > 0 {
			fd.Evidence = append(fd.Evidence, fmt.Sprintf("processes: %d", st.PIDs))
		}
		fd.Remedy = "it will be OOMKilled when it reaches the limit: " + containersMemoryHint
		out = append(out, fd)
	}
	return out
}

// containersRegistry is the part of openshift/quayregistry.json (the
// OpenShift collector's RegistryStatus) these checks read; diag keeps no
// Kubernetes types.
type containersRegistry struct {
	Namespace      string `json:"namespace"`
	Name           string `json:"name"`
	CurrentVersion string `json:"current_version"`
	Conditions     []struct {
		Type               string    `json:"type"`
		Status             string    `json:"status"`
		Reason             string    `json:"reason"`
		Message            string    `json:"message"`
		LastTransitionTime time.Time `json:"last_transition_time"`
	} `json:"conditions"`
}

// containersEvent is one entry of openshift/events.json.
type containersEvent struct {
	Type     string    `json:"type"`
	Reason   string    `json:"reason"`
	Object   string    `json:"object"`
	Message  string    `json:"message"`
	Count    int       `json:"count"`
	LastTime time.Time `json:"last_time"`
}

// containersOpenShiftFact reads an OpenShift-only fact: skipped quietly
// elsewhere (podman, direct), a warning when it should be there but is not.
func containersOpenShiftFact[T any](ctx context.Context, f diag.Facts, c diag.Check, name string) (T, []diag.Finding, bool) {
	v, err := diag.GetJSON[T](ctx, f, name)
	if err == nil {
		return v, nil, true
	}
	if errors.Is(err, diag.ErrNotApplicable) || errors.Is(err, diag.ErrOffline) {
		return v, nil, false
	}
	fe := c.FactError(name, err)
	fe.Remedy = "quayctl needs get on quayregistries and list on events in the namespace (docs/openshift.md lists the RBAC)"
	return v, []diag.Finding{fe}, false
}

func checkContainersQuayRegistry(ctx context.Context, f diag.Facts) []diag.Finding {
	c := containersQuayRegistry
	reg, errs, ok := containersOpenShiftFact[containersRegistry](ctx, f, c, diag.FactOpenShiftCR)
	if !ok {
		return errs
	}
	subject := reg.Namespace + "/" + reg.Name
	var evidence []string
	var blocked, unavailable, migrations, notReady []string
	for _, cd := range reg.Conditions {
		line := fmt.Sprintf("%s=%s", cd.Type, cd.Status)
		if cd.Reason != "" {
			line += " (" + cd.Reason + ")"
		}
		if cd.Message != "" {
			line += ": " + cd.Message
		}
		if !cd.LastTransitionTime.IsZero() {
			line += " since " + cd.LastTransitionTime.UTC().Format(time.RFC3339)
		}
		evidence = append(evidence, line)
		switch {
		case cd.Reason == "MigrationsFailed":
			migrations = append(migrations, cd.Type)
		case cd.Type == "Available" && cd.Status == "False":
			unavailable = append(unavailable, cd.Reason)
		case cd.Type == "RolloutBlocked" && cd.Status == "True":
			blocked = append(blocked, cd.Reason)
		case strings.HasPrefix(cd.Type, "Component") && strings.HasSuffix(cd.Type, "Ready") && cd.Status == "False":
			notReady = append(notReady, strings.TrimSuffix(strings.TrimPrefix(cd.Type, "Component"), "Ready"))
		}
	}
	fd := c.Finding(diag.OK, "")
	fd.Subject = subject
	fd.Evidence = evidence
	const logs = "read the Operator's log with quayctl logs operator --openshift and the registry's with quayctl logs quay --openshift"
	switch {
	case len(migrations) > 0:
		fd.Severity = diag.Fail
		fd.Title = "QuayRegistry " + subject + ": database migrations failed"
		fd.Remedy = "read the upgrade job's log with quayctl logs quay-app-upgrade --openshift; check the database " +
			"(quayctl diagnose --only database) and restore from backup if a migration broke half-way"
	case len(blocked) > 0:
		fd.Severity = diag.Fail
		fd.Title = "QuayRegistry " + subject + ": rollout blocked (" + strings.Join(blocked, ", ") + ")"
		fd.Remedy = "the Operator will not roll out until the cause is fixed: a ConfigInvalid or ComponentOverrideInvalid " +
			"reason means the config bundle or spec.components is wrong (quayctl config validate); " + logs
	case len(unavailable) > 0:
		fd.Severity = diag.Fail
		fd.Title = "QuayRegistry " + subject + " is not Available (" + strings.Join(unavailable, ", ") + ")"
		fd.Remedy = "the conditions say which component is not ready: " + logs + "; quayctl status shows the pods"
	case len(notReady) > 0:
		fd.Severity = diag.Warn
		fd.Title = "QuayRegistry " + subject + ": components not ready: " + strings.Join(notReady, ", ")
		fd.Remedy = "quayctl status shows the pods; " + logs
	default:
		fd.Title = "QuayRegistry " + subject + " is Available"
		if reg.CurrentVersion != "" {
			fd.Title += " (version " + reg.CurrentVersion + ")"
		}
	}
	return []diag.Finding{fd}
}

// containersEventRemedies are the Warning event reasons reported, each
// with what to do and how bad it is.
var containersEventRemedies = map[string]struct {
	sev    diag.Severity
	remedy string
}{
	"BackOff": {diag.Warn, "a container keeps crashing (or an image cannot be pulled): quayctl logs COMPONENT --previous " +
		"shows why; oc describe pod POD shows which container"},
	"OOMKilling": {diag.Fail, "the node killed a process for memory: " + containersMemoryHint},
	"FailedScheduling": {diag.Fail, "no node can take the pod: check its memory and CPU requests against the nodes, " +
		"node selectors and affinity, and that its PersistentVolumeClaims are bound (oc describe pod POD)"},
	"FailedMount": {diag.Fail, "a volume or secret cannot be mounted: check the PersistentVolumeClaim and that the " +
		"config bundle secret named by the QuayRegistry exists (oc describe pod POD)"},
	"Unhealthy": {diag.Warn, "a liveness or readiness probe fails: quayctl diagnose --only health,logs"},
	"Failed": {diag.Warn, "a container failed to start, often an image pull (ErrImagePull): check the image and the " +
		"pull secret (oc describe pod POD)"},
	"Evicted": {diag.Warn, "the node evicted a pod under resource pressure (memory or disk): check the node and the pod's requests"},
}

// containersMaxEvents bounds the event lines of one finding.
const containersMaxEvents = 5

func checkContainersEvents(ctx context.Context, f diag.Facts) []diag.Finding {
	c := containersEvents
	evs, errs, ok := containersOpenShiftFact[[]containersEvent](ctx, f, c, diag.FactOpenShiftEvt)
	if !ok {
		return errs
	}
	since := containersNow().Add(-containersEventWindow)
	byReason := map[string][]containersEvent{}
	for _, e := range evs {
		if e.Type != "Warning" || e.LastTime.Before(since) {
			continue
		}
		if _, known := containersEventRemedies[e.Reason]; known {
			byReason[e.Reason] = append(byReason[e.Reason], e)
		}
	}
	if len(byReason) == 0 {
		fd := c.Finding(diag.OK, fmt.Sprintf("no warning events that point at a failing pod in the last hour (%d events in all)", len(evs)))
		return []diag.Finding{fd}
	}
	reasons := make([]string, 0, len(byReason))
	for r := range byReason {
		reasons = append(reasons, r)
	}
	sort.Strings(reasons)
	var out []diag.Finding
	for _, r := range reasons {
		list := byReason[r]
		sort.SliceStable(list, func(i, j int) bool { return list[i].LastTime.Before(list[j].LastTime) })
		total := 0
		for _, e := range list {
			total += max(e.Count, 1)
		}
		meta := containersEventRemedies[r]
		fd := c.Finding(meta.sev, fmt.Sprintf("%d %s warning events in the last hour", total, r))
		fd.Subject = r
		if len(list) > containersMaxEvents {
			fd.Evidence = append(fd.Evidence, fmt.Sprintf("(the last %d of %d objects)", containersMaxEvents, len(list)))
			list = list[len(list)-containersMaxEvents:]
		}
		for _, e := range list {
			fd.Evidence = append(fd.Evidence, fmt.Sprintf("%s %s %s (x%d): %s",
				e.LastTime.UTC().Format(time.RFC3339), e.Object, e.Reason, max(e.Count, 1), e.Message))
		}
		fd.Remedy = meta.remedy
		out = append(out, fd)
	}
	return out
}
