package boot_test

import (
	"net/http"
	"net/http/httptest"
	"slices"
	"testing"
	"time"
)

// BenchmarkLoginSlowWebhook: logins (each queues a session.created
// delivery) with no webhook, and with a receiver that takes 5 s to answer
// every delivery. The request only writes the outbox row; the worker's
// send waits for the receiver, so the two should not differ beyond noise.
// Numbers in BENCHMARKS.md.
//
//	go test ./boot -run '^$' -bench LoginSlowWebhook -benchtime 200x
func BenchmarkLoginSlowWebhook(b *testing.B) {
	for _, slow := range []bool{false, true} {
		name := "no-webhook"
		env := map[string]string{"LATCHKEY_LOGIN_LIMIT": "off"}
		if slow {
			name = "receiver-5s"
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				select {
				case <-time.After(5 * time.Second):
				case <-r.Context().Done():
				}
			}))
			b.Cleanup(srv.Close)
			env["LATCHKEY_WEBHOOK_URL"] = srv.URL
			env["LATCHKEY_WEBHOOK_SECRET"] = testWebhookSecret
		}
		b.Run(name, func(b *testing.B) {
			_, base := serveApp(b, env)
			if st, _ := request(b, "POST", base+"/api/users", `{"email":"dan@example.com","password":"dan-secret-1"}`); st != 200 {
				b.Fatalf("sign-up %d", st)
			}
			lat := make([]time.Duration, 0, b.N)
			b.ResetTimer()
			for range b.N {
				start := time.Now()
				if st, _ := request(b, "POST", base+"/api/users/login", `{"email":"dan@example.com","password":"dan-secret-1"}`); st != 200 {
					b.Fatalf("login %d", st)
				}
				lat = append(lat, time.Since(start))
			}
			b.StopTimer()
			slices.Sort(lat)
			b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "p50-ms")
			b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds())/1000, "p99-ms")
		})
	}
}
