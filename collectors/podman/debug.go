package podman

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/containers/podman/v5/libpod/define"
	"github.com/containers/podman/v5/pkg/bindings/containers"
	"github.com/containers/podman/v5/pkg/signal"
	"github.com/containers/podman/v5/pkg/specgen"
	spec "github.com/opencontainers/runtime-spec/specs-go"
	nettypes "go.podman.io/common/libnetwork/types"

	"github.com/quayctl/quayctl/collectors"
)

// DebugEnv is the variable that turns on Quay's debug logs.
const DebugEnv = "DEBUGLOG"

// debugOn reports whether env sets DEBUGLOG=true (Quay compares
// case-insensitively).
func debugOn(env []string) (on, present bool) {
	for _, kv := range env {
		k, v, _ := strings.Cut(kv, "=")
		if k == DebugEnv {
			on, present = strings.EqualFold(v, "true"), true
		}
	}
	return on, present
}

// withDebug returns env with DEBUGLOG=true added (on) or removed (off).
func withDebug(env []string, on bool) []string {
	out := make([]string, 0, len(env)+1)
	for _, kv := range env {
		if k, _, _ := strings.Cut(kv, "="); k != DebugEnv {
			out = append(out, kv)
		}
	}
	if on {
		out = append(out, DebugEnv+"=true")
	}
	return out
}

// PlanDebug says what SetDebug(on) would do to the quay container.
func (d *Deployment) PlanDebug(ctx context.Context, on bool) (collectors.DebugPlan, error) {
	_, data, err := d.inspect(ctx, collectors.ComponentQuay)
	if err != nil {
		return collectors.DebugPlan{}, err
	}
	p := plan(data, on)
	if !p.NoOp {
		if err := recreatable(data); err != nil {
			return p, err
		}
	}
	return p, nil
}

// recreatable refuses containers quayctl cannot re-create safely.
func recreatable(data *define.InspectContainerData) error {
	name := strings.TrimPrefix(data.Name, "/")
	if data.HostConfig != nil && data.HostConfig.AutoRemove {
		return fmt.Errorf("container %s was started with --rm: stopping it would delete it and its anonymous volumes, so quayctl will not re-create it — run it again by hand with -e %s=true (or without it)", name, DebugEnv)
	}
	if data.IsInfra {
		return fmt.Errorf("container %s is a pod's infra container and cannot be re-created", name)
	}
	return nil
}

func plan(data *define.InspectContainerData, on bool) collectors.DebugPlan {
	name := strings.TrimPrefix(data.Name, "/")
	p := collectors.DebugPlan{Target: "container " + name}
	var env []string
	if data.Config != nil {
		env = data.Config.Env
	}
	cur, present := debugOn(env)
	if cur == on {
		p.NoOp = true
		if on {
			p.Changes = []string{fmt.Sprintf("container %s already runs with %s=true", name, DebugEnv)}
		} else {
			p.Changes = []string{fmt.Sprintf("container %s already runs without %s=true", name, DebugEnv)}
		}
		return p
	}
	switch {
	case on && present:
		p.Changes = append(p.Changes, fmt.Sprintf("set env %s=true (now %s)", DebugEnv, envValue(env, DebugEnv)))
	case on:
		p.Changes = append(p.Changes, fmt.Sprintf("add env %s=true", DebugEnv))
	default:
		p.Changes = append(p.Changes, fmt.Sprintf("remove env %s=%s", DebugEnv, envValue(env, DebugEnv)))
	}
	image := data.ImageName
	if image == "" && data.Config != nil {
		image = data.Config.Image
	}
	if data.State != nil && data.State.Running {
		p.Changes = append(p.Changes, fmt.Sprintf("stop container %s (%s)", name, shortID(data.ID)))
	}
	p.Changes = append(p.Changes,
		fmt.Sprintf("rename it to %s (kept until the new container runs, restored if anything fails)", backupName(name)),
		fmt.Sprintf("re-create container %s from %s (image %s) with the same command, entrypoint, env, mounts and volumes, network, ports, labels, user, workdir, restart policy and limits", name, image, shortID(data.Image)),
		fmt.Sprintf("start container %s, then remove %s (volumes are kept)", name, backupName(name)))
	if data.Config != nil {
		if unit := data.Config.Labels["PODMAN_SYSTEMD_UNIT"]; unit != "" {
			p.Changes = append(p.Changes, fmt.Sprintf("note: %s is managed by systemd unit %s; the unit will not know the new container — prefer Environment=%s=true in the unit", name, unit, DebugEnv))
		}
	}
	if data.Pod != "" {
		p.Changes = append(p.Changes, fmt.Sprintf("note: %s is in pod %s; the new container joins the same pod", name, shortID(data.Pod)))
	}
	return p
}

func envValue(env []string, key string) string {
	v := ""
	for _, kv := range env {
		if k, val, _ := strings.Cut(kv, "="); k == key {
			v = val
		}
	}
	return v
}

func backupName(name string) string { return name + "-quayctl-previous" }

// SetDebug re-creates the quay container with DEBUGLOG=true (on) or without
// it (off), keeping everything else, as the troubleshooting guide's chapter
// 2.1 does by hand with podman run -e DEBUGLOG=true.
//
// The original container is stopped and renamed, not removed, until the new
// one has started; if creating or starting the new one fails, it is removed
// and the original gets its name back (and is started again if it was
// running). Once the original has been stopped, the steps run to the end
// even if ctx is cancelled.
func (d *Deployment) SetDebug(ctx context.Context, on bool) error {
	_, data, err := d.inspect(ctx, collectors.ComponentQuay)
	if err != nil {
		return err
	}
	if plan(data, on).NoOp {
		return nil
	}
	if err := recreatable(data); err != nil {
		return fmt.Errorf("debug %s: %w", onOff(on), err)
	}
	name := strings.TrimPrefix(data.Name, "/")
	if exists, err := containers.Exists(d.ctx(ctx), backupName(name), nil); err != nil {
		return d.wrap(err, "debug %s: check for container %s", onOff(on), backupName(name))
	} else if exists {
		return fmt.Errorf("debug %s: a container named %s already exists (left by an interrupted quayctl debug?) — check it with podman ps -a, remove it with podman rm %s, then try again (nothing was changed)",
			onOff(on), backupName(name), backupName(name))
	}
	var env []string
	if data.Config != nil {
		env = data.Config.Env
	}
	s, err := specFromInspect(data, withDebug(env, on))
	if err != nil {
		return fmt.Errorf("debug %s: cannot re-create container %s: %w (nothing was changed)", onOff(on), name, err)
	}
	if err := s.Validate(); err != nil {
		return fmt.Errorf("debug %s: the new spec for container %s is not valid: %w (nothing was changed)", onOff(on), name, err)
	}
	wasRunning := data.State != nil && data.State.Running

	// From here on the container is changed: finish (or roll back) even if
	// the caller gives up.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Minute)
	defer cancel()
	cctx := d.ctx(ctx)
	if wasRunning {
		stop := new(containers.StopOptions)
		if data.Config != nil && data.Config.StopTimeout > 0 {
			stop.WithTimeout(data.Config.StopTimeout)
		}
		if err := containers.Stop(cctx, data.ID, stop); err != nil {
			return d.wrap(err, "debug %s: stop container %s (nothing else was changed)", onOff(on), name)
		}
	}
	restore := func(cause error, newID string) error {
		var errs []error
		if newID != "" {
			if _, err := containers.Remove(cctx, newID, new(containers.RemoveOptions).WithForce(true).WithVolumes(false)); err != nil {
				errs = append(errs, fmt.Errorf("remove the new container: %w", err))
			}
		}
		if err := containers.Rename(cctx, data.ID, new(containers.RenameOptions).WithName(name)); err != nil {
			errs = append(errs, fmt.Errorf("rename %s back to %s: %w", backupName(name), name, err))
		}
		if wasRunning {
			if err := containers.Start(cctx, data.ID, nil); err != nil {
				errs = append(errs, fmt.Errorf("start the original container: %w", err))
			}
		}
		if len(errs) > 0 {
			return fmt.Errorf("debug %s: %w; restoring the original container also failed: %v — it is container %s (%s); fix it with podman rename/podman start", onOff(on), cause, errors.Join(errs...), backupName(name), shortID(data.ID))
		}
		return fmt.Errorf("debug %s: %w; the original container %s was restored unchanged", onOff(on), cause, name)
	}
	if err := containers.Rename(cctx, data.ID, new(containers.RenameOptions).WithName(backupName(name))); err != nil {
		err = d.wrap(err, "rename container %s", name)
		if wasRunning {
			if serr := containers.Start(cctx, data.ID, nil); serr != nil {
				return fmt.Errorf("debug %s: %w; starting it again also failed: %v", onOff(on), err, serr)
			}
		}
		return fmt.Errorf("debug %s: %w; container %s was left as it was", onOff(on), err, name)
	}
	created, err := containers.CreateWithSpec(cctx, s, nil)
	if err != nil {
		return restore(d.wrap(err, "create the new container %s", name), "")
	}
	if err := containers.Start(cctx, created.ID, nil); err != nil {
		return restore(d.wrap(err, "start the new container %s", name), created.ID)
	}
	if _, err := containers.Remove(cctx, data.ID, new(containers.RemoveOptions).WithForce(true).WithVolumes(false)); err != nil {
		return d.wrap(err, "debug %s: the new container %s runs, but removing the original (%s, now %s) failed — remove it with: podman rm %s",
			onOff(on), name, shortID(data.ID), backupName(name), backupName(name))
	}
	// An image that sets DEBUGLOG itself cannot be switched off by the
	// container's environment.
	got, err := containers.Inspect(cctx, created.ID, nil)
	if err == nil && got.Config != nil {
		if now, _ := debugOn(got.Config.Env); now != on {
			return fmt.Errorf("debug %s: container %s was re-created but its environment still has %s=%s (set by image %s?) — run it with -e %s=false",
				onOff(on), name, DebugEnv, envValue(got.Config.Env, DebugEnv), data.ImageName, DebugEnv)
		}
	}
	return nil
}

func onOff(on bool) string {
	if on {
		return "on"
	}
	return "off"
}

// specFromInspect builds the spec that re-creates the container described by
// data, with env as its environment. It keeps the image (by ID, showing the
// same image name), name, command and entrypoint, mounts and volumes (named
// and anonymous volumes are reused by name), network mode and networks, port
// mappings, restart policy, labels, user, workdir, hostname, DNS and hosts,
// resource limits, ulimits, capabilities, security options, devices, log
// driver, stop signal and timeout, healthcheck and pod.
func specFromInspect(data *define.InspectContainerData, env []string) (*specgen.SpecGenerator, error) {
	if data.Config == nil || data.HostConfig == nil {
		return nil, errors.New("podman returned no configuration for it")
	}
	cfg, hc := data.Config, data.HostConfig
	s := specgen.NewSpecGenerator(data.Image, false)
	s.Name = strings.TrimPrefix(data.Name, "/")
	s.RawImageName = data.ImageName
	s.Command = cfg.Cmd
	if len(cfg.Entrypoint) > 0 && !(len(cfg.Entrypoint) == 1 && cfg.Entrypoint[0] == "") {
		s.Entrypoint = cfg.Entrypoint
	}
	s.Env = map[string]string{}
	for _, kv := range env {
		k, v, _ := strings.Cut(kv, "=")
		// podman sets HOSTNAME itself; keeping the old container's value
		// would be wrong when the hostname is the container ID.
		if k == "HOSTNAME" && (v == cfg.Hostname || v == shortID(data.ID)) {
			continue
		}
		s.Env[k] = v
	}
	s.Labels = copyMap(cfg.Labels)
	s.Annotations = userAnnotations(cfg.Annotations)
	s.User = cfg.User
	s.WorkDir = cfg.WorkingDir
	s.Terminal = boolPtr(cfg.Tty)
	s.Stdin = boolPtr(cfg.OpenStdin)
	if cfg.StopSignal != "" {
		if sig, err := signal.ParseSignalNameOrNumber(cfg.StopSignal); err == nil {
			s.StopSignal = &sig
		}
	}
	if cfg.StopTimeout > 0 {
		st := cfg.StopTimeout
		s.StopTimeout = &st
	}
	s.Timeout = cfg.Timeout
	s.SdNotifyMode = cfg.SdNotifyMode
	if cfg.Umask != "" && cfg.Umask != "0022" {
		s.Umask = cfg.Umask
	}
	s.Timezone = cfg.Timezone
	if cfg.Healthcheck != nil {
		s.HealthConfig = cfg.Healthcheck
		if a, err := define.ParseHealthCheckOnFailureAction(cfg.HealthcheckOnFailureAction); err == nil {
			s.HealthCheckOnFailureAction = a
		}
	}
	if cfg.StartupHealthCheck != nil {
		s.StartupHealthConfig = cfg.StartupHealthCheck
	}
	for _, sec := range cfg.Secrets {
		if sec != nil {
			s.Secrets = append(s.Secrets, specgen.Secret{Source: sec.Name, UID: sec.UID, GID: sec.GID, Mode: sec.Mode})
		}
	}

	// Restart policy.
	if rp := hc.RestartPolicy; rp != nil && rp.Name != "" && rp.Name != "no" {
		s.RestartPolicy = rp.Name
		if rp.MaximumRetryCount > 0 {
			n := rp.MaximumRetryCount
			s.RestartRetries = &n
		}
	}

	// Mounts and volumes.
	seen := map[string]bool{}
	for _, mt := range data.Mounts {
		if seen[mt.Destination] {
			continue
		}
		seen[mt.Destination] = true
		opts := mountOptions(mt)
		switch mt.Type {
		case "volume":
			s.Volumes = append(s.Volumes, &specgen.NamedVolume{Name: mt.Name, Dest: mt.Destination, Options: opts, SubPath: mt.SubPath})
		case "bind":
			s.Mounts = append(s.Mounts, spec.Mount{Type: "bind", Source: mt.Source, Destination: mt.Destination, Options: opts})
		case "tmpfs":
			s.Mounts = append(s.Mounts, spec.Mount{Type: "tmpfs", Source: "tmpfs", Destination: mt.Destination, Options: opts})
		case "image":
			s.ImageVolumes = append(s.ImageVolumes, &specgen.ImageVolume{Source: mt.Source, Destination: mt.Destination, ReadWrite: mt.RW})
		default:
			return nil, fmt.Errorf("mount %s of type %q cannot be carried over", mt.Destination, mt.Type)
		}
	}
	for _, dest := range sortedKeys(hc.Tmpfs) {
		if seen[dest] {
			continue
		}
		seen[dest] = true
		var opts []string
		if o := hc.Tmpfs[dest]; o != "" {
			opts = strings.Split(o, ",")
		}
		s.Mounts = append(s.Mounts, spec.Mount{Type: "tmpfs", Source: "tmpfs", Destination: dest, Options: opts})
	}
	s.VolumesFrom = hc.VolumesFrom

	// Namespaces and networking.
	if data.Pod != "" {
		s.Pod = data.Pod
	} else {
		if err := networkSpec(s, data); err != nil {
			return nil, err
		}
		if hc.UTSMode == "host" {
			s.UtsNS = specgen.Namespace{NSMode: specgen.Host}
		} else if cfg.Hostname != "" && cfg.Hostname != shortID(data.ID) {
			s.UtsNS = specgen.Namespace{NSMode: specgen.Private}
			s.Hostname = cfg.Hostname
		}
		if hc.IpcMode == "host" {
			s.IpcNS = specgen.Namespace{NSMode: specgen.Host}
		}
		if hc.PidMode == "host" {
			s.PidNS = specgen.Namespace{NSMode: specgen.Host}
		}
	}
	s.HostAdd = hc.ExtraHosts
	for _, dns := range hc.Dns {
		if ip := net.ParseIP(dns); ip != nil {
			s.DNSServers = append(s.DNSServers, ip)
		}
	}
	s.DNSSearch = hc.DnsSearch
	s.DNSOptions = hc.DnsOptions

	// Security.
	s.Privileged = boolPtr(hc.Privileged)
	s.CapAdd = hc.CapAdd
	s.CapDrop = hc.CapDrop
	s.Groups = hc.GroupAdd
	if hc.ReadonlyRootfs {
		s.ReadOnlyFilesystem = boolPtr(true)
	}
	for _, opt := range hc.SecurityOpt {
		k, v, _ := strings.Cut(opt, "=")
		switch k {
		case "label":
			s.SelinuxOpts = append(s.SelinuxOpts, v)
		case "seccomp":
			s.SeccompProfilePath = v
		case "apparmor":
			s.ApparmorProfile = v
		case "no-new-privileges":
			s.NoNewPrivileges = boolPtr(v == "" || v == "true")
		case "mask":
			s.Mask = append(s.Mask, strings.Split(v, ":")...)
		case "unmask":
			s.Unmask = append(s.Unmask, strings.Split(v, ":")...)
		}
	}
	for _, dev := range hc.Devices {
		p := dev.PathOnHost + ":" + dev.PathInContainer
		if dev.CgroupPermissions != "" {
			p += ":" + dev.CgroupPermissions
		}
		s.Devices = append(s.Devices, spec.LinuxDevice{Path: p})
	}
	if hc.Init {
		s.Init = boolPtr(true)
	}

	// Resources.
	s.ResourceLimits = resources(hc)
	for _, u := range hc.Ulimits {
		// Inspect says RLIMIT_NOFILE; the spec wants nofile (podman adds
		// the prefix again).
		typ := strings.ToLower(strings.TrimPrefix(u.Name, "RLIMIT_"))
		s.Rlimits = append(s.Rlimits, spec.POSIXRlimit{Type: typ, Soft: uint64(u.Soft), Hard: uint64(u.Hard)})
	}
	if hc.ShmSize > 0 && hc.ShmSize != 65536000 {
		shm := hc.ShmSize
		s.ShmSize = &shm
	}
	if hc.OomScoreAdj != 0 {
		o := hc.OomScoreAdj
		s.OOMScoreAdj = &o
	}
	s.CgroupParent = hc.CgroupParent

	// Logs: the driver and its options, not the old container's log path.
	if lc := hc.LogConfig; lc != nil {
		s.LogConfiguration = &specgen.LogConfig{Driver: lc.Type, Options: copyMap(lc.Config)}
		if lc.Path != "" && !strings.Contains(lc.Path, data.ID) {
			s.LogConfiguration.Path = lc.Path
		}
		if lc.Size != "" && lc.Size != "0B" && lc.Size != "-1" {
			if n, err := parseSize(lc.Size); err == nil && n > 0 {
				s.LogConfiguration.Size = n
			}
		}
		if lc.Tag != "" {
			if s.LogConfiguration.Options == nil {
				s.LogConfiguration.Options = map[string]string{}
			}
			s.LogConfiguration.Options["tag"] = lc.Tag
		}
	}
	return s, nil
}

// networkSpec carries the network mode, networks (with their aliases) and
// published ports over.
func networkSpec(s *specgen.SpecGenerator, data *define.InspectContainerData) error {
	hc := data.HostConfig
	mode := hc.NetworkMode
	switch {
	case mode == "host":
		s.NetNS = specgen.Namespace{NSMode: specgen.Host}
	case mode == "none":
		s.NetNS = specgen.Namespace{NSMode: specgen.NoNetwork}
	case strings.HasPrefix(mode, "container:"):
		s.NetNS = specgen.Namespace{NSMode: specgen.FromContainer, Value: strings.TrimPrefix(mode, "container:")}
	case strings.HasPrefix(mode, "ns:"):
		s.NetNS = specgen.Namespace{NSMode: specgen.Path, Value: strings.TrimPrefix(mode, "ns:")}
	case strings.HasPrefix(mode, "slirp4netns"):
		s.NetNS = specgen.Namespace{NSMode: specgen.Slirp}
	case strings.HasPrefix(mode, "pasta"):
		s.NetNS = specgen.Namespace{NSMode: specgen.Pasta}
	case mode == "bridge" || mode == "default" || mode == "":
		s.NetNS = specgen.Namespace{NSMode: specgen.Bridge}
		if data.NetworkSettings != nil && len(data.NetworkSettings.Networks) > 0 {
			s.Networks = map[string]nettypes.PerNetworkOptions{}
			for name, n := range data.NetworkSettings.Networks {
				var opts nettypes.PerNetworkOptions
				if n != nil {
					for _, a := range n.Aliases {
						// podman adds the short ID itself.
						if a != shortID(data.ID) && a != strings.TrimPrefix(data.Name, "/") {
							opts.Aliases = append(opts.Aliases, a)
						}
					}
				}
				s.Networks[name] = opts
			}
		}
	default:
		// podman 4.3 reports a named network as "bridge", but be lenient:
		// treat anything else as a network name.
		s.NetNS = specgen.Namespace{NSMode: specgen.Bridge}
		s.Networks = map[string]nettypes.PerNetworkOptions{mode: {}}
	}
	for _, key := range sortedKeys(hc.PortBindings) {
		portProto := key
		port, proto, _ := strings.Cut(portProto, "/")
		if proto == "" {
			proto = "tcp"
		}
		cport, err := strconv.ParseUint(port, 10, 16)
		if err != nil {
			return fmt.Errorf("port mapping %q: %w", key, err)
		}
		for _, b := range hc.PortBindings[key] {
			pm := nettypes.PortMapping{ContainerPort: uint16(cport), Protocol: proto, HostIP: b.HostIP, Range: 1}
			if b.HostPort != "" {
				hp, err := strconv.ParseUint(b.HostPort, 10, 16)
				if err != nil {
					return fmt.Errorf("port mapping %q: host port %q: %w", key, b.HostPort, err)
				}
				pm.HostPort = uint16(hp)
			}
			s.PortMappings = append(s.PortMappings, pm)
		}
	}
	if hc.PublishAllPorts {
		s.PublishExposedPorts = boolPtr(true)
	}
	return nil
}

func resources(hc *define.InspectContainerHostConfig) *spec.LinuxResources {
	r := &spec.LinuxResources{}
	set := false
	if hc.Memory > 0 || hc.MemoryReservation > 0 || (hc.MemorySwap != 0 && hc.MemorySwap != 2*hc.Memory) {
		r.Memory = &spec.LinuxMemory{}
		if hc.Memory > 0 {
			r.Memory.Limit = int64Ptr(hc.Memory)
		}
		if hc.MemoryReservation > 0 {
			r.Memory.Reservation = int64Ptr(hc.MemoryReservation)
		}
		if hc.MemorySwap != 0 && hc.MemorySwap != 2*hc.Memory {
			r.Memory.Swap = int64Ptr(hc.MemorySwap)
		}
		if hc.MemorySwappiness >= 0 {
			sw := uint64(hc.MemorySwappiness)
			r.Memory.Swappiness = &sw
		}
		set = true
	}
	if hc.CpuShares > 0 || hc.CpuQuota > 0 || hc.CpuPeriod > 0 || hc.CpusetCpus != "" || hc.CpusetMems != "" {
		r.CPU = &spec.LinuxCPU{Cpus: hc.CpusetCpus, Mems: hc.CpusetMems}
		if hc.CpuShares > 0 {
			sh := hc.CpuShares
			r.CPU.Shares = &sh
		}
		if hc.CpuQuota > 0 {
			r.CPU.Quota = int64Ptr(hc.CpuQuota)
		}
		if hc.CpuPeriod > 0 {
			p := hc.CpuPeriod
			r.CPU.Period = &p
		}
		set = true
	}
	if hc.PidsLimit > 0 {
		r.Pids = &spec.LinuxPids{Limit: hc.PidsLimit}
		set = true
	}
	if hc.BlkioWeight > 0 {
		w := hc.BlkioWeight
		r.BlockIO = &spec.LinuxBlockIO{Weight: &w}
		set = true
	}
	if !set {
		return nil
	}
	return r
}

// mountOptions turns inspect's view of a mount back into mount options.
func mountOptions(mt define.InspectMount) []string {
	var opts []string
	for _, o := range mt.Options {
		switch o {
		case "rw", "ro", "rprivate":
			continue
		}
		if mt.Type == "volume" && (o == "bind" || o == "rbind") {
			continue // implied for volumes
		}
		opts = append(opts, o)
	}
	if !mt.RW {
		opts = append(opts, "ro")
	}
	if p := mt.Propagation; p != "" && p != "rprivate" {
		opts = append(opts, p)
	}
	if mt.Mode == "z" || mt.Mode == "Z" {
		opts = append(opts, mt.Mode)
	}
	return opts
}

// userAnnotations copies the annotations but the creation time (podman
// sets the ones it derives from the spec again, to the same values).
func userAnnotations(in map[string]string) map[string]string {
	out := map[string]string{}
	for k, v := range in {
		if k != "io.kubernetes.cri-o.Created" {
			out[k] = v
		}
	}
	if len(out) == 0 {
		return nil
	}
	return out
}

// parseSize reads podman's log size ("10MB", "1.5kB", "512B").
func parseSize(s string) (int64, error) {
	units := []struct {
		suffix string
		mult   float64
	}{{"GB", 1e9}, {"MB", 1e6}, {"kB", 1e3}, {"KB", 1e3}, {"B", 1}}
	for _, u := range units {
		if strings.HasSuffix(s, u.suffix) {
			f, err := strconv.ParseFloat(strings.TrimSuffix(s, u.suffix), 64)
			if err != nil {
				return 0, err
			}
			return int64(f * u.mult), nil
		}
	}
	return strconv.ParseInt(s, 10, 64)
}

func boolPtr(b bool) *bool    { return &b }
func int64Ptr(n int64) *int64 { return &n }
func copyMap(in map[string]string) map[string]string {
	if len(in) == 0 {
		return nil
	}
	out := make(map[string]string, len(in))
	for k, v := range in {
		out[k] = v
	}
	return out
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
