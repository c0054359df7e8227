package models

import (
	"context"
	"database/sql"
	"fmt"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/pressly/goose/v3"

	"github.com/latchkey/latchkey/internal/testdb"
)

// TestCopyTablesMatchMigrations: for every migration version, a database
// migrated up to it has exactly the tables and columns (of the declared
// kinds) that copyTables says it has at that version. A migration that
// adds a table or a column copyTables lacks fails here, before a copy
// could leave it behind.
func TestCopyTablesMatchMigrations(t *testing.T) {
	t.Parallel()
	for _, store := range []string{"sqlite", "postgres"} {
		t.Run(store, func(t *testing.T) {
			t.Parallel()
			d := sqliteDialect()
			if store == "postgres" {
				d = postgresDialect("")
			}
			latest, err := latestMigration(d)
			if err != nil || latest < 3 {
				t.Fatalf("latest migration %d, %v", latest, err)
			}
			for v := int64(1); v <= latest; v++ {
				t.Run(fmt.Sprint("version ", v), func(t *testing.T) {
					db := migratedTo(t, d, v)
					got := describe(t, d, db)
					want := map[string][]string{}
					for _, tb := range schemaAt(v) {
						for _, c := range tb.cols {
							want[tb.name] = append(want[tb.name], c.name+" "+kindName(c.kind))
						}
					}
					if !reflect.DeepEqual(got, want) {
						t.Errorf("the schema at migration %d is not what copyTables says (add what a migration added to copyTables, with its version)\ndatabase:   %v\ncopyTables: %v", v, got, want)
					}
				})
			}
		})
	}
}

// migratedTo is a fresh database of dialect d migrated up to version v.
func migratedTo(t *testing.T, d *dialect, v int64) *sql.DB {
	t.Helper()
	var db *sql.DB
	if d.name == "postgres" {
		dsn := testdb.Postgres(t)
		c, err := pgx.ParseConfig(dsn)
		if err != nil {
			t.Fatal(err)
		}
		db = stdlib.OpenDB(*c)
	} else {
		var err error
		if db, err = sql.Open("sqlite", filepath.Join(t.TempDir(), "schema.db")); err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(func() { db.Close() })
	sub, err := d.migrations()
	if err != nil {
		t.Fatal(err)
	}
	p, err := goose.NewProvider(d.goose, db, sub)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.UpTo(context.Background(), v); err != nil {
		t.Fatal(err)
	}
	return db
}

// describe is every table's columns as "name kind", in column order,
// goose's own table and SQLite's internal ones left out.
func describe(t *testing.T, d *dialect, db *sql.DB) map[string][]string {
	t.Helper()
	q := `SELECT m.name, c.name, c.type FROM sqlite_master m, pragma_table_info(m.name) c
		WHERE m.type = 'table' AND m.name NOT LIKE 'sqlite_%' AND m.name <> 'goose_db_version' ORDER BY m.name, c.cid`
	if d.name == "postgres" {
		q = `SELECT table_name, column_name, data_type FROM information_schema.columns
			WHERE table_schema = current_schema() AND table_name <> 'goose_db_version' ORDER BY table_name, ordinal_position`
	}
	rows, err := db.Query(q)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	out := map[string][]string{}
	for rows.Next() {
		var table, col, typ string
		if err := rows.Scan(&table, &col, &typ); err != nil {
			t.Fatal(err)
		}
		out[table] = append(out[table], col+" "+declaredKind(typ))
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// declaredKind maps a declared column type of either store to a colKind's name.
func declaredKind(typ string) string {
	switch strings.ToLower(typ) {
	case "integer", "bigint", "smallint":
		return "int"
	case "real", "double precision":
		return "real"
	case "text":
		return "text"
	case "blob", "bytea":
		return "blob"
	}
	return "unknown type " + typ
}

func kindName(k colKind) string {
	return map[colKind]string{kindInt: "int", kindReal: "real", kindText: "text", kindBlob: "blob"}[k]
}
