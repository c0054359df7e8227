package boot

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/mattn/go-isatty"
	"github.com/schollz/progressbar/v3"

	"github.com/latchkey/latchkey/models"
)

// copyCommand is latchkey copy --to URL [--force]: every table of
// LATCHKEY_DB (normally the SQLite file) into another store (normally
// PostgreSQL), ids, hashes and sessions kept, so a team moves without
// logging anyone out. The work is models.Copy; this wires the flags and
// the output.
func copyCommand() Command {
	return Command{
		Name:    "copy",
		Batch:   true,
		Summary: "copy every table of LATCHKEY_DB into another store (--to postgres://…), keeping ids and sessions",
		Flags: func(fs *flag.FlagSet) {
			fs.String("to", "", "the store to copy into: a postgres:// URL (or a SQLite file); migrated first, and it must hold no rows")
			fs.Bool("force", false, "delete every row the target holds first, in the copy's own transaction")
		},
		Run: func(ctx context.Context, cfg Config, fs *flag.FlagSet, stdout io.Writer) error {
			to := fs.Lookup("to").Value.String()
			force := fs.Lookup("force").Value.String() == "true"
			// Whatever goes wrong, and whoever words the message (pgx, the
			// OS), no password of either URL is printed.
			err := copyStores(ctx, cfg.DB, to, force, stdout)
			return redactError(err, append(dsnPasswords(to), dsnPasswords(cfg.DB)...))
		},
	}
}

// copyStores opens both stores (which migrates them), copies and prints a
// summary.
func copyStores(ctx context.Context, from, to string, force bool, stdout io.Writer) error {
	if to == "" {
		return usage(errors.New("copy: --to is required: the store to copy into, e.g. --to postgres://user@host:5432/db"))
	}
	if _, err := models.StoreKind(to); err != nil {
		return usage(fmt.Errorf("copy --to: %w", err))
	}
	if to == from {
		return usage(errors.New("copy: --to names LATCHKEY_DB itself: give another store"))
	}
	if kind, err := models.StoreKind(from); err == nil && kind == "sqlite" {
		// Open would make an empty database here, and copy nothing.
		if _, err := os.Stat(strings.TrimPrefix(from, "file:")); err != nil {
			return fmt.Errorf("copy: the source (LATCHKEY_DB): %w", err)
		}
	}
	src, err := models.Open(ctx, from)
	if err != nil {
		return fmt.Errorf("copy: the source (LATCHKEY_DB): %w", err)
	}
	defer src.Close()
	dst, err := models.Open(ctx, to)
	if err != nil {
		return fmt.Errorf("copy --to %s: %w", models.RedactDSN(to), err)
	}
	defer dst.Close()

	fmt.Fprintf(stdout, "copy: from %s to %s\n", models.RedactDSN(from), models.RedactDSN(to))
	p := newCopyProgress(stdout)
	st, err := models.Copy(ctx, src, dst, models.CopyOptions{Force: force, Progress: p.update})
	p.end(err == nil)
	switch {
	case errors.Is(err, models.ErrTargetNotEmpty):
		return fmt.Errorf("copy: refused, nothing was copied: %w; run again with --force to delete the target's rows first "+
			"(in the same transaction: if the copy fails they stay), or copy into an empty database", err)
	case err != nil:
		return fmt.Errorf("copy: failed, the target keeps none of the copied rows (only the migrations): %w", err)
	}

	if len(st.Deleted) > 0 {
		var n int64
		for _, c := range st.Deleted {
			n += c.Rows
		}
		fmt.Fprintf(stdout, "copy: --force: deleted the %d rows the target held first (%s)\n", n, countsText(st.Deleted))
	}
	fmt.Fprintf(stdout, "copy: copied %d rows in %s into %s (schema at migration %d):\n",
		st.Rows(), st.Elapsed.Round(time.Millisecond), models.RedactDSN(to), st.Version)
	name, count := 0, 0
	for _, c := range st.Copied {
		name, count = max(name, len(c.Table)), max(count, len(strconv.FormatInt(c.Rows, 10)))
	}
	for _, c := range st.Copied {
		if _, err := fmt.Fprintf(stdout, "  %-*s  %*d\n", name, c.Table, count, c.Rows); err != nil {
			return err
		}
	}
	return nil
}

func countsText(counts []models.TableCount) string {
	parts := make([]string, len(counts))
	for i, c := range counts {
		parts[i] = fmt.Sprintf("%s %d", c.Table, c.Rows)
	}
	return strings.Join(parts, ", ")
}

// copyProgress shows a copy under way: a bar on a terminal, otherwise
// plain lines (copy: users 1000/5000) that a log keeps, one when a table
// is done and at most one a second in between.
type copyProgress struct {
	name string // the command, at the start of each line
	w    io.Writer
	tty  bool
	bar  *progressbar.ProgressBar
	done string    // the table whose last line was printed
	last time.Time // when a plain line was last printed
}

func newCopyProgress(w io.Writer) *copyProgress {
	p := &copyProgress{name: "copy", w: w}
	if f, ok := w.(*os.File); ok {
		p.tty = isatty.IsTerminal(f.Fd()) || isatty.IsCygwinTerminal(f.Fd())
	}
	return p
}

func (p *copyProgress) update(c models.CopyProgress) {
	if p.tty {
		if p.bar == nil && c.AllTotal > 0 {
			p.bar = progressbar.NewOptions64(c.AllTotal, progressbar.OptionSetWriter(p.w),
				progressbar.OptionShowCount(), progressbar.OptionSetWidth(30),
				progressbar.OptionThrottle(100*time.Millisecond), progressbar.OptionSetPredictTime(true))
		}
		if p.bar != nil {
			p.bar.Describe(fmt.Sprintf("%s: %-19s", p.name, c.Table))
			_ = p.bar.Set64(c.AllDone)
		}
		return
	}
	now := time.Now()
	switch {
	case c.Done == c.Total && p.done != c.Table:
		p.done = c.Table
	case c.Done > 0 && c.Done < c.Total && now.Sub(p.last) >= time.Second:
	default:
		return
	}
	p.last = now
	fmt.Fprintf(p.w, "%s: %s %d/%d\n", p.name, c.Table, c.Done, c.Total)
}

// end completes the bar when the copy succeeded and leaves the line the
// bar was drawn on.
func (p *copyProgress) end(ok bool) {
	if p.bar == nil {
		return
	}
	if ok {
		_ = p.bar.Finish()
	}
	fmt.Fprintln(p.w)
}

// dsnPasswords are the secrets a database URL holds, as given and as
// escaped, found even when the URL does not parse.
func dsnPasswords(dsn string) []string {
	var pws []string
	if i := strings.Index(dsn, "://"); i >= 0 {
		rest := dsn[i+3:]
		if end := strings.IndexAny(rest, "/?#"); end >= 0 {
			rest = rest[:end]
		}
		if at := strings.LastIndex(rest, "@"); at >= 0 {
			if _, pw, ok := strings.Cut(rest[:at], ":"); ok {
				pws = append(pws, pw)
			}
		}
	}
	if u, err := url.Parse(dsn); err == nil {
		if u.User != nil {
			if pw, ok := u.User.Password(); ok {
				pws = append(pws, pw)
			}
		}
		pws = append(pws, u.Query()["password"]...)
	}
	var out []string
	for _, pw := range pws {
		if pw != "" {
			out = append(out, pw, url.QueryEscape(pw), url.PathEscape(pw))
		}
	}
	return out
}

// redactError replaces every secret in err's message, keeping err for
// errors.Is and errors.As.
func redactError(err error, secrets []string) error {
	if err == nil {
		return nil
	}
	msg := err.Error()
	for _, s := range secrets {
		if s != "" {
			msg = strings.ReplaceAll(msg, s, "xxxxx")
		}
	}
	if msg == err.Error() {
		return err
	}
	return &redactedError{msg: msg, err: err}
}

type redactedError struct {
	msg string
	err error
}

func (e *redactedError) Error() string { return e.msg }
func (e *redactedError) Unwrap() error { return e.err }
