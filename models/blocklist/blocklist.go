// Package blocklist knows the common passwords Latchkey refuses (SECURITY
// P6): a list derived from the zxcvbn-ts common password list (README.md
// says where it comes from and how to rebuild it) plus a few obvious ones
// added by hand in extra.txt. Both are embedded in the binary.
package blocklist

import (
	"bytes"
	"compress/gzip"
	_ "embed"
	"io"
	"slices"
	"strings"
	"sync"

	"golang.org/x/text/unicode/norm"
)

//go:embed common.txt.gz
var commonGz []byte

//go:embed extra.txt
var extraTxt string

// list is the decompressed data: blob holds the sorted entries one per line,
// starts[i] is where entry i begins. One string and one []uint32 (about
// 240 KiB for 18k entries) instead of a map or []string of small strings.
type list struct {
	blob   string
	starts []uint32
}

func (l *list) len() int { return len(l.starts) }

func (l *list) at(i int) string {
	end := len(l.blob)
	if i+1 < len(l.starts) {
		end = int(l.starts[i+1])
	}
	return strings.TrimSuffix(l.blob[l.starts[i]:end], "\n")
}

func (l *list) contains(key string) bool {
	_, found := slices.BinarySearchFunc(l.starts, key, func(start uint32, k string) int {
		e := l.blob[start:]
		if n := strings.IndexByte(e, '\n'); n >= 0 {
			e = e[:n]
		}
		return strings.Compare(e, k)
	})
	return found
}

// index wraps text that is already one key per line, sorted (what gen.go
// writes; TestEmbeddedList checks it), without copying it.
func index(text string) *list {
	l := &list{blob: text, starts: make([]uint32, 0, strings.Count(text, "\n"))}
	for i := 0; i < len(text); {
		l.starts = append(l.starts, uint32(i))
		n := strings.IndexByte(text[i:], '\n')
		if n < 0 {
			break
		}
		i += n + 1
	}
	return l
}

// parse builds a list from hand-written text: blank lines and # comments
// skipped, every entry in its Key form, sorted and deduplicated.
func parse(text string) *list {
	var keys []string
	for line := range strings.Lines(text) {
		line = strings.TrimSpace(line)
		if line != "" && !strings.HasPrefix(line, "#") {
			keys = append(keys, Key(line))
		}
	}
	slices.Sort(keys)
	keys = slices.Compact(keys)
	var b strings.Builder
	for _, k := range keys {
		b.WriteString(k)
		b.WriteByte('\n')
	}
	return index(b.String())
}

var (
	once          sync.Once
	common, extra *list
)

func load() {
	once.Do(func() { common, extra = decode() })
}

// decode decompresses and parses the embedded data.
func decode() (*list, *list) {
	zr, err := gzip.NewReader(bytes.NewReader(commonGz))
	if err != nil {
		panic("blocklist: embedded list: " + err.Error())
	}
	var b strings.Builder
	b.Grow(len(commonGz) * 3) // the list compresses about 2.7:1
	if _, err := io.Copy(&b, zr); err != nil {
		panic("blocklist: embedded list: " + err.Error())
	}
	return index(b.String()), parse(extraTxt)
}

// Load decompresses the list now instead of at the first check, so start-up
// can pay for it in the background.
func Load() { load() }

// Len is how many entries the list has (the embedded list and the extras).
func Len() int {
	load()
	return common.len() + extra.len()
}

// Key is the form entries are compared in: NFKC, lower-cased.
func Key(pw string) string { return strings.ToLower(norm.NFKC.String(pw)) }

// Contains reports whether pw is a common password, ignoring case, in its
// NFKC form.
func Contains(pw string) bool {
	load()
	k := Key(pw)
	return common.contains(k) || extra.contains(k)
}
