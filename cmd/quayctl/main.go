// Command quayctl is a Quay-compatible registry (quayctl serve) and a
// troubleshooting toolkit for Quay deployments.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/quayctl/quayctl/cmd/quayctl/cli"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := cli.Main(ctx, os.Args[1:], cli.System())
	stop()
	os.Exit(code)
}
