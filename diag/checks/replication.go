package checks

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/dustin/go-humanize"

	"github.com/quayctl/quayctl/diag"
)

// Geo-replication checks (troubleshooting guide chapter 6.4).
var (
	replicationPlacementCheck = diag.Check{ID: "geo-replication.placement", Area: AreaReplication, Doc: doc("geo-replication-placement"),
		Title: "blobs and bytes the database places in each location (imagestorageplacement), and blobs not yet in a DISTRIBUTED_STORAGE_DEFAULT_LOCATIONS location"}
	replicationBacklogCheck = diag.Check{ID: "geo-replication.backlog", Area: AreaReplication, Doc: doc("geo-replication-backlog"),
		Title: "the replication queue (imagestoragereplication) is short and its oldest item young"}
	replicationSampleCheck = diag.Check{ID: "geo-replication.sample", Area: AreaReplication, Doc: doc("geo-replication-sample"),
		Title: "a sample of the blobs the database places in each location is really in that location's storage"}
)

var replicationChecks = []diag.Check{
	replicationPlacementCheck.With(checkReplicationPlacement),
	replicationSampleCheck.With(checkReplicationSample),
	replicationBacklogCheck.With(checkReplicationBacklog),
}

// Backlog ages: older than replicationBacklogWarn is a warning (the worker
// is slow, stopped, or a location is down), older than replicationBacklogFail
// a failure (pulls in other regions have been falling back for a day).
const (
	replicationBacklogWarn = time.Hour
	replicationBacklogFail = 24 * time.Hour
)

func checkReplicationBacklog(ctx context.Context, f diag.Facts) []diag.Finding {
	c := replicationBacklogCheck
	_, on, out := replicationEnabled(ctx, c, f)
	if out != nil || !on {
		return out // the placement check says that it is off
	}
	pl, err := diag.GetJSON[replicationPlacement](ctx, f, diag.FactDBPlacement)
	if err != nil {
		return []diag.Finding{c.FactError(diag.FactDBPlacement, err)}
	}
	b := pl.Backlog
	if b == nil {
		return []diag.Finding{c.Finding(diag.Info, "the replication queue was not read (a support bundle from an older quayctl)")}
	}
	age := time.Duration(b.OldestAgeSeconds) * time.Second
	fd := c.Finding(diag.OK, "")
	fd.Evidence = []string{fmt.Sprintf("queued: %d (in progress %d, retrying after a failure %d)", b.Queued, b.InProgress, b.Retrying)}
	if b.OldestQueuedAt != nil {
		fd.Evidence = append(fd.Evidence, fmt.Sprintf("oldest queued at %s, %s ago", b.OldestQueuedAt.UTC().Format(time.RFC3339), age.Round(time.Second)))
	}
	switch {
	case b.Queued == 0:
		fd.Title = "the replication queue is empty: every pushed blob was copied"
	case age < replicationBacklogWarn:
		fd.Title = fmt.Sprintf("%d blobs wait for replication; the oldest for %s", b.Queued, age.Round(time.Second))
	default:
		fd.Severity = diag.Warn
		if age >= replicationBacklogFail {
			fd.Severity = diag.Fail
		}
		fd.Title = fmt.Sprintf("replication is behind: %d blobs queued, the oldest for %s", b.Queued, age.Round(time.Minute))
		fd.Remedy = "check that the storagereplication worker runs (quayctl logs quay, look for storagereplication; FEATURE_STORAGE_REPLICATION on), that every DISTRIBUTED_STORAGE_DEFAULT_LOCATIONS location is reachable and writable (quayctl storage probe), then watch the queue drain with quayctl storage replication-status"
		if b.Retrying > 0 {
			fd.Remedy = fmt.Sprintf("%d items failed and are retried with a growing delay: a location is probably down or refusing writes — ", b.Retrying) + fd.Remedy
		}
	}
	return []diag.Finding{fd}
}

// replicationPlacement is database/placement.json (dbtools/diagnostics
// PlacementReport), the fields the checks read.
type replicationPlacement struct {
	Locations []struct {
		Name  string `json:"name"`
		Blobs int64  `json:"blobs"`
		Bytes int64  `json:"bytes"`
	} `json:"locations"`
	TotalBlobs    int64 `json:"total_blobs"`
	TotalBytes    int64 `json:"total_bytes"`
	UnplacedBlobs int64 `json:"unplaced_blobs"`
	// Replication is quayctl storage replication-status's numbers
	// (diagnostics.ReplicationStatus); absent from older bundles, whose
	// Locations, TotalBlobs and UnplacedBlobs give the same counts.
	Replication *struct {
		Locations []struct {
			Name         string `json:"name"`
			Blobs        int64  `json:"blobs"`
			Bytes        int64  `json:"bytes"`
			MissingBlobs int64  `json:"missing_blobs"`
			MissingBytes int64  `json:"missing_bytes"`
		} `json:"locations"`
		PlacedBlobs int64 `json:"placed_blobs"`
		PlacedBytes int64 `json:"placed_bytes"`
	} `json:"replication"`
	// Backlog is the replication queue as the placements were read.
	Backlog *struct {
		Queued           int64      `json:"queued"`
		InProgress       int64      `json:"in_progress"`
		Retrying         int64      `json:"retrying"`
		OldestQueuedAt   *time.Time `json:"oldest_queued_at"`
		OldestAgeSeconds int64      `json:"oldest_age_seconds"`
	} `json:"replication_backlog"`
}

// replicationMaxEvidence bounds the checksums listed as evidence.
const replicationMaxEvidence = 10

// replicationEnabled reads FEATURE_STORAGE_REPLICATION; the findings say
// so when it is off or the config is unreadable.
func replicationEnabled(ctx context.Context, c diag.Check, f diag.Facts) (map[string]any, bool, []diag.Finding) {
	cfg, err := storageConfig(ctx, f)
	if err != nil {
		return nil, false, []diag.Finding{c.FactError(diag.FactConfig, err)}
	}
	if !storageTrue(cfg["FEATURE_STORAGE_REPLICATION"]) {
		return cfg, false, nil
	}
	return cfg, true, nil
}

func checkReplicationPlacement(ctx context.Context, f diag.Facts) []diag.Finding {
	c := replicationPlacementCheck
	cfg, on, out := replicationEnabled(ctx, c, f)
	if out != nil {
		return out
	}
	if !on {
		return []diag.Finding{c.Finding(diag.Info, "geo-replication is not enabled (FEATURE_STORAGE_REPLICATION is not true)")}
	}
	pl, err := diag.GetJSON[replicationPlacement](ctx, f, diag.FactDBPlacement)
	if err != nil {
		fd := c.FactError(diag.FactDBPlacement, err)
		if fd.Severity == diag.Warn {
			fd.Remedy = "the placements come from the database: quayctl diagnose --only database"
		}
		return []diag.Finding{fd}
	}
	var configured []string
	if raw, ok := cfg["DISTRIBUTED_STORAGE_CONFIG"].(map[string]any); ok {
		for n := range raw {
			configured = append(configured, n)
		}
	}
	sort.Strings(configured)
	defaults := storageList(cfg["DISTRIBUTED_STORAGE_DEFAULT_LOCATIONS"])
	// Per location: what it holds and which placed blobs it lacks, as
	// quayctl storage replication-status counts them. Placed blobs (held
	// somewhere) are the ones replication copies to every default
	// location; unplaced rows are pushes that never finished.
	type share struct{ blobs, bytes, missingBlobs, missingBytes int64 }
	placed := map[string]share{}
	var placedBlobs, placedBytes int64
	bytesKnown := pl.Replication != nil
	if r := pl.Replication; r != nil {
		placedBlobs, placedBytes = r.PlacedBlobs, r.PlacedBytes
		for _, l := range r.Locations {
			placed[l.Name] = share{l.Blobs, l.Bytes, l.MissingBlobs, l.MissingBytes}
		}
	} else { // an older bundle: the bytes placed are not known
		placedBlobs = pl.TotalBlobs - pl.UnplacedBlobs
		for _, l := range pl.Locations {
			placed[l.Name] = share{l.Blobs, l.Bytes, max(placedBlobs-l.Blobs, 0), 0}
		}
	}
	for _, loc := range configured {
		s, ok := placed[loc]
		if !ok { // holds nothing: lacks every placed blob
			s = share{missingBlobs: placedBlobs, missingBytes: placedBytes}
		}
		fd := c.Finding(diag.OK, "")
		fd.Subject = loc
		fd.Evidence = []string{
			ReplicationEvidence(loc, s.blobs, s.bytes, s.missingBlobs, s.missingBytes),
			fmt.Sprintf("all locations: %d blobs placed, %s (%d rows in imagestorage, %d without a placement)", placedBlobs, humanize.IBytes(uint64(placedBytes)), pl.TotalBlobs, pl.UnplacedBlobs),
		}
		lacking := ""
		if !bytesKnown {
			fd.Evidence = []string{
				fmt.Sprintf("%s: %d blobs, %s", loc, s.blobs, humanize.IBytes(uint64(s.bytes))),
				fmt.Sprintf("all locations: %d blobs placed (%d rows in imagestorage, %d without a placement), %s", placedBlobs, pl.TotalBlobs, pl.UnplacedBlobs, humanize.IBytes(uint64(pl.TotalBytes))),
			}
		} else {
			lacking = " (" + humanize.IBytes(uint64(s.missingBytes)) + ")"
		}
		switch {
		case slices.Contains(defaults, loc) && s.missingBlobs > 0:
			fd.Severity = diag.Warn
			fd.Title = fmt.Sprintf("%s lacks %d of %d blobs%s: replication to this default location is behind", loc, s.missingBlobs, placedBlobs, lacking)
			fd.Remedy = fmt.Sprintf("the storagereplication worker copies blobs to every DISTRIBUTED_STORAGE_DEFAULT_LOCATIONS location: check it runs (quayctl logs quay, look for storagereplication), that %s is writable (quayctl storage probe --location %s), and run this again (or quayctl storage replication-status) to see the backlog shrink", loc, loc)
		case slices.Contains(defaults, loc):
			fd.Title = fmt.Sprintf("%s holds all %d placed blobs (%s)", loc, s.blobs, humanize.IBytes(uint64(s.bytes)))
		default:
			fd.Title = fmt.Sprintf("%s holds %d blobs (%s); it is not a default location, so only namespaces that choose it replicate there", loc, s.blobs, humanize.IBytes(uint64(s.bytes)))
		}
		out = append(out, fd)
	}
	for _, l := range pl.Locations {
		if l.Blobs == 0 || slices.Contains(configured, l.Name) {
			continue
		}
		fd := c.Finding(diag.Warn, fmt.Sprintf("the database places %d blobs in %s, which DISTRIBUTED_STORAGE_CONFIG does not configure", l.Blobs, l.Name))
		fd.Subject = l.Name
		fd.Evidence = []string{fmt.Sprintf("%s: %d blobs, %s", l.Name, l.Blobs, humanize.IBytes(uint64(l.Bytes))), "DISTRIBUTED_STORAGE_CONFIG has: " + strings.Join(configured, ", ")}
		fd.Remedy = fmt.Sprintf("pulls of blobs held only in %s fail: configure the location again (same name), or make sure the other locations hold those blobs before removing it", l.Name)
		out = append(out, fd)
	}
	if len(defaults) == 0 {
		fd := c.Finding(diag.Info, "DISTRIBUTED_STORAGE_DEFAULT_LOCATIONS is empty: blobs are replicated only to the locations namespaces choose")
		fd.Remedy = "list the locations every blob must reach in DISTRIBUTED_STORAGE_DEFAULT_LOCATIONS"
		out = append(out, fd)
	}
	return out
}

// ReplicationEvidence is the placement finding's line for one location:
// the numbers quayctl storage replication-status shows for it, with exact
// byte counts so that the two can be compared.
func ReplicationEvidence(loc string, blobs, bytes, missingBlobs, missingBytes int64) string {
	return fmt.Sprintf("%s: %d blobs, %d bytes (%s); missing %d blobs, %d bytes (%s)",
		loc, blobs, bytes, humanize.IBytes(uint64(bytes)), missingBlobs, missingBytes, humanize.IBytes(uint64(missingBytes)))
}

func checkReplicationSample(ctx context.Context, f diag.Facts) []diag.Finding {
	c := replicationSampleCheck
	_, on, out := replicationEnabled(ctx, c, f)
	if out != nil || !on {
		return out // the placement check says that it is off
	}
	locs, err := diag.GetJSON[[]string](ctx, f, diag.FactStorageLocations)
	if err != nil {
		return []diag.Finding{c.FactError(diag.FactStorageLocations, err)}
	}
	for _, loc := range locs {
		name := diag.FactStorageSample(loc)
		s, err := diag.GetJSON[diag.StorageSample](ctx, f, name)
		if err != nil {
			fd := c.FactError(name, err)
			fd.Subject = loc
			out = append(out, fd)
			continue
		}
		fd := c.Finding(diag.OK, "")
		fd.Subject = loc
		switch {
		case len(s.Missing) > 0:
			fd.Severity = diag.Fail
			fd.Title = fmt.Sprintf("%s: %d of %d sampled blobs the database places here are missing from its storage", loc, len(s.Missing), s.Checked)
			shown := s.Missing
			if len(shown) > replicationMaxEvidence {
				shown = shown[:replicationMaxEvidence]
			}
			for _, m := range shown {
				fd.Evidence = append(fd.Evidence, "missing: "+m)
			}
			if len(s.Missing) > len(shown) {
				fd.Evidence = append(fd.Evidence, fmt.Sprintf("… and %d more", len(s.Missing)-len(shown)))
			}
			fd.Remedy = "pulls fall back to another location that holds these blobs, and fail where none does; the database's placement is wrong: copy each blob (sha256/<first two hex>/<hex>) from a location that has it, or find what deleted it (storage lifecycle rules, a manual cleanup); troubleshooting guide 6.4"
		case s.Checked == 0:
			fd.Severity = diag.Info
			fd.Title = fmt.Sprintf("%s: no sampled blob is placed here, nothing to compare", loc)
		default:
			fd.Title = fmt.Sprintf("%s: all %d sampled blobs the database places here are in storage", loc, s.Checked)
		}
		out = append(out, fd)
	}
	return out
}
