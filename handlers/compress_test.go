package handlers_test

import (
	"bytes"
	"compress/gzip"
	"fmt"
	"io"
	"strconv"
	"strings"
	"testing"
)

func gunzip(t *testing.T, s string) string {
	t.Helper()
	zr, err := gzip.NewReader(strings.NewReader(s))
	if err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(zr)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestCompressAPI: JSON answers of 1 KiB or more are gzipped for clients
// that ask, with a correct Content-Length and Vary; small answers, 204s,
// clients that do not ask and HTML pages are not.
func TestCompressAPI(t *testing.T) {
	t.Parallel()
	env := newEnv(t)
	bio := strings.Repeat("Likes long walks and longer JSON. ", 60) // about 2 KB
	id := env.signup("alice@example.com", "ecila-pw-1", "bio", bio)
	tok := env.login("alice@example.com", "ecila-pw-1")
	path := fmt.Sprintf("/api/users/%d", id)

	plain := env.do("GET", path, "", "Authorization: "+tok)
	if plain.status != 200 || len(plain.body) < 1024 || plain.header.Get("Content-Encoding") != "" ||
		plain.header.Get("Vary") != "Accept-Encoding" {
		t.Fatalf("without Accept-Encoding: %d, %d bytes, %v", plain.status, len(plain.body), plain.header)
	}
	z := env.do("GET", path, "", "Authorization: "+tok, "Accept-Encoding: gzip, deflate, br")
	if z.status != 200 || z.header.Get("Content-Encoding") != "gzip" || z.header.Get("Vary") != "Accept-Encoding" ||
		z.header.Get("Content-Length") != strconv.Itoa(len(z.body)) || len(z.body) >= len(plain.body) {
		t.Fatalf("gzipped: %d, %d bytes, %v", z.status, len(z.body), z.header)
	}
	if got := gunzip(t, z.body); got != plain.body {
		t.Fatalf("gunzipped body differs:\n%s\n%s", got, plain.body)
	}
	t.Logf("GET %s: %d bytes, gzip %d", path, len(plain.body), len(z.body))

	// Small answers stay as they are, whatever the client accepts.
	for _, r := range []response{
		env.do("POST", "/api/users/login", `{"email":"alice@example.com","password":"ecila-pw-1"}`, "Accept-Encoding: gzip"),
		env.offSpec().do("GET", "/api/nope", "", "Accept-Encoding: gzip"),
		env.do("POST", "/api/users/logout", "", "Authorization: "+env.login("alice@example.com", "ecila-pw-1"), "Accept-Encoding: gzip"),
		env.do("GET", "/healthz", "", "Accept-Encoding: gzip"),
	} {
		if r.header.Get("Content-Encoding") != "" || r.header.Get("Vary") != "" {
			t.Errorf("%d answer of %d bytes: %v", r.status, len(r.body), r.header)
		}
		if r.status == 204 && (r.body != "" || r.header.Get("Content-Length") != "") {
			t.Errorf("204: %q %v", r.body, r.header)
		}
	}

	// A list that grows past 1 KiB: GET and HEAD agree, gzipped.
	for range 8 {
		env.login("alice@example.com", "ecila-pw-1")
	}
	spath := fmt.Sprintf("/api/users/%d/sessions", id)
	sg := env.do("GET", spath, "", "Authorization: "+tok, "Accept-Encoding: gzip")
	sh := env.do("HEAD", spath, "", "Authorization: "+tok, "Accept-Encoding: gzip")
	if sg.status != 200 || sg.header.Get("Content-Encoding") != "gzip" || sh.status != 200 || sh.body != "" ||
		sh.header.Get("Content-Length") != sg.header.Get("Content-Length") || sh.header.Get("Content-Encoding") != "gzip" {
		t.Errorf("sessions: GET %d %v; HEAD %d %v %q", sg.status, sg.header, sh.status, sh.header, sh.body)
	}
}

// TestPagesNotCompressed: a page, however large, is sent as it is (BREACH:
// see render); the stylesheet is gzipped.
func TestPagesNotCompressed(t *testing.T) {
	t.Parallel()
	env := newEnv(t)
	for _, path := range []string{"/", "/login", "/signup", "/nope"} {
		r := env.do("GET", path, "", "Accept-Encoding: gzip")
		if r.header.Get("Content-Encoding") != "" || !bytes.Contains([]byte(r.body), []byte("<html")) {
			t.Errorf("GET %s: %v", path, r.header)
		}
	}
	r := env.do("GET", "/static/style.css", "", "Accept-Encoding: gzip")
	if r.header.Get("Content-Encoding") != "gzip" || r.header.Get("Content-Length") != strconv.Itoa(len(r.body)) {
		t.Errorf("style.css: %v", r.header)
	}
}
