package web

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"testing"

	"github.com/postdesk/postdesk/internal/api"
	"github.com/postdesk/postdesk/internal/desk"
	"github.com/postdesk/postdesk/internal/store"
)

// TestDisabledUserRefusedOverHTTP serves the pages and the API together,
// as postdesk serve does, and disables an agent in Admin -> Users: their
// session cookie and their API key are refused on the very next request;
// enabled again, the key works and a new sign-in does (the old session
// stays ended).
func TestDisabledUserRefusedOverHTTP(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	mux := http.NewServeMux()
	mux.Handle("/api/v1/", api.New(api.Options{DB: e.db, Auth: e.h.auth, Desk: desk.New(e.db)}))
	mux.Handle("/", e.h)
	e.srv = httptest.NewServer(mux)
	t.Cleanup(e.srv.Close)

	admin := e.signedIn()
	ann, password := e.addUser(admin, "ann@example.com", store.RoleAgent, "password")
	agent := e.client()
	wantStatus(t, e.postLogin(agent, ann.Email, password, ""), http.StatusSeeOther)
	key, _, err := e.h.auth.CreateAPIKey(context.Background(), ann.ID, "script")
	if err != nil {
		t.Fatal(err)
	}
	apiGet := func() int {
		t.Helper()
		req, _ := http.NewRequest(http.MethodGet, e.srv.URL+"/api/v1/me", nil)
		req.Header.Set("Authorization", "Bearer "+key)
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		return res.StatusCode
	}
	pageGet := func(c *http.Client) *http.Response {
		t.Helper()
		res, _ := e.get(c, "/tickets")
		return res
	}
	if res := pageGet(agent); res.StatusCode != http.StatusOK {
		t.Fatalf("before: page %d", res.StatusCode)
	}
	if s := apiGet(); s != http.StatusOK {
		t.Fatalf("before: api %d", s)
	}

	user := "/admin/users/" + strconv.FormatInt(ann.ID, 10)
	wantStatus(t, e.post(admin, user+"/disable", url.Values{"csrf": {e.csrf(admin)}}), http.StatusSeeOther)
	res := pageGet(agent)
	if res.StatusCode != http.StatusSeeOther || res.Header.Get("Location") != "/login?next=%2Ftickets" {
		t.Errorf("disabled: page answered %d to %q, want a redirect to sign-in", res.StatusCode, res.Header.Get("Location"))
	}
	if s := apiGet(); s != http.StatusUnauthorized {
		t.Errorf("disabled: api answered %d, want 401", s)
	}
	wantStatus(t, e.postLogin(e.client(), ann.Email, password, ""), http.StatusUnauthorized)
	_, page := e.get(admin, "/admin/users")
	wantContains(t, page, "chip-muted\">Disabled")

	wantStatus(t, e.post(admin, user+"/enable", url.Values{"csrf": {e.csrf(admin)}}), http.StatusSeeOther)
	if s := apiGet(); s != http.StatusOK {
		t.Errorf("enabled: api answered %d", s)
	}
	if res := pageGet(agent); res.StatusCode != http.StatusSeeOther {
		t.Errorf("enabled: the old session answered %d, want it ended", res.StatusCode)
	}
	again := e.client()
	wantStatus(t, e.postLogin(again, ann.Email, password, ""), http.StatusSeeOther)
	if res := pageGet(again); res.StatusCode != http.StatusOK {
		t.Errorf("enabled: a new sign-in's page answered %d", res.StatusCode)
	}
}
