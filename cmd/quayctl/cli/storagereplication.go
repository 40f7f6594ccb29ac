package cli

import (
	"context"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/dustin/go-humanize"
	"github.com/spf13/cobra"
	"sigs.k8s.io/yaml"

	"github.com/quayctl/quayctl/collectors"
	"github.com/quayctl/quayctl/collectors/gather"
	"github.com/quayctl/quayctl/dbtools/diagnostics"
)

// StorageReplicationStatusOptions are the flags of `quayctl storage
// replication-status`.
type StorageReplicationStatusOptions struct {
	IO         *IOStreams
	Target     TargetOptions
	Deployment func(context.Context) (collectors.Deployment, error)
	// Required overrides DISTRIBUTED_STORAGE_DEFAULT_LOCATIONS.
	Required []string
	Output   string
	// Now is the clock the backlog's age is measured with (tests fix it).
	Now func() time.Time
}

// storageReplicationResult is the stable JSON/YAML schema of `quayctl
// storage replication-status` (docs/storage-replication-status.md).
type storageReplicationResult struct {
	Database string `json:"database"`
	// Replication is FEATURE_STORAGE_REPLICATION when a config was read.
	Replication *bool `json:"replication,omitempty"`
	// Required are the locations every blob must reach, and RequiredFrom
	// where that list came from: "flag" (--required), "config"
	// (DISTRIBUTED_STORAGE_DEFAULT_LOCATIONS) or "placements" (every
	// location holding a blob, when neither is known).
	Required     []string `json:"required"`
	RequiredFrom string   `json:"required_from"`
	diagnostics.ReplicationStatus
}

// NewCmdStorageReplicationStatus builds `quayctl storage replication-status`.
func NewCmdStorageReplicationStatus(f *Factory, runF func(*StorageReplicationStatusOptions) error) *cobra.Command {
	opts := &StorageReplicationStatusOptions{IO: f.IO, Now: time.Now}
	opts.Deployment = f.deploymentFunc(&opts.Target)
	var required string
	cmd := &cobra.Command{
		Use:   "replication-status",
		Short: "Show geo-replication progress: blobs and bytes each location holds and lacks, and the replication backlog",
		Long: `Show how far geo-replication (FEATURE_STORAGE_REPLICATION) has come, from
the registry's database: for each storage location, the blobs and bytes
the database places there (imagestorageplacement) and the placed blobs it
still lacks; and the replication queue (imagestoragereplication items):
how many wait, how many a worker holds, how many failed and are retried,
and how long the oldest has waited.

Every location of DISTRIBUTED_STORAGE_DEFAULT_LOCATIONS (or --required)
should hold every blob; a location that lacks blobs while the backlog is
empty and old is the sign of a stopped worker or an unreachable location
(quayctl storage probe checks the locations). quayctl diagnose --only
geo-replication turns the same numbers into findings.

The database is found as for quayctl db activity: --db, DB_URI of --config,
or the deployment's config.yaml: PostgreSQL, or SQLite (quayctl serve's
default), which is opened read-only and must be a file this machine can read.

Exit codes: 0 shown, 1 the database cannot be read, 2 bad flags.`,
		Example: `  quayctl storage replication-status --podman
  quayctl storage replication-status --db 'postgresql://quay:PASSWORD@127.0.0.1:5432/quay' --required us,eu -o json`,
		Args: targetArgs(exactArgs(0, "no arguments")),
		RunE: func(cmd *cobra.Command, args []string) error {
			t, err := targetFromFlags(cmd.Flags())
			if err != nil {
				return err
			}
			opts.Target = t
			if err := checkOutput(opts.Output); err != nil {
				return err
			}
			opts.Required = nil
			if cmd.Flags().Changed("required") {
				for _, l := range strings.FieldsFunc(required, func(r rune) bool { return r == ',' || r == ' ' }) {
					if strings.Contains(l, "/") {
						return flagError{fmt.Errorf("--required %q: %q is not a location name of DISTRIBUTED_STORAGE_CONFIG", required, l)}
					}
					opts.Required = append(opts.Required, l)
				}
				if len(opts.Required) == 0 {
					return flagError{fmt.Errorf("--required is empty: name the locations every blob must reach, such as us,eu")}
				}
			}
			if runF != nil {
				return runF(opts)
			}
			return storageReplicationStatusRun(cmd.Context(), opts)
		},
	}
	addTargetFlags(cmd)
	addOutputFlag(cmd, &opts.Output)
	cmd.Flags().StringVar(&required, "required", "", "comma-separated locations every blob must reach (default: DISTRIBUTED_STORAGE_DEFAULT_LOCATIONS of the config)")
	return cmd
}

// replicationConfig is what the command reads from config.yaml.
type replicationConfig struct {
	Replication *bool    `json:"FEATURE_STORAGE_REPLICATION"`
	Defaults    []string `json:"DISTRIBUTED_STORAGE_DEFAULT_LOCATIONS"`
}

func storageReplicationStatusRun(ctx context.Context, opts *StorageReplicationStatusOptions) error {
	db, err := openQuayDB(ctx, opts.IO, opts.Target, opts.Deployment, "")
	if err != nil {
		return err
	}
	defer db.close()
	res := storageReplicationResult{Database: db.uri.Redacted, Required: opts.Required, RequiredFrom: "flag"}
	if db.config != "" {
		// openQuayDB found the config; read the replication keys from it
		// (the deployment is opened once and shared).
		if d, err := opts.Deployment(ctx); err == nil {
			if raw, _, err := gather.ReadConfig(ctx, d, gather.ConfigFromAuto, func(string) {}); err == nil {
				var rc replicationConfig
				if yaml.Unmarshal(raw, &rc) == nil {
					res.Replication = rc.Replication
					if res.Required == nil && len(rc.Defaults) > 0 {
						res.Required, res.RequiredFrom = rc.Defaults, "config"
					}
				}
			}
		}
	}
	status, err := diagnostics.Replication(ctx, db.q, res.Required, opts.Now())
	if err != nil {
		return dbReadError(err)
	}
	if res.Required == nil {
		res.Required, res.RequiredFrom = []string{}, "placements"
		for i, l := range status.Locations {
			if l.Blobs > 0 {
				status.Locations[i].Required = true
				res.Required = append(res.Required, l.Name)
			}
		}
	}
	res.ReplicationStatus = status
	return render(opts.IO.Out, opts.Output, res, func(w io.Writer) error {
		return writeReplicationStatus(w, opts.IO.OutTTY, res)
	})
}

func writeReplicationStatus(w io.Writer, tty bool, res storageReplicationResult) error {
	if err := heading(w, tty, "quayctl storage replication-status: "+res.Database); err != nil {
		return err
	}
	t := newTable("LOCATION", "REQUIRED", "BLOBS", "BYTES", "MISSING BLOBS", "MISSING BYTES")
	for _, l := range res.Locations {
		t.row(l.Name, yesNo(l.Required), fmt.Sprint(l.Blobs), humanize.IBytes(uint64(l.Bytes)), fmt.Sprint(l.MissingBlobs), humanize.IBytes(uint64(l.MissingBytes)))
		switch {
		case l.Required && l.MissingBlobs > 0:
			t.tone(4, toneWarn)
		case l.Required:
			t.tone(4, toneGood)
		}
	}
	if err := t.render(w, tty); err != nil {
		return err
	}
	var b strings.Builder
	fmt.Fprintf(&b, "\nplaced blobs: %d (%s)\n", res.PlacedBlobs, humanize.IBytes(uint64(res.PlacedBytes)))
	from := map[string]string{"flag": "--required", "config": "DISTRIBUTED_STORAGE_DEFAULT_LOCATIONS",
		"placements": "every location holding a blob; no config read — pass --required or --config"}[res.RequiredFrom]
	fmt.Fprintf(&b, "required locations: %s (from %s)\n", strings.Join(res.Required, ", "), from)
	if res.Replication != nil && !*res.Replication {
		b.WriteString("FEATURE_STORAGE_REPLICATION is off: nothing copies blobs between locations\n")
	}
	bl := res.Backlog
	fmt.Fprintf(&b, "replication backlog: %d queued, %d in progress, %d retrying after a failure\n", bl.Queued, bl.InProgress, bl.Retrying)
	if bl.OldestQueuedAt != nil {
		fmt.Fprintf(&b, "oldest queued: %s (%s ago)\n", bl.OldestQueuedAt.UTC().Format(time.RFC3339), (time.Duration(bl.OldestAgeSeconds) * time.Second).String())
	}
	missing := slices.ContainsFunc(res.Locations, func(l diagnostics.ReplicationLocation) bool { return l.Required && l.MissingBlobs > 0 })
	switch {
	case missing && bl.Queued == 0:
		b.WriteString("\nRequired locations lack blobs and nothing is queued: is the storagereplication worker running? It also queues such blobs itself (quayctl serve) every interval.\n")
	case bl.OldestAgeSeconds >= int64(time.Hour/time.Second):
		b.WriteString("\nThe backlog is older than an hour: check the storagereplication worker's logs and the locations (quayctl storage probe).\n")
	}
	_, err := io.WriteString(w, b.String())
	return err
}
