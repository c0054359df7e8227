package boot

import (
	"context"
	"flag"
	"fmt"
	"io"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/latchkey/latchkey/internal/oauth"
)

// Command is one thing the binary does: latchkey [command] [flags]. Each
// command parses its own FlagSet, which holds the shared settings (flags or
// LATCHKEY_* variables, config.go) and the command's own flags.
type Command struct {
	// Name is one word, or two for a command with kinds (import lb3).
	Name, Summary string
	// Args names the positional arguments it takes, for help ("SOURCE");
	// "" when it takes none, and any given is a usage error.
	Args string
	// Flags registers the command's own flags on fs; nil when it has none.
	Flags func(fs *flag.FlagSet)
	// Run does the work once fs is parsed and cfg loaded; it reads its own
	// flags from fs.
	Run func(ctx context.Context, cfg Config, fs *flag.FlagSet, stdout io.Writer) error
	// Batch marks a one-off bulk command (copy, import) whose live heap
	// grows with its input: it runs without the server's soft memory limit
	// (tuneGC), under which a heap past 96 MiB has the collector running
	// nonstop.
	Batch bool
}

// commands is the table Run dispatches on. The first is the default, run
// when the first argument is not a command name. copy, import and user …
// are added here (DESIGN.md, "Growing"). start and ready are serve's: the
// time the program started and the readiness callback of RunReady; stdin
// is the standard input (user create --password-stdin).
func commands(start time.Time, ready func(addr string), stdin io.Reader) []Command {
	return append([]Command{
		{Name: "serve", Summary: "serve the pages and the API until interrupted (the default)",
			Run: func(ctx context.Context, cfg Config, _ *flag.FlagSet, stdout io.Writer) error {
				return serve(ctx, cfg, stdout, start, ready)
			}},
		copyCommand(),
		importLB3Command(),
	}, userCommands(stdin)...)
}

// dispatch runs the command args[0] names with the rest of args, or the
// default command with all of them when args[0] is a flag or absent.
// "help" lists the commands.
func dispatch(ctx context.Context, cmds []Command, args []string, environ []string, stdout io.Writer) error {
	getenv := lookup(environ)
	cmd, fsName := cmds[0], "latchkey"
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		name := args[0]
		if name == "help" {
			if len(args) > 1 {
				return usage(fmt.Errorf("help takes no arguments (latchkey <command> -h lists a command's flags), got %q", args[1]))
			}
			return listCommands(stdout, cmds)
		}
		i := slices.IndexFunc(cmds, func(c Command) bool {
			words := strings.Fields(c.Name)
			return len(args) >= len(words) && slices.Equal(args[:len(words)], words)
		})
		if i < 0 {
			// Commands of one first word with several kinds are listed
			// once: user list|show|….
			names, kinds := []string{}, map[string]int{}
			for _, c := range cmds {
				first, kind, _ := strings.Cut(c.Name, " ")
				j, seen := kinds[first]
				switch {
				case seen && kind != "":
					names[j] += "|" + kind
				case seen:
				default:
					kinds[first] = len(names)
					names = append(names, c.Name)
				}
			}
			given := name
			if len(args) > 1 && slices.ContainsFunc(cmds, func(c Command) bool { return strings.HasPrefix(c.Name, name+" ") }) {
				given += " " + args[1] // import lbx: the kind is what is unknown
			}
			return usage(fmt.Errorf("unknown command %q (commands: %s, help)", given, strings.Join(names, ", ")))
		}
		cmd, fsName = cmds[i], "latchkey "+cmds[i].Name
		args = args[len(strings.Fields(cmd.Name)):]
	}
	fs := flag.NewFlagSet(fsName, flag.ContinueOnError)
	fs.SetOutput(stdout)
	if cmd.Flags != nil {
		cmd.Flags(fs)
	}
	cfg, err := parseConfig(fs, args, getenv)
	if err != nil {
		return usage(err)
	}
	if cfg.Providers, err = oauth.FromEnv(environ, cfg.BaseURL); err != nil {
		return usage(fmt.Errorf("config %w", err))
	}
	if cmd.Args == "" && fs.NArg() > 0 {
		return usage(fmt.Errorf("unexpected argument %q", fs.Arg(0)))
	}
	tuneGC(getenv, cmd.Batch)
	return cmd.Run(ctx, cfg, fs, stdout)
}

// listCommands is the text of latchkey help.
func listCommands(w io.Writer, cmds []Command) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprint(tw, "Usage: latchkey [command] [flags]\n\nCommands:\n")
	for _, c := range cmds {
		fmt.Fprintf(tw, "  %s\t%s\n", strings.TrimSpace(c.Name+" "+c.Args), c.Summary)
	}
	fmt.Fprint(tw, "  help\tlist the commands\n\n")
	fmt.Fprint(tw, "latchkey <command> -h lists a command's flags: the settings, each also a LATCHKEY_* variable, and its own.\n")
	return tw.Flush()
}

// UsageError is a command line the program cannot run: an unknown
// command, a bad flag or setting, a missing or extra argument. main exits
// with status 2 for it, 1 for any other error.
type UsageError struct{ Err error }

func (e *UsageError) Error() string { return e.Err.Error() }
func (e *UsageError) Unwrap() error { return e.Err }

func usage(err error) error {
	if err == nil {
		return nil
	}
	return &UsageError{Err: err}
}
