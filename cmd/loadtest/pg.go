package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net/url"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/latchkey/latchkey/models"
)

// pgStore is the PostgreSQL side of a -postgres run: a database of its own,
// created on the server at the base URL and dropped at the end, and an
// administrative connection (to the base URL's database, never the load
// database) that finds the load database's backends so their CPU can be
// counted with the app's.
type pgStore struct {
	base  string // the -postgres URL
	name  string // latchkey_load_<random>
	dsn   string // base with the load database in its path: the app's LATCHKEY_DB
	admin *pgx.Conn
}

// createPG creates latchkey_load_<12 hex digits> on the server of base.
func createPG(ctx context.Context, base string) (*pgStore, error) {
	if k, err := models.StoreKind(base); err != nil || k != "postgres" {
		return nil, fmt.Errorf("-postgres %q: want a postgres:// URL", models.RedactDSN(base))
	}
	u, err := url.Parse(base)
	if err != nil {
		return nil, fmt.Errorf("-postgres: %w", err)
	}
	cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	admin, err := pgx.Connect(cctx, base)
	if err != nil {
		return nil, fmt.Errorf("-postgres %s: %w", models.RedactDSN(base), err)
	}
	var b [6]byte
	_, _ = rand.Read(b[:])
	p := &pgStore{base: base, name: "latchkey_load_" + hex.EncodeToString(b[:]), admin: admin}
	if _, err := admin.Exec(cctx, "CREATE DATABASE "+pgx.Identifier{p.name}.Sanitize()); err != nil {
		admin.Close(ctx)
		return nil, fmt.Errorf("create database %s: %w", p.name, err)
	}
	u.Path = "/" + p.name
	p.dsn = u.String()
	return p, nil
}

// drop removes the load database, ending its connections (PostgreSQL 13+).
func (p *pgStore) drop(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	_, err := p.admin.Exec(ctx, "DROP DATABASE IF EXISTS "+pgx.Identifier{p.name}.Sanitize()+" WITH (FORCE)")
	return errors.Join(err, p.admin.Close(ctx))
}

// backends lists the process ids of the load database's server processes.
// PostgreSQL runs on this machine (the load test is loopback only), so
// their CPU is in /proc like the app's.
func (p *pgStore) backends(ctx context.Context) ([]int, error) {
	rows, err := p.admin.Query(ctx, `SELECT pid FROM pg_stat_activity WHERE datname = $1`, p.name)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, pgx.RowTo[int])
}

// cpu sums the CPU ticks of the load database's backends.
func (p *pgStore) cpu(ctx context.Context) map[int]int64 {
	pids, err := p.backends(ctx)
	if err != nil {
		return nil
	}
	m := make(map[int]int64, len(pids))
	for _, pid := range pids {
		if t, err := cpuTicks(pid); err == nil {
			m[pid] = t
		}
	}
	return m
}

// cpuSince is the CPU the backends used since before was taken: backends
// that started in between count from zero; one that ended in between is
// lost (the app's pool keeps its connections for minutes).
func cpuSince(before, after map[int]int64) int64 {
	var n int64
	for pid, t := range after {
		n += t - before[pid]
	}
	return n
}
