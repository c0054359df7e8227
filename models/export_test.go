package models

import (
	"context"
	"time"
)

// OpenPostgresFeedVia opens a PostgreSQL store whose change feed connects
// through feedAddr (a proxy the test can cut) while queries go direct.
func OpenPostgresFeedVia(ctx context.Context, dsn, feedAddr string) (*DB, error) {
	return openPostgresFeedAt(ctx, dsn, feedAddr)
}

// HoldLock takes the transaction-scoped lock name (as Tx.tryLock does) in
// a transaction that stays open until release is called.
func (db *DB) HoldLock(ctx context.Context, name string) (release func(), err error) {
	held, done, finished := make(chan error, 1), make(chan struct{}), make(chan struct{})
	go func() {
		defer close(finished)
		_ = db.Write(ctx, time.Now(), func(tx *Tx) error {
			ok, err := tx.tryLock(ctx, name)
			if err == nil && !ok {
				err = context.DeadlineExceeded
			}
			held <- err
			<-done
			return nil
		})
	}()
	if err := <-held; err != nil {
		close(done)
		return nil, err
	}
	return func() { close(done); <-finished }, nil
}

// FeedListeners are the other replicas a write on db waits for.
func (db *DB) FeedListeners(ctx context.Context) (map[string]bool, error) {
	return db.feed.listeners(ctx)
}

// FeedWaiting is how many writers' entries wait for acknowledgements.
func (db *DB) FeedWaiting() int {
	db.feed.mu.Lock()
	defer db.feed.mu.Unlock()
	return len(db.feed.waiting)
}

// DropUserForTest records a user change on tx, as the account methods do.
func DropUserForTest(tx *Tx, id int64) { tx.dropUser(id) }
