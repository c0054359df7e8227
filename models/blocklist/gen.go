//go:build ignore

// gen builds common.txt from the zxcvbn-ts common password list (see
// README.md for the exact command): every entry NFKC-normalised and
// lower-cased, only those of at least -min characters (shorter ones are
// refused by the length rule anyway), deduplicated, sorted by bytes, one per
// line.
package main

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"log"
	"os"
	"slices"
	"strings"
	"unicode/utf8"

	"golang.org/x/text/unicode/norm"
)

func main() {
	in := flag.String("in", "", "passwords.json of @zxcvbn-ts/language-common")
	out := flag.String("out", "common.txt", "output file")
	minLen := flag.Int("min", 8, "shortest entry kept, in characters")
	flag.Parse()
	raw, err := os.ReadFile(*in)
	if err != nil {
		log.Fatal(err)
	}
	var list []string
	if err := json.Unmarshal(raw, &list); err != nil {
		log.Fatal(err)
	}
	var keep []string
	for _, pw := range list {
		k := strings.ToLower(norm.NFKC.String(pw))
		if utf8.RuneCountInString(k) >= *minLen && !strings.ContainsAny(k, "\n\r") {
			keep = append(keep, k)
		}
	}
	slices.Sort(keep)
	keep = slices.Compact(keep)
	var buf bytes.Buffer
	for _, k := range keep {
		fmt.Fprintln(&buf, k)
	}
	if err := os.WriteFile(*out, buf.Bytes(), 0o644); err != nil {
		log.Fatal(err)
	}
	log.Printf("%d of %d entries, %d bytes", len(keep), len(list), buf.Len())
}
