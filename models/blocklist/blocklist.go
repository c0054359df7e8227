// Package blocklist knows the common passwords Latchkey refuses (SECURITY
// P6): a list derived from the zxcvbn-ts common password list (README.md
// says where it comes from and how to rebuild it) plus a few obvious ones
// added by hand in extra.txt. Both are embedded in the binary.
//
// The list is embedded as plain sorted text and searched where it lies:
// no decompression, no index, nothing on the heap. Measured against a
// gzipped copy decompressed at start-up, this costs 42 KB more binary
// (the gzip variant needs the decompressor and an index) and half the idle
// memory; README.md has the figures.
package blocklist

import (
	_ "embed"
	"strings"

	"golang.org/x/text/unicode/norm"
)

// common is one entry per line, each in Key form, sorted by bytes, each line
// ending in "\n" (gen.go writes it; TestEmbeddedList checks it).
//
//go:embed common.txt
var common string

//go:embed extra.txt
var extraTxt string

// extra is extra.txt in Key form: blank lines and # comments skipped.
var extra = func() map[string]bool {
	m := map[string]bool{}
	for line := range strings.Lines(extraTxt) {
		if line = strings.TrimSpace(line); line != "" && !strings.HasPrefix(line, "#") {
			m[Key(line)] = true
		}
	}
	return m
}()

// Key is the form entries are compared in: NFKC, lower-cased.
func Key(pw string) string { return strings.ToLower(norm.NFKC.String(pw)) }

// Contains reports whether pw is a common password, ignoring case, in its
// NFKC form.
func Contains(pw string) bool {
	k := Key(pw)
	return search(common, k) || extra[k]
}

// Len is how many entries there are (the embedded list and the extras).
func Len() int { return strings.Count(common, "\n") + len(extra) }

// search is a binary search over sorted lines: lo and hi stay at line
// starts; each step compares the line around the middle byte.
func search(lines, key string) bool {
	lo, hi := 0, len(lines)
	for lo < hi {
		mid := lo + (hi-lo)/2
		start := strings.LastIndexByte(lines[:mid], '\n') + 1
		end := start + strings.IndexByte(lines[start:], '\n')
		switch c := strings.Compare(lines[start:end], key); {
		case c == 0:
			return true
		case c < 0:
			lo = end + 1
		default:
			hi = start
		}
	}
	return false
}
