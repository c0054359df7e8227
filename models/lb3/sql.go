package lb3

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/go-sql-driver/mysql"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"

	"github.com/latchkey/latchkey/models"
)

// sqlStore reads the tables loopback-connector-mysql or
// loopback-connector-postgresql made (§2): a table per model, a column per
// property; MySQL keeps the names' case, PostgreSQL lower-cases both.
type sqlStore struct {
	db      *sql.DB
	dialect string // "mysql" or "postgres"
	desc    string // the URL without its password
	tables  []string
	app     *App // the LoopBack app's names (Options.App), or nil
}

// connectTimeout: a reachable server answers in milliseconds.
const connectTimeout = 10 * time.Second

// MySQLConfig turns a mysql://user:pass@host[:port]/db URL, the form the
// import takes, into go-sql-driver's configuration: TCP, port 3306 by
// default, DATETIME read as UTC (the connector writes UTC wall-clock time,
// lb3-stores.md §2). The database may be empty (an administrative
// connection); the import itself requires one.
func MySQLConfig(src string) (*mysql.Config, error) {
	u, err := url.Parse(src)
	if err != nil || u.Scheme != "mysql" {
		return nil, &UsageError{"lb3: the MySQL URL does not parse (want mysql://user:pass@host:3306/db)"}
	}
	cfg := mysql.NewConfig()
	cfg.User = u.User.Username()
	cfg.Passwd, _ = u.User.Password()
	cfg.Net = "tcp"
	cfg.Addr = u.Host
	if u.Port() == "" {
		cfg.Addr = u.Host + ":3306"
	}
	cfg.DBName = strings.TrimPrefix(u.Path, "/")
	cfg.ParseTime = true
	cfg.Loc = time.UTC
	cfg.Timeout = connectTimeout
	return cfg, nil
}

func openMySQL(ctx context.Context, src string) (*sqlStore, error) {
	cfg, err := MySQLConfig(src)
	if err != nil {
		return nil, err
	}
	if cfg.DBName == "" {
		return nil, &UsageError{fmt.Sprintf("lb3: %s names no database (want mysql://user:pass@host:3306/db)", models.RedactDSN(src))}
	}
	conn, err := mysql.NewConnector(cfg)
	if err != nil {
		return nil, fmt.Errorf("lb3: %s: %w", models.RedactDSN(src), err)
	}
	return newSQLStore(ctx, sql.OpenDB(conn), "mysql", src)
}

func openPostgres(ctx context.Context, src string) (*sqlStore, error) {
	cfg, err := pgx.ParseConfig(src)
	if err != nil {
		return nil, &UsageError{"lb3: the PostgreSQL URL is not valid (want postgres://user:pass@host:5432/db)"}
	}
	if cfg.ConnectTimeout == 0 {
		cfg.ConnectTimeout = connectTimeout
	}
	return newSQLStore(ctx, stdlib.OpenDB(*cfg), "postgres", src)
}

func newSQLStore(ctx context.Context, db *sql.DB, dialect, src string) (*sqlStore, error) {
	s := &sqlStore{db: db, dialect: dialect, desc: models.RedactDSN(src)}
	q := `SELECT TABLE_NAME FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE()`
	if dialect == "postgres" {
		q = `SELECT table_name FROM information_schema.tables WHERE table_schema = 'public'`
	}
	rows, err := db.QueryContext(ctx, q)
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("lb3: %s: %s", s.desc, redactIn(err.Error(), src))
	}
	defer rows.Close()
	for rows.Next() {
		var name string
		if err := rows.Scan(&name); err != nil {
			db.Close()
			return nil, fmt.Errorf("lb3: %s: list tables: %w", s.desc, err)
		}
		s.tables = append(s.tables, name)
	}
	if err := rows.Err(); err != nil {
		db.Close()
		return nil, fmt.Errorf("lb3: %s: list tables: %w", s.desc, err)
	}
	return s, nil
}

func (s *sqlStore) describe() string { return s.desc }
func (s *sqlStore) close() error     { return s.db.Close() }

// connector is the dialect as LoopBack's model JSON names it.
func (s *sqlStore) connector() string { return connectorOf(s.dialect) }

// table: MySQL's tables are named as the model (with
// lower_case_table_names=0 "User" and "user" are two tables); PostgreSQL's
// are lower-cased. A table the app renames (mysql.table,
// postgresql.table) is taken as written: the connector quotes it.
func (s *sqlStore) table(_ context.Context, model string) (string, bool, error) {
	want := model
	if t, ok := s.app.Table(s.connector(), model); ok {
		want = t
	} else if s.dialect == "postgres" {
		want = strings.ToLower(model)
	}
	for _, t := range s.tables {
		if t == want {
			return t, true, nil
		}
	}
	return "", false, nil
}

// colKind is how a column's values become JSON.
type colKind int

const (
	colText   colKind = iota // a JSON string, or the JSON it holds (an object or array property, §2)
	colNumber                // a JSON number
	colBool                  // true or false (MySQL: TINYINT(1))
	colTime                  // an ISO-8601 UTC string with milliseconds, as LoopBack writes dates
)

type column struct {
	name string // as stored
	prop string // LoopBack's property name
	kind colKind
}

// canonical are the built-in properties PostgreSQL lower-cased. A custom
// model's own camel-case properties come back lower-cased too (fullname):
// only the app's model JSON knows their case (App.Columns).
var canonical = map[string]string{
	"emailverified": "emailVerified", "verificationtoken": "verificationToken",
	"userid": "userId", "principaltype": "principalType", "principalid": "principalId",
	"roleid": "roleId", "externalid": "externalId", "authscheme": "authScheme",
}

// plainText are properties that are strings even when they look like JSON.
var plainText = map[string]bool{"id": true, "email": true, "username": true, "password": true, "realm": true,
	"verificationToken": true, "principalType": true}

// columns lists table's columns, each with the property of model it
// holds: the app's (a renamed column, a PostgreSQL column under the case
// the app declares), else a built-in's on PostgreSQL, else its own name.
func (s *sqlStore) columns(ctx context.Context, model, table string) ([]column, error) {
	props := s.app.Columns(s.connector(), model)
	q := `SELECT TABLE_NAME, COLUMN_NAME, DATA_TYPE, COLUMN_TYPE FROM information_schema.COLUMNS
		WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = ? ORDER BY ORDINAL_POSITION`
	if s.dialect == "postgres" {
		q = `SELECT table_name, column_name, data_type, data_type FROM information_schema.columns
			WHERE table_schema = 'public' AND table_name = $1 ORDER BY ordinal_position`
	}
	rows, err := s.db.QueryContext(ctx, q, table)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var cols []column
	for rows.Next() {
		var tbl, name, dataType, colType string
		if err := rows.Scan(&tbl, &name, &dataType, &colType); err != nil {
			return nil, err
		}
		if tbl != table { // MariaDB compares names here without case
			continue
		}
		c := column{name: name, prop: name}
		if p, ok := props[name]; ok {
			c.prop = p
		} else if p, ok := canonical[name]; ok && s.dialect == "postgres" {
			c.prop = p
		}
		dataType, colType = strings.ToLower(dataType), strings.ToLower(colType)
		switch {
		case colType == "tinyint(1)" || dataType == "boolean":
			c.kind = colBool
		case strings.Contains(dataType, "int") || dataType == "decimal" || dataType == "numeric" ||
			dataType == "double" || dataType == "float" || dataType == "real" || dataType == "double precision":
			c.kind = colNumber
		case strings.HasPrefix(dataType, "timestamp") || dataType == "datetime" || dataType == "date":
			c.kind = colTime
		default:
			c.kind = colText
		}
		cols = append(cols, c)
	}
	return cols, rows.Err()
}

func (s *sqlStore) quote(name string) string {
	if s.dialect == "mysql" {
		return "`" + strings.ReplaceAll(name, "`", "``") + "`"
	}
	return pgx.Identifier{name}.Sanitize()
}

func (s *sqlStore) scan(ctx context.Context, names []string, fn func(string, models.Fields) error) error {
	for _, model := range names {
		table, ok, err := s.table(ctx, model)
		if err != nil || !ok {
			continue
		}
		if err := s.scanTable(ctx, model, table, fn); err != nil {
			return err
		}
	}
	return nil
}

func (s *sqlStore) scanTable(ctx context.Context, model, table string, fn func(string, models.Fields) error) error {
	cols, err := s.columns(ctx, model, table)
	if err != nil {
		return fmt.Errorf("lb3: the columns of %s: %w", table, err)
	}
	list := make([]string, len(cols))
	for i, c := range cols {
		list[i] = s.quote(c.name)
	}
	rows, err := s.db.QueryContext(ctx, "SELECT "+strings.Join(list, ", ")+" FROM "+s.quote(table))
	if err != nil {
		return fmt.Errorf("lb3: read %s: %w", table, err)
	}
	defer rows.Close()
	vals := make([]any, len(cols))
	ptrs := make([]any, len(cols))
	for i := range vals {
		ptrs[i] = &vals[i]
	}
	for rows.Next() {
		if err := rows.Scan(ptrs...); err != nil {
			return fmt.Errorf("lb3: read %s: %w", table, err)
		}
		rec := make(models.Fields, 0, len(cols))
		for i, c := range cols {
			if vals[i] == nil {
				continue // LoopBack leaves an unset property out
			}
			raw, err := toJSON(vals[i], c)
			if err != nil {
				return fmt.Errorf("lb3: %s column %s: %w", table, c.name, err)
			}
			rec = append(rec, models.Field{Name: c.prop, Value: raw})
		}
		if err := fn(model, rec); err != nil {
			return err
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("lb3: read %s: %w", table, err)
	}
	return nil
}

// toJSON turns a column value into the JSON LoopBack would have held.
func toJSON(v any, c column) (json.RawMessage, error) {
	if b, ok := v.([]byte); ok {
		v = string(b)
	}
	switch c.kind {
	case colBool:
		switch x := v.(type) {
		case bool:
			return json.RawMessage(strconv.FormatBool(x)), nil
		case int64:
			return json.RawMessage(strconv.FormatBool(x != 0)), nil
		case string:
			return json.RawMessage(strconv.FormatBool(x != "0" && x != "" && x != "false")), nil
		}
	case colNumber:
		switch x := v.(type) {
		case int64:
			return json.RawMessage(strconv.FormatInt(x, 10)), nil
		case int32:
			return json.RawMessage(strconv.FormatInt(int64(x), 10)), nil
		case float64:
			return json.RawMessage(strconv.FormatFloat(x, 'g', -1, 64)), nil
		case float32:
			return json.RawMessage(strconv.FormatFloat(float64(x), 'g', -1, 32)), nil
		case string:
			if _, err := strconv.ParseFloat(x, 64); err == nil {
				return json.RawMessage(x), nil
			}
		}
	case colTime:
		if x, ok := v.(time.Time); ok {
			return json.Marshal(x.UTC().Format(isoMillis))
		}
	}
	switch x := v.(type) {
	case string:
		if !plainText[c.prop] {
			if t := strings.TrimSpace(x); t != "" && (t[0] == '{' || t[0] == '[') && json.Valid([]byte(t)) {
				return json.RawMessage(t), nil
			}
		}
		return json.Marshal(x)
	case time.Time:
		return json.Marshal(x.UTC().Format(isoMillis))
	case bool, int64, int32, float64:
		return json.Marshal(x)
	}
	return nil, fmt.Errorf("a value of type %T", v)
}

// isoMillis is JavaScript's Date.prototype.toISOString.
const isoMillis = "2006-01-02T15:04:05.000Z"

// redactIn drops the password of a URL from a driver's message.
func redactIn(msg, src string) string {
	if u, err := url.Parse(src); err == nil && u.User != nil {
		if pw, ok := u.User.Password(); ok && pw != "" {
			msg = strings.ReplaceAll(msg, pw, "xxxxx")
		}
	}
	return msg
}

// openFileCheck says what is wrong with a memory file's path up front.
func openFileCheck(path string) (os.FileInfo, error) {
	fi, err := os.Stat(path)
	switch {
	case errors.Is(err, os.ErrNotExist):
		return nil, &UsageError{fmt.Sprintf("lb3: %s: no such file (want a LoopBack memory-connector file, mysql://… or postgres://…)", path)}
	case err != nil:
		return nil, fmt.Errorf("lb3: %w", err)
	case fi.IsDir():
		return nil, &UsageError{fmt.Sprintf("lb3: %s is a folder: want a LoopBack memory-connector file (MongoDB exports are not supported yet)", path)}
	}
	return fi, nil
}
