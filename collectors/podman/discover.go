package podman

import (
	"context"
	"fmt"
	"sort"
	"strings"

	"github.com/containers/podman/v5/libpod/define"
	"github.com/containers/podman/v5/pkg/bindings/containers"
	"github.com/containers/podman/v5/pkg/domain/entities/types"

	"github.com/quayctl/quayctl/collectors"
)

// Container names Quay's documentation and common setups give each role
// (compared case-insensitively). Names win over images.
var roleNames = []struct {
	role  string
	names []string
}{
	{collectors.ComponentQuay, []string{"quay", "quay-app", "quay-registry", "quayctl"}},
	{collectors.ComponentDatabase, []string{"postgresql-quay", "quay-postgresql", "quay-postgres", "quay-db", "quay-database", "postgresql", "postgres"}},
	{collectors.ComponentClairPostgres, []string{"postgresql-clairv4", "postgresql-clair", "clair-postgresql", "clair-postgres", "clairv4-postgres"}},
	{collectors.ComponentRedis, []string{"redis", "quay-redis"}},
	{collectors.ComponentClair, []string{"clair", "clairv4", "quay-clair"}},
	{collectors.ComponentMirror, []string{"quay-mirror", "mirror", "quay-mirroring", "mirroring-worker", "repomirror"}},
	{collectors.ComponentConfigEditor, []string{"quay-config", "quay-config-editor", "quay-config-tool"}},
}

// Image repositories (last path element, tag and digest removed) that run
// Quay itself: Project Quay, Red Hat Quay and quayctl's own image.
var quayImages = map[string]bool{"quay": true, "quay-rhel8": true, "quay-rhel9": true, "quayctl": true}

// imageBase returns the last path element of an image reference without tag
// or digest: "registry.redhat.io/quay/quay-rhel8:v3.11" → "quay-rhel8".
func imageBase(ref string) string {
	ref, _, _ = strings.Cut(ref, "@")
	if i := strings.LastIndex(ref, "/"); i >= 0 {
		ref = ref[i+1:]
	}
	ref, _, _ = strings.Cut(ref, ":")
	return strings.ToLower(ref)
}

// classify returns the role of a container from its name, image and
// command, or "" when it is not part of a Quay deployment.
func classify(name, image string, command []string) string {
	lname := strings.ToLower(strings.TrimPrefix(name, "/"))
	for _, r := range roleNames {
		for _, n := range r.names {
			if lname == n {
				return r.role
			}
		}
	}
	base := imageBase(image)
	switch {
	case quayImages[base]:
		// Quay's image runs the mirror worker and the config editor too
		// (`podman run … quay-rhel8 repomirror` / `… config SECRET`).
		if len(command) > 0 {
			switch command[0] {
			case "repomirror":
				return collectors.ComponentMirror
			case "config":
				return collectors.ComponentConfigEditor
			}
		}
		return collectors.ComponentQuay
	case strings.Contains(base, "clair") && strings.Contains(base, "postgres"):
		return collectors.ComponentClairPostgres
	case strings.Contains(base, "clair"):
		return collectors.ComponentClair
	case strings.Contains(base, "postgres"):
		return collectors.ComponentDatabase
	case strings.Contains(base, "redis"):
		return collectors.ComponentRedis
	}
	return ""
}

// member is one container playing a role.
type member struct {
	role string
	list types.ListContainer
}

func (m member) name() string {
	if len(m.list.Names) > 0 {
		return m.list.Names[0]
	}
	return shortID(m.list.ID)
}

func shortID(id string) string {
	if len(id) > 12 {
		return id[:12]
	}
	return id
}

// members lists the deployment's containers (overrides first, then names
// and images), sorted by role then container name.
func (d *Deployment) members(ctx context.Context) ([]member, error) {
	all, err := containers.List(d.ctx(ctx), new(containers.ListOptions).WithAll(true))
	if err != nil {
		return nil, d.wrap(err, "list containers")
	}
	taken := map[string]bool{} // container IDs with a role from an override
	var out []member
	for _, role := range sortedKeys(d.overrides) {
		want := d.overrides[role]
		found := false
		for _, c := range all {
			if matchesContainer(c, want) {
				out = append(out, member{role: role, list: c})
				taken[c.ID] = true
				found = true
				break
			}
		}
		if !found {
			names := make([]string, 0, len(all))
			for _, c := range all {
				names = append(names, member{list: c}.name())
			}
			sort.Strings(names)
			have := strings.Join(names, ", ")
			if have == "" {
				have = "none"
			}
			return nil, fmt.Errorf("--component %s=%s: no container %q on %s (containers: %s) — check the name with: podman ps -a", role, want, want, d.url, have)
		}
	}
	for _, c := range all {
		if taken[c.ID] || c.IsInfra {
			continue
		}
		role := classify(member{list: c}.name(), c.Image, c.Command)
		if role == "" {
			continue
		}
		if _, overridden := d.overrides[role]; overridden {
			continue // the administrator named this role's container
		}
		out = append(out, member{role: role, list: c})
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].role != out[j].role {
			return out[i].role < out[j].role
		}
		return out[i].name() < out[j].name()
	})
	return out, nil
}

func matchesContainer(c types.ListContainer, want string) bool {
	for _, n := range c.Names {
		if n == want || strings.TrimPrefix(n, "/") == want {
			return true
		}
	}
	return len(want) >= 12 && strings.HasPrefix(c.ID, want)
}

// Components lists the deployment's containers with their state.
func (d *Deployment) Components(ctx context.Context) ([]collectors.Component, error) {
	ms, err := d.members(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]collectors.Component, 0, len(ms))
	for _, m := range ms {
		data, err := containers.Inspect(d.ctx(ctx), m.list.ID, nil)
		if err != nil {
			if apiCode(err) == 404 { // removed since the list
				continue
			}
			return nil, d.wrap(err, "inspect container %s", m.name())
		}
		out = append(out, component(m.role, data))
	}
	return out, nil
}

// component turns inspect data into the collector's view.
func component(role string, data *define.InspectContainerData) collectors.Component {
	name := strings.TrimPrefix(data.Name, "/")
	c := collectors.Component{
		Name:       role,
		Instance:   name,
		Containers: []string{name},
		Image:      data.ImageName,
		Restarts:   int(data.RestartCount),
	}
	if data.Config != nil {
		if c.Image == "" {
			c.Image = data.Config.Image
		}
		if len(data.Config.Labels) > 0 {
			c.Labels = make(map[string]string, len(data.Config.Labels))
			for k, v := range data.Config.Labels {
				c.Labels[k] = v
			}
		}
		c.Env = redactEnv(data.Config.Env)
	}
	if st := data.State; st != nil {
		c.State = stateName(st)
		c.StartedAt = st.StartedAt
		c.Ready = st.Running && !st.Paused && (st.Health == nil || st.Health.Status == "" || st.Health.Status == define.HealthCheckHealthy)
		// The last exit: podman keeps it (and FinishedAt) while the
		// container runs again after a restart.
		if !st.FinishedAt.IsZero() || (!st.Running && st.ExitCode != 0) {
			code := int(st.ExitCode)
			c.ExitCode = &code
			switch {
			case st.OOMKilled:
				c.Reason = "OOMKilled"
			case code != 0 || st.Error != "":
				c.Reason = "Error"
			case !st.Running:
				c.Reason = "Completed"
			}
		} else if st.Error != "" {
			c.Reason = "Error"
		}
	}
	return c
}

// stateName is podman's state as `podman ps` shows it.
func stateName(st *define.InspectContainerState) string {
	switch s := strings.ToLower(st.Status); s {
	case "configured":
		return "created"
	case "":
		if st.Running {
			return "running"
		}
		return "unknown"
	default:
		return s
	}
}

// resolve finds the one container a command about component means: a role
// (quay, database…) or a container name of a recognised component.
func (d *Deployment) resolve(ctx context.Context, component string) (member, error) {
	ms, err := d.members(ctx)
	if err != nil {
		return member{}, err
	}
	var byRole []member
	for _, m := range ms {
		if m.role == component {
			byRole = append(byRole, m)
		}
	}
	if len(byRole) == 0 { // a container name: quayctl logs postgresql-quay
		for _, m := range ms {
			if matchesContainer(m.list, component) {
				return m, nil
			}
		}
	}
	switch len(byRole) {
	case 0:
		seen := map[string]bool{}
		var avail []string
		for _, m := range ms {
			if !seen[m.role] {
				seen[m.role] = true
				avail = append(avail, m.role)
			}
		}
		return member{}, &collectors.ComponentNotFoundError{Name: component, Available: avail}
	case 1:
		return byRole[0], nil
	}
	var running []member
	names := make([]string, 0, len(byRole))
	for _, m := range byRole {
		names = append(names, m.name())
		if m.list.State == "running" {
			running = append(running, m)
		}
	}
	if len(running) == 1 {
		return running[0], nil
	}
	return member{}, fmt.Errorf("component %s has %d containers (%s) — name one instead, for example: quayctl logs %s, or pick one with --component %s=%s",
		component, len(byRole), strings.Join(names, ", "), names[0], component, names[0])
}

// inspect resolves component and inspects its container.
func (d *Deployment) inspect(ctx context.Context, component string) (member, *define.InspectContainerData, error) {
	m, err := d.resolve(ctx, component)
	if err != nil {
		return m, nil, err
	}
	data, err := containers.Inspect(d.ctx(ctx), m.list.ID, nil)
	if err != nil {
		return m, nil, d.wrap(err, "inspect container %s", m.name())
	}
	return m, data, nil
}

func notRunning(m member, data *define.InspectContainerData) error {
	if data.State != nil && data.State.Running && !data.State.Paused {
		return nil
	}
	state := "not running"
	if data.State != nil {
		state = stateName(data.State)
	}
	return &collectors.NotRunningError{Component: m.role, Instance: m.name(), State: state}
}
