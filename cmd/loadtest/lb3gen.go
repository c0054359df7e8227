package main

import (
	"os"
	"time"

	"github.com/latchkey/latchkey/internal/lb3store"
)

// writeLB3 writes the load for `latchkey import lb3` (issue 10): a memory
// file of users users and tokens tokens, half of them expired.
func writeLB3(path string, users, tokens int) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if err := lb3store.WriteMemoryFile(f, users, tokens, time.Now()); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
