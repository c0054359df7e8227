package models

import "context"

// OpenPostgresFeedVia opens a PostgreSQL store whose change feed connects
// through feedAddr (a proxy the test can cut) while queries go direct.
func OpenPostgresFeedVia(ctx context.Context, dsn, feedAddr string) (*DB, error) {
	return openPostgresFeedAt(ctx, dsn, feedAddr)
}
