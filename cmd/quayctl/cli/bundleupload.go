package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/dustin/go-humanize"
	"github.com/mattn/go-isatty"
	"github.com/spf13/cobra"

	"github.com/quayctl/quayctl/collectors/upload"
)

// SupportBundleUploadOptions are the flags of `quayctl support-bundle upload`.
type SupportBundleUploadOptions struct {
	IO            *IOStreams
	Getenv        func(string) string
	File          string
	To            string
	Form          string
	Headers       []string
	TokenEnv      string
	Username      string
	PasswordStdin bool
	Insecure      bool
	Retries       int
	Output        string
	// Progress draws a progress bar on IO.ErrOut (set when it is a
	// terminal).
	Progress bool
	// Client and Backoff let tests redirect connections and shorten waits.
	Client  *http.Client
	Backoff time.Duration
	// Now is the clock for the artifact's creation time when the bundle
	// does not say.
	Now func() time.Time
	// capture, if set, receives the result (collect --upload).
	capture **upload.Result
}

// NewCmdSupportBundleUpload builds `quayctl support-bundle upload`.
func NewCmdSupportBundleUpload(f *Factory, runF func(*SupportBundleUploadOptions) error) *cobra.Command {
	opts := &SupportBundleUploadOptions{IO: f.IO, Getenv: f.Getenv, Progress: uploadStderrTTY(f.IO.ErrOut)}
	cmd := &cobra.Command{
		Use:   "upload FILE --to DEST",
		Short: "Send a support bundle to an HTTPS upload URL or a container registry",
		Long: `Send a support bundle where support can read it.

  --to https://HOST/PATH   an HTTP PUT of the file (with --form FIELD, a
                           multipart/form-data POST with the file in FIELD).
                           Credentials: --header 'Name: value' (repeatable)
                           and --token-env VAR (sends "Authorization: Bearer"
                           with the value of the environment variable VAR).
  --to oci://HOST/NAMESPACE/REPO[:TAG]
                           pushes the bundle as an OCI artifact (artifact
                           type ` + upload.ArtifactType + `),
                           with --username and --password-stdin, or the
                           podman/docker login (REGISTRY_AUTH_FILE,
                           ${XDG_RUNTIME_DIR}/containers/auth.json,
                           ~/.docker/config.json). Without a tag, the tag is
                           the file name without .tar.gz.

The file is streamed, never loaded into memory. Connection errors and 5xx
answers are retried with exponential backoff (--retries). The sha256 of what
was sent is printed at the end: give it to support so they can check what
they received. Plain http:// (and plain-HTTP registries) are refused for
anything but the loopback interface unless --insecure. Tokens and passwords
never appear in the output.

Exit codes: 0 uploaded, 1 failed (unreachable, refused, rejected
credentials), 2 bad flags.`,
		Example: `  quayctl support-bundle upload quayctl-bundle-prod-20250101T120000Z.tar.gz \
    --to https://upload.example.com/cases/01234 --token-env SUPPORT_TOKEN
  quayctl support-bundle upload bundle.tar.gz --to https://files.example.com/upload --form file
  echo -n "$QUAY_PASSWORD" | quayctl support-bundle upload bundle.tar.gz \
    --to oci://quay.example.com/support/bundles:case-01234 --username alice --password-stdin`,
		Args: exactArgs(1, "FILE"),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.File = args[0]
			if err := checkOutput(opts.Output); err != nil {
				return err
			}
			// The group's target flags are inherited; a target given to
			// upload is a mistake, not something to ignore.
			if err := refuseTargetFlags(cmd.Flags(), "upload sends a bundle already collected (collect and upload in one step with --upload DEST)"); err != nil {
				return err
			}
			if err := checkUploadFlags(opts); err != nil {
				return err
			}
			if runF != nil {
				return runF(opts)
			}
			return supportBundleUploadRun(cmd.Context(), opts)
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&opts.To, "to", "", "where to send it: https://HOST/PATH or oci://HOST/NAMESPACE/REPO[:TAG]")
	fl.StringVar(&opts.Form, "form", "", "send a multipart/form-data POST with the file in this field (HTTP only)")
	fl.StringArrayVarP(&opts.Headers, "header", "H", nil, "add an HTTP header 'Name: value' (repeatable; HTTP only)")
	fl.StringVar(&opts.TokenEnv, "token-env", "", "send 'Authorization: Bearer' with the value of this environment variable (HTTP only)")
	fl.StringVarP(&opts.Username, "username", "u", "", "registry user name (oci:// only; with --password-stdin)")
	fl.BoolVar(&opts.PasswordStdin, "password-stdin", false, "read the registry password from standard input (oci:// only)")
	fl.BoolVar(&opts.Insecure, "insecure", false, "allow plain HTTP to hosts other than loopback")
	fl.IntVar(&opts.Retries, "retries", upload.DefaultRetries, "how many times to retry after a connection error or a 5xx answer")
	addOutputFlag(cmd, &opts.Output)
	return cmd
}

// addCollectUploadFlags adds --upload DEST and its --upload-* settings to
// a collect command, for `quayctl support-bundle --upload DEST`: collect,
// then upload as `support-bundle upload` does. The collect command checks
// them with checkCollectUpload and calls uploadCollected once the bundle
// is written.
func addCollectUploadFlags(cmd *cobra.Command, f *Factory) *SupportBundleUploadOptions {
	u := &SupportBundleUploadOptions{IO: f.IO, Getenv: f.Getenv, Progress: uploadStderrTTY(f.IO.ErrOut), Output: OutputTable}
	fl := cmd.Flags()
	fl.StringVar(&u.To, "upload", "", "then upload the bundle: https://HOST/PATH or oci://HOST/NAMESPACE/REPO[:TAG] (see: quayctl support-bundle upload --help)")
	fl.StringVar(&u.Form, "upload-form", "", "with --upload https://…: a multipart POST with the file in this field")
	fl.StringArrayVar(&u.Headers, "upload-header", nil, "with --upload https://…: an HTTP header 'Name: value' (repeatable)")
	fl.StringVar(&u.TokenEnv, "upload-token-env", "", "with --upload https://…: send 'Authorization: Bearer' with the value of this environment variable")
	fl.StringVar(&u.Username, "upload-username", "", "with --upload oci://…: registry user (the password on standard input; else the podman/docker login)")
	fl.BoolVar(&u.Insecure, "upload-insecure", false, "with --upload: allow plain HTTP to hosts other than loopback")
	fl.IntVar(&u.Retries, "upload-retries", upload.DefaultRetries, "with --upload: retries after a connection error or a 5xx answer")
	return u
}

// checkCollectUpload validates the --upload flags before anything is
// collected (a typo must not cost a whole collection).
func checkCollectUpload(u *SupportBundleUploadOptions) error {
	if u.To == "" {
		if u.Form != "" || len(u.Headers) > 0 || u.TokenEnv != "" || u.Username != "" || u.Insecure {
			return flagError{errors.New("the --upload-* flags need --upload DEST")}
		}
		return nil
	}
	u.PasswordStdin = u.Username != ""
	if err := checkUploadFlags(u); err != nil {
		return flagError{errors.New(strings.NewReplacer("--token-env", "--upload-token-env", "--to", "--upload", "--form", "--upload-form", "--header", "--upload-header",
			"--username and --password-stdin", "--upload-username", "--username", "--upload-username", "--retries", "--upload-retries").Replace(err.Error()))}
	}
	return nil
}

// uploadCollected uploads the bundle just written and writes the human
// summary to w (collect's output), returning the result for -o json|yaml.
func uploadCollected(ctx context.Context, u *SupportBundleUploadOptions, file string, w io.Writer, tty bool) (*upload.Result, error) {
	o := *u
	o.File = file
	var res *upload.Result
	o.Output = OutputJSON
	o.IO = &IOStreams{In: u.IO.In, Out: io.Discard, ErrOut: u.IO.ErrOut}
	o.capture = &res
	if err := supportBundleUploadRun(ctx, &o); err != nil {
		return nil, err
	}
	if w != nil {
		if err := renderUpload(w, tty, res); err != nil {
			return res, err
		}
	}
	return res, nil
}

// checkUploadFlags refuses flag combinations that do not fit the
// destination, before anything is read or sent.
func checkUploadFlags(opts *SupportBundleUploadOptions) error {
	if opts.To == "" {
		return flagError{errors.New("--to is required: https://HOST/PATH or oci://HOST/NAMESPACE/REPO:TAG")}
	}
	kind, err := upload.KindOf(opts.To)
	if err != nil {
		return flagError{fmt.Errorf("--to: %w", err)}
	}
	if opts.Retries < 0 {
		return flagError{errors.New("--retries must be 0 or more")}
	}
	if kind == upload.KindOCI {
		for name, set := range map[string]bool{"--form": opts.Form != "", "--header": len(opts.Headers) > 0, "--token-env": opts.TokenEnv != ""} {
			if set {
				return flagError{fmt.Errorf("%s is for HTTP uploads; an oci:// destination logs in with --username and --password-stdin", name)}
			}
		}
		if opts.PasswordStdin != (opts.Username != "") {
			return flagError{errors.New("--username and --password-stdin go together: pipe the password in, or use neither to read the podman/docker login")}
		}
		return nil
	}
	if opts.Username != "" || opts.PasswordStdin {
		return flagError{errors.New("--username and --password-stdin are for oci:// destinations; an HTTP upload takes --token-env or --header")}
	}
	for _, h := range opts.Headers {
		k, _, err := upload.ParseHeader(h)
		if err != nil {
			return flagError{err}
		}
		if k == "Authorization" && opts.TokenEnv != "" {
			return flagError{errors.New("--token-env and an Authorization --header exclude each other")}
		}
	}
	return nil
}

func supportBundleUploadRun(ctx context.Context, opts *SupportBundleUploadOptions) error {
	uo := upload.Options{Form: opts.Form, Insecure: opts.Insecure, Retries: opts.Retries, Backoff: opts.Backoff,
		Client: opts.Client, Getenv: opts.Getenv, Now: opts.Now}
	if opts.Retries == 0 {
		uo.Retries = -1 // upload.Options reads 0 as the default
	}
	if len(opts.Headers) > 0 {
		uo.Header = http.Header{}
		for _, h := range opts.Headers {
			k, v, err := upload.ParseHeader(h)
			if err != nil {
				return flagError{err}
			}
			uo.Header.Add(k, v)
		}
	}
	if opts.TokenEnv != "" {
		uo.Token = strings.TrimSpace(opts.Getenv(opts.TokenEnv))
		if uo.Token == "" {
			return &UserError{Msg: "the environment variable " + opts.TokenEnv + " is empty or not set",
				Remedy: "export it with the upload token support gave you, then run the command again"}
		}
	}
	if opts.PasswordStdin {
		pw, err := readSecretLine(opts.IO.In)
		if err != nil {
			return &UserError{Msg: "cannot read the password from standard input", Err: err}
		}
		if pw == "" {
			return &UserError{Msg: "no password on standard input", Remedy: "pipe it in: echo -n \"$PASSWORD\" | quayctl support-bundle upload FILE --to oci://… --username NAME --password-stdin"}
		}
		uo.Username, uo.Password = opts.Username, pw
	}
	var bar *uploadBar
	if opts.Progress {
		bar = &uploadBar{w: opts.IO.ErrOut}
		uo.Progress = bar.update
	}
	res, err := upload.Upload(ctx, opts.File, opts.To, uo)
	bar.done()
	if err != nil {
		if errors.Is(err, context.Canceled) {
			return err
		}
		var ue *upload.Error
		if errors.As(err, &ue) {
			return &UserError{Msg: ue.Msg, Err: ue.Err, Remedy: ue.Remedy}
		}
		return &UserError{Msg: "upload failed", Err: err}
	}
	if opts.capture != nil {
		*opts.capture = res
	}
	return render(opts.IO.Out, opts.Output, res, func(w io.Writer) error { return renderUpload(w, opts.IO.OutTTY, res) })
}

func renderUpload(w io.Writer, tty bool, res *upload.Result) error {
	verb := "Uploaded"
	if res.Kind == upload.KindOCI {
		verb = "Pushed"
	}
	if err := heading(w, tty, fmt.Sprintf("%s %s to %s", verb, res.File, res.Destination)); err != nil {
		return err
	}
	var rows [][2]string
	if res.Kind == upload.KindOCI {
		rows = append(rows, [2]string{"reference", res.Reference}, [2]string{"tag", res.Tag},
			[2]string{"artifact type", res.ArtifactType})
	} else {
		rows = append(rows, [2]string{"answer", fmt.Sprintf("%s %d %s", res.Method, res.StatusCode, http.StatusText(res.StatusCode))})
	}
	rows = append(rows, [2]string{"bytes", fmt.Sprintf("%d (%s)", res.Bytes, humanize.IBytes(uint64(res.Bytes)))},
		[2]string{"sha256", res.SHA256}, [2]string{"attempts", fmt.Sprint(res.Attempts)})
	for _, r := range rows {
		if _, err := fmt.Fprintf(w, "  %-14s %s\n", r[0]+":", r[1]); err != nil {
			return err
		}
	}
	if res.Kind == upload.KindOCI {
		ref := strings.TrimPrefix(res.Destination, "oci://")
		_, err := fmt.Fprintf(w, "Fetch it with: oras pull %s (or skopeo copy docker://%s dir:bundle)\n", ref, ref)
		return err
	}
	return nil
}

// uploadStderrTTY says whether w is a terminal.
func uploadStderrTTY(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && isatty.IsTerminal(f.Fd())
}

// uploadBar draws "[=====>    ]  45% 12.0 MiB / 27.0 MiB" on one
// terminal line, at most ten times a second.
type uploadBar struct {
	mu    sync.Mutex
	w     io.Writer
	last  time.Time
	drawn bool
}

func (p *uploadBar) update(sent, total int64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	now := time.Now()
	if sent < total && now.Sub(p.last) < 100*time.Millisecond {
		return
	}
	p.last = now
	const width = 30
	frac := 1.0
	if total > 0 {
		frac = float64(sent) / float64(total)
	}
	fill := int(frac * width)
	bar := strings.Repeat("=", fill)
	if fill < width {
		bar += ">" + strings.Repeat(" ", width-fill-1)
	}
	fmt.Fprintf(p.w, "\r[%s] %3.0f%% %s / %s ", bar, frac*100, humanize.IBytes(uint64(max(sent, 0))), humanize.IBytes(uint64(max(total, 0))))
	p.drawn = true
}

// done ends the bar's line.
func (p *uploadBar) done() {
	if p == nil {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.drawn {
		fmt.Fprintln(p.w)
	}
}
