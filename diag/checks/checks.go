// Package checks holds diagnose's checks, one file per area. Each reads
// facts by name (diag.Fact*) and never knows where they came from.
package checks

import "github.com/quayctl/quayctl/diag"

// Areas in report order.
const (
	AreaContainers  = "containers"
	AreaHealth      = "health"
	AreaConfig      = "config"
	AreaDatabase    = "database"
	AreaAuth        = "auth"
	AreaStorage     = "storage"
	AreaReplication = "geo-replication"
	AreaMirroring   = "mirroring"
	AreaClair       = "clair"
	AreaLogs        = "logs"
)

// All returns every check, grouped by area in report order.
func All() []diag.Check {
	var out []diag.Check
	for _, area := range [][]diag.Check{
		containerChecks, healthChecks, configChecks, databaseChecks, authChecks,
		storageChecks, replicationChecks, mirroringChecks, clairChecks, logChecks,
	} {
		out = append(out, area...)
	}
	return out
}

// doc is the link to a check's section in docs/diagnose.md.
func doc(anchor string) string { return "docs/diagnose.md#" + anchor }
