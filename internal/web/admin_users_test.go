package web

import (
	"context"
	"errors"
	"html"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/postdesk/postdesk/internal/auth"
	"github.com/postdesk/postdesk/internal/store"
)

// credentialField finds what a page shows once: a password or key (an
// input's value) or an invitation link (a textarea's text).
var credentialField = regexp.MustCompile(`id="(?:credential|new-key-value)"[^>]*(?:value="([^"]+)"|>([^<]+)</textarea>)`)

// shownOnce reads the password, link or key a page shows once.
func shownOnce(t *testing.T, body string) string {
	t.Helper()
	m := credentialField.FindStringSubmatch(body)
	if m == nil {
		t.Fatalf("no credential on the page:\n%s", body)
	}
	return html.UnescapeString(m[1] + m[2])
}

// body reads the (buffered) body of a response from env.post.
func body(res *http.Response) string {
	b, _ := io.ReadAll(res.Body)
	return string(b)
}

// addUser submits Admin -> Users' form as the env's admin and returns the
// new user and what the page showed once.
func (e *env) addUser(c *http.Client, email, role, setup string) (store.User, string) {
	e.t.Helper()
	res := e.post(c, "/admin/users", url.Values{"csrf": {e.csrf(c)}, "email": {email}, "name": {"New Person"}, "role": {role}, "setup": {setup}})
	wantStatus(e.t, res, http.StatusCreated)
	secret := shownOnce(e.t, body(res))
	u, err := e.db.UserByEmail(context.Background(), email)
	if err != nil {
		e.t.Fatal(err)
	}
	return u, secret
}

func TestAdminUsersAddWithPasswordAndInvitation(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	admin := e.signedIn()
	_, page := e.get(admin, "/admin/users")
	wantContains(t, page, "<h1>Users</h1>", "agent@example.com", "(you)", "chip-ok\">Active", `href="/admin/users"`, `aria-current="page">Users`)

	// A generated password, shown once, signs the new agent in.
	ann, password := e.addUser(admin, "ann@example.com", store.RoleAgent, auth.SetupPassword)
	if ann.Role != store.RoleAgent || ann.State() != store.UserActive || ann.Name != "New Person" {
		t.Fatalf("added %+v", ann)
	}
	agent := e.client()
	wantStatus(t, e.postLogin(agent, "ann@example.com", password, ""), http.StatusSeeOther)
	res, _ := e.get(agent, "/admin/users")
	wantStatus(t, res, http.StatusForbidden)
	_, page = e.get(admin, "/admin/users")
	wantContains(t, page, "ann@example.com")
	wantNotContains(t, page, password)

	// An invitation: the link sets a password once, and signs in.
	bob, link := e.addUser(admin, "bob@example.com", store.RoleAgent, auth.SetupInvite)
	if bob.State() != store.UserInvited || !strings.HasPrefix(link, e.srv.URL+"/invite/") {
		t.Fatalf("invited %+v with %q", bob, link)
	}
	_, page = e.get(admin, "/admin/users")
	wantContains(t, page, "chip-warn\">Invited", "link until")
	path := strings.TrimPrefix(link, e.srv.URL)
	invitee := e.client()
	res, page = e.get(invitee, path)
	wantStatus(t, res, http.StatusOK)
	wantContains(t, page, "bob@example.com", "Choose a password")
	token := formToken(t, page)
	res = e.post(invitee, path, url.Values{"csrf": {token}, "password": {"a long password"}, "confirm": {"another one"}})
	wantStatus(t, res, http.StatusUnprocessableEntity)
	wantContains(t, body(res), "The two passwords differ")
	res = e.post(invitee, path, url.Values{"csrf": {token}, "password": {"short"}, "confirm": {"short"}})
	wantStatus(t, res, http.StatusUnprocessableEntity)
	wantContains(t, body(res), "at least 8 characters")
	res = e.post(invitee, path, url.Values{"csrf": {token}, "password": {"a long password"}, "confirm": {"a long password"}})
	wantStatus(t, res, http.StatusSeeOther)
	if loc := res.Header.Get("Location"); loc != "/tickets" {
		t.Errorf("after the invitation: %s", loc)
	}
	res, _ = e.get(invitee, "/tickets")
	wantStatus(t, res, http.StatusOK)
	res, page = e.get(e.client(), path)
	wantStatus(t, res, http.StatusNotFound)
	wantContains(t, page, "This invitation link does not work", "Ask an administrator for a new one")
	wantStatus(t, e.postLogin(e.client(), "bob@example.com", "a long password", ""), http.StatusSeeOther)

	// Refusals are shown beside their fields.
	res = e.post(admin, "/admin/users", url.Values{"csrf": {e.csrf(admin)}, "email": {"ANN@example.com"}, "role": {"agent"}, "setup": {"password"}})
	wantStatus(t, res, http.StatusUnprocessableEntity)
	wantContains(t, body(res), `id="u-email-error">A user with the email ann@example.com already exists.`)
	// A CSRF-less add is refused.
	wantStatus(t, e.post(admin, "/admin/users", url.Values{"email": {"c@example.com"}, "role": {"agent"}, "setup": {"password"}}), http.StatusForbidden)
}

func TestAdminUserRoleResetAndLastAdmin(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	admin := e.signedIn()
	self := "/admin/users/" + strconv.FormatInt(e.user.ID, 10)

	// The last admin cannot step down or disable themselves.
	res := e.post(admin, self+"/role", url.Values{"csrf": {e.csrf(admin)}, "role": {"agent"}})
	wantStatus(t, res, http.StatusUnprocessableEntity)
	wantContains(t, body(res), "agent@example.com is the last active admin: make another user an admin first, then make them an agent.")
	res = e.post(admin, self+"/disable", url.Values{"csrf": {e.csrf(admin)}})
	wantStatus(t, res, http.StatusUnprocessableEntity)
	wantContains(t, body(res), "You cannot disable your own account")

	ann, password := e.addUser(admin, "ann@example.com", store.RoleAgent, auth.SetupPassword)
	page := "/admin/users/" + strconv.FormatInt(ann.ID, 10)
	res = e.post(admin, page+"/role", url.Values{"csrf": {e.csrf(admin)}, "role": {"admin"}})
	wantStatus(t, res, http.StatusSeeOther)
	_, shown := e.get(admin, res.Header.Get("Location"))
	wantContains(t, shown, "Saved the role.", `<option value="admin" selected>`)
	// Now the first admin may step down.
	wantStatus(t, e.post(admin, self+"/role", url.Values{"csrf": {e.csrf(admin)}, "role": {"agent"}}), http.StatusSeeOther)
	res, _ = e.get(admin, "/admin/users")
	wantStatus(t, res, http.StatusForbidden) // an agent now, at the very next request

	// Ann (an admin) resets the first user's password: their session ends.
	annC := e.client()
	wantStatus(t, e.postLogin(annC, "ann@example.com", password, ""), http.StatusSeeOther)
	res = e.post(annC, self+"/reset", url.Values{"csrf": {e.csrf(annC)}, "setup": {"password"}})
	wantStatus(t, res, http.StatusOK)
	fresh := shownOnce(t, body(res))
	res, _ = e.get(admin, "/tickets")
	wantStatus(t, res, http.StatusSeeOther)
	wantStatus(t, e.postLogin(e.client(), e.user.Email, testPassword, ""), http.StatusUnauthorized)
	wantStatus(t, e.postLogin(e.client(), e.user.Email, fresh, ""), http.StatusSeeOther)
	// A reset by link makes them "invited" until they use it.
	res = e.post(annC, self+"/reset", url.Values{"csrf": {e.csrf(annC)}, "setup": {"invite"}})
	wantStatus(t, res, http.StatusOK)
	if link := shownOnce(t, body(res)); !strings.Contains(link, "/invite/") {
		t.Errorf("reset link = %q", link)
	}
	if u, _ := e.db.User(context.Background(), e.user.ID); u.State() != store.UserInvited {
		t.Errorf("after a reset by link: %q", u.State())
	}
	res, _ = e.get(annC, "/admin/users/9999")
	wantStatus(t, res, http.StatusNotFound)
}

func TestUserZoneOnPages(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	c := e.signedIn()
	id, _ := e.ticket(store.Ticket{Subject: "Zoned"}, store.Message{})
	msgs, err := e.db.TicketMessages(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	at := msgs[0].ReceivedAt
	_, page := e.get(c, "/tickets/"+strconv.FormatInt(id, 10))
	wantContains(t, page, pageTime(at, nil))

	res := e.post(c, "/profile", url.Values{"csrf": {e.csrf(c)}, "name": {"Agent"}, "time_zone": {"Mars/Olympus"}})
	wantStatus(t, res, http.StatusUnprocessableEntity)
	wantContains(t, body(res), `id="p-zone-error">&#34;Mars/Olympus&#34; is not a time zone`)
	wantStatus(t, e.post(c, "/profile", url.Values{"csrf": {e.csrf(c)}, "name": {"Agent"}, "time_zone": {"Asia/Tokyo"},
		"notify_new_ticket": {"1"}, "follow": {strconv.FormatInt(e.mailbox.ID, 10)}}), http.StatusSeeOther)
	u, _ := e.db.User(context.Background(), e.user.ID)
	if u.TimeZone != "Asia/Tokyo" || u.Notify != (store.NotifyChoices{NewTicket: true}) {
		t.Fatalf("saved %+v", u)
	}
	if ids, _ := e.db.FollowedMailboxes(context.Background(), u.ID); len(ids) != 1 || ids[0] != e.mailbox.ID {
		t.Errorf("follows = %v", ids)
	}
	tokyo, _ := auth.LoadZone("Asia/Tokyo")
	want := pageTime(at, tokyo)
	if !strings.Contains(want, "JST") {
		t.Fatalf("tokyo time = %q", want)
	}
	_, page = e.get(c, "/tickets/"+strconv.FormatInt(id, 10))
	wantContains(t, page, want)
	wantNotContains(t, page, pageTime(at, nil))
	_, page = e.get(c, "/profile")
	wantContains(t, page, "<option selected>Asia/Tokyo</option>", `name="notify_new_ticket" value="1" checked`, "JST")
}

func TestProfilePasswordAndKeys(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	c := e.signedIn()
	other := e.signedIn()
	res := e.post(c, "/profile/password", url.Values{"csrf": {e.csrf(c)}, "current_password": {"wrong one"}, "new_password": {"new password 1"}, "confirm_password": {"new password 1"}})
	wantStatus(t, res, http.StatusUnprocessableEntity)
	wantContains(t, body(res), "The current password is wrong.")
	res = e.post(c, "/profile/password", url.Values{"csrf": {e.csrf(c)}, "current_password": {testPassword}, "new_password": {"new password 1"}, "confirm_password": {"new password 2"}})
	wantStatus(t, res, http.StatusUnprocessableEntity)
	res = e.post(c, "/profile/password", url.Values{"csrf": {e.csrf(c)}, "current_password": {testPassword}, "new_password": {"new password 1"}, "confirm_password": {"new password 1"}})
	wantStatus(t, res, http.StatusSeeOther)
	done := res.Header.Get("Location")
	res, _ = e.get(other, "/tickets")
	wantStatus(t, res, http.StatusSeeOther) // the other session ended
	res, page := e.get(c, done)
	wantStatus(t, res, http.StatusOK)
	wantContains(t, page, "Changed your password.", "You have no API keys.")

	// A key: shown once, listed, used, revoked.
	res = e.post(c, "/profile/apikeys", url.Values{"csrf": {e.csrf(c)}, "key_name": {"Reports"}, "key_expires": {"2001-01-01"}})
	wantStatus(t, res, http.StatusUnprocessableEntity)
	wantContains(t, body(res), "The last day must be today or later.")
	res = e.post(c, "/profile/apikeys", url.Values{"csrf": {e.csrf(c)}, "key_name": {"Reports"}, "key_expires": {"2999-12-31"}})
	wantStatus(t, res, http.StatusUnprocessableEntity)
	wantContains(t, body(res), "The last day must be within 10 years")
	lastDay := time.Now().AddDate(5, 0, 0)
	res = e.post(c, "/profile/apikeys", url.Values{"csrf": {e.csrf(c)}, "key_name": {"Reports"}, "key_expires": {lastDay.Format(time.DateOnly)}})
	wantStatus(t, res, http.StatusCreated)
	key := shownOnce(t, body(res))
	k, u, err := e.h.auth.APIKey(context.Background(), key)
	if err != nil || u.ID != e.user.ID || k.Name != "Reports" || k.ExpiresAt.Sub(lastDay) > 48*time.Hour || k.ExpiresAt.Before(lastDay) {
		t.Fatalf("key = %+v, %v", k, err)
	}
	_, page = e.get(c, "/profile")
	wantContains(t, page, "<strong>Reports</strong>", k.Prefix, "expires")
	wantNotContains(t, page, key)
	res = e.post(c, "/profile/apikeys/"+strconv.FormatInt(k.ID, 10)+"/revoke", url.Values{"csrf": {e.csrf(c)}})
	wantStatus(t, res, http.StatusSeeOther)
	if _, _, err := e.h.auth.APIKey(context.Background(), key); !errors.Is(err, auth.ErrInvalidCredentials) {
		t.Errorf("revoked key: %v", err)
	}
	// Someone else's key is not found.
	ann, _, err := auth.CreateUser(context.Background(), e.db, "ann@example.com", "", store.RoleAgent, testPassword)
	if err != nil {
		t.Fatal(err)
	}
	_, annKey, err := e.h.auth.CreateAPIKey(context.Background(), ann.ID, "hers")
	if err != nil {
		t.Fatal(err)
	}
	res = e.post(c, "/profile/apikeys/"+strconv.FormatInt(annKey.ID, 10)+"/revoke", url.Values{"csrf": {e.csrf(c)}})
	wantStatus(t, res, http.StatusNotFound)
}

// TestZoneChoicesLoad holds timezones.txt to the zones Postdesk accepts:
// every choice offered on the profile can be saved.
func TestZoneChoicesLoad(t *testing.T) {
	t.Parallel()
	if len(zoneNames) < 300 || zoneNames[0] != "Africa/Abidjan" {
		t.Fatalf("%d zones, first %q: timezones.txt was not read", len(zoneNames), zoneNames[0])
	}
	for _, z := range zoneNames {
		if _, err := auth.LoadZone(z); err != nil {
			t.Errorf("offered zone %s: %v", z, err)
		}
	}
}
