package main

import (
	"fmt"
	"strings"
	"text/tabwriter"
	"time"
)

// dsnOf is the load database's URL, or "" without -postgres.
func dsnOf(p *pgStore) string {
	if p == nil {
		return ""
	}
	return p.dsn
}

func floats(v []float64, unit string) string {
	var parts []string
	for _, f := range v {
		parts = append(parts, fmt.Sprintf("%.2f%s", f, unit))
	}
	return strings.Join(parts, ", ")
}

// printCompare prints SQLite and PostgreSQL side by side, from the same
// run: the authed GET by round (its CPU per request counts the app and, on
// PostgreSQL, the load database's backends), the cold token, the logins and
// the invalidation.
func (e *env) printCompare(auths, pgAuths, colds, logins, pgLogins []row, capacity float64, invs []invalidation) {
	out := e.out
	fmt.Fprintln(out, "\n## SQLite and PostgreSQL, same run")
	// The round whose PostgreSQL/SQLite ratio of CPU per request is the
	// median stands for the run; p99 likewise.
	var cpuR, p99R []float64
	for i := range auths {
		cpuR = append(cpuR, float64(pgAuths[i].cpuPerReq()+pgAuths[i].dbPerReq())/float64(max(1, auths[i].cpuPerReq())))
		p99R = append(p99R, float64(pgAuths[i].res.P99)/float64(max(1, auths[i].res.P99)))
	}
	m := medianIndex(cpuR)
	tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', tabwriter.AlignRight|tabwriter.Debug)
	fmt.Fprintln(tw, "figure\tSQLite\tPostgreSQL\tPostgreSQL ÷ SQLite\t")
	line := func(name string, a, b float64, f func(float64) string) {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%.2f×\t\n", name, f(a), f(b), b/max(a, 1e-12))
	}
	rate := func(v float64) string { return fmt.Sprintf("%.1f/s", v) }
	dur := func(v float64) string { return cpuLat(time.Duration(v)) }
	a, b := auths[m], pgAuths[m]
	line(fmt.Sprintf("authed GET, cache hits (round %d): req/s", m+1), a.res.rate(), b.res.rate(), rate)
	line("  p50", float64(a.res.P50), float64(b.res.P50), dur)
	line("  p99", float64(a.res.P99), float64(b.res.P99), dur)
	line("  CPU/req: app", float64(a.cpuPerReq()), float64(b.cpuPerReq()), dur)
	line("  CPU/req: app + database", float64(a.cpuPerReq()), float64(b.cpuPerReq()+b.dbPerReq()), dur)
	if len(colds) == 2 {
		a, b := colds[0], colds[1]
		line("cold token (cache off): req/s", a.res.rate(), b.res.rate(), rate)
		line("  p50", float64(a.res.P50), float64(b.res.P50), dur)
		line("  p99", float64(a.res.P99), float64(b.res.P99), dur)
		line("  CPU/req: app + database", float64(a.cpuPerReq()), float64(b.cpuPerReq()+b.dbPerReq()), dur)
	}
	for i := range logins {
		a, b := logins[i], pgLogins[i]
		name := strings.TrimSuffix(a.name, " (PostgreSQL)")
		line(name+": req/s", a.res.rate(), b.res.rate(), rate)
		line("  p99", float64(a.res.P99), float64(b.res.P99), dur)
		line("  CPU/req: app + database", float64(a.cpuPerReq()), float64(b.cpuPerReq()+b.dbPerReq()), dur)
	}
	tw.Flush()
	fmt.Fprintf(out, "authed GET, PostgreSQL ÷ SQLite (budget ≤ 1.2×): CPU per request, app + database, %.2f× (rounds %s); p99 %.2f× (rounds %s)\n",
		cpuR[m], floats(cpuR, "×"), p99R[medianIndex(p99R)], floats(p99R, "×"))
	fmt.Fprintf(out, "login on PostgreSQL: %.1f/s = %.0f%% of cores ÷ bcrypt (%.1f/s), %.0f%% of the measured capacity (%.1f/s)\n",
		pgLogins[0].res.rate(), 100*pgLogins[0].res.rate()/e.maxLogins(), e.maxLogins(), 100*pgLogins[0].res.rate()/capacity, capacity)
	for _, inv := range invs {
		fmt.Fprintln(out, "invalidation:", inv)
	}
}
