package lb3store

import (
	"context"
	"database/sql"
	"github.com/latchkey/latchkey/models/lb3"
	"net/url"
	"os"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"
	"github.com/jackc/pgx/v5"

	"github.com/latchkey/latchkey/internal/testdb"
)

const (
	// connectTimeout: a local server answers in milliseconds, so two
	// seconds means it is not there.
	connectTimeout = 2 * time.Second
	// opTimeout bounds creating or dropping a database, connecting included.
	opTimeout = 30 * time.Second
	// mysqlStartHint and postgresStartHint are how to start the servers on
	// this project's machines (TOOLCHAIN.md, "Databases").
	mysqlStartHint    = "start-stop-daemon --start --oknodo --background --exec /usr/sbin/mariadbd"
	postgresStartHint = "pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start"
)

// OpenMySQL opens the MariaDB/MySQL database at a mysql:// URL.
func OpenMySQL(rawURL string) (*sql.DB, error) {
	cfg, err := lb3.MySQLConfig(rawURL)
	if err != nil {
		return nil, err
	}
	cfg.Timeout = connectTimeout // tests skip fast when MariaDB is absent
	conn, err := mysql.NewConnector(cfg)
	if err != nil {
		return nil, err
	}
	return sql.OpenDB(conn), nil
}

// Database creates an empty database of kind (MySQL or Postgres) as Make
// does, dropped when t ends, and returns its URL: for tests that lay out
// tables by hand, as an app with renamed tables and columns left them.
// Without the server t is skipped, or failed under LATCHKEY_E2E_REQUIRE=1.
func Database(t testing.TB, kind string) string {
	t.Helper()
	switch kind {
	case MySQL:
		return createMySQL(t)
	case Postgres:
		return createPostgres(t)
	}
	t.Fatalf("lb3store: Database: kind %q is not %q or %q", kind, MySQL, Postgres)
	return ""
}

// createMySQL creates lb3_test_<random> on the server at LATCHKEY_TEST_MYSQL
// (default DefaultMySQL), drops it when t ends, and returns its URL.
func createMySQL(t testing.TB) string {
	t.Helper()
	base := os.Getenv(EnvMySQL)
	if base == "" {
		base = DefaultMySQL
	}
	u, err := url.Parse(base)
	if err != nil || u.Scheme != "mysql" {
		t.Fatalf("lb3store: %s must be a mysql:// URL, got %q", EnvMySQL, redact(base))
	}
	u.Path = "/"
	admin, err := OpenMySQL(u.String())
	if err != nil {
		t.Fatalf("lb3store: %v", err)
	}
	defer admin.Close()
	ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
	defer cancel()
	if err := admin.PingContext(ctx); err != nil {
		unavailable(t, "MariaDB is not reachable at %s: %v\nstart it with: %s", redact(u.String()), err, mysqlStartHint)
	}
	name := databaseName()
	// utf8mb4 and the server's default collation (a _ci one), as an app's
	// database usually is.
	if _, err := admin.ExecContext(ctx, "CREATE DATABASE `"+name+"` CHARACTER SET utf8mb4"); err != nil {
		t.Fatalf("lb3store: create database %s: %v", name, err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
		defer cancel()
		db, err := OpenMySQL(u.String())
		if err == nil {
			defer db.Close()
			_, err = db.ExecContext(ctx, "DROP DATABASE IF EXISTS `"+name+"`")
		}
		if err != nil {
			t.Logf("lb3store: database %s left behind: %v", name, err)
		}
	})
	u.Path = "/" + name
	return u.String()
}

// createPostgres creates lb3_test_<random> on the server of
// LATCHKEY_TEST_POSTGRES (default testdb.DefaultPostgres), drops it when t
// ends, and returns its URL. LoopBack's connector works in schema public
// of its own database, so this is a database, not a schema as in testdb.
func createPostgres(t testing.TB) string {
	t.Helper()
	base := os.Getenv(testdb.EnvPostgres)
	if base == "" {
		base = testdb.DefaultPostgres
	}
	u, err := url.Parse(base)
	if err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") {
		t.Fatalf("lb3store: %s must be a postgres:// URL, got %q", testdb.EnvPostgres, redact(base))
	}
	ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
	defer cancel()
	conn, err := connectPostgres(ctx, u.String())
	if err != nil {
		unavailable(t, "PostgreSQL is not reachable at %s: %v\nstart it with: %s", redact(u.String()), err, postgresStartHint)
	}
	defer conn.Close(ctx)
	name := databaseName()
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize()); err != nil {
		t.Fatalf("lb3store: create database %s: %v", name, err)
	}
	admin := u.String()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
		defer cancel()
		conn, err := connectPostgres(ctx, admin)
		if err == nil {
			defer conn.Close(ctx)
			// FORCE ends connections a test left open (PostgreSQL 13+).
			_, err = conn.Exec(ctx, "DROP DATABASE IF EXISTS "+pgx.Identifier{name}.Sanitize()+" WITH (FORCE)")
		}
		if err != nil {
			t.Logf("lb3store: database %s left behind: %v", name, err)
		}
	})
	u.Path = "/" + name
	// Keep only sslmode from the base query (node's pg understands it);
	// a search_path or other runtime parameter would not apply to LB3.
	q := url.Values{}
	if m := u.Query().Get("sslmode"); m != "" {
		q.Set("sslmode", m)
	}
	u.RawQuery = q.Encode()
	return u.String()
}

func connectPostgres(ctx context.Context, dsn string) (*pgx.Conn, error) {
	cfg, err := pgx.ParseConfig(dsn)
	if err != nil {
		return nil, err
	}
	cfg.ConnectTimeout = connectTimeout
	return pgx.ConnectConfig(ctx, cfg)
}
