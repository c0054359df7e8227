package boot

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/latchkey/latchkey/models"
	"github.com/latchkey/latchkey/models/lb3"
)

// importLB3Command is latchkey import lb3 [flags] SOURCE: a LoopBack 3
// app's users, live tokens, pending verification links and Passport
// identities into LATCHKEY_DB,
// ids, hashes and tokens kept, so nobody has to log in again. The work is
// models/lb3; this wires the flags and the output.
func importLB3Command() Command {
	return Command{
		Name:  "import lb3",
		Batch: true,
		Args:  "SOURCE",
		Summary: "import a LoopBack 3 store (a memory-connector file, a folder of mongoexport files, mysql://… or postgres://…) into LATCHKEY_DB, " +
			"keeping ids, passwords and live tokens; flags go before SOURCE",
		Flags: func(fs *flag.FlagSet) {
			fs.Bool("dry-run", false, "read and check everything, print the report, write nothing")
			fs.Bool("skip-duplicates", false, "import everyone but the users whose emails differ only in case (listed)")
			fs.String("lb3-app", "", "the LoopBack app's root folder (it holds server/model-config.json): its model JSON names the models, "+
				"renamed tables and columns, and settings (realms, caseSensitiveEmail, ttl, allowEternalTokens) the store does not hold")
			fs.Bool("ignore-realms", false, "import an app whose user model has a realmDelimiter: Latchkey logs in by email or username alone, "+
				"so clients sending realm:name must change first")
			fs.String("user-model", "", `the LoopBack user model to read (default: the app's, else "user" or "User", whichever holds rows)`)
			fs.String("token-model", "", `the LoopBack token model to read (default: the app's, else "AccessToken")`)
			fs.String("identity-model", "", `the Passport login identity model to read (default: the app's, else "UserIdentity")`)
			fs.String("credential-model", "", `the Passport linked-account model to read (default: the app's, else "UserCredential")`)
			fs.String("duplicates-csv", "", "with --skip-duplicates, where to write the case-duplicate groups left out (default lb3-duplicates.csv)")
			fs.String("id-map", "", "a MongoDB export: write each user's ObjectId and the integer id it got to this CSV file")
			fs.String("provider", "", "map LoopBack provider keys to provider ids: google-login=google,facebook-login=facebook "+
				"(default: the key without a -login or -link suffix)")
		},
		Run: func(ctx context.Context, cfg Config, fs *flag.FlagSet, stdout io.Writer) error {
			err := runImportLB3(ctx, cfg, fs, stdout)
			var secrets []string
			if fs.NArg() > 0 {
				secrets = dsnPasswords(fs.Arg(0))
			}
			return redactError(err, append(secrets, dsnPasswords(cfg.DB)...))
		},
	}
}

func runImportLB3(ctx context.Context, cfg Config, fs *flag.FlagSet, stdout io.Writer) error {
	switch {
	case fs.NArg() == 0:
		return usage(errors.New("import lb3: SOURCE is missing: a LoopBack memory-connector file, mysql://user:pass@host/db or postgres://…"))
	case fs.NArg() > 1 && strings.HasPrefix(fs.Arg(1), "-"):
		return usage(fmt.Errorf("import lb3: %q after SOURCE: flags go before SOURCE", fs.Arg(1)))
	case fs.NArg() > 1:
		return usage(fmt.Errorf("import lb3: one SOURCE only, got %q too", fs.Arg(1)))
	}
	source := fs.Arg(0)
	flagOn := func(name string) bool { return fs.Lookup(name).Value.String() == "true" }
	dry := flagOn("dry-run")

	providers, err := lb3.ParseProviders(fs.Lookup("provider").Value.String())
	if err != nil {
		return usage(err)
	}
	var app *lb3.App
	if dir := fs.Lookup("lb3-app").Value.String(); dir != "" {
		if app, err = lb3.ReadApp(dir); err != nil {
			return usage(fmt.Errorf("import lb3: --lb3-app: %w", err))
		}
	}

	store, err := lb3.Open(ctx, source)
	if _, ok := errors.AsType[*lb3.UsageError](err); ok {
		return usage(err)
	}
	if err != nil {
		return fmt.Errorf("import lb3: %w", err)
	}
	defer store.Close()
	if fs.Lookup("id-map").Value.String() != "" && store.Kind() != "mongo" {
		return usage(fmt.Errorf("import lb3: --id-map is for a MongoDB export; %s users keep their integer ids", store.Kind()))
	}

	fmt.Fprintf(stdout, "import lb3: reading %s (%s)\n", models.RedactDSN(source), store.Kind())
	if app != nil {
		fmt.Fprintf(stdout, "import lb3: with the model JSON of the LoopBack app %s\n", app.Dir)
	}
	p := newCopyProgress(stdout)
	p.name = "import lb3"
	opts := lb3.Options{
		UserModel:          fs.Lookup("user-model").Value.String(),
		TokenModel:         fs.Lookup("token-model").Value.String(),
		IdentityModel:      fs.Lookup("identity-model").Value.String(),
		CredentialModel:    fs.Lookup("credential-model").Value.String(),
		Providers:          providers,
		AllowEternalTokens: cfg.AllowEternalTokens,
		SkipDuplicates:     flagOn("skip-duplicates"),
		App:                app,
		IgnoreRealms:       flagOn("ignore-realms"),
		Now:                time.Now(),
		VerifyTTL:          time.Duration(cfg.VerifyTTL) * time.Second,
		Progress: func(g lb3.Progress) {
			p.update(models.CopyProgress{Table: g.Phase, Done: g.Done, Total: g.Total, AllDone: g.Done, AllTotal: g.Total})
		},
	}
	// A SQLite file that does not exist yet is filled without a journal
	// (models.ImportOptions.Unsafe): about twice as fast, and safe only
	// because nothing else holds it and a failed import removes the file,
	// which leaves the target as it was (absent). A target that exists
	// (and PostgreSQL) gets the ordinary transaction, and its import
	// ledger makes this run a delta against the earlier ones.
	fresh := ""
	if kind, _ := models.StoreKind(cfg.DB); kind == "sqlite" {
		path := strings.TrimPrefix(cfg.DB, "file:")
		if _, err := os.Stat(path); errors.Is(err, os.ErrNotExist) {
			fresh = path
		}
	}
	var db *models.DB
	if fresh == "" {
		if db, err = models.Open(ctx, cfg.DB); err != nil {
			return fmt.Errorf("import lb3: the target (LATCHKEY_DB %s): %w", models.RedactDSN(cfg.DB), err)
		}
		defer func() { db.Close() }()
		if opts.Ledger, err = db.ReadImportLedger(ctx); err != nil {
			return fmt.Errorf("import lb3: the target (LATCHKEY_DB %s): %w", models.RedactDSN(cfg.DB), err)
		}
		if !opts.Ledger.Empty() {
			fmt.Fprintf(stdout, "import lb3: the target holds %d users (%d imported before): this run is a delta\n",
				opts.Ledger.UserCount, len(opts.Ledger.Users))
		}
	}
	plan, err := store.Check(ctx, opts)
	if err != nil {
		p.end(false)
		if _, ok := errors.AsType[*lb3.UsageError](err); ok {
			return usage(err)
		}
		return fmt.Errorf("import lb3: refused, nothing was written: %w", err)
	}
	if err := writeSideFiles(ctx, fs, store, plan.Report(), dry); err != nil {
		return err
	}
	if dry {
		rep := plan.Report()
		if !opts.Ledger.Empty() {
			if rep, err = plan.DryRun(ctx); err != nil {
				p.end(false)
				return fmt.Errorf("import lb3: refused, nothing was written: %w", err)
			}
		}
		p.end(true)
		printImportReport(stdout, rep, cfg, "would import")
		fmt.Fprintln(stdout, "import lb3: --dry-run: nothing was written")
		return nil
	}

	if fresh != "" {
		if db, err = models.OpenImport(ctx, cfg.DB, models.ImportOptions{Unsafe: true}); err != nil {
			removeFresh(fresh)
			return fmt.Errorf("import lb3: the target (LATCHKEY_DB %s): %w", models.RedactDSN(cfg.DB), err)
		}
	}
	var rep lb3.Report
	err = db.Write(ctx, time.Now(), func(tx *models.Tx) error {
		var err error
		rep, err = plan.Write(ctx, tx)
		return err
	})
	p.end(err == nil)
	if err != nil {
		if fresh != "" {
			db.Close()
			removeFresh(fresh)
		}
		return fmt.Errorf("import lb3: failed, nothing was written (the target is as it was): %w", err)
	}
	if fresh != "" { // back to WAL mode and the usual settings
		if err := db.Close(); err != nil {
			return fmt.Errorf("import lb3: close the target: %w", err)
		}
		if db, err = models.Open(ctx, cfg.DB); err != nil {
			return fmt.Errorf("import lb3: reopen the target (LATCHKEY_DB %s): %w", models.RedactDSN(cfg.DB), err)
		}
		defer db.Close()
	}
	if err := db.Analyze(ctx); err != nil {
		fmt.Fprintf(stdout, "import lb3: imported, but refreshing the planner's statistics failed: %v\n", err)
	}
	printImportReport(stdout, rep, cfg, "imported")
	fmt.Fprintf(stdout, "import lb3: done in %s into %s\n", (plan.Report().Elapsed + rep.Elapsed).Round(time.Millisecond), models.RedactDSN(cfg.DB))
	return nil
}

// printImportReport is the final report: what went in, what was left out
// and why, and what the operator should look at. No password, hash or
// token is printed.
func printImportReport(w io.Writer, r lb3.Report, cfg Config, verb string) {
	fmt.Fprintf(w, "import lb3: %s from %s (user model %q, token model %q):\n", verb, r.Source, r.UserModel, r.TokenModel)
	fmt.Fprintf(w, "  users                %d\n", r.Users)
	fmt.Fprintf(w, "  sessions             %d\n", r.Sessions)
	fmt.Fprintf(w, "  reset tokens         %d\n", r.ResetTokens)
	fmt.Fprintf(w, "  verification links   %d", r.Verifications)
	if r.Verifications > 0 {
		fmt.Fprintf(w, " (valid for LATCHKEY_VERIFY_TTL, %ds, from now: LoopBack's never expired)", cfg.VerifyTTL)
	}
	fmt.Fprintln(w)
	fmt.Fprintf(w, "  identities           %d (Passport logins; provider tokens dropped)\n", r.Identities)
	fmt.Fprintf(w, "  linked identities    %d (Passport linked accounts, as identities; provider tokens dropped)\n", r.LinkedIdentities)
	fmt.Fprintf(w, "  placeholder emails   %d (…@loopback.<provider>.com: marked, never mailed, never matched for linking)\n", r.Placeholders)
	if r.Updated > 0 || r.Unchanged > 0 || len(r.Removed) > 0 {
		fmt.Fprintf(w, "  users updated        %d (changed in the source since the last run)\n", r.Updated)
		fmt.Fprintf(w, "  unchanged            %d (users, tokens, links and identities as the last run left them)\n", r.Unchanged)
		for _, reason := range slices.Sorted(maps.Keys(r.Removed)) {
			fmt.Fprintf(w, "  removed    %8d  %s\n", r.Removed[reason], reason)
		}
	}
	if len(r.Skipped) > 0 {
		fmt.Fprintln(w, "  skipped:")
		for _, reason := range slices.Sorted(maps.Keys(r.Skipped)) {
			fmt.Fprintf(w, "    %6d  %s\n", r.Skipped[reason], reason)
		}
	}
	for _, g := range r.Duplicates {
		ids := make([]string, len(g.Members))
		for i, m := range g.Members {
			ids[i] = fmt.Sprintf("%d (%s, verified %t, %d live tokens, %d identities)", m.ID, m.Email, m.Verified, m.LiveTokens, m.Identities)
		}
		fmt.Fprintf(w, "  duplicate %s left out: %s\n", g.Key, strings.Join(ids, "; "))
	}
	if len(r.NeedsReset) > 0 {
		fmt.Fprintf(w, "  %d users need a password reset (their stored password is not a LoopBack bcrypt hash): ids %s\n",
			len(r.NeedsReset), joinIDs(r.NeedsReset))
	}
	for _, t := range r.Trimmed {
		fmt.Fprintf(w, "  user %d: extra fields of %d bytes exceed %d: left out %s\n", t.UserID, t.Bytes, models.MaxProfileBytes, strings.Join(t.Dropped, ", "))
	}
	if len(r.NotImported) > 0 {
		parts := []string{}
		for _, m := range slices.Sorted(maps.Keys(r.NotImported)) {
			parts = append(parts, fmt.Sprintf("%s %d", m, r.NotImported[m]))
		}
		fmt.Fprintf(w, "  not imported (Latchkey has no roles): %s\n", strings.Join(parts, ", "))
	}
	if len(r.Settings) > 0 {
		fmt.Fprintln(w, "  from the LoopBack app's model JSON:")
		for _, note := range r.Settings {
			fmt.Fprintf(w, "    %s\n", note)
		}
	}
	if r.Eternal > 0 {
		fmt.Fprintln(w, "  eternal tokens (ttl -1) were kept: serve with LATCHKEY_ALLOW_ETERNAL_TOKENS=true so they keep working")
	}
}

func joinIDs(ids []int64) string {
	const show = 20
	parts := []string{}
	for i, id := range ids {
		if i == show {
			parts = append(parts, fmt.Sprintf("… and %d more", len(ids)-show))
			break
		}
		parts = append(parts, fmt.Sprint(id))
	}
	return strings.Join(parts, ", ")
}

// removeFresh deletes a SQLite target the failed import created.
func removeFresh(path string) {
	if path == "" {
		return
	}
	for _, p := range []string{path, path + "-wal", path + "-shm", path + "-journal"} {
		os.Remove(p)
	}
}

// writeSideFiles writes the CSV files the flags ask for: the case-duplicate
// groups left out (--skip-duplicates; --duplicates-csv names the file) and
// a MongoDB export's ObjectId → id map (--id-map). They hold ids, emails
// and counts; never a password, hash or token.
// A dry run writes only what a flag names explicitly.
func writeSideFiles(ctx context.Context, fs *flag.FlagSet, store *lb3.Store, rep lb3.Report, dry bool) error {
	dupPath := fs.Lookup("duplicates-csv").Value.String()
	if dupPath == "" && !dry && fs.Lookup("skip-duplicates").Value.String() == "true" && len(rep.Duplicates) > 0 {
		dupPath = "lb3-duplicates.csv"
	}
	if dupPath != "" {
		if err := writeFileWith(dupPath, func(w io.Writer) error { return lb3.WriteDuplicates(w, rep.Duplicates) }); err != nil {
			return fmt.Errorf("import lb3: the duplicates CSV: %w", err)
		}
	}
	if idPath := fs.Lookup("id-map").Value.String(); idPath != "" {
		ids, err := store.MongoIDs(ctx)
		if err != nil {
			return fmt.Errorf("import lb3: the id map: %w", err)
		}
		if err := writeFileWith(idPath, func(w io.Writer) error { return lb3.WriteMongoIDs(w, ids) }); err != nil {
			return fmt.Errorf("import lb3: the id map: %w", err)
		}
	}
	return nil
}

// writeFileWith writes path through fn, replacing it only when fn
// succeeds.
func writeFileWith(path string, fn func(io.Writer) error) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), ".lb3-*.csv")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if err := fn(tmp); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}
