package boot_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptrace"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/latchkey/latchkey/boot"
	"github.com/latchkey/latchkey/internal/testdb"
	"github.com/latchkey/latchkey/internal/testkit"
)

// startApp runs the whole program (boot.RunReady) on 127.0.0.1:0 with env
// and returns its base URL, its log and a stop function that waits for a
// clean shutdown.
func startApp(t *testing.T, env map[string]string) (string, *testkit.SyncBuffer, func() error) {
	t.Helper()
	return startAppArgs(t, nil, env)
}

// startAppArgs is startApp with command-line arguments.
func startAppArgs(t *testing.T, args []string, env map[string]string) (string, *testkit.SyncBuffer, func() error) {
	t.Helper()
	dir := t.TempDir()
	vars := map[string]string{
		"LATCHKEY_ADDR":        "127.0.0.1:0",
		"LATCHKEY_DB":          filepath.Join(dir, "data", "latchkey.db"),
		"LATCHKEY_BCRYPT_COST": "10",
		"LATCHKEY_SMTP_PORT":   "1", // nothing listens: mail stays queued
	}
	for k, v := range env {
		vars[k] = v
	}
	logs := &testkit.SyncBuffer{}
	ctx, cancel := context.WithCancel(context.Background())
	addrc := make(chan string, 1)
	done := make(chan error, 1)
	go func() {
		done <- boot.RunReady(ctx, args, boot.Environ(vars), logs, func(a string) { addrc <- a })
	}()
	var addr string
	select {
	case addr = <-addrc:
	case err := <-done:
		cancel()
		t.Fatalf("app stopped at start: %v\n%s", err, logs.String())
	case <-time.After(10 * time.Second):
		cancel()
		t.Fatal("app did not start")
	}
	var once sync.Once
	var stopErr error
	stop := func() error {
		once.Do(func() {
			cancel()
			select {
			case stopErr = <-done:
			case <-time.After(15 * time.Second):
				stopErr = io.ErrNoProgress
			}
		})
		return stopErr
	}
	t.Cleanup(func() { stop() })
	return "http://" + addr, logs, stop
}

func call(t *testing.T, method, url, body string, headers ...string) (int, map[string]any, string) {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, url, rd)
	if err != nil {
		t.Fatal(err)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var m map[string]any
	json.Unmarshal(b, &m)
	return resp.StatusCode, m, string(b)
}

// TestRunEndToEnd starts the real program and drives create → login → get
// → change-password → logout over HTTP, then checks the log holds no secret
// and shutdown is clean.
func TestRunEndToEnd(t *testing.T) {
	t.Parallel()
	base, logs, stop := startApp(t, nil)
	if st, _, body := call(t, "GET", base+"/healthz", ""); st != 200 {
		t.Fatalf("healthz %d %s", st, body)
	}
	st, user, body := call(t, "POST", base+"/api/users", `{"email":"eve@example.com","password":"eve-secret-1","username":"eve"}`)
	if st != 200 || user["id"] != float64(1) {
		t.Fatalf("create %d %s", st, body)
	}
	st, tok, body := call(t, "POST", base+"/api/Users/login?include=user", `{"email":"EVE@example.com","password":"eve-secret-1"}`)
	if st != 200 {
		t.Fatalf("login %d %s", st, body)
	}
	id := tok["id"].(string)
	if st, _, body := call(t, "GET", base+"/api/users/1?access_token="+id, ""); st != 200 || body != `{"username":"eve","email":"eve@example.com","id":1}` {
		t.Fatalf("get %d %s", st, body)
	}
	if st, _, body := call(t, "POST", base+"/api/users/change-password", `{"oldPassword":"eve-secret-1","newPassword":"eve-secret-2"}`, "Authorization", id); st != 204 {
		t.Fatalf("change-password %d %s", st, body)
	}
	if st, _, _ := call(t, "POST", base+"/api/users/login", `{"email":"eve@example.com","password":"eve-secret-1"}`); st != 401 {
		t.Fatalf("old password %d", st)
	}
	// A reset while the mail server is down (port 1) is answered at once and
	// the mail waits in the outbox with the password-changed notice, which
	// /healthz reports.
	if st, _, body := call(t, "POST", base+"/api/users/reset", `{"email":"eve@example.com"}`); st != 204 {
		t.Fatalf("reset %d %s", st, body)
	}
	if st, health, body := call(t, "GET", base+"/healthz", ""); st != 200 || health["mail"].(map[string]any)["pending"] != float64(2) {
		t.Fatalf("healthz after a reset with SMTP down: %d %s", st, body)
	}
	if st, _, body := call(t, "POST", base+"/api/users/logout", "", "X-Access-Token", id); st != 204 {
		t.Fatalf("logout %d %s", st, body)
	}
	if st, _, _ := call(t, "GET", base+"/api/users/1", "", "Authorization", id); st != 401 {
		t.Fatalf("after logout %d", st)
	}
	if err := stop(); err != nil {
		t.Fatalf("shutdown: %v", err)
	}
	out := logs.String()
	for _, secret := range []string{"eve-secret-1", "eve-secret-2", id} {
		if strings.Contains(out, secret) {
			t.Errorf("secret in the log: %s", secret)
		}
	}
	if !strings.Contains(out, "access_token=[REDACTED]") {
		t.Errorf("the query token was not logged redacted:\n%s", out)
	}
	if !strings.Contains(out, "shutting down") {
		t.Errorf("no shutdown line in the log")
	}
}

// TestRunPersistsAcrossRestart: a clean shutdown closes the database and a
// restart on the same file sees the users and tokens.
func TestRunPersistsAcrossRestart(t *testing.T) {
	t.Parallel()
	db := testdb.DSN(t)
	base, _, stop := startApp(t, map[string]string{"LATCHKEY_DB": db})
	call(t, "POST", base+"/api/users", `{"email":"p@example.com","password":"persist-pw-1"}`)
	_, tok, _ := call(t, "POST", base+"/api/users/login", `{"email":"p@example.com","password":"persist-pw-1"}`)
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	base, _, _ = startApp(t, map[string]string{"LATCHKEY_DB": db})
	if st, _, body := call(t, "GET", base+"/api/users/1", "", "Authorization", tok["id"].(string)); st != 200 {
		t.Fatalf("after restart %d %s", st, body)
	}
}

// TestGracefulShutdownFinishesInFlight: a login whose request is still
// arriving when the signal comes gets its answer before the process ends.
func TestGracefulShutdownFinishesInFlight(t *testing.T) {
	t.Parallel()
	base, logs, stop := startApp(t, nil)
	call(t, "POST", base+"/api/users", `{"email":"slow@example.com","password":"wols-pw-12"}`)
	body, w := io.Pipe()
	// With Expect: 100-continue the server answers "100 Continue" when the
	// handler begins to read the body: from then on the request is in
	// flight on the server, whatever the shutdown does next.
	reading := make(chan struct{})
	ctx := httptrace.WithClientTrace(context.Background(), &httptrace.ClientTrace{Got100Continue: func() { close(reading) }})
	req, _ := http.NewRequestWithContext(ctx, "POST", base+"/api/users/login", body)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Expect", "100-continue")
	res := make(chan int, 1)
	go func() {
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			res <- 0
			return
		}
		resp.Body.Close()
		res <- resp.StatusCode
	}()
	select {
	case <-reading:
	case <-time.After(5 * time.Second):
		t.Fatal("the server never began to read the login")
	}
	io.WriteString(w, `{"email":"slow@example.com",`) // half the body: the request is still arriving
	stopped := make(chan error, 1)
	go func() { stopped <- stop() }()
	for deadline := time.Now().Add(5 * time.Second); !strings.Contains(logs.String(), "shutting down"); {
		if time.Now().After(deadline) {
			t.Fatal("no shutdown began")
		}
		time.Sleep(10 * time.Millisecond)
	}
	io.WriteString(w, `"password":"wols-pw-12"}`)
	w.Close()
	if st := <-res; st != 200 {
		t.Fatalf("in-flight login got %d", st)
	}
	if err := <-stopped; err != nil {
		t.Fatal(err)
	}
}
