package handlers

import (
	"net/url"
	"strings"
	"testing"
)

// FuzzLocalPath: whatever return_to a sign-in is given, where the browser
// lands afterwards is this site (SECURITY O5): localPath answers "" or a
// path that, resolved against the site as a browser resolves a Location,
// stays on the site's host.
func FuzzLocalPath(f *testing.F) {
	for _, s := range []string{"/", "/account", "/sessions?done=x", "//evil.test", `/\evil.test`, "https://evil.test/",
		"/%2f%2fevil.test", "/\t/evil.test", "javascript:alert(1)", "/a/../..//evil.test", "/@evil.test", "/ /evil",
		"/%2fevil.test/a b"} { // the last was re-encoded to //evil.test/a%20b before
		f.Add(s)
	}
	site, _ := url.Parse("https://app.example/")
	f.Fuzz(func(t *testing.T, in string) {
		out := localPath(in)
		if out == "" {
			return
		}
		if out[0] != '/' || strings.HasPrefix(out, "//") || strings.ContainsAny(out, "\\\r\n\t") {
			t.Fatalf("localPath(%q) = %q: not a plain local path", in, out)
		}
		ref, err := url.Parse(out)
		if err != nil {
			t.Fatalf("localPath(%q) = %q does not parse: %v", in, out, err)
		}
		if got := site.ResolveReference(ref); got.Host != site.Host || got.Scheme != site.Scheme {
			t.Fatalf("localPath(%q) = %q sends the browser to %s", in, out, got)
		}
	})
}
