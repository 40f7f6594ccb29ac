package podman

import (
	"archive/tar"
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"path"
	"strconv"
	"strings"
	"time"

	"github.com/containers/podman/v5/libpod/define"
	"github.com/containers/podman/v5/pkg/api/handlers"
	"github.com/containers/podman/v5/pkg/bindings/containers"
	"github.com/containers/podman/v5/pkg/copy"
	dockerContainer "github.com/docker/docker/api/types/container"

	"github.com/quayctl/quayctl/collectors"
)

// Logs streams a container's log (stdout and stderr, in order) to w.
//
// Podman keeps one log per container across restarts; there is no separate
// previous instance as on Kubernetes. Previous therefore means:
//   - running container that was restarted: the lines written before the
//     current instance started, i.e. every earlier instance (the boundary
//     is podman's StartedAt, recorded a few milliseconds after the process
//     starts, so the very first lines of the current instance can appear);
//   - running container never stopped: an error wrapping fs.ErrNotExist
//     (there is no previous instance);
//   - stopped container: the whole log, since every instance has ended (the
//     last lines are the last run's, so Tail shows how it ended).
//
// Follow does not apply to Previous. Since is a duration before now on the
// podman host's clock.
func (d *Deployment) Logs(ctx context.Context, component string, opts collectors.LogOptions, w io.Writer) error {
	m, data, err := d.inspect(ctx, component)
	if err != nil {
		return err
	}
	if err := checkContainerOpt(m, opts.Container); err != nil {
		return err
	}
	lo := new(containers.LogOptions).WithStdout(true).WithStderr(true)
	if opts.Since > 0 {
		lo.WithSince(opts.Since.String())
	}
	if opts.Tail > 0 {
		lo.WithTail(strconv.Itoa(opts.Tail))
	}
	running := data.State != nil && data.State.Running
	switch {
	case opts.Previous && running && data.State.FinishedAt.IsZero():
		return fmt.Errorf("%s (container %s) has not been restarted since it was created, so there is no previous instance — its log: quayctl logs %s: %w",
			m.role, m.name(), m.role, fs.ErrNotExist)
	case opts.Previous && running:
		lo.WithUntil(data.State.StartedAt.Format(time.RFC3339Nano))
	case opts.Follow && !opts.Previous:
		lo.WithFollow(true)
	}

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stdout, stderr := make(chan string), make(chan string)
	done := make(chan error, 1)
	go func() { done <- containers.Logs(d.ctx(ctx), m.list.ID, lo, stdout, stderr) }()
	var werr error
	for {
		var frame string
		select {
		case frame = <-stdout:
		case frame = <-stderr:
		case err := <-done:
			if werr != nil {
				return werr
			}
			if err != nil && ctx.Err() == nil {
				return d.wrap(err, "logs of %s (container %s)", m.role, m.name())
			}
			return ctx.Err()
		}
		if werr != nil {
			continue // drain until the binding returns
		}
		if _, werr = io.WriteString(w, frame); werr != nil {
			cancel()
		}
	}
}

// checkContainerOpt accepts -c/--container only when it names the one
// container a podman component has.
func checkContainerOpt(m member, c string) error {
	if c == "" || matchesContainer(m.list, c) {
		return nil
	}
	return fmt.Errorf("component %s is the single container %s; -c/--container %s applies to pods (OpenShift): %w", m.role, m.name(), c, collectors.ErrNotSupported)
}

// ReadFile streams a file from a container through podman's archive API
// (like podman cp), so it works on stopped containers and on images
// without cat. A missing file is an error wrapping fs.ErrNotExist.
func (d *Deployment) ReadFile(ctx context.Context, component, p string) (io.ReadCloser, error) {
	m, err := d.resolve(ctx, component)
	if err != nil {
		return nil, err
	}
	if !path.IsAbs(p) {
		return nil, fmt.Errorf("read %s from %s: the path must be absolute", p, m.role)
	}
	stat, err := containers.Stat(d.ctx(ctx), m.list.ID, p)
	switch {
	case errors.Is(err, copy.ErrENOENT):
		return nil, fmt.Errorf("read %s from %s (container %s): %w", p, m.role, m.name(), fs.ErrNotExist)
	case err != nil:
		return nil, d.wrap(err, "read %s from %s (container %s)", p, m.role, m.name())
	case stat.IsDir:
		return nil, fmt.Errorf("read %s from %s (container %s): is a directory", p, m.role, m.name())
	}
	src := p
	if stat.LinkTarget != "" && stat.LinkTarget != p {
		src = stat.LinkTarget // the archive of a symlink holds the link, not the file
	}
	pr, pw := io.Pipe()
	copyFn, err := containers.CopyToArchive(d.ctx(ctx), m.list.ID, src, pw)
	if err != nil {
		if apiCode(err) == 404 {
			return nil, fmt.Errorf("read %s from %s (container %s): %w", p, m.role, m.name(), fs.ErrNotExist)
		}
		return nil, d.wrap(err, "read %s from %s (container %s)", p, m.role, m.name())
	}
	go func() { pw.CloseWithError(copyFn()) }()
	tr := tar.NewReader(pr)
	for {
		hdr, err := tr.Next()
		if err != nil {
			pr.Close()
			if err == io.EOF {
				err = fmt.Errorf("podman sent no file")
			}
			return nil, fmt.Errorf("read %s from %s (container %s): %w", p, m.role, m.name(), err)
		}
		if hdr.Typeflag == tar.TypeReg {
			return &tarFile{Reader: tr, pipe: pr}, nil
		}
	}
}

type tarFile struct {
	io.Reader
	pipe *io.PipeReader
}

func (f *tarFile) Close() error { return f.pipe.Close() }

// Exec runs argv in the component's container (no TTY) and returns its
// exit code. A command that cannot be started returns podman's code (126
// not executable, 127 not found) and an error.
func (d *Deployment) Exec(ctx context.Context, component string, argv []string, opts collectors.ExecOptions) (int, error) {
	if len(argv) == 0 {
		return -1, errors.New("exec: no command given")
	}
	m, data, err := d.inspect(ctx, component)
	if err != nil {
		return -1, err
	}
	if err := checkContainerOpt(m, opts.Container); err != nil {
		return -1, err
	}
	if err := notRunning(m, data); err != nil {
		return -1, err
	}
	cfg := &handlers.ExecCreateConfig{ExecOptions: dockerContainer.ExecOptions{
		Cmd:          argv,
		AttachStdout: true,
		AttachStderr: true,
		AttachStdin:  opts.Stdin != nil,
	}}
	id, err := containers.ExecCreate(d.ctx(ctx), m.list.ID, cfg)
	if err != nil {
		if apiCode(err) == 409 {
			return -1, &collectors.NotRunningError{Component: m.role, Instance: m.name(), State: "not running"}
		}
		return -1, d.wrap(err, "exec in %s (container %s)", m.role, m.name())
	}
	defer func() {
		_ = containers.ExecRemove(d.ctx(context.WithoutCancel(ctx)), id, new(containers.ExecRemoveOptions).WithForce(true))
	}()

	stdout, stderr := opts.Stdout, opts.Stderr
	if stdout == nil {
		stdout = io.Discard
	}
	if stderr == nil {
		stderr = io.Discard
	}
	// podman reports a command it could not start on the exec's stderr
	// (and with exit code 126 or 127); keep the start of it.
	sniff := &headWriter{w: stderr, max: 4096}
	stderr = sniff
	so := new(containers.ExecStartAndAttachOptions).
		WithOutputStream(stdout).WithAttachOutput(true).
		WithErrorStream(stderr).WithAttachError(true)
	if opts.Stdin != nil {
		so.WithInputStream(*bufio.NewReader(opts.Stdin)).WithAttachInput(true)
	}
	startErr := containers.ExecStartAndAttach(d.ctx(ctx), id, so)
	if ctx.Err() != nil {
		return -1, ctx.Err()
	}
	// The session's exit code is recorded right after its streams close.
	var insp *define.InspectExecSession
	deadline := time.Now().Add(30 * time.Second)
	for {
		insp, err = containers.ExecInspect(d.ctx(ctx), id, nil)
		if err != nil || !insp.Running {
			break
		}
		if time.Now().After(deadline) {
			return -1, fmt.Errorf("exec %s in %s (container %s): the command closed its output but is still running after 30s", argv[0], m.role, m.name())
		}
		select {
		case <-ctx.Done():
			return -1, ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
	switch {
	case err != nil && startErr != nil:
		return -1, d.wrap(startErr, "exec %s in %s (container %s)", argv[0], m.role, m.name())
	case err != nil:
		return -1, d.wrap(err, "exec %s in %s (container %s)", argv[0], m.role, m.name())
	case startErr != nil:
		return insp.ExitCode, d.wrap(startErr, "exec %s in %s (container %s)", argv[0], m.role, m.name())
	}
	if insp.ExitCode == 126 || insp.ExitCode == 127 {
		if msg := startFailure(sniff.head.String()); msg != "" {
			return insp.ExitCode, fmt.Errorf("exec %s in %s (container %s): %s (exit code %d)", argv[0], m.role, m.name(), msg, insp.ExitCode)
		}
	}
	return insp.ExitCode, nil
}

// startFailure returns podman's message when the exec's stderr says the
// runtime could not start the command at all.
func startFailure(stderr string) string {
	for _, line := range strings.Split(stderr, "\n") {
		if !strings.Contains(line, "exec failed") && !strings.Contains(line, "OCI runtime attempted to invoke a command that was not found") {
			continue
		}
		line = strings.TrimPrefix(line, "Error: ")
		switch {
		case strings.Contains(line, "not found"):
			return "command not found in the container (images like quayctl's have no shell or coreutils): " + line
		case strings.Contains(line, "permission denied"):
			return "command cannot be run (permission denied or not executable): " + line
		}
		return line
	}
	return ""
}

// headWriter passes writes on and keeps the first max bytes.
type headWriter struct {
	w    io.Writer
	head strings.Builder
	max  int
}

func (h *headWriter) Write(p []byte) (int, error) {
	if room := h.max - h.head.Len(); room > 0 {
		h.head.Write(p[:min(room, len(p))])
	}
	return h.w.Write(p)
}

// Stats reports the container's CPU, memory and PIDs (podman stats
// --no-stream). MemoryLimitBytes is 0 when the container has no memory
// limit (podman reports the host's memory then).
func (d *Deployment) Stats(ctx context.Context, component string) (collectors.Stats, error) {
	m, data, err := d.inspect(ctx, component)
	if err != nil {
		return collectors.Stats{}, err
	}
	if err := notRunning(m, data); err != nil {
		return collectors.Stats{}, err
	}
	ch, err := containers.Stats(d.ctx(ctx), []string{m.list.ID}, new(containers.StatsOptions).WithStream(false))
	if err != nil {
		if apiCode(err) == 409 {
			return collectors.Stats{}, &collectors.NotRunningError{Component: m.role, Instance: m.name(), State: "not running"}
		}
		return collectors.Stats{}, d.wrap(err, "stats of %s (container %s)", m.role, m.name())
	}
	report, ok := <-ch
	for range ch { // the binding closes the channel after one report
	}
	if !ok {
		return collectors.Stats{}, fmt.Errorf("stats of %s (container %s): podman returned none", m.role, m.name())
	}
	if report.Error != nil {
		if strings.Contains(report.Error.Error(), "not running") {
			return collectors.Stats{}, &collectors.NotRunningError{Component: m.role, Instance: m.name(), State: "not running"}
		}
		return collectors.Stats{}, d.wrap(report.Error, "stats of %s (container %s)", m.role, m.name())
	}
	if len(report.Stats) == 0 {
		return collectors.Stats{}, fmt.Errorf("stats of %s (container %s): podman returned none", m.role, m.name())
	}
	s := report.Stats[0]
	out := collectors.Stats{CPUPercent: s.CPU, MemoryBytes: s.MemUsage, PIDs: s.PIDs}
	if data.HostConfig != nil && data.HostConfig.Memory > 0 {
		out.MemoryLimitBytes = s.MemLimit
	}
	return out, nil
}
