package handlers_test

import (
	"encoding/json"
	"net/url"
	"testing"
)

// Passwords the rules below never refuse: no common password, no context word.
const (
	goodPw  = "glowing rivers under quiet hills"
	otherPw = "amber meadow lanterns"
)

const (
	commonMsg  = "This password is too common: choose another"
	contextMsg = "The password must not contain your email, username or the site's name"
)

// refusedEverywhere checks that pw is refused with code and msg wherever a
// password is chosen, for an account with this email and username (""
// for none): API and page sign-up, change-password, API and page reset. A
// refusal changes nothing: no account is created, the old password still
// logs in, the reset token is still good afterwards.
func refusedEverywhere(t *testing.T, email, username, pw, code, msg string) {
	t.Helper()
	env := newEnv(t)
	mb := subscribe(env)
	want := lbErr(422, "Error", msg, code)

	body := map[string]string{"email": email, "password": pw}
	if username != "" {
		body["username"] = username
	}
	b, _ := json.Marshal(body)
	wantEnvelope(t, env.do("POST", "/api/users", string(b)), 422, want)

	br := newBrowser(t, env, "http://localhost:3000")
	p := br.submit(br.get("/signup"), `[data-testid="signup-form"]`,
		url.Values{"email": {email}, "username": {username}, "password": {pw}})
	p.is(422, "page-signup")
	p.fieldError("password", msg)

	// Neither sign-up made the account: it can be made now.
	extra := []string{}
	if username != "" {
		extra = []string{"username", username}
	}
	env.signup(email, goodPw, extra...)

	tok := env.login(email, goodPw)
	cb, _ := json.Marshal(map[string]string{"oldPassword": goodPw, "newPassword": pw})
	wantEnvelope(t, env.do("POST", "/api/users/change-password", string(cb), "Authorization: "+tok), 422, want)
	env.login(email, goodPw)

	want204(t, env.do("POST", "/api/users/reset", `{"email":`+mustJSON(email)+`}`))
	rt := mb.lastReset(t)
	rb, _ := json.Marshal(map[string]string{"newPassword": pw})
	wantEnvelope(t, env.do("POST", "/api/users/reset-password?access_token="+url.QueryEscape(rt), string(rb)), 422, want)

	br.get("/reset-password?access_token=" + url.QueryEscape(rt)).redirects("/reset-password")
	r := br.submit(br.get("/reset-password"), `[data-testid="reset-form"]`, url.Values{"password": {pw}, "confirmation": {pw}})
	r.is(422, "page-reset")
	r.fieldError("password", msg)

	// The refusals used nothing up: the same token still sets a good password.
	ob, _ := json.Marshal(map[string]string{"newPassword": otherPw})
	want204(t, env.do("POST", "/api/users/reset-password?access_token="+url.QueryEscape(rt), string(ob)))
	env.login(email, otherPw)
}

// TestSecurity_P6_CommonPasswords: common passwords are refused with 422
// PASSWORD_BREACHED on sign-up, change and reset, API and pages alike; a
// long lower-case passphrase is not (P5).
func TestSecurity_P6_CommonPasswords(t *testing.T) {
	t.Parallel()
	for _, pw := range []string{
		"password1234", "123456789012", // SECURITY's examples
		"PassWord1234", // any case
		"ｐａｓｓｗｏｒｄ１２３４", // fullwidth: NFKC makes it password1234
		"iloveyou", "qwertyuiop", "aaaaaaaa",
	} {
		t.Run(pw, func(t *testing.T) {
			t.Parallel()
			refusedEverywhere(t, "eve@example.com", "", pw, "PASSWORD_BREACHED", commonMsg)
		})
	}

	t.Run("length rules come first", func(t *testing.T) {
		t.Parallel()
		env := newEnv(t)
		r := env.do("POST", "/api/users", `{"email":"eve@example.com","password":"qwerty"}`)
		if r.status != 422 || r.errorOf(t)["code"] != "PASSWORD_TOO_SHORT" {
			t.Errorf("qwerty: %d %s", r.status, r.body)
		}
	})

	t.Run("a 16-letter lower-case passphrase passes (P5)", func(t *testing.T) {
		t.Parallel()
		env := newEnv(t)
		env.signup("eve@example.com", "mossyriverstones")
		env.login("eve@example.com", "mossyriverstones")
		signupInBrowser(t, env, "ivy@example.com", "mossyriverstones")
	})

	t.Run("a password sent along with a reset request is only length-checked, as LoopBack", func(t *testing.T) {
		t.Parallel()
		env := newEnv(t)
		want204(t, env.do("POST", "/api/users/reset", `{"email":"eve@example.com","password":"password1234"}`))
	})
}

// TestSecurity_P7_ContextWords: a password containing the email's local
// part or the username (4+ characters) or the product name is refused with
// 422 PASSWORD_CONTEXT on sign-up, change and reset, API and pages alike.
func TestSecurity_P7_ContextWords(t *testing.T) {
	t.Parallel()
	for _, c := range []struct{ name, email, username, pw string }{
		{"username + 2024", "wonderland@example.com", "alice", "alice2024"},
		{"username in another case", "wonderland@example.com", "Alice", "ALICE-in-2024"},
		{"username in fullwidth (NFKC)", "wonderland@example.com", "alice", "ａｌｉｃｅ-in-2024"},
		{"email local part", "Frida.Kahlo@example.com", "", "frida.kahlo-paints"},
		{"email local part before a +tag", "frida+shop@example.com", "", "FRIDA-paints-2024"},
		{"product name", "eve@example.com", "", "MyLatchkey2024"},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			refusedEverywhere(t, c.email, c.username, c.pw, "PASSWORD_CONTEXT", contextMsg)
		})
	}

	t.Run("short names and other parts of the address are allowed", func(t *testing.T) {
		t.Parallel()
		env := newEnv(t)
		env.signup("bob@example.com", "bob-walks-in-2024", "username", "bob") // 3 characters: not checked
		env.signup("wonderland@example.com", "example-rivers-2024")           // the domain is not checked
		b := newBrowser(t, env, "http://localhost:3000")
		b.submit(b.get("/signup"), `[data-testid="signup-form"]`,
			url.Values{"email": {"ann@example.com"}, "username": {"ann"}, "password": {"ann-likes-tea"}}).redirects("/check-email")
	})
}
