package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	"github.com/latchkey/latchkey/internal/metrics/metricstest"
	"github.com/latchkey/latchkey/models"
)

// runMetrics is -metrics: what Prometheus metrics cost an authenticated
// read (issue 13). Two servers run side by side from the same binary, each
// on its own copy of the seeded database (so neither's writes empty the
// other's auth cache), one with LATCHKEY_METRICS_ADDR and one without;
// wrk drives both with the same script shape in -rounds rounds, bare Echo
// first for reference, then off and on in an order that alternates from
// round to round, so drift on a shared machine does not favour either.
// At the end the metrics server is scraped once, to check that it counted
// the requests it was sent.
func runMetrics(ctx context.Context, o options, out io.Writer) error {
	if _, err := exec.LookPath(o.wrk); err != nil {
		return fmt.Errorf("wrk not found (%v): apt-get install -y wrk, or pass -wrk PATH", err)
	}
	dir, err := os.MkdirTemp("", "latchkey-metrics-")
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
	e.bin = filepath.Join(dir, "latchkey")
	if b, err := exec.CommandContext(ctx, "go", "build", "-o", e.bin, "./cmd/latchkey").CombinedOutput(); err != nil {
		return fmt.Errorf("go build ./cmd/latchkey (run from the repository root): %w\n%s", err, b)
	}
	fmt.Fprintf(out, "# metrics on vs off: %s, %d CPUs, Go %s, %s per scenario, %d rounds, %d users\n",
		time.Now().UTC().Format(time.RFC3339), runtime.NumCPU(), runtime.Version(), o.duration, o.rounds, o.users)
	if la, err := os.ReadFile("/proc/loadavg"); err == nil {
		fmt.Fprintf(out, "# load average before: %s", la)
	}
	hash, err := models.NewHasher(models.HashConfig{BcryptCost: 10}).Hash(ctx, password)
	if err != nil {
		return err
	}
	threads := min(2, o.conns)
	type side struct {
		name, script string
		app          *server
		rows         []row
	}
	metricsAddr, err := freeAddr()
	if err != nil {
		return err
	}
	var sides [2]*side
	for i, name := range []string{"off", "on"} {
		sub := filepath.Join(dir, name)
		if err := os.MkdirAll(sub, 0o700); err != nil {
			return err
		}
		db := filepath.Join(sub, "load.db")
		users, err := seed(ctx, db, seedSpec{users: o.users, tokens: o.users, scenario: o.users, hash: hash})
		if err != nil {
			return fmt.Errorf("seed: %w", err)
		}
		script, err := wrkScript(sub, kindGet, users, password, threads, false)
		if err != nil {
			return err
		}
		var extra []string
		if name == "on" {
			extra = append(extra, "LATCHKEY_METRICS_ADDR="+metricsAddr)
		}
		app, err := e.startApp(ctx, db, extra...)
		if err != nil {
			return err
		}
		defer app.stop()
		sides[i] = &side{name: name, script: script, app: app}
	}
	ping, err := startServer(ctx, "ping", e.self, []string{"-ping-server"}, nil, filepath.Join(dir, "ping.log"), "/ping")
	if err != nil {
		return err
	}
	defer ping.stop()

	warm := min(2*time.Second, o.duration)
	var sent int64 // requests to the metrics server, for the check at the end
	for _, s := range sides {
		r, err := runWrk(ctx, o.wrk, "http://"+s.app.addr+"/", s.script, o.conns, threads, warm)
		if err != nil {
			return err
		}
		if s.name == "on" {
			sent += r.Requests
		}
	}
	var bares []row
	for r := range o.rounds {
		suffix := fmt.Sprintf(" #%d", r+1)
		bare, err := e.scenario(ctx, "bare Echo GET /api/users/:id"+suffix, ping, o.conns, []string{"200"}, func() (result, error) {
			return runWrk(ctx, o.wrk, "http://"+ping.addr+"/", sides[0].script, o.conns, threads, o.duration)
		})
		if err != nil {
			return err
		}
		bares = append(bares, bare)
		order := []*side{sides[0], sides[1]}
		if r%2 == 1 {
			order[0], order[1] = order[1], order[0]
		}
		for _, s := range order {
			row, err := e.scenario(ctx, "authed GET, metrics "+s.name+suffix, s.app, o.conns, []string{"200"}, func() (result, error) {
				return runWrk(ctx, o.wrk, "http://"+s.app.addr+"/", s.script, o.conns, threads, o.duration)
			})
			if err != nil {
				return err
			}
			s.rows = append(s.rows, row)
			if s.name == "on" {
				sent += row.res.Requests
			}
		}
	}

	// The metrics server counted what it was sent: wrk's count leaves out
	// the answers that arrive after a run's end, so allow a connection's
	// worth either way for each run.
	scrape, err := metricstest.Get("http://" + metricsAddr + "/metrics")
	if err != nil {
		return fmt.Errorf("scraping the metrics server: %w", err)
	}
	counted := scrape.Sum("latchkey_http_request_duration_seconds", "route=/api/users/:id", "method=GET")
	e.printTable("metrics on vs off, 1,000-user database")
	fmt.Fprintln(out)
	fmt.Fprintf(out, "the metrics server counted %.0f GET /api/users/:id, wrk sent %d\n", counted, sent)
	if d := counted - float64(sent); d < -float64((o.rounds+1)*o.conns) || d > float64((o.rounds+1)*o.conns) {
		fmt.Fprintf(out, "# WARNING: the metrics server counted %+.0f requests more than wrk\n", d)
	}
	var rates, cpus []float64
	var ons, offs []string
	var cpuOn, cpuOff []time.Duration
	for i := range sides[0].rows {
		off, on := sides[0].rows[i], sides[1].rows[i]
		rates = append(rates, on.res.rate()/off.res.rate())
		cpus = append(cpus, float64(on.cpuPerReq())/float64(max(1, off.cpuPerReq())))
		ons, offs = append(ons, fmt.Sprintf("%.0f", on.res.rate())), append(offs, fmt.Sprintf("%.0f", off.res.rate()))
		cpuOn, cpuOff = append(cpuOn, on.cpuPerReq()), append(cpuOff, off.cpuPerReq())
	}
	fmt.Fprintf(out, "authed GET, metrics on ÷ off: %.1f%% of the requests/s (median of rounds %s); req/s on %s, off %s\n",
		100*rates[medianIndex(rates)], floats(rates, "×"), strings.Join(ons, ", "), strings.Join(offs, ", "))
	fmt.Fprintf(out, "authed GET, server CPU per request: on %s, off %s (median of rounds); on ÷ off %.3f× (rounds %s)\n",
		us(median(cpuOn)), us(median(cpuOff)), cpus[medianIndex(cpus)], floats(cpus, "×"))
	var bareRates []string
	for _, b := range bares {
		bareRates = append(bareRates, fmt.Sprintf("%.0f", b.res.rate()))
	}
	fmt.Fprintf(out, "bare Echo req/s for reference: %s\n", strings.Join(bareRates, ", "))
	if la, err := os.ReadFile("/proc/loadavg"); err == nil {
		fmt.Fprintf(out, "# load average after: %s", la)
	}
	return nil
}
