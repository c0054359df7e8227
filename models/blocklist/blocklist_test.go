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
		"aaaaaaaa", "0123456789", "Password1!", // from extra.txt
	} {
		if !Contains(pw) {
			t.Errorf("Contains(%q) = false, want true", pw)
		}
	}
	for _, pw := range []string{
		"", "correcthorsebatterystaple-latchkey", "glowing rivers under quiet hills",
		"password123 ", "password12345678", // near misses are not on the list
		"zzzzzzzzzzzzzzzzzzzz",
	} {
		if Contains(pw) {
			t.Errorf("Contains(%q) = true, want false", pw)
		}
	}
}

// TestEmbeddedList checks the shape the lookup relies on: sorted, unique,
// normalised, every entry at least 8 characters.
func TestEmbeddedList(t *testing.T) {
	load()
	if n := common.len(); n < 10000 || n > 100000 {
		t.Fatalf("embedded list has %d entries, want 10k–100k", n)
	}
	for _, l := range []*list{common, extra} {
		prev := ""
		for i := range l.len() {
			e := l.at(i)
			if e <= prev {
				t.Fatalf("entry %d %q not after %q", i, e, prev)
			}
			if e != Key(e) || strings.TrimSpace(e) != e {
				t.Errorf("entry %q is not in its key form", e)
			}
			if utf8.RuneCountInString(e) < 8 {
				t.Errorf("entry %q is shorter than 8 characters", e)
			}
			if !l.contains(e) {
				t.Errorf("binary search misses %q", e)
			}
			prev = e
		}
	}
	if Len() != common.len()+extra.len() {
		t.Fatal("Len disagrees")
	}
}

// BenchmarkDecode is the one-off cost of the first check (or of Load).
func BenchmarkDecode(b *testing.B) {
	for b.Loop() {
		decode()
	}
}

func BenchmarkContains(b *testing.B) {
	load()
	for b.Loop() {
		Contains("a-long-and-unusual-passphrase")
	}
}
