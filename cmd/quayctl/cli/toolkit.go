package cli

import (
	"github.com/spf13/cobra"
)

// addToolkitCommands adds the troubleshooting commands that look at a Quay
// deployment — status, logs, config get/validate, db conf, health, debug —
// each with the target flags (--podman, --openshift, --url …; see
// target.go). `db conf` joins the existing `db` group.
func addToolkitCommands(root *cobra.Command, f *Factory) {
	root.AddCommand(
		NewCmdStatus(f, nil),
		NewCmdLogs(f, nil),
		NewCmdConfig(f),
		NewCmdHealth(f, nil),
		NewCmdDebug(f, nil),
		NewCmdDiagnose(f, nil),
	)
	root.AddCommand(NewCmdSupportBundle(f))
	findSubcommand(root, "support-bundle").AddCommand(NewCmdSupportBundleUpload(f, nil))
	db := findSubcommand(root, "db")
	if db == nil {
		db = groupCmd(&cobra.Command{Use: "db", Short: "Database tools"})
		root.AddCommand(db)
	}
	db.AddCommand(NewCmdDBConf(f, nil), NewCmdDBActivity(f, nil), NewCmdDBUsers(f, nil))
	db.AddCommand(NewCmdDBCheck(f, nil))
	addStorageCommands(root, f)
}

// findSubcommand returns the direct subcommand of parent named name.
func findSubcommand(parent *cobra.Command, name string) *cobra.Command {
	for _, c := range parent.Commands() {
		if c.Name() == name {
			return c
		}
	}
	return nil
}
