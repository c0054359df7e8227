package rrproxy

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
)

// backend is a test server that answers "backend <i>", echoes the request
// body, and reports in headers what it was sent.
func backend(t *testing.T, i int) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		w.Header().Set("X-Seen-Host", r.Host)
		w.Header().Set("X-Seen-Path", r.URL.RequestURI())
		w.Header().Set("X-Seen-Test", r.Header.Get("X-Test"))
		w.Header().Set("X-Seen-Forwarded-For", r.Header.Get("X-Forwarded-For"))
		w.Header().Set("X-Seen-Forwarded-Host", r.Header.Get("X-Forwarded-Host"))
		w.Header().Set("Set-Cookie", "from=backend")
		w.WriteHeader(http.StatusTeapot)
		fmt.Fprintf(w, "backend %d: %s %s", i, r.Method, body)
	}))
	t.Cleanup(srv.Close)
	return srv
}

// start runs a proxy in front of n backends; it returns the proxy's URL
// and the backends.
func start(t *testing.T, n int) (string, []*httptest.Server) {
	t.Helper()
	var srvs []*httptest.Server
	var urls []string
	for i := range n {
		srvs = append(srvs, backend(t, i))
		urls = append(urls, srvs[i].URL)
	}
	return New(urls...).Start(t), srvs
}

func get(t *testing.T, url string) (*http.Response, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, string(body)
}

func TestRoundRobin(t *testing.T) {
	t.Parallel()
	url, _ := start(t, 3)
	for i := range 9 {
		resp, body := get(t, url+"/")
		want := i % 3
		if got := resp.Header.Get(BackendHeader); got != fmt.Sprint(want) {
			t.Fatalf("request %d: %s %q, want %d", i, BackendHeader, got, want)
		}
		if !strings.HasPrefix(body, fmt.Sprintf("backend %d:", want)) {
			t.Fatalf("request %d answered by %q, want backend %d", i, body, want)
		}
	}
}

func TestPassThrough(t *testing.T) {
	t.Parallel()
	url, _ := start(t, 1)
	req, err := http.NewRequest("POST", url+"/a/b?c=d", strings.NewReader("ping"))
	if err != nil {
		t.Fatal(err)
	}
	req.Host = "app.example:8443"
	req.Header.Set("X-Test", "kept")
	req.Header.Set("X-Forwarded-For", "203.0.113.9") // a client's claim, not to be trusted
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)

	if resp.StatusCode != http.StatusTeapot || string(body) != "backend 0: POST ping" {
		t.Fatalf("answer %d %q, want the backend's 418 and body", resp.StatusCode, body)
	}
	for header, want := range map[string]string{
		"X-Seen-Host":           "app.example:8443",
		"X-Seen-Path":           "/a/b?c=d",
		"X-Seen-Test":           "kept",
		"X-Seen-Forwarded-For":  "127.0.0.1",
		"X-Seen-Forwarded-Host": "app.example:8443",
		"Set-Cookie":            "from=backend",
	} {
		if got := resp.Header.Get(header); got != want {
			t.Errorf("%s: %q, want %q", header, got, want)
		}
	}
}

// TestBackendDown: a request routed to a stopped backend gets 502 and is
// not retried elsewhere; the next goes to the next backend.
func TestBackendDown(t *testing.T) {
	t.Parallel()
	url, srvs := start(t, 2)
	srvs[0].Close()

	resp, _ := get(t, url+"/")
	if resp.StatusCode != http.StatusBadGateway || resp.Header.Get(BackendHeader) != "0" {
		t.Fatalf("to the stopped backend: %d from %q, want 502 from 0", resp.StatusCode, resp.Header.Get(BackendHeader))
	}
	resp, _ = get(t, url+"/")
	if resp.StatusCode != http.StatusTeapot || resp.Header.Get(BackendHeader) != "1" {
		t.Fatalf("next request: %d from %q, want 418 from 1", resp.StatusCode, resp.Header.Get(BackendHeader))
	}
}

// TestConcurrent: requests in parallel still split evenly.
func TestConcurrent(t *testing.T) {
	t.Parallel()
	url, _ := start(t, 3)
	var (
		wg     sync.WaitGroup
		mu     sync.Mutex
		counts = map[string]int{}
	)
	for range 30 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			resp, err := http.Get(url + "/")
			if err != nil {
				t.Error(err)
				return
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			mu.Lock()
			counts[resp.Header.Get(BackendHeader)]++
			mu.Unlock()
		}()
	}
	wg.Wait()
	if counts["0"] != 10 || counts["1"] != 10 || counts["2"] != 10 {
		t.Fatalf("requests per backend: %v, want 10 each", counts)
	}
}

func TestNewPanics(t *testing.T) {
	for _, backends := range [][]string{nil, {"127.0.0.1:8080"}, {"http://"}} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("New(%q) did not panic", backends)
				}
			}()
			New(backends...)
		}()
	}
}

// TestStartOn: the proxy serves on a listener opened before its backends
// were known, at that listener's address.
func TestStartOn(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	want := "http://" + ln.Addr().String()
	got := New(backend(t, 0).URL, backend(t, 1).URL).StartOn(t, ln)
	if got != want {
		t.Fatalf("StartOn returned %q, want %q", got, want)
	}
	for i := range 2 {
		resp, err := http.Get(got + "/x")
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if b := resp.Header.Get(BackendHeader); b != fmt.Sprint(i) || !strings.HasPrefix(string(body), "backend "+b) {
			t.Fatalf("request %d: backend %q, body %q", i, b, body)
		}
	}
}
