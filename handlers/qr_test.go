package handlers

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// TestQRSVGWholePixels: the QR code is square, at least qrMinPixels wide,
// with a whole number of pixels per module and no more than one module
// over, whatever the URI's length.
func TestQRSVGWholePixels(t *testing.T) {
	size := regexp.MustCompile(`viewBox="0 0 (\d+) (\d+)" width="(\d+)" height="(\d+)"`)
	for _, email := range []string{"a@b.co", "ann@example.com", strings.Repeat("long.address.", 8) + "@example-company.com"} {
		uri := fmt.Sprintf("otpauth://totp/Latchkey:%s?algorithm=SHA1&digits=6&issuer=Latchkey&period=30&secret=JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP", email)
		svg, err := qrSVG(uri)
		if err != nil {
			t.Fatal(err)
		}
		m := size.FindStringSubmatch(svg)
		if m == nil {
			t.Fatalf("no size in %.200s", svg)
		}
		n, _ := strconv.Atoi(m[1])
		w, _ := strconv.Atoi(m[3])
		if m[1] != m[2] || m[3] != m[4] || w < qrMinPixels || w%n != 0 || w-n >= qrMinPixels {
			t.Errorf("%s: viewBox %sx%s drawn %sx%s", email, m[1], m[2], m[3], m[4])
		}
	}
}
