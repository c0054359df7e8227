package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"
	"time"
)

// invalidation is the cost of a logout seen by the other replicas on
// PostgreSQL, measured with one request at a time (latency, not
// throughput). For each spare token: every other replica reads the user
// with it (200, so the token sits in their caches), replica 0 logs it out
// (timed: the logout returns once every other replica with a connected
// change feed has acknowledged), then every other replica is asked again at
// once and must answer 401. A 200 there is a miss: a replica that still
// trusted a token already logged out. With one replica, replica 0 itself
// is asked again.
type invalidation struct {
	replicas int
	logouts  []time.Duration
	checks   int // GETs after a logout
	misses   int // of those, answered 200
	errs     int // unexpected answers elsewhere (a warm-up GET not 200, a logout not 204)
}

func runInvalidation(ctx context.Context, replicas []*server, tokens []loadUser) (invalidation, error) {
	client := &http.Client{Timeout: 10 * time.Second}
	do := func(method, addr string, u loadUser) (int, time.Duration, error) {
		path := "/api/users/" + strconv.FormatInt(u.ID, 10)
		if method == http.MethodPost {
			path = "/api/users/logout"
		}
		req, err := http.NewRequestWithContext(ctx, method, "http://"+addr+path, nil)
		if err != nil {
			return 0, 0, err
		}
		req.Header.Set("Authorization", u.Token)
		t0 := time.Now()
		resp, err := client.Do(req)
		if err != nil {
			return 0, 0, err
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp.StatusCode, time.Since(t0), nil
	}
	inv := invalidation{replicas: len(replicas)}
	others := replicas[1:]
	if len(others) == 0 {
		others = replicas
	}
	for _, u := range tokens {
		for _, r := range others {
			code, _, err := do(http.MethodGet, r.addr, u)
			if err != nil {
				return inv, err
			}
			if code != http.StatusOK {
				inv.errs++
			}
		}
		code, d, err := do(http.MethodPost, replicas[0].addr, u)
		if err != nil {
			return inv, err
		}
		if code != http.StatusNoContent {
			inv.errs++
		}
		inv.logouts = append(inv.logouts, d)
		for _, r := range others {
			code, _, err := do(http.MethodGet, r.addr, u)
			if err != nil {
				return inv, err
			}
			inv.checks++
			if code != http.StatusUnauthorized {
				inv.misses++
			}
		}
	}
	return inv, nil
}

func (inv invalidation) String() string {
	return fmt.Sprintf("%d replica(s): %d logouts, p50 %s, p99 %s, max %s; %d GETs on %s right after, %d answered 200 (misses); %d other unexpected answers",
		inv.replicas, len(inv.logouts), ms(percentile(inv.logouts, 50)), ms(percentile(inv.logouts, 99)), ms(percentile(inv.logouts, 100)),
		inv.checks, map[bool]string{true: "the same replica", false: "the other replicas"}[inv.replicas == 1], inv.misses, inv.errs)
}

// percentile is the p-th percentile (nearest rank) of ds.
func percentile(ds []time.Duration, p int) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := append([]time.Duration(nil), ds...)
	slices.Sort(s)
	i := (p*len(s) + 99) / 100
	return s[max(0, min(len(s)-1, i-1))]
}
