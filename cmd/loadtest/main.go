// Command loadtest measures Latchkey against the performance budget of
// issue 6 and prints one line per scenario (see BENCHMARKS.md):
//
//	go run ./cmd/loadtest              # 1,000 users, 10 s per scenario
//	go run ./cmd/loadtest -growth      # then again with 1,000,000 users and 5,000,000 tokens
//	go run ./cmd/loadtest -postgres postgres://postgres@127.0.0.1:5432/postgres
//	                                   # every scenario on PostgreSQL too, side by side,
//	                                   # plus the invalidation scenario (1 and 3 replicas)
//	go tool -modfile=tools/go.mod task load -- -duration 5s
//
// It builds the server, seeds a temporary SQLite database through the models
// import API, starts the server and a bare Echo baseline on free loopback ports,
// and drives them with established load generators: wrk (closed loop, Lua
// scripts for per-request tokens and login bodies) and vegeta (open loop, for
// the saturation run). With -postgres it creates a database of its own on
// that server (dropped at the end), seeds it through the same import API,
// and runs the authed GET (in the same rounds), the cold token and the
// logins against the app on it, adding the database backends' CPU to the
// app's. Server CPU comes from /proc/<pid>/stat, memory from
// /proc/<pid>/status. Everything is loopback only, every child process dies
// with this one, and the temporary folder is removed unless -keep.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"slices"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/latchkey/latchkey/models"
)

// password is every seeded user's password.
const password = "load-test-password"

type options struct {
	users        int
	duration     time.Duration
	conns        int
	loginConns   int
	growth       bool
	growthUsers  int
	growthTokens int
	keep         bool
	wrk          string
	startups     int
	rounds       int
	appEnv       string
	postgres     string
	logouts      int
	metrics      bool
}

func main() {
	var o options
	pingServer := flag.Bool("ping-server", false, "internal: serve the bare Echo baseline on $LOADTEST_PING_ADDR")
	flag.IntVar(&o.users, "users", 1000, "users to seed (each gets one token; logins walk through them)")
	flag.DurationVar(&o.duration, "duration", 10*time.Second, "length of each scenario")
	flag.IntVar(&o.conns, "conns", 32, "connections for the bare Echo and authenticated GET scenarios")
	flag.IntVar(&o.loginConns, "login-conns", 8, "connections for the login scenarios")
	flag.BoolVar(&o.growth, "growth", false, "also seed -growth-users users and -growth-tokens tokens and rerun GET and login")
	flag.IntVar(&o.growthUsers, "growth-users", 1_000_000, "users in the growth database")
	flag.IntVar(&o.growthTokens, "growth-tokens", 5_000_000, "access tokens in the growth database (20% expired)")
	flag.BoolVar(&o.keep, "keep", false, "keep the temporary folder (databases, logs, scripts)")
	flag.StringVar(&o.wrk, "wrk", "wrk", "path of the wrk binary")
	flag.IntVar(&o.startups, "startups", 3, "start-up measurements per case (the median is reported)")
	flag.IntVar(&o.rounds, "rounds", 3, "bare Echo / authed GET pairs to run (the median ratio is reported)")
	flag.StringVar(&o.appEnv, "app-env", "", "extra NAME=value settings for the server only, comma-separated (e.g. GOGC=200)")
	flag.StringVar(&o.postgres, "postgres", "", "also run every scenario on PostgreSQL: the base URL of a server where a database may be created and dropped (e.g. postgres://postgres@127.0.0.1:5432/postgres)")
	flag.BoolVar(&o.metrics, "metrics", false, "only measure the authed GET with Prometheus metrics on and off, side by side (issue 13)")
	flag.IntVar(&o.logouts, "logouts", 200, "logouts timed per replica count in the PostgreSQL invalidation scenario")
	lb3Gen := flag.String("lb3-gen", "", "write a LoopBack 3 memory-connector file of -users users and -lb3-tokens tokens (half expired) to this path and exit")
	lb3Tokens := flag.Int("lb3-tokens", 2_000_000, "access tokens in the -lb3-gen file")
	flag.Parse()
	if *lb3Gen != "" {
		if err := writeLB3(*lb3Gen, o.users, *lb3Tokens); err != nil {
			fmt.Fprintln(os.Stderr, "loadtest: -lb3-gen:", err)
			os.Exit(1)
		}
		return
	}
	if o.rounds < 1 || o.startups < 1 {
		fmt.Fprintln(os.Stderr, "loadtest: -rounds and -startups must be at least 1")
		os.Exit(2)
	}

	if *pingServer {
		if err := servePing(); err != nil {
			fmt.Fprintln(os.Stderr, "ping server:", err)
			os.Exit(1)
		}
		return
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	ctx, cancel := context.WithTimeout(ctx, time.Hour)
	defer cancel()
	do := run
	if o.metrics {
		do = runMetrics
	}
	if err := do(ctx, o, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "loadtest:", err)
		os.Exit(1)
	}
}

// row is one scenario's line.
type row struct {
	name     string
	conns    string
	res      result
	codes    map[string]int64
	expected []string // status codes that are the right answer here
	cpu      time.Duration
	dbCPU    time.Duration // PostgreSQL's backends for the load database (0 on SQLite)
	rssPeak  int64         // KiB, sampled during the run
	hwm      int64         // KiB, the process's peak so far
}

func (r row) cpuPerReq() time.Duration {
	if r.res.Requests == 0 {
		return 0
	}
	return r.cpu / time.Duration(r.res.Requests)
}

// dbPerReq is the database server's CPU per request (PostgreSQL only).
func (r row) dbPerReq() time.Duration {
	if r.res.Requests == 0 {
		return 0
	}
	return r.dbCPU / time.Duration(r.res.Requests)
}

func (r row) genPerReq() time.Duration {
	if r.res.Requests == 0 {
		return 0
	}
	return r.res.GenCPU / time.Duration(r.res.Requests)
}

func (r row) errors() int64 {
	var n int64
	for code, c := range r.codes {
		if !slices.Contains(r.expected, code) {
			n += c
		}
	}
	return n + r.res.SockErrs
}

type env struct {
	o       options
	dir     string
	bin     string // the latchkey binary
	self    string // this program, for the ping server
	vegeta  string
	out     io.Writer
	rows    []row
	bcrypt  time.Duration // CPU of one bcrypt verification at cost 10
	appLogN int
}

func run(ctx context.Context, o options, out io.Writer) error {
	if _, err := exec.LookPath(o.wrk); err != nil {
		return fmt.Errorf("wrk not found (%v): apt-get install -y wrk, or pass -wrk PATH", err)
	}
	dir, err := os.MkdirTemp("", "latchkey-load-")
	if err != nil {
		return err
	}
	if o.keep {
		fmt.Fprintln(out, "# keeping", dir)
	} else {
		defer os.RemoveAll(dir)
	}
	e := &env{o: o, dir: dir, out: out}
	if e.self, err = os.Executable(); err != nil {
		return err
	}
	if err := e.build(ctx); err != nil {
		return err
	}
	fmt.Fprintf(out, "# %s, %d CPUs (GOMAXPROCS %d), Go %s, %s per scenario, %d users\n",
		time.Now().UTC().Format(time.RFC3339), runtime.NumCPU(), runtime.GOMAXPROCS(0), runtime.Version(), o.duration, o.users)
	if la, err := os.ReadFile("/proc/loadavg"); err == nil {
		fmt.Fprintf(out, "# load average before: %s", la)
	}

	// One bcrypt at cost 10, measured here as CPU time (getrusage), before
	// anything else runs: the floor under every login.
	hasher := models.NewHasher(models.HashConfig{BcryptCost: 10})
	hash, err := hasher.Hash(ctx, password)
	if err != nil {
		return err
	}
	e.bcrypt = measureBcrypt(ctx, hasher, hash, 8)
	fmt.Fprintf(out, "# one bcrypt verification at cost 10: %s CPU; %d cores -> at most %.1f logins/s\n",
		ms(e.bcrypt), runtime.NumCPU(), e.maxLogins())

	// Start-up with an empty database (migrations included).
	var empty []time.Duration
	var emptyRSS []int64
	for i := range o.startups {
		s, err := e.startApp(ctx, filepath.Join(dir, fmt.Sprintf("empty-%d.db", i)))
		if err != nil {
			return err
		}
		empty = append(empty, s.startup)
		emptyRSS = append(emptyRSS, idleRSS(s.pid(), time.Second))
		if err := s.stop(); err != nil {
			return err
		}
	}

	// Seed the 1,000-user database.
	dbPath := filepath.Join(dir, "load.db")
	t0 := time.Now()
	users, err := seed(ctx, dbPath, seedSpec{users: o.users, tokens: o.users, scenario: o.users, hash: hash})
	if err != nil {
		return fmt.Errorf("seed: %w", err)
	}
	fmt.Fprintf(out, "# seeded %d users and %d tokens in %s\n", o.users, o.users, time.Since(t0).Round(time.Millisecond))

	existing, existingRSS, app, err := e.startups(ctx, dbPath)
	if err != nil {
		return err
	}
	defer app.stop()
	fmt.Fprintf(out, "# start-up to healthy: empty database %s (median of %d; %s), existing database %s (%s)\n",
		ms(median(empty)), len(empty), durations(empty), ms(median(existing)), durations(existing))
	fmt.Fprintf(out, "# idle RSS 1 s after start: empty database %s, existing database %s\n",
		mib(medianInt(emptyRSS)), mib(medianInt(existingRSS)))

	// The same database on PostgreSQL, seeded through the same import API,
	// with spare tokens for the invalidation scenario's logouts.
	var pg *pgStore
	var pgApp *server
	var pgUsers, spare []loadUser
	pgDir := filepath.Join(dir, "pg")
	if o.postgres != "" {
		if pg, err = createPG(ctx, o.postgres); err != nil {
			return err
		}
		defer func() {
			if err := pg.drop(ctx); err != nil {
				fmt.Fprintln(out, "# drop database:", err)
			}
		}()
		t0 := time.Now()
		all, err := seed(ctx, pg.dsn, seedSpec{users: o.users, tokens: o.users, scenario: o.users, hash: hash, spare: 2 * o.logouts})
		if err != nil {
			return fmt.Errorf("seed PostgreSQL: %w", err)
		}
		pgUsers, spare = all[:o.users], all[o.users:]
		fmt.Fprintf(out, "# PostgreSQL: database %s, seeded %d users and %d tokens in %s\n",
			pg.name, o.users, len(all), time.Since(t0).Round(time.Millisecond))
		if pgApp, err = e.startApp(ctx, pg.dsn); err != nil {
			return err
		}
		pgApp.pg = pg
		defer pgApp.stop()
		fmt.Fprintf(out, "# PostgreSQL: start-up to healthy %s, idle RSS %s\n", ms(pgApp.startup), mib(idleRSS(pgApp.pid(), time.Second)))
		if err := os.MkdirAll(pgDir, 0o700); err != nil {
			return err
		}
	}

	// (a) the bare Echo baseline, then (b) the authenticated GET (on
	// PostgreSQL too), measured back to back under the same conditions,
	// -rounds times.
	ping, err := startServer(ctx, "ping", e.self, []string{"-ping-server"}, nil, filepath.Join(dir, "ping.log"), "/ping")
	if err != nil {
		return err
	}
	defer ping.stop()
	threads := min(2, o.conns)
	get, err := wrkScript(dir, kindGet, users, password, threads, false)
	if err != nil {
		return err
	}
	var pgGet string
	if pgApp != nil {
		if pgGet, err = wrkScript(pgDir, kindGet, pgUsers, password, threads, false); err != nil {
			return err
		}
	}
	warm := min(2*time.Second, o.duration)
	base := "http://" + app.addr
	if _, err := runWrk(ctx, o.wrk, "http://"+ping.addr+"/", get, o.conns, threads, warm); err != nil {
		return err
	}
	if _, err := runWrk(ctx, o.wrk, base+"/", get, o.conns, threads, warm); err != nil {
		return err
	}
	if pgApp != nil {
		if _, err := runWrk(ctx, o.wrk, "http://"+pgApp.addr+"/", pgGet, o.conns, threads, warm); err != nil {
			return err
		}
	}
	var bares, auths, pgAuths []row
	for r := range o.rounds {
		suffix := ""
		if o.rounds > 1 {
			suffix = fmt.Sprintf(" #%d", r+1)
		}
		bare, err := e.scenario(ctx, "bare Echo GET /api/users/:id"+suffix, ping, o.conns, []string{"200"}, func() (result, error) {
			return runWrk(ctx, o.wrk, "http://"+ping.addr+"/", get, o.conns, threads, o.duration)
		})
		if err != nil {
			return err
		}
		authed, err := e.scenario(ctx, "authed GET /api/users/:id"+suffix, app, o.conns, []string{"200"}, func() (result, error) {
			return runWrk(ctx, o.wrk, base+"/", get, o.conns, threads, o.duration)
		})
		if err != nil {
			return err
		}
		bares, auths = append(bares, bare), append(auths, authed)
		if pgApp != nil {
			pgAuthed, err := e.scenario(ctx, "PostgreSQL: authed GET"+suffix, pgApp, o.conns, []string{"200"}, func() (result, error) {
				return runWrk(ctx, o.wrk, "http://"+pgApp.addr+"/", pgGet, o.conns, threads, o.duration)
			})
			if err != nil {
				return err
			}
			pgAuths = append(pgAuths, pgAuthed)
		}
	}
	if err := ping.stop(); err != nil {
		return err
	}
	// The round with the median ratio stands for the run.
	ratios := make([]float64, len(auths))
	for i := range auths {
		ratios[i] = auths[i].res.rate() / bares[i].res.rate()
	}
	mid := medianIndex(ratios)
	bare, authed := bares[mid], auths[mid]
	// What the ratio is on a machine of its own: there the server and wrk
	// share the cores and nothing else runs, so requests/s is inversely
	// proportional to their CPU per request together. Taken from CPU
	// times, it does not move when other work on a shared machine does.
	var cpuRatios, p99Ratios []float64
	for i := range auths {
		cpuRatios = append(cpuRatios, float64(bares[i].cpuPerReq()+bares[i].genPerReq())/float64(auths[i].cpuPerReq()+auths[i].genPerReq()))
		p99Ratios = append(p99Ratios, float64(auths[i].res.P99)/float64(max(1, bares[i].res.P99)))
	}
	cpuRatio := cpuRatios[medianIndex(cpuRatios)]
	p99Ratio := p99Ratios[medianIndex(p99Ratios)]

	// A cache miss on every request: a server started with the auth cache
	// off reads the token and its user from the store each time, which is
	// what a cold token costs.
	var colds []row
	for _, st := range []struct {
		name, db, script string
		pg               *pgStore
	}{{"cold token (cache off): authed GET", dbPath, get, nil}, {"PostgreSQL: cold token (cache off): authed GET", dsnOf(pg), pgGet, pg}} {
		if st.db == "" {
			continue
		}
		cold, err := e.startApp(ctx, st.db, "LATCHKEY_AUTH_CACHE=0")
		if err != nil {
			return err
		}
		cold.pg = st.pg
		if _, err := runWrk(ctx, o.wrk, "http://"+cold.addr+"/", st.script, o.conns, threads, warm); err != nil {
			cold.stop()
			return err
		}
		r, err := e.scenario(ctx, st.name, cold, o.conns, []string{"200"}, func() (result, error) {
			return runWrk(ctx, o.wrk, "http://"+cold.addr+"/", st.script, o.conns, threads, o.duration)
		})
		cold.stop()
		if err != nil {
			return err
		}
		colds = append(colds, r)
	}

	// The hashing capacity of this machine right now: every core verifying
	// bcrypt in this process, just before the logins run.
	capBefore := measureCapacity(ctx, hasher, hash, 3*time.Second)
	logins, err := e.loginScenarios(ctx, app, e.dir, users, "")
	if err != nil {
		return err
	}
	capAfter := measureCapacity(ctx, hasher, hash, 3*time.Second)
	capacity := (capBefore + capAfter) / 2
	var pgLogins []row
	pgCapAfter := capAfter
	if pgApp != nil {
		if pgLogins, err = e.loginScenarios(ctx, pgApp, pgDir, pgUsers, " (PostgreSQL)"); err != nil {
			return err
		}
		pgCapAfter = measureCapacity(ctx, hasher, hash, 3*time.Second)
	}

	// (e) saturation: logins arriving at twice the rate just measured.
	rate := max(2, int(2*logins[0].res.rate()+0.5))
	sat, err := e.scenario(ctx, fmt.Sprintf("saturation: logins at %d/s", rate), app, 0, []string{"200", "503"}, func() (result, error) {
		return runVegeta(ctx, e.vegeta, dir, base, users, password, rate, o.duration)
	})
	if err != nil {
		return err
	}
	sat.conns = "open"
	e.rows[len(e.rows)-1] = sat
	_, appHWM, _ := memKiB(app.pid())
	idleAfter := idleRSS(app.pid(), 2*time.Second)

	// (f) invalidation on PostgreSQL: logouts with one replica, then with three.
	var invs []invalidation
	if pgApp != nil {
		n := o.logouts
		fmt.Fprintf(out, "# running invalidation: %d logouts with 1 replica ...\n", n)
		inv1, err := runInvalidation(ctx, []*server{pgApp}, spare[:n])
		if err != nil {
			return fmt.Errorf("invalidation, 1 replica: %w", err)
		}
		var more []*server
		for range 2 {
			r, err := e.startApp(ctx, pg.dsn)
			if err != nil {
				return err
			}
			defer r.stop()
			more = append(more, r)
		}
		fmt.Fprintf(out, "# running invalidation: %d logouts with 3 replicas ...\n", n)
		inv3, err := runInvalidation(ctx, append([]*server{pgApp}, more...), spare[n:2*n])
		if err != nil {
			return fmt.Errorf("invalidation, 3 replicas: %w", err)
		}
		for _, r := range more {
			_ = r.stop()
		}
		invs = []invalidation{inv1, inv3}
	}

	e.printTable("1,000-user database")
	fmt.Fprintln(out)
	var rs []string
	for _, r := range ratios {
		rs = append(rs, fmt.Sprintf("%.0f%%", 100*r))
	}
	fmt.Fprintf(out, "authed GET / bare Echo: %.0f%% of the requests/s (budget ≥ 80%%; median of rounds %s)\n",
		100*ratios[mid], strings.Join(rs, ", "))
	fmt.Fprintf(out, "authed GET / bare Echo from CPU time: server %s vs %s per request (%.2f×), wrk %s vs %s: %.0f%% on a machine of its own\n",
		us(authed.cpuPerReq()), us(bare.cpuPerReq()), float64(authed.cpuPerReq())/float64(max(1, bare.cpuPerReq())),
		us(authed.genPerReq()), us(bare.genPerReq()), 100*cpuRatio)
	fmt.Fprintf(out, "authed GET p99 / bare Echo p99: %.2f× (budget ≤ 1.5×; median of rounds %s)\n", p99Ratio, floats(p99Ratios, "×"))
	fmt.Fprintf(out, "login: %.1f/s = %.0f%% of cores ÷ bcrypt (%.1f/s) and %.0f%% of the bcrypt capacity of all cores measured around the logins (%.1f/s: %.1f before, %.1f after) (budget ≥ 90%%)\n",
		logins[0].res.rate(), 100*logins[0].res.rate()/e.maxLogins(), e.maxLogins(), 100*logins[0].res.rate()/capacity, capacity, capBefore, capAfter)
	fmt.Fprintf(out, "login: server CPU per login %s vs one bcrypt %s (+%.0f%%: the server's own share); the server got %.2f of %d cores\n",
		ms(logins[0].cpuPerReq()), ms(e.bcrypt), 100*(float64(logins[0].cpuPerReq())/float64(e.bcrypt)-1),
		logins[0].cpu.Seconds()/logins[0].res.Duration.Seconds(), runtime.NumCPU())
	for _, f := range logins[1:] {
		fmt.Fprintf(out, "%s vs ok login: CPU per request %.2f×, p50 %.2f×, rate %.2f×\n", f.name,
			float64(f.cpuPerReq())/float64(max(1, logins[0].cpuPerReq())),
			float64(f.res.P50)/float64(max(1, logins[0].res.P50)), f.res.rate()/logins[0].res.rate())
	}
	fmt.Fprintf(out, "saturation: %d requests, %s; p99 %s, max %s (a full hashing queue answers 503 + Retry-After at once)\n",
		sat.res.Requests, codeString(sat.codes), ms(sat.res.P99), ms(sat.res.Max))
	fmt.Fprintf(out, "memory: peak RSS of the server over all scenarios (VmHWM) %s (budget ≤ 40 MiB); idle 2 s after the load %s\n",
		mib(appHWM), mib(idleAfter))
	if pgApp != nil {
		e.printCompare(auths, pgAuths, colds, logins, pgLogins, (capAfter+pgCapAfter)/2, invs)
	}
	if err := app.stop(); err != nil {
		fmt.Fprintln(out, "# server stop:", err)
	}

	if !o.growth {
		return nil
	}
	return e.growthRun(ctx, hash, authed, logins)
}

// growthRun seeds the big database and repeats the GET and login scenarios.
func (e *env) growthRun(ctx context.Context, hash string, authed row, logins []row) error {
	o, out := e.o, e.out
	fmt.Fprintln(out)
	dbPath := filepath.Join(e.dir, "growth.db")
	t0 := time.Now()
	users, err := seed(ctx, dbPath, seedSpec{users: o.growthUsers, tokens: o.growthTokens, scenario: o.users, hash: hash, expiredPct: 20})
	if err != nil {
		return fmt.Errorf("seed growth: %w", err)
	}
	fmt.Fprintf(out, "# growth: seeded %d users and %d tokens (20%% expired) in %s, file %s\n",
		o.growthUsers, o.growthTokens, time.Since(t0).Round(time.Millisecond), mib(fileSize(dbPath)/1024))
	existing, rss, app, err := e.startups(ctx, dbPath)
	if err != nil {
		return err
	}
	defer app.stop()
	fmt.Fprintf(out, "# growth: start-up to healthy %s (%s), idle RSS %s\n", ms(median(existing)), durations(existing), mib(medianInt(rss)))
	e.rows = nil
	threads := min(2, o.conns)
	get, err := wrkScript(e.dir, kindGet, users, password, threads, false)
	if err != nil {
		return err
	}
	base := "http://" + app.addr
	if _, err := runWrk(ctx, o.wrk, base+"/", get, o.conns, threads, min(2*time.Second, o.duration)); err != nil {
		return err
	}
	gAuthed, err := e.scenario(ctx, "authed GET /api/users/:id", app, o.conns, []string{"200"}, func() (result, error) {
		return runWrk(ctx, o.wrk, base+"/", get, o.conns, threads, o.duration)
	})
	if err != nil {
		return err
	}
	gLogins, err := e.loginScenarios(ctx, app, e.dir, users, "")
	if err != nil {
		return err
	}
	_, hwm, _ := memKiB(app.pid())
	e.printTable(fmt.Sprintf("growth database: %d users, %d tokens", o.growthUsers, o.growthTokens))
	fmt.Fprintln(out)
	fmt.Fprintf(out, "growth vs 1,000 users (budget: within 20%%): requests/s authed GET %.0f%%, login %.0f%%, failed login %.0f%%; peak RSS %s\n",
		100*gAuthed.res.rate()/authed.res.rate(), 100*gLogins[0].res.rate()/logins[0].res.rate(),
		100*gLogins[1].res.rate()/logins[1].res.rate(), mib(hwm))
	fmt.Fprintf(out, "growth vs 1,000 users, server CPU per request (steadier on a shared machine): authed GET %s vs %s (%+.0f%%), login %s vs %s (%+.0f%%), failed login %s vs %s (%+.0f%%)\n",
		us(gAuthed.cpuPerReq()), us(authed.cpuPerReq()), pct(gAuthed.cpuPerReq(), authed.cpuPerReq()),
		ms(gLogins[0].cpuPerReq()), ms(logins[0].cpuPerReq()), pct(gLogins[0].cpuPerReq(), logins[0].cpuPerReq()),
		ms(gLogins[1].cpuPerReq()), ms(logins[1].cpuPerReq()), pct(gLogins[1].cpuPerReq(), logins[1].cpuPerReq()))
	return app.stop()
}

// loginScenarios runs (c) login, (d) wrong password and an unknown user.
func (e *env) loginScenarios(ctx context.Context, app *server, dir string, users []loadUser, suffix string) ([]row, error) {
	o := e.o
	threads := min(2, o.loginConns)
	base := "http://" + app.addr
	var rows []row
	for _, sc := range []struct {
		kind, name string
		want       string
	}{
		{kindLogin, "login", "200"},
		{kindLoginWrong, "failed login: wrong password", "401"},
		{kindLoginUnknown, "failed login: unknown user", "401"},
	} {
		script, err := wrkScript(dir, sc.kind, users, password, threads, true)
		if err != nil {
			return nil, err
		}
		r, err := e.scenario(ctx, sc.name+suffix, app, o.loginConns, []string{sc.want}, func() (result, error) {
			return runWrk(ctx, o.wrk, base+"/", script, o.loginConns, threads, o.duration)
		})
		if err != nil {
			return nil, err
		}
		rows = append(rows, r)
	}
	return rows, nil
}

// scenario runs gen against s and records the server-side figures.
func (e *env) scenario(ctx context.Context, name string, s *server, conns int, expected []string, gen func() (result, error)) (row, error) {
	if err := ctx.Err(); err != nil {
		return row{}, err
	}
	fmt.Fprintf(e.out, "# running %s ...\n", name)
	offset := fileSize(s.logPath)
	c0, err := cpuTicks(s.pid())
	if err != nil {
		return row{}, err
	}
	var db0 map[int]int64
	if s.pg != nil {
		db0 = s.pg.cpu(ctx)
	}
	smp := sampleRSS(s.pid(), 200*time.Millisecond)
	res, err := gen()
	peak := smp.peak()
	if err != nil {
		return row{}, fmt.Errorf("%s: %w", name, err)
	}
	c1, err := cpuTicks(s.pid())
	if err != nil {
		return row{}, err
	}
	_, hwm, _ := memKiB(s.pid())
	r := row{name: name, conns: strconv.Itoa(conns), res: res, expected: expected,
		cpu: ticksToDuration(c1 - c0), rssPeak: peak, hwm: hwm}
	if s.pg != nil {
		r.dbCPU = ticksToDuration(cpuSince(db0, s.pg.cpu(ctx)))
	}
	r.codes = res.Codes
	if r.codes == nil {
		// The server's access log has the breakdown; without it (the bare
		// Echo server logs nothing) wrk's count of non-2xx is all there is.
		if codes, _, err := logStatuses(s.logPath, offset); err == nil && len(codes) > 0 {
			r.codes = codes
		} else {
			r.codes = map[string]int64{expected[0]: res.Requests - res.NonOK}
			if res.NonOK > 0 {
				r.codes["non-2xx"] = res.NonOK
			}
		}
	}
	e.rows = append(e.rows, r)
	return r, nil
}

func (e *env) printTable(title string) {
	fmt.Fprintf(e.out, "\n## %s\n", title)
	tw := tabwriter.NewWriter(e.out, 0, 0, 2, ' ', tabwriter.AlignRight|tabwriter.Debug)
	fmt.Fprintln(tw, "scenario\tconns\treq/s\tp50\tp99\terrors\tstatus codes\tCPU/req\tdb CPU/req\tRSS peak\tVmHWM\t")
	for _, r := range e.rows {
		db := "-"
		if r.dbCPU > 0 {
			db = cpuLat(r.dbPerReq())
		}
		fmt.Fprintf(tw, "%s\t%s\t%.1f\t%s\t%s\t%d\t%s\t%s\t%s\t%s\t%s\t\n", r.name, r.conns, r.res.rate(),
			lat(r.res.P50), lat(r.res.P99), r.errors(), codeString(r.codes), cpuLat(r.cpuPerReq()), db, mib(r.rssPeak), mib(r.hwm))
	}
	tw.Flush()
	for _, r := range e.rows {
		if r.res.ErrNote != "" {
			fmt.Fprintf(e.out, "# %s: %s\n", r.name, r.res.ErrNote)
		}
	}
}

func (e *env) maxLogins() float64 { return float64(runtime.NumCPU()) / e.bcrypt.Seconds() }

// build compiles the server and finds vegeta (built by the tools module).
func (e *env) build(ctx context.Context) error {
	e.bin = filepath.Join(e.dir, "latchkey")
	cmd := exec.CommandContext(ctx, "go", "build", "-o", e.bin, "./cmd/latchkey")
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("go build ./cmd/latchkey (run from the repository root): %w\n%s", err, out)
	}
	out, err := exec.CommandContext(ctx, "go", "tool", "-modfile=tools/go.mod", "-n", "vegeta").Output()
	if err != nil {
		return fmt.Errorf("go tool -modfile=tools/go.mod -n vegeta: %w", err)
	}
	e.vegeta = strings.TrimSpace(string(out))
	return nil
}

// startApp starts the server on the database file, logging to its own file.
func (e *env) startApp(ctx context.Context, db string, extraEnv ...string) (*server, error) {
	e.appLogN++
	env := []string{"LATCHKEY_DB=" + db, "LATCHKEY_LOG_FORMAT=text",
		// The login throttle stays on (its reads and writes are part of
		// every login measured), but the per-IP bucket is opened wide: all
		// the load comes from one loopback address and would otherwise be
		// a guesser answered 429 after the first few failures.
		"LATCHKEY_LOGIN_LIMIT_IP_BURST=100000", "LATCHKEY_LOGIN_LIMIT_IP_PER_MINUTE=100000"}
	if e.o.appEnv != "" {
		env = append(env, strings.Split(e.o.appEnv, ",")...)
	}
	env = append(env, extraEnv...)
	return startServer(ctx, "latchkey", e.bin, nil, env,
		filepath.Join(e.dir, fmt.Sprintf("latchkey-%d.log", e.appLogN)), "/healthz")
}

// startups measures start-up on an existing database several times and
// leaves the last server running.
func (e *env) startups(ctx context.Context, db string) ([]time.Duration, []int64, *server, error) {
	var ds []time.Duration
	var rss []int64
	for i := range e.o.startups {
		s, err := e.startApp(ctx, db)
		if err != nil {
			return nil, nil, nil, err
		}
		ds = append(ds, s.startup)
		rss = append(rss, idleRSS(s.pid(), time.Second))
		if i == e.o.startups-1 {
			return ds, rss, s, nil
		}
		if err := s.stop(); err != nil {
			return nil, nil, nil, err
		}
	}
	return nil, nil, nil, errors.New("-startups must be at least 1")
}

// measureBcrypt returns the median CPU time of one verification.
func measureBcrypt(ctx context.Context, h *models.Hasher, hash string, n int) time.Duration {
	var ds []time.Duration
	for range n {
		c0 := selfCPU()
		_, _ = h.Verify(ctx, hash, true, password)
		ds = append(ds, selfCPU()-c0)
	}
	return median(ds)
}

// measureCapacity runs one bcrypt verification loop per core for d and
// returns verifications per second: what the hashing pool could do now.
func measureCapacity(ctx context.Context, h *models.Hasher, hash string, d time.Duration) float64 {
	n := runtime.NumCPU()
	counts := make(chan int, n)
	start := time.Now()
	deadline := start.Add(d)
	for range n {
		go func() {
			c := 0
			for time.Now().Before(deadline) && ctx.Err() == nil {
				ok, _ := bcryptCompare(hash)
				if ok {
					c++
				}
			}
			counts <- c
		}()
	}
	total := 0
	for range n {
		total += <-counts
	}
	return float64(total) / time.Since(start).Seconds()
}

func selfCPU() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func median(ds []time.Duration) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[len(s)/2]
}

func medianIndex(v []float64) int {
	idx := make([]int, len(v))
	for i := range idx {
		idx[i] = i
	}
	sort.Slice(idx, func(a, b int) bool { return v[idx[a]] < v[idx[b]] })
	return idx[len(idx)/2]
}

func medianInt(v []int64) int64 {
	if len(v) == 0 {
		return 0
	}
	s := slices.Clone(v)
	slices.Sort(s)
	return s[len(s)/2]
}

func durations(ds []time.Duration) string {
	var parts []string
	for _, d := range ds {
		parts = append(parts, ms(d))
	}
	return strings.Join(parts, ", ")
}

func codeString(m map[string]int64) string {
	var keys []string
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var parts []string
	for _, k := range keys {
		parts = append(parts, fmt.Sprintf("%s:%d", k, m[k]))
	}
	return strings.Join(parts, " ")
}

func ms(d time.Duration) string { return fmt.Sprintf("%.1f ms", float64(d)/float64(time.Millisecond)) }
func us(d time.Duration) string { return fmt.Sprintf("%.1f µs", float64(d)/float64(time.Microsecond)) }

// lat prints a latency with a unit that suits its size.
func lat(d time.Duration) string {
	if d < 10*time.Millisecond {
		return us(d)
	}
	return ms(d)
}

func cpuLat(d time.Duration) string {
	if d < time.Millisecond {
		return us(d)
	}
	return ms(d)
}

// pct is how much larger a is than b, in percent.
func pct(a, b time.Duration) float64 { return 100 * (float64(a)/float64(max(1, b)) - 1) }

func mib(kib int64) string { return fmt.Sprintf("%.1f MiB", float64(kib)/1024) }

// bcryptCompare is one verification of the seeded password, outside the
// Hasher's pool (which would cap it at GOMAXPROCS anyway).
func bcryptCompare(hash string) (bool, error) {
	err := bcrypt.CompareHashAndPassword([]byte(hash), []byte(models.Normalize(password)))
	return err == nil, err
}
