package oauth

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"

	"golang.org/x/oauth2"
)

// maxBody bounds every body a provider sends (discovery, JWKS, token,
// userinfo, user APIs): a few KiB in practice.
const maxBody = 1 << 20

var errTooLarge = errors.New("response body over 1 MiB")

// boundedClient is client (or one with a timeout when nil) whose response
// bodies fail past maxBody. go-oidc reads its bodies with io.ReadAll, so
// the bound has to sit in the transport.
func boundedClient(client *http.Client) *http.Client {
	c := http.Client{Timeout: defaultTimeout}
	if client != nil {
		c = *client
	}
	base := c.Transport
	if base == nil {
		base = http.DefaultTransport
	}
	c.Transport = boundedTransport{base}
	return &c
}

type boundedTransport struct{ base http.RoundTripper }

func (t boundedTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	resp, err := t.base.RoundTrip(r)
	if err == nil {
		resp.Body = &boundedBody{ReadCloser: resp.Body, left: maxBody}
	}
	return resp, err
}

type boundedBody struct {
	io.ReadCloser
	left int64 // bytes still allowed; -1 once the bound is passed
}

func (b *boundedBody) Read(p []byte) (int, error) {
	if b.left < 0 {
		return 0, errTooLarge
	}
	if int64(len(p)) > b.left+1 {
		p = p[:b.left+1]
	}
	n, err := b.ReadCloser.Read(p)
	if int64(n) <= b.left {
		b.left -= int64(n)
		return n, err
	}
	n, b.left = int(b.left), -1
	return n, errTooLarge
}

// getJSON GETs rawURL with tok as a bearer token and decodes a 200 answer
// into v.
func getJSON(ctx context.Context, client *http.Client, rawURL, accept string, tok *oauth2.Token, v any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, rawURL, nil)
	if err != nil {
		return err
	}
	req.Header.Set("Accept", accept)
	tok.SetAuthHeader(req)
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("status %d", resp.StatusCode)
	}
	return json.NewDecoder(resp.Body).Decode(v)
}

// failed wraps ErrExchange with a short reason and what err safely says.
// Tokens, codes and verifiers travel in headers and bodies, never in a
// URL, and bodies are not quoted, so none of them reaches the text.
func failed(reason string, err error) error {
	if err == nil {
		return fmt.Errorf("%w: %s", ErrExchange, reason)
	}
	return fmt.Errorf("%w: %s: %s", ErrExchange, reason, detail(err))
}

// detail is err's text without what a provider may have put in it: the
// token endpoint's error code and status instead of its body, a transport
// error without its URL, anything else cut short.
func detail(err error) string {
	if re, ok := errors.AsType[*oauth2.RetrieveError](err); ok {
		s := "status " + fmt.Sprint(re.Response.StatusCode)
		if re.ErrorCode != "" {
			s += " " + short(re.ErrorCode, 40)
		}
		return s
	}
	if ue, ok := errors.AsType[*url.Error](err); ok {
		return short(ue.Err.Error(), 200)
	}
	return short(err.Error(), 200)
}

func short(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
