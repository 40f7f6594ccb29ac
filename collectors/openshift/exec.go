package openshift

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math"
	"strings"
	"sync"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/util/httpstream"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/remotecommand"
	utilexec "k8s.io/client-go/util/exec"

	"github.com/quayctl/quayctl/collectors"
)

// ExecRequest is one command to run in a pod's container (pods/exec).
type ExecRequest struct {
	Namespace string
	Pod       string
	Container string
	Command   []string
	Stdin     io.Reader // nil: no stdin
	Stdout    io.Writer // nil: discarded
	Stderr    io.Writer // nil: discarded
}

// Executor runs commands in pods: the seam in front of pods/exec. It returns
// the command's exit code; err is for failures to run it at all.
type Executor interface {
	Exec(ctx context.Context, req ExecRequest) (exitCode int, err error)
}

// remoteExecutor is the production Executor: pods/exec over WebSocket, with
// SPDY as the fallback for older API servers (as oc and kubectl do).
type remoteExecutor struct {
	cfg  *rest.Config
	kube kubernetes.Interface
}

// NewRemoteExecutor returns the Executor New uses.
func NewRemoteExecutor(cfg *rest.Config, kube kubernetes.Interface) Executor {
	return &remoteExecutor{cfg: cfg, kube: kube}
}

func (e *remoteExecutor) Exec(ctx context.Context, r ExecRequest) (int, error) {
	req := e.kube.CoreV1().RESTClient().Post().
		Namespace(r.Namespace).Resource("pods").Name(r.Pod).SubResource("exec").
		VersionedParams(&corev1.PodExecOptions{
			Container: r.Container,
			Command:   r.Command,
			Stdin:     r.Stdin != nil,
			Stdout:    true,
			Stderr:    true,
		}, scheme.ParameterCodec)
	spdy, err := remotecommand.NewSPDYExecutor(e.cfg, "POST", req.URL())
	if err != nil {
		return -1, err
	}
	ws, err := remotecommand.NewWebSocketExecutor(e.cfg, "GET", req.URL().String())
	if err != nil {
		return -1, err
	}
	ex, err := remotecommand.NewFallbackExecutor(ws, spdy, func(err error) bool {
		return httpstream.IsUpgradeFailure(err) || httpstream.IsHTTPSProxyError(err)
	})
	if err != nil {
		return -1, err
	}
	stdout, stderr := r.Stdout, r.Stderr
	if stdout == nil {
		stdout = io.Discard
	}
	if stderr == nil {
		stderr = io.Discard
	}
	err = ex.StreamWithContext(ctx, remotecommand.StreamOptions{Stdin: r.Stdin, Stdout: stdout, Stderr: stderr})
	var exit utilexec.ExitError
	if errors.As(err, &exit) && exit.Exited() {
		return exit.ExitStatus(), nil
	}
	if err != nil {
		return -1, err
	}
	return 0, nil
}

// Logs streams a pod's container log to w (oc logs POD [-c C] [--previous]
// [--since] [--tail] [-f]). Nothing is buffered beyond io.Copy's buffer.
func (d *Deployment) Logs(ctx context.Context, component string, opts collectors.LogOptions, w io.Writer) error {
	r, err := d.pick(ctx, component)
	if err != nil {
		return err
	}
	ctr, err := containerFor(r, opts.Container)
	if err != nil {
		return err
	}
	plo := podLogOptions(ctr, opts)
	rc, err := d.kube.CoreV1().Pods(r.pod.Namespace).GetLogs(r.pod.Name, plo).Stream(ctx)
	if err != nil {
		return logsError(r, ctr, opts, err)
	}
	defer rc.Close()
	if _, err := io.Copy(w, rc); err != nil {
		if ctx.Err() != nil && opts.Follow {
			return nil // Ctrl-C ends a follow.
		}
		return fmt.Errorf("reading logs of %s (pod %s, container %s): %w", r.component, r.pod.Name, ctr, err)
	}
	return nil
}

// podLogOptions maps quayctl's options onto the API's.
func podLogOptions(container string, o collectors.LogOptions) *corev1.PodLogOptions {
	plo := &corev1.PodLogOptions{Container: container, Previous: o.Previous, Follow: o.Follow}
	if o.Since > 0 {
		s := int64(math.Ceil(o.Since.Seconds()))
		plo.SinceSeconds = &s
	}
	if o.Tail > 0 {
		t := int64(o.Tail)
		plo.TailLines = &t
	}
	return plo
}

func logsError(r podRef, ctr string, o collectors.LogOptions, err error) error {
	msg := fmt.Sprintf("reading logs of %s (pod %s, container %s): %v", r.component, r.pod.Name, ctr, err)
	switch {
	case apierrors.IsForbidden(err):
		return &remedyError{msg + " — ask for get on pods/log in namespace " + r.pod.Namespace, []error{err}}
	case o.Previous && apierrors.IsBadRequest(err):
		// No previous instance: reported as a missing file, so callers can
		// tell it from a failure.
		return &remedyError{msg + " — the container has no previous instance (it has not restarted); drop --previous", []error{fs.ErrNotExist, err}}
	case apierrors.IsBadRequest(err):
		return &remedyError{fmt.Sprintf("%s — the container is %s; try: quayctl logs %s --previous", msg, podState(r.pod), r.component), []error{err}}
	}
	return &remedyError{msg, []error{err}}
}

// remedyError is a message (which already quotes its causes) that still
// unwraps to them for errors.Is and errors.As.
type remedyError struct {
	msg  string
	errs []error
}

func (e *remedyError) Error() string   { return e.msg }
func (e *remedyError) Unwrap() []error { return e.errs }

// Exec runs argv in the component's pod (oc exec POD [-c C] -- ARGV).
func (d *Deployment) Exec(ctx context.Context, component string, argv []string, opts collectors.ExecOptions) (int, error) {
	if len(argv) == 0 {
		return -1, errors.New("exec: no command given")
	}
	if d.exec == nil {
		return -1, fmt.Errorf("exec: %w", collectors.ErrNotSupported)
	}
	r, ctr, err := d.pickRunning(ctx, component, opts.Container)
	if err != nil {
		return -1, err
	}
	code, err := d.exec.Exec(ctx, ExecRequest{
		Namespace: r.pod.Namespace, Pod: r.pod.Name, Container: ctr,
		Command: argv, Stdin: opts.Stdin, Stdout: opts.Stdout, Stderr: opts.Stderr,
	})
	if err != nil {
		return -1, execError(r, ctr, err)
	}
	return code, nil
}

func execError(r podRef, ctr string, err error) error {
	if apierrors.IsForbidden(err) {
		return fmt.Errorf("exec in %s (pod %s, container %s): %w — ask for create on pods/exec in namespace %s", r.component, r.pod.Name, ctr, err, r.pod.Namespace)
	}
	return fmt.Errorf("exec in %s (pod %s, container %s): %w", r.component, r.pod.Name, ctr, err)
}

// ReadFile streams a file from the component's main container by running
// `cat PATH` in it (oc exec POD -- cat PATH). A missing file is reported
// before ReadFile returns, as an error wrapping fs.ErrNotExist.
func (d *Deployment) ReadFile(ctx context.Context, component, path string) (io.ReadCloser, error) {
	if d.exec == nil {
		return nil, fmt.Errorf("read file: %w", collectors.ErrNotSupported)
	}
	r, ctr, err := d.pickRunning(ctx, component, "")
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(ctx)
	pr, pw := io.Pipe()
	stderr := &limitedBuffer{max: 4096}
	go func() {
		code, err := d.exec.Exec(ctx, ExecRequest{
			Namespace: r.pod.Namespace, Pod: r.pod.Name, Container: ctr,
			Command: []string{"cat", path}, Stdout: pw, Stderr: stderr,
		})
		switch {
		case err != nil:
			pw.CloseWithError(execError(r, ctr, err))
		case code != 0:
			pw.CloseWithError(catError(r, path, code, stderr.String()))
		default:
			pw.Close()
		}
	}()
	br := bufio.NewReaderSize(pr, 32*1024)
	// Wait for the first byte or the end, so that a missing file is an error
	// of ReadFile itself rather than of the first Read.
	if _, err := br.Peek(1); err != nil && err != io.EOF {
		cancel()
		pr.Close()
		return nil, err
	}
	return &execReader{Reader: br, pr: pr, cancel: cancel}, nil
}

// catError maps cat's complaint to an error; missing files wrap
// fs.ErrNotExist, unreadable ones fs.ErrPermission.
func catError(r podRef, path string, code int, stderr string) error {
	msg := strings.TrimSpace(stderr)
	if msg == "" {
		msg = fmt.Sprintf("cat exited with code %d", code)
	}
	var kind error
	switch {
	case strings.Contains(msg, "No such file"):
		kind = fs.ErrNotExist
	case strings.Contains(msg, "Permission denied"):
		kind = fs.ErrPermission
	case strings.Contains(msg, "executable file not found") || strings.Contains(msg, "not found") && strings.Contains(msg, "cat"):
		kind = collectors.ErrNotSupported
	}
	text := fmt.Sprintf("reading %s in %s (pod %s): %s", path, r.component, r.pod.Name, msg)
	if kind == nil {
		return errors.New(text)
	}
	return &remedyError{text, []error{kind}}
}

type execReader struct {
	io.Reader
	pr     *io.PipeReader
	cancel context.CancelFunc
	once   sync.Once
}

func (e *execReader) Close() error {
	e.once.Do(func() {
		e.cancel()
		e.pr.Close()
	})
	return nil
}

// limitedBuffer keeps the first max bytes written (for error messages).
type limitedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
	max int
}

func (b *limitedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if room := b.max - b.buf.Len(); room > 0 {
		if len(p) > room {
			b.buf.Write(p[:room])
		} else {
			b.buf.Write(p)
		}
	}
	return len(p), nil
}

func (b *limitedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
