package boot_test

import (
	"bufio"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"regexp"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/latchkey/latchkey/boot"
	"github.com/latchkey/latchkey/internal/metrics/metricstest"
	"github.com/latchkey/latchkey/internal/testkit"
)

var metricsLineRE = regexp.MustCompile(`msg="metrics listening" addr=(http://\S+/metrics)`)

// metricsURL waits for the app's "metrics listening" line and returns its
// address.
func metricsURL(t *testing.T, logs *testkit.SyncBuffer) string {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		if m := metricsLineRE.FindStringSubmatch(logs.String()); m != nil {
			return m[1]
		}
	}
	t.Fatalf("no metrics listener in the log:\n%s", logs.String())
	return ""
}

func scrapeNow(t *testing.T, u string) metricstest.Scrape {
	t.Helper()
	s, err := metricstest.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// delta is how much name{match} moved from before to after; a series
// missing in after fails the test.
func delta(t *testing.T, before, after metricstest.Scrape, name string, match ...string) float64 {
	t.Helper()
	a, ok := after.Value(name, match...)
	if !ok {
		t.Fatalf("no single series %s%v in the scrape", name, match)
	}
	b, _ := before.Value(name, match...)
	return a - b
}

// pageLogin logs in through the login page (GET for the CSRF token, POST
// the form) and returns the status of the POST.
func pageLogin(t *testing.T, base, login, password string) int {
	t.Helper()
	jar, _ := cookiejar.New(nil)
	c := &http.Client{Jar: jar, Timeout: 10 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	res, err := c.Get(base + "/login")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	m := regexp.MustCompile(`name="_csrf" value="([^"]+)"`).FindSubmatch(body)
	if m == nil {
		t.Fatalf("no CSRF field on /login (%d)", res.StatusCode)
	}
	res, err = c.PostForm(base+"/login", url.Values{"_csrf": {string(m[1])}, "email": {login}, "password": {password}})
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, res.Body)
	res.Body.Close()
	return res.StatusCode
}

// TestMetricsScrape runs the whole program with LATCHKEY_METRICS_ADDR and
// scrapes it before and after known traffic, parsing both with expfmt:
// three successful logins (API and login page), three failed ones (an
// unknown address, wrong passwords on both), one throttled: the login
// counters move by exactly that; reads of /api/users/1 are filed under the
// route /api/users/:id (and a path no route serves under "unmatched"),
// never the raw path; the outbox gauge says what /healthz says; the Go and
// process collectors are there; the public port has no /metrics.
func TestMetricsScrape(t *testing.T) {
	t.Parallel()
	base, logs, stop := startApp(t, map[string]string{
		"LATCHKEY_METRICS_ADDR":              "127.0.0.1:0",
		"LATCHKEY_LOGIN_LIMIT_FREE_FAILURES": "1",
		"LATCHKEY_LOGIN_LIMIT_DELAY":         "1m",
	})
	mu := metricsURL(t, logs)
	if st, _, body := call(t, "POST", base+"/api/users", `{"email":"mia@example.com","password":"mia-secret-1","username":"mia"}`); st != 200 {
		t.Fatalf("create %d %s", st, body)
	}
	before := scrapeNow(t, mu)

	// 3 successes: 2 by the API (by email, by username), 1 by the page.
	var token string
	for _, body := range []string{`{"email":"mia@example.com","password":"mia-secret-1"}`, `{"username":"mia","password":"mia-secret-1"}`} {
		st, tok, raw := call(t, "POST", base+"/api/users/login", body)
		if st != 200 {
			t.Fatalf("login %d %s", st, raw)
		}
		token = tok["id"].(string)
	}
	if st := pageLogin(t, base, "mia@example.com", "mia-secret-1"); st != http.StatusSeeOther {
		t.Fatalf("page login %d", st)
	}
	// 3 failures: an unknown address, then two of mia's (the free one and
	// the one that starts the delay; API, page): the next try is throttled.
	if st, _, _ := call(t, "POST", base+"/api/users/login", `{"email":"nobody@example.com","password":"mia-secret-1"}`); st != 401 {
		t.Fatalf("unknown address %d", st)
	}
	if st, _, _ := call(t, "POST", base+"/api/users/login", `{"email":"mia@example.com","password":"wrong-pw-1"}`); st != 401 {
		t.Fatalf("wrong password %d", st)
	}
	if st := pageLogin(t, base, "mia", "wrong-pw-2"); st != http.StatusUnauthorized {
		t.Fatalf("wrong password on the page %d", st)
	}
	if st, _, body := call(t, "POST", base+"/api/users/login", `{"email":"mia@example.com","password":"mia-secret-1"}`); st != 429 {
		t.Fatalf("throttled login %d %s", st, body)
	}
	// Not login outcomes: a request without an identifier.
	if st, _, _ := call(t, "POST", base+"/api/users/login", `{"password":"x"}`); st != 400 {
		t.Fatalf("no identifier %d", st)
	}

	const reads = 5
	for range reads {
		if st, _, body := call(t, "GET", base+"/api/users/1", "", "Authorization", token); st != 200 {
			t.Fatalf("get %d %s", st, body)
		}
	}
	if st, _, _ := call(t, "GET", base+"/no/such/path/12345", ""); st != 404 {
		t.Fatalf("unknown path %d", st)
	}
	if st, _, body := call(t, "POST", base+"/api/users/reset", `{"email":"mia@example.com"}`); st != 204 {
		t.Fatalf("reset %d %s", st, body)
	}
	after := scrapeNow(t, mu)

	for result, want := range map[string]float64{"success": 3, "failure": 3, "throttled": 1} {
		if d := delta(t, before, after, "latchkey_logins_total", "result="+result); d != want {
			t.Errorf("latchkey_logins_total{result=%q} moved by %v, want %v", result, d, want)
		}
	}
	if d := delta(t, before, after, "latchkey_http_request_duration_seconds", "route=/api/users/:id", "method=GET", "code=200"); d != reads {
		t.Errorf("GET /api/users/:id 200 observed %v times, want %d", d, reads)
	}
	if d := delta(t, before, after, "latchkey_http_request_duration_seconds", "route=/api/users/login", "method=POST", "code=429"); d != 1 {
		t.Errorf("the throttled login observed %v times", d)
	}
	if d := delta(t, before, after, "latchkey_http_request_duration_seconds", "route=unmatched", "method=GET", "code=404"); d != 1 {
		t.Errorf("the unknown path observed %v times under unmatched", d)
	}
	for k := range after.Series("latchkey_http_request_duration_seconds") {
		if strings.Contains(k, "/api/users/1") || strings.Contains(k, "12345") || strings.Contains(k, "/no/such") {
			t.Errorf("a raw path in a label: %s", k)
		}
	}
	if d := delta(t, before, after, "latchkey_auth_cache_hits_total"); d < reads-1 {
		t.Errorf("%d authenticated reads made %v cache hits", reads, d)
	}
	if _, ok := after.Value("latchkey_auth_cache_misses_total"); !ok {
		t.Error("no latchkey_auth_cache_misses_total")
	}
	if v, ok := after.Value("latchkey_hash_queue_depth"); !ok || v != 0 {
		t.Errorf("latchkey_hash_queue_depth at rest = %v (%v)", v, ok)
	}
	for _, name := range []string{"go_goroutines", "go_gc_duration_seconds", "process_cpu_seconds_total", "process_resident_memory_bytes", "process_open_fds"} {
		if runtime.GOOS != "linux" && strings.HasPrefix(name, "process_") {
			continue
		}
		if after[name] == nil {
			t.Errorf("no %s", name)
		}
	}

	// The outbox gauge against /healthz, read after it: the reset mail and
	// its notice wait (SMTP is down); pending + retrying is /healthz's
	// pending whichever attempt the worker is at.
	outbox := scrapeNow(t, mu)
	_, health, body := call(t, "GET", base+"/healthz", "")
	mail, _ := health["mail"].(map[string]any)
	if mail == nil {
		t.Fatalf("no mail in /healthz: %s", body)
	}
	pending := outbox.Sum("latchkey_mail_outbox", "state=pending") + outbox.Sum("latchkey_mail_outbox", "state=retrying")
	dead, _ := outbox.Value("latchkey_mail_outbox", "state=dead")
	if pending != mail["pending"] || dead != mail["dead"] || pending == 0 {
		t.Errorf("latchkey_mail_outbox pending+retrying %v, dead %v; /healthz %s", pending, dead, body)
	}

	if st, _, _ := call(t, "GET", base+"/metrics", ""); st != 404 {
		t.Errorf("/metrics on the public port: %d, want 404", st)
	}
	if st, _, _ := call(t, "GET", strings.TrimSuffix(mu, "/metrics")+"/api/users/1", "", "Authorization", token); st != 404 {
		t.Errorf("the API on the metrics port: %d, want 404", st)
	}
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	if _, err := http.Get(mu); err == nil {
		t.Error("the metrics listener outlived the server")
	}
}

// TestMetricsOffListensNowhere: without LATCHKEY_METRICS_ADDR the program
// opens exactly one listening socket, the app's; with it, exactly two.
// Not parallel: it counts this process's listening sockets.
func TestMetricsOffListensNowhere(t *testing.T) {
	if _, err := os.Stat("/proc/self/net/tcp"); err != nil {
		t.Skip("needs Linux /proc")
	}
	for _, tc := range []struct {
		addr string
		want int
	}{{"", 1}, {"127.0.0.1:0", 2}} {
		before := listeningSockets(t)
		_, logs, stop := startApp(t, map[string]string{"LATCHKEY_METRICS_ADDR": tc.addr})
		got := listeningSockets(t) - before
		if err := stop(); err != nil {
			t.Fatal(err)
		}
		if got != tc.want {
			t.Errorf("LATCHKEY_METRICS_ADDR=%q: %d new listening sockets, want %d", tc.addr, got, tc.want)
		}
		if on := strings.Contains(logs.String(), "metrics listening"); on != (tc.addr != "") {
			t.Errorf("LATCHKEY_METRICS_ADDR=%q: metrics listening logged: %v", tc.addr, on)
		}
		if after := listeningSockets(t); after != before {
			t.Errorf("LATCHKEY_METRICS_ADDR=%q: %d listening sockets after the stop, %d before", tc.addr, after, before)
		}
	}
}

// listeningSockets counts the TCP sockets in LISTEN state that this
// process holds open.
func listeningSockets(t *testing.T) int {
	t.Helper()
	mine := map[string]bool{}
	fds, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	for _, fd := range fds {
		if l, err := os.Readlink("/proc/self/fd/" + fd.Name()); err == nil && strings.HasPrefix(l, "socket:[") {
			mine[strings.TrimSuffix(strings.TrimPrefix(l, "socket:["), "]")] = true
		}
	}
	n := 0
	for _, table := range []string{"/proc/self/net/tcp", "/proc/self/net/tcp6"} {
		f, err := os.Open(table)
		if err != nil {
			continue
		}
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			// sl local rem st tx:rx tr:when retr uid timeout inode
			fields := strings.Fields(sc.Text())
			if len(fields) > 9 && fields[3] == "0A" && mine[fields[9]] {
				n++
			}
		}
		f.Close()
	}
	return n
}

// TestMetricsAddrSetting: empty is off, host:port is taken, anything else
// stops start-up naming the setting; the same port as the app's cannot be
// opened twice, so /metrics can never share the public listener.
func TestMetricsAddrSetting(t *testing.T) {
	t.Parallel()
	env := func(v string) func(string) string {
		return func(k string) string {
			if k == "LATCHKEY_METRICS_ADDR" {
				return v
			}
			return ""
		}
	}
	if c, err := boot.LoadConfig(nil, env(""), io.Discard); err != nil || c.MetricsAddr != "" {
		t.Fatalf("default: %q %v", c.MetricsAddr, err)
	}
	if c, err := boot.LoadConfig(nil, env("127.0.0.1:9464"), io.Discard); err != nil || c.MetricsAddr != "127.0.0.1:9464" {
		t.Fatalf("set: %q %v", c.MetricsAddr, err)
	}
	if _, err := boot.LoadConfig(nil, env("9464"), io.Discard); err == nil || !strings.Contains(err.Error(), "LATCHKEY_METRICS_ADDR") {
		t.Fatalf("a bad address: %v", err)
	}
	if c, err := boot.LoadConfig([]string{"-metrics-addr", ""}, env("127.0.0.1:9464"), io.Discard); err != nil || c.MetricsAddr != "" {
		t.Fatalf("the flag turns it off: %q %v", c.MetricsAddr, err)
	}
}
