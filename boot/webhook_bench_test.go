package boot_test

import (
	"net/http"
	"net/http/httptest"
	"slices"
	"testing"
	"time"
)

// BenchmarkLoginSlowWebhook: logins (each queues a session.created
// delivery) against two servers side by side, one with no webhook and one
// whose receiver takes 5 s to answer every delivery, interleaved in one
// loop (the order swapped every iteration) so the machine's drift weighs
// on both alike. The request only writes the outbox row; the send is the
// webhook worker's, so the ratio of medians should be 1 within noise. It
// reports each server's p50 and p99 and p50-ratio (slow / none). Numbers
// in BENCHMARKS.md; no test asserts on timing.
//
//	go test ./boot -run '^$' -bench LoginSlowWebhook -benchtime 200x
func BenchmarkLoginSlowWebhook(b *testing.B) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-time.After(5 * time.Second):
		case <-r.Context().Done():
		}
	}))
	b.Cleanup(srv.Close)
	_, none := serveApp(b, map[string]string{"LATCHKEY_LOGIN_LIMIT": "off"})
	_, slow := serveApp(b, map[string]string{"LATCHKEY_LOGIN_LIMIT": "off",
		"LATCHKEY_WEBHOOK_URL": srv.URL, "LATCHKEY_WEBHOOK_SECRET": testWebhookSecret})
	bases := []string{none, slow}
	for _, base := range bases {
		if st, _ := request(b, "POST", base+"/api/users", `{"email":"dan@example.com","password":"dan-secret-1"}`); st != 200 {
			b.Fatalf("sign-up %d", st)
		}
	}
	lat := [2][]time.Duration{make([]time.Duration, 0, b.N), make([]time.Duration, 0, b.N)}
	b.ResetTimer()
	for i := range b.N {
		for k := range 2 {
			which := (i + k) % 2
			start := time.Now()
			if st, _ := request(b, "POST", bases[which]+"/api/users/login", `{"email":"dan@example.com","password":"dan-secret-1"}`); st != 200 {
				b.Fatalf("login %d", st)
			}
			lat[which] = append(lat[which], time.Since(start))
		}
	}
	b.StopTimer()
	ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
	var p50 [2]time.Duration
	for w, name := range []string{"none", "slow"} {
		slices.Sort(lat[w])
		p50[w] = lat[w][len(lat[w])/2]
		b.ReportMetric(ms(p50[w]), name+"-p50-ms")
		b.ReportMetric(ms(lat[w][len(lat[w])*99/100]), name+"-p99-ms")
	}
	b.ReportMetric(float64(p50[1])/float64(p50[0]), "p50-ratio")
}
