package e2e

// Load safety (issue 5, item 6): well past the login rate the machine can
// hash, the server must shed load on purpose (503 + Retry-After from the
// bounded hashing queue, or 429 from the throttle), never fail (5xx,
// SQLITE_BUSY), keep serving authenticated reads, keep its memory bounded,
// and be healthy the moment the storm ends. The test asserts behaviour, not
// speed: on a slow, shared machine it sheds more and still passes.

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// loadCounts tallies answers per request kind and status.
type loadCounts struct {
	mu     sync.Mutex
	status map[string]map[int]int // kind → status → count
	errs   map[string]int         // kind → transport errors
	bad    []string               // answers that break the rules
}

func (c *loadCounts) add(kind string, status int, problem string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.status == nil {
		c.status, c.errs = map[string]map[int]int{}, map[string]int{}
	}
	if c.status[kind] == nil {
		c.status[kind] = map[int]int{}
	}
	c.status[kind][status]++
	if problem != "" && len(c.bad) < 20 {
		c.bad = append(c.bad, problem)
	}
}

func (c *loadCounts) addErr(kind string, err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.errs == nil {
		c.status, c.errs = map[string]map[int]int{}, map[string]int{}
	}
	c.errs[kind]++
	if len(c.bad) < 20 {
		c.bad = append(c.bad, kind+": "+err.Error())
	}
}

func (c *loadCounts) String() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	var parts []string
	for _, kind := range []string{"login", "get"} {
		var codes []int
		for s := range c.status[kind] {
			codes = append(codes, s)
		}
		sort.Ints(codes)
		var cs []string
		for _, s := range codes {
			cs = append(cs, fmt.Sprintf("%d×%d", s, c.status[kind][s]))
		}
		parts = append(parts, fmt.Sprintf("%s: %s, transport errors %d", kind, strings.Join(cs, " "), c.errs[kind]))
	}
	return strings.Join(parts, "; ")
}

// loadMaxRSS bounds the server's peak resident memory under the storm.
// Measured here: 35–40 MiB. The budget: the binary sets a 96 MiB soft
// limit on the Go heap (GOMEMLIMIT, boot.tuneGC; the live heap under this
// load is a few MiB, GOGC=300 lets it grow 4× between collections), and
// outside the Go heap sit the binary's text, goroutine stacks of ~160
// connections, and SQLite's page caches (modernc's own allocator, up to
// 2 MiB for each of the writer and the 2×GOMAXPROCS readers). 150 MiB is
// the soft limit plus ~50 MiB for the rest: far above noise, far below
// what an unbounded queue of waiting logins or a leak under load reaches.
const loadMaxRSS = 150 << 20

// TestLoadSafety drives 96 concurrent clients doing correct logins (more
// than the hashing workers plus their queue of 64 can hold, so the queue
// overflows: the offered login rate is far above 2× what the CPUs can hash)
// and 32 doing authenticated GETs, for 5 s, against the real binary at
// bcrypt cost 10.
func TestLoadSafety(t *testing.T) {
	if testing.Short() {
		t.Skip("drives the real binary at overload for several seconds")
	}
	const (
		loginClients = 96
		getClients   = 32
		accounts     = 24 // 4 login clients per account: under the per-account limit on logins in flight
		storm        = 5 * time.Second
	)
	bin := lkpBinary(t)
	p := lkpStart(t, bin, map[string]string{
		"LATCHKEY_DB":          filepath.Join(t.TempDir(), "data", "latchkey.db"),
		"LATCHKEY_BCRYPT_COST": "10",
		"LATCHKEY_SMTP_HOST":   "127.0.0.1",
		"LATCHKEY_SMTP_PORT":   strconv.Itoa(lkpFreePort(t)),
		// The clients stand for many people behind a proxy: each sends its
		// own X-Forwarded-For, so the per-IP login limit (on, as shipped)
		// sees distinct clients and the overload reaches the hashing queue,
		// whose answer (503) is what this test is about.
		"LATCHKEY_TRUSTED_PROXIES": "127.0.0.1",
	})
	ctx := context.Background()
	client := lkpClient(loginClients + getClients)
	defer client.CloseIdleConnections()

	// Accounts, each with a live token for the readers.
	type account struct {
		id              int64
		email, password string
		token           string
	}
	accts := make([]account, accounts)
	var setup sync.WaitGroup
	setupErr := make(chan error, accounts)
	for i := range accts {
		setup.Add(1)
		go func() {
			defer setup.Done()
			a := &accts[i]
			a.email, a.password = fmt.Sprintf("load-%d-%s@example.com", i, lkpRandom(3)), "pw-"+lkpRandom(8)
			xff := []string{"X-Forwarded-For", fmt.Sprintf("198.51.100.%d", i)}
			status, _, b, err := lkpCall(ctx, client, http.MethodPost, p.Base+"/api/users", "", map[string]string{"email": a.email, "password": a.password}, xff...)
			if err != nil || status != http.StatusOK {
				setupErr <- fmt.Errorf("sign-up: %d %s %v", status, b, err)
				return
			}
			for attempt := 0; ; attempt++ {
				status, _, b, err = lkpCall(ctx, client, http.MethodPost, p.Base+"/api/users/login", "", map[string]string{"email": a.email, "password": a.password}, xff...)
				if err == nil && status == http.StatusOK {
					break
				}
				if attempt == 5 {
					setupErr <- fmt.Errorf("login: %d %s %v", status, b, err)
					return
				}
				time.Sleep(200 * time.Millisecond)
			}
			var tok struct {
				ID     string `json:"id"`
				UserID int64  `json:"userId"`
			}
			if err := json.Unmarshal(b, &tok); err != nil {
				setupErr <- err
				return
			}
			a.id, a.token = tok.UserID, tok.ID
		}()
	}
	setup.Wait()
	close(setupErr)
	for err := range setupErr {
		t.Fatalf("setup: %v", err)
	}

	var counts loadCounts
	stormCtx, stop := context.WithTimeout(ctx, storm)
	defer stop()
	var wg sync.WaitGroup
	var logins atomic.Int64
	for w := 0; w < loginClients; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			a := accts[w%accounts]
			xff := []string{"X-Forwarded-For", fmt.Sprintf("203.0.113.%d", w)}
			for stormCtx.Err() == nil {
				status, h, b, err := lkpCall(stormCtx, client, http.MethodPost, p.Base+"/api/users/login", "", map[string]string{"email": a.email, "password": a.password}, xff...)
				if err != nil {
					if stormCtx.Err() == nil {
						counts.addErr("login", err)
					}
					continue
				}
				logins.Add(1)
				problem := ""
				switch {
				case status == http.StatusOK:
				case status == http.StatusServiceUnavailable || status == http.StatusTooManyRequests:
					if h.Get("Retry-After") == "" {
						problem = fmt.Sprintf("login %d without Retry-After: %s", status, b)
					}
					// A client that honours Retry-After waits; this one only
					// pauses briefly to keep the pressure on.
					time.Sleep(10 * time.Millisecond)
				default:
					problem = fmt.Sprintf("login → %d %s", status, b)
				}
				counts.add("login", status, problem)
			}
		}()
	}
	for w := 0; w < getClients; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			a := accts[w%accounts]
			for stormCtx.Err() == nil {
				status, _, b, err := lkpCall(stormCtx, client, http.MethodGet, p.Base+"/api/users/"+strconv.FormatInt(a.id, 10), a.token, nil)
				if err != nil {
					if stormCtx.Err() == nil {
						counts.addErr("get", err)
					}
					continue
				}
				problem := ""
				if status != http.StatusOK {
					problem = fmt.Sprintf("authenticated GET → %d %s", status, b)
				}
				counts.add("get", status, problem)
			}
		}()
	}
	wg.Wait()

	// Right after the storm: healthy at once.
	hctx, hcancel := context.WithTimeout(ctx, 5*time.Second)
	start := time.Now()
	hstatus, _, _, herr := lkpCall(hctx, client, http.MethodGet, p.Base+"/healthz", "", nil)
	healthTook := time.Since(start)
	hcancel()
	rss, rssErr := p.PeakRSS()
	stopErr := p.Stop()
	logText := p.Log.String()

	t.Logf("storm of %v: %d login answers; %s", storm, logins.Load(), counts.String())
	t.Logf("peak RSS (VmHWM) %.1f MiB; /healthz after the storm: %d in %v", float64(rss)/(1<<20), hstatus, healthTook.Round(time.Millisecond))

	if len(counts.bad) > 0 {
		t.Errorf("answers outside the rules (no 5xx but 503 + Retry-After, GETs all 200):\n%s", strings.Join(counts.bad, "\n"))
	}
	counts.mu.Lock()
	ok200 := counts.status["login"][http.StatusOK]
	gets := counts.status["get"][http.StatusOK]
	counts.mu.Unlock()
	if ok200 == 0 {
		t.Errorf("no login succeeded during the storm: the server made no progress")
	}
	if gets == 0 {
		t.Errorf("no authenticated GET succeeded during the storm")
	}
	shed := 0
	for _, line := range strings.Split(logText, "\n") {
		for _, bad := range []string{"SQLITE_BUSY", "database is locked", "panic", "level=ERROR"} {
			if !strings.Contains(line, bad) {
				continue
			}
			if bad == "level=ERROR" && strings.Contains(line, "status=503") {
				// The deliberate 503 is logged at error level today; it is
				// load shedding, not a failure (see the report on issue 5).
				shed++
				continue
			}
			t.Errorf("server log has %q: %s", bad, line)
		}
	}
	if shed > 0 {
		t.Logf("%d log lines at level=ERROR for deliberate 503s", shed)
	}
	switch {
	case rssErr != nil:
		t.Errorf("reading VmHWM: %v", rssErr)
	case rss > loadMaxRSS:
		t.Errorf("peak RSS %.1f MiB above the %d MiB bound", float64(rss)/(1<<20), loadMaxRSS>>20)
	}
	if herr != nil || hstatus != http.StatusOK {
		t.Errorf("/healthz after the storm: %d %v", hstatus, herr)
	}
	if stopErr != nil {
		t.Errorf("clean stop after the storm: %v", stopErr)
	}
}
