package boot

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/mattn/go-isatty"

	"github.com/latchkey/latchkey/models"
)

// latchkey user …: an operator's commands on accounts, over LATCHKEY_DB
// (SQLite or PostgreSQL), beside a running server or without one. The work
// is models' operator actions (models/admin.go), the same the admin pages
// call; every change is audited with the actor "cli" (SECURITY A1). A
// disable, delete or revoke reaches a running server's auth cache within a
// second: through the change feed on PostgreSQL, through PRAGMA
// data_version on SQLite (models/sqlite.go). Mail (reset-link, create
// without a password) is only queued in the outbox, in the transaction of
// the change: the server's mail worker sends it, so the CLI needs no SMTP
// settings.
//
// Output never holds a password, hash, token or link. An unknown user
// exits 1; a bad command line exits 2 (UsageError).

// userRef is the argument naming the account.
const userRef = "EMAIL|ID"

// auditShown is how many audit rows user show prints by default.
const auditShown = 20

func userCommands(stdin io.Reader) []Command {
	jsonFlag := func(fs *flag.FlagSet) {
		fs.Bool("json", false, "print JSON for scripts instead of the table (the fields are listed in README.md)")
	}
	return []Command{
		{Name: "user list", Summary: "list the accounts, or those whose email or username contains --query (or whose id it is)",
			Flags: func(fs *flag.FlagSet) {
				fs.String("query", "", "part of an email or username (any case), or an id")
				fs.Int("limit", 50, "how many to list (at most 1000)")
				fs.Int("offset", 0, "how many to skip: the page after the first is --offset 50")
				jsonFlag(fs)
			},
			Run: userRun("user list", false, userList)},
		{Name: "user show", Args: userRef, Summary: "an account: its sessions, sign-in methods, second factors, last login and recent audit",
			Flags: func(fs *flag.FlagSet) {
				fs.Int("audit", auditShown, "how many of the most recent audit rows to show")
				jsonFlag(fs)
			},
			Run: userRun("user show", false, userShow)},
		{Name: "user create", Args: "EMAIL", Summary: "create an account; without --password-stdin its address is mailed a link to set a password",
			Flags: func(fs *flag.FlagSet) {
				fs.Bool("password-stdin", false, "read the password from the first line of the standard input (pipe it; never a flag)")
				fs.Bool("admin", false, "give the account the admin role")
			},
			Run: userRun("user create", true, func(ctx context.Context, op *operator, fs *flag.FlagSet) error {
				return userCreate(ctx, op, fs, stdin)
			})},
		{Name: "user disable", Args: userRef, Summary: "disable an account: its sessions end at once, and its logins fail as a wrong password does",
			Run: userRun("user disable", false, userDisable)},
		{Name: "user enable", Args: userRef, Summary: "let a disabled account sign in again",
			Run: userRun("user enable", false, userEnable)},
		{Name: "user delete", Args: userRef, Summary: "delete an account with its sessions, sign-in methods and second factors (the audit trail stays)",
			Run: userRun("user delete", false, userDelete)},
		{Name: "user revoke-sessions", Args: userRef, Summary: "end every session of an account at once",
			Run: userRun("user revoke-sessions", false, userRevokeSessions)},
		{Name: "user reset-link", Args: userRef, Summary: "queue a password reset link to the account's address (the server sends it)",
			Run: userRun("user reset-link", false, userResetLink)},
		{Name: "user reset-factors", Args: userRef, Summary: "remove an account's second factors (authenticator, recovery codes, passkeys) and end its sessions",
			Run: userRun("user reset-factors", false, userResetFactors)},
		{Name: "user grant-admin", Args: userRef, Summary: "give an account the admin role (the admin pages)",
			Run: userRun("user grant-admin", false, func(ctx context.Context, op *operator, fs *flag.FlagSet) error {
				return userSetAdmin(ctx, op, fs, true)
			})},
		{Name: "user revoke-admin", Args: userRef, Summary: "take the admin role away",
			Run: userRun("user revoke-admin", false, func(ctx context.Context, op *operator, fs *flag.FlagSet) error {
				return userSetAdmin(ctx, op, fs, false)
			})},
	}
}

// operator is what a user command works with: the account service over
// LATCHKEY_DB, its output and its name for messages.
type operator struct {
	name  string
	users *models.Users
	cfg   Config
	out   io.Writer
	meta  models.ClientMeta
}

// userRun opens LATCHKEY_DB and runs fn. A SQLite file that does not exist
// is an error (opening would create an empty one) except for create, which
// may make the first account of a new installation.
func userRun(name string, mayCreate bool, fn func(context.Context, *operator, *flag.FlagSet) error) func(context.Context, Config, *flag.FlagSet, io.Writer) error {
	return func(ctx context.Context, cfg Config, fs *flag.FlagSet, stdout io.Writer) error {
		err := func() error {
			if kind, err := models.StoreKind(cfg.DB); err == nil && kind == "sqlite" && !mayCreate {
				if _, err := os.Stat(strings.TrimPrefix(cfg.DB, "file:")); err != nil {
					return fmt.Errorf("%s: LATCHKEY_DB %s: %w (is LATCHKEY_DB the server's?)", name, cfg.DB, err)
				}
			}
			db, err := models.Open(ctx, cfg.DB)
			if err != nil {
				return fmt.Errorf("%s: LATCHKEY_DB %s: %w", name, models.RedactDSN(cfg.DB), err)
			}
			defer db.Close()
			// No cache (each command is a few reads), no throttle (shell
			// access is the credential), and the server's mail subscribers:
			// the mail is queued, and the server's worker sends it.
			users := models.NewUsers(db, newHasher(cfg), nil, accountRules(cfg, nil, -1))
			labels := map[string]string{}
			for _, p := range cfg.Providers {
				labels[p.ID] = p.Label
			}
			_, _, mail, err := cfg.Brand.assets(cfg.BaseURL)
			if err != nil {
				return err
			}
			registerMail(users, mail, cfg.BaseURL, labels, cfg.Webhook.ResetDelivery == "webhook", nil)
			registerWebhooks(users, cfg.Webhook, cfg.BaseURL, nil)
			op := &operator{name: name, users: users, cfg: cfg, out: stdout, meta: models.ClientMeta{Actor: models.ActorCLI}}
			return fn(ctx, op, fs)
		}()
		return redactError(err, dsnPasswords(cfg.DB))
	}
}

// arg is the one positional argument (EMAIL|ID, or EMAIL for create).
func (op *operator) arg(fs *flag.FlagSet, what string) (string, error) {
	switch {
	case fs.NArg() == 0:
		return "", usage(fmt.Errorf("%s: %s is missing", op.name, what))
	case fs.NArg() > 1 && strings.HasPrefix(fs.Arg(1), "-"):
		return "", usage(fmt.Errorf("%s: %q after %s: flags go before %s", op.name, fs.Arg(1), what, what))
	case fs.NArg() > 1:
		return "", usage(fmt.Errorf("%s: one %s only, got %q too", op.name, what, fs.Arg(1)))
	}
	return fs.Arg(0), nil
}

// find resolves the EMAIL|ID argument to an account.
func (op *operator) find(ctx context.Context, fs *flag.FlagSet) (*models.User, error) {
	ref, err := op.arg(fs, userRef)
	if err != nil {
		return nil, err
	}
	var u *models.User
	var which string
	if id, perr := strconv.ParseInt(ref, 10, 64); perr == nil && id > 0 {
		u, err = op.users.FindUserByID(ctx, id)
		which = "id " + ref
	} else if strings.Contains(ref, "@") {
		u, err = op.users.FindUserByEmail(ctx, ref)
		which = fmt.Sprintf("the email %q", ref)
	} else {
		return nil, usage(fmt.Errorf("%s: %q is neither an email nor an id", op.name, ref))
	}
	if errors.Is(err, models.ErrNotFound) {
		return nil, fmt.Errorf("%s: no user with %s", op.name, which)
	}
	if err != nil {
		return nil, fmt.Errorf("%s: %w", op.name, err)
	}
	return u, nil
}

// failed wraps an error of the store after the user was found: an account
// deleted in between is named as unknown.
func (op *operator) failed(u *models.User, err error) error {
	if errors.Is(err, models.ErrNotFound) {
		return fmt.Errorf("%s: no user with id %d (deleted meanwhile)", op.name, u.ID)
	}
	return fmt.Errorf("%s: %s: %w", op.name, who(u), err)
}

// printf writes one line of output prefixed with the command's name.
func (op *operator) printf(format string, args ...any) {
	fmt.Fprintf(op.out, op.name+": "+format+"\n", args...)
}

// who names an account in messages: 3 (ann@example.com).
func who(u *models.User) string { return fmt.Sprintf("%d (%s)", u.ID, u.Email) }

func flagOn(fs *flag.FlagSet, name string) bool { return fs.Lookup(name).Value.String() == "true" }

func flagInt(fs *flag.FlagSet, name string) int {
	n, _ := strconv.Atoi(fs.Lookup(name).Value.String())
	return n
}

func userList(ctx context.Context, op *operator, fs *flag.FlagSet) error {
	if flagInt(fs, "limit") < 1 || flagInt(fs, "offset") < 0 {
		return usage(fmt.Errorf("%s: --limit is at least 1 and --offset at least 0", op.name))
	}
	q := fs.Lookup("query").Value.String()
	page, err := op.users.ListUsers(ctx, models.UserQuery{Query: q, Limit: flagInt(fs, "limit"), Offset: flagInt(fs, "offset")})
	if err != nil {
		return fmt.Errorf("%s: %w", op.name, err)
	}
	if flagOn(fs, "json") {
		out := jsonUserList{Total: page.Total, Offset: page.Offset, Limit: page.Limit, Users: []jsonUserSummary{}}
		for _, u := range page.Users {
			out.Users = append(out.Users, jsonUserSummary{ID: u.ID, Email: u.Email, Username: optString(u.Username),
				EmailVerified: u.EmailVerified, Created: jsonTime(u.Created), LastLogin: optTime(u.LastLogin),
				Disabled: u.Disabled, Admin: u.Admin, HasPassword: u.HasPassword, Sessions: u.Sessions})
		}
		return writeJSON(op.out, out)
	}
	if len(page.Users) == 0 {
		switch {
		case page.Total > 0:
			op.printf("no users past --offset %d (%d match)", page.Offset, page.Total)
		case q != "":
			op.printf("no users match %q", q)
		default:
			op.printf("no users yet (latchkey user create EMAIL makes one)")
		}
		return nil
	}
	tw := tabwriter.NewWriter(op.out, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tEMAIL\tUSERNAME\tCREATED\tLAST LOGIN\tSESSIONS\tSTATUS")
	for _, u := range page.Users {
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%d\t%s\n", u.ID, u.Email, orDash(u.Username), humanTime(u.Created),
			humanTimeOr(u.LastLogin, "never"), u.Sessions, status(u.Disabled, u.Admin, u.HasPassword))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	first, last := page.Offset+1, page.Offset+len(page.Users)
	if first == 1 && last == page.Total {
		op.printf("%d %s", page.Total, plural(page.Total, "user", "users"))
	} else {
		op.printf("users %d–%d of %d", first, last, page.Total)
	}
	if last < page.Total {
		op.printf("the next page: --offset %d", last)
	}
	return nil
}

// status is the STATUS column: active or disabled, and the admin role and
// an account without a password.
func status(disabled, admin, hasPassword bool) string {
	s := []string{"active"}
	if disabled {
		s[0] = "disabled"
	}
	if admin {
		s = append(s, "admin")
	}
	if !hasPassword {
		s = append(s, "no password")
	}
	return strings.Join(s, ", ")
}

func userShow(ctx context.Context, op *operator, fs *flag.FlagSet) error {
	u, err := op.find(ctx, fs)
	if err != nil {
		return err
	}
	d, err := op.users.UserDetail(ctx, u.ID, max(flagInt(fs, "audit"), 0))
	if err != nil {
		return op.failed(u, err)
	}
	if flagOn(fs, "json") {
		return writeJSON(op.out, showJSON(d))
	}
	w := op.out
	du := &d.User
	fmt.Fprintf(w, "user %d: %s\n", du.ID, du.Email)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	state := status(du.Disabled, du.Admin, true)
	if du.Disabled {
		state = strings.Replace(state, "disabled", "disabled since "+humanTime(du.DisabledAt), 1)
	}
	fmt.Fprintf(tw, "  status\t%s\n", state)
	fmt.Fprintf(tw, "  username\t%s\n", orDash(du.Username))
	verified := "not set"
	if du.EmailVerified != nil {
		verified = map[bool]string{true: "yes", false: "no"}[*du.EmailVerified]
	}
	if du.EmailPlaceholder {
		verified += " (a placeholder address: it gets no mail)"
	}
	fmt.Fprintf(tw, "  email verified\t%s\n", verified)
	pw := "set"
	if !du.HasPassword() {
		pw = "none (signs in through a provider, or has yet to use a set-password link)"
	}
	fmt.Fprintf(tw, "  password\t%s\n", pw)
	fmt.Fprintf(tw, "  second factors\t%s\n", factorsText(d.Factors))
	fmt.Fprintf(tw, "  created\t%s\n", humanTime(du.Created))
	fmt.Fprintf(tw, "  last login\t%s\n", humanTimeOr(d.LastLogin, "never"))
	if err := tw.Flush(); err != nil {
		return err
	}

	fmt.Fprintf(w, "sessions (%d):\n", len(d.Sessions))
	if len(d.Sessions) > 0 {
		tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "  HANDLE\tSIGNED IN\tLAST USED\tEXPIRES\tIP\tMETHOD\tUSER AGENT")
		for _, s := range d.Sessions {
			fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\t%s\t%s\t%s\n", s.Handle, humanTime(s.Created), humanTime(s.LastUsed),
				humanTimeOr(s.Expires, "never"), orDash(s.IP), method(s.Method), orDash(oneLine(s.UserAgent, 60)))
		}
		if err := tw.Flush(); err != nil {
			return err
		}
	}
	fmt.Fprintf(w, "sign-in providers (%d):\n", len(d.Identities))
	if len(d.Identities) > 0 {
		tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "  PROVIDER\tSUBJECT\tLINKED")
		for _, id := range d.Identities {
			fmt.Fprintf(tw, "  %s\t%s\t%s\n", id.Provider, oneLine(id.Subject, 60), humanTime(id.Created))
		}
		if err := tw.Flush(); err != nil {
			return err
		}
	}
	fmt.Fprintf(w, "recent audit (%d, newest first):\n", len(d.Audit))
	if len(d.Audit) > 0 {
		tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "  TIME\tEVENT\tBY\tIP\tDETAIL")
		for _, e := range d.Audit {
			fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\t%s\n", e.Time.UTC().Format("2006-01-02 15:04:05"), e.Kind, orDash(e.Actor),
				orDash(e.IP), oneLine(e.Detail, 80))
		}
		if err := tw.Flush(); err != nil {
			return err
		}
	}
	return nil
}

func factorsText(f models.Factors) string {
	var parts []string
	if f.TOTP {
		parts = append(parts, "authenticator app")
	}
	if f.Passkeys > 0 {
		parts = append(parts, fmt.Sprintf("%d %s", f.Passkeys, plural(f.Passkeys, "passkey", "passkeys")))
	}
	if f.RecoveryLeft > 0 {
		parts = append(parts, fmt.Sprintf("%d recovery %s left", f.RecoveryLeft, plural(f.RecoveryLeft, "code", "codes")))
	}
	if len(parts) == 0 {
		return "none"
	}
	return strings.Join(parts, ", ")
}

func method(m string) string {
	if m == "" {
		return "password"
	}
	return m
}

func userCreate(ctx context.Context, op *operator, fs *flag.FlagSet, stdin io.Reader) error {
	email, err := op.arg(fs, "EMAIL")
	if err != nil {
		return err
	}
	if !models.ValidEmail(strings.TrimSpace(email)) {
		return usage(fmt.Errorf("%s: %q is not an email address", op.name, email))
	}
	var pw string
	if flagOn(fs, "password-stdin") {
		if pw, err = readPassword(stdin); err != nil {
			return usage(fmt.Errorf("%s: --password-stdin: %w", op.name, err))
		}
	}
	admin := flagOn(fs, "admin")
	u, err := op.users.CreateAccount(ctx, models.NewAccount{Email: strings.TrimSpace(email), Password: pw, Admin: admin}, op.meta)
	if v, ok := models.AsValidation(err); ok {
		for _, f := range v.Fields {
			if f.Code == "uniqueness" {
				existing, ferr := op.users.FindUserByEmail(ctx, email)
				if ferr == nil {
					return fmt.Errorf("%s: an account with the email %q exists already: %s", op.name, email, who(existing))
				}
				return fmt.Errorf("%s: an account with the email %q exists already", op.name, email)
			}
		}
		return usage(fmt.Errorf("%s: %q is not an email address", op.name, email))
	}
	if e, ok := models.AsError(err); ok && e.Kind == models.KindUnprocessable {
		return fmt.Errorf("%s: the password is refused: %s", op.name, strings.TrimPrefix(e.Error(), e.Code+": "))
	}
	if err != nil {
		return fmt.Errorf("%s: %w", op.name, err)
	}
	role := ""
	if admin {
		role = ", an admin,"
	}
	if pw != "" {
		op.printf("created %s%s with the password from stdin", who(u), role)
		return nil
	}
	op.printf("created %s%s without a password", who(u), role)
	op.printf("a link to set one was queued in the outbox to %s (valid %s); the running server sends it", u.Email, ttlText(op.cfg.ResetTTL))
	return nil
}

// readPassword reads the first line of stdin, without its line ending. A
// terminal is refused: what is typed would show.
func readPassword(stdin io.Reader) (string, error) {
	if f, ok := stdin.(*os.File); ok && (isatty.IsTerminal(f.Fd()) || isatty.IsCygwinTerminal(f.Fd())) {
		return "", errors.New("the standard input is a terminal, where the password would show: pipe it in (printf '%s' \"$PW\" | latchkey user create --password-stdin EMAIL)")
	}
	line, err := bufio.NewReader(stdin).ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		return "", err
	}
	line = strings.TrimRight(line, "\r\n")
	if line == "" {
		return "", errors.New("the standard input held no password")
	}
	return line, nil
}

func userDisable(ctx context.Context, op *operator, fs *flag.FlagSet) error {
	u, err := op.find(ctx, fs)
	if err != nil {
		return err
	}
	ended, err := op.users.DisableUser(ctx, u.ID, op.meta)
	if err != nil {
		return op.failed(u, err)
	}
	if u.Disabled {
		op.printf("%s was disabled already (since %s); %d %s ended", who(u), humanTime(u.DisabledAt), ended, plural(int(ended), "session", "sessions"))
		return nil
	}
	op.printf("disabled %s; %d %s ended at once, and its logins now fail as a wrong password does", who(u), ended, plural(int(ended), "session", "sessions"))
	return nil
}

func userEnable(ctx context.Context, op *operator, fs *flag.FlagSet) error {
	u, err := op.find(ctx, fs)
	if err != nil {
		return err
	}
	changed, err := op.users.EnableUser(ctx, u.ID, op.meta)
	if err != nil {
		return op.failed(u, err)
	}
	if !changed {
		op.printf("%s was not disabled: nothing changed", who(u))
		return nil
	}
	op.printf("enabled %s: it can sign in again (the sessions it had stay ended)", who(u))
	return nil
}

func userDelete(ctx context.Context, op *operator, fs *flag.FlagSet) error {
	u, err := op.find(ctx, fs)
	if err != nil {
		return err
	}
	n, err := op.users.DeleteUser(ctx, u.ID, op.meta)
	if err == nil && n == 0 {
		err = models.ErrNotFound
	}
	if err != nil {
		return op.failed(u, err)
	}
	op.printf("deleted %s with its sessions, sign-in providers and second factors (its audit rows stay)", who(u))
	return nil
}

func userRevokeSessions(ctx context.Context, op *operator, fs *flag.FlagSet) error {
	u, err := op.find(ctx, fs)
	if err != nil {
		return err
	}
	n, err := op.users.RevokeSessions(ctx, u.ID, op.meta)
	if err != nil {
		return op.failed(u, err)
	}
	op.printf("ended %d %s of %s", n, plural(int(n), "session", "sessions"), who(u))
	return nil
}

func userResetLink(ctx context.Context, op *operator, fs *flag.FlagSet) error {
	u, err := op.find(ctx, fs)
	if err != nil {
		return err
	}
	_, err = op.users.SendResetLink(ctx, u.ID, op.meta)
	switch {
	case errors.Is(err, models.ErrUserDisabled):
		return fmt.Errorf("%s: %s is disabled: enable it first (latchkey user enable %d)", op.name, who(u), u.ID)
	case errors.Is(err, models.ErrPlaceholderEmail):
		return fmt.Errorf("%s: %s: the address is a placeholder that reaches nobody, so no link was queued", op.name, who(u))
	case err != nil:
		return op.failed(u, err)
	}
	op.printf("a reset link for %d was queued in the outbox to %s (valid %s); the running server sends it", u.ID, u.Email, ttlText(op.cfg.ResetTTL))
	return nil
}

func userResetFactors(ctx context.Context, op *operator, fs *flag.FlagSet) error {
	u, err := op.find(ctx, fs)
	if err != nil {
		return err
	}
	f, err := op.users.SecondFactors(ctx, u.ID)
	if err != nil {
		return op.failed(u, err)
	}
	if !f.Any() && f.RecoveryLeft == 0 {
		op.printf("%s has no second factor: nothing changed", who(u))
		return nil
	}
	if err := op.users.ResetSecondFactors(ctx, u.ID, op.meta); err != nil {
		return op.failed(u, err)
	}
	op.printf("removed the second factors of %s (%s) and ended its sessions; it signs in with its password alone now", who(u), factorsText(f))
	return nil
}

func userSetAdmin(ctx context.Context, op *operator, fs *flag.FlagSet, on bool) error {
	u, err := op.find(ctx, fs)
	if err != nil {
		return err
	}
	changed, err := op.users.SetAdmin(ctx, u.ID, on, op.meta)
	if err != nil {
		return op.failed(u, err)
	}
	switch {
	case on && changed:
		op.printf("%s is an admin now", who(u))
	case on:
		op.printf("%s was an admin already: nothing changed", who(u))
	case changed:
		op.printf("%s is no longer an admin", who(u))
	default:
		op.printf("%s was not an admin: nothing changed", who(u))
	}
	return nil
}

func ttlText(seconds int64) string {
	d := time.Duration(seconds) * time.Second
	switch {
	case d%time.Hour == 0:
		h := int(d / time.Hour)
		return fmt.Sprintf("%d %s", h, plural(h, "hour", "hours"))
	case d%time.Minute == 0:
		m := int(d / time.Minute)
		return fmt.Sprintf("%d %s", m, plural(m, "minute", "minutes"))
	}
	return d.String()
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// oneLine keeps a stored string from breaking a table: control characters
// become spaces, and it is cut to n runes.
func oneLine(s string, n int) string {
	s = strings.Map(func(r rune) rune {
		if r < ' ' || r == 0x7f {
			return ' '
		}
		return r
	}, s)
	if r := []rune(s); len(r) > n {
		return string(r[:n-1]) + "…"
	}
	return s
}

// humanTime is a time in the tables: UTC to the minute.
func humanTime(t time.Time) string { return t.UTC().Format("2006-01-02 15:04") }

func humanTimeOr(t time.Time, zero string) string {
	if t.IsZero() {
		return zero
	}
	return humanTime(t)
}

// The --json output of user list and user show. Its fields are a stable
// interface for scripts (README.md lists them): new ones may be added,
// none renamed or removed. Times are UTC, ISO 8601 with milliseconds as
// LoopBack writes them; a missing value is null, never left out.

type jsonUserList struct {
	Total  int               `json:"total"`
	Offset int               `json:"offset"`
	Limit  int               `json:"limit"`
	Users  []jsonUserSummary `json:"users"`
}

type jsonUserSummary struct {
	ID            int64   `json:"id"`
	Email         string  `json:"email"`
	Username      *string `json:"username"`
	EmailVerified *bool   `json:"emailVerified"`
	Created       string  `json:"created"`
	LastLogin     *string `json:"lastLogin"`
	Disabled      bool    `json:"disabled"`
	Admin         bool    `json:"admin"`
	HasPassword   bool    `json:"hasPassword"`
	Sessions      int     `json:"sessions"`
}

type jsonUserDetail struct {
	ID               int64          `json:"id"`
	Email            string         `json:"email"`
	Username         *string        `json:"username"`
	EmailVerified    *bool          `json:"emailVerified"`
	EmailPlaceholder bool           `json:"emailPlaceholder"`
	Created          string         `json:"created"`
	Updated          string         `json:"updated"`
	LastLogin        *string        `json:"lastLogin"`
	Disabled         bool           `json:"disabled"`
	DisabledAt       *string        `json:"disabledAt"`
	Admin            bool           `json:"admin"`
	HasPassword      bool           `json:"hasPassword"`
	Factors          jsonFactors    `json:"factors"`
	Sessions         []jsonSession  `json:"sessions"`
	Identities       []jsonIdentity `json:"identities"`
	Audit            []jsonAudit    `json:"audit"`
}

type jsonFactors struct {
	TOTP              bool `json:"totp"`
	RecoveryCodesLeft int  `json:"recoveryCodesLeft"`
	Passkeys          int  `json:"passkeys"`
}

type jsonSession struct {
	Handle    string  `json:"handle"` // the sessions page's handle: not the token, and no way to use it
	Created   string  `json:"created"`
	LastUsed  string  `json:"lastUsed"`
	Expires   *string `json:"expires"`
	IP        string  `json:"ip"`
	UserAgent string  `json:"userAgent"`
	Method    string  `json:"method"` // "password" or the provider's id
}

type jsonIdentity struct {
	ID       int64  `json:"id"`
	Provider string `json:"provider"`
	Subject  string `json:"subject"`
	Created  string `json:"created"`
}

type jsonAudit struct {
	Time      string `json:"time"`
	Kind      string `json:"kind"`
	Actor     string `json:"actor"` // "" the account itself (or nobody signed in), "cli", "admin:<id>"
	IP        string `json:"ip"`
	UserAgent string `json:"userAgent"`
	Detail    string `json:"detail"`
}

func showJSON(d *models.UserDetail) jsonUserDetail {
	u := &d.User
	out := jsonUserDetail{ID: u.ID, Email: u.Email, Username: optString(u.Username), EmailVerified: u.EmailVerified,
		EmailPlaceholder: u.EmailPlaceholder, Created: jsonTime(u.Created), Updated: jsonTime(u.Updated),
		LastLogin: optTime(d.LastLogin), Disabled: u.Disabled, DisabledAt: optTime(u.DisabledAt), Admin: u.Admin,
		HasPassword: u.HasPassword(),
		Factors:     jsonFactors{TOTP: d.Factors.TOTP, RecoveryCodesLeft: d.Factors.RecoveryLeft, Passkeys: d.Factors.Passkeys},
		Sessions:    []jsonSession{}, Identities: []jsonIdentity{}, Audit: []jsonAudit{}}
	for _, s := range d.Sessions {
		out.Sessions = append(out.Sessions, jsonSession{Handle: s.Handle, Created: jsonTime(s.Created), LastUsed: jsonTime(s.LastUsed),
			Expires: optTime(s.Expires), IP: s.IP, UserAgent: s.UserAgent, Method: method(s.Method)})
	}
	for _, id := range d.Identities {
		out.Identities = append(out.Identities, jsonIdentity{ID: id.ID, Provider: id.Provider, Subject: id.Subject, Created: jsonTime(id.Created)})
	}
	for _, e := range d.Audit {
		out.Audit = append(out.Audit, jsonAudit{Time: jsonTime(e.Time), Kind: e.Kind, Actor: e.Actor, IP: e.IP, UserAgent: e.UserAgent, Detail: e.Detail})
	}
	return out
}

func jsonTime(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05.000Z") }

func optTime(t time.Time) *string {
	if t.IsZero() {
		return nil
	}
	s := jsonTime(t)
	return &s
}

func optString(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}
