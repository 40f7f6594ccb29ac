package cli

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"regexp"
	"sync"
	"time"

	"github.com/spf13/cobra"

	"github.com/quayctl/quayctl/collectors"
	"github.com/quayctl/quayctl/internal/redact"
)

// LogsOptions are the flags of `quayctl logs`.
type LogsOptions struct {
	IO         *IOStreams
	Target     TargetOptions
	Deployment func(context.Context) (collectors.Deployment, error)
	Component  string
	Container  string
	Previous   bool
	Since      time.Duration
	Tail       int
	Follow     bool
	Grep       *regexp.Regexp
}

// NewCmdLogs builds `quayctl logs`.
func NewCmdLogs(f *Factory, runF func(*LogsOptions) error) *cobra.Command {
	opts := &LogsOptions{IO: f.IO}
	opts.Deployment = f.deploymentFunc(&opts.Target)
	var grep string
	cmd := &cobra.Command{
		Use:   "logs [COMPONENT]",
		Short: "Stream a component's logs, secrets redacted",
		Long: `Stream the logs of a component of the deployment (default: quay), as
podman logs or oc logs would (troubleshooting guide, chapter 3), with every
line passed through quayctl's redaction: passwords in URIs, Authorization
headers, tokens, keys and PEM blocks become <redacted>. Logs are streamed
line by line, never loaded whole, so --follow runs for as long as needed.

--grep keeps only the lines matching a regular expression (RE2 syntax),
applied after redaction. --previous reads the instance before the last
restart: the one that crashed (CrashLoopBackOff, OOMKilled).

Components: quay, database, redis, clair, mirror, and on OpenShift the
other QuayRegistry components and operator.

Exit codes: 0 done (or Ctrl-C during --follow), 1 the component or its logs
cannot be read, 2 bad flags.`,
		Example: `  quayctl logs
  quayctl logs --previous
  quayctl logs database --tail 200
  quayctl logs -f --grep 'ERROR|Traceback'
  quayctl logs quay -c quay-app --since 10m --openshift -n quay`,
		Args: targetArgs(optionalComponentArg(collectors.ComponentQuay)),
		RunE: func(cmd *cobra.Command, args []string) error {
			t, err := targetFromFlags(cmd.Flags())
			if err != nil {
				return err
			}
			opts.Target = t
			opts.Component = componentArg(args, collectors.ComponentQuay)
			if opts.Tail < 0 {
				if opts.Tail != -1 {
					return flagError{fmt.Errorf("--tail %d: use a number of lines, or -1 for all", opts.Tail)}
				}
				opts.Tail = 0
			}
			if opts.Since < 0 {
				return flagError{fmt.Errorf("--since %s: use a positive duration such as 10m or 2h", opts.Since)}
			}
			opts.Grep = nil
			if grep != "" {
				re, err := regexp.Compile(grep)
				if err != nil {
					return flagError{fmt.Errorf("--grep %q is not a regular expression: %v", grep, err)}
				}
				opts.Grep = re
			}
			if runF != nil {
				return runF(opts)
			}
			return logsRun(cmd.Context(), opts)
		},
	}
	addTargetFlags(cmd)
	fl := cmd.Flags()
	fl.StringVarP(&opts.Container, "container", "c", "", "container within the pod (OpenShift; default: the main one)")
	fl.BoolVarP(&opts.Previous, "previous", "p", false, "the previous instance, before the last restart")
	fl.DurationVar(&opts.Since, "since", 0, "only lines newer than this, such as 10m or 2h")
	fl.IntVar(&opts.Tail, "tail", 0, "only the last N lines (0 or -1: all)")
	fl.BoolVarP(&opts.Follow, "follow", "f", false, "keep streaming new lines until Ctrl-C")
	fl.StringVar(&grep, "grep", "", "only lines matching this regular expression (after redaction)")
	return cmd
}

func logsRun(ctx context.Context, opts *LogsOptions) error {
	d, err := opts.Deployment(ctx)
	if err != nil {
		return err
	}
	var out io.Writer = opts.IO.Out
	var filter *grepWriter
	if opts.Grep != nil {
		filter = newGrepWriter(out, opts.Grep)
		out = filter
	}
	// Redaction comes first: --grep never sees (or matches on) a secret.
	rw := redact.Writer(out)
	err = d.Logs(ctx, opts.Component, collectors.LogOptions{
		Container: opts.Container, Previous: opts.Previous, Since: opts.Since, Tail: opts.Tail, Follow: opts.Follow,
	}, rw)
	cerr := rw.Close()
	if filter != nil && cerr == nil {
		cerr = filter.Close()
	}
	if sum := rw.Summary(); sum.Total() > 0 {
		fmt.Fprintf(opts.IO.ErrOut, "quayctl: %s in the logs of %s\n", sum, opts.Component)
	}
	if err != nil {
		if opts.Follow && errors.Is(err, context.Canceled) {
			return nil
		}
		return deploymentError("cannot read the logs of "+opts.Component, err)
	}
	return cerr
}

// grepWriter passes on the lines matching re. Lines are buffered up to
// maxGrepLine; a longer line is decided on its first maxGrepLine bytes and
// the rest follows (or not) without buffering.
type grepWriter struct {
	mu       sync.Mutex
	w        io.Writer
	re       *regexp.Regexp
	buf      []byte
	deciding bool // false: in the middle of an over-long line already decided
	passing  bool
	max      int
}

const maxGrepLine = 256 << 10

func newGrepWriter(w io.Writer, re *regexp.Regexp) *grepWriter {
	return &grepWriter{w: w, re: re, deciding: true, max: maxGrepLine}
}

func (g *grepWriter) Write(p []byte) (int, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	n := len(p)
	for len(p) > 0 {
		i := bytes.IndexByte(p, '\n')
		seg := p
		if i >= 0 {
			seg = p[:i+1]
		}
		p = p[len(seg):]
		if !g.deciding {
			if g.passing {
				if _, err := g.w.Write(seg); err != nil {
					return 0, err
				}
			}
			if i >= 0 {
				g.deciding = true
			}
			continue
		}
		g.buf = append(g.buf, seg...)
		switch {
		case i >= 0:
			if err := g.decide(); err != nil {
				return 0, err
			}
		case len(g.buf) >= g.max:
			if err := g.decide(); err != nil {
				return 0, err
			}
			g.deciding = false
		}
	}
	return n, nil
}

// decide writes the buffered line if it matches and empties the buffer.
func (g *grepWriter) decide() error {
	line := bytes.TrimSuffix(g.buf, []byte("\n"))
	g.passing = g.re.Match(line)
	var err error
	if g.passing {
		_, err = g.w.Write(g.buf)
	}
	g.buf = g.buf[:0]
	return err
}

// Close decides a last line that had no newline.
func (g *grepWriter) Close() error {
	g.mu.Lock()
	defer g.mu.Unlock()
	if len(g.buf) > 0 && g.deciding {
		return g.decide()
	}
	return nil
}
