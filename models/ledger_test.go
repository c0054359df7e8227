package models_test

import (
	"encoding/json"
	"testing"

	"github.com/latchkey/latchkey/models"
)

// TestFingerprint: a user read again with its profile in another order or
// spacing fingerprints the same; any imported field that changes changes
// it.
func TestFingerprint(t *testing.T) {
	f := func(name, v string) models.Field { return models.Field{Name: name, Value: json.RawMessage(v)} }
	verified := true
	base := models.ImportUser{ID: 7, Email: "ann@example.com", PasswordHash: "$2a$10$x", EmailVerified: &verified,
		Profile: models.Fields{f("age", "31"), f("prefs", `{"theme":"dark","lang":"en"}`), f("big", "9007199254740993")}}
	same := base
	same.Profile = models.Fields{f("prefs", `{ "lang": "en", "theme": "dark" }`), f("big", "9007199254740993"), f("age", "31")}
	if base.Fingerprint() != same.Fingerprint() {
		t.Error("the same profile in another order and spacing fingerprints differently")
	}
	unverified := false
	for name, change := range map[string]func(u *models.ImportUser){
		"email":    func(u *models.ImportUser) { u.Email = "Ann@example.com" },
		"password": func(u *models.ImportUser) { u.PasswordHash = "$2a$10$y" },
		"verified": func(u *models.ImportUser) { u.EmailVerified = &unverified },
		"realm":    func(u *models.ImportUser) { r := ""; u.Realm = &r },
		"username": func(u *models.ImportUser) { u.Username = "ann" },
		"profile":  func(u *models.ImportUser) { u.Profile = models.Fields{f("age", "32")} },
		"big":      func(u *models.ImportUser) { u.Profile = append(u.Profile[:2:2], f("big", "9007199254740992")) },
		"alias":    func(u *models.ImportUser) { u.Alias = "5f1d7c2e9b1e8a0012345678" },
	} {
		u := base
		u.Profile = append(models.Fields(nil), base.Profile...)
		change(&u)
		if u.Fingerprint() == base.Fingerprint() {
			t.Errorf("a changed %s keeps the fingerprint", name)
		}
	}
}
