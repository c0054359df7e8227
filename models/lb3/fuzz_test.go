package lb3

import (
	"bytes"
	"context"
	"testing"
	"time"

	"github.com/latchkey/latchkey/models"
)

// FuzzScanMemory: whatever the bytes, reading them as a memory-connector
// file and converting the records returns (a record or an error) and never
// panics; seeds in testdata/fuzz/FuzzScanMemory.
func FuzzScanMemory(f *testing.F) {
	f.Add([]byte(`{"ids":{"user":2},"models":{"user":{"1":"{\"email\":\"a@b.c\",\"password\":\"x\",\"id\":1}"}}}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		p := &Plan{opts: Options{Now: time.Unix(1.7e9, 0), VerifyTTL: time.Hour, AllowEternalTokens: true}}
		p.report.UserModel, p.report.TokenModel = "user", "AccessToken"
		var users, tokens int
		err := scanMemory(context.Background(), bytes.NewReader(data), []string{"user", "AccessToken"},
			func(model string, rec models.Fields) error {
				if model == "user" {
					if _, _, err := p.convertUser(model, rec); err == nil {
						users++
					}
					return nil
				}
				if tok, reason, err := p.convertToken(rec); err == nil && reason == "" {
					if !models.ValidTokenShape(tok.ID) || tok.UserID <= 0 || (tok.Scopes != models.ScopeSession && tok.Scopes != models.ScopeReset) {
						t.Fatalf("a token that cannot be imported passed: %+v", tok)
					}
					tokens++
				}
				return nil
			})
		_ = err
	})
}
