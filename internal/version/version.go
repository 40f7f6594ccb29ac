// Package version holds the build's version, set by the Makefile with
// -ldflags "-X github.com/quayctl/quayctl/internal/version.Version=$(git describe --always --dirty)".
package version

// Version is "dev" in builds that do not set it.
var Version = "dev"
