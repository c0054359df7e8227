// Command latchkey serves LoopBack 3's User API and account pages.
// Configuration: flags or LATCHKEY_* environment variables (see README.md);
// latchkey help lists the commands (serve, the default, ...).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/latchkey/latchkey/boot"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	err := boot.RunInput(ctx, os.Args[1:], os.Environ(), os.Stdin, os.Stdout)
	if errors.Is(err, flag.ErrHelp) {
		return // -h printed the settings
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "latchkey:", err)
		if _, ok := errors.AsType[*boot.UsageError](err); ok {
			os.Exit(2) // usage: a bad command line, nothing was done
		}
		os.Exit(1)
	}
}
