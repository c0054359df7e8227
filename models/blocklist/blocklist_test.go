package blocklist

import (
	"strings"
	"testing"
	"unicode/utf8"
)

func TestContains(t *testing.T) {
	for _, pw := range []string{
		"password1234", "123456789012", // SECURITY P6's examples
		"PASSWORD1234", "Password1234", // case is ignored
		"ｐａｓｓｗｏｒｄ１２３４",                       // fullwidth: NFKC folds it to ASCII
		"qwertyuiop", "iloveyou", "trustno1", // from the embedded list
		"!qaz2wsx", "zzzzzzz1", // its first and last entries
		"aaaaaaaa", "0123456789", "Password1!", // from extra.txt
	} {
		if !Contains(pw) {
			t.Errorf("Contains(%q) = false, want true", pw)
		}
	}
	for _, pw := range []string{
		"", "correcthorsebatterystaple-latchkey", "glowing rivers under quiet hills",
		"password123 ", "password12345678", // near misses are not on the list
		"!", "~~~~~~~~~~~~", "\n", "password1234\nqwertyuiop", // before, after, and between lines
	} {
		if Contains(pw) {
			t.Errorf("Contains(%q) = true, want false", pw)
		}
	}
}

// TestEmbeddedList checks the shape the search relies on: sorted, unique,
// in Key form, every entry at least 8 characters, and that the search finds
// every entry.
func TestEmbeddedList(t *testing.T) {
	if !strings.HasSuffix(common, "\n") {
		t.Fatal("common.txt does not end in a newline")
	}
	entries := strings.Split(strings.TrimSuffix(common, "\n"), "\n")
	if n := len(entries); n < 10000 || n > 100000 {
		t.Fatalf("embedded list has %d entries, want 10k–100k", n)
	}
	prev := ""
	for i, e := range entries {
		if e <= prev {
			t.Fatalf("entry %d %q not after %q", i, e, prev)
		}
		if e != Key(e) || strings.TrimSpace(e) != e {
			t.Errorf("entry %q is not in its key form", e)
		}
		if utf8.RuneCountInString(e) < 8 {
			t.Errorf("entry %q is shorter than 8 characters", e)
		}
		if !search(common, e) {
			t.Errorf("search misses %q", e)
		}
		prev = e
	}
	for e := range extra {
		if utf8.RuneCountInString(e) < 8 {
			t.Errorf("extra.txt: %q is shorter than 8 characters", e)
		}
		if search(common, e) {
			t.Errorf("extra.txt: %q is already in common.txt", e)
		}
	}
	if Len() != len(entries)+len(extra) {
		t.Fatal("Len disagrees")
	}
}

func BenchmarkContains(b *testing.B) {
	for b.Loop() {
		Contains("a-long-and-unusual-passphrase")
	}
}
