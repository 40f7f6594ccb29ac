package cli

import (
	"fmt"
	"io"
	"runtime"

	"github.com/spf13/cobra"

	"github.com/quayctl/quayctl/internal/version"
)

// VersionOptions are the flags of `quayctl version`.
type VersionOptions struct {
	IO     *IOStreams
	Output string
}

type versionResult struct {
	Version   string `json:"version"`
	GoVersion string `json:"go_version"`
	Platform  string `json:"platform"`
}

// NewCmdVersion builds `quayctl version`.
func NewCmdVersion(f *Factory, runF func(*VersionOptions) error) *cobra.Command {
	opts := &VersionOptions{IO: f.IO}
	cmd := &cobra.Command{
		Use:   "version",
		Short: "Print the quayctl version",
		Args:  exactArgs(0, "no arguments"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := checkOutput(opts.Output); err != nil {
				return err
			}
			if runF != nil {
				return runF(opts)
			}
			return versionRun(opts)
		},
	}
	addOutputFlag(cmd, &opts.Output)
	return cmd
}

func versionRun(opts *VersionOptions) error {
	res := versionResult{Version: version.Version, GoVersion: runtime.Version(), Platform: runtime.GOOS + "/" + runtime.GOARCH}
	return render(opts.IO.Out, opts.Output, res, func(w io.Writer) error {
		_, err := fmt.Fprintf(w, "quayctl %s (%s, %s)\n", res.Version, res.GoVersion, res.Platform)
		return err
	})
}
