package lb3_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/latchkey/latchkey/internal/lb3store"
	"github.com/latchkey/latchkey/internal/testdb"
	"github.com/latchkey/latchkey/models"
	"github.com/latchkey/latchkey/models/lb3"
)

// BenchmarkImportMemory: Check and Write of a generated memory file of 20k
// users and 40k tokens (half expired) into a fresh testdb.DSN store, as
// `latchkey import lb3` does; rows/s counts the records read.
func BenchmarkImportMemory(b *testing.B) {
	const users, tokens = 20_000, 40_000
	ctx := context.Background()
	path := filepath.Join(b.TempDir(), "memory.json")
	f, err := os.Create(path)
	if err != nil {
		b.Fatal(err)
	}
	if err := lb3store.WriteMemoryFile(f, users, tokens, time.Now()); err != nil {
		b.Fatal(err)
	}
	f.Close()
	b.ResetTimer()
	for b.Loop() {
		b.StopTimer()
		dsn := testdb.DSN(b)
		b.StartTimer()
		src, err := lb3.Open(ctx, path)
		if err != nil {
			b.Fatal(err)
		}
		plan, err := src.Check(ctx, lb3.Options{})
		if err != nil {
			b.Fatal(err)
		}
		db, err := models.Open(ctx, dsn)
		if err != nil {
			b.Fatal(err)
		}
		var rep lb3.Report
		err = db.Write(ctx, time.Now(), func(tx *models.Tx) error {
			rep, err = plan.Write(ctx, tx)
			return err
		})
		if err != nil {
			b.Fatal(err)
		}
		if rep.Users != users || rep.Sessions != tokens/2 || rep.Skipped[lb3.SkipExpired] != tokens/2 {
			b.Fatalf("report %+v", rep)
		}
		db.Close()
		src.Close()
	}
	b.ReportMetric(float64(b.N)*(users+tokens)/b.Elapsed().Seconds(), "rows/s")
}
